import Foundation
import RGWPostgres
import Testing
import TestSupport
@testable import RackGatewayDB

/// The server killed (SIGKILL) and restarted in the middle of a backup and of a restore, on a
/// cluster of the test's own so the other tests' shared server stays up.
@Suite("server killed mid-run", .serialized)
struct ServerKillTests {
    /// A private cluster with database `src` holding about 100 MB of COPY text.
    static func withLoadedCluster(_ body: (TestCluster, String) throws -> Void) throws {
        let cluster = try TestCluster.startPrivate()
        defer { cluster.stop() }
        let admin = try Connection(settings: try cluster.adminSettings)
        try admin.execute("CREATE DATABASE src")
        let source = try Connection(settings: try ConnectionSettings(conninfo: cluster.url(database: "src")))
        try source.execute("""
            CREATE TABLE big (id bigint PRIMARY KEY, payload text);
            INSERT INTO big SELECT i, md5(i::text) || repeat('x', 200) FROM generate_series(1, 400000) i;
            CREATE TABLE other (id int PRIMARY KEY);
            INSERT INTO other SELECT generate_series(1, 1000);
            """)
        try body(cluster, cluster.url(database: "src"))
    }

    /// `withLoadedCluster` with an archive of `src` taken by the CLI: (cluster, src URL, directory, file name).
    static func withLoadedArchive(_ body: (TestCluster, String, String, String) throws -> Void) throws {
        try withLoadedCluster { cluster, url in
            let directory = try TestArchives.temporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let backup = try CLI.run(["backup", "--database-url", url, "--dir", directory])
            #expect(backup.status == 0, "\(backup)")
            let file = try #require(try FileManager.default.contentsOfDirectory(atPath: directory).first { $0.hasSuffix(".sql.gz") })
            try body(cluster, url, directory, file)
        }
    }

    /// Whether a session with this application name is at work on the cluster.
    static func running(_ cluster: TestCluster, _ application: String) throws -> Bool {
        let admin = try Connection(settings: try cluster.adminSettings)
        return try admin.query("SELECT count(*) FROM pg_stat_activity WHERE application_name = $1 AND state = 'active'",
                               [application]).scalar != "0"
    }

    @Test func backupExitsOneAndLeavesNoFile() throws {
        try Self.withLoadedCluster { cluster, url in
            let directory = try TestArchives.temporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let result = try cluster.killWhile({
                try CLI.run(["backup", "--database-url", url, "--dir", directory, "--jobs", "1", "--compress-level", "9"])
            }, when: { try Self.running(cluster, "rack-gateway-db backup worker") })
            #expect(result.status == 1, "\(result)")
            #expect(result.stderr.contains("lost the connection") || result.stderr.contains("server"), "\(result)")
            let left = try FileManager.default.contentsOfDirectory(atPath: directory).filter { $0.hasSuffix(".sql.gz") || $0.hasSuffix(".partial") }
            #expect(left.isEmpty, "no archive under any name: \(left)")
        }
    }

    @Test func restoreExitsOneAndLeavesTheTargetMarked() throws {
        try Self.withLoadedArchive { cluster, _, directory, file in
            let target = cluster.url(database: "restored")
            let result = try cluster.killWhile({
                try CLI.run(["restore", directory + "/" + file, "--target-url", target, "--jobs", "1"])
            }, when: { try Self.running(cluster, "rack-gateway-db restore data") })
            #expect(result.status == 1, "\(result)")
            #expect(result.stderr.contains("restored") || result.stderr.contains("incomplete"), "\(result)")
            // After the restart: the target says it is not a finished restore.
            var comment = ""
            for _ in 0..<50 {
                if let connection = try? Connection(settings: try ConnectionSettings(conninfo: target)) {
                    comment = try connection.query("SELECT coalesce(shobj_description(oid, 'pg_database'), '') FROM pg_database WHERE datname = 'restored'").scalar ?? ""
                    break
                }
                Thread.sleep(forTimeInterval: 0.1)
            }
            #expect(comment.contains("INCOMPLETE") || comment.contains("FAILED"), "comment: \(comment)")
        }
    }

