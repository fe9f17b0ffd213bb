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

    /// Each job exports what the env file sets (a bare `. FILE` leaves RGW_DATABASE_URL unexported).
    @Test func crontabJobsExportTheEnvFile() throws {
        let jobs = try Self.text("crontab").split(separator: "\n").filter { !$0.hasPrefix("#") && $0.contains(" rack-gateway-db ") }
        #expect(jobs.count == 3)
        for job in jobs {
            #expect(job.contains(" set -a && . /etc/rack-gateway-db.env && set +a && rack-gateway-db "), "\(job)")
        }
    }

    /// The sample env file: every variable the tool reads is in it (set or commented), no live
    /// secret, lines systemd's EnvironmentFile= and `sh` read alike, the mode said.
    @Test func theSampleEnvFileNamesEveryVariableAndNoSecret() throws {
        let text = try Self.text("rack-gateway-db.env")
        let sources = URL(fileURLWithPath: Self.samples).deletingLastPathComponent().appendingPathComponent("Sources").path
        var read: Set<String> = []
        let pattern = try NSRegularExpression(pattern: #""((?:RGW_|AWS_|AUDIT_ANCHOR_)[A-Z0-9_]+|PG[A-Z]+|DATABASE_URL|DB_MAX_OPEN_CONNS)""#)
        for file in FileManager.default.enumerator(atPath: sources)!.compactMap({ $0 as? String }) where file.hasSuffix(".swift") {
            let swift = try String(contentsOfFile: sources + "/" + file, encoding: .utf8)
            for match in pattern.matches(in: swift, range: NSRange(swift.startIndex..., in: swift)) {
                read.insert(String(swift[Range(match.range(at: 1), in: swift)!]))
            }
        }
        // Set for children or for tests, not read from the operator's environment.
        read.subtract(["PGAPPNAME", "PGDMP", "RGW_PIPELINE_POLL_SECONDS"])
        #expect(read.count > 30, "\(read.sorted())")
        for name in read.sorted() { #expect(text.contains(name), "\(name) is read by the tool but not in samples/rack-gateway-db.env") }
        for guardVariable in [ResetGuards.confirmationVariable, ResetGuards.devModeVariable] {
            #expect(!text.split(separator: "\n").contains { $0.hasPrefix(guardVariable + "=") }, "\(guardVariable) is set")
        }
        #expect(text.contains("0600") && text.contains("set -a; . /etc/rack-gateway-db.env; set +a"))
        let assignments = text.split(separator: "\n").filter { !$0.hasPrefix("#") && !$0.trimmingCharacters(in: .whitespaces).isEmpty }
        #expect(assignments.count >= 4)
        for line in assignments {
            #expect(line.range(of: ##"^[A-Z][A-Z0-9_]*=('[^']*'|[^\s'"#]*)$"##, options: .regularExpression) != nil, "one NAME=value, no comment after it: \(line)")
        }
        let url = try #require(assignments.first { $0.hasPrefix("RGW_DATABASE_URL=") })
        #expect(url.contains(":CHANGE-ME@"), "a placeholder password: \(url)")
    }

    /// The crontab's backup line, as cron runs it (`SHELL -c LINE` with the crontab's PATH and
    /// nothing else in the environment), with the sample env file as an operator edits it: the test
    /// database, S3 (moto) and its keys. It makes a backup; the same line without `set -a` says that
    /// no database is configured.
    @Test func theCrontabBackupLineMakesABackupWithTheSampleEnvFile() throws {
        let moto = try MotoServer.shared()
        let bucket = "rgw-cron-\(UUID().uuidString.prefix(8).lowercased())"
        let client = S3Client(endpoint: moto.endpoint, region: "us-east-1", bucket: bucket, accessKey: "test", secretKey: "test", pathStyle: true, clock: SystemClock())
        try client.createBucket(objectLock: true)
        let directory = try TestArchives.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try TestDatabase.withMigrated { database in
            var env = try Self.text("rack-gateway-db.env")
            let migrations = URL(fileURLWithPath: Self.samples).deletingLastPathComponent().appendingPathComponent("migrations").path
            for (old, new) in [
                (#"(?m)^RGW_DATABASE_URL=.*$"#, "RGW_DATABASE_URL='\(database.url)'"),
                (#"(?m)^PGSSLMODE=require$"#, "PGSSLMODE=disable"),  // the test server has no TLS
                (#"(?m)^RGW_MIGRATIONS_DIR=.*$"#, "RGW_MIGRATIONS_DIR=\(migrations)"),
                (#"(?m)^# AWS_ACCESS_KEY_ID=.*$"#, "AWS_ACCESS_KEY_ID=test"),
                (#"(?m)^# AWS_SECRET_ACCESS_KEY=.*$"#, "AWS_SECRET_ACCESS_KEY=test"),
                (#"(?m)^# AWS_ENDPOINT_URL_S3=.*$"#, "AWS_ENDPOINT_URL_S3=\(moto.endpoint)"),
            ] {
                let edited = env.replacingOccurrences(of: old, with: new, options: .regularExpression)
                #expect(edited != env, "the sample has \(old)")
                env = edited
            }
            let envFile = directory + "/rack-gateway-db.env"
            try env.write(toFile: envFile, atomically: true, encoding: .utf8)
            // syslog's logger: what the job logs, in a file.
            try FileManager.default.createDirectory(atPath: directory + "/bin", withIntermediateDirectories: true)
            try "#!/bin/sh\ncat >> '\(directory)/syslog'\n".write(toFile: directory + "/bin/logger", atomically: true, encoding: .utf8)
            chmod(directory + "/bin/logger", 0o755)

            let crontab = try Self.text("crontab")
            let line = try #require(crontab.split(separator: "\n").first { !$0.hasPrefix("#") && $0.contains(" rack-gateway-db backup ") })
            let path = try #require(crontab.split(separator: "\n").first { $0.hasPrefix("PATH=") }).dropFirst(5)
            let shell = try #require(crontab.split(separator: "\n").first { $0.hasPrefix("SHELL=") }).dropFirst(6)
            let command = String(line.split(separator: " ", maxSplits: 5)[5])
                .replacingOccurrences(of: "/etc/rack-gateway-db.env", with: envFile)
                .replacingOccurrences(of: "s3://rack-gateway-backups/", with: "s3://\(bucket)/")
                .replacingOccurrences(of: "/var/lib/node_exporter/textfile/", with: directory + "/")
            let cronPath = "\(directory)/bin:\(URL(fileURLWithPath: CLI.executable).deletingLastPathComponent().path):\(path)"
            func cron(_ command: String) throws -> String {
                try? FileManager.default.removeItem(atPath: directory + "/syslog")
                let run = try Shell.run("/usr/bin/env", ["-i", "HOME=\(directory)", "LOGNAME=root", "SHELL=\(shell)", "PATH=\(cronPath)", String(shell), "-c", command])
                #expect(run.status == 0, "\(run.stderr)")
                return (try? String(contentsOfFile: directory + "/syslog", encoding: .utf8)) ?? ""
            }
            let logged = try cron(command)
            #expect(logged.contains("Backed up"), "\(logged)")
            #expect(!logged.contains(database.cluster.password))
            let archives = try S3Store(client: client, prefix: "nightly").list().map(\.name)
            #expect(archives.contains { $0.hasSuffix(".sql.gz") } && archives.contains { $0.hasSuffix(".sql.gz.sha256") }, "\(archives)")
            #expect(FileManager.default.fileExists(atPath: directory + "/rgw_backup.prom"))

            // The line as it was: the env file sourced, not exported.
            let unexported = command.replacingOccurrences(of: "set -a && ", with: "").replacingOccurrences(of: " && set +a", with: "")
            #expect(unexported != command)
            let said = try cron(unexported)
            #expect(said.contains("no database is configured"), "\(said)")
        }
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

    /// The runbook checks an archive before it loads it (never after), and says how to pick an
    /// older archive than the newest, by a path that names it whether or not bare names from `list`
    /// are looked up in --dir.
    @Test func runbookVerifiesBeforeLoadingAndPicksAnOlderArchive() throws {
        let text = try Self.text("RUNBOOK.md")
        let lines = text.split(separator: "\n").map(String.init)
        let checksum = try #require(lines.firstIndex { $0.hasPrefix("sha256sum -c ") })
        let load = try #require(lines.firstIndex { $0.hasPrefix("gunzip -c ") && $0.contains("| psql ") })
        let create = try #require(lines.firstIndex { $0.hasPrefix("createdb ") })
        #expect(checksum < create && checksum < load, "sha256sum -c comes before createdb and the load")
        let restores = lines.indices.filter { lines[$0].hasPrefix("rack-gateway-db restore \"$ARCHIVE\"") }
        #expect(restores.count >= 2)
        for index in restores {
            #expect(lines[..<index].contains { $0.hasPrefix("rack-gateway-db verify \"$ARCHIVE\"") }, "verify before \(lines[index])")
        }
        #expect(text.contains("**When the damage is older than the newest backup**"))
        #expect(lines.contains { $0.hasPrefix("ARCHIVE=\"$RGW_BACKUP_DIR/rack_gateway_backup_") })
        #expect(lines.contains { $0.hasPrefix("rack-gateway-db list") })
        #expect(!lines.contains { $0.contains("rack-gateway-db restore rack_gateway_backup_") }, "a bare name resolves only in newer builds")
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
