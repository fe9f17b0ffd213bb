import CCrypto

/// The primitives age and minisign are built from, each a thin call into OpenSSL's libcrypto (3.0
/// or later): nothing here is hand-written cryptography.
public enum CryptoError: Error, Equatable, Sendable, CustomStringConvertible {
    /// An AEAD tag did not match: the key is wrong or the bytes were altered.
    case authenticationFailed
    /// A key or input of the wrong shape (an X25519 point of low order, say).
    case invalid(String)
    /// libcrypto itself failed (out of memory).
    case library(String)

    public var description: String {
        switch self {
        case .authenticationFailed: "authentication failed"
        case .invalid(let what): what
        case .library(let call): "libcrypto: \(call) failed"
        }
    }
}

public enum Random {
    public static func bytes(_ count: Int) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: count)
        precondition(RAND_bytes(&out, Int32(count)) == 1, "RAND_bytes failed")
        return out
    }
}

/// Overwrite a secret's bytes before its storage is given back.
public func wipe(_ bytes: inout [UInt8]) {
    bytes.withUnsafeMutableBytes { if let base = $0.baseAddress { OPENSSL_cleanse(base, $0.count) } }
}

public enum X25519 {
    public static let keyLength = 32

    /// The public key (basepoint multiple) of a 32-byte secret scalar.
    public static func publicKey(secret: [UInt8]) throws -> [UInt8] {
        guard secret.count == keyLength, let key = EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, nil, secret, secret.count) else {
            throw CryptoError.invalid("an X25519 secret key must be 32 bytes")
        }
        defer { EVP_PKEY_free(key) }
        var out = [UInt8](repeating: 0, count: keyLength)
        var length = keyLength
        guard EVP_PKEY_get_raw_public_key(key, &out, &length) == 1, length == keyLength else { throw CryptoError.library("EVP_PKEY_get_raw_public_key") }
        return out
    }

    /// X25519(secret, peer); an all-zero result (a low-order peer point) is refused, as age requires.
    public static func sharedSecret(secret: [UInt8], peer: [UInt8]) throws -> [UInt8] {
        guard secret.count == keyLength, peer.count == keyLength else { throw CryptoError.invalid("X25519 keys must be 32 bytes") }
        guard let mine = EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, nil, secret, secret.count) else { throw CryptoError.library("EVP_PKEY_new_raw_private_key") }
        defer { EVP_PKEY_free(mine) }
        guard let theirs = EVP_PKEY_new_raw_public_key(EVP_PKEY_X25519, nil, peer, peer.count) else { throw CryptoError.invalid("not an X25519 public key") }
        defer { EVP_PKEY_free(theirs) }
        guard let context = EVP_PKEY_CTX_new(mine, nil) else { throw CryptoError.library("EVP_PKEY_CTX_new") }
        defer { EVP_PKEY_CTX_free(context) }
        var out = [UInt8](repeating: 0, count: keyLength)
        var length = keyLength
        // OpenSSL itself refuses an all-zero shared secret (RFC 7748 section 6.1).
        guard EVP_PKEY_derive_init(context) == 1, EVP_PKEY_derive_set_peer(context, theirs) == 1,
              EVP_PKEY_derive(context, &out, &length) == 1, length == keyLength else {
            throw CryptoError.invalid("X25519 with a low-order or invalid point")
        }
        guard out.contains(where: { $0 != 0 }) else { throw CryptoError.invalid("X25519 with a low-order point") }
        return out
    }
}

/// HKDF with SHA-256 (RFC 5869).
public enum HKDF {
    public static func sha256(key: [UInt8], salt: [UInt8], info: [UInt8], count: Int) throws -> [UInt8] {
        guard let context = EVP_PKEY_CTX_new_id(EVP_PKEY_HKDF, nil) else { throw CryptoError.library("EVP_PKEY_CTX_new_id(HKDF)") }
        defer { EVP_PKEY_CTX_free(context) }
        var out = [UInt8](repeating: 0, count: count)
        var length = count
        // An empty salt is the same as none (RFC 5869: a string of HashLen zeros).
        let saltBytes = salt.isEmpty ? [UInt8](repeating: 0, count: 32) : salt
        guard EVP_PKEY_derive_init(context) == 1,
              EVP_PKEY_CTX_set_hkdf_md(context, EVP_sha256()) == 1,
              EVP_PKEY_CTX_set1_hkdf_salt(context, saltBytes, Int32(saltBytes.count)) == 1,
              EVP_PKEY_CTX_set1_hkdf_key(context, key, Int32(key.count)) == 1,
              EVP_PKEY_CTX_add1_hkdf_info(context, info, Int32(info.count)) == 1,
              EVP_PKEY_derive(context, &out, &length) == 1, length == count else {
            throw CryptoError.library("HKDF-SHA-256")
        }
        return out
    }
}

