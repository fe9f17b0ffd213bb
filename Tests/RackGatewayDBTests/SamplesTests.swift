import Foundation
import Testing
import TestSupport
@testable import rack_gateway_db
@testable import RackGatewayDB

/// The scheduling samples and the image recipe in samples/: they parse, and every rack-gateway-db
/// command in them is a valid invocation of this build.
@Suite("samples")
struct SamplesTests {
    static let samples = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("samples").path

    static func text(_ name: String) throws -> String { try String(contentsOfFile: samples + "/" + name, encoding: .utf8) }

    /// A command line split into words as a POSIX shell would (single and double quotes, backslashes).
    static func shellWords(_ line: String) -> [String] {
        var words: [String] = []
        var current = ""
        var inWord = false
        var quote: Character?
        var escaped = false
        for character in line {
            if escaped { current.append(character); escaped = false; continue }
            if let open = quote {
                if character == open { quote = nil } else if character == "\\" && open == "\"" { escaped = true } else { current.append(character) }
                continue
            }
            switch character {
            case "'", "\"": quote = character; inWord = true
            case "\\": escaped = true; inWord = true
            case " ", "\t":
                if inWord { words.append(current); current = ""; inWord = false }
            default: current.append(character); inWord = true
            }
        }
        if inWord { words.append(current) }
        return words
    }

    @Test func shellWordsSplitLikeTheShell() {
        #expect(Self.shellWords(#"a 'b c' "d \"e\"" f\ g"#) == ["a", "b c", #"d "e""#, "f g"])
    }

    /// Parse `rack-gateway-db ARGS` the way the binary would (options validated too).
    static func expectValid(_ command: String, in place: String) {
        var words = shellWords(command)
        if let end = words.firstIndex(where: { $0 == "2>&1" || $0 == "|" }) { words = Array(words[..<end]) }
        guard let start = words.firstIndex(where: { $0.hasSuffix("rack-gateway-db") }) else {
            Issue.record("no rack-gateway-db command in \(place): \(command)")
            return
        }
        let arguments = Array(words[(start + 1)...])
        #expect(throws: Never.self, "\(place): \(arguments)") { _ = try RackGatewayDBCommand.parseAsRoot(arguments) }
    }

