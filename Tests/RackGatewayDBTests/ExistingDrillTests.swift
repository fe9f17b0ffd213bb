import Foundation
import Testing
import TestSupport
@testable import RackGatewayDB

/// `drill --existing-url`: the drill's checks on a database something else restored (here a
/// `pg_dump | psql` copy, as an RDS snapshot's restore stands to its source), read-only, against an
/// archive's audit history when one is given.
@Suite("drill --existing-url")
struct ExistingDrillTests {
    static func onlyArchive(in directory: String) throws -> String {
        let names = try FileManager.default.contentsOfDirectory(atPath: directory).filter { $0.hasSuffix(".sql.gz") }.sorted()
        return directory + "/" + (names.last ?? "none")
    }

    /// `pg_dump SOURCE | psql TARGET` with the server's own client programs.
    static func copy(_ source: TestDatabase, into target: TestDatabase, bin: String) throws {
        let script = "set -o pipefail; \"$BIN/pg_dump\" -d \"$SOURCE_URL\" | \"$BIN/psql\" -X -q -v ON_ERROR_STOP=1 -d \"$TARGET_URL\" >/dev/null"
        _ = try Shell.runChecked("/bin/bash", ["-c", script], environment: ["BIN": bin, "SOURCE_URL": source.url, "TARGET_URL": target.url])
    }

    /// A login role with only USAGE on the schemas and SELECT on their tables and sequences (and
    /// EXECUTE on their functions, for audit.verify_chain; BYPASSRLS, as backup's role needs, to read
    /// every row of audit.audit_event): it can write nothing.
    static func readOnlyRole(_ database: TestDatabase, bypassRLS: Bool = true) throws -> (name: String, url: String) {
        let name = "rgw_ro_\(UInt32.random(in: 0...UInt32.max))"
        let password = "ro\(UInt64.random(in: 0...UInt64.max))"
        try database.psql("""
            CREATE ROLE \(name) LOGIN \(bypassRLS ? "BYPASSRLS" : "") PASSWORD '\(password)';
            DO $$ DECLARE s text; BEGIN
                FOR s IN SELECT nspname FROM pg_namespace WHERE nspname NOT LIKE 'pg\\_%' AND nspname <> 'information_schema' LOOP
                    EXECUTE format('GRANT USAGE ON SCHEMA %I TO \(name)', s);
                    EXECUTE format('GRANT SELECT ON ALL TABLES IN SCHEMA %I TO \(name)', s);
                    EXECUTE format('GRANT SELECT ON ALL SEQUENCES IN SCHEMA %I TO \(name)', s);
                    EXECUTE format('GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA %I TO \(name)', s);
                END LOOP;
            END $$;
            """)
        return (name, database.cluster.url(database: database.name, user: name, password: password))
    }

    static func dropRole(_ name: String, in database: TestDatabase) {
        _ = try? database.psql("DROP OWNED BY \(name); DROP ROLE \(name)")
    }

