import Foundation
import Testing
import TestSupport
@testable import RackGatewayDB

/// The README's quickstart as a reader pastes it: the blocks marked `<!-- quickstart -->`, in order,
/// in one `bash -e` with a fresh HOME and nothing of the test's environment, on a throwaway dev
/// database (`scripts/dev-db` on a free port, in a directory of its own). Each console example's
/// output must be the README's, up to what differs from run to run (times, durations, sizes,
/// checksums, the port and the directory). Two liberties: `swift build -c release` is answered by a
/// stand-in `swift` and `.build/release` is this test run's build, so the test does not compile the
/// tool a second time; and `RGW_LOG_LEVEL=warning`, as at the terminal the examples were pasted from.
@Suite("README quickstart")
struct QuickstartTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().path

    /// One command of the quickstart and, for a console example, the output the README shows.
    struct Step {
        var command: String
        var shown: [String]?
    }

    /// The marked blocks' commands: every line of a `sh` block, the `$ ` lines of a `console` block
    /// with the lines after each as its output.
    static func steps(_ readme: String) -> [Step] {
        let lines = readme.components(separatedBy: "\n")
        var steps: [Step] = []
        var index = 0
        while index < lines.count {
            defer { index += 1 }
            guard lines[index].trimmingCharacters(in: .whitespaces) == "<!-- quickstart -->", index + 1 < lines.count else { continue }
            let console = lines[index + 1].hasPrefix("```console")
            index += 2
            while index < lines.count && lines[index] != "```" {
                let line = lines[index]
                if !console {
                    if !line.trimmingCharacters(in: .whitespaces).isEmpty { steps.append(Step(command: line, shown: nil)) }
                } else if line.hasPrefix("$ ") {
                    steps.append(Step(command: String(line.dropFirst(2)), shown: []))
                } else if !steps.isEmpty {
                    steps[steps.count - 1].shown?.append(line)
                }
                index += 1
            }
        }
        return steps
    }

    /// A line with what changes between runs replaced: paths up to the repository's folders,
    /// timestamps, decimals (durations, sizes, ratios, versions), whole seconds, hex digests, ports.
    static func normalized(_ line: String) -> String {
        var text = line
        for (pattern, replacement) in [
            (#"/[^\s'"]*/(backups|migrations)\b"#, "ROOT/$1"),
            (#"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"#, "TIME"),
            (#"\d{8}T\d{6}Z"#, "STAMP"),
            (#"\b[0-9a-f]{16,}\b"#, "HEX"),
            (#"127\.0\.0\.1:\d+"#, "127.0.0.1:PORT"),
            (#"\d+\.\d+"#, "N.N"),
            (#"\b\d+(s|ms)\b"#, "N$1"),
        ] {
            text = text.replacingOccurrences(of: pattern, with: replacement, options: .regularExpression)
        }
        return text
    }

    /// Whether `actual` is `shown` line by line once normalized; a `...` line in the README stands
    /// for any number of lines.
    static func matches(_ shown: [String], _ actual: [String]) -> Bool {
        let shown = shown.map(normalized)
        let actual = actual.map(normalized)
        func match(_ s: Int, _ a: Int) -> Bool {
            if s == shown.count { return a == actual.count }
            if shown[s].trimmingCharacters(in: .whitespaces) == "..." {
                return (a...actual.count).contains { match(s + 1, $0) }
            }
            return a < actual.count && shown[s] == actual[a] && match(s + 1, a + 1)
        }
        return match(0, 0)
    }

    @Test func stepsAndNormalizationReadTheREADMEAsMeant() {
        let readme = "x\n<!-- quickstart -->\n```sh\nexport A=1   # one\n\n```\n<!-- quickstart -->\n```console\n$ echo $A\n1\n$ true\n```\n```sh\nnot marked\n```\n"
        let steps = Self.steps(readme)
        #expect(steps.map(\.command) == ["export A=1   # one", "echo $A", "true"])
        #expect(steps.map(\.shown) == [nil, ["1"], []])
        #expect(Self.matches(["a", "  ...", "z"], ["a", "b", "c", "z"]) && Self.matches(["a", "...", "z"], ["a", "z"]))
        #expect(!Self.matches(["privileges: all 21 tables"], ["privileges: all 23 tables"]), "counts are compared")
        #expect(Self.matches(["/work/main/backups/x_20261125T050407Z.sql.gz in 0.5 s"], ["/tmp/q-1/backups/x_20261204T101010Z.sql.gz in 12.25 s"]))
    }

    @Test func theQuickstartRunsAsPastedAndPrintsWhatTheREADMEShows() throws {
        let readme = try String(contentsOfFile: Self.root + "/README.md", encoding: .utf8)
        let steps = Self.steps(readme)
        #expect(steps.contains { $0.command.hasPrefix("scripts/dev-db start") })
        #expect(steps.filter { $0.shown != nil }.count >= 8)

        // The repository as a reader has it, the stand-in compiler, and the test's build as .build/release.
        let directory = try TestArchives.temporaryDirectory()
        chmod(directory, 0o755)
        let checkout = directory + "/rack-gateway-db"
        let bin = directory + "/bin"
        let home = directory + "/home"
        for path in [checkout + "/.build", bin, home] { try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true) }
        for name in ["Package.swift", "scripts", "samples", "migrations"] {
            try FileManager.default.createSymbolicLink(atPath: checkout + "/" + name, withDestinationPath: Self.root + "/" + name)
        }
        try FileManager.default.createSymbolicLink(atPath: checkout + "/.build/release",
                                                   withDestinationPath: URL(fileURLWithPath: CLI.executable).deletingLastPathComponent().path)
        try TestArchives.writeExecutable("#!/bin/sh\necho \"(the test's build stands in for: swift $*)\"\n", to: bin + "/swift")
        defer {
            _ = try? Shell.run("/usr/bin/env", ["-i", "PATH=/usr/sbin:/usr/bin:/sbin:/bin", checkout + "/scripts/dev-db", "destroy"])
            try? FileManager.default.removeItem(atPath: directory)
        }

        var script = "cd '\(checkout)'\nexec 2>&1\n"
        for (number, step) in steps.enumerated() {
            script += "printf '\\n::step %d\\n' \(number)\n\(step.command)\n"
        }
        script += "printf '\\n::step end\\n'\n"
        let run = try Shell.run("/usr/bin/env", ["-i", "HOME=\(home)", "PATH=\(bin):/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8",
                                                 "RGW_DEV_DB_PORT=\(try TestCluster.freePort())",
                                                 // Without a terminal the tool logs info lines every few seconds; the README's
                                                 // examples are a terminal's, where only warnings are.
                                                 "RGW_LOG_LEVEL=warning", "/bin/bash", "-e", "-c", script])
        #expect(run.status == 0, "the quickstart stopped (bash -e): \(run.stdout.suffix(3000))")
        #expect(run.stdout.contains("::step end"), "\(run.stdout.suffix(3000))")

        // Each console example's output, between its marker and the next.
        var outputs: [Int: [String]] = [:]
        var current: Int?
        for line in run.stdout.components(separatedBy: "\n") {
            if line.hasPrefix("::step ") {
                current = Int(line.dropFirst(7))
                if let current { outputs[current] = [] }
            } else if let step = current {
                outputs[step]?.append(line)
            }
        }
        for (number, step) in steps.enumerated() {
            guard let shown = step.shown else { continue }
            var actual = outputs[number] ?? []
            // The marker's own leading newline, and the blank line before the next marker.
            while actual.last == "" { actual.removeLast() }
            #expect(Self.matches(shown, actual), "README shows for `\(step.command)`:\n\(shown.joined(separator: "\n"))\nthe run printed:\n\(actual.joined(separator: "\n"))")
        }
    }
}
