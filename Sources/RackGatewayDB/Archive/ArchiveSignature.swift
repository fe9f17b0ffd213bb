import Foundation
import RGWCompression
import RGWCrypto

/// minisign signatures of archives: `<archive>.minisig` beside the file, over the file as stored
/// (the ciphertext of an encrypted archive), verifiable with `minisign -Vm FILE -P KEY`. The
/// trusted comment names the file, and a verifier refuses a signature made for another name (an
/// older signed archive copied over a newer name is not a newer backup).
public enum ArchiveSignature {
    public static func trustedComment(name: String, date: Date) -> String {
        "timestamp:\(Int(date.timeIntervalSince1970))\tfile:\(name)\thashed"
    }

    /// The `.minisig` text for `name`, whose stored bytes hash (BLAKE2b-512) to `hash`, signed at `date`.
    public static func sign(hash: [UInt8], name: String, key: MinisignSecretKey, date: Date) throws -> [UInt8] {
        Array(try key.signature(hash: hash, trustedComment: trustedComment(name: name, date: date), untrustedComment: "signature from rack-gateway-db secret key").utf8)
    }

    /// Checks `object` (stored as `name` in `store`) against its `.minisig` and `key`; returns the
    /// stored object's SHA-256 (hex), computed in the same pass, and what to read the archive from
    /// from then on: `object` itself, or with `spool` (a remote store) the local copy of the very
    /// bytes the signature was checked over (`SpooledObject`), so that nothing is fetched twice and
    /// nothing read later can differ from what was checked. Throws `.signatureInvalid`.
    static func verify(_ object: StoreReader, name: String, store: ArchiveStore, key: MinisignPublicKey,
                       spool: Bool = false) throws -> (sha256: String, checked: StoreReader) {
        let path = "\(store.location)/\(name)"
        let fix = "Do not restore it unless you know where it came from; use a signed archive (rack-gateway-db list shows which are), or drop --verify-key to accept unsigned ones."
        guard let text = try store.getSidecar(ArchiveName.signature(of: name), limit: ArchiveName.signatureLimit) else {
            throw ToolError(.signatureInvalid, "\(path) is not signed (there is no \(name).minisig) and --verify-key requires a signature", fix: fix)
        }
        // Signed by another key: no download can change that, so it is said before one.
        try checkKey(text, path: path, key: key)
        let digests: StoredDigests
        let checked: StoreReader
        if spool {
            let spooled = try SpooledObject(object, blake2b: true)
            (digests, checked) = (spooled.digests, spooled)
        } else {
            (digests, checked) = (try StoredDigests(object, blake2b: true), object)
        }
        try check(text, blake2b: digests.blake2b!, name: name, path: path, key: key)
        return (digests.sha256, checked)
    }

    /// The `cause` of a `signature_invalid` error when the signature is sound but made by another
    /// key than the one given: `signedBy` is that key's id. Every archive signed so points to the key
    /// given (a rotated signing key, the wrong `.pub`), not to the archives.
    public struct WrongKey: Error, Sendable, Equatable {
        public var signedBy: String
        public var given: String

        public init(signedBy: String, given: String) {
            self.signedBy = signedBy
            self.given = given
        }
    }

    /// Refuses a `.minisig` made by another key than `key`, naming both key ids and what to check.
    static func checkKey(_ text: [UInt8], path: String, key: MinisignPublicKey) throws {
        guard let signature = try? MinisignSignature(bytes: text), signature.keyID != key.keyID else { return }
        // `verify` compares the key ids before anything else, and names both.
        let wrong: WrongKey
        do { try signature.verify(hash: [], key: key); return } catch MinisignError.wrongKey(let signedBy, let given) {
            wrong = WrongKey(signedBy: signedBy, given: given)
        } catch { return }
        throw ToolError(.signatureInvalid, "\(path): signed by key \(wrong.signedBy), not by the key given with --verify-key (\(wrong.given))",
                        fix: wrongKeyFix(wrong), cause: wrong)
    }

    /// What to check when an archive is signed by another key than the one given.
    public static func wrongKeyFix(_ wrong: WrongKey) -> String {
        "Check --verify-key (or RGW_VERIFY_KEY): it is key \(wrong.given), and the archive is signed by key \(wrong.signedBy). "
            + "If the backup host's signing key was rotated, give its new public key (the .pub made with it; its first line names key \(wrong.signedBy)); "
            + "if key \(wrong.signedBy) is not yours, do not restore the archive: find out who signed it."
    }

    /// Checks the `.minisig` text `text` of the archive `name` (called `path` in messages), whose
    /// stored bytes hash (BLAKE2b-512) to `blake2b`, against `key`: the signature, and the file name
    /// its trusted comment names. Throws `.signatureInvalid`.
    static func check(_ text: [UInt8], blake2b: [UInt8], name: String, path: String, key: MinisignPublicKey) throws {
        let fix = "Do not restore it unless you know where it came from; use a signed archive (rack-gateway-db list shows which are), or drop --verify-key to accept unsigned ones."
        let signature: MinisignSignature
        do { signature = try MinisignSignature(bytes: text) } catch {
            throw ToolError(.signatureInvalid, "\(path).minisig: \(error)", fix: fix)
        }
        try checkKey(text, path: path, key: key)
        do { try signature.verify(hash: blake2b, key: key) } catch {
            throw ToolError(.signatureInvalid, "\(path): \(error)", fix: fix)
        }
        let signedName = signature.trustedComment.split(separator: "\t").first { $0.hasPrefix("file:") }.map { String($0.dropFirst(5)) }
        if let signedName, signedName != name {
            throw ToolError(.signatureInvalid, "\(path): its signature was made for \(signedName), not for this name (a copy of another archive?)", fix: fix)
        }
    }
}