    /// Rows inserted, updated and deleted in the user tables, and sequences' values, as the
    /// statistics collector and the catalog see them (the drill's sessions have ended and flushed theirs).
    static func writes(_ database: TestDatabase) throws -> String {
        Thread.sleep(forTimeInterval: 1.5)
        return try database.psql("""
            SELECT (SELECT coalesce(sum(n_tup_ins), 0) || '/' || coalesce(sum(n_tup_upd), 0) || '/' || coalesce(sum(n_tup_del), 0) FROM pg_stat_user_tables)
                || ' ' || (SELECT string_agg(last_value::text, ',' ORDER BY schemaname, sequencename) FROM pg_sequences)
            """).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    struct Report: Decodable {
        struct Check: Decodable { var name: String; var ok: Bool?; var checked: Bool; var detail: String }
        struct Identity: Decodable { var host: String; var port: String; var dbname: String; var user: String; var systemIdentifier: String?; var serverVersion: String; var inRecovery: Bool }
        var kind: String?
        var ok: Bool
        var archive: String
        var database: Identity?
        var checks: [Check]
        func check(_ name: String) -> Check? { checks.first { $0.name == name } }
    }

    /// Done-when of issue 31: a `pg_dump | psql` copy of the production-shaped database passes against
    /// its archive, as a role that can only read; an audit event rewritten with its triggers disabled
    /// is found by diff and by the drill, exit 2, named by its chain_index; and the drill writes nothing.
    @Test(arguments: [15, 18])
    func aCopyPassesAndARewrittenAuditEventFailsByItsChainIndexWithNothingWritten(major: Int) throws {
        let cluster = try TestCluster.version(major)
        let bin = try TestCluster.binDirectory(major: major)
        let env = ["RGW_PG_BIN_DIR": bin]
        try TestDatabase.with(on: cluster) { source in
            try ProductionFixture.build(source, events: major == 15 ? 1200 : 300)
            let directory = try TestArchives.temporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let backup = try CLI.run(["backup", "--database-url", source.url, "--dir", directory], environment: env)
            #expect(backup.status == 0, "\(backup)")
            let archive = try Self.onlyArchive(in: directory)
            try TestDatabase.with(on: cluster) { copy in
                try Self.copy(source, into: copy, bin: bin)
                let role = try Self.readOnlyRole(copy)
                defer { Self.dropRole(role.name, in: copy) }
                let before = try Self.writes(copy)
                let migrations = ["--migrations", ProductionFixture.migrations]

                let passed = try CLI.run(["drill", "--existing-url", role.url, archive] + migrations, environment: env)
                #expect(passed.status == 0, "\(passed)")
                #expect(passed.stdout.contains("Drill of the existing database ") && passed.stdout.contains("/\(copy.name) (PostgreSQL \(major)"), "\(passed.stdout)")
                for line in ["PASS  sequences:", "PASS  constraints and indexes:", "PASS  audit chain:", "PASS  audit history: audit.audit_event: the \(major == 15 ? 1200 : 300) events up to chain_index ",
                             "PASS  migrations: up to date (7 migrations of \(ProductionFixture.migrations))", "Drill PASSED: every check passed."] {
                    #expect(passed.stdout.contains(line), "\(line): \(passed.stdout)")
                }
                #expect(!passed.stdout.contains("rows and fingerprints") && !passed.stdout.contains("scratch database"), "no restore of its own: \(passed.stdout)")

                let json = try CLI.run(["drill", "--existing-url", role.url, archive, "--json"] + migrations, environment: env)
                #expect(json.status == 0, "\(json)")
                let report = try CLI.decode(Report.self, json.stdout)
                #expect(report.kind == "existing" && report.ok && report.archive == URL(fileURLWithPath: archive).lastPathComponent)
                #expect(report.database?.dbname == copy.name && report.database?.port == String(cluster.port) && report.database?.user == role.name, "\(json.stdout)")
                #expect(report.database?.serverVersion.hasPrefix("\(major).") == true, "\(json.stdout)")
                #expect(!json.stdout.contains(role.url.components(separatedBy: ":")[2].components(separatedBy: "@")[0]), "no password in the report")

                // Recorded beside the archive as a drill of kind existing, which does not make the archive `drilled`.
                let log = try String(contentsOfFile: directory + "/drills.jsonl", encoding: .utf8)
                #expect(log.contains("\"kind\":\"existing\"") && log.contains("\"dbname\":\"\(copy.name)\""), "\(log)")
                #expect(!log.contains(role.url.components(separatedBy: ":")[2].components(separatedBy: "@")[0]), "no password in drills.jsonl")
                let list = try CLI.run(["list", "--dir", directory], environment: env)
                #expect(list.status == 0 && !list.stdout.contains("drilled"), "\(list)")

                // An audit event rewritten with its triggers disabled (as a superuser).
                let index = Int64(try copy.psql("SELECT min(chain_index) + 100 FROM audit.audit_event").trimmingCharacters(in: .whitespacesAndNewlines))!
                try copy.psql("""
                    ALTER TABLE audit.audit_event DISABLE TRIGGER ALL;
                    UPDATE audit.audit_event SET action = action || ' (edited)' WHERE chain_index = \(index);
                    ALTER TABLE audit.audit_event ENABLE TRIGGER ALL;
                    """)
                let tampered = try Self.writes(copy)
                let diff = try CLI.run(["diff", archive, "--database-url", copy.url], environment: env)
                #expect(diff.status == 2, "\(diff)")
                #expect(diff.stdout.contains("AUDIT HISTORY CHANGED audit.audit_event: the event at chain_index \(index) is changed"), "\(diff.stdout)")
                let failed = try CLI.run(["drill", "--existing-url", role.url, archive] + migrations, environment: env)
                #expect(failed.status == 2, "\(failed)")
                #expect(failed.stdout.contains("FAIL  audit history: audit.audit_event was changed: the event at chain_index \(index) is changed"), "\(failed.stdout)")
                #expect(failed.stderr.contains("FAILED") && failed.stderr.contains("chain_index \(index)"), "\(failed.stderr)")

                // The drills wrote nothing (the rewrite above is the only change).
                #expect(before != tampered, "the statistics see a write: \(before) -> \(tampered)")
                #expect(try Self.writes(copy) == tampered, "the drill wrote to the database")
            }
        }
    }

    /// A hot standby (a replica not yet promoted) takes no write at all: the drill passes on one,
    /// and says it is a standby.
    @Test func aHotStandbyPasses() throws {
        let primary = try TestCluster.startPrivate()
        defer { primary.stop() }
        try TestDatabase.with(on: primary) { source in
            try ProductionFixture.build(source, events: 200)
            let directory = try TestArchives.temporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: directory) }
            #expect(try CLI.run(["backup", "--database-url", source.url, "--dir", directory]).status == 0)
            let archive = try Self.onlyArchive(in: directory)
            let standby = try primary.startStandby()
            defer { standby.stop() }
            let url = standby.url(database: source.name)
            let drill = try CLI.run(["drill", "--existing-url", url, archive, "--migrations", ProductionFixture.migrations, "--json"])
            #expect(drill.status == 0, "\(drill)")
            let report = try CLI.decode(Report.self, drill.stdout)
            #expect(report.ok && report.database?.inRecovery == true && report.check("audit history")?.ok == true, "\(drill.stdout)")
            let text = try CLI.run(["drill", "--existing-url", url, archive, "--migrations", ProductionFixture.migrations])
            #expect(text.status == 0 && text.stdout.contains(", a hot standby)"), "\(text)")
        }
    }

    /// The WORM anchors against a database restored to an earlier time: an anchor naming an event
    /// past the database's end (written after the time it was restored to) is passed over, and the
    /// newest one it can have is compared.
    @Test func theAnchorsAreComparedUpToTheDatabasesLastEvent() throws {
        let server = try MotoServer.shared()
        let client = try server.freshBucket()
        try ProductionFixture.with(events: 120) { source in
            let keys = try ProductionPipelineTests.writeAnchors(client, chain: "rgw-prod", database: source, hours: 4)
            let last = Int(try source.psql("SELECT max(chain_index) FROM audit.audit_event").trimmingCharacters(in: .whitespacesAndNewlines))!
            // Production went on after the snapshot: this hour's anchor names an event the restore lacks.
            let stamp = DateFormatter()
            stamp.locale = Locale(identifier: "en_US_POSIX")
            stamp.timeZone = TimeZone(identifier: "UTC")
            stamp.dateFormat = "yyyy/MM/dd/HH"
            let now = Date().addingTimeInterval(-5)
            let folder = stamp.string(from: now)
            stamp.dateFormat = "yyyyMMdd'T'HH"
            try client.putObject(key: "rgw-prod/\(folder)/anchor-\(stamp.string(from: now)).json",
                                 data: Array(#"{"chain_id":"rgw-prod","last_seq":\#(last + 40),"last_hash":"00","ts_utc":"\#(ISO8601DateFormatter().string(from: now))","db_snapshot_lsn":""}"#.utf8))
            let directory = try TestArchives.temporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let environment = MotoServer.awsEnvironment.merging(["AWS_ENDPOINT_URL_S3": server.endpoint]) { $1 }
            let drill = try CLI.run(["drill", "--existing-url", source.url, "--dir", directory, "--audit-anchors", "s3://\(client.bucket)/rgw-prod",
                                     "--migrations", ProductionFixture.migrations], environment: environment)
            #expect(drill.status == 0, "\(drill)")
            #expect(drill.stdout.contains("PASS  audit anchors: anchor \(keys.last!) (chain_index \(last - 3)) matches the restored event; 4 anchors linked back to \(keys.first!)"), "\(drill)")
        }
    }

    /// Without an archive: the checks that need none, the history reported NOT CHECKED (failing
    /// nothing); recorded in --dir, its own metrics; the application's migrate in its dry-run form runs
    /// read-only (a migrate that writes fails); options of a restoring drill are usage errors.
    @Test func withoutAnArchiveTheHistoryIsNotCheckedAndTheMigrateCommandRunsReadOnly() throws {
        try ProductionFixture.with(events: 40) { source in
            let directory = try TestArchives.temporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let metrics = directory + "/rgw.prom"
            let plain = try CLI.run(["drill", "--existing-url", source.url, "--dir", directory, "--metrics-file", metrics])
            #expect(plain.status == 0, "\(plain)")
            #expect(plain.stdout.contains("read-only, without an archive"), "\(plain.stdout)")
            #expect(plain.stdout.contains("NOT CHECKED  audit history: no archive was given"), "\(plain.stdout)")
            #expect(plain.stdout.contains("NOT CHECKED  migrations:") && plain.stdout.contains("Drill PASSED (audit history NOT CHECKED: no archive): every check made passed, 2 not checked"), "\(plain.stdout)")
            let prometheus = try String(contentsOfFile: metrics, encoding: .utf8)
            #expect(prometheus.contains("rgw_drill_existing_checks_failed{database=\"\(source.name)\",dir=\"\(directory)\",server=\"127.0.0.1:\(source.cluster.port)\"} 0"), "\(prometheus)")
            #expect(prometheus.contains("rgw_drill_existing_checks_not_checked{") && prometheus.contains("rgw_drill_existing_last_partial_success_timestamp_seconds{"), "\(prometheus)")
            #expect(!prometheus.contains("rgw_drill_restore_seconds") && !prometheus.contains("rgw_drill_checks_failed"), "a restore drill's names are left alone: \(prometheus)")
            let log = try String(contentsOfFile: directory + "/drills.jsonl", encoding: .utf8)
            #expect(log.contains("\"kind\":\"existing\"") && log.contains("\"archive\":\"\""), "\(log)")
            let report = try CLI.run(["report", "--dir", directory])
            // A partial pass, not a plain one (person-trial 3, item 4).
            #expect(report.stdout.contains("PASSED (partial: no archive), the existing database ") && report.stdout.contains("without an archive"), "\(report)")
            #expect(report.stdout.contains("1 drill, all passed (1 of a database restored elsewhere, 1 passed, 1 of them partial: no archive)"), "\(report)")
            // The app's real migrate is refused by the read-only session; the failed drill is listed under
            // the summary as the database's, not an archive's.
            let writing = try CLI.run(["drill", "--existing-url", source.url, "--dir", directory, "--migrate-command", ProductionFixture.migrateCommand])
            #expect(writing.status == 2 && writing.stdout.contains("FAIL  migrations:") && writing.stdout.contains("read-only transaction"), "\(writing)")
            let failedReport = try CLI.run(["report", "--dir", directory])
            #expect(failedReport.stdout.contains("of the existing database ") && failedReport.stdout.contains(": migrations"), "\(failedReport)")

            // The app's migrate in its dry-run form passes, connected read-only.
            let record = directory + "/record.txt"
            let dryRun = try CLI.run(["drill", "--existing-url", source.url, "--dir", directory, "--migrate-command", ProductionFixture.migrateCommand + " --dry-run"],
                                     environment: ["FAKE_APP_RECORD": record])
            #expect(dryRun.status == 0 && dryRun.stdout.contains("PASS  migrations: the application's migrate command") && dryRun.stdout.contains("dry run: nothing applied"), "\(dryRun)")
            let url = try #require(try String(contentsOfFile: record, encoding: .utf8).split(separator: "\n").first { $0.hasPrefix("DATABASE_URL=") })
            #expect(url.contains("default_transaction_read_only") && !url.contains(source.cluster.password), "\(url)")

            // --latest: the newest archive in --dir is the history's reference.
            #expect(try CLI.run(["backup", "--database-url", source.url, "--dir", directory]).status == 0)
            let latest = try CLI.run(["drill", "--existing-url", source.url, "--latest", "--dir", directory])
            #expect(latest.status == 0 && latest.stdout.contains("PASS  audit history: audit.audit_event: the 40 events up to chain_index 39 are as archived in rack_gateway_backup_"), "\(latest)")

            for (extra, option) in [(["--keep"], "--keep"), (["--jobs", "2"], "--jobs"), (["--scratch-url", source.url], "--scratch-url"),
                                    (["--allow-downgrade"], "--allow-downgrade"), (["--stall-timeout", "1m"], "--stall-timeout")] {
                let refused = try CLI.run(["drill", "--existing-url", source.url, "--dir", directory] + extra)
                #expect(refused.status == 64 && refused.stderr.contains("\(option) does not apply with --existing-url"), "\(refused)")
            }
            // A server that is not there, and a role that row-level security would show a part of audit_event: exit 1, saying so.
            let down = try CLI.run(["drill", "--existing-url", "postgres://nobody@127.0.0.1:1/none", "--dir", directory])
            #expect(down.status == 1 && down.stdout.contains("Drill could not run (cannot connect") && down.stderr.contains("could not run"), "\(down)")
            let partial = try Self.readOnlyRole(source, bypassRLS: false)
            defer { Self.dropRole(partial.name, in: source) }
            let rls = try CLI.run(["drill", "--existing-url", partial.url, "--dir", directory])
            #expect(rls.status == 1 && rls.stderr.contains("row-level security") && rls.stderr.contains("BYPASSRLS"), "\(rls)")
            let key = try CLI.run(["drill", "--existing-url", source.url, "--dir", directory, "--identity", directory + "/none.txt"])
            #expect(key.status == 64 && key.stderr.contains("--identity reads an archive; --existing-url without ARCHIVE or --latest reads none"), "\(key)")
            let neither = try CLI.run(["drill", "--dir", directory])
            #expect(neither.status == 64 && neither.stderr.contains("give an archive path or --latest"), "\(neither)")
        }
    }

    /// Person-trial of issue 31 (items 1, 2, 6, 7, 9, 10, 11, 12): the database is checked against what
    /// the archive holds (a missing table, emptied tables, a dropped index fail by name), the audit
    /// log's triggers must be there and enabled, a migration the archive recorded must be applied,
    /// writes during the drill are measured (a migrate command that writes fails the drill), a run
    /// without an archive says what it did not check (JSON ok null, no last_success), a missing --dir
    /// is refused up front, a wrong password has the code check and diff give.
    @Test func theDatabaseIsCheckedAgainstTheArchiveAndWritesAreMeasured() throws {
        let cluster = try TestCluster.version(15)
        let bin = try TestCluster.binDirectory(major: 15)
        let env = ["RGW_PG_BIN_DIR": bin]
        try TestDatabase.with(on: cluster) { source in
            try ProductionFixture.build(source, events: 300)
            let directory = try TestArchives.temporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: directory) }
            #expect(try CLI.run(["backup", "--database-url", source.url, "--dir", directory], environment: env).status == 0)
            let archive = try Self.onlyArchive(in: directory)
            let migrations = ["--migrations", ProductionFixture.migrations]
            try TestDatabase.with(on: cluster) { copy in
                try Self.copy(source, into: copy, bin: bin)
                let metrics = directory + "/rgw.prom"
                let passed = try CLI.run(["drill", "--existing-url", copy.url, archive, "--metrics-file", metrics] + migrations, environment: env)
                #expect(passed.status == 0, "\(passed)")
                for line in ["PASS  tables and schema: the archive's ", "PASS  audit triggers: the archive's 3 triggers on audit.audit_event are there and enabled",
                             "PASS  read-only: nothing was written to the database (measured", "nothing was written to the database (measured); drill "] {
                    #expect(passed.stdout.contains(line), "\(line): \(passed.stdout)")
                }
                // --json gives the archive's figures as the archive's, not as the database's; a copy is not the source.
                let json = try CLI.run(["drill", "--existing-url", copy.url, archive, "--json"] + migrations, environment: env)
                let object = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any]
                #expect(object?["rows"] == nil && object?["tables"] == nil && object?["bytes"] == nil && object?["same_as_source"] as? Bool == false, "\(json.stdout)")
                #expect((object?["archive_contents"] as? [String: Any])?["rows"] as? Int ?? 0 > 0 && object?["complete"] as? Bool == true, "\(json.stdout)")
                // The same labels as with --dir: the archive's directory.
                #expect(try String(contentsOfFile: metrics, encoding: .utf8).contains("rgw_drill_existing_checks_failed{database=\"\(copy.name)\",dir=\"\(directory)\",server=\"127.0.0.1:\(cluster.port)\"} 0"))

                // A restored copy that lost data, a table, an index, its append-only triggers and a migration's row.
                try copy.psql("""
                    TRUNCATE public.users, public.user_sessions, public.api_tokens CASCADE;
                    DROP TABLE public.settings;
                    DROP INDEX audit.audit_event_user_email_idx;
                    ALTER TABLE audit.audit_event DISABLE TRIGGER t_forbid_update;
                    DROP TRIGGER t_forbid_delete ON audit.audit_event;
                    DELETE FROM public.schema_migrations WHERE version = '20251125120000';
                    """)
                let damaged = try CLI.run(["drill", "--existing-url", copy.url, archive] + migrations, environment: env)
                #expect(damaged.status == 2, "\(damaged)")
                for text in ["FAIL  tables and schema: table public.settings is missing", "index audit_event_user_email_idx on audit.audit_event", "public.users is empty (the archive has ",
                             "FAIL  audit triggers: audit.audit_event lacks the 1 trigger the archive has: t_forbid_delete; 1 trigger on audit.audit_event disabled: t_forbid_update",
                             "FAIL  migrations: the archive recorded 1 migration as applied that the database lacks in public.schema_migrations: 20251125120000"] {
                    #expect(damaged.stdout.contains(text), "\(text): \(damaged.stdout)")
                }
                // Without an archive the triggers are judged by what they fire on.
                let bare = try CLI.run(["drill", "--existing-url", copy.url, "--dir", directory] + migrations, environment: env)
                #expect(bare.status == 2 && bare.stdout.contains("FAIL  audit triggers: the append-only protection is not there: no enabled trigger on audit.audit_event fires on UPDATE; no enabled trigger on audit.audit_event fires on DELETE"), "\(bare)")
            }

            // A migrate command that writes (it turns the session's read-only default off) is seen.
            let creates = "psql \"$DATABASE_URL\" -X -q -c 'SET default_transaction_read_only=off' -c 'CREATE TABLE public.written_by_drill(i int)'"
            let created = try CLI.run(["drill", "--existing-url", source.url, archive, "--migrate-command", creates], environment: env)
            #expect(created.status == 2 && created.stdout.contains("FAIL  read-only: the database was written to while the drill ran") && created.stdout.contains("public.written_by_drill"), "\(created)")
            #expect(!created.stdout.contains("nothing was written"), "\(created.stdout)")
            // The archive's own source is said to be one (not a failure).
            #expect(created.stdout.contains("NOTE  this is the archive's own source database (127.0.0.1:\(cluster.port)/\(source.name), as its manifest records)"), "\(created.stdout)")
            let updates = "psql \"$DATABASE_URL\" -X -q -c 'SET default_transaction_read_only=off' -c 'UPDATE public.users SET name = name WHERE id = (SELECT min(id) FROM public.users)'"
            let updated = try CLI.run(["drill", "--existing-url", source.url, archive, "--migrate-command", updates], environment: env)
            #expect(updated.status == 2 && updated.stdout.contains("FAIL  read-only:") && updated.stdout.contains("1 row inserted, updated or deleted"), "\(updated)")

            // Without an archive: a partial pass, said so; JSON's unchecked ok is null; no last_success.
            let metrics = directory + "/partial.prom"
            let partial = try CLI.run(["drill", "--existing-url", source.url, "--dir", directory, "--metrics-file", metrics] + migrations, environment: env)
            #expect(partial.status == 0 && partial.stdout.contains("Drill PASSED (audit history NOT CHECKED: no archive): "), "\(partial)")
            let prometheus = try String(contentsOfFile: metrics, encoding: .utf8)
            #expect(prometheus.contains("rgw_drill_existing_last_partial_success_timestamp_seconds{") && !prometheus.contains("rgw_drill_existing_last_success_timestamp_seconds"), "\(prometheus)")
            let json = try CLI.run(["drill", "--existing-url", source.url, "--dir", directory, "--json"] + migrations, environment: env)
            let object = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any]
            let history = (object?["checks"] as? [[String: Any]])?.first { $0["name"] as? String == "audit history" }
            #expect(history?["ok"] is NSNull && history?["checked"] as? Bool == false, "\(json.stdout)")
            #expect(object?["complete"] as? Bool == false && object?["ok"] as? Bool == true, "the top level says the run was partial: \(json.stdout)")

            // drills.jsonl cannot be written: refused before anything runs.
            let nowhere = try CLI.run(["drill", "--existing-url", source.url, "--dir", directory + "/none"], environment: env)
            #expect(nowhere.status == 64 && nowhere.stderr.contains("--dir") && nowhere.stderr.contains("does not exist") && !nowhere.stderr.contains("error: warning"), "\(nowhere)")
            // A wrong password: the code check and diff give.
            let role = try Self.readOnlyRole(source)
            defer { Self.dropRole(role.name, in: source) }
            let wrong = role.url.replacingOccurrences(of: ":" + role.url.components(separatedBy: ":")[2].components(separatedBy: "@")[0] + "@", with: ":wrong@")
            let refused = try CLI.run(["drill", "--existing-url", wrong, "--dir", directory, "--json"], environment: env)
            #expect(refused.status == 1 && refused.stdout.contains("database_auth_failed") && !refused.stdout.contains("nothing was written"), "\(refused)")
        }
    }

    /// Items 3 and 8 of the person-trial: a database older than the archive (a snapshot taken before
    /// it: its newest event older than the archive) is compared up to its own last event, the rest
    /// said, not failed; a missing tail with a newest event after the archive's time still fails; an
    /// archive of another database is said to be one (exit 64), and diff --against of two databases'
    /// archives says so too.
    @Test func anOlderSnapshotIsNotARewriteAndAnotherDatabasesArchiveIsNamed() throws {
        let cluster = try TestCluster.version(15)
        let bin = try TestCluster.binDirectory(major: 15)
        let env = ["RGW_PG_BIN_DIR": bin]
        try TestDatabase.with(on: cluster) { source in
            try ProductionFixture.build(source, events: 300)
            let directory = try TestArchives.temporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: directory) }
            #expect(try CLI.run(["backup", "--database-url", source.url, "--dir", directory], environment: env).status == 0)
            let archive = try Self.onlyArchive(in: directory)
            let migrations = ["--migrations", ProductionFixture.migrations]
            try TestDatabase.with(on: cluster) { copy in
                try Self.copy(source, into: copy, bin: bin)
                // The snapshot before the archive: its last 50 events were appended after it.
                try copy.psql("""
                    ALTER TABLE audit.audit_event DISABLE TRIGGER USER;
                    DELETE FROM audit.audit_event WHERE chain_index >= 250;
                    ALTER TABLE audit.audit_event ENABLE TRIGGER USER;
                    """)
                let older = try CLI.run(["drill", "--existing-url", copy.url, archive] + migrations, environment: env)
                #expect(older.status == 0, "\(older)")
                #expect(older.stdout.contains("PASS  audit history: audit.audit_event: the 250 events up to chain_index 249 (this database's last) are as archived in ")
                        && older.stdout.contains("; the archive goes 50 events further than this database (it is newer: taken "), "\(older.stdout)")
                // An event of that older snapshot edited: the detail names what was compared (person-trial 3, item 8).
                try copy.psql("ALTER TABLE audit.audit_event DISABLE TRIGGER USER; UPDATE audit.audit_event SET action = action || 'x' WHERE chain_index = 9")
                let edited = try CLI.run(["drill", "--existing-url", copy.url, archive] + migrations, environment: env)
                #expect(edited.status == 2 && edited.stdout.contains("FAIL  audit history: audit.audit_event was changed: the event at chain_index 9 is changed (events up to chain_index 249, this database's last (the archive's go to 299), against the archive: 1 changed)"), "\(edited)")
                try copy.psql("UPDATE audit.audit_event SET action = left(action, -1) WHERE chain_index = 9; ALTER TABLE audit.audit_event ENABLE TRIGGER USER")
                // The same tail missing, but the database's newest event is after the archive: a FAIL.
                try copy.psql("""
                    ALTER TABLE audit.audit_event DISABLE TRIGGER USER;
                    UPDATE audit.audit_event SET "timestamp" = now() + interval '1 day' WHERE chain_index = 249;
                    ALTER TABLE audit.audit_event ENABLE TRIGGER USER;
                    """)
                let truncated = try CLI.run(["drill", "--existing-url", copy.url, archive] + migrations, environment: env)
                #expect(truncated.status == 2 && truncated.stdout.contains("FAIL  audit history: audit.audit_event was changed: the event at chain_index 249 is changed") && truncated.stdout.contains("50 missing"), "\(truncated)")
            }
            // --latest on a snapshot taken between two archives: the archive of its time is chosen, and said.
            let append = { (index: Int) in
                try source.psql("""
                    INSERT INTO audit.audit_event ("timestamp", chain_index, previous_hash, event_hash, action_type, action, status)
                    SELECT now(), \(index), event_hash, sha256(event_hash), 'auth', 'auth.login', 'success' FROM audit.audit_event WHERE chain_index = \(index - 1);
                    SELECT setval(pg_get_serial_sequence('audit.audit_event', 'chain_index'), \(index));
                    """)
            }
            try append(300)
            try TestDatabase.with(on: cluster) { snapshot in
                try Self.copy(source, into: snapshot, bin: bin)
                Thread.sleep(forTimeInterval: 1.5)
                try append(301)
                #expect(try CLI.run(["backup", "--database-url", source.url, "--dir", directory], environment: env).status == 0)
                let newest = try Self.onlyArchive(in: directory)
                #expect(newest != archive)
                let latest = try CLI.run(["drill", "--existing-url", snapshot.url, "--latest", "--dir", directory] + migrations, environment: env)
                #expect(latest.status == 0, "\(latest)")
                #expect(latest.stdout.contains("against \(archive)") && latest.stdout.contains("NOTE  --latest: chose \(URL(fileURLWithPath: archive).lastPathComponent), the newest archive whose audit log ends at or before this database's (")
                        && latest.stdout.contains("1 newer archive (the newest \(URL(fileURLWithPath: newest).lastPathComponent)) hold events this database does not have"), "\(latest.stdout)")
            }
            try ProductionFixture.with(events: 300) { other in
                let otherDirectory = try TestArchives.temporaryDirectory()
                defer { try? FileManager.default.removeItem(atPath: otherDirectory) }
                #expect(try CLI.run(["backup", "--database-url", other.url, "--dir", otherDirectory], environment: env).status == 0)
                let otherArchive = try Self.onlyArchive(in: otherDirectory)
                let wrong = try CLI.run(["drill", "--existing-url", source.url, otherArchive] + migrations, environment: env)
                #expect(wrong.status == 64, "\(wrong)")
                #expect(wrong.stderr.contains("the archive is not of this database: this archive (\(URL(fileURLWithPath: otherArchive).lastPathComponent)) is of database \(other.name) on ")
                        && wrong.stderr.contains(", not of \(source.name); its events do not match from the first one (chain_index 0: 300 events differ, none is the same)"), "\(wrong.stderr)")
                #expect(!wrong.stdout.contains("was changed") && !wrong.stderr.contains("was changed"), "\(wrong)")
                let live = try CLI.run(["diff", otherArchive, "--database-url", source.url], environment: env)
                #expect(live.status == 2 && live.stdout.contains("AUDIT HISTORY OF ANOTHER DATABASE audit.audit_event: not one history: the archive is of database \(other.name) on ")
                        && live.stdout.contains(", not of \(source.name); their events do not match from the first one"), "\(live)")
                let diff = try CLI.run(["diff", archive, "--against", otherArchive], environment: env)
                #expect(diff.status == 2 && diff.stdout.contains("AUDIT HISTORY OF ANOTHER DATABASE audit.audit_event: not one history: ") && diff.stdout.contains("is of database \(source.name)"), "\(diff)")
            }
        }
    }

    /// Person-trial 3, item 1: databases of one name on two servers (RDS snapshot restores: many
    /// hosts, one name) keep their own series in one metrics file, so a pass of one does not clear
    /// the other's failure. Two spellings of one server's address stand for two servers here.
    @Test func twoServersDatabasesOfOneNameKeepTheirOwnSeries() throws {
        let cluster = try TestCluster.version(15)
        let env = ["RGW_PG_BIN_DIR": try TestCluster.binDirectory(major: 15)]
        try TestDatabase.with(on: cluster) { database in
            try ProductionFixture.build(database, events: 50)
            let directory = try TestArchives.temporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let metrics = directory + "/rgw.prom"
            let common = ["--dir", directory, "--metrics-file", metrics, "--migrations", ProductionFixture.migrations]
            try database.psql("ALTER TABLE audit.audit_event DISABLE TRIGGER t_forbid_update")
            let failed = try CLI.run(["drill", "--existing-url", database.url] + common, environment: env)
            #expect(failed.status == 2, "\(failed)")
            try database.psql("ALTER TABLE audit.audit_event ENABLE TRIGGER t_forbid_update")
            let other = database.url.replacingOccurrences(of: "@127.0.0.1:", with: "@localhost:")
            #expect(other != database.url)
            let passed = try CLI.run(["drill", "--existing-url", other] + common, environment: env)
            #expect(passed.status == 0, "\(passed)")
            let prometheus = try String(contentsOfFile: metrics, encoding: .utf8)
            for line in ["rgw_drill_existing_checks_failed{database=\"\(database.name)\",dir=\"\(directory)\",server=\"127.0.0.1:\(cluster.port)\"} 1",
                         "rgw_drill_existing_checks_failed{database=\"\(database.name)\",dir=\"\(directory)\",server=\"localhost:\(cluster.port)\"} 0",
                         "rgw_drill_existing_last_failure_timestamp_seconds{database=\"\(database.name)\",dir=\"\(directory)\",server=\"127.0.0.1:\(cluster.port)\"} "] {
                #expect(prometheus.contains(line), "\(line): \(prometheus)")
            }
        }
    }

    /// Person-trial 3, item 3: enabled triggers that cannot fire fail the audit triggers check:
    /// `session_replication_role = replica` set for the database or for a role (pg_db_role_setting)
    /// silences ENABLE (origin) triggers, with an archive and without; ENABLE REPLICA ones are
    /// silent in every ordinary session.
    @Test func triggersThatCannotFireFailTheTriggersCheck() throws {
        let cluster = try TestCluster.version(15)
        let env = ["RGW_PG_BIN_DIR": try TestCluster.binDirectory(major: 15)]
        try TestDatabase.with(on: cluster) { database in
            try ProductionFixture.build(database, events: 50)
            let directory = try TestArchives.temporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: directory) }
            #expect(try CLI.run(["backup", "--database-url", database.url, "--dir", directory], environment: env).status == 0)
            let archive = try Self.onlyArchive(in: directory)
            let migrations = ["--migrations", ProductionFixture.migrations]
            try database.psql("ALTER DATABASE \(database.name) SET session_replication_role = replica")
            let silenced = try CLI.run(["drill", "--existing-url", database.url, archive] + migrations, environment: env)
            #expect(silenced.status == 2 && silenced.stdout.contains("FAIL  audit triggers: session_replication_role = replica is set for database \(database.name), so 3 triggers on audit.audit_event never fire in those sessions: "), "\(silenced)")
            try database.psql("ALTER DATABASE \(database.name) RESET session_replication_role")
            let role = "rgw_srr_\(UInt32.random(in: 0...UInt32.max))"
            try database.psql("CREATE ROLE \(role); ALTER ROLE \(role) IN DATABASE \(database.name) SET session_replication_role = replica")
            defer { _ = try? database.psql("DROP ROLE \(role)") }
            let byRole = try CLI.run(["drill", "--existing-url", database.url, "--dir", directory] + migrations, environment: env)
            #expect(byRole.status == 2 && byRole.stdout.contains("FAIL  audit triggers: the append-only protection is not there: session_replication_role = replica is set for role \(role) in database \(database.name), so "), "\(byRole)")
            try database.psql("DROP ROLE \(role); ALTER TABLE audit.audit_event ENABLE REPLICA TRIGGER t_forbid_update")
            let replicaOnly = try CLI.run(["drill", "--existing-url", database.url, archive] + migrations, environment: env)
            #expect(replicaOnly.status == 2 && replicaOnly.stdout.contains("FAIL  audit triggers: 1 trigger on audit.audit_event fires only when session_replication_role is replica (ENABLE REPLICA), not in ordinary sessions: t_forbid_update"), "\(replicaOnly)")
            try database.psql("ALTER TABLE audit.audit_event ENABLE TRIGGER t_forbid_update")
            #expect(try CLI.run(["drill", "--existing-url", database.url, archive] + migrations, environment: env).status == 0)
        }
    }

    /// Person-trial 3, item 2: a trigger function replaced by one that lets rows through (its
    /// triggers still there and enabled) fails the audit triggers check against the archive, naming
    /// the function; without an archive the bodies are not compared, and the line says so.
    @Test func aTriggerFunctionThatIsNotTheArchivesFails() throws {
        let cluster = try TestCluster.version(15)
        let env = ["RGW_PG_BIN_DIR": try TestCluster.binDirectory(major: 15)]
        try TestDatabase.with(on: cluster) { database in
            try ProductionFixture.build(database, events: 50)
            let directory = try TestArchives.temporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: directory) }
            #expect(try CLI.run(["backup", "--database-url", database.url, "--dir", directory], environment: env).status == 0)
            let archive = try Self.onlyArchive(in: directory)
            let migrations = ["--migrations", ProductionFixture.migrations]
            let same = try CLI.run(["drill", "--existing-url", database.url, archive] + migrations, environment: env)
            #expect(same.status == 0 && same.stdout.contains("PASS  audit triggers: the archive's 3 triggers on audit.audit_event are there and enabled (") && same.stdout.contains("); 2 trigger functions as in the archive"), "\(same)")
            try database.psql("""
                CREATE OR REPLACE FUNCTION audit.forbid_update_delete() RETURNS trigger LANGUAGE plpgsql AS $$
                BEGIN RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END; END $$;
                """)
            // The triggers are there and enabled, and let a DELETE through.
            #expect(try database.psql("BEGIN; WITH d AS (DELETE FROM audit.audit_event WHERE chain_index = 5 RETURNING 1) SELECT 'deleted ' || count(*) FROM d; ROLLBACK").contains("deleted 1"))
            let noop = try CLI.run(["drill", "--existing-url", database.url, archive] + migrations, environment: env)
            #expect(noop.status == 2 && noop.stdout.contains("FAIL  audit triggers: the function audit.forbid_update_delete() that t_forbid_delete, t_forbid_update call is not the archive's: its body differs from the one in the archive's schema"), "\(noop)")
            let bare = try CLI.run(["drill", "--existing-url", database.url, "--dir", directory] + migrations, environment: env)
            #expect(bare.status == 0 && bare.stdout.contains("their functions' bodies not compared (no archive)"), "\(bare)")
        }
    }

    /// Person-trial 3, item 6: `--latest` on a restore of exactly the state an older archive holds
    /// (its newest event older than that archive, as every backup is taken after its own newest
    /// event) takes that archive, not a newer one, and says which and why (by the chain_index
    /// sequence, the database's against each manifest's).
    @Test func latestTakesTheArchiveOfTheDatabasesState() throws {
        let cluster = try TestCluster.version(15)
        let env = ["RGW_PG_BIN_DIR": try TestCluster.binDirectory(major: 15)]
        let bin = try TestCluster.binDirectory(major: 15)
        try TestDatabase.with(on: cluster) { source in
            try ProductionFixture.build(source, events: 50)
            let directory = try TestArchives.temporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: directory) }
            #expect(try CLI.run(["backup", "--database-url", source.url, "--dir", directory], environment: env).status == 0)
            let older = try Self.onlyArchive(in: directory)
            try TestDatabase.with(on: cluster) { snapshot in
                try Self.copy(source, into: snapshot, bin: bin)
                Thread.sleep(forTimeInterval: 1.1)
                try source.psql("""
                    INSERT INTO audit.audit_event ("timestamp", chain_index, previous_hash, event_hash, action_type, action, status)
                    SELECT now(), 50, event_hash, sha256(event_hash), 'auth', 'auth.login', 'success' FROM audit.audit_event WHERE chain_index = 49;
                    SELECT setval(pg_get_serial_sequence('audit.audit_event', 'chain_index'), 50);
                    """)
                #expect(try CLI.run(["backup", "--database-url", source.url, "--dir", directory], environment: env).status == 0)
                let newest = try Self.onlyArchive(in: directory)
                #expect(newest != older)
                let latest = try CLI.run(["drill", "--existing-url", snapshot.url, "--latest", "--dir", directory, "--migrations", ProductionFixture.migrations], environment: env)
                #expect(latest.status == 0 && latest.stdout.contains("against \(older)"), "\(latest)")
                #expect(latest.stdout.contains("NOTE  --latest: chose \(URL(fileURLWithPath: older).lastPathComponent), the newest archive whose audit log ends at or before this database's (")
                        && latest.stdout.contains(": 49 in the archive, 49 here): 1 newer archive (the newest \(URL(fileURLWithPath: newest).lastPathComponent)) hold events this database does not have"), "\(latest.stdout)")
            }
        }
    }
}
