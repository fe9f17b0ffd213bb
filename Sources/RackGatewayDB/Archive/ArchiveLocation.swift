import Foundation
import RGWCompression

/// An archive to read: a name in a store (a local directory or an S3 prefix). Its logs
/// (`verifications.jsonl`, `drills.jsonl`, `restores.jsonl`) live next to it, in the same store.
public struct ArchiveLocation: Sendable {
    public let store: ArchiveStore
    /// The object's name in `store`.
    public let name: String
    /// What it is read with: the identities that decrypt it, the key it must be signed with.
    public var keys: ArchiveKeys

    /// A local file: its directory is the store.
    public init(path: String, keys: ArchiveKeys = ArchiveKeys()) {
        let url = URL(fileURLWithPath: path).standardizedFileURL
        store = LocalStore(directory: url.deletingLastPathComponent().path)
        name = url.lastPathComponent
        self.keys = keys
    }

    public init(store: ArchiveStore, name: String, keys: ArchiveKeys = ArchiveKeys()) {
        self.store = store
        self.name = name
        self.keys = keys
    }

    public var isEncrypted: Bool { ArchiveName.isEncrypted(name) }

    /// The SHA-256 of the object as stored (no key needed), in one read of it.
    public func storedSHA256() throws -> String {
        guard let object = try store.open(name) else { throw ToolError(.failed, "\(path) does not exist") }
        return try StoredDigests(object, blake2b: false).sha256
    }

    /// The digest the `.sha256` sidecar records, or nil when there is none (or it is unreadable,
    /// over `ArchiveName.digestLimit` or not a `sha256sum` line: nothing confirms the archive).
    public func sidecarDigest() -> String? {
        (try? recordedDigest()) ?? nil
    }

    /// The same, throwing when the sidecar is there but over its size limit.
    public func recordedDigest() throws -> String? {
        try store.getSidecar(ArchiveName.sidecar(of: name), limit: ArchiveName.digestLimit).flatMap(ArchiveName.sidecarDigest)
    }

    /// What `list`, `prune` and the shrink check need: from the manifest when the archive can be
    /// read (plain, or encrypted with an identity given), else from the `.summary.json` beside it,
    /// whose numbers are bounded by the stored archive's size (`storedSize`, as a listing found it).
    public func summary(storedSize: Int) throws -> ArchiveSummary {
        if !isEncrypted || !keys.identities.isEmpty {
            return ArchiveSummary(manifest: try reader().manifest, archive: name)
        }
        let sidecar = ArchiveName.summary(of: name)
        guard let bytes = try store.getSidecar(sidecar, limit: ArchiveName.summaryLimit) else {
            throw ToolError(.failed, "\(path) is encrypted and has no \(sidecar) to read without its key", fix: "Give --identity FILE to read the archive itself.")
        }
        return try ArchiveSummary.parse(bytes, path: "\(store.location)/\(sidecar)", storedSize: storedSize)
    }

    /// What reports and messages call it: the path, or `s3://bucket/prefix/name`.
    public var path: String { "\(store.location)/\(name)" }
    /// The file's path on this machine, for the stock tools that read files; nil in a remote store.
    public var localPath: String? { store.localPath(name) }

    public func reader() throws -> ArchiveReader { try ArchiveReader(self) }
}

extension ArchiveStore {
    /// A sidecar (`.sha256`, `.minisig`, `.summary.json`) whole, or nil when there is none; one
    /// over `limit` bytes is refused (exit 2) before it is read: they are small, and a large one
    /// is not ours.
    public func getSidecar(_ name: String, limit: Int) throws -> [UInt8]? {
        guard let reader = try open(name) else { return nil }
        guard reader.size <= limit else {
            throw ToolError(.archiveCorrupt, "\(location)/\(name) is \(reader.size) bytes, over the \(limit) bytes such a file of ours can take: it is not ours or it is damaged",
                            fix: "Delete or replace it (backup writes it beside the archive).")
        }
        return reader.size == 0 ? [] : try reader.read(offset: 0, count: reader.size)
    }
}
