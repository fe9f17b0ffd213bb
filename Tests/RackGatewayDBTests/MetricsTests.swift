import Foundation
import RGWPostgres
import RackGatewayDB
import Testing
import TestSupport

/// The run's metrics as their real consumers read them (issue 30): Debian's node_exporter reading
/// `--metrics-file` with its textfile collector as another user than the writer, and Debian's
/// Pushgateway receiving `--pushgateway`, for success, a suspect backup and failure.
@Suite("metrics for collectors")
struct MetricsTests {
    /// A server started in the background for one test, stopped when it ends.
    final class BackgroundServer {
        let pid: Int32
        let url: String
        let log: String

        /// Start `command` (its arguments may use `$PORT`) as `user`, and wait until `path` answers.
        init(_ command: [String], user: String? = nil, path: String = "/metrics") throws {
            let port = try TestCluster.freePort()
            url = "http://127.0.0.1:\(port)"
            log = NSTemporaryDirectory() + "/rgw-metrics-server-\(port).log"
            let arguments = (user.map { ["/usr/sbin/runuser", "-u", $0, "--"] } ?? []) + command.map { $0.replacingOccurrences(of: "$PORT", with: String(port)) }
            let output = try Shell.runChecked("/bin/sh", ["-c", #"log=$1; shift; "$@" >"$log" 2>&1 </dev/null & echo $!"#, "sh", log] + arguments)
            guard let pid = Int32(output.trimmingCharacters(in: .whitespacesAndNewlines)) else { throw ToolError(.failed, "could not start \(command[0])") }
            self.pid = pid
            for _ in 0..<100 {
                if (try? Self.get(url + path)) != nil { return }
                Thread.sleep(forTimeInterval: 0.1)
            }
            stop()
            throw ToolError(.failed, "\(command[0]) did not answer on \(url) within 10 s: \(((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").suffix(1000))",
                            fix: "Run scripts/setup (it installs prometheus-node-exporter and prometheus-pushgateway).")
        }

        func stop() {
            // runuser's child: the whole group it made goes with it.
            kill(pid, SIGTERM)
            _ = try? Shell.run("/usr/bin/pkill", ["-TERM", "-P", String(pid)])
        }

        deinit { stop() }

        /// The body of a GET that answered 200; throws otherwise.
        static func get(_ url: String) throws -> String {
            try Shell.runChecked("/usr/bin/curl", ["-sf", "--max-time", "5", url])
        }

        func metrics() throws -> String { try Self.get(url + "/metrics") }
    }

    /// The sample of `name` with exactly `labels` (as the exposition writes them, sorted) in `text`, as a number.
    static func value(_ text: String, _ name: String, _ labels: String) -> Double? {
        let prefix = labels.isEmpty ? "\(name) " : "\(name){\(labels)} "
        return text.split(separator: "\n").first { $0.hasPrefix(prefix) }.flatMap { Double($0.dropFirst(prefix.count)) }
    }

    static func temporaryDirectory(readableByAll: Bool) throws -> String {
        let directory = try TestArchives.temporaryDirectory()
        if readableByAll { chmod(directory, 0o755) }
        return directory
    }