public enum HMAC {
    public static func sha256(key: [UInt8], message: [UInt8]) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: 32)
        var length: UInt32 = 32
        precondition(CCrypto.HMAC(EVP_sha256(), key, Int32(key.count), message, message.count, &out, &length) != nil, "HMAC failed")
        return out
    }

    /// Constant-time comparison.
    public static func equal(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        a.count == b.count && CRYPTO_memcmp(a, b, a.count) == 0
    }
}

/// ChaCha20-Poly1305 (RFC 8439) with a 32-byte key, a 12-byte nonce and a 16-byte tag after the
/// ciphertext. One value keeps one cipher context for many messages under one key; not for
/// concurrent use (each thread makes its own).
public final class ChaChaPoly {
    public static let tagLength = 16
    public static let nonceLength = 12
    private let context: OpaquePointer
    private let key: [UInt8]

    public init(key: [UInt8]) throws {
        guard key.count == 32 else { throw CryptoError.invalid("a ChaCha20-Poly1305 key must be 32 bytes") }
        guard let context = EVP_CIPHER_CTX_new() else { throw CryptoError.library("EVP_CIPHER_CTX_new") }
        self.context = context
        self.key = key
    }

    deinit { EVP_CIPHER_CTX_free(context) }

    /// `plaintext` sealed into `out` (ciphertext then tag: `plaintext.count + tagLength` bytes).
    public func seal(nonce: [UInt8], _ plaintext: UnsafeRawBufferPointer, to out: UnsafeMutablePointer<UInt8>) throws {
        precondition(nonce.count == Self.nonceLength)
        guard EVP_EncryptInit_ex(context, EVP_chacha20_poly1305(), nil, key, nonce) == 1 else { throw CryptoError.library("EVP_EncryptInit_ex") }
        var written: Int32 = 0
        if plaintext.count > 0 {
            guard EVP_EncryptUpdate(context, out, &written, plaintext.bindMemory(to: UInt8.self).baseAddress, Int32(plaintext.count)) == 1,
                  Int(written) == plaintext.count else { throw CryptoError.library("EVP_EncryptUpdate") }
        }
        var final: Int32 = 0
        guard EVP_EncryptFinal_ex(context, out + plaintext.count, &final) == 1,
              EVP_CIPHER_CTX_ctrl(context, EVP_CTRL_AEAD_GET_TAG, Int32(Self.tagLength), out + plaintext.count) == 1 else {
            throw CryptoError.library("EVP_EncryptFinal_ex")
        }
    }

    /// The same, appended to `output`.
    public func seal(nonce: [UInt8], _ plaintext: UnsafeRawBufferPointer, into output: inout [UInt8]) throws {
        let sealed = try [UInt8](unsafeUninitializedCapacity: plaintext.count + Self.tagLength) { buffer, count in
            try seal(nonce: nonce, plaintext, to: buffer.baseAddress!)
            count = plaintext.count + Self.tagLength
        }
        output.append(contentsOf: sealed)
    }

    public func seal(nonce: [UInt8], _ plaintext: [UInt8]) throws -> [UInt8] {
        var out: [UInt8] = []
        try plaintext.withUnsafeBytes { try seal(nonce: nonce, $0, into: &out) }
        return out
    }

    /// `sealed` (ciphertext then tag) opened into `out` (`sealed.count - tagLength` bytes); throws
    /// `.authenticationFailed` when the tag does not match (what `out` holds then is not plaintext).
    public func open(nonce: [UInt8], _ sealed: UnsafeRawBufferPointer, to out: UnsafeMutablePointer<UInt8>) throws {
        precondition(nonce.count == Self.nonceLength)
        guard sealed.count >= Self.tagLength else { throw CryptoError.authenticationFailed }
        let length = sealed.count - Self.tagLength
        guard EVP_DecryptInit_ex(context, EVP_chacha20_poly1305(), nil, key, nonce) == 1 else { throw CryptoError.library("EVP_DecryptInit_ex") }
        let bytes = sealed.bindMemory(to: UInt8.self).baseAddress!
        var written: Int32 = 0
        if length > 0 {
            guard EVP_DecryptUpdate(context, out, &written, bytes, Int32(length)) == 1 else { throw CryptoError.authenticationFailed }
        }
        var final: Int32 = 0
        guard EVP_CIPHER_CTX_ctrl(context, EVP_CTRL_AEAD_SET_TAG, Int32(Self.tagLength), UnsafeMutableRawPointer(mutating: bytes + length)) == 1,
              EVP_DecryptFinal_ex(context, out + length, &final) == 1 else { throw CryptoError.authenticationFailed }
    }

