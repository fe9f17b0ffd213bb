import RGWCompression
import RGWCrypto
import Foundation

/// Reads an archive in a store: the trailer from the end, the manifest it points to (its
/// `{format, format_version}` envelope first), and members by offset.
public final class ArchiveReader: @unchecked Sendable {
    public let archive: ArchiveLocation
    /// What messages call it: a path or an s3:// URL.
    public var path: String { archive.path }
    public var fileSize: Int { object.size }
    public let trailer: ArchiveTrailer
    public let manifest: ArchiveManifest
    /// How the members are compressed, as the trailer tells (and the manifest agrees).
    public let codec: MemberCodec
    /// The plaintext: the stored object itself, or its decryption. Replaced once by `spoolForLoad`
    /// (the same bytes, from the spool), before any other thread reads the archive.
    private var object: StoreReader
    /// The object as stored (the age file of an encrypted archive).
    private var stored: StoreReader
    /// The SHA-256 of the plaintext's end (the manifest member and the trailer) as it was read at
    /// opening: what a copy downloaded later must end with to be the archive opened.
    private let endSHA256: String
    /// An age-encrypted archive (`.age`), read through its identity.
    public var isEncrypted: Bool { object is AgeDecryptingReader }
    /// The stored object's size (the encrypted file's, for an encrypted archive).
    public var storedSize: Int { stored.size }
    /// The object as stored, as this reader reads it (the spool a signature was checked over):
    /// for a layer that copies the file itself (rekey) instead of opening it again by name.
    var storedObject: StoreReader { stored }
    /// The SHA-256 of the stored object when a signature check computed it already.
    private var verifiedStoredSHA256: String?

    /// A local file.
    public convenience init(path: String) throws {
        try self.init(ArchiveLocation(path: path))
    }

    public convenience init(store: ArchiveStore, name: String) throws {
        try self.init(ArchiveLocation(store: store, name: name))
    }

