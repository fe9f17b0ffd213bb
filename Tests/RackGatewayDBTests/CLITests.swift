import Foundation
import Testing
import TestSupport
@testable import RackGatewayDB
@testable import rack_gateway_db

/// The built binary, run as a user runs it: exit statuses, messages, JSON.
@Suite("rack-gateway-db command line")
struct CLITests {
    @Test func rootHelpListsCommandsAndExitStatuses() throws {
        let result = try CLI.run(["--help"])
        #expect(result.status == 0, "\(result)")
        for command in ["migrate", "status", "reset-db", "check"] {
            #expect(result.stdout.contains(command), "help lacks \(command)")
        }
        for status in ["0 ", "1 ", "2 ", "3 ", "64 "] {
            #expect(result.stdout.contains("  \(status)"), "help lacks exit status \(status)")
        }
    }

    /// A backup of a database without tables is written (exit 0) and says so on stderr: the wrong
    /// database, or one never migrated (the trials of issues 28 and 29 backed one up in silence).
    @Test func aBackupOfADatabaseWithoutTablesSaysSo() throws {
        try TestDatabase.with { empty in
            let directory = try TestArchives.temporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let result = try CLI.run(["backup", "--database-url", empty.url, "--dir", directory])
            #expect(result.status == 0 && result.stderr.contains("warning: ") && result.stderr.contains("has no tables")
                    && result.stderr.contains("(--database-url)"), "\(result)")
        }
        try TestDatabase.withMigrated { migrated in
            let directory = try TestArchives.temporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let result = try CLI.run(["backup", "--database-url", migrated.url, "--dir", directory])
            #expect(result.status == 0 && !result.stderr.contains("has no tables"), "\(result)")
        }
    }

    @Test func malformedURLIsAUsageError() throws {
        let result = try CLI.run(["status", "--database-url", "postgres://u:hunter2@host:notaport/db"])
        #expect(result.status == 64, "\(result)")
        #expect(!result.output.contains("hunter2"))
        #expect(result.stderr.contains("error:"))
    }

    @Test func wrongPasswordFailsWithoutEchoingIt() throws {
        let cluster = try TestCluster.shared()
        let url = cluster.url(database: "postgres", password: "Wr0ng-S3cret-xyz")
        let result = try CLI.run(["check", "--database-url", url])
        #expect(result.status == 1, "\(result)")
        #expect(result.output.contains("authentication failed") || result.output.contains("password"), "\(result)")
        #expect(!result.output.contains("Wr0ng-S3cret-xyz"))
        #expect(!result.output.contains("Fatal error"), "no stack traces for expected errors")
    }

    /// A drill or a restore with a wrong password says so before it reads the archive (from S3 a whole download
    /// first; issue 33's second trial): here a file that is no archive at all would otherwise be
    /// the verdict (exit 2).
    @Test func drillAndRestoreSayAWrongPasswordBeforeTheyReadTheArchive() throws {
        let cluster = try TestCluster.shared()
        let directory = try TestArchives.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let archive = directory + "/rack_gateway_backup_20261201T030000Z.sql.gz"
        #expect(FileManager.default.createFile(atPath: archive, contents: Data("not an archive\n".utf8)))
        for arguments in [["drill", archive, "--scratch-url", cluster.url(database: "postgres", password: "Wr0ng-S3cret-xyz")],
                          ["restore", archive, "--target-url", cluster.url(database: "rgw_never", password: "Wr0ng-S3cret-xyz")]] {
            let result = try CLI.run(arguments)
            #expect(result.status == 1 && result.output.contains("authentication failed"), "\(arguments[0]): \(result)")
            #expect(!result.output.contains("Wr0ng-S3cret-xyz") && !result.output.contains("not a rack-gateway-db archive") && !result.output.contains("corrupt"), "\(result)")
            // Said of the database given (the drill named template1, the maintenance database it tried instead).
            #expect(!result.output.contains("template1"), "\(result)")
        }
    }

    @Test func unreachableHostNamesHostAndPort() throws {
        // A port nothing listens on: bind one, then close it.
        let port = try Self.unusedPort()
        let result = try CLI.run(["migrate"], environment: ["RGW_DATABASE_URL": "postgres://rgw:pw@127.0.0.1:\(port)/rgw?connect_timeout=5"])
        #expect(result.status == 1, "\(result)")
        #expect(result.stderr.contains("127.0.0.1:\(port)") || result.stderr.contains("port \(port)"), "\(result)")
        #expect(result.stderr.split(separator: "\n").count <= 3, "one clear message, not a dump: \(result)")
    }

    @Test func migrateStatusCheckAsANewUserWould() throws {
        try TestDatabase.with { database in
            let env = ["RGW_DATABASE_URL": database.url]
            let first = try CLI.run(["migrate"], environment: env)
            #expect(first.status == 0, "\(first)")
            let second = try CLI.run(["migrate"], environment: env)
            #expect(second.status == 0, "\(second)")
            #expect(second.output.lowercased().contains("up to date") || second.output.contains("0 migration"), "\(second)")

            let status = try CLI.run(["status", "--json"], environment: env)
            #expect(status.status == 0, "\(status)")
            let json = try JSONSerialization.jsonObject(with: Data(status.stdout.utf8)) as? [String: Any]
            #expect((json?["pending"] as? [Any])?.isEmpty == true, "\(status)")
            #expect((json?["applied"] as? [Any])?.count == MigrationSet.embedded.migrations.count)
            #expect(!status.stdout.contains(database.cluster.password))

            let check = try CLI.run(["check", "--json"], environment: env)
            #expect(check.status == 0, "\(check)")
            let report = try JSONSerialization.jsonObject(with: Data(check.stdout.utf8)) as? [String: Any]
            #expect(report?["ok"] as? Bool == true, "\(check)")
            #expect(!check.output.contains(database.cluster.password))
        }
    }

    @Test func resetDBRefusesWithoutItsGuardsAndWorksWithThem() throws {
        try TestDatabase.withMigrated { database in
            try database.psql("INSERT INTO rgw_internal_metadata (environment) VALUES ('development'); INSERT INTO users (email) VALUES ('x@example.com')")
            let env = ["RGW_DATABASE_URL": database.url]
            let refused = try CLI.run(["reset-db"], environment: env)
            #expect(refused.status == 1, "\(refused)")
            #expect(refused.stderr.contains("RESET_RACK_GATEWAY_DATABASE"), "\(refused)")
            #expect(try database.psql("SELECT count(*) FROM users").trimmingCharacters(in: .whitespacesAndNewlines) == "1")

            let wrongValue = try CLI.run(["reset-db"], environment: env.merging(["RESET_RACK_GATEWAY_DATABASE": "delete_all_data"]) { $1 })
            #expect(wrongValue.status == 1, "\(wrongValue)")

            let done = try CLI.run(["reset-db"], environment: env.merging(["RESET_RACK_GATEWAY_DATABASE": "DELETE_ALL_DATA"]) { $1 })
            #expect(done.status == 0, "\(done)")
            #expect(try database.psql("SELECT count(*) FROM users").trimmingCharacters(in: .whitespacesAndNewlines) == "0")
            #expect(try database.psql("SELECT environment FROM rgw_internal_metadata").trimmingCharacters(in: .whitespacesAndNewlines) == "development")
        }
    }

    @Test func aFailingMigrationExitsOneNamingFileAndLine() throws {
        try TestDatabase.with { database in
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent("rgw-mig-\(UUID().uuidString)").path
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(atPath: directory) }
            try "CREATE TABLE ok_table (id int);\n".write(toFile: directory + "/20250101000000_ok.sql", atomically: true, encoding: .utf8)
            try "CREATE TABLE t2 (id int);\n\nSELECT no_such_column FROM t2;\n".write(toFile: directory + "/20250102000000_bad.sql", atomically: true, encoding: .utf8)
            let result = try CLI.run(["migrate", "--migrations", directory], environment: ["RGW_DATABASE_URL": database.url])
            #expect(result.status == 1, "\(result)")
            #expect(result.stderr.contains("20250102000000_bad.sql"), "\(result)")
            #expect(result.stderr.contains("42703"), "\(result)")
            #expect(result.stderr.contains("line 3"), "\(result)")
            #expect(try database.psql("SELECT to_regclass('t2') IS NULL AND to_regclass('ok_table') IS NOT NULL").contains("t"))
        }
    }

    static func unusedPort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        try withUnsafeMutablePointer(to: &address) { pointer in
            try pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                guard bind(fd, $0, length) == 0, getsockname(fd, $0, &length) == 0 else { throw ToolError(.failed, "bind failed") }
            }
        }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}

