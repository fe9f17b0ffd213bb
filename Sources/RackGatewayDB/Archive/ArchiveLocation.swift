import Foundation

/// An archive to read: a name in a store (a local directory or an S3 prefix). Its logs
/// (`verifications.jsonl`, `drills.jsonl`, `restores.jsonl`) live next to it, in the same store.
public struct ArchiveLocation: Sendable {
    public let store: ArchiveStore
    /// The object's name in `store`.
    public let name: String

    /// A local file: its directory is the store.
    public init(path: String) {
        let url = URL(fileURLWithPath: path).standardizedFileURL
        store = LocalStore(directory: url.deletingLastPathComponent().path)
        name = url.lastPathComponent
    }

    public init(store: ArchiveStore, name: String) {
        self.store = store
        self.name = name
    }

    /// What reports and messages call it: the path, or `s3://bucket/prefix/name`.
    public var path: String { "\(store.location)/\(name)" }
    /// The file's path on this machine, for the stock tools that read files; nil in a remote store.
    public var localPath: String? { store.localPath(name) }

    public func reader() throws -> ArchiveReader { try ArchiveReader(self) }
}
