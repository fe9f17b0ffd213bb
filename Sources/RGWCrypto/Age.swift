import Foundation

/// The age file format, version 1 (C2SP age specification), X25519 recipients only: the header
/// (version line, recipient stanzas, HMAC), the 16-byte payload nonce, and the STREAM payload of
/// 64 KiB chunks sealed with ChaCha20-Poly1305. The payload key and chunk layout are exposed so that a
/// reader may decrypt any chunk on its own (random access).
public enum AgeError: Error, Equatable, Sendable, CustomStringConvertible {
    case malformedHeader(String)
    case noMatchingIdentity
    case headerMACMismatch
    /// A payload chunk failed to open: altered, truncated, reordered or under another key.
    case badChunk(index: Int)
    /// The payload's length is impossible for a STREAM of 64 KiB chunks.
    case badPayloadLength(Int)
    case badKey(String)

    public var description: String {
        switch self {
        case .malformedHeader(let why): "the age header is malformed (\(why))"
        case .noMatchingIdentity: "no identity given matches any of the file's recipients"
        case .headerMACMismatch: "the age header's MAC does not match (the header was altered)"
        case .badChunk(let index): "encrypted chunk \(index) fails authentication (altered, truncated or out of place)"
        case .badPayloadLength(let length): "the encrypted payload's length (\(length) bytes) is not that of a complete age stream (truncated)"
        case .badKey(let why): why
        }
    }
}

/// An X25519 recipient, `age1...`.
public struct AgeRecipient: Sendable, Equatable {
    public let publicKey: [UInt8]

    public init(publicKey: [UInt8]) { self.publicKey = publicKey }

    public init(_ text: String) throws {
        guard text == text.lowercased(), let (hrp, data) = Bech32.decode(text), hrp == "age", data.count == 32 else {
            throw AgeError.badKey("not an age X25519 recipient (age1... from age-keygen)")
        }
        publicKey = data
    }

    public var string: String { Bech32.encode(hrp: "age", data: publicKey) }

    /// Recipients in a file as `age -R` reads it: one per line, `#` comments and empty lines skipped.
    public static func parseFile(_ text: String) throws -> [AgeRecipient] {
        try text.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { !$0.isEmpty && !$0.hasPrefix("#") }.map { try AgeRecipient($0) }
    }
}

/// An X25519 identity, `AGE-SECRET-KEY-1...`.
public struct AgeIdentity: Sendable {
    let secret: [UInt8]
    public let recipient: AgeRecipient

    public init(secret: [UInt8]) throws {
        self.secret = secret
        recipient = AgeRecipient(publicKey: try X25519.publicKey(secret: secret))
    }

    public init(_ text: String) throws {
        guard text == text.uppercased(), let (hrp, data) = Bech32.decode(text), hrp == "age-secret-key-", data.count == 32 else {
            throw AgeError.badKey("not an age X25519 identity (AGE-SECRET-KEY-1... from age-keygen)")
        }
        try self.init(secret: data)
    }

    public static func generate() throws -> AgeIdentity { try AgeIdentity(secret: Random.bytes(32)) }

    public var string: String { Bech32.encode(hrp: "age-secret-key-", data: secret).uppercased() }

    /// An identity file as age-keygen writes it: identities one per line, `#` comments skipped.
    public static func parseFile(_ text: String) throws -> [AgeIdentity] {
        let identities = try text.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { !$0.isEmpty && !$0.hasPrefix("#") }.map { try AgeIdentity($0) }
        guard !identities.isEmpty else { throw AgeError.badKey("no identity in the file") }
        return identities
    }
}

/// One recipient stanza of the header.
public struct AgeStanza: Sendable, Equatable {
    public var type: String
    public var arguments: [String]
    public var body: [UInt8]

    func encoded() -> [UInt8] {
        var text = "-> " + ([type] + arguments).joined(separator: " ") + "\n"
        let body = Base64.encodeUnpadded(body)
        var index = body.startIndex
        // Lines of 64 columns; the last one shorter (empty when the body fills its lines).
        while true {
            let end = body.index(index, offsetBy: 64, limitedBy: body.endIndex) ?? body.endIndex
            text += body[index..<end] + "\n"
            if body.distance(from: index, to: end) < 64 { break }
            index = end
        }
        return Array(text.utf8)
    }
}

