import Foundation

/// minisign's formats (Ed25519 keys; prehashed signatures, `ED`: Ed25519 over BLAKE2b-512 of the
/// file), as minisign 0.11 writes and reads them.
public enum MinisignError: Error, Equatable, Sendable, CustomStringConvertible {
    case badKey(String)
    case badSignature(String)
    /// A signature that does not verify under the key: the file or the trusted comment was altered,
    /// or another key signed it.
    case verificationFailed
    case wrongKey(signedBy: String, expected: String)

    public var description: String {
        switch self {
        case .badKey(let why), .badSignature(let why): why
        case .verificationFailed: "the signature does not match the file (altered, or signed by another key with the same key id)"
        case .wrongKey(let signedBy, let expected): "signed by key \(signedBy), not by the key given (\(expected))"
        }
    }
}

public struct MinisignPublicKey: Sendable, Equatable {
    public let keyID: [UInt8]
    let key: [UInt8]

    public init(keyID: [UInt8], key: [UInt8]) {
        self.keyID = keyID
        self.key = key
    }

    /// The base64 line (`RWQ...`, as `minisign -P` takes it) or a public key file's text.
    public init(_ text: String) throws {
        let lines = text.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { !$0.isEmpty && !$0.hasPrefix("untrusted comment:") }
        guard lines.count == 1, let bytes = Base64.decodePadded(Substring(lines[0])), bytes.count == 42, bytes[0] == 0x45, bytes[1] == 0x64 else {
            throw MinisignError.badKey("not a minisign public key (the RWQ... line of minisign.pub)")
        }
        keyID = Array(bytes[2..<10])
        key = Array(bytes[10...])
    }

    /// The key id as minisign prints it: 16 upper-case hex digits of the little-endian number.
    public var keyIDText: String { Self.idText(keyID) }
    static func idText(_ id: [UInt8]) -> String { id.reversed().map { String(format: "%02X", $0) }.joined() }

    public var base64: String { Base64.encodePadded([0x45, 0x64] + keyID + key) }

    public var fileText: String { "untrusted comment: minisign public key \(keyIDText)\n\(base64)\n" }
}

public struct MinisignSecretKey: Sendable {
    public let publicKey: MinisignPublicKey
    let seed: [UInt8]

    /// A secret key file written by `minisign -G -W` (no password). A password-protected key is
    /// refused: a scheduled backup has no terminal to ask for it.
    public init(fileText text: String) throws {
        let lines = text.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { !$0.isEmpty && !$0.hasPrefix("untrusted comment:") }
        guard lines.count == 1, var bytes = Base64.decodePadded(Substring(lines[0])), bytes.count == 158 else {
            throw MinisignError.badKey("not a minisign secret key file")
        }
        defer { wipe(&bytes) }
        guard bytes[0] == 0x45, bytes[1] == 0x64 else { throw MinisignError.badKey("not an Ed25519 minisign secret key") }
        guard bytes[2] == 0, bytes[3] == 0 else {
            throw MinisignError.badKey("the minisign secret key is protected by a password, which a scheduled backup cannot type; make one without (minisign -G -W) and protect the file instead")
        }
        let keyID = Array(bytes[54..<62])
        let seed = Array(bytes[62..<94]), embeddedPublic = Array(bytes[94..<126])
        guard try Ed25519.publicKey(seed: seed) == embeddedPublic else { throw MinisignError.badKey("the minisign secret key is damaged (its halves do not match)") }
        self.seed = seed
        publicKey = MinisignPublicKey(keyID: keyID, key: embeddedPublic)
    }

    /// A new key (tests): the secret key file's text, unprotected, as `minisign -G -W` writes it.
    public static func generateFileText() throws -> String {
        var seed = Random.bytes(32)
        defer { wipe(&seed) }
        let keyID = Random.bytes(8)
        let publicKey = try Ed25519.publicKey(seed: seed)
        // The checksum (BLAKE2b-256 of algorithm, key id and key) is not checked by minisign when
        // signing; zeros here, this is a test key.
        var bytes: [UInt8] = [0x45, 0x64, 0, 0, 0x42, 0x32] + [UInt8](repeating: 0, count: 48) + keyID + seed + publicKey + [UInt8](repeating: 0, count: 32)
        defer { wipe(&bytes) }
        return "untrusted comment: minisign secret key\n\(Base64.encodePadded(bytes))\n"
    }

    /// The `.minisig` text for a file whose BLAKE2b-512 is `hash`.
    public func signature(hash: [UInt8], trustedComment: String, untrustedComment: String = "signature from rack-gateway-db") throws -> String {
        precondition(hash.count == 64 && !trustedComment.contains("\n"))
        let signature = try Ed25519.sign(seed: seed, message: hash)
        let global = try Ed25519.sign(seed: seed, message: signature + Array(trustedComment.utf8))
        return "untrusted comment: \(untrustedComment)\n\(Base64.encodePadded([0x45, 0x44] + publicKey.keyID + signature))\n"
            + "trusted comment: \(trustedComment)\n\(Base64.encodePadded(global))\n"
    }
}

/// A parsed `.minisig`.
public struct MinisignSignature: Sendable {
    public let keyID: [UInt8]
    let signature: [UInt8]
    public let trustedComment: String
    let globalSignature: [UInt8]

    public init(_ text: String) throws {
        try self.init(bytes: Array(text.utf8))
    }

    /// The file's bytes, with LF or CRLF line ends. Split on bytes: a Swift `String` holds CRLF
    /// as one `Character`, which neither `"\n"` nor `"\r"` matches.
    public init(bytes text: [UInt8]) throws {
        let lines = text.split(separator: 0x0A, omittingEmptySubsequences: false)
            .map { String(decoding: $0.last == 0x0D ? $0.dropLast() : $0, as: UTF8.self) }
        guard lines.count >= 4, lines[0].hasPrefix("untrusted comment:"), lines[2].hasPrefix("trusted comment: "),
              let bytes = Base64.decodePadded(Substring(lines[1])), bytes.count == 74,
              let global = Base64.decodePadded(Substring(lines[3])), global.count == 64 else {
            throw MinisignError.badSignature("not a minisign signature file")
        }
        guard bytes[0] == 0x45, bytes[1] == 0x44 else {
            throw MinisignError.badSignature("a legacy (not prehashed) minisign signature; sign again with minisign 0.11 or rack-gateway-db")
        }
        keyID = Array(bytes[2..<10])
        signature = Array(bytes[10...])
        trustedComment = String(lines[2].dropFirst("trusted comment: ".count))
        globalSignature = global
    }

    /// Checks the signature over the file's BLAKE2b-512 and the trusted comment's.
    public func verify(hash: [UInt8], key: MinisignPublicKey) throws {
        guard keyID == key.keyID else { throw MinisignError.wrongKey(signedBy: MinisignPublicKey.idText(keyID), expected: key.keyIDText) }
        guard Ed25519.verify(publicKey: key.key, message: hash, signature: signature),
              Ed25519.verify(publicKey: key.key, message: signature + Array(trustedComment.utf8), signature: globalSignature) else {
            throw MinisignError.verificationFailed
        }
    }
}
