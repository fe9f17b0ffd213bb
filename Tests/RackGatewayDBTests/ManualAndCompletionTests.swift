import Foundation
import Testing
import TestSupport

/// Issue 20: the man page and the completion scripts in docs/ are swift-argument-parser's own output
/// for the commands as they are now (scripts/generate-docs makes them), and they load.
@Suite("man page and shell completions")
struct ManualAndCompletionTests {
    static let docs = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("docs").path

    @Test(arguments: ["bash", "zsh", "fish"])
    func theCompletionScriptIsCurrent(shell: String) throws {
        let generated = try CLI.run(["--generate-completion-script", shell])
        #expect(generated.status == 0 && generated.stdout.contains("rekey") && generated.stdout.contains("verify-key"), "\(generated.stderr)")
        let committed = try String(contentsOfFile: "\(Self.docs)/completions/rack-gateway-db.\(shell)", encoding: .utf8)
        #expect(committed == generated.stdout, "docs/completions/rack-gateway-db.\(shell) is stale: run scripts/generate-docs")
        // Each shell parses its own script (zsh -n, fish --no-execute, bash -n).
        let parse = try Shell.run("/usr/bin/env", [shell, shell == "fish" ? "--no-execute" : "-n", "\(Self.docs)/completions/rack-gateway-db.\(shell)"])
        #expect(parse.status == 0, "\(shell): \(parse.stderr)")
        if shell == "bash" {
            // Loaded into an interactive-less bash, it registers the completion function.
            let loaded = try Shell.run("/bin/bash", ["-c", "source \"$1\" && complete -p rack-gateway-db", "bash", "\(Self.docs)/completions/rack-gateway-db.bash"])
            #expect(loaded.status == 0 && loaded.stdout.contains("rack-gateway-db"), "\(loaded)")
        }
    }

    @Test func theImageInstallsThem() throws {
        let dockerfile = try String(contentsOfFile: Self.docs + "/../samples/Dockerfile", encoding: .utf8)
        for file in ["docs/man/rack-gateway-db.1", "docs/completions/rack-gateway-db.bash", "docs/completions/rack-gateway-db.zsh", "docs/completions/rack-gateway-db.fish"] {
            #expect(dockerfile.contains("/src/\(file) "), "the Dockerfile installs \(file)")
            #expect(FileManager.default.fileExists(atPath: Self.docs + "/../" + file))
        }
    }

    /// Rendered by man without a warning, naming every command and every long option the tool has now.
    @Test func theManPageRendersAndNamesEveryCommandAndOption() throws {
        let page = "\(Self.docs)/man/rack-gateway-db.1"
        let rendered = try Shell.run("/usr/bin/man", ["--warnings", "-l", page], environment: ["MANWIDTH": "200", "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"])
        #expect(rendered.status == 0 && rendered.stderr.isEmpty, "\(rendered.stderr)")
        // Bold and underline come as overstrikes (X backspace X) when the output is not a terminal.
        let text = rendered.stdout.replacingOccurrences(of: ".\u{8}", with: "", options: .regularExpression)
            .replacingOccurrences(of: "\u{2010}", with: "-")
        #expect(text.contains("RACK-GATEWAY-DB(1)") && text.contains("SYNOPSIS"))
        let dump = try CLI.run(["--experimental-dump-help"])
        let root = try #require(try JSONSerialization.jsonObject(with: Data(dump.stdout.utf8)) as? [String: Any])
        var missing: [String] = []
        func walk(_ command: [String: Any]) {
            if let name = command["commandName"] as? String, !text.contains(name) { missing.append(name) }
            for argument in command["arguments"] as? [[String: Any]] ?? [] {
                guard argument["shouldDisplay"] as? Bool != false else { continue }
                for name in argument["names"] as? [[String: Any]] ?? [] where name["kind"] as? String == "long" {
                    if let long = name["name"] as? String, !text.contains("--" + long) { missing.append("--" + long) }
                }
            }
            for sub in command["subcommands"] as? [[String: Any]] ?? [] { walk(sub) }
        }
        walk(try #require(root["command"] as? [String: Any]))
        #expect(missing.isEmpty, "docs/man/rack-gateway-db.1 lacks \(Set(missing).sorted()): run scripts/generate-docs")
    }
}