public struct AgeHeader: Sendable {
    public static let versionLine = "age-encryption.org/v1"
    static let x25519Label = Array("age-encryption.org/v1/X25519".utf8)
    public var stanzas: [AgeStanza]
    public var mac: [UInt8]
    /// The header's length in the file, through the MAC line's newline; the payload nonce follows.
    public var length: Int
    /// The bytes the MAC covers (from the version line through `---`).
    var macInput: [UInt8]

    /// A new header wrapping `fileKey` for `recipients`.
    public static func make(fileKey: [UInt8], recipients: [AgeRecipient]) throws -> AgeHeader {
        precondition(fileKey.count == 16 && !recipients.isEmpty)
        var stanzas: [AgeStanza] = []
        for recipient in recipients {
            var ephemeral = Random.bytes(32)
            defer { wipe(&ephemeral) }
            let share = try X25519.publicKey(secret: ephemeral)
            let shared = try X25519.sharedSecret(secret: ephemeral, peer: recipient.publicKey)
            let wrapKey = try HKDF.sha256(key: shared, salt: share + recipient.publicKey, info: x25519Label, count: 32)
            let body = try ChaChaPoly(key: wrapKey).seal(nonce: [UInt8](repeating: 0, count: 12), fileKey)
            stanzas.append(AgeStanza(type: "X25519", arguments: [Base64.encodeUnpadded(share)], body: body))
        }
        var input = Array((versionLine + "\n").utf8)
        for stanza in stanzas { input += stanza.encoded() }
        input += Array("---".utf8)
        let mac = HMAC.sha256(key: try macKey(fileKey), message: input)
        let length = input.count + 1 + Base64.encodeUnpadded(mac).utf8.count + 1
        return AgeHeader(stanzas: stanzas, mac: mac, length: length, macInput: input)
    }

    /// The header as it goes into the file.
    public var bytes: [UInt8] { macInput + Array((" " + Base64.encodeUnpadded(mac) + "\n").utf8) }

    static func macKey(_ fileKey: [UInt8]) throws -> [UInt8] {
        try HKDF.sha256(key: fileKey, salt: [], info: Array("header".utf8), count: 32)
    }

    /// The header at the start of `bytes`; `.malformedHeader` when it is not a complete, canonical
    /// one (`bytes` may need to be longer: a caller reading a prefix retries with more when the
    /// reason is `incomplete`).
    public static func parse(_ bytes: [UInt8]) throws -> AgeHeader {
        var position = 0
        func line() throws -> Substring {
            guard let newline = bytes[position...].firstIndex(of: 10) else { throw AgeError.malformedHeader("incomplete") }
            let text = bytes[position..<newline]
            guard text.allSatisfy({ $0 >= 32 && $0 <= 126 }) else { throw AgeError.malformedHeader("a line holds characters outside printable ASCII") }
            position = newline + 1
            return Substring(String(decoding: text, as: UTF8.self))
        }
        guard try line() == Substring(versionLine) else { throw AgeError.malformedHeader("not an age v1 file") }
        var stanzas: [AgeStanza] = []
        while true {
            let start = position
            let next = try line()
            if next.hasPrefix("--- ") || next == "---" {
                guard next.hasPrefix("--- "), let mac = Base64.decodeUnpadded(next.dropFirst(4)), mac.count == 32 else {
                    throw AgeError.malformedHeader("the MAC line is not 32 bytes of canonical base64")
                }
                guard !stanzas.isEmpty else { throw AgeError.malformedHeader("no recipient stanza") }
                return AgeHeader(stanzas: stanzas, mac: mac, length: position, macInput: Array(bytes[..<(start + 3)]))
            }
            guard next.hasPrefix("-> ") else { throw AgeError.malformedHeader("a line that starts neither a stanza nor the MAC") }
            let words = next.dropFirst(3).split(separator: " ", omittingEmptySubsequences: false)
            guard let type = words.first, words.allSatisfy({ !$0.isEmpty }) else { throw AgeError.malformedHeader("an empty stanza argument") }
            var body: [UInt8] = []
            while true {
                let bodyLine = try line()
                guard bodyLine.count <= 64, let decoded = Base64.decodeUnpadded(bodyLine) else {
                    throw AgeError.malformedHeader("a stanza body line is not canonical base64 of at most 64 columns")
                }
                body += decoded
                if bodyLine.count < 64 { break }
            }
            stanzas.append(AgeStanza(type: String(type), arguments: words.dropFirst().map(String.init), body: body))
        }
    }

