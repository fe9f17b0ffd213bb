import Foundation

/// An archive to read: a local file, or an object in a store (S3). Its logs
/// (`verifications.jsonl`, `drills.jsonl`, `restores.jsonl`) live next to it.
public struct ArchiveLocation: Sendable {
    /// nil for a local file.
    public let store: ArchiveStore?
    /// The file's path when local, else the object's name in `store`.
    public let name: String

    public init(path: String) {
        store = nil
        name = URL(fileURLWithPath: path).standardizedFileURL.path
    }

    public init(store: ArchiveStore, name: String) {
        if let local = store as? LocalStore {
            self.store = nil
            self.name = URL(fileURLWithPath: local.directory + "/" + name).standardizedFileURL.path
        } else {
            self.store = store
            self.name = name
        }
    }

    /// What reports and messages call it: the path, or `s3://bucket/prefix/name`.
    public var path: String { store.map { "\($0.location)/\(name)" } ?? name }
    public var fileName: String { URL(fileURLWithPath: name).lastPathComponent }
    public var isLocal: Bool { store == nil }

    public func reader() throws -> ArchiveReader {
        guard let store else { return try ArchiveReader(path: name) }
        return try ArchiveReader(store: store, name: name)
    }

    /// Where the logs next to the archive go.
    public func logStore() throws -> ArchiveStore {
        try store ?? LocalStore(directory: URL(fileURLWithPath: name).deletingLastPathComponent().path)
    }
}
