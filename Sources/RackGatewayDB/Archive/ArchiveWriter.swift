import RGWCompression
import RGWCrypto
import Foundation

/// Writes an archive into a store: members appended under a lock (one writer at a time, in the
/// order `ArchiveLayout` gives), their offsets and sizes recorded, SHA-256 computed as the bytes go
/// out. `finish` appends the manifest and the trailer, publishes the object and puts the `.sha256`
/// sidecar next to it; `discard` (also run on Ctrl-C) removes every trace. Nothing incomplete ever
/// has the final name. With recipients the archive is encrypted as it is written (age; offsets are
/// the plaintext's) and gets a `.summary.json`; with a signing key, a `.minisig` of the stored file.
public final class ArchiveWriter: @unchecked Sendable {
    public let store: ArchiveStore
    public let name: String
    /// What reports call it: a path or an s3:// URL.
    public var location: String { "\(store.location)/\(name)" }

    private let lock = NSLock()
    /// What members go into: the encrypting writer, or `hashing` itself.
    private let writer: StoreWriter
    /// Right above the store: hashes the bytes as stored.
    private let hashing: HashingStoreWriter
    private let keys: BackupKeys
    private var offset = 0
    private var members: [ArchiveManifest.Member] = []
    private var finished = false
    /// The clean-up that removes the unfinished object if the run stops before `finish`.
    private var unfinished: CleanupStack.Entry?

    /// How the members are compressed (the trailer is written to match).
    public let codec: MemberCodec

    public init(store: ArchiveStore, name: String, codec: MemberCodec = .gzip, keys: BackupKeys = BackupKeys(), cleanups: CleanupStack = CleanupStack()) throws {
        precondition(keys.encrypts == ArchiveName.isEncrypted(name), "an encrypted archive's name ends in .age")
        self.store = store
        self.name = name
        self.codec = codec
        self.keys = keys
        if try store.size(name) != nil {
            throw ToolError(.failed, "\(store.location)/\(name) already exists; not overwriting it", fix: "Wait a second and run again, or use another --prefix.")
        }
        let stored = try store.create(name)
        hashing = HashingStoreWriter(stored, blake2b: keys.signKey != nil)
        do {
            writer = keys.encrypts ? try AgeEncryptingWriter(hashing, recipients: keys.recipients) : hashing
        } catch {
            stored.discard()
            throw error
        }
        unfinished = cleanups.push("remove the unfinished \(store.location)/\(name)") { stored.discard() }
    }

    /// Bytes of the archive (the plaintext of an encrypted one).
    public var bytesWritten: Int { lock.withLock { offset } }
    /// Bytes of the stored object (the age file of an encrypted archive; complete after `finish`).
    public var storedBytes: Int { lock.withLock { hashing.count } }
    public var recordedMembers: [ArchiveManifest.Member] { lock.withLock { members } }

    /// Append one complete gzip member; its CRC32 and size are read from the member's own trailer.
    @discardableResult
    public func append(member bytes: ArraySlice<UInt8>, kind: ArchiveManifest.MemberKind, table: Int? = nil, rows: Int? = nil) throws -> ArchiveManifest.Member {
        precondition(bytes.count >= 18 && codec == .gzip)
        let footer = GzipFooter(endOf: bytes)!
        return try append(CompressedMember(bytes: bytes, size: Int(footer.size), crc32: footer.crc32), kind: kind, table: table, rows: rows)
    }

    /// Append one complete member of the archive's codec.
    @discardableResult
    public func append(_ member: CompressedMember, kind: ArchiveManifest.MemberKind, table: Int? = nil, rows: Int? = nil) throws -> ArchiveManifest.Member {
        precondition(MemberCodec.detect(member.bytes) == codec, "a member that is not \(codec)")
        return try lock.withLock {
            precondition(ArchiveLayout.mayFollow(members.last?.kind, with: kind), "member \(kind) after \(String(describing: members.last?.kind))")
            let record = ArchiveManifest.Member(index: members.count, kind: kind, offset: offset, length: member.bytes.count,
                                                size: member.size, crc32: member.crc32, table: table, rows: rows)
            try write(member.bytes)
            members.append(record)
            return record
        }
    }

    private func write(_ bytes: ArraySlice<UInt8>) throws {
        try writer.append(bytes)
        offset += bytes.count
    }

    /// The manifest member (compressed by `compress`), the trailer pointing at it, then publish and
    /// the sidecars (a signature's timestamp from `clock`, the run's). Returns the stored file's SHA-256.
    public func finish(manifest: ArchiveManifest, clock: RunClock, compress: ([UInt8]) throws -> [UInt8]) throws -> String {
        precondition(manifest.members == recordedMembers)
        let manifestMember = try compress(try manifest.line())
        return try lock.withLock {
            let manifestOffset = offset
            try write(manifestMember[...])
            try write(ArchiveTrailer(manifestOffset: manifestOffset, manifestLength: manifestMember.count).member(codec: codec)[...])
            try writer.publish()
            finished = true
            unfinished?.dismiss()
            return try hashing.putSidecars(store: store, name: name, manifest: manifest, keys: keys, clock: clock)
        }
    }

    /// Remove the unfinished object (after a failure). Safe to call more than once. False when the
    /// archive was published already (it stays: only its sidecars may be missing).
    @discardableResult
    public func discard() -> Bool {
        lock.withLock {
            if !finished { writer.discard() }
            unfinished?.dismiss()
            return !finished
        }
    }
}
