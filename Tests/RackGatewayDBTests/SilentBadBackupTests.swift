import Foundation
import RGWPostgres
import RackGatewayDB
import Testing
import TestSupport

/// The most common complaint about backup tools: a truncated or empty dump kept as good, and
/// retention then evicting the real ones. `backup` marks a shrunken archive suspect (kept, exit 2),
/// `prune` never counts it, `check --max-backup-age` tells monitors when the newest good one is old.
@Suite("silent bad backups")
struct SilentBadBackupTests {
    static func names(_ directory: String) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: directory).filter { $0.hasSuffix(".sql.gz") }.sorted()
    }

    /// The runner logs the suspicion as a warning with the reason in its metadata (what a log
    /// pipeline alerts on), and the written archive with its file.
    @Test func theSuspicionIsLoggedAsAWarningWithItsReason() throws {
        try TestDatabase.with { source in
            try source.psql("CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t SELECT generate_series(1, 500)")
            let directory = try TestArchives.temporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: directory) }
            _ = try TestArchives.backup(source, directory: directory)
            try source.psql("DELETE FROM t WHERE id > 10")
            Thread.sleep(forTimeInterval: 1.1)
            let logs = CapturedLogs()
            let options = BackupOptions(store: LocalStore(directory: directory), jobs: 1, compressors: 1)
            let report = try BackupRunner(settings: try source.settings, options: options, logger: logs.logger).run()
            let warning = try #require(logs.all.first { $0.level == .warning })
            #expect(warning.message.contains("marked suspect") && "\(warning.metadata["why"] ?? "")".contains("fell from 500 to 10"), "\(logs.all)")
            #expect(logs.all.contains { $0.message == "backup written" && "\($0.metadata["file"] ?? "")" == report.file })
        }
    }

    @Test func aShrunkenBackupIsKeptMarkedSuspectAndNeverCountedByPrune() throws {
        try TestDatabase.with { source in
            try source.psql("CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t SELECT i, 'row ' || i FROM generate_series(1, 1000) i")
            let directory = try TestArchives.temporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let environment = ["RGW_DATABASE_URL": source.url]
            #expect(try CLI.run(["backup", "--dir", directory], environment: environment).status == 0)
            let good = try #require(try Self.names(directory).first)
            #expect(try CLI.run(["verify", directory + "/" + good]).status == 0)

            // Most rows gone (a bad migration, the wrong database, a truncate): written, kept, suspect.
            try source.psql("DELETE FROM t WHERE id > 100")
            Thread.sleep(forTimeInterval: 1.1)
            let metrics = directory + "/backup.prom"
            let shrunk = try CLI.run(["backup", "--dir", directory, "--metrics-file", metrics], environment: environment)
            #expect(shrunk.status == 2, "\(shrunk)")
            #expect(shrunk.stderr.contains("SUSPECT") && shrunk.stderr.contains("table public.t fell from 1000 to 100 rows (-90%)") && shrunk.stderr.contains(good), "\(shrunk)")
            let names = try Self.names(directory)
            #expect(names.count == 2, "the suspect archive is kept")
            let suspect = try #require(names.last)
            #expect(try ArchiveReader(path: directory + "/" + suspect).manifest.suspect?.contains("fell from 1000 to 100") == true)
            #expect(try String(contentsOfFile: metrics, encoding: .utf8).contains("rgw_backup_suspect{database=\"\(source.name)\",dir=\"\(directory)\"} 1"))
            let list = try CLI.run(["list", "--dir", directory])
            #expect(list.stdout.split(separator: "\n").first { $0.contains(suspect) }?.contains("SUSPECT") == true, "\(list)")
            // Its reason below the table, where the SUSPECT alert sends people.
            #expect(list.stdout.contains("\(suspect) is SUSPECT: table public.t fell from 1000 to 100 rows"), "\(list)")

            // A vanished table is suspect too, compared with the last good archive (not the suspect one).
            try source.psql("DROP TABLE t; CREATE TABLE u (id int)")
            Thread.sleep(forTimeInterval: 1.1)
            let vanished = try CLI.run(["backup", "--dir", directory], environment: environment)
            #expect(vanished.status == 2 && vanished.stderr.contains("table public.t vanished (it had 1000 rows)") && vanished.stderr.contains(good), "\(vanished)")
            let vanishedName = try #require(try Self.names(directory).last)

            // Retention counts good archives only: keep-last 1 keeps the good one and the newer suspects.
            let prune = try CLI.run(["prune", "--dir", directory, "--keep-last", "1"])
            #expect(prune.status == 0 && prune.stdout.contains("Deleted 0 archives"), "\(prune)")
            #expect(prune.stdout.contains("keep    \(good)  last,newest-verified"), "\(prune)")
            #expect(prune.stdout.contains("suspect-newer-than-newest-good"), "\(prune)")
            #expect(try Self.names(directory).count == 3)

            // An intended shrink is taken as the new baseline with --max-shrink 100%; then the older
            // good archive goes, the suspects stay as evidence (issue 30) until --delete-suspect.
            Thread.sleep(forTimeInterval: 1.1)
            let accepted = try CLI.run(["backup", "--dir", directory, "--max-shrink", "100%"], environment: environment)
            #expect(accepted.status == 0, "\(accepted)")
            let newest = try #require(try Self.names(directory).last)
            let second = try CLI.run(["prune", "--dir", directory, "--keep-last", "1"])
            #expect(second.status == 0 && second.stdout.contains("Deleted 1 archive") && second.stdout.contains("suspect-kept-as-evidence"), "\(second)")
            #expect(try Self.names(directory) == [suspect, vanishedName, newest].sorted())
            let third = try CLI.run(["prune", "--dir", directory, "--keep-last", "1", "--delete-suspect"])
            #expect(third.status == 0 && third.stdout.contains("Deleted 2 archives"), "\(third)")
            #expect(try Self.names(directory) == [newest])
        }
    }

    @Test func checkMaxBackupAgeTellsMonitorsWhenTheNewestGoodArchiveIsOld() throws {
        try TestDatabase.withMigrated { source in
            let directory = try TestArchives.temporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let environment = ["RGW_DATABASE_URL": source.url]
            let none = try CLI.run(["check", "--dir", directory, "--max-backup-age", "26h"], environment: environment)
            #expect(none.status == 2 && none.stdout.contains("no good archive"), "\(none)")
            #expect(try CLI.run(["backup", "--dir", directory], environment: environment).status == 0)
            let metrics = directory + "/check.prom"
            let fresh = try CLI.run(["check", "--dir", directory, "--max-backup-age", "26h", "--metrics-file", metrics], environment: environment)
            #expect(fresh.status == 0 && fresh.stdout.contains("newest good archive"), "\(fresh)")
            // A time, not an age (an age freezes when the checks stop).
            let prometheus = try String(contentsOfFile: metrics, encoding: .utf8)
            #expect(prometheus.contains("rgw_backup_newest_good_timestamp_seconds{database=\"\(source.name)\",dir=\"\(directory)\"} 1") && !prometheus.contains("age_seconds"), "\(prometheus)")
            // Make it look two days old: a copy under an older name, the fresh one removed.
            let name = try #require(try Self.names(directory).first)
            let old = ArchiveName.fileName(prefix: "rack_gateway_backup", date: Date().addingTimeInterval(-2 * 86_400))
            try FileManager.default.moveItem(atPath: directory + "/" + name, toPath: directory + "/" + old)
            try FileManager.default.moveItem(atPath: directory + "/" + name + ".sha256", toPath: directory + "/" + old + ".sha256")
            let stale = try CLI.run(["check", "--dir", directory, "--max-backup-age", "26h"], environment: environment)
            #expect(stale.status == 2 && stale.stdout.contains("FAIL  backups: newest good archive \(old) is 48h"), "\(stale)")
        }
    }
}