    public init(_ archive: ArchiveLocation) throws {
        self.archive = archive
        guard var stored = try archive.store.open(archive.name) else {
            throw ArchiveLocation.notFound(archive.name, in: [.init(store: archive.store, label: archive.store.location)],
                                           fix: "Give the path of an archive that exists, or s3://bucket/prefix/NAME.")
        }
        // The signature before anything of the file is parsed. From a remote store every read after
        // it comes from the local spool of the bytes it checked (downloaded once).
        if let key = archive.keys.verifyKey {
            let signed = try ArchiveSignature.verify(stored, name: archive.name, store: archive.store, key: key, spool: archive.localPath == nil)
            (verifiedStoredSHA256, stored) = (signed.sha256, signed.checked)
        }
        self.stored = stored
        let object = try Self.decrypting(stored, archive: archive)
        self.object = object
        let size = object.size
        let path = archive.path
        let tailLength = min(size, ArchiveTrailer.memberLength)
        // A chunk that fails here is in the trailer or the manifest (no member list to name yet).
        func read(_ offset: Int, _ count: Int) throws -> [UInt8] {
            do { return try object.read(offset: offset, count: count) } catch AgeError.badChunk(let index) {
                throw ToolError(.archiveCorrupt, "\(path): encrypted chunk \(index), in the manifest or trailer, fails authentication (altered or out of place); the archive is corrupt",
                                fix: "Do not restore it; use an older archive (rack-gateway-db list).")
            }
        }
        let tail = try read(size - tailLength, tailLength)
        guard let (trailer, codec) = ArchiveTrailer.find(in: tail[...]) else {
            let head = (try? read(0, min(size, 64 * 1024))) ?? []
            throw Self.explainMissingTrailer(head: head, path: path, fileSize: size, remote: archive.localPath == nil, archive: archive)
        }
        self.trailer = trailer
        self.codec = codec
        let trailerStart = size - ArchiveTrailer.length(for: codec)
        // Every number from the file is checked before it is used, additions overflow-checked.
        let (manifestEnd, overflow) = trailer.manifestOffset.addingReportingOverflow(trailer.manifestLength)
        guard trailer.manifestLength > 0, !overflow, manifestEnd == trailerStart else {
            throw ToolError(.archiveCorrupt, "\(path): the trailer points to a manifest at offset \(trailer.manifestOffset) of length \(trailer.manifestLength), which does not end where the trailer starts (offset \(trailerStart)); the archive is corrupt",
                            fix: Self.corruptFix)
        }
        guard trailer.manifestLength <= ArchiveManifest.maximumMemberLength else {
            throw ToolError(.archiveCorrupt, "\(path): the trailer points to a manifest member of \(trailer.manifestLength) bytes, over the limit of \(ArchiveManifest.maximumMemberLength); the archive is corrupt",
                            fix: Self.corruptFix)
        }
        let member = try read(trailer.manifestOffset, trailer.manifestLength)
        endSHA256 = Self.sha256(member[...], tail.suffix(size - trailerStart))
        let text: [UInt8]
        do {
            text = try MemberDecompressor(codec: codec).decompressWhole(member[...], limit: ArchiveManifest.maximumTextLength(manifestOffset: trailer.manifestOffset))
        } catch let error as CompressionError {
            throw ToolError(.archiveCorrupt, "\(path): the manifest member at offset \(trailer.manifestOffset) is corrupt (\(error.message))", fix: Self.corruptFix)
        }
        // The envelope first: a newer format may change anything else. The syntax and the number
        // of values are checked before the decoder builds anything.
        let envelope: ArchiveManifest.Envelope
        do {
            envelope = try ArchiveManifest.envelope(line: text, maximumValues: ArchiveManifest.maximumValues(manifestOffset: trailer.manifestOffset))
        } catch let error as ToolError {
            throw ToolError(.archiveCorrupt, "\(path): \(error.message); the archive is corrupt", fix: Self.corruptFix)
        }
        guard envelope.format == ArchiveManifest.formatName else {
            throw ToolError(.archiveCorrupt, "\(path): the manifest is of format \"\(envelope.format.prefix(100))\", not \"\(ArchiveManifest.formatName)\"")
        }
        // Versions start at 1: anything lower is damage, not a newer format.
        guard envelope.formatVersion >= 1 else {
            throw ToolError(.archiveCorrupt, "\(path): the manifest's format_version is \(envelope.formatVersion), which no archive has; the archive is corrupt", fix: Self.corruptFix)
        }
        guard ArchiveManifest.readableFormatVersions.contains(envelope.formatVersion) else {
            throw ToolError(.formatUnsupported, "\(path) is archive format v\(envelope.formatVersion); this rack-gateway-db reads v1 and v\(ArchiveManifest.currentFormatVersion)",
                            fix: "Use a rack-gateway-db release that knows that format, or restore it with \(codec.stockDecompress) | psql.")
        }
        do {
            manifest = try ArchiveManifest.parse(line: text)
        } catch let error as ToolError {
            throw ToolError(.archiveCorrupt, "\(path): \(error.message); the archive is corrupt", fix: Self.corruptFix)
        }
        guard manifest.memberCodec == codec else {
            throw ToolError(.archiveCorrupt, "\(path): the manifest says its members are \(manifest.codec.map { String($0.prefix(20)) } ?? "gzip") but the file's trailer is \(codec); the archive is corrupt")
        }
        // The structure once, here: every layer (verify, list, prune, check, restore, drill) gets
        // only an archive whose manifest describes the file.
        let problems = ArchiveLayout.structuralProblems(manifest, manifestOffset: trailer.manifestOffset, codec: codec)
        if !problems.isEmpty {
            let shown = problems.prefix(3).joined(separator: "; ")
            throw ToolError(.archiveCorrupt, "\(path): the manifest does not describe the file: \(shown)\(problems.count > 3 ? " (and \(problems.count - 3) more)" : ""); the archive is corrupt",
                            fix: Self.corruptFix)
        }
    }

    static let corruptFix = "Do not restore it; use an older archive (rack-gateway-db list)."

    /// `stored` itself, or for an `.age` name its plaintext through the identities.
    private static func decrypting(_ stored: StoreReader, archive: ArchiveLocation) throws -> StoreReader {
        let path = archive.path
        guard ArchiveName.isEncrypted(archive.name) else { return stored }
        guard !archive.keys.identities.isEmpty else {
            throw ToolError(.usage, "\(path) is encrypted (age) and no identity was given",
                            fix: "Give --identity FILE (or RGW_AGE_IDENTITY_FILE) with the age secret key of one of its recipients.")
        }
        do {
            return try AgeDecryptingReader(stored, identities: archive.keys.identities)
        } catch AgeError.noMatchingIdentity {
            throw ToolError(.identityMismatch, "\(path): \(AgeError.noMatchingIdentity)",
                            fix: "Give the identity file of a key it was encrypted to (rack-gateway-db rekey adds recipients).")
        } catch AgeError.badChunk(let index) {
            // Opening checks only the final chunk.
            throw ToolError(.archiveCorrupt, "\(path): the encrypted file's last chunk (\(index)) fails authentication: it is truncated or its end is altered",
                            fix: "Do not restore it; use an older archive (rack-gateway-db list).")
        } catch let error as AgeError {
            throw ToolError(.archiveCorrupt, "\(path): \(error); the archive is corrupt", fix: "Do not restore it; use an older archive (rack-gateway-db list).")
        }
    }

