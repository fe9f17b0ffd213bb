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
    /// `.minisig` when there is a signing key. Returns the stored file's SHA-256.
    func putSidecars(store: ArchiveStore, name: String, manifest: ArchiveManifest, keys: BackupKeys) throws -> String {
        let digest = SHA256.hex(sha256.finalize())
        try store.put(ArchiveName.sidecar(of: name), ArchiveName.sidecarText(digest: digest, archive: name))
        if keys.encrypts {
            try store.put(ArchiveName.summary(of: name), try ArchiveSummary(manifest: manifest, archive: name).json())
        }
        if let signKey = keys.signKey, let blake2b {
            try store.put(ArchiveName.signature(of: name), try ArchiveSignature.sign(hash: blake2b.finalize(), name: name, key: signKey))
        }
        return digest
    }
}

/// Encrypts what is appended into an age file for `recipients`: the header and nonce first, then
/// 64 KiB chunks as they fill; the last chunk (marked final) when the archive is published. The
/// plaintext is exactly the archive a plain backup writes.
final class AgeEncryptingWriter: StoreWriter, @unchecked Sendable {
    private let base: StoreWriter
    private let cipher: ChaChaPoly
    private var pending: [UInt8] = []
    private var sealed: [UInt8] = []
    private var chunkIndex = 0

    init(_ base: StoreWriter, recipients: [AgeRecipient]) throws {
        self.base = base
        var fileKey = Random.bytes(16)
        defer { wipe(&fileKey) }
        let nonce = Random.bytes(AgePayload.nonceLength)
        cipher = try AgePayload(fileKey: fileKey, nonce: nonce).cipher()
        pending.reserveCapacity(AgePayload.chunkSize)
        sealed.reserveCapacity(1 << 20)
        try base.append((try AgeHeader.make(fileKey: fileKey, recipients: recipients).bytes + nonce)[...])
    }

    private func seal(_ plaintext: UnsafeRawBufferPointer, final: Bool) throws {
        try cipher.seal(nonce: AgePayload.chunkNonce(chunkIndex, final: final), plaintext, into: &sealed)
        chunkIndex += 1
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

/// An age file in a store read as its plaintext, by ranges: the header is parsed and the file key
/// unwrapped once, the final chunk authenticated at open (a truncated file is refused before
/// anything else), and each read decrypts only the 64 KiB chunks its range touches. Safe for
/// concurrent reads (each read has its own cipher context).
final class AgeDecryptingReader: StoreReader, @unchecked Sendable {
    let base: StoreReader
    let payload: AgePayload
    /// Where the first sealed chunk starts in the stored object.
    let payloadStart: Int
    let chunks: Int
    let size: Int
    var location: String { base.location }

    /// A chunk that does not open: its index and the plaintext range it holds.
    struct ChunkFailure: Error {
        var index: Int
        var plaintextOffset: Int
    }

    init(_ base: StoreReader, identities: [AgeIdentity]) throws {
        self.base = base
        let header = try Self.header(of: base)
        var fileKey = try header.fileKey(identities: identities)
        defer { wipe(&fileKey) }
        guard base.size >= header.length + AgePayload.nonceLength else { throw AgeError.badPayloadLength(0) }
        let nonce = try base.read(offset: header.length, count: AgePayload.nonceLength)
        payload = try AgePayload(fileKey: fileKey, nonce: nonce)
        payloadStart = header.length + AgePayload.nonceLength
        guard let layout = AgePayload.layout(payloadLength: base.size - payloadStart) else { throw AgeError.badPayloadLength(base.size - payloadStart) }
        chunks = layout.chunks
        size = layout.plaintext
        // The final chunk first: a file cut at a chunk boundary ends in a chunk not marked final.
        var scratch: [UInt8] = []
        try openChunks(chunks - 1, chunks - 1, cipher: try payload.cipher(), into: &scratch)
    }

    /// The age header at the start of `base`, read in growing pieces (it is usually under 300 bytes).
    static func header(of base: StoreReader) throws -> AgeHeader {
        var prefix = try base.read(offset: 0, count: min(base.size, 4096))
        while true {
            do {
                return try AgeHeader.parse(prefix)
            } catch AgeError.malformedHeader("incomplete") where prefix.count < base.size && prefix.count < 1 << 20 {
                prefix = try base.read(offset: 0, count: min(base.size, prefix.count * 4))
            }
        }
    }

    /// Decrypt chunks `first...last` (read in one piece) and append their plaintext to `output`.
    private func openChunks(_ first: Int, _ last: Int, cipher: ChaChaPoly, into output: inout [UInt8]) throws {
        let start = payloadStart + first * AgePayload.sealedChunkSize
        let end = min(base.size, payloadStart + (last + 1) * AgePayload.sealedChunkSize)
        let sealed = try base.read(offset: start, count: end - start)
        try sealed.withUnsafeBytes { raw in
            for index in first...last {
                let from = (index - first) * AgePayload.sealedChunkSize
                let piece = UnsafeRawBufferPointer(rebasing: raw[from..<min(raw.count, from + AgePayload.sealedChunkSize)])
                try open(index, piece, cipher: cipher, into: &output)
            }
        }
    }

    private func open(_ index: Int, _ piece: UnsafeRawBufferPointer, cipher: ChaChaPoly, into output: inout [UInt8]) throws {
        do {
            try cipher.open(nonce: AgePayload.chunkNonce(index, final: index == chunks - 1), piece, into: &output)
        } catch {
            throw ChunkFailure(index: index, plaintextOffset: index * AgePayload.chunkSize)
        }
    }

    func read(offset: Int, count: Int, into buffer: inout [UInt8]) throws {
        buffer.removeAll(keepingCapacity: true)
        guard count > 0 else { return }
        guard offset >= 0, offset + count <= size else {
            throw ToolError(.archiveCorrupt, "\(location): a read of bytes \(offset)..<\(offset + count) past the end of its \(size) bytes of plaintext; the archive is truncated")
        }
        let first = offset / AgePayload.chunkSize, last = (offset + count - 1) / AgePayload.chunkSize
        var plain: [UInt8] = []
        plain.reserveCapacity((last - first + 1) * AgePayload.chunkSize)
        try openChunks(first, last, cipher: try payload.cipher(), into: &plain)
        let skip = offset - first * AgePayload.chunkSize
        buffer.append(contentsOf: plain[skip..<(skip + count)])
    }

    func stream(offset: Int, count: Int, sink: @escaping (UnsafeRawBufferPointer) -> Bool) throws {
        guard count > 0 else { return }
        guard offset >= 0, offset + count <= size else {
            throw ToolError(.archiveCorrupt, "\(location): a read past the end of its plaintext; the archive is truncated")
        }
        let first = offset / AgePayload.chunkSize, last = (offset + count - 1) / AgePayload.chunkSize
        let start = payloadStart + first * AgePayload.sealedChunkSize
        let end = min(base.size, payloadStart + (last + 1) * AgePayload.sealedChunkSize)
        let cipher = try payload.cipher()
        var index = first
        var piece: [UInt8] = []
        piece.reserveCapacity(AgePayload.sealedChunkSize)
        var plain: [UInt8] = []
        plain.reserveCapacity(AgePayload.chunkSize)
        var position = first * AgePayload.chunkSize
        var failure: Error?
        var stopped = false
        // Plaintext of one chunk out to the sink, clipped to the range asked for.
        func deliver() -> Bool {
            plain.removeAll(keepingCapacity: true)
            do {
                try piece.withUnsafeBytes { try open(index, $0, cipher: cipher, into: &plain) }
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
        try base.stream(offset: start, count: end - start) { bytes in
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
