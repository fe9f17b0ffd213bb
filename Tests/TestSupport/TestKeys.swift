import Foundation
import Testing

/// Keys made by the stock tools in a private directory: an age identity (and its recipient), a
/// second identity, and a minisign key pair without a password.
public struct TestKeys {
    public var directory: String
    public var identity: String { directory + "/identity.txt" }
    public var otherIdentity: String { directory + "/other.txt" }
    public var signKey: String { directory + "/sign.key" }
    public var publicKeyFile: String { directory + "/sign.pub" }
    public var recipient: String
    public var otherRecipient: String
    public var publicKey: String
    /// Every secret's text, to check no output carries it.
    public var secrets: [String]

    public static func make() throws -> TestKeys {
        let directory = try TestArchives.temporaryDirectory()
        for name in ["identity.txt", "other.txt"] {
            _ = try Shell.runChecked("age-keygen", ["-o", directory + "/" + name])
            chmod(directory + "/" + name, 0o600)
        }
        _ = try Shell.runChecked("minisign", ["-G", "-W", "-f", "-s", directory + "/sign.key", "-p", directory + "/sign.pub"])
        chmod(directory + "/sign.key", 0o600)
        func read(_ name: String) throws -> String { try String(contentsOfFile: directory + "/" + name, encoding: .utf8) }
        let secretLines = try (read("identity.txt") + read("other.txt")).split(separator: "\n").filter { $0.hasPrefix("AGE-SECRET-KEY-") }.map(String.init)
        let signSecret = try read("sign.key").split(separator: "\n").last.map(String.init) ?? ""
        return TestKeys(directory: directory,
                    recipient: try Shell.runChecked("age-keygen", ["-y", directory + "/identity.txt"]).trimmingCharacters(in: .whitespacesAndNewlines),
                    otherRecipient: try Shell.runChecked("age-keygen", ["-y", directory + "/other.txt"]).trimmingCharacters(in: .whitespacesAndNewlines),
                    publicKey: try read("sign.pub").split(separator: "\n").last.map(String.init) ?? "",
                    secrets: secretLines + [signSecret, String(signSecret.prefix(40))])
    }

    public func expectNoSecret(_ results: [CLI.Result], sourceLocation: SourceLocation = #_sourceLocation) {
        for result in results {
            for secret in secrets where !secret.isEmpty {
                #expect(!result.output.contains(secret), "a secret key in the output", sourceLocation: sourceLocation)
            }
        }
    }
}