    /// The file key, unwrapped with the first identity that opens an X25519 stanza, the header's
    /// MAC checked with it.
    public func fileKey(identities: [AgeIdentity]) throws -> [UInt8] {
        for stanza in stanzas where stanza.type == "X25519" {
            guard stanza.arguments.count == 1, let share = Base64.decodeUnpadded(Substring(stanza.arguments[0])), share.count == 32 else {
                throw AgeError.malformedHeader("an X25519 stanza without one 32-byte share")
            }
            guard stanza.body.count == 32 else { throw AgeError.malformedHeader("an X25519 stanza body that is not 32 bytes") }
            for identity in identities {
                guard let shared = try? X25519.sharedSecret(secret: identity.secret, peer: share) else {
                    throw AgeError.malformedHeader("an X25519 share of low order")
                }
                let wrapKey = try HKDF.sha256(key: shared, salt: share + identity.recipient.publicKey, info: Self.x25519Label, count: 32)
                guard let fileKey = try? ChaChaPoly(key: wrapKey).open(nonce: [UInt8](repeating: 0, count: 12), stanza.body) else { continue }
                guard HMAC.equal(HMAC.sha256(key: try Self.macKey(fileKey), message: macInput), mac) else { throw AgeError.headerMACMismatch }
                return fileKey
            }
        }
        throw AgeError.noMatchingIdentity
    }

    /// The same file key for other recipients (rekey): a new header, the payload unchanged.
    public static func rewrap(fileKey: [UInt8], recipients: [AgeRecipient]) throws -> AgeHeader {
        try make(fileKey: fileKey, recipients: recipients)
    }
}

/// The STREAM payload: chunk layout and the payload key, for sealing in order or opening any chunk.
public struct AgePayload: Sendable {
    public static let chunkSize = 64 * 1024
    public static let sealedChunkSize = chunkSize + ChaChaPoly.tagLength
    public static let nonceLength = 16
    let key: [UInt8]

    /// `nonce`: the 16 random bytes after the header.
    public init(fileKey: [UInt8], nonce: [UInt8]) throws {
        key = try HKDF.sha256(key: fileKey, salt: nonce, info: Array("payload".utf8), count: 32)
    }

    public func cipher() throws -> ChaChaPoly { try ChaChaPoly(key: key) }

    /// The nonce of chunk `index`: an 11-byte big-endian counter and the last-chunk flag.
    public static func chunkNonce(_ index: Int, final: Bool) -> [UInt8] {
        var nonce = [UInt8](repeating: 0, count: 12)
        var counter = UInt64(index)
        for position in stride(from: 10, through: 3, by: -1) {
            nonce[position] = UInt8(counter & 0xff)
            counter >>= 8
        }
        nonce[11] = final ? 1 : 0
        return nonce
    }

    /// How many chunks a sealed payload of `length` bytes holds and how much plaintext; nil when no
    /// complete STREAM has that length (a final chunk that would be empty, or too short for a tag).
    public static func layout(payloadLength length: Int) -> (chunks: Int, plaintext: Int)? {
        guard length >= ChaChaPoly.tagLength else { return nil }
        let chunks = max(1, (length + sealedChunkSize - 1) / sealedChunkSize)
        let last = length - (chunks - 1) * sealedChunkSize
        guard last >= ChaChaPoly.tagLength, chunks == 1 || last > ChaChaPoly.tagLength else { return nil }
        return (chunks, length - chunks * ChaChaPoly.tagLength)
    }