/// Small defects found on the way (issue 17), each pinned by a test.
@Suite("command line: small defects")
struct CLISmallDefectTests {
    /// Where stdout and stderr go to one file (cron's mail, `2>&1 | tee`), what the command printed
    /// comes before the error that follows it: stdout, block-buffered there, is flushed before every
    /// stderr line (the error came first, above the table it refers to).
    @Test func theErrorComesAfterWhatItRefersToInOneFile() throws {
        try TestDatabase.withMigrated { database in
            let directory = try TestArchives.temporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let run = try Shell.run("/bin/sh", ["-c", #""$0" check --dir "$1" --max-backup-age 26h 2>&1"#, CLI.executable, directory],
                                    environment: ["RGW_DATABASE_URL": database.url])
            #expect(run.status == 2, "\(run.stdout)")
            let table = try #require(run.stdout.range(of: "FAIL  backups: no good archive"), "\(run.stdout)")
            let error = try #require(run.stdout.range(of: "rack-gateway-db: error: check failed"), "\(run.stdout)")
            #expect(table.lowerBound < error.lowerBound, "\(run.stdout)")
        }
    }

    @Test func everyArchiveCommandTakesVerbose() throws {
        try TestDatabase.withMigrated { database in
            let directory = try TestArchives.temporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let archive = try TestArchives.backup(database, directory: directory).file
            let verify = try CLI.run(["verify", "-v", archive])
            #expect(verify.status == 0 && verify.stderr.contains("member read") && verify.stderr.contains("member.kind=pre-data"), "\(verify)")
            let list = try CLI.run(["list", "-v", "--dir", directory])
            #expect(list.status == 0 && list.stderr.contains("archive.file=") && list.stderr.contains("verified=true"), "\(list)")
            let prune = try CLI.run(["prune", "-v", "--dir", directory, "--keep-last", "1", "--dry-run"])
            #expect(prune.status == 0 && prune.stderr.contains("retention decision"), "\(prune)")
            // Without -v none of that debug detail.
            #expect(!(try CLI.run(["verify", archive]).stderr.contains("member read")))
        }
    }

    @Test func pruneExplainsEveryKeepOption() throws {
        let help = try CLI.run(["prune", "--help"])
        for option in ["keep-last", "keep-daily", "keep-weekly", "keep-monthly", "keep-yearly"] {
            let line = try #require(help.stdout.split(separator: "\n").firstIndex { $0.hasPrefix("  --\(option) <") })
            let lines = help.stdout.split(separator: "\n")
            let text = lines[line...].prefix(3).joined(separator: " ")
            #expect(text.contains("Keep the newest"), "--\(option): \(text)")
        }
    }

    @Test func anOptionFoundWrongInRunIsAUsageError() throws {
        let backup = try CLI.run(["backup", "--jobs", "0", "--database-url", "postgres://u@127.0.0.1:1/x"])
        #expect(backup.status == 64 && backup.stderr.contains("--jobs must be at least 1"), "\(backup)")
        let drill = try CLI.run(["drill", "--latest", "--jobs", "0", "--database-url", "postgres://u@127.0.0.1:1/x"])
        #expect(drill.status == 64, "\(drill)")
    }

    @Test func jsonKeysAreSnakeCaseLikeTheLogsAndMetricsHaveNoConstantGauge() throws {
        try TestDatabase.withMigrated { database in
            let directory = try TestArchives.temporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let metrics = directory + "/backup.prom"
            let backup = try CLI.run(["backup", "--dir", directory, "--json", "--metrics-file", metrics, "--database-url", database.url])
            #expect(backup.status == 0 && backup.stdout.contains("\"size_bytes\"") && !backup.stdout.contains("\"sizeBytes\""), "\(backup)")
            let prometheus = try String(contentsOfFile: metrics, encoding: .utf8)
            #expect(prometheus.contains("rgw_backup_size_bytes") && !prometheus.contains("rgw_backup_newest_archive_age_seconds"), "\(prometheus)")
            let drill = try CLI.run(["drill", "--latest", "--dir", directory, "--json", "--database-url", database.url])
            #expect(drill.stdout.contains("\"restore_seconds\"") && drill.stdout.contains("\"scratch_database\""), "\(drill)")
            let logged = try String(contentsOfFile: directory + "/drills.jsonl", encoding: .utf8)
            #expect(logged.contains("\"restore_seconds\""), "the log uses the same keys")
            let header = try Shell.runChecked("/bin/sh", ["-c", #"gunzip -c "$(ls "$1"/*.sql.gz | head -1)" | head -20"#, "sh", directory])
            #expect(header.contains("-- Roles it references (create them first, NOLOGIN will do): audit_owner, audit_reader, audit_writer"), "\(header)")
        }
    }
}

/// Typed errors (issue 17): a code per failure kind, the exit status from the code, and a JSON error
/// document under --json.
@Suite("command line: error codes")
struct CLIErrorCodeTests {
    @Test func everyCodeHasOneExitStatus() {
        let expected: [ToolError.Code: Int32] = [
            .failed: 1, .identityMismatch: 1, .formatUnsupported: 1, .databaseExists: 1, .notConfirmed: 1, .foreignMigrationSet: 1, .downgradeRefused: 1,
            .archiveNotFound: 1, .bucketNotFound: 1, .accessDenied: 1, .credentialsMissing: 1, .databaseAuthFailed: 1, .databaseUnreachable: 1,
            .pipelineStepFailed: 1, .tableExists: 1,
            .mismatch: 2, .archiveCorrupt: 2, .suspectBackup: 2, .drillFailed: 2, .backupStale: 2, .signatureInvalid: 2, .lockHeld: 3, .copyFailed: 4, .usage: 64, .interrupted: 1,
        ]
        #expect(Set(expected.keys) == Set(ToolError.Code.allCases))
        for (code, status) in expected {
            #expect(Reporting.exitStatus(for: ToolError(code, "x")) == status, "\(code)")
        }
    }

    @Test func underJSONAFailureIsAJSONDocumentToo() throws {
        let missing = try CLI.run(["verify", "/nonexistent/archive.sql.gz", "--json"])
        #expect(missing.status == 1, "\(missing)")
        let document = try JSONSerialization.jsonObject(with: Data(missing.stdout.utf8)) as? [String: [String: Any]]
        #expect(document?["error"]?["code"] as? String == "archive_not_found" && document?["error"]?["exit_status"] as? Int == 1, "\(missing.stdout)")
        try TestDatabase.withMigrated { database in
            try database.psql("INSERT INTO schema_migrations (version) VALUES ('19990101000000')")
            let foreign = try CLI.run(["migrate", "--json", "--database-url", database.url])
            let error = (try JSONSerialization.jsonObject(with: Data(foreign.stdout.utf8)) as? [String: [String: Any]])?["error"]
            #expect(foreign.status == 1 && error?["code"] as? String == "foreign_migration_set" && (error?["fix"] as? String)?.contains("--migrations") == true, "\(foreign)")
        }
    }
}
