import Foundation
import RGWPostgres
import Testing
import TestSupport
@testable import RackGatewayDB

/// `maint ...` against a real server with data in it.
@Suite("maintenance commands")
struct MaintenanceTests {
    /// A migrated database with `events` audit events, one every two days back from now (the newest
    /// is today), so events with chain_index < events - 200 are older than 400 days.
    static func withAuditHistory(events: Int = 400, url: ((TestDatabase) -> String)? = nil, _ body: (TestDatabase) throws -> Void) throws {
        try TestDatabase.withSampleData(events: events) { database in
            try Self.backdate(database, events: events)
            try body(database)
        }
    }

    static func backdate(_ database: TestDatabase, events: Int) throws {
        try database.psql("""
            ALTER TABLE audit.audit_event DISABLE TRIGGER audit_event_no_update;
            UPDATE audit.audit_event SET "timestamp" = now() - (\(events - 1) - chain_index) * interval '2 days';
            ALTER TABLE audit.audit_event ENABLE TRIGGER audit_event_no_update;
            """)
    }

    static func auditState(_ database: TestDatabase) throws -> String { try auditState(url: database.url) }

    /// Count, first and last chain_index, the table's triggers with their enabled state, prune log rows.
    static func auditState(url: String) throws -> String {
        let connection = try Connection(settings: try ConnectionSettings(conninfo: url))
        return try connection.query("""
            SELECT count(*) || ' ' || min(chain_index) || ' ' || max(chain_index)
                   || ' ' || (SELECT string_agg(tgname || '=' || tgenabled::text, ',' ORDER BY tgname) FROM pg_trigger WHERE tgrelid = 'audit.audit_event'::regclass AND NOT tgisinternal)
                   || ' ' || (SELECT count(*) FROM audit.audit_prune_log)
            FROM audit.audit_event
            """).scalar ?? ""
    }

    @Test func sessionsCleanupDeletesOnlyOldSessionsInBatches() throws {
        try TestDatabase.withMigrated { database in
            try database.psql("""
                INSERT INTO users (email) VALUES ('a@example.com');
                INSERT INTO user_sessions (user_id, token_hash, created_at, expires_at)
                SELECT 1, sha256(i::text::bytea), now() - i * interval '1 day' + interval '12 hours', now() + interval '1 day' FROM generate_series(1, 60) i;
                """)
            let dry = try CLI.run(["maint", "sessions-cleanup", "--older-than", "30d", "--dry-run", "--database-url", database.url])
            #expect(dry.status == 0 && dry.stdout.contains("Would delete 30 sessions"), "\(dry)")
            #expect(try database.psql("SELECT count(*) FROM user_sessions").contains("60"))
            let report = try Maintenance(connection: try database.connect(), logger: .quiet).sessionsCleanup(olderThan: 30 * 86400, dryRun: false, batch: 7)
            #expect(report.deleted == 30 && report.batches == 5)
            #expect(try database.psql("SELECT count(*) || ' ' || bool_and(now() - created_at < interval '30 days')::text FROM user_sessions").contains("30 true"))
        }
    }

    @Test func auditVolumeAndPruneKeepTheChainVerifiable() throws {
        try Self.withAuditHistory { database in
            let volume = try CLI.run(["maint", "audit-volume", "--days", "10", "--database-url", database.url, "--json"])
            #expect(volume.status == 0, "\(volume)")
            let decoded = try CLI.decode(Maintenance.AuditVolume.self, volume.stdout)
            #expect(decoded.total == 5 && decoded.days.count == 5 && decoded.days.first!.day > decoded.days.last!.day, "\(decoded)")

            let before = try Self.auditState(database)
            let young = try CLI.run(["maint", "audit-prune", "--older-than", "30d", "--yes", "--database-url", database.url])
            #expect(young.status == 1 && young.stderr.contains("AUDIT_ANCHOR_RETENTION_DAYS"), "\(young)")
            let dry = try CLI.run(["maint", "audit-prune", "--older-than", "400d", "--dry-run", "--database-url", database.url])
            #expect(dry.status == 0 && dry.stdout.contains("Would prune 200 audit events (chain_index 0...199)"), "\(dry)")
            let unconfirmed = try CLI.run(["maint", "audit-prune", "--older-than", "400d", "--database-url", database.url])
            #expect(unconfirmed.status == 1 && unconfirmed.stderr.contains("not confirmed"), "\(unconfirmed)")
            #expect(try Self.auditState(database) == before, "refusals and dry runs change nothing")

            let pruned = try CLI.run(["maint", "audit-prune", "--older-than", "400d", "--yes", "--database-url", database.url])
            #expect(pruned.status == 0 && pruned.stdout.contains("Pruned 200 audit events") && pruned.stdout.contains("starts at 200"), "\(pruned)")
            let after = try Self.auditState(database)
            #expect(after.hasPrefix("200 200 399 ") && after.contains("audit_event_no_delete=O") && after.hasSuffix(" 1"), "\(after)")
            #expect(try database.psql("SELECT count(*) FROM audit.verify_chain(200, 399)").contains("0"))

            // New events still link, and a drill of a backup accepts the chain that starts at the recorded prune.
            try database.generateSampleData(events: 5)
            let directory = try TestArchives.temporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let archive = try TestArchives.backup(database, directory: directory).file
            let drill = try CLI.run(["drill", archive, "--database-url", database.url])
            #expect(drill.status == 0 && drill.stdout.contains("PASS  audit chain: 205 events linked from chain_index 200, where the recorded prune ended"), "\(drill)")
        }
    }