    /// The sealed size of `plaintext` bytes.
    public static func sealedLength(plaintext: Int) -> Int {
        let chunks = max(1, (plaintext + chunkSize - 1) / chunkSize)
        return plaintext + chunks * ChaChaPoly.tagLength
    }
}

/// The sealing side of an age file: a fresh file key and nonce, the header for `recipients`, then
/// the payload's chunks in order. The one place that writes the STREAM (the archive writer and
/// `Age.encrypt` both use it).
public final class AgeSealer {
    /// The header and the payload nonce: the file's first bytes.
    public let prefix: [UInt8]
    private let cipher: ChaChaPoly
    private var index = 0

    public init(recipients: [AgeRecipient]) throws {
        var fileKey = Random.bytes(16)
        defer { wipe(&fileKey) }
        let nonce = Random.bytes(AgePayload.nonceLength)
        prefix = try AgeHeader.make(fileKey: fileKey, recipients: recipients).bytes + nonce
        cipher = try AgePayload(fileKey: fileKey, nonce: nonce).cipher()
    }

    /// The next chunk sealed and appended to `output`: a full 64 KiB one, or the last (`final`).
    public func seal(_ chunk: UnsafeRawBufferPointer, final: Bool, into output: inout [UInt8]) throws {
        precondition(chunk.count == AgePayload.chunkSize || (final && chunk.count < AgePayload.chunkSize))
        try cipher.seal(nonce: AgePayload.chunkNonce(index, final: final), chunk, into: &output)
        index += 1
    }
}

/// The opening side of an age file of `fileSize` bytes read through `read(offset, count)`: the
/// header parsed, the file key unwrapped and the MAC checked, the payload's layout derived, and the
/// final chunk authenticated (a file cut at a chunk boundary ends in a chunk not flagged last).
/// Then any chunk opens on its own: the one place that reads the STREAM (the archive reader and
/// `Age.decrypt` both use it).
public struct AgeOpener: Sendable {
    public let header: AgeHeader
    /// Where the first sealed chunk starts in the file.
    public let payloadStart: Int
    public let chunks: Int
    public let plaintextSize: Int
    let fileSize: Int
    let payload: AgePayload

    /// The header at the start of the file, read in growing pieces (it is usually under 300 bytes).
    public static func header(fileSize: Int, read: (Int, Int) throws -> [UInt8]) throws -> AgeHeader {
        try headerAndPrefix(fileSize: fileSize, read: read).header
    }

    /// The header and the bytes read to find it (which usually hold the payload's nonce too).
    static func headerAndPrefix(fileSize: Int, read: (Int, Int) throws -> [UInt8]) throws -> (header: AgeHeader, prefix: [UInt8]) {
        var prefix = try read(0, min(fileSize, 4096))
        while true {
            do {
                return (try AgeHeader.parse(prefix), prefix)
            } catch AgeError.malformedHeader("incomplete") where prefix.count < fileSize && prefix.count < 1 << 20 {
                prefix = try read(0, min(fileSize, prefix.count * 4))
            }
        }
    }

    /// The plaintext of the last chunks (at most `tailChunks`), opened at `init`: where an archive
    /// keeps its trailer and manifest, so that reading them costs no request of its own.
    public let tail: [UInt8]
    /// Where `tail` starts in the plaintext.
    public var tailStart: Int { plaintextSize - tail.count }
    static let tailChunks = 2