    /// An encrypted chunk that fails to open, named by the member it holds.
    private func explain(_ error: Error) -> Error {
        guard case AgeError.badChunk(let index)? = error as? AgeError else { return error }
        let plaintextOffset = index * AgePayload.chunkSize
        let member = manifest.members.first { $0.offset <= plaintextOffset && plaintextOffset < $0.offset + $0.length }
            ?? manifest.members.first { $0.offset >= plaintextOffset }
        let what = member.map { ArchiveVerifier.describe($0, in: manifest) } ?? "the manifest"
        return ToolError(.archiveCorrupt, "\(path): \(what): encrypted chunk \(index) fails authentication (altered, truncated or out of place); the archive is corrupt",
                         fix: "Do not restore it; use an older archive (rack-gateway-db list).")
    }

    /// The stored object's SHA-256 (what the `.sha256` sidecar records), in one read of it.
    public func storedSHA256() throws -> String {
        if let verifiedStoredSHA256 { return verifiedStoredSHA256 }
        return try StoredDigests(stored, blake2b: false).sha256
    }

    /// For the check before a load (`ArchiveVerifier.preflight`): a reader of a remote store whose
    /// object was not spooled for a signature downloads it now, once, into a spool
    /// (`SpooledObject`, hashing it on the way), and reads only the spool from then on. The SHA-256
    /// checked against the sidecar and the load are then of one download (the archive is fetched
    /// once, with or without a verify key), and what is loaded is what was hashed. The spool must
    /// end with the manifest and trailer read at opening (else the object was replaced meanwhile).
    /// When the spool cannot be made in $TMPDIR (no room, not there, not writable, or it fills up
    /// during the download), nothing changes: the SHA-256 is a pass of its own and the load reads
    /// the store again; the returned text says why, for a warning. Without a key the spool is a
    /// saving, not a need, so this holds for `--latest` as for a named archive.
    /// Call it before any other thread reads the archive.
    func spoolForLoad() throws -> String? {
        guard isRemote, verifiedStoredSHA256 == nil else { return nil }
        let directory = SpooledObject.directory
        let size = stored.size
        let twice = "so \(path) is fetched twice: once for its SHA-256, once to load it (set TMPDIR to a directory with room for it to fetch it once)"
        guard let free = SpooledObject.freeSpace(in: directory), free >= size else {
            let room = SpooledObject.freeSpace(in: directory).map { "has \($0) bytes free of the \(size) a local copy needs" } ?? "cannot be used"
            return "\(directory) (TMPDIR) \(room), \(twice)"
        }
        let spool: SpooledObject
        do {
            spool = try SpooledObject(stored, blake2b: false, directory: directory)
        } catch let error as ToolError where error.cause is SpooledObject.HostProblem {
            return "\(error.message); \(twice)"
        }
        let plaintext = try Self.decrypting(spool, archive: archive)
        let manifestEnd = plaintext.size - trailer.manifestOffset
        guard plaintext.size == object.size, manifestEnd > 0,
              Self.sha256(try plaintext.read(offset: trailer.manifestOffset, count: manifestEnd)) == endSHA256 else {
            throw ToolError(.failed, "\(path) changed while it was read: the copy downloaded to check and load it does not end with the manifest and trailer read when it was opened",
                            fix: "Run again; if a backup or copy is writing \(archive.name), wait for it to finish.")
        }
        (stored, object, verifiedStoredSHA256) = (spool, plaintext, spool.digests.sha256)
        return nil
    }

    /// The SHA-256 (hex) of `parts` one after the other.
    private static func sha256(_ parts: ArraySlice<UInt8>...) -> String {
        let sha = SHA256()
        for part in parts { part.withUnsafeBytes { sha.update($0) } }
        return SHA256.hex(sha.finalize())
    }

    private static func sha256(_ bytes: [UInt8]) -> String { sha256(bytes[...]) }

    /// The `.minisig` was checked against --verify-key when the archive was opened (a reader opened
    /// with a key has checked it: one that failed never opened).
    public var signatureChecked: Bool { archive.keys.verifyKey != nil }
    /// Whether a `.minisig` lies beside the archive (not whether it verifies).
    public var hasSignature: Bool { ((try? archive.store.size(ArchiveName.signature(of: archive.name))) ?? nil) != nil }

    /// Whether reads go over the network (and are worth streaming ahead).
    public var isRemote: Bool { archive.localPath == nil }