    @Test func aChainWithMissingEventsAndNoRecordedPruneFailsTheDrill() throws {
        try Self.withAuditHistory(events: 50) { database in
            try database.psql("""
                ALTER TABLE audit.audit_event DISABLE TRIGGER audit_event_no_delete;
                DELETE FROM audit.audit_event WHERE chain_index < 10;
                ALTER TABLE audit.audit_event ENABLE TRIGGER audit_event_no_delete;
                """)
            let directory = try TestArchives.temporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let archive = try TestArchives.backup(database, directory: directory).file
            let drill = try CLI.run(["drill", archive, "--database-url", database.url])
            #expect(drill.status == 2 && drill.stdout.contains("FAIL  audit chain: the chain starts at chain_index 10 but no prune"), "\(drill)")
        }
    }

    @Test func aRoleThatCannotAlterTheTableGetsAClearErrorAndNothingChanges() throws {
        let role = "rgw_maint_\(UUID().uuidString.prefix(6).lowercased())"
        let admin = try Connection(settings: try TestCluster.shared().adminSettings)
        defer { _ = try? admin.execute("DROP ROLE IF EXISTS \(role)") }
        try Self.withAuditHistory(events: 300) { database in
            // After the migration: audit_reader exists from then on.
            try admin.execute("CREATE ROLE \(role) LOGIN PASSWORD 'maint-pw' IN ROLE audit_reader")
            try database.psql("GRANT CONNECT ON DATABASE \(database.name) TO \(role)")
            let before = try Self.auditState(database)
            let result = try CLI.run(["maint", "audit-prune", "--older-than", "400d", "--yes",
                                      "--database-url", database.cluster.url(database: database.name, user: role, password: "maint-pw")])
            #expect(result.status == 1 && result.stderr.contains("may not alter audit.audit_event") && result.stderr.contains("audit_owner"), "\(result)")
            #expect(try Self.auditState(database) == before)
            try database.psql("REVOKE CONNECT ON DATABASE \(database.name) FROM \(role)")
        }
    }

    @Test func vacuumConnectionsSlowQueriesAndSize() throws {
        try Self.withAuditHistory(events: 100) { database in
            let vacuum = try CLI.run(["maint", "vacuum", "--analyze", "--database-url", database.url])
            #expect(vacuum.status == 0 && vacuum.stdout.contains("vacuumed \"audit\".\"audit_event\""), "\(vacuum)")
            let one = try CLI.run(["maint", "vacuum", "--table", "public.users", "--database-url", database.url, "--json"])
            #expect(one.status == 0 && one.stdout.contains("users") && !one.stdout.contains("audit_event"), "\(one)")
            let unknown = try CLI.run(["maint", "vacuum", "--table", "public.nope", "--database-url", database.url])
            #expect(unknown.status == 1 && unknown.stderr.contains("no table public.nope"), "\(unknown)")
            let full = try CLI.run(["maint", "vacuum", "--full", "--database-url", database.url])
            #expect(full.status == 1 && full.stderr.contains("locks each table"), "\(full)")

            let size = try CLI.run(["maint", "size", "--database-url", database.url, "--json"])
            let report = try CLI.decode(Maintenance.Size.self, size.stdout)
            #expect(report.tables.contains { $0.table == "audit.audit_event" } && report.databaseBytes > report.tables[0].totalBytes)
            #expect(zip(report.tables, report.tables.dropFirst()).allSatisfy { $0.totalBytes >= $1.totalBytes })

            // A slow query shows up, longest first, and --cancel cancels it.
            let settings = try database.settings
            let done = DispatchSemaphore(value: 0)
            let outcome = LockedList<String>()
            Thread {
                do {
                    let sleeper = try Connection(settings: settings)
                    try sleeper.execute("SELECT pg_sleep(20)")
                    outcome.add("finished")
                } catch {
                    outcome.add("\(error)")
                }
                done.signal()
            }.start()
            Thread.sleep(forTimeInterval: 1.5)
            let connections = try CLI.run(["maint", "connections", "--database-url", database.url, "--json"])
            let sessions = try CLI.decode(Maintenance.Connections.self, connections.stdout)
            #expect(sessions.count >= 2 && sessions.maxConnections > 0 && sessions.dbMaxOpenConns == 25, "\(sessions)")
            let slow = try CLI.run(["maint", "slow-queries", "--min-duration", "1s", "--database-url", database.url, "--json"])
            let queries = try CLI.decode([Maintenance.SlowQuery].self, slow.stdout)
            let query = try #require(queries.first { $0.query.contains("pg_sleep(20)") }, "\(slow)")
            #expect(query.seconds >= 1)
            let cancelled = try CLI.run(["maint", "slow-queries", "--cancel", String(query.pid), "--database-url", database.url])
            #expect(cancelled.status == 0, "\(cancelled)")
            #expect(done.wait(timeout: .now() + 10) == .success)
            #expect(outcome.items.first?.contains("canceling statement") == true, "\(outcome.items)")
        }
    }
}