    public init(identities: [AgeIdentity], fileSize: Int, read: (Int, Int) throws -> [UInt8]) throws {
        let prefix: [UInt8]
        (header, prefix) = try Self.headerAndPrefix(fileSize: fileSize, read: read)
        var fileKey = try header.fileKey(identities: identities)
        defer { wipe(&fileKey) }
        guard fileSize >= header.length + AgePayload.nonceLength else { throw AgeError.badPayloadLength(0) }
        let nonceEnd = header.length + AgePayload.nonceLength
        payload = try AgePayload(fileKey: fileKey, nonce: prefix.count >= nonceEnd ? Array(prefix[header.length..<nonceEnd])
                                                                                    : try read(header.length, AgePayload.nonceLength))
        payloadStart = nonceEnd
        guard let layout = AgePayload.layout(payloadLength: fileSize - payloadStart) else { throw AgeError.badPayloadLength(fileSize - payloadStart) }
        (chunks, plaintextSize, self.fileSize) = (layout.chunks, layout.plaintext, fileSize)
        // The final chunk authenticated (a file cut at a chunk boundary fails here), with the one
        // before it, in one read: their plaintext is kept.
        let (count, first) = (layout.chunks, max(0, layout.chunks - Self.tailChunks))
        let start = nonceEnd + first * AgePayload.sealedChunkSize
        var plain: [UInt8] = []
        let cipher = try payload.cipher()
        try read(start, fileSize - start).withUnsafeBytes { raw in
            for index in first..<count {
                let from = (index - first) * AgePayload.sealedChunkSize
                try Self.open(index, final: index == count - 1, UnsafeRawBufferPointer(rebasing: raw[from..<min(raw.count, from + AgePayload.sealedChunkSize)]),
                              cipher: cipher, into: &plain)
            }
        }
        tail = plain
    }

    public func cipher() throws -> ChaChaPoly { try payload.cipher() }

    /// The chunks that hold plaintext bytes `offset..<offset+count` (`count` > 0).
    public func chunks(covering offset: Int, count: Int) -> ClosedRange<Int> {
        offset / AgePayload.chunkSize...(offset + count - 1) / AgePayload.chunkSize
    }

    /// Where `chunks` lie in the file.
    public func sealedRange(_ chunks: ClosedRange<Int>) -> Range<Int> {
        (payloadStart + chunks.lowerBound * AgePayload.sealedChunkSize)..<min(fileSize, payloadStart + (chunks.upperBound + 1) * AgePayload.sealedChunkSize)
    }

    /// Chunk `index` (its sealed bytes) opened and appended to `output`; `.badChunk(index)` when its
    /// tag fails (altered, truncated, out of place, or under another key).
    public func open(_ index: Int, _ sealed: UnsafeRawBufferPointer, cipher: ChaChaPoly, into output: inout [UInt8]) throws {
        try Self.open(index, final: index == chunks - 1, sealed, cipher: cipher, into: &output)
    }

    static func open(_ index: Int, final: Bool, _ sealed: UnsafeRawBufferPointer, cipher: ChaChaPoly, into output: inout [UInt8]) throws {
        do {
            try cipher.open(nonce: AgePayload.chunkNonce(index, final: final), sealed, into: &output)
        } catch {
            throw AgeError.badChunk(index: index)
        }
    }
}

/// Whole files in memory (small objects and tests; archives go through the streaming writer and
/// the random-access reader, over the same sealer and opener).
public enum Age {
    public static func encrypt(_ plaintext: [UInt8], to recipients: [AgeRecipient]) throws -> [UInt8] {
        let sealer = try AgeSealer(recipients: recipients)
        var out = sealer.prefix
        var position = 0
        repeat {
            let end = min(plaintext.count, position + AgePayload.chunkSize)
            try plaintext[position..<end].withUnsafeBytes { try sealer.seal($0, final: end == plaintext.count, into: &out) }
            position = end
        } while position < plaintext.count
        return out
    }

    public static func decrypt(_ file: [UInt8], identities: [AgeIdentity]) throws -> [UInt8] {
        let opener = try AgeOpener(identities: identities, fileSize: file.count) { offset, count in Array(file[offset..<min(file.count, offset + count)]) }
        let cipher = try opener.cipher()
        var out: [UInt8] = []
        out.reserveCapacity(opener.plaintextSize)
        for index in 0..<opener.chunks {
            try file[opener.sealedRange(index...index)].withUnsafeBytes { try opener.open(index, $0, cipher: cipher, into: &out) }
        }
        return out
    }
}