    @Test func nodeExporterReadsTheMetricsFilesAsAnotherUserAndAGoneArchiveResetsTheNewestGood() throws {
        try TestDatabase.withMigrated { source in
            let root = try Self.temporaryDirectory(readableByAll: true)
            defer { try? FileManager.default.removeItem(atPath: root) }
            let archives = root + "/archives"
            let textfiles = root + "/textfile"
            try FileManager.default.createDirectory(atPath: archives, withIntermediateDirectories: true)
            try FileManager.default.createDirectory(atPath: textfiles, withIntermediateDirectories: true)
            chmod(textfiles, 0o755)
            let environment = ["RGW_DATABASE_URL": source.url]
            let backup = try CLI.run(["backup", "--dir", archives, "--metrics-file", textfiles + "/backup.prom"], environment: environment)
            #expect(backup.status == 0, "\(backup)")
            let check = try CLI.run(["check", "--dir", archives, "--max-backup-age", "26h", "--metrics-file", textfiles + "/check.prom"], environment: environment)
            #expect(check.status == 0, "\(check)")
            for file in ["backup.prom", "check.prom"] {
                let mode = try FileManager.default.attributesOfItem(atPath: textfiles + "/" + file)[.posixPermissions] as? Int
                #expect(mode == 0o644, "\(file): \(String(mode ?? 0, radix: 8))")
            }

            // node_exporter as `nobody`: the files are root's, and it reads them over its HTTP endpoint.
            let exporter = try BackgroundServer(["/usr/bin/prometheus-node-exporter", "--web.listen-address=127.0.0.1:$PORT", "--collector.disable-defaults",
                                                 "--collector.textfile", "--collector.textfile.directory=" + textfiles], user: "nobody")
            defer { exporter.stop() }
            let labels = "database=\"\(source.name)\",dir=\"\(archives)\""
            var scraped = try exporter.metrics()
            #expect(Self.value(scraped, "node_textfile_scrape_error", "") == 0, "\(scraped.split(separator: "\n").filter { $0.contains("textfile") })")
            let newest = try #require(Self.value(scraped, "rgw_backup_newest_good_timestamp_seconds", labels), "\(scraped)")
            #expect(abs(newest - Date().timeIntervalSince1970) < 120, "the newest good archive is the one just taken: \(newest)")
            #expect(Self.value(scraped, "rgw_backup_last_success_timestamp_seconds", labels) != nil, "\(scraped)")
            #expect(Self.value(scraped, "rgw_backup_suspect", labels) == 0, "\(scraped)")
            #expect(Self.value(scraped, "rgw_check_last_success_timestamp_seconds", labels) != nil, "one label set across commands: \(scraped)")

            // The archive gone: the check fails (exit 2) and its file says so; the old healthy time does not survive.
            for file in try FileManager.default.contentsOfDirectory(atPath: archives) where file.contains(".sql.gz") {
                try FileManager.default.removeItem(atPath: archives + "/" + file)
            }
            let stale = try CLI.run(["check", "--dir", archives, "--max-backup-age", "26h", "--metrics-file", textfiles + "/check.prom"], environment: environment)
            #expect(stale.status == 2, "\(stale)")
            scraped = try exporter.metrics()
            #expect(Self.value(scraped, "node_textfile_scrape_error", "") == 0)
            #expect(Self.value(scraped, "rgw_backup_newest_good_timestamp_seconds", labels) == 0, "\(scraped)")
            let checkFile = try String(contentsOfFile: textfiles + "/check.prom", encoding: .utf8)
            #expect(Self.value(checkFile, "rgw_backup_newest_good_timestamp_seconds", labels) == 0, "\(checkFile)")
            #expect(Self.value(checkFile, "rgw_check_last_failure_timestamp_seconds", labels) != nil, "\(checkFile)")
        }
    }

