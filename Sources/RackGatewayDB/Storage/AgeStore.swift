import Foundation
import RGWCompression
import RGWCrypto

/// Hashes what goes into the store as it goes: SHA-256 for the `.sha256` sidecar, BLAKE2b-512 for
/// a minisign signature. Always the bytes of the stored object (the ciphertext of an encrypted
/// archive), so `sha256sum -c` and `minisign -V` check the file as it lies.
final class HashingStoreWriter: StoreWriter, @unchecked Sendable {
    let base: StoreWriter
    let sha256 = SHA256()
    let blake2b: BLAKE2b512?
    private(set) var count = 0

    init(_ base: StoreWriter, blake2b: Bool) {
        self.base = base
        self.blake2b = blake2b ? BLAKE2b512() : nil
    }

    func append(_ bytes: ArraySlice<UInt8>) throws {
        try base.append(bytes)
        count += bytes.count
        sha256.update(bytes)
        blake2b?.update(bytes)
    }

    func publish() throws { try base.publish() }
    func discard() { base.discard() }

    /// After `publish`: the `.sha256` sidecar, the `.summary.json` of an encrypted archive and the
    /// `.minisig` when there is a signing key (its timestamp from `clock`). Returns the stored file's SHA-256.
    func putSidecars(store: ArchiveStore, name: String, manifest: ArchiveManifest, keys: BackupKeys, clock: RunClock) throws -> String {
        let digest = SHA256.hex(sha256.finalize())
        try store.put(ArchiveName.sidecar(of: name), ArchiveName.sidecarText(digest: digest, archive: name))
        if keys.encrypts {
            try store.put(ArchiveName.summary(of: name), try ArchiveSummary(manifest: manifest, archive: name).json())
        }
        if let signKey = keys.signKey, let blake2b {
            try store.put(ArchiveName.signature(of: name), try ArchiveSignature.sign(hash: blake2b.finalize(), name: name, key: signKey, date: clock.now()))
        }
        return digest
    }
}

/// The digests of a stored object as `HashingStoreWriter` computes them while writing, in one read
/// of it: SHA-256 (hex), and BLAKE2b-512 when asked (a signature check).
struct StoredDigests {
    var sha256: String
    var blake2b: [UInt8]?

    init(_ object: StoreReader, blake2b wantBlake2b: Bool) throws {
        let hashes = Hashes(blake2b: wantBlake2b)
        try object.stream(offset: 0, count: object.size) { bytes in
            hashes.update(bytes)
            return true
        }
        self = hashes.finalize()
    }

    /// The running hashes, for a reader that also does something else with the bytes (a spool).
    final class Hashes {
        let sha = SHA256()
        let blake: BLAKE2b512?
        init(blake2b: Bool) { blake = blake2b ? BLAKE2b512() : nil }
        func update(_ bytes: UnsafeRawBufferPointer) {
            sha.update(bytes)
            blake?.update(bytes)
        }
        func finalize() -> StoredDigests { StoredDigests(sha256: SHA256.hex(sha.finalize()), blake2b: blake?.finalize()) }
    }

    init(sha256: String, blake2b: [UInt8]?) {
        self.sha256 = sha256
        self.blake2b = blake2b
    }
}

/// Encrypts what is appended into an age file for `recipients`: the header and nonce first, then
/// 64 KiB chunks as they fill; the last chunk (marked final) when the archive is published. The
/// plaintext is exactly the archive a plain backup writes.
final class AgeEncryptingWriter: StoreWriter, @unchecked Sendable {
    private let base: StoreWriter
    private let sealer: AgeSealer
    private var pending: [UInt8] = []
    private var sealed: [UInt8] = []

    init(_ base: StoreWriter, recipients: [AgeRecipient]) throws {
        self.base = base
        sealer = try AgeSealer(recipients: recipients)
        pending.reserveCapacity(AgePayload.chunkSize)
        sealed.reserveCapacity(1 << 20)
        try base.append(sealer.prefix[...])
    }

    private func seal(_ plaintext: UnsafeRawBufferPointer, final: Bool) throws {
        try sealer.seal(plaintext, final: final, into: &sealed)
    }

    private func flush() throws {
        try base.append(sealed[...])
        sealed.removeAll(keepingCapacity: true)
    }

    func append(_ bytes: ArraySlice<UInt8>) throws {
        try bytes.withUnsafeBytes { raw in
            var rest = raw[...]
            // A chunk is sealed only once more bytes follow it: the last one must be marked final.
            while !rest.isEmpty {
                if pending.count == AgePayload.chunkSize {
                    try pending.withUnsafeBytes { try seal($0, final: false) }
                    pending.removeAll(keepingCapacity: true)
                }
                if pending.isEmpty && rest.count > AgePayload.chunkSize {
                    try seal(UnsafeRawBufferPointer(rebasing: rest.prefix(AgePayload.chunkSize)), final: false)
                    rest = rest.dropFirst(AgePayload.chunkSize)
                    continue
                }
                let take = min(AgePayload.chunkSize - pending.count, rest.count)
                pending.append(contentsOf: UnsafeRawBufferPointer(rebasing: rest.prefix(take)).bindMemory(to: UInt8.self))
                rest = rest.dropFirst(take)
            }
        }
        if sealed.count >= 1 << 20 { try flush() }
    }