    /// Each of `members` (in file order) whole, in one streaming read over the range they span;
    /// bytes between them are skipped. `body` returns false to stop early.
    public func forEachMember(_ members: [ArchiveManifest.Member], _ body: @escaping (ArchiveManifest.Member, [UInt8]) throws -> Bool) throws {
        guard let first = members.first, let last = members.last else { return }
        var index = 0
        var position = first.offset
        var current: [UInt8] = []
        current.reserveCapacity(first.length)
        var failure: Error?
        try stream(offset: first.offset, count: last.offset + last.length - first.offset) { bytes in
            var rest = bytes[...]
            while !rest.isEmpty && index < members.count {
                let gap = members[index].offset - position
                if gap > 0 {
                    let skip = min(gap, rest.count)
                    rest = rest.dropFirst(skip)
                    position += skip
                    continue
                }
                let take = min(rest.count, members[index].length - current.count)
                current.append(contentsOf: UnsafeRawBufferPointer(rebasing: rest.prefix(take)))
                rest = rest.dropFirst(take)
                position += take
                if current.count == members[index].length {
                    do {
                        guard try body(members[index], current) else { return false }
                    } catch {
                        failure = error
                        return false
                    }
                    index += 1
                    current = []
                    if index < members.count { current.reserveCapacity(members[index].length) }
                }
            }
            return true
        }
        if let failure { throw failure }
    }

    /// Bytes `offset..<offset+count` into `sink` as they come (one streaming read from a store).
    public func stream(offset: Int, count: Int, sink: @escaping (UnsafeRawBufferPointer) -> Bool) throws {
        do { try object.stream(offset: offset, count: count, sink: sink) } catch { throw explain(error) }
    }

    public func readBytes(offset: Int, count: Int) throws -> [UInt8] {
        do { return try object.read(offset: offset, count: count) } catch { throw explain(error) }
    }

    /// The same into a buffer the caller reuses (its count becomes `count`).
    public func readBytes(offset: Int, count: Int, into buffer: inout [UInt8]) throws {
        do { try object.read(offset: offset, count: count, into: &buffer) } catch { throw explain(error) }
    }

    /// The digest the `.sha256` sidecar records, or nil when there is none.
    public func sidecarDigest() -> String? { archive.sidecarDigest() }

    /// No trailer: tell an unfinished backup, a foreign file and a truncated or damaged archive apart.
    /// A file of ours (named like an archive or with its sidecars, `ArchiveLocation.ownership`) is a
    /// damaged archive, never a foreign one.
    static func explainMissingTrailer(head: [UInt8], path: String, fileSize: Int, remote: Bool, archive: ArchiveLocation? = nil) -> ToolError {
        if path.hasSuffix(".partial") {
            return ToolError(.failed, "\(path) is an unfinished backup (.partial): a backup is writing it or was interrupted; it is not an archive",
                             fix: "Wait for the running backup, or delete the file if none runs.")
        }
        // pg_dump files are restored from disk only (psql and pg_restore read files).
        let remoteFix = remote ? "If it is a pg_dump file, copy it down first (aws s3 cp) and restore the local file." : nil
        if head.starts(with: Array(AgeHeader.versionLine.utf8)) {
            return ToolError(.failed, "\(path) is an age-encrypted file whose name does not end in .age",
                             fix: "Rename it to end in .age (as backup named it) and give --identity FILE.")
        }
        let codec = MemberCodec.detect(head[...])
        let text = codec == nil ? [] : decompressedPrefix(of: head[...], limit: 200)
        if String(decoding: text, as: UTF8.self).hasPrefix(ArchiveHeader.firstLinePrefix) {
            return ToolError(.mismatch, "\(path) is a rack-gateway-db archive without its trailer: it is truncated or its end is damaged (\(fileSize) bytes)",
                             fix: "Do not restore it; use an older archive (rack-gateway-db list).")
        }
        if let archive, let ownership = archive.ownership {
            let start = codec.map { "a \($0) file whose start is not an archive's header" } ?? "not even a gzip or zstd file"
            return archive.damaged("it has no archive trailer and is \(start) (\(fileSize) bytes)", because: ownership)
        }
        guard let codec else {
            return ToolError(.failed, "\(path) is not a rack-gateway-db archive (not a gzip or zstd file)", fix: remoteFix)
        }
        return ToolError(.failed, "\(path) is a \(codec) file but not a rack-gateway-db archive (a foreign \(ArchiveName.suffix(for: codec))?)",
                         fix: remoteFix ?? "Restore a plain pg_dump file with: \(codec.stockDecompress) FILE | psql -v ON_ERROR_STOP=1")
    }
}