    @Test func thePushgatewayGetsSuccessSuspectAndFailureAndADeadOneIsOnlyAWarning() throws {
        try TestDatabase.with { source in
            try source.psql("CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t SELECT i, 'row ' || i FROM generate_series(1, 1000) i")
            let directory = try TestArchives.temporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let gateway = try BackgroundServer(["/usr/bin/prometheus-pushgateway", "--web.listen-address=127.0.0.1:$PORT", "--persistence.file="])
            defer { gateway.stop() }
            // The environment default, as a Convox timer sets it.
            let environment = ["RGW_DATABASE_URL": source.url, "RGW_PUSHGATEWAY_URL": gateway.url]
            // The group: job, command, database and directory (the gateway puts them on every metric).
            let labels = "command=\"backup\",database=\"\(source.name)\",dir=\"\(directory)\",instance=\"\",job=\"rack_gateway_db\""
            let group = labels

            let good = try CLI.run(["backup", "--dir", directory], environment: environment)
            #expect(good.status == 0 && !good.stderr.contains("warning: cannot push"), "\(good)")
            var pushed = try gateway.metrics()
            let firstPush = try #require(Self.value(pushed, "push_time_seconds", group), "\(pushed)")
            let success = try #require(Self.value(pushed, "rgw_backup_last_success_timestamp_seconds", labels), "\(pushed)")
            #expect(Self.value(pushed, "rgw_backup_suspect", labels) == 0 && Self.value(pushed, "rgw_backup_rows", labels) == 1000, "\(pushed)")
            #expect(Self.value(pushed, "rgw_backup_last_failure_timestamp_seconds", labels) == nil)

            // Most rows gone: the archive is kept but SUSPECT (exit 2): no success.
            try source.psql("DELETE FROM t WHERE id > 100")
            Thread.sleep(forTimeInterval: 1.1)
            let suspect = try CLI.run(["backup", "--dir", directory], environment: environment)
            #expect(suspect.status == 2, "\(suspect)")
            pushed = try gateway.metrics()
            #expect(Self.value(pushed, "rgw_backup_suspect", labels) == 1, "\(pushed)")
            #expect(Self.value(pushed, "rgw_backup_last_success_timestamp_seconds", labels) == success, "a suspect backup is no success: \(pushed)")
            #expect(Self.value(pushed, "rgw_backup_rows", labels) == 1000, "the last success's measures stay")
            let secondPush = try #require(Self.value(pushed, "push_time_seconds", group))
            #expect(secondPush > firstPush)

            // A failed run (bad password) pushes its failure; its exit status is its own (1).
            let wrong = source.url.replacingOccurrences(of: "(://[^:/@]*):[^@]*@", with: "$1:not-the-password@", options: .regularExpression)
            #expect(wrong != source.url)
            let failed = try CLI.run(["backup", "--dir", directory, "--database-url", wrong], environment: environment)
            #expect(failed.status == 1, "\(failed)")
            pushed = try gateway.metrics()
            #expect(Self.value(pushed, "rgw_backup_last_failure_timestamp_seconds", labels) != nil, "\(pushed)")
            #expect(Self.value(pushed, "rgw_backup_last_success_timestamp_seconds", labels) == success, "the last success stays")
            #expect(try #require(Self.value(pushed, "push_time_seconds", group)) > secondPush)
            // A backup of the same database into another directory is another group: it replaces
            // nothing of the first directory's (grouped by database alone, its push replaced them).
            let other = try TestArchives.temporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: other) }
            let elsewhere = try CLI.run(["backup", "--dir", other, "--max-shrink", "100%"], environment: environment)
            #expect(elsewhere.status == 0, "\(elsewhere)")
            pushed = try gateway.metrics()
            #expect(Self.value(pushed, "rgw_backup_last_success_timestamp_seconds", labels) == success, "the first directory's success stays: \(pushed)")
            #expect(Self.value(pushed, "rgw_backup_last_failure_timestamp_seconds", labels) != nil, "\(pushed)")
            #expect(Self.value(pushed, "rgw_backup_last_success_timestamp_seconds", labels.replacingOccurrences(of: directory, with: other)) != nil, "\(pushed)")

            // A drill and a check push to their own groups under the same job.
            let check = try CLI.run(["check", "--pushgateway", gateway.url], environment: environment)
            #expect(check.status == 0 || check.status == 1, "\(check)")
            pushed = try gateway.metrics()
            #expect(Self.value(pushed, "push_time_seconds", "command=\"check\",database=\"\(source.name)\",instance=\"\",job=\"rack_gateway_db\"") != nil, "\(pushed)")

