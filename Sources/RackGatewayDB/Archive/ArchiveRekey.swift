import Foundation
import RGWCrypto

/// `rekey`: a copy of an encrypted archive whose age header wraps the same file key for other
/// recipients. The payload (nonce and every sealed chunk) is copied byte for byte: nothing is
/// decrypted into the new file, nothing recompressed. The old archive is left as it is (Object
/// Lock may forbid anything else), and whoever could decrypt it still can: rekey gives new keys
/// access, it does not take old ones away.
public struct ArchiveRekey {
    public struct Report: Codable, Sendable {
        public var source: String
        public var file: String
        public var recipients: Int
        public var sizeBytes: Int
        public var sha256: String
        public var signed: Bool
        public var durationSeconds: Double
    }

    public init() {}

    /// `source` is read with its identities (and `--verify-key`, if given); the copy goes into
    /// `destination` under the same name, which must not exist there yet; a signature's timestamp
    /// comes from `clock` (the run's).
    public func run(source: ArchiveLocation, destination: ArchiveStore, keys: BackupKeys, clock: RunClock,
                    cleanups: CleanupStack = CleanupStack()) throws -> Report {
        let stopwatch = Stopwatch()
        guard source.isEncrypted else {
            throw ToolError(.usage, "\(source.path) is not encrypted; rekey changes the recipients of an .age archive",
                            fix: "Encrypt new backups with backup --recipient.")
        }
        precondition(keys.encrypts)
        // The whole archive opens: the header with the old identity, the final chunk, the trailer
        // and manifest (and the signature, with --verify-key). The copy is of what it opened (from
        // S3 with --verify-key, the spool the signature was checked over), not a second download.
        let reader = try source.reader()
        let stored = reader.storedObject
        let oldHeader = try AgeOpener.header(fileSize: stored.size) { try stored.read(offset: $0, count: $1) }
        var fileKey = try oldHeader.fileKey(identities: source.keys.identities)
        defer { wipe(&fileKey) }
        let newHeader = try AgeHeader.make(fileKey: fileKey, recipients: keys.recipients)

        let name = source.name
        if try destination.size(name) != nil {
            throw ToolError(.failed, "\(destination.location)/\(name) already exists; not overwriting it",
                            fix: "Give --to another directory or prefix (the rekeyed copy keeps the archive's name and time).")
        }
        let writer = try destination.create(name)
        let unfinished = cleanups.push("remove the unfinished \(destination.location)/\(name)") { writer.discard() }
        defer { unfinished.dismiss() }
        let hashing = HashingStoreWriter(writer, blake2b: keys.signKey != nil)
        do {
            try hashing.append(newHeader.bytes[...])
            var failure: Error?
            try stored.stream(offset: oldHeader.length, count: stored.size - oldHeader.length) { bytes in
                do { try hashing.append(ArraySlice(UnsafeBufferPointer(start: bytes.bindMemory(to: UInt8.self).baseAddress, count: bytes.count))) } catch {
                    failure = error
                    return false
                }
                return true
            }
            if let failure { throw failure }
            try hashing.publish()
        } catch {
            hashing.discard()
            throw error
        }
        let digest = try hashing.putSidecars(store: destination, name: name, manifest: reader.manifest, keys: keys, clock: clock)
        return Report(source: source.path, file: "\(destination.location)/\(name)", recipients: keys.recipients.count, sizeBytes: hashing.count,
                      sha256: digest, signed: keys.signKey != nil, durationSeconds: stopwatch.elapsed)
    }
}