    @Test func crontabLinesParseAndRunValidCommands() throws {
        var jobs = 0
        for line in try Self.text("crontab").split(separator: "\n") where !line.hasPrefix("#") && !line.contains("=") || line.contains(" rack-gateway-db ") {
            guard !line.hasPrefix("#") else { continue }
            let fields = line.split(separator: " ", maxSplits: 5)
            #expect(fields.count == 6, "five schedule fields and a command: \(line)")
            let ranges = [0...59, 0...23, 1...31, 1...12, 0...7]
            for (field, range) in zip(fields.prefix(5), ranges) {
                for part in field.split(separator: ",") {
                    let value = part.split(separator: "/").first.map(String.init) ?? ""
                    #expect(value == "*" || Int(value).map(range.contains) == true, "field \(field) of \(line)")
                }
            }
            Self.expectValid(String(fields[5]), in: "crontab")
            if fields[5].contains(" drill ") { #expect(fields[5].contains("--migrations "), "\(line)") }
            jobs += 1
        }
        #expect(jobs == 3)
    }

    @Test func runbookCommandsAreValid() throws {
        let commands = try Self.text("RUNBOOK.md").split(separator: "\n").filter { $0.hasPrefix("rack-gateway-db ") }
        #expect(commands.count >= 5)
        for command in commands {
            Self.expectValid(String(command.split(separator: "#").first ?? command), in: "RUNBOOK.md")
        }
        // The pipeline and the drill name the database's own migrations (a foreign set is refused).
        for command in commands where command.contains("--convox-app") || command.contains(" drill ") {
            #expect(command.contains("--migrations ") || command.contains("--migrate-command "), "\(command)")
        }
    }

    static func yaml(_ name: String) throws -> [String: Any] {
        let output = try Shell.runChecked("/usr/bin/env", ["python3", "-c", "import json, sys, yaml; print(json.dumps(yaml.safe_load(open(sys.argv[1]))))",
                                                           samples + "/" + name])
        return try JSONSerialization.jsonObject(with: Data(output.utf8)) as! [String: Any]
    }

    @Test func convoxTimersAndTheCronJobParse() throws {
        let convox = try Self.yaml("convox.yml")
        let timers = try #require(convox["timers"] as? [String: [String: Any]])
        #expect(timers.count == 3)
        let services = try #require(convox["services"] as? [String: Any])
        for (name, timer) in timers {
            #expect((timer["schedule"] as? String)?.split(separator: " ").count == 5, "\(name)")
            #expect(timer["concurrency"] as? String == "Forbid", "\(name)")
            #expect(services[timer["service"] as? String ?? ""] != nil, "\(name) runs in a declared service")
            Self.expectValid(timer["command"] as? String ?? "", in: "convox.yml \(name)")
        }
        // The app's shape: the jobs run on `admin`, with the privileged URL and TLS required; the drill
        // checks migrations with the application's own migrate.
        let admin = try #require(services["admin"] as? [String: Any])
        let adminEnvironment = try #require(admin["environment"] as? [String])
        #expect(adminEnvironment.contains("RGW_DATABASE_URL=${ADMIN_DATABASE_URL}") && adminEnvironment.contains("PGSSLMODE=require"))
        #expect(timers.values.allSatisfy { $0["service"] as? String == "admin" })
        let drill = try #require(timers.values.first { ($0["command"] as? String)?.contains(" drill ") == true })
        #expect(Self.shellWords(drill["command"] as? String ?? "").contains("rack-gateway-api migrate"), "\(drill)")
        let cronJob = try Self.yaml("k8s/cronjob.yaml")
        #expect(cronJob["kind"] as? String == "CronJob")
        let spec = try #require(cronJob["spec"] as? [String: Any])
        #expect(spec["concurrencyPolicy"] as? String == "Forbid")
        let container = try #require((((((spec["jobTemplate"] as? [String: Any])?["spec"] as? [String: Any])?["template"] as? [String: Any])?["spec"] as? [String: Any])?["containers"] as? [[String: Any]])?.first)
        Self.expectValid("rack-gateway-db " + ((container["args"] as? [String]) ?? []).joined(separator: " "), in: "cronjob.yaml")
    }

    @Test func systemdUnitsRunValidCommandsAndVerify() throws {
        let directory = try TestArchives.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var units: [String] = []
        for name in ["rack-gateway-backup.service", "rack-gateway-backup.timer", "rack-gateway-drill.service", "rack-gateway-drill.timer"] {
            var text = try Self.text("systemd/" + name)
            for line in text.split(separator: "\n") where line.hasPrefix("ExecStart") {
                Self.expectValid(String(line.drop { $0 != "=" }.dropFirst()), in: name)
            }
            // systemd-analyze checks that the program exists: point it at this build.
            text = text.replacingOccurrences(of: "/usr/local/bin/rack-gateway-db", with: CLI.executable)
            try text.write(toFile: directory + "/" + name, atomically: true, encoding: .utf8)
            units.append(directory + "/" + name)
        }
        if FileManager.default.isExecutableFile(atPath: "/usr/bin/systemd-analyze") {
            let result = try Shell.run("/usr/bin/systemd-analyze", ["verify"] + units)
            #expect(result.status == 0, "\(result.stderr)")
        }
    }

    /// The image's runtime stage installs every package whose shared library the binary needs
    /// (the Swift runtime is linked in with --static-swift-stdlib).
    @Test func theRuntimeImageHasEveryLibraryTheBinaryNeeds() throws {
        let dockerfile = try Self.text("Dockerfile")
        let runtime = try #require(dockerfile.components(separatedBy: "FROM debian:bookworm-slim").last)
        let needed = try Shell.runChecked("/usr/bin/readelf", ["-d", CLI.executable]).split(separator: "\n")
            .compactMap { line -> String? in
                guard line.contains("(NEEDED)"), let open = line.firstIndex(of: "["), let close = line.lastIndex(of: "]") else { return nil }
                return String(line[line.index(after: open)..<close])
            }
        let swiftRuntime = ["libswift", "libFoundation", "libdispatch", "libBlocksRuntime", "lib_"]
        let ldd = try Shell.runChecked("/usr/bin/ldd", [CLI.executable])
        var packages: Set<String> = []
        for library in needed where !swiftRuntime.contains(where: library.hasPrefix) {
            let path = try #require(ldd.split(separator: "\n").first { $0.contains(library + " => ") }?
                .split(separator: " ").first { $0.hasPrefix("/") }.map(String.init), "\(library) resolves")
            // Debian's merged /usr: the loader may name /lib/... where dpkg recorded /usr/lib/... or the reverse.
            let candidates = [path, path.hasPrefix("/usr/") ? String(path.dropFirst(4)) : "/usr" + path]
            let owner = candidates.lazy.compactMap { try? Shell.runChecked("/usr/bin/dpkg", ["-S", $0]) }.first
                .flatMap { $0.split(separator: ":").first.map(String.init) }
            packages.insert(try #require(owner, "a package owns \(path)"))
        }
        #expect(packages.isSuperset(of: ["libpq5", "zlib1g", "libdeflate0", "libssl3"]), "\(packages)")
        for package in packages where package != "libc6" {
            #expect(runtime.contains(package), "the runtime stage installs \(package)")
        }
    }
}