            // A gateway that is down: a warning (without the URL's password), the backup's result unchanged.
            let deadPort = try TestCluster.freePort()
            try source.psql("INSERT INTO t SELECT i, 'row ' || i FROM generate_series(101, 1000) i")
            Thread.sleep(forTimeInterval: 1.1)
            let started = Date()
            let dead = try CLI.run(["backup", "--dir", directory, "--pushgateway", "http://push:s3cret-pw@127.0.0.1:\(deadPort)"], environment: environment)
            #expect(dead.status == 0, "\(dead)")
            #expect(dead.stderr.contains("warning: cannot push the backup metrics to the Pushgateway http://push:***@127.0.0.1:\(deadPort) (3 attempts)"), "\(dead.stderr)")
            #expect(!dead.output.contains("s3cret-pw"), "\(dead.output)")
            #expect(Date().timeIntervalSince(started) < 60, "a short timeout and a bounded retry")
        }
    }

    /// A backup stopped by SIGTERM (waiting on a locked table) is a failure in its metrics too.
    @Test func aBackupStoppedBySIGTERMWritesItsFailure() throws {
        try TestDatabase.withMigrated { source in
            let directory = try TestArchives.temporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let metrics = directory + "/backup.prom"
            let holder = try source.connect()
            try holder.execute("BEGIN; LOCK TABLE public.settings IN ACCESS EXCLUSIVE MODE")
            let run = try RunningCLI(["backup", "--dir", directory, "--lock-timeout", "60", "--metrics-file", metrics, "--json"], environment: ["RGW_DATABASE_URL": source.url])
            Thread.sleep(forTimeInterval: 3)
            try #require(run.process.isRunning, "the backup waits for the lock: \(run.stderr)")
            run.signal(SIGTERM)
            let result = run.finish()
            try holder.execute("ROLLBACK")
            #expect(result.status == 143, "\(result)")
            // --json: the interruption as every failure is, code, message, fix and exit status apart.
            let document = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any], "\(result.stdout)")
            let error = try #require(document["error"] as? [String: Any], "\(document)")
            #expect(error["code"] as? String == "interrupted" && error["exit_status"] as? Int == 143, "\(error)")
            #expect((error["fix"] as? String)?.isEmpty == false && (error["message"] as? String)?.contains("SIGTERM") == true, "\(error)")
            let text = try String(contentsOfFile: metrics, encoding: .utf8)
            let labels = "database=\"\(source.name)\",dir=\"\(directory)\""
            #expect(Self.value(text, "rgw_backup_last_failure_timestamp_seconds", labels) != nil, "\(text)")
            #expect(Self.value(text, "rgw_backup_last_success_timestamp_seconds", labels) == nil, "\(text)")
        }
    }

    @Test func metricsOptionsThatDoNotApplyAreUsageErrors() throws {
        let directory = try TestArchives.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let prune = try CLI.run(["prune", "--dir", directory, "--keep-last", "1", "--dry-run", "--metrics-file", directory + "/prune.prom"])
        #expect(prune.status == 64 && prune.stderr.contains("--dry-run deletes nothing"), "\(prune)")
        let gateway = try CLI.run(["prune", "--dir", directory, "--keep-last", "1", "--pushgateway", "pushgateway:9091"])
        #expect(gateway.status == 64 && gateway.stderr.contains("http://HOST:PORT"), "\(gateway)")
        let missing = try CLI.run(["prune", "--dir", directory, "--keep-last", "1", "--metrics-file", directory + "/no/such/dir/prune.prom"])
        #expect(missing.status == 64 && missing.stderr.contains("the directory \(directory)/no/such/dir does not exist"), "\(missing)")
        // Prune's metrics: its directory is the one label.
        let pruned = try CLI.run(["prune", "--dir", directory, "--keep-last", "1", "--metrics-file", directory + "/prune.prom"])
        #expect(pruned.status == 0, "\(pruned)")
        let text = try String(contentsOfFile: directory + "/prune.prom", encoding: .utf8)
        #expect(Self.value(text, "rgw_prune_deleted_archives", "dir=\"\(directory)\"") == 0, "\(text)")
        #expect(Self.value(text, "rgw_prune_last_success_timestamp_seconds", "dir=\"\(directory)\"") != nil, "\(text)")
    }
}