    /// The same, appended to `output` (nothing appended when it fails).
    public func open(nonce: [UInt8], _ sealed: UnsafeRawBufferPointer, into output: inout [UInt8]) throws {
        guard sealed.count >= Self.tagLength else { throw CryptoError.authenticationFailed }
        let plain = try [UInt8](unsafeUninitializedCapacity: sealed.count - Self.tagLength) { buffer, count in
            if let base = buffer.baseAddress { try open(nonce: nonce, sealed, to: base) } else {
                var scratch: UInt8 = 0
                try open(nonce: nonce, sealed, to: &scratch)
            }
            count = sealed.count - Self.tagLength
        }
        output.append(contentsOf: plain)
    }

    public func open(nonce: [UInt8], _ sealed: [UInt8]) throws -> [UInt8] {
        var out: [UInt8] = []
        try sealed.withUnsafeBytes { try open(nonce: nonce, $0, into: &out) }
        return out
    }
}

/// Ed25519 (RFC 8032, pure): keys as a 32-byte seed and a 32-byte public key.
public enum Ed25519 {
    public static func publicKey(seed: [UInt8]) throws -> [UInt8] {
        guard seed.count == 32, let key = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, nil, seed, 32) else {
            throw CryptoError.invalid("an Ed25519 seed must be 32 bytes")
        }
        defer { EVP_PKEY_free(key) }
        var out = [UInt8](repeating: 0, count: 32)
        var length = 32
        guard EVP_PKEY_get_raw_public_key(key, &out, &length) == 1 else { throw CryptoError.library("EVP_PKEY_get_raw_public_key") }
        return out
    }

    public static func sign(seed: [UInt8], message: [UInt8]) throws -> [UInt8] {
        guard seed.count == 32, let key = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, nil, seed, 32) else {
            throw CryptoError.invalid("an Ed25519 seed must be 32 bytes")
        }
        defer { EVP_PKEY_free(key) }
        guard let context = EVP_MD_CTX_new() else { throw CryptoError.library("EVP_MD_CTX_new") }
        defer { EVP_MD_CTX_free(context) }
        var signature = [UInt8](repeating: 0, count: 64)
        var length = 64
        guard EVP_DigestSignInit(context, nil, nil, nil, key) == 1,
              EVP_DigestSign(context, &signature, &length, message, message.count) == 1, length == 64 else {
            throw CryptoError.library("EVP_DigestSign(Ed25519)")
        }
        return signature
    }

    public static func verify(publicKey: [UInt8], message: [UInt8], signature: [UInt8]) -> Bool {
        guard publicKey.count == 32, signature.count == 64,
              let key = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nil, publicKey, 32) else { return false }
        defer { EVP_PKEY_free(key) }
        guard let context = EVP_MD_CTX_new() else { return false }
        defer { EVP_MD_CTX_free(context) }
        return EVP_DigestVerifyInit(context, nil, nil, nil, key) == 1
            && EVP_DigestVerify(context, signature, 64, message, message.count) == 1
    }
}

/// BLAKE2b-512, fed in pieces (minisign's prehash of a whole file).
public final class BLAKE2b512: @unchecked Sendable {
    private let context: OpaquePointer

    public init() {
        context = EVP_MD_CTX_new()!
        precondition(EVP_DigestInit_ex(context, EVP_blake2b512(), nil) == 1, "BLAKE2b-512 unavailable")
    }

    deinit { EVP_MD_CTX_free(context) }

    public func update(_ bytes: UnsafeRawBufferPointer) {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return }
        precondition(EVP_DigestUpdate(context, base, bytes.count) == 1)
    }

    public func update(_ bytes: ArraySlice<UInt8>) { bytes.withUnsafeBytes { update($0) } }

    public func finalize() -> [UInt8] {
        var out = [UInt8](repeating: 0, count: 64)
        var length: UInt32 = 64
        precondition(EVP_DigestFinal_ex(context, &out, &length) == 1 && length == 64)
        return out
    }

    public static func hash(_ bytes: [UInt8]) -> [UInt8] {
        let hasher = BLAKE2b512()
        hasher.update(bytes[...])
        return hasher.finalize()
    }
}
