import Foundation
import RGWPostgres
import Testing
import TestSupport
@testable import RackGatewayDB

/// Issue 33 item 3: the backup records the planner statistics (`pg_class`, `pg_stats`) of its
/// snapshot in the statistics member (format v2), and a restore into PostgreSQL 18 imports them
/// in place of ANALYZE (a failed import is a warning and ANALYZE); older targets analyze as before.
@Suite("Planner statistics")
struct StatisticsTests {
    /// Tables whose statistics are stale on purpose: analyzed, then grown, with autovacuum off, so
    /// an ANALYZE of the restored rows gives other statistics than the source's (a restore that
    /// analyzes instead of importing fails the comparison). A partitioned table for the inherited rows.
    static let sourceSQL = """
        CREATE TABLE stats_t (id integer PRIMARY KEY, name text, tags text[], span int4range, score double precision)
            WITH (autovacuum_enabled = false);
        INSERT INTO stats_t SELECT g, 'name-' || (g % 37) || CASE WHEN g % 2 = 0 THEN E' it''s \\\\ "q"' ELSE '' END, ARRAY['a' || (g % 5), 'b' || (g % 3)], int4range(g, g + (g % 10) + 1), (g % 100) / 7.0
            FROM generate_series(1, 5000) g;
        UPDATE stats_t SET name = NULL WHERE id % 11 = 0;
        CREATE TABLE stats_p (k integer, v text) PARTITION BY RANGE (k);
        CREATE TABLE stats_p1 PARTITION OF stats_p FOR VALUES FROM (0) TO (1000) WITH (autovacuum_enabled = false);
        CREATE TABLE stats_p2 PARTITION OF stats_p FOR VALUES FROM (1000) TO (2000) WITH (autovacuum_enabled = false);
        INSERT INTO stats_p SELECT g, 'v' || (g % 13) FROM generate_series(0, 1999) g;
        ANALYZE stats_t; ANALYZE stats_p;
        INSERT INTO stats_t SELECT g, 'later-' || g, NULL, NULL, NULL FROM generate_series(5001, 9000) g;
        CREATE TABLE stats_new (id integer, w text) WITH (autovacuum_enabled = false);
        INSERT INTO stats_new SELECT g, 'w' || g FROM generate_series(1, 700) g;
        CREATE TABLE stats_added (id integer) WITH (autovacuum_enabled = false);
        INSERT INTO stats_added SELECT g FROM generate_series(1, 300) g;
        ANALYZE stats_added;
        ALTER TABLE stats_added ADD COLUMN extra integer DEFAULT 7;
        INSERT INTO stats_p SELECT g % 2000, 'later' FROM generate_series(1, 3000) g;
        """

    static let tables = "'stats_t', 'stats_p', 'stats_p1', 'stats_p2'"

    /// Every column of pg_stats the issue names, as text, per table, column and inherited.
    static func pgStats(_ database: TestDatabase) throws -> String {
        try database.psql("""
            SELECT tablename, attname, inherited, null_frac, avg_width, n_distinct, most_common_vals::text, most_common_freqs::text,
                   histogram_bounds::text, correlation, most_common_elems::text, most_common_elem_freqs::text, elem_count_histogram::text,
                   range_length_histogram::text, range_empty_frac, range_bounds_histogram::text
            FROM pg_stats WHERE schemaname = 'public' AND tablename IN (\(tables)) ORDER BY 1, 2, 3
            """)
    }

    static func relationCounts(_ database: TestDatabase) throws -> String {
        try database.psql("SELECT relname, relpages, reltuples FROM pg_class WHERE relname IN (\(tables)) ORDER BY 1")
    }