    @Test func drillExitsOneAndSaysWhatIsLeft() throws {
        try Self.withLoadedArchive { cluster, url, directory, file in
            let result = try cluster.killWhile({
                try CLI.run(["drill", directory + "/" + file, "--database-url", url, "--jobs", "1", "--json"])
            }, when: { try Self.running(cluster, "rack-gateway-db restore data") })
            #expect(result.status == 1, "\(result)")
            let report = try CLI.decode(DrillReport.self, result.stdout)
            #expect(!report.ok && report.error != nil, "the drill could not run: \(report)")
            // The archive is untouched; the scratch database (if the server kept it) is not a
            // finished restore and says so, and the next drill takes another name.
            #expect(try ArchiveVerifier().verify(path: directory + "/" + file).ok)
            var comment = "gone"
            for _ in 0..<50 {
                if let connection = try? Connection(settings: try ConnectionSettings(conninfo: url)) {
                    comment = try connection.query("SELECT coalesce(shobj_description(oid, 'pg_database'), 'no comment') FROM pg_database WHERE datname = $1", [report.scratchDatabase]).scalar ?? "gone"
                    break
                }
                Thread.sleep(forTimeInterval: 0.1)
            }
            #expect(comment == "gone" || comment.contains("INCOMPLETE") || comment.contains("FAILED"), "scratch: \(comment)")
            // What the report says became of it is what did: dropped (the server was back in
            // time) or, when it is still there, that it could not be dropped.
            #expect(report.scratchFate == (comment == "gone" ? .dropped : .dropFailed), "\(String(describing: report.scratchFate)), scratch: \(comment)")
            if report.scratchFate == .dropFailed {
                #expect(report.scratchOutcome.contains("scratch database \(report.scratchDatabase) could NOT be dropped"), "\(report.scratchOutcome)")
            }
            let again = try CLI.run(["drill", directory + "/" + file, "--database-url", url, "--jobs", "1"])
            #expect(again.status == 0, "\(again)")
        }
    }

    @Test func aServerDiskThatFillsDuringARestoreFailsItAndMarksTheTarget() throws {
        try Self.withLoadedArchive { cluster, url, directory, file in
            // No file of the server may grow past 48 MiB: the restored table (about 100 MB) cannot fit.
            try cluster.restart(fileSizeLimitKB: 48 * 1024)
            defer { try? cluster.restart(fileSizeLimitKB: nil) }
            let target = cluster.url(database: "restored")
            let restore = try CLI.run(["restore", directory + "/" + file, "--target-url", target, "--jobs", "2"])
            #expect(restore.status == 1, "\(restore)")
            #expect(restore.stderr.contains("File too large") || restore.stderr.contains("could not extend"), "\(restore)")
            #expect(restore.stderr.contains("FAILED"), "\(restore)")
            let admin = try Connection(settings: try cluster.adminSettings)
            let comment = try admin.query("SELECT coalesce(shobj_description(oid, 'pg_database'), '') FROM pg_database WHERE datname = 'restored'").scalar ?? ""
            #expect(comment.contains("FAILED restore"), "comment: \(comment)")
        }
    }

    @Test func anInterruptedAuditPruneLeavesTheTableAndTriggersAsBefore() throws {
        let cluster = try TestCluster.startPrivate()
        defer { cluster.stop() }
        let admin = try Connection(settings: try cluster.adminSettings)
        try admin.execute("CREATE DATABASE rgw")
        let url = cluster.url(database: "rgw")
        let connection = try Connection(settings: try ConnectionSettings(conninfo: url))
        _ = try Migrator(connection: connection, migrations: MigrationSet.embedded, logger: .quiet).migrate()
        let events = 150_000
        try TestArchives.generateSampleData(url: url, events: events)
        try connection.execute("""
            ALTER TABLE audit.audit_event DISABLE TRIGGER audit_event_no_update;
            UPDATE audit.audit_event SET "timestamp" = now() - (\(events - 1) - chain_index) * interval '10 minutes';
            ALTER TABLE audit.audit_event ENABLE TRIGGER audit_event_no_update;
            """)
        func state() throws -> String { try MaintenanceTests.auditState(url: url) }
        let before = try state()
        let result = try cluster.killWhile({
            try CLI.run(["maint", "audit-prune", "--older-than", "400d", "--yes", "--database-url", url])
        }, when: {
            let watcher = try Connection(settings: try cluster.adminSettings)
            return try watcher.query("SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND query LIKE 'DELETE FROM audit.audit_event%'").scalar != "0"
        })
        #expect(result.status == 1, "\(result)")
        var after = ""
        for _ in 0..<50 {
            if let value = try? state() { after = value; break }
            Thread.sleep(forTimeInterval: 0.1)
        }
        #expect(after == before, "the prune's transaction left nothing behind: \(after) vs \(before)")
        #expect(before.contains("audit_event_no_delete=O"))
    }
}
