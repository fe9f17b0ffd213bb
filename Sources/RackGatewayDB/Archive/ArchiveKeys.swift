import Foundation
import RGWCrypto

/// The keys a command reads archives with: age identities to decrypt (`--identity`) and the
/// minisign public key every archive must be signed with (`--verify-key`).
public struct ArchiveKeys: Sendable {
    public var identities: [AgeIdentity]
    public var verifyKey: MinisignPublicKey?

    public init(identities: [AgeIdentity] = [], verifyKey: MinisignPublicKey? = nil) {
        self.identities = identities
        self.verifyKey = verifyKey
    }
}

/// The keys `backup` (and `rekey`) write with: age recipients (public keys only: the backup host
/// never holds a secret that decrypts) and a minisign secret key to sign with.
public struct BackupKeys: Sendable {
    public var recipients: [AgeRecipient]
    public var signKey: MinisignSecretKey?

    public init(recipients: [AgeRecipient] = [], signKey: MinisignSecretKey? = nil) {
        self.recipients = recipients
        self.signKey = signKey
    }

    public var encrypts: Bool { !recipients.isEmpty }
}

/// Reading key files: secret ones only when no one but their owner can read them.
public enum KeyFiles {
    /// The text of a secret key file, refused unless it is a regular file of mode 0600 or 0400
    /// (no group or other bits), as ssh does with its keys.
    public static func readSecret(_ path: String, what: String, option: String) throws -> String {
        var info = stat()
        guard stat(path, &info) == 0 else {
            throw ToolError(.usage, "\(option) \(path): \(String(cString: strerror(errno)))", fix: "Give the path of the \(what).")
        }
        guard info.st_mode & S_IFMT == S_IFREG else { throw ToolError(.usage, "\(option) \(path) is not a regular file") }
        let mode = info.st_mode & 0o777
        guard mode & 0o077 == 0 else {
            throw ToolError(.usage, "\(option) \(path) is open to other users (mode \(String(mode, radix: 8))); \("aeiou".contains(what.prefix(1)) ? "an" : "a") \(what) must be private, so it is not used",
                            fix: "chmod 600 \(path)")
        }
        guard let data = FileManager.default.contents(atPath: path) else { throw ToolError(.usage, "\(option) \(path) cannot be read") }
        return String(decoding: data, as: UTF8.self)
    }

    static func readPublic(_ path: String, option: String) throws -> String {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ToolError(.usage, "\(option) \(path) cannot be read", fix: "Give an existing file.")
        }
        return String(decoding: data, as: UTF8.self)
    }

    /// `--identity FILE`: an age identity file (age-keygen's output).
    public static func identities(_ path: String) throws -> [AgeIdentity] {
        let text = try readSecret(path, what: "age identity file", option: "--identity")
        do { return try AgeIdentity.parseFile(text) } catch {
            throw ToolError(.usage, "--identity \(path): \(error)", fix: "Give an identity file made by age-keygen (AGE-SECRET-KEY-1...).")
        }
    }

    /// `--sign-key FILE`: a minisign secret key without a password (`minisign -G -W`).
    public static func signKey(_ path: String) throws -> MinisignSecretKey {
        let text = try readSecret(path, what: "minisign secret key", option: "--sign-key")
        do { return try MinisignSecretKey(fileText: text) } catch {
            throw ToolError(.usage, "--sign-key \(path): \(error)", fix: "Make a key with: minisign -G -W -s KEY.key -p KEY.pub")
        }
    }

    /// `--verify-key`: the public key itself (`RWQ...`, as `minisign -P` takes it) or a public key file.
    public static func verifyKey(_ argument: String) throws -> MinisignPublicKey {
        let text = argument.hasPrefix("RW") && !FileManager.default.fileExists(atPath: argument) ? argument : try readPublic(argument, option: "--verify-key")
        do { return try MinisignPublicKey(text) } catch {
            throw ToolError(.usage, "--verify-key: \(error)", fix: "Give the RWQ... line of the minisign public key, or the .pub file's path.")
        }
    }

    /// `--recipient` values and a `--recipients-file`.
    public static func recipients(_ values: [String], file: String?) throws -> [AgeRecipient] {
        var recipients: [AgeRecipient] = []
        for value in values {
            do { recipients.append(try AgeRecipient(value)) } catch {
                // The value is not echoed: a secret key given here by mistake stays out of the output.
                throw ToolError(.usage, "--recipient: \(error)", fix: "Give the age1... public key that age-keygen printed (age-keygen -y KEY.txt shows it).")
            }
        }
        if let file {
            do { recipients += try AgeRecipient.parseFile(try readPublic(file, option: "--recipients-file")) } catch let error as ToolError { throw error } catch {
                throw ToolError(.usage, "--recipients-file \(file): \(error)", fix: "One age1... recipient per line, # for comments.")
            }
            guard !recipients.isEmpty else { throw ToolError(.usage, "--recipients-file \(file) holds no recipient") }
        }
        return recipients
    }
}
