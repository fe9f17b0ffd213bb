import Foundation
import Testing
import TestSupport
@testable import rack_gateway_db
@testable import RackGatewayDB

/// The scheduling samples and the image recipe in samples/: they parse, and every rack-gateway-db
/// command in them is a valid invocation of this build. Serialized: tests here write programs they
/// then run (a fake `logger`) while others start long-lived children (a receiver), which could
/// inherit the program's open file and make its exec fail with "text file busy".
@Suite("samples", .serialized)
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
        // A Convox timer's `sh -c 'NAME="$VALUE" exec rack-gateway-db ...'`: the script's words.
        if words.count == 3 && words[0] == "sh" && words[1] == "-c" { words = shellWords(words[2]) }
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
        #expect(jobs == 6)
    }

    /// Each job exports what the env file sets (a bare `. FILE` leaves RGW_DATABASE_URL unexported).
    @Test func crontabJobsExportTheEnvFile() throws {
        let jobs = try Self.text("crontab").split(separator: "\n").filter { !$0.hasPrefix("#") && $0.contains(" rack-gateway-db ") }
        #expect(jobs.count == 6)
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
        // The off-site bucket the line copies to (--copy-to), with Object Lock like the first.
        let offsite = S3Client(endpoint: moto.endpoint, region: "us-east-1", bucket: bucket + "-offsite", accessKey: "test", secretKey: "test", pathStyle: true, clock: SystemClock())
        try offsite.createBucket(objectLock: true)
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
            try TestArchives.writeExecutable("#!/bin/sh\ncat >> '\(directory)/syslog'\n", to: directory + "/bin/logger")

            let crontab = try Self.text("crontab")
            let line = try #require(crontab.split(separator: "\n").first { !$0.hasPrefix("#") && $0.contains(" rack-gateway-db backup ") })
            let path = try #require(crontab.split(separator: "\n").first { $0.hasPrefix("PATH=") }).dropFirst(5)
            let shell = try #require(crontab.split(separator: "\n").first { $0.hasPrefix("SHELL=") }).dropFirst(6)
            let command = String(line.split(separator: " ", maxSplits: 5)[5])
                .replacingOccurrences(of: "/etc/rack-gateway-db.env", with: envFile)
                .replacingOccurrences(of: "s3://rack-gateway-backups/", with: "s3://\(bucket)/")
                .replacingOccurrences(of: "s3://rack-gateway-backups-offsite/", with: "s3://\(bucket)-offsite/")
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
            // The copy is there, verified, and locked like the archive.
            let copies = try S3Store(client: offsite, prefix: "nightly").list().map(\.name)
            #expect(Set(copies.filter { $0.contains(".sql.gz") }) == Set(archives.filter { $0.contains(".sql.gz") }), "\(copies) against \(archives)")
            #expect(CopyLog.entries(store: S3Store(client: offsite, prefix: "nightly")).map(\.outcome) == [.copied], "\(copies)")
            let archive = try #require(archives.first { $0.hasSuffix(".sql.gz") })
            #expect(try S3Store(client: offsite, prefix: "nightly").retainedUntil(archive) != nil)
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
        try yamlDocuments(name).first ?? [:]
    }

    /// Every document of a YAML file (`---` separated), as JSON objects.
    static func yamlDocuments(_ name: String) throws -> [[String: Any]] {
        let output = try Shell.runChecked("/usr/bin/env", ["python3", "-c", "import json, sys, yaml; print(json.dumps(list(yaml.safe_load_all(open(sys.argv[1])))))",
                                                           samples + "/" + name])
        return try JSONSerialization.jsonObject(with: Data(output.utf8)) as! [[String: Any]]
    }

    /// Convox's interpolation of a convox.yml at release time: each `${NAME}` becomes NAME's value in
    /// the app's environment, or nothing.
    static func convoxInterpolated(_ text: String, environment: [String: String]) throws -> String {
        let pattern = try NSRegularExpression(pattern: #"\$\{([^}]*?)\}"#)
        var result = text
        for match in pattern.matches(in: text, range: NSRange(text.startIndex..., in: text)).reversed() {
            let name = String(text[Range(match.range(at: 1), in: text)!])
            result.replaceSubrange(Range(match.range, in: result)!, with: environment[name] ?? "")
        }
        return result
    }

    @Test func convoxTimersAndTheCronJobParse() throws {
        let convox = try Self.yaml("convox.yml")
        let timers = try #require(convox["timers"] as? [String: [String: Any]])
        #expect(timers.count == 4)
        let services = try #require(convox["services"] as? [String: Any])
        // The app's environment as `convox env set` gives it; Convox fills in the ${NAME}s at release.
        let environment = ["ADMIN_DATABASE_URL": "postgres://rgw_admin@db.example:5432/rack_gateway",
                           "BACKUP_PING_URL": "https://hc-ping.com/backup-uuid", "PRUNE_PING_URL": "https://hc-ping.com/prune-uuid",
                           "DRILL_PING_URL": "https://hc-ping.com/drill-uuid", "CHECK_PING_URL": "https://hc-ping.com/check-uuid"]
        for (name, timer) in timers {
            #expect((timer["schedule"] as? String)?.split(separator: " ").count == 5, "\(name)")
            #expect(timer["concurrency"] as? String == "Forbid", "\(name)")
            #expect(services[timer["service"] as? String ?? ""] != nil, "\(name) runs in a declared service")
            Self.expectValid(try Self.convoxInterpolated(timer["command"] as? String ?? "", environment: environment), in: "convox.yml \(name)")
        }
        // The app's shape: the jobs run on `admin`, with the privileged URL and TLS required; the drill
        // checks migrations with the application's own migrate.
        let admin = try #require(services["admin"] as? [String: Any])
        let adminEnvironment = try #require(admin["environment"] as? [String])
        #expect(adminEnvironment.contains("RGW_DATABASE_URL=${ADMIN_DATABASE_URL}") && adminEnvironment.contains("PGSSLMODE=require"))
        #expect(timers.values.allSatisfy { $0["service"] as? String == "admin" })
        let drill = try #require(timers.values.first { ($0["command"] as? String)?.contains(" drill ") == true })
        #expect(Self.shellWords(Self.shellWords(drill["command"] as? String ?? "").last ?? "").contains("rack-gateway-api migrate"), "\(drill)")
        let cronJob = try Self.yaml("k8s/cronjob.yaml")
        #expect(cronJob["kind"] as? String == "ServiceAccount")
        let job = try #require(try Self.yamlDocuments("k8s/cronjob.yaml").first { $0["kind"] as? String == "CronJob" })
        let spec = try #require(job["spec"] as? [String: Any])
        #expect(spec["concurrencyPolicy"] as? String == "Forbid")
        let container = try #require((((((spec["jobTemplate"] as? [String: Any])?["spec"] as? [String: Any])?["template"] as? [String: Any])?["spec"] as? [String: Any])?["containers"] as? [[String: Any]])?.first)
        Self.expectValid("rack-gateway-db " + ((container["args"] as? [String]) ?? []).joined(separator: " "), in: "cronjob.yaml")
    }

    /// Someone is told on Convox: every timer pings its own check (RGW_NOTIFY_URL, --notify's
    /// default, set from a variable of the app's environment that Convox requires, by `sh -c` at run
    /// time: the secret URL is in no argument and no release), every run pushes its metrics
    /// (RGW_PUSHGATEWAY_URL, --pushgateway's default, required the same way), an hourly timer checks
    /// the newest good backup's age, and `admin` (whose service account the timers' copy) carries
    /// the whole IRSA annotation.
    @Test func convoxTimersTellSomeoneAndAssumeTheRole() throws {
        let text = try Self.text("convox.yml")
        let convox = try Self.yaml("convox.yml")
        let timers = try #require(convox["timers"] as? [String: [String: Any]])
        let admin = try #require((convox["services"] as? [String: Any])?["admin"] as? [String: Any])
        let declared = try #require(admin["environment"] as? [String])
        // Declared without a default: Convox's "required env" stops a release that lacks one.
        #expect(declared.contains("RGW_PUSHGATEWAY_URL"))
        var pingVariables: Set<String> = []
        for (name, timer) in timers {
            let command = timer["command"] as? String ?? ""
            let words = Self.shellWords(command)
            #expect(words.count == 3 && words.prefix(2) == ["sh", "-c"], "\(name): \(command)")
            let script = Self.shellWords(words.last ?? "")
            let assignment = try #require(script.first, "\(name)")
            #expect(assignment.range(of: #"^RGW_NOTIFY_URL=\$[A-Z][A-Z0-9_]*$"#, options: .regularExpression) != nil, "\(name): \(assignment)")
            #expect(script.dropFirst().starts(with: ["exec", "rack-gateway-db"]), "\(name): \(script)")
            let variable = String(assignment.dropFirst("RGW_NOTIFY_URL=$".count))
            #expect(declared.contains(variable), "\(name): \(variable) is declared on admin without a default")
            pingVariables.insert(variable)
            #expect(!command.contains("${") && !command.contains("https://"), "\(name): no URL in the command, the CronJob or the release")
            #expect(!script.contains("--metrics-file"), "\(name): nothing reads a file in a timer's container")
        }
        #expect(pingVariables.count == timers.count, "each timer has its own check: \(pingVariables)")
        // Every ${NAME} in the file (comments aside) is declared somewhere, so none is filled in empty.
        let allDeclared = Set((((convox["environment"] as? [String]) ?? []) + declared).map { String($0.prefix { $0 != "=" }) })
        for line in text.split(separator: "\n").map(String.init) where !line.trimmingCharacters(in: .whitespaces).hasPrefix("#") {
            for match in try NSRegularExpression(pattern: #"\$\{([A-Z0-9_]+)\}"#).matches(in: line, range: NSRange(line.startIndex..., in: line)) {
                let name = String(line[Range(match.range(at: 1), in: line)!])
                #expect(allDeclared.contains(name), "${\(name)} is declared in convox.yml's environment")
            }
        }
        let ages = timers.filter { ($0.value["command"] as? String)?.contains(" check ") == true }
        #expect(ages.count == 1)
        let age = try #require(ages.first?.value)
        #expect(Self.shellWords(Self.shellWords(age["command"] as? String ?? "").last ?? "").dropFirst(2).starts(with: ["rack-gateway-db", "check", "--max-backup-age", "26h"]), "\(age)")
        #expect((age["schedule"] as? String)?.hasSuffix(" * * * *") == true, "hourly: \(age)")
        // IRSA: the annotation names a whole role ARN (account and role), on the timers' service.
        let annotations = try #require(admin["annotations"] as? [String])
        #expect(annotations.contains { $0.range(of: #"^eks\.amazonaws\.com/role-arn=arn:aws:iam::[0-9]{12}:role/[A-Za-z0-9+=,.@_-]+$"#, options: .regularExpression) != nil }, "\(annotations)")
        #expect(text.contains("system:serviceaccount:<rack>-<app>:timer-*"), "the trust policy names the timers' service accounts")

        // Kubernetes: the CronJob pushes to a Pushgateway (no emptyDir nobody reads), pings its check
        // from the Secret, and its service account carries the role.
        let documents = try Self.yamlDocuments("k8s/cronjob.yaml")
        let job = try #require(documents.first { $0["kind"] as? String == "CronJob" })
        let podSpec = try #require(((((job["spec"] as? [String: Any])?["jobTemplate"] as? [String: Any])?["spec"] as? [String: Any])?["template"] as? [String: Any])?["spec"] as? [String: Any])
        let container = try #require((podSpec["containers"] as? [[String: Any]])?.first)
        let args = (container["args"] as? [String]) ?? []
        let push = try #require(args.firstIndex(of: "--pushgateway"))
        #expect(args[push + 1].hasPrefix("http://") && args[push + 1].hasSuffix(":9091"), "\(args)")
        #expect(!args.contains("--metrics-file") && podSpec["volumes"] == nil, "\(podSpec)")
        let env = (container["env"] as? [[String: Any]]) ?? []
        #expect(env.contains { $0["name"] as? String == "RGW_NOTIFY_URL" && (($0["valueFrom"] as? [String: Any])?["secretKeyRef"]) != nil }, "\(env)")
        let account = try #require(documents.first { $0["kind"] as? String == "ServiceAccount" })
        #expect((account["metadata"] as? [String: Any])?["name"] as? String == podSpec["serviceAccountName"] as? String)
        let role = ((account["metadata"] as? [String: Any])?["annotations"] as? [String: String])?["eks.amazonaws.com/role-arn"] ?? ""
        #expect(role.range(of: #"^arn:aws:iam::[0-9]{12}:role/[A-Za-z0-9+=,.@_-]+$"#, options: .regularExpression) != nil, "\(role)")
    }

    /// The nightly backup timer of samples/convox.yml as the rack runs it (its command split into the
    /// container's arguments, no shell of the rack's own; `admin`'s environment, here the test
    /// database, S3 on moto and the check's ping URL on a local receiver): the check gets URL/start and
    /// URL with one run id; when the database is down, URL/start and URL/1 with the error, and the
    /// backup's exit status is 1 as without the ping.
    @Test func theConvoxBackupTimerPingsItsOwnCheck() throws {
        let moto = try MotoServer.shared()
        let bucket = "rgw-convox-\(UUID().uuidString.prefix(8).lowercased())"
        let client = S3Client(endpoint: moto.endpoint, region: "us-east-1", bucket: bucket, accessKey: "test", secretKey: "test", pathStyle: true, clock: SystemClock())
        try client.createBucket(objectLock: true)
        let timers = try #require(try Self.yaml("convox.yml")["timers"] as? [String: [String: Any]])
        let arguments = Self.shellWords(try #require(timers["nightly-backup"]?["command"] as? String))
        let receiver = try HTTPReceiver()
        try TestDatabase.withMigrated { database in
            let environment = ["PATH": URL(fileURLWithPath: CLI.executable).deletingLastPathComponent().path + ":/usr/bin:/bin",
                               "RGW_DATABASE_URL": database.url, "PGSSLMODE": "disable", "RGW_BACKUP_DIR": "s3://\(bucket)/nightly",
                               "AWS_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
                               "AWS_ENDPOINT_URL_S3": moto.endpoint, "BACKUP_PING_URL": receiver.url("/ping/backup-check")]
            func run(_ environment: [String: String]) throws -> ChildProcess.Output {
                try Shell.run("/usr/bin/env", ["-i"] + environment.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" } + arguments)
            }
            let good = try run(environment)
            #expect(good.status == 0, "\(good.stderr)")
            var requests = receiver.requests
            #expect(requests.map { $0.path.prefix { $0 != "?" } } == ["/ping/backup-check/start", "/ping/backup-check"], "\(requests.map(\.path))")
            let runIDs = Set(requests.map { $0.path.components(separatedBy: "rid=").last ?? "" })
            #expect(runIDs.count == 1 && !(runIDs.first ?? "").isEmpty, "\(requests.map(\.path))")
            #expect(requests.last?.body.hasPrefix("rack-gateway-db backup: backed up ") == true, "\(requests.last?.body ?? "")")
            #expect(!requests.contains { $0.body.contains(database.cluster.password) })
            let archives = try S3Store(client: client, prefix: "nightly").list().map(\.name)
            #expect(archives.contains { $0.hasSuffix(".sql.gz") }, "\(archives)")

            // 3 a.m., the database is down: the check is told, with the error.
            var down = environment
            down["RGW_DATABASE_URL"] = "postgres://nobody@127.0.0.1:\(try TestCluster.freePort())/rack_gateway"
            let failed = try run(down)
            #expect(failed.status == 1, "\(failed.stderr)")
            requests = Array(receiver.requests.dropFirst(2))
            #expect(requests.map { $0.path.prefix { $0 != "?" } } == ["/ping/backup-check/start", "/ping/backup-check/1"], "\(requests.map(\.path))")
            #expect(requests.last?.body.contains("127.0.0.1") == true, "\(requests.last?.body ?? "")")
        }
    }

    /// The systemd units: each job's command is valid, each job (backup, drill, the hourly backup age
    /// check) has a timer and names the failure reporter in OnFailure=, and systemd-analyze verifies
    /// the units and the reporter's instance for each job.
    @Test func systemdUnitsRunValidCommandsAndVerify() throws {
        let directory = try TestArchives.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var units: [String] = []
        let jobs = ["rack-gateway-backup.service", "rack-gateway-drill.service", "rack-gateway-check.service"]
        let files = try FileManager.default.contentsOfDirectory(atPath: Self.samples + "/systemd").sorted()
        #expect(Set(files) == Set(jobs + jobs.map { $0.replacingOccurrences(of: ".service", with: ".timer") } + ["rack-gateway-failure@.service"]), "\(files)")
        for name in files {
            var text = try Self.text("systemd/" + name)
            for line in text.split(separator: "\n") where line.hasPrefix("ExecStart") && line.contains("rack-gateway-db ") {
                Self.expectValid(String(line.drop { $0 != "=" }.dropFirst()), in: name)
            }
            if jobs.contains(name) {
                #expect(text.split(separator: "\n").contains("OnFailure=rack-gateway-failure@%n.service"), "\(name)")
            }
            if name == "rack-gateway-check.service" {
                #expect(text.contains(" check --dir s3://rack-gateway-backups/nightly --max-backup-age 26h --metrics-file /var/lib/node_exporter/textfile/"), "\(text)")
            }
            // systemd-analyze checks that the program exists: point it at this build.
            text = text.replacingOccurrences(of: "/usr/local/bin/rack-gateway-db", with: CLI.executable)
            if name.hasSuffix("@.service") {
                // A template verifies as an instance: the one each job's failure starts.
                for job in jobs {
                    let instance = directory + "/" + name.replacingOccurrences(of: "@.service", with: "@\(job).service")
                    try text.write(toFile: instance, atomically: true, encoding: .utf8)
                    units.append(instance)
                }
                continue
            }
            try text.write(toFile: directory + "/" + name, atomically: true, encoding: .utf8)
            units.append(directory + "/" + name)
        }
        if FileManager.default.isExecutableFile(atPath: "/usr/bin/systemd-analyze") {
            let result = try Shell.run("/usr/bin/systemd-analyze", ["verify"] + units)
            #expect(result.status == 0, "\(result.stderr)")
        }
    }

    /// The failure reporter's ExecStart= as systemd runs it (%i the failed unit, $$ a dollar sign,
    /// %% a percent sign; backslash escapes taken inside the quotes): it logs at crit and posts a
    /// Slack-style {"text": ...} naming the unit and the host to RGW_WEBHOOK_URL; without one it
    /// only logs.
    @Test func theFailureReporterLogsAndPostsTheFailedUnit() throws {
        let unit = try Self.text("systemd/rack-gateway-failure@.service")
        let execStart = try #require(unit.split(separator: "\n").first { $0.hasPrefix("ExecStart=") }).dropFirst("ExecStart=".count)
        #expect(unit.contains("EnvironmentFile=/etc/rack-gateway-db.env"))
        // systemd's unquoting of this line: /bin/sh -c 'SCRIPT' sh %i.
        let prefix = "/bin/sh -c '", suffix = "' sh %i"
        #expect(execStart.hasPrefix(prefix) && execStart.hasSuffix(suffix), "\(execStart)")
        let script = String(execStart.dropFirst(prefix.count).dropLast(suffix.count))
            .replacingOccurrences(of: "$$", with: "$").replacingOccurrences(of: "%%", with: "%")
            .replacingOccurrences(of: #"\\"#, with: #"\"#)
        #expect(!script.contains("'"))

        let directory = try TestArchives.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        // syslog's logger: what the reporter logs, in a file.
        let reporter = "logger() { echo \"$@\" >> '\(directory)/syslog'; }; " + script
        // A receiver that records the one POST it gets, as a Slack incoming webhook would take it.
        let receiver = """
            import http.server, sys
            class H(http.server.BaseHTTPRequestHandler):
                def do_POST(self):
                    body = self.rfile.read(int(self.headers['Content-Length']))
                    open(sys.argv[1], 'wb').write(self.headers['Content-Type'].encode() + b'\\n' + body)
                    self.send_response(200); self.end_headers(); self.wfile.write(b'ok')
                def log_message(self, *a): pass
            s = http.server.HTTPServer(('127.0.0.1', 0), H)
            print(s.server_address[1], flush=True)
            s.handle_request()
            """
        try receiver.write(toFile: directory + "/receiver.py", atomically: true, encoding: .utf8)
        let server = Process()
        server.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        server.arguments = ["python3", directory + "/receiver.py", directory + "/received"]
        let pipe = Pipe()
        server.standardOutput = pipe
        try server.run()
        defer { if server.isRunning { server.terminate() } }
        let port = String(decoding: pipe.fileHandleForReading.availableData, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(Int(port) != nil, "\(port)")
        let path = "/usr/bin:/bin"
        let failed = "rack-gateway-backup.service"
        // The tool exited with a status of its own: it posted to the webhook itself; this only logs.
        let closed = try TestCluster.freePort()
        let byTheTool = try Shell.run("/usr/bin/env", ["-i", "PATH=\(path)", "RGW_WEBHOOK_URL=http://127.0.0.1:\(closed)/services/T/B/X",
                                                       "MONITOR_SERVICE_RESULT=exit-code", "/bin/sh", "-c", reporter, "sh", failed])
        #expect(byTheTool.status == 0 && byTheTool.stderr.isEmpty, "posts nothing (the port is closed): \(byTheTool)")
        #expect(try String(contentsOfFile: directory + "/syslog", encoding: .utf8).contains("(systemd result: exit-code)"))
        try FileManager.default.removeItem(atPath: directory + "/syslog")
        // Killed by its timeout: the tool could not say it; this posts.
        let run = try Shell.run("/usr/bin/env", ["-i", "PATH=\(path)", "RGW_WEBHOOK_URL=http://127.0.0.1:\(port)/services/T/B/X",
                                                 "MONITOR_SERVICE_RESULT=timeout", "/bin/sh", "-c", reporter, "sh", failed])
        #expect(run.status == 0, "\(run.stderr)")
        server.waitUntilExit()
        let received = try String(contentsOfFile: directory + "/received", encoding: .utf8)
        let (contentType, body) = (received.prefix { $0 != "\n" }, received.drop { $0 != "\n" }.dropFirst())
        #expect(contentType == "application/json")
        let json = try #require(try JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any], "\(body)")
        let text = try #require(json["text"] as? String)
        let host = try Shell.runChecked("/bin/hostname", []).trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(text.contains("\(failed) failed on \(host) at ") && text.contains("journalctl -u \(failed) (systemd result: timeout)"), "\(text)")
        #expect(text.range(of: #" at [0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z;"#, options: .regularExpression) != nil, "\(text)")
        let logged = try String(contentsOfFile: directory + "/syslog", encoding: .utf8)
        #expect(logged.hasPrefix("-p daemon.crit -t rack-gateway-failure rack-gateway-db: \(failed) failed on "), "\(logged)")

        // No webhook configured: it logs, posts nothing, and succeeds.
        try FileManager.default.removeItem(atPath: directory + "/syslog")
        let quiet = try Shell.run("/usr/bin/env", ["-i", "PATH=\(path)", "/bin/sh", "-c", reporter, "sh", "rack-gateway-drill.service"])
        #expect(quiet.status == 0 && quiet.stderr.isEmpty, "\(quiet.stderr)")
        #expect(try String(contentsOfFile: directory + "/syslog", encoding: .utf8).contains("rack-gateway-drill.service failed on "))
    }

    static let alerts = ["RackGatewayBackupTooOld", "RackGatewayBackupFailed", "RackGatewayBackupSuspect", "RackGatewayBackupCopyFailed", "RackGatewayCopyStale", "RackGatewayArchiveVerifyFailed",
                         "RackGatewayDrillFailed", "RackGatewayExistingDrillFailed", "RackGatewayPushStale", "RackGatewayMetricsMissing"]

    /// The alert rules of samples/prometheus (the README's "Monitoring"): Prometheus's promtool
    /// accepts them, their unit tests pass, and each of the four alerts has a case where it fires and
    /// one where it stays quiet.
    @Test func alertRulesCheckAndTheirTestsPass() throws {
        let rules = Self.samples + "/prometheus/rack-gateway-db.rules.yml"
        let check = try Shell.run("/usr/bin/promtool", ["check", "rules", rules])
        #expect(check.status == 0 && check.stdout.contains("SUCCESS: \(Self.alerts.count) rules found"), "\(check.stdout)\(check.stderr)")
        let names = try #require(((try Self.yaml("prometheus/rack-gateway-db.rules.yml")["groups"] as? [[String: Any]])?.first?["rules"] as? [[String: Any]])?.compactMap { $0["alert"] as? String })
        #expect(names == Self.alerts)
        // promtool test rules resolves rule_files next to the test file.
        let tested = try Shell.run("/usr/bin/promtool", ["test", "rules", Self.samples + "/prometheus/rack-gateway-db.rules.test.yml"])
        #expect(tested.status == 0 && tested.stdout.contains("SUCCESS"), "\(tested.stdout)\(tested.stderr)")
        let cases = try #require(try Self.yaml("prometheus/rack-gateway-db.rules.test.yml")["tests"] as? [[String: Any]])
            .flatMap { ($0["alert_rule_test"] as? [[String: Any]]) ?? [] }
        for alert in Self.alerts {
            let own = cases.filter { $0["alertname"] as? String == alert }
            #expect(own.contains { !(($0["exp_alerts"] as? [Any]) ?? []).isEmpty }, "a case where \(alert) fires")
            #expect(own.contains { (($0["exp_alerts"] as? [Any]) ?? []).isEmpty }, "a case where \(alert) stays quiet")
        }
    }

    /// The chain as it runs: the tool pushes to Debian's real Pushgateway, a real Prometheus scrapes it
    /// (honor_labels, as the README says) with the sample rules loaded, and the alerts follow: none
    /// after a good backup, RackGatewayBackupSuspect firing after a SUSPECT one, RackGatewayDrillFailed
    /// after a drill that could not run, RackGatewayBackupTooOld pending (its `for`) after a check that
    /// found no good archive, RackGatewayArchiveVerifyFailed firing after a verify --sample that found
    /// the first archive damaged (quiet before it).
    @Test func theAlertRulesFollowWhatTheToolPushes() throws {
        try TestDatabase.with { source in
            try source.psql("CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t SELECT i, 'row ' || i FROM generate_series(1, 1000) i")
            let directory = try TestArchives.temporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: directory) }
            // In memory only: Debian's default persistence file is shared by every gateway on the machine.
            let gateway = try MetricsTests.BackgroundServer(["/usr/bin/prometheus-pushgateway", "--web.listen-address=127.0.0.1:$PORT", "--persistence.file="])
            defer { gateway.stop() }
            let config = """
                global: {scrape_interval: 1s, evaluation_interval: 1s}
                scrape_configs:
                  - job_name: pushgateway
                    honor_labels: true
                    static_configs: [{targets: ["\(gateway.url.dropFirst("http://".count))"]}]
                rule_files: ["\(Self.samples)/prometheus/rack-gateway-db.rules.yml"]
                """
            try config.write(toFile: directory + "/prometheus.yml", atomically: true, encoding: .utf8)
            let prometheus = try MetricsTests.BackgroundServer(["/usr/bin/prometheus", "--config.file=\(directory)/prometheus.yml",
                                                                "--storage.tsdb.path=\(directory)/tsdb", "--web.listen-address=127.0.0.1:$PORT"],
                                                               path: "/-/ready")
            defer { prometheus.stop() }
            /// The alerts' states by name once `until` holds of them (30 s at most).
            func alerts(until done: ([String: String]) -> Bool) throws -> [String: String] {
                var states: [String: String] = [:]
                for _ in 0..<60 {
                    let answer = try MetricsTests.BackgroundServer.get(prometheus.url + "/api/v1/alerts")
                    let list = (((try JSONSerialization.jsonObject(with: Data(answer.utf8)) as? [String: Any])?["data"] as? [String: Any])?["alerts"] as? [[String: Any]]) ?? []
                    states = Dictionary(list.compactMap { alert in
                        ((alert["labels"] as? [String: String])?["alertname"]).map { ($0, alert["state"] as? String ?? "") }
                    }) { a, b in a == "firing" ? a : b }
                    if done(states) { return states }
                    Thread.sleep(forTimeInterval: 0.5)
                }
                return states
            }
            /// Whether Prometheus has scraped `query` (a series the last run pushed).
            func scraped(_ query: String) throws -> Bool {
                let answer = try MetricsTests.BackgroundServer.get(prometheus.url + "/api/v1/query?query=" + (query.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? ""))
                return !((((try JSONSerialization.jsonObject(with: Data(answer.utf8)) as? [String: Any])?["data"] as? [String: Any])?["result"] as? [Any]) ?? []).isEmpty
            }
            let environment = ["RGW_DATABASE_URL": source.url, "RGW_PUSHGATEWAY_URL": gateway.url, "RGW_BACKUP_DIR": directory]

            let good = try CLI.run(["backup"], environment: environment)
            #expect(good.status == 0, "\(good)")
            for _ in 0..<40 where try !scraped("rgw_backup_suspect == 0") { Thread.sleep(forTimeInterval: 0.5) }
            #expect(try scraped("rgw_backup_suspect == 0"))
            Thread.sleep(forTimeInterval: 2)  // two evaluations of the rules on it
            let quiet = try alerts { _ in true }
            let pushedThen = (try? gateway.metrics()) ?? ""
            #expect(quiet.isEmpty, "a good backup raises nothing: \(quiet) \(pushedThen)")

            try source.psql("DELETE FROM t WHERE id > 100")
            Thread.sleep(forTimeInterval: 1.1)
            let suspect = try CLI.run(["backup"], environment: environment)
            #expect(suspect.status == 2, "\(suspect)")
            // The password rotated at 3 a.m.: the backup fails, and its last failure is newer than its last success.
            let wrongPassword = try CLI.run(["backup"], environment: environment.merging(["RGW_DATABASE_URL": source.cluster.url(database: source.name, password: "rotated")]) { $1 })
            #expect(wrongPassword.status == 1, "\(wrongPassword)")
            // A place without archives: the drill cannot run, the check finds no good archive.
            try FileManager.default.createDirectory(atPath: directory + "/empty", withIntermediateDirectories: false)
            let drill = try CLI.run(["drill", "--latest", "--dir", directory + "/empty"], environment: environment)
            #expect(drill.status == 1, "\(drill)")
            let check = try CLI.run(["check", "--max-backup-age", "26h", "--dir", directory + "/empty"], environment: environment)
            #expect(check.status == 2, "\(check)")
            // The nightly re-read finds the first (good) archive damaged: a byte flipped in a data chunk.
            let first = try #require(try FileManager.default.contentsOfDirectory(atPath: directory).filter { $0.hasSuffix(".sql.gz") }.sorted().first)
            let member = try #require(try ArchiveReader(path: directory + "/" + first).manifest.members.first { $0.kind == .data })
            var bytes = try #require(FileManager.default.contents(atPath: directory + "/" + first))
            bytes[member.offset + member.length / 2] ^= 0x40
            try bytes.write(to: URL(fileURLWithPath: directory + "/" + first))
            let sample = try CLI.run(["verify", "--sample", "100"], environment: environment)
            #expect(sample.status == 2, "\(sample)")
            let states = try alerts { $0["RackGatewayBackupSuspect"] == "firing" && $0["RackGatewayDrillFailed"] == "firing" && $0["RackGatewayBackupFailed"] == "firing"
                && $0["RackGatewayBackupTooOld"] != nil && $0["RackGatewayArchiveVerifyFailed"] == "firing" }
            #expect(states["RackGatewayArchiveVerifyFailed"] == "firing", "\(states)")
            #expect(states["RackGatewayBackupFailed"] == "firing", "\(states)")
            #expect(states["RackGatewayBackupSuspect"] == "firing", "\(states)")
            #expect(states["RackGatewayDrillFailed"] == "firing", "\(states)")
            let pushedNow = (try? gateway.metrics()) ?? ""
            #expect(states["RackGatewayBackupTooOld"] == "pending", "\(states) \(check) \(pushedNow)")
            #expect(states["RackGatewayPushStale"] == nil, "\(states)")
        }
    }

    /// The rule tests could fail: an alert whose expression never fires fails its firing cases, and
    /// one that always fires fails its quiet cases, for each of the four.
    @Test func alertRuleTestsCatchABrokenRule() throws {
        let directory = try TestArchives.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try FileManager.default.copyItem(atPath: Self.samples + "/prometheus/rack-gateway-db.rules.test.yml", toPath: directory + "/rack-gateway-db.rules.test.yml")
        let rewrite = """
            import sys, yaml
            rules = yaml.safe_load(open(sys.argv[1]))
            for rule in rules['groups'][0]['rules']:
                if rule['alert'] == sys.argv[3]: rule['expr'] = sys.argv[4]
            yaml.safe_dump(rules, open(sys.argv[2], 'w'))
            """
        for alert in Self.alerts {
            for (expression, breaks) in [("vector(1) > 2", "fires"), ("vector(1)", "stays quiet")] {
                try Shell.runChecked("/usr/bin/env", ["python3", "-c", rewrite, Self.samples + "/prometheus/rack-gateway-db.rules.yml",
                                                      directory + "/rack-gateway-db.rules.yml", alert, expression])
                let result = try Shell.run("/usr/bin/promtool", ["test", "rules", directory + "/rack-gateway-db.rules.test.yml"])
                #expect(result.status != 0 && result.stderr.contains("alertname: \(alert),"), "\(alert) as `\(expression)`: the tests see it no longer \(breaks)")
            }
        }
    }

    /// The README's "Monitoring" shows the rules file as it is, and names the samples that feed it.
    @Test func theReadmeShowsTheAlertRules() throws {
        let readme = try String(contentsOfFile: URL(fileURLWithPath: Self.samples).deletingLastPathComponent().appendingPathComponent("README.md").path, encoding: .utf8)
        let section = try #require(readme.components(separatedBy: "\n### Monitoring\n").dropFirst().first?.components(separatedBy: "\n## ").first)
        let rules = try Self.text("prometheus/rack-gateway-db.rules.yml")
        let body = rules.split(separator: "\n", omittingEmptySubsequences: false).drop { $0.hasPrefix("#") }.joined(separator: "\n")
        #expect(section.contains("```yaml\n" + body.trimmingCharacters(in: .newlines) + "\n```"), "the README shows samples/prometheus/rack-gateway-db.rules.yml from `groups:` on")
        for name in ["samples/prometheus/rack-gateway-db.rules.yml", "honor_labels: true", "--notify", "--pushgateway", "OnFailure=", "check --max-backup-age 26h"] {
            #expect(section.contains(name), "\(name)")
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