    func publish() throws {
        try pending.withUnsafeBytes { try seal($0, final: true) }
        pending.removeAll()
        try flush()
        try base.publish()
    }

    func discard() { base.discard() }
}

/// An age file in a store read as its plaintext, by ranges: `AgeOpener` parses the header,
/// unwraps the file key and authenticates the final chunk at open (a truncated file is refused
/// before anything else); each read decrypts only the 64 KiB chunks its range touches. Safe for
/// concurrent reads (each read has its own cipher context). A chunk that fails throws
/// `AgeError.badChunk`, which `ArchiveReader` names by the member it holds.
final class AgeDecryptingReader: StoreReader, @unchecked Sendable {
    let base: StoreReader
    let opener: AgeOpener
    var size: Int { opener.plaintextSize }
    var location: String { base.location }

    init(_ base: StoreReader, identities: [AgeIdentity]) throws {
        self.base = base
        opener = try AgeOpener(identities: identities, fileSize: base.size) { try base.read(offset: $0, count: $1) }
    }

    /// The chunks holding `offset..<offset+count` and where they lie in the file; a range past the
    /// plaintext's end is a truncation.
    private func span(offset: Int, count: Int) throws -> (chunks: ClosedRange<Int>, sealed: Range<Int>) {
        guard offset >= 0, offset + count <= size else {
            throw ToolError(.archiveCorrupt, "\(location): a read of bytes \(offset)..<\(offset + count) past the end of its \(size) bytes of plaintext; the archive is truncated")
        }
        let chunks = opener.chunks(covering: offset, count: count)
        return (chunks, opener.sealedRange(chunks))
    }

    func read(offset: Int, count: Int, into buffer: inout [UInt8]) throws {
        buffer.removeAll(keepingCapacity: true)
        guard count > 0 else { return }
        let (chunks, range) = try span(offset: offset, count: count)
        if offset >= opener.tailStart {
            // The trailer and the manifest: opened already.
            buffer.append(contentsOf: opener.tail[(offset - opener.tailStart)..<(offset - opener.tailStart + count)])
            return
        }
        let cipher = try opener.cipher()
        var plain: [UInt8] = []
        plain.reserveCapacity(chunks.count * AgePayload.chunkSize)
        try base.read(offset: range.lowerBound, count: range.count).withUnsafeBytes { raw in
            for index in chunks {
                let from = (index - chunks.lowerBound) * AgePayload.sealedChunkSize
                try opener.open(index, UnsafeRawBufferPointer(rebasing: raw[from..<min(raw.count, from + AgePayload.sealedChunkSize)]), cipher: cipher, into: &plain)
            }
        }
        let skip = offset - chunks.lowerBound * AgePayload.chunkSize
        buffer.append(contentsOf: plain[skip..<(skip + count)])
    }

    func stream(offset: Int, count: Int, sink: @escaping (UnsafeRawBufferPointer) -> Bool) throws {
        guard count > 0 else { return }
        let (chunks, range) = try span(offset: offset, count: count)
        if offset >= opener.tailStart {
            let from = offset - opener.tailStart
            _ = opener.tail.withUnsafeBytes { sink(UnsafeRawBufferPointer(rebasing: $0[from..<(from + count)])) }
            return
        }
        let cipher = try opener.cipher()
        var index = chunks.lowerBound
        var piece: [UInt8] = []
        piece.reserveCapacity(AgePayload.sealedChunkSize)
        var plain: [UInt8] = []
        plain.reserveCapacity(AgePayload.chunkSize)
        var position = chunks.lowerBound * AgePayload.chunkSize
        var failure: Error?
        var stopped = false
        // Plaintext of one chunk out to the sink, clipped to the range asked for.
        func deliver() -> Bool {
            plain.removeAll(keepingCapacity: true)
            do {
                try piece.withUnsafeBytes { try opener.open(index, $0, cipher: cipher, into: &plain) }
            } catch {
                failure = error
                return false
            }
            piece.removeAll(keepingCapacity: true)
            let chunkStart = position
            position += plain.count
            index += 1
            let from = max(offset, chunkStart), to = min(offset + count, position)
            guard from < to else { return true }
            let keep = plain.withUnsafeBytes { sink(UnsafeRawBufferPointer(rebasing: $0[(from - chunkStart)..<(to - chunkStart)])) }
            if !keep { stopped = true }
            return keep
        }
        try base.stream(offset: range.lowerBound, count: range.count) { bytes in
            var rest = bytes[...]
            while !rest.isEmpty {
                let take = min(AgePayload.sealedChunkSize - piece.count, rest.count)
                piece.append(contentsOf: UnsafeRawBufferPointer(rebasing: rest.prefix(take)).bindMemory(to: UInt8.self))
                rest = rest.dropFirst(take)
                if piece.count == AgePayload.sealedChunkSize, !deliver() { return false }
            }
            return true
        }
        if let failure { throw failure }
        if !stopped, !piece.isEmpty, !deliver(), let failure { throw failure }
    }
}