    /// A backup of `source` into `directory` (with `arguments` besides), checked to exit 0: the
    /// archive's path.
    static func backUp(_ source: TestDatabase, into directory: String, _ arguments: [String] = [],
                       environment: [String: String] = [:]) throws -> String {
        let backup = try CLI.run(["backup", "--database-url", source.url, "--dir", directory] + arguments, environment: environment)
        #expect(backup.status == 0, "\(backup)")
        return directory + "/" + (try #require(try FileManager.default.contentsOfDirectory(atPath: directory).first { $0.hasSuffix(".sql.gz") || $0.hasSuffix(".age") }))
    }

    /// A source on PostgreSQL 18 made by `sourceSQL`, backed up with 18's pg_dump: `body` gets the
    /// cluster, the source, the environment that names 18's programs, and the archive.
    static func withSourceBackedUpOn18(_ body: (TestCluster, TestDatabase, [String: String], String) throws -> Void) throws {
        let cluster = try TestCluster.version(18)
        try TestDatabase.with(on: cluster) { source in
            _ = try source.psql(sourceSQL)
            let environment = ["RGW_PG_BIN_DIR": try TestCluster.binDirectory(major: 18)]
            let directory = try TestArchives.temporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: directory) }
            try body(cluster, source, environment, try backUp(source, into: directory, environment: environment))
        }
    }

    @Test func aRestoreInto18ImportsTheSourcesStatistics() throws {
        try Self.withSourceBackedUpOn18 { cluster, source, environment, archive in
            let manifest = try ArchiveReader(path: archive).manifest
            #expect(manifest.formatVersion == 2 && manifest.members.last?.kind == .statistics, "\(manifest.members.suffix(2))")
            #expect(try CLI.run(["verify", archive]).status == 0)

            let stats = try Self.pgStats(source), counts = try Self.relationCounts(source)
            #expect(stats.contains(#"it's \\ \"q\""#), "values with quotes and a backslash: \(stats.prefix(3000))")
            #expect(stats.contains("stats_p|k|t|") && stats.contains("stats_t|span|f|") && stats.contains("stats_t|tags|f|"), "\(stats)")
            #expect(counts.contains("5000"), "the source's statistics are those of 5000 rows: \(counts)")

            // The tool's restore: imported, not analyzed (an ANALYZE would count 9000 rows).
            let target = try TestDatabase.unused(prefix: "rgw_st", on: cluster)
            defer { target.drop() }
            let restore = try CLI.run(["restore", archive, "--target-url", target.url, "--json"], environment: environment)
            #expect(restore.status == 0, "\(restore)")
            #expect(restore.stdout.contains("\"name\" : \"statistics\"") || restore.stdout.contains("\"name\":\"statistics\""), "\(restore.stdout)")
            #expect(!restore.stderr.contains("could not be imported"), "\(restore.stderr)")
            // The summary's counts: stats_new (never analyzed) and stats_added (a column added since) analyzed.
            let report = try #require(try JSONSerialization.jsonObject(with: Data(restore.stdout.utf8)) as? [String: Any], "\(restore)")
            let outcome = report["statistics"] as? [String: Any] ?? [:]
            #expect(outcome["imported"] as? Int == 4 && outcome["analyzed"] as? Int == 2
                    && outcome["analyzed_because"] as? String == "2 without statistics in the archive (not analyzed at the source, or a column added since)", "\(restore.stdout)")
            #expect(try Self.pgStats(target) == stats)
            #expect(try Self.relationCounts(target) == counts)
            // stats_p1, loaded frozen (a small table on one connection): its visibility map is full
            // and relallvisible says so (trial finding 3: the import left it at 0, and the planner
            // chose a sequential scan over an index-only one). stats_t, most of the data, is split
            // over the connections, not frozen: its map is empty until a VACUUM, and 0 is right.
            let visible = try target.psql("""
                SELECT relname, relallvisible > 0 AND relallvisible = pg_relation_size(oid) / current_setting('block_size')::bigint
                       AND relallfrozen = relallvisible, relallvisible FROM pg_class WHERE relname IN ('stats_p1', 'stats_t') ORDER BY 1
                """)
            #expect(visible.split(separator: "\n").map(String.init) == ["stats_p1|t|\(try target.psql("SELECT pg_relation_size('stats_p1') / 8192").trimmingCharacters(in: .whitespacesAndNewlines))", "stats_t|f|0"], "\(visible)")
            // A table the source never analyzed, and one with a column added since: analyzed.
            #expect(try target.psql("SELECT reltuples FROM pg_class WHERE relname = 'stats_new'").contains("700"))
            #expect(try target.psql("SELECT count(*) FROM pg_stats WHERE tablename = 'stats_added' AND attname = 'extra'").contains("1"))

            // psql on the file imports them too (the member's guard is true on 18).
            try TestDatabase.with(on: cluster) { stock in
                try TestArchives.restoreWithStockTools(archive, into: stock)
                #expect(try Self.pgStats(stock) == stats)
                #expect(try Self.relationCounts(stock) == counts)
            }

            // One table into another schema: its statistics under the new name.
            let table = try CLI.run(["restore", archive, "--table", "public.stats_t", "--into-schema", "recovered", "--target-url", source.url],
                                    environment: environment)
            #expect(table.status == 0 && !table.stderr.contains("could not be imported"), "\(table)")
            #expect(try source.psql("SELECT reltuples FROM pg_class WHERE oid = 'recovered.stats_t'::regclass").contains("5000"))
            #expect(try source.psql("SELECT count(*) FROM pg_stats WHERE schemaname = 'recovered' AND tablename = 'stats_t'").contains("5"))

            // The drill: imported statistics pass its check.
            let drill = try CLI.run(["drill", archive, "--database-url", source.url], environment: environment)
            #expect(drill.stdout.contains("PASS  statistics") && drill.stdout.contains("the restore's: imported for 4 tables, 2 tables analyzed"), "\(drill)")
            // The dry run names the import (trial finding 10).
            let dry = try CLI.run(["restore", archive, "--dry-run", "--target-url", target.url.replacingOccurrences(of: target.name, with: target.name + "_dry")],
                                  environment: environment)
            #expect(dry.stdout.contains("then indexes, constraints, import planner statistics (4 tables), ANALYZE the rest"), "\(dry)")
        }
    }

    /// An import the server refuses (a histogram value not of the column's type) is a warning naming the
    /// table, which is analyzed instead; a statistics member that is not what the backup writes is
    /// refused like any damaged member.
    @Test func aFailedImportIsAWarningAndTheTableIsAnalyzed() throws {
        try Self.withSourceBackedUpOn18 { cluster, source, environment, archive in
            var crafted = try CraftedArchive(path: archive)
            let index = try #require(crafted.firstIndex(of: "statistics"))
            let text = String(decoding: try crafted.text(of: index), as: UTF8.self)
            // The integer column's histogram with a value that is no integer: the server refuses it.
            let renamed = text.split(separator: "\n", omittingEmptySubsequences: false).map { line in
                line.contains("'relname', 'stats_t', 'attname', 'id',")
                    ? line.replacingOccurrences(of: "'histogram_bounds', '{", with: "'histogram_bounds', '{no_such_number,") : String(line)
            }.joined(separator: "\n")
            #expect(renamed != text && ArchiveLayout.statisticsProblem(renamed) == nil)
            try crafted.setText(of: index, to: Array(renamed.utf8))
            let craftedPath = URL(fileURLWithPath: archive).deletingLastPathComponent().path + "/crafted.sql.gz"
            try crafted.write(to: craftedPath)

            let target = try TestDatabase.unused(prefix: "rgw_sf", on: cluster)
            defer { target.drop() }
            let restore = try CLI.run(["restore", craftedPath, "--target-url", target.url], environment: environment)
            #expect(restore.status == 0, "\(restore)")
            #expect(restore.stderr.contains("could not be imported") && restore.stderr.contains("table=public.stats_t")
                    && restore.stderr.contains("pg_restore_attribute_stats of column id returned false"), "\(restore.stderr)")
            // Analyzed: the 9000 rows it holds, a row of pg_stats per column.
            #expect(try target.psql("SELECT reltuples FROM pg_class WHERE relname = 'stats_t'").contains("9000"))
            #expect(try target.psql("SELECT count(*) FROM pg_stats WHERE tablename = 'stats_t' AND attname = 'name'").contains("1"))
            // The other tables' statistics were imported (the source's stale counts).
            #expect(try target.psql("SELECT reltuples FROM pg_class WHERE relname = 'stats_p1'").contains("1000"))

            // A statement the backup does not write: verify and restore refuse it.
            var hostile = try CraftedArchive(path: archive)
            try hostile.setText(of: index, to: Array(text.replacingOccurrences(of: "\\endif\n", with: "DROP TABLE stats_t;\n\\endif\n").utf8))
            try hostile.write(to: craftedPath)
            let verify = try CLI.run(["verify", craftedPath])
            #expect(verify.status == 2 && verify.stderr.contains("statistics member"), "\(verify)")
            let second = try TestDatabase.unused(prefix: "rgw_sh", on: cluster)
            defer { second.drop() }
            let refused = try CLI.run(["restore", craftedPath, "--target-url", second.url], environment: environment)
            #expect(refused.status == 2 && refused.stderr.contains("statistics member"), "\(refused)")
        }
    }

    /// Finding 9 of the trial: a failed import's reason (the server's error with its DETAIL) is one
    /// line; a lost connection (or a stopped run) during the import is no failed import but the
    /// error that stops the run, as in any other phase.
    @Test func aLostConnectionIsNoFailedImportAndAReasonIsOneLine() throws {
        let cluster = try TestCluster.version(18)
        try TestDatabase.with(on: cluster) { database in
            _ = try database.psql("CREATE TABLE lost_t (id integer); INSERT INTO lost_t SELECT g FROM generate_series(1, 100) g")
            @Sendable func call(_ extra: [ArchiveStatistics.Argument]) -> ArchiveStatistics.Call {
                ArchiveStatistics.Call(.attribute, [.init("version", "180000"), .init("schemaname", "public"), .init("relname", "lost_t"),
                                                    .init("attname", "id"), .init("inherited", "false"), .init("null_frac", "0")] + extra)
            }
            let importer = try database.connect()
            let why = try #require(try ArchiveStatistics.importTable([call([.init("most_common_freqs", "not-an-array")])], importer))
            #expect(!why.contains("\n") && why.contains("malformed array literal") && why.contains("; DETAIL: "), "\(why)")

            // The import waits on a lock; its backend is terminated meanwhile.
            let holder = try database.connect()
            try holder.execute("BEGIN")
            try holder.execute("LOCK TABLE lost_t IN ACCESS EXCLUSIVE MODE")
            let pid = try #require(try importer.query("SELECT pg_backend_pid()").scalar)
            let outcome = LockedList<Result<String?, Error>>()
            nonisolated(unsafe) let waiting = importer
            let thread = Thread { outcome.add(Result { try ArchiveStatistics.importTable([call([])], waiting) }) }
            thread.start()
            let deadline = Date().addingTimeInterval(30)
            while try holder.query("SELECT count(*) FROM pg_stat_activity WHERE pid = \(pid) AND wait_event_type = 'Lock'").scalar != "1", Date() < deadline {
                Thread.sleep(forTimeInterval: 0.05)
            }
            _ = try database.psql("SELECT pg_terminate_backend(\(pid))")
            while outcome.items.isEmpty, Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
            try holder.execute("ROLLBACK")
            switch outcome.items.first {
            case .failure(let error as PostgresError): #expect(error.isConnectionLoss, "\(error)")
            case let other: Issue.record("a lost connection during the import is thrown, not a failed import: \(String(describing: other))")
            }
        }
    }

    /// PostgreSQL 15: the archive records the statistics, the restore analyzes as before (no
    /// import phase), and the drill's check fails a table with rows but no statistics.
    @Test func olderServersAnalyzeAndTheDrillChecksStatisticsExist() throws {
        try TestDatabase.with { source in
            _ = try source.psql("CREATE TABLE never_analyzed (id integer, v text) WITH (autovacuum_enabled = false); INSERT INTO never_analyzed SELECT g, 'x' FROM generate_series(1, 300) g")
            let directory = try TestArchives.temporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let archive = try Self.backUp(source, into: directory)
            let manifest = try ArchiveReader(path: archive).manifest

            // The source itself has no statistics for the table: the check fails, naming it.
            let connection = try source.connect()
            let before = try DrillChecks.statistics(connection, manifest: manifest)
            #expect(!before.ok && before.detail.contains("never_analyzed"), "\(before)")
            _ = try source.psql("ANALYZE never_analyzed")
            let after = try DrillChecks.statistics(connection, manifest: manifest)
            #expect(after.ok, "\(after)")

            // The format version and the statistics member are shown (trial finding 5).
            for command in ["inspect", "verify"] {
                let shown = try CLI.run([command, archive, "--json"])
                let document = try #require(try JSONSerialization.jsonObject(with: Data(shown.stdout.utf8)) as? [String: Any], "\(shown)")
                #expect(document["format_version"] as? Int == 2 && document["planner_statistics"] as? Bool == true, "\(command): \(shown.stdout)")
            }
            let inspected = try CLI.run(["inspect", archive])
            #expect(inspected.stdout.contains("format         version 2, with the source's planner statistics"), "\(inspected.stdout)")

            let target = try TestDatabase.unused(prefix: "rgw_s15")
            defer { target.drop() }
            let restore = try CLI.run(["restore", archive, "--target-url", target.url, "--json"])
            #expect(restore.status == 0 && !restore.stdout.contains("\"name\" : \"statistics\""), "\(restore)")
            #expect(try target.psql("SELECT reltuples FROM pg_class WHERE relname = 'never_analyzed'").contains("300"))
            // The loaded rows do not count as changed since the restore's ANALYZE (trial finding 3:
            // else autovacuum analyzes every table again). The loading sessions' counts are sent
            // when they end: read after a pause.
            Thread.sleep(forTimeInterval: 2)
            let changed = try target.psql("SELECT relname, n_mod_since_analyze, last_analyze IS NOT NULL FROM pg_stat_user_tables ORDER BY 1")
            #expect(changed.contains("never_analyzed|0|t"), "\(changed)")
            // The summary says how the tables got their statistics, and why (trial finding 10).
            let report = try #require(try JSONSerialization.jsonObject(with: Data(restore.stdout.utf8)) as? [String: Any], "\(restore)")
            let outcome = try #require(report["statistics"] as? [String: Any], "\(restore.stdout)")
            #expect(outcome["imported"] as? Int == 0 && (outcome["analyzed"] as? Int ?? 0) >= 1
                    && (outcome["analyzed_because"] as? String ?? "").contains("cannot import planner statistics"), "\(outcome)")
            let again = try TestDatabase.unused(prefix: "rgw_s15t")
            defer { again.drop() }
            // With --latest (its own archive check made when choosing), the summary has that phase too (finding 10).
            let text = try CLI.run(["restore", "--latest", "--dir", directory, "--target-url", again.url])
            #expect(text.status == 0 && text.stdout.contains("  fetch and archive check (--latest) "), "\(text)")
            #expect(text.stdout.contains("planner statistics: ") && text.stdout.contains("analyzed (PostgreSQL 15 cannot import"), "\(text.stdout)")
            let drill = try CLI.run(["drill", archive, "--json", "--database-url", source.url])
            #expect(drill.stdout.contains("\"name\" : \"statistics\"") || drill.stdout.contains("\"name\":\"statistics\""), "\(drill)")
            #expect(drill.stdout.contains("all ") && drill.stdout.contains("tables with rows have planner statistics")
                    && drill.stdout.contains("the restore's: ") && drill.stdout.contains("analyzed (PostgreSQL 15 cannot import"), "\(drill)")
        }
    }

    /// The statistics hold sampled values: an encrypted archive has them only inside the payload
    /// (not in the file as stored, nor in a sidecar).
    @Test func anEncryptedArchiveHoldsTheStatisticsOnlyInsideThePayload() throws {
        let keys = try TestKeys.make()
        try TestDatabase.with { source in
            let value = "qq-sampled-7731-zz"
            _ = try source.psql("CREATE TABLE secrets_t (v text); INSERT INTO secrets_t SELECT CASE WHEN g % 2 = 0 THEN '\(value)' ELSE 'other-' || g END FROM generate_series(1, 400) g; ANALYZE secrets_t")
            let directory = try TestArchives.temporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let backup = try CLI.run(["backup", "--database-url", source.url, "--dir", directory, "--recipient", keys.recipient])
            #expect(backup.status == 0, "\(backup)")
            let files = try FileManager.default.contentsOfDirectory(atPath: directory)
            let file = directory + "/" + (try #require(files.first { $0.hasSuffix(".age") }))
            for name in files {
                let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: directory + "/" + name)))
                #expect(String(decoding: bytes, as: UTF8.self).range(of: value) == nil, "\(name) holds a sampled value in the clear")
            }
            // Inside the payload, in the statistics member: the value is the column's most common one.
            let plain = try Shell.runChecked("/bin/sh", ["-c", #"age -d -i "$2" "$1" | gunzip -c | sed -n '/^-- Planner statistics/,$p'"#, "sh", file, keys.identity])
            #expect(plain.contains("'most_common_vals', '{\(value)}'"), "\(plain.prefix(2000))")
        }
    }
}
