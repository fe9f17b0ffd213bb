import Foundation
import RGWPostgres
import Testing
import TestSupport
@testable import RackGatewayDB

/// Every command against a database shaped like production (Tests/Fixtures/rack-gateway-app: the
/// application's kind of migrations, River's tables with UNLOGGED ones, the app's audit triggers and
/// `verify_chain`), beside the bundled-schema tests elsewhere.
@Suite("production-shaped Rack Gateway database")
struct ProductionSchemaTests {
    static let appMigrations = ["--migrations", ProductionFixture.migrations]

    /// What migrate must not touch: the schema text and the bookkeeping rows.
    static func untouched(_ database: TestDatabase) throws -> String {
        try TestArchives.schemaDump(database) + "\n" + database.psql("SELECT string_agg(version, ',' ORDER BY version) FROM schema_migrations")
    }

    @Test func theBundledSetIsForeignSoMigrateRefusesAndStatusAndCheckSayWhichSetToUse() throws {
        try ProductionFixture.with(events: 50) { database in
            let before = try Self.untouched(database)
            let environment = ["RGW_DATABASE_URL": database.url]
            for arguments in [["migrate"], ["migrate", "--dry-run"]] {
                let result = try CLI.run(arguments, environment: environment)
                #expect(result.status == 1, "\(result)")
                #expect(result.stderr.contains("refusing to migrate \(database.name): the database was migrated by another migration set: 7 applied versions"), "\(result)")
                #expect(result.stderr.contains("--migrations (or RGW_MIGRATIONS_DIR)") && result.stderr.contains("Nothing was changed."), "\(result)")
            }
            #expect(try Self.untouched(database) == before, "no schema_migrations row, no table, no extension")

            let status = try CLI.run(["status"], environment: environment)
            #expect(status.status == 0, "\(status)")
            #expect(status.stdout.contains("Foreign migration set: the database was migrated by another migration set"), "\(status)")
            #expect(!status.stdout.contains("pending"), "no bundled file is offered as pending: \(status)")
            let json = try CLI.run(["status", "--json"], environment: environment)
            let decoded = try CLI.decode(MigrationStatus.self, json.stdout)
            let versions = try ProductionFixture.migrationVersions
            #expect(decoded.migrationSet == "foreign" && decoded.pending.isEmpty && decoded.missingFiles == versions)

            let check = try CLI.run(["check"], environment: environment)
            #expect(check.status == 0, "a foreign set is a warning: \(check)")
            let line = try #require(check.stdout.split(separator: "\n").first { $0.contains("migrations:") })
            #expect(line.hasPrefix("  WARN  migrations: 7 applied; the database was migrated by another migration set"), "\(line)")
            #expect(line.contains("internal/gateway/db/migrations") && !check.output.contains("run migrate") && !check.output.contains("older than"), "\(check)")

            // The app's own set, by option and by RGW_MIGRATIONS_DIR: up to date, nothing to apply.
            let matching = try CLI.run(["status"] + Self.appMigrations, environment: environment)
            #expect(matching.stdout.hasSuffix("7 applied, 0 pending, 0 without a file.\n"), "\(matching)")
            let migrate = try CLI.run(["migrate"], environment: environment.merging(["RGW_MIGRATIONS_DIR": ProductionFixture.migrations]) { $1 })
            #expect(migrate.status == 0 && migrate.stdout.contains("Nothing to apply: \(database.name) is up to date (7 migrations)"), "\(migrate)")
            let checked = try CLI.run(["check"] + Self.appMigrations, environment: environment)
            #expect(checked.stdout.contains("  OK    migrations: up to date (7 applied)"), "\(checked)")
            #expect(try Self.untouched(database) == before)
        }
    }

    @Test func aNewerReleaseOfTheAppsSetAppliesAndTheOlderOneSeesADatabaseAhead() throws {
        try ProductionFixture.with(events: 20) { database in
            let newer = try TestArchives.temporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: newer) }
            for file in try FileManager.default.contentsOfDirectory(atPath: ProductionFixture.migrations) {
                try FileManager.default.copyItem(atPath: ProductionFixture.migrations + "/" + file, toPath: newer + "/" + file)
            }
            try "ALTER TABLE public.users ADD COLUMN locale varchar(16);\n".write(toFile: newer + "/20251201090000_user_locale.sql", atomically: true, encoding: .utf8)
            let environment = ["RGW_DATABASE_URL": database.url]
            let applied = try CLI.run(["migrate", "--migrations", newer], environment: environment)
            #expect(applied.status == 0 && applied.stdout.contains("applied 20251201090000_user_locale.sql"), "\(applied)")

            // The deployed release's set is now older than the database: not foreign, nothing to do.
            let status = try CLI.run(["status"] + Self.appMigrations, environment: environment)
            #expect(status.status == 0 && status.stdout.contains("no file  20251201090000 (applied, newer than this set's newest"), "\(status)")
            let check = try CLI.run(["check"] + Self.appMigrations, environment: environment)
            #expect(check.stdout.contains("WARN  migrations: 8 applied; applied versions newer than this set's newest: 20251201090000 (migrated by a newer release"), "\(check)")
            let migrate = try CLI.run(["migrate"] + Self.appMigrations, environment: environment)
            #expect(migrate.status == 0 && migrate.stdout.contains("Nothing to apply"), "\(migrate)")
        }
        // And the other way round: the app's set is foreign to a database of the bundled set.
        try TestDatabase.withMigrated { bundled in
            let before = try Self.untouched(bundled)
            let result = try CLI.run(["migrate"] + Self.appMigrations, environment: ["RGW_DATABASE_URL": bundled.url])
            #expect(result.status == 1 && result.stderr.contains("are not in \(ProductionFixture.migrations)"), "\(result)")
            #expect(try Self.untouched(bundled) == before)
        }
    }

    @Test func anEmptyMissingOrUnreadableMigrationsDirectoryIsAUsageError() throws {
        let empty = try TestArchives.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: empty) }
        let unreadable = try TestArchives.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: unreadable) }
        // A name that cannot be read as a file (root reads through permission bits, so a directory).
        try FileManager.default.createDirectory(atPath: unreadable + "/20251201000000_broken.sql", withIntermediateDirectories: true)
        try TestDatabase.withMigrated { database in
            let before = try Self.untouched(database)
            let cases: [(String, String)] = [
                (empty, "holds no YYYYMMDDHHMMSS_name.sql file"), (empty + "/missing", "cannot read the migrations directory"),
                (unreadable, "cannot read migration file"),
            ]
            for (directory, message) in cases {
                for command in [["migrate"], ["status"], ["check"], ["drill", "--latest", "--dir", empty]] {
                    let result = try CLI.run(command + ["--migrations", directory], environment: ["RGW_DATABASE_URL": database.url])
                    #expect(result.status == 64 && result.stderr.contains(message), "\(command) \(directory): \(result)")
                }
                let environment = try CLI.run(["migrate"], environment: ["RGW_DATABASE_URL": database.url, "RGW_MIGRATIONS_DIR": directory])
                #expect(environment.status == 64 && environment.stderr.contains(message), "\(environment)")
            }
            #expect(try Self.untouched(database) == before)
        }
    }

    @Test func backupRestoreAndTheStockToolsReproduceTheSourceExactly() throws {
        try ProductionFixture.with { source in
            let directory = try TestArchives.temporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let backup = try CLI.run(["backup", "--dir", directory, "--json"], environment: ["RGW_DATABASE_URL": source.url])
            #expect(backup.status == 0, "\(backup)")
            let archive = directory + "/" + (try #require(try FileManager.default.contentsOfDirectory(atPath: directory).first { $0.hasSuffix(".sql.gz") }))
            let verify = try CLI.run(["verify", archive])
            #expect(verify.status == 0, "\(verify)")
            let manifest = try ArchiveReader(path: archive).manifest
            let versions = try ProductionFixture.migrationVersions
            #expect(manifest.schemaMigrations == versions)
            let digests = try DatabaseOracle.tableDigests(source)
            #expect(digests.count == 23 && digests["public.river_leader"]?.hasPrefix("u 1 ") == true && digests["public.river_client_queue"]?.hasPrefix("u 4 ") == true, "\(digests)")
            let sequences = try DatabaseOracle.sequenceStates(source)
            // pg_dump + pg_restore is the reference for the schema text (a varchar IN (...) check reads
            // back differently after any dump and restore, so the source's own text is not).
            let schema = try TestDatabase.with { reference in
                let copy = try Shell.run("/bin/sh", ["-c", #"pg_dump -Fc --no-password -d "$1" | pg_restore --no-password --exit-on-error -d "$2""#, "sh", source.name, reference.name],
                                         environment: try source.settings.childEnvironment)
                #expect(copy.status == 0, "\(copy.stderr)")
                #expect(try DatabaseOracle.tableDigests(reference) == digests, "the reference holds the same rows")
                return try TestArchives.schemaDump(reference)
            }

            try TestDatabase.withUnused { target in
                let restore = try CLI.run(["restore", archive, "--target-url", target.url, "--verify"])
                #expect(restore.status == 0 && restore.stdout.contains("verified: every table"), "\(restore)")
                #expect(try DatabaseOracle.tableDigests(target) == digests, "every table's rows, UNLOGGED ones included, with their persistence")
                #expect(try DatabaseOracle.sequenceStates(target) == sequences)
                #expect(try TestArchives.schemaDump(target) == schema)
            }
            try TestDatabase.with { stock in
                try TestArchives.restoreWithStockTools(archive, into: stock)
                #expect(try DatabaseOracle.tableDigests(stock) == digests, "gunzip | psql restores the same rows")
                #expect(try DatabaseOracle.sequenceStates(stock) == sequences)
                #expect(try TestArchives.schemaDump(stock) == schema)
            }
        }
    }

    /// One archive of a production-shaped database, for the drill tests.
    static func withArchive(events: Int = 300, _ body: (TestDatabase, String) throws -> Void) throws {
        try ProductionFixture.with(events: events) { source in
            let directory = try TestArchives.temporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: directory) }
            try body(source, try TestArchives.backup(source, directory: directory).file)
        }
    }

    @Test func theDrillChecksMigrationsWithTheAppsSetOrItsCommandAndOtherwiseSaysNotChecked() throws {
        try Self.withArchive { source, archive in
            let environment = ["RGW_DATABASE_URL": source.url]
            let metrics = archive + ".prom"
            let plain = try CLI.run(["drill", archive, "--metrics-file", metrics], environment: environment)
            #expect(plain.status == 0, "a migrations check that cannot be made fails nothing: \(plain)")
            #expect(plain.stdout.contains("  NOT CHECKED  migrations: the database was migrated by another migration set"), "\(plain)")
            #expect(plain.stdout.contains("--migrate-command CMD") && plain.stdout.contains("Drill PASSED: every check made passed, 1 not checked"), "\(plain)")
            #expect(plain.stdout.contains("PASS  audit chain: 300 events linked from the genesis event to 299; audit.verify_chain agrees"), "\(plain)")
            let prometheus = try String(contentsOfFile: metrics, encoding: .utf8)
            #expect(prometheus.contains("rgw_drill_checks_not_checked{database=\"\(source.name)\"} 1"), "\(prometheus)")
            let json = try CLI.run(["drill", archive, "--json"], environment: environment)
            let report = try CLI.decode(DrillReport.self, json.stdout)
            let migrations = try #require(report.checks.first { $0.name == "migrations" })
            #expect(report.ok && !migrations.checked && migrations.ok, "\(migrations)")

            let withSet = try CLI.run(["drill", archive] + Self.appMigrations, environment: environment)
            #expect(withSet.status == 0 && withSet.stdout.contains("PASS  migrations: up to date (7 migrations of \(ProductionFixture.migrations)); nothing pending"), "\(withSet)")

            // The app's migrate with a release that brings one more migration: it gets the scratch database.
            let release = try TestArchives.temporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: release) }
            for file in try FileManager.default.contentsOfDirectory(atPath: ProductionFixture.migrations) {
                try FileManager.default.copyItem(atPath: ProductionFixture.migrations + "/" + file, toPath: release + "/" + file)
            }
            try "CREATE INDEX users_last_login_idx ON public.users (last_login_at);\n".write(toFile: release + "/20251201090000_login_index.sql", atomically: true, encoding: .utf8)
            let record = release + "/record.txt"
            let command = try CLI.run(["drill", archive, "--migrate-command", ProductionFixture.migrateCommand, "--keep"],
                                      environment: environment.merging(["FAKE_APP_RECORD": record, "FAKE_APP_MIGRATIONS": release]) { $1 })
            #expect(command.status == 0 && command.stdout.contains("PASS  migrations: the application's migrate command (--migrate-command) on rgw_drill_"), "\(command)")
            #expect(command.stdout.contains("applied 20251201090000_login_index.sql"), "its output is in the report: \(command)")
            let recorded = try String(contentsOfFile: record, encoding: .utf8)
            #expect(recorded.contains("argv=migrate\n") && recorded.contains("PGPASSWORD=set"), "\(recorded)")
            let url = try #require(recorded.split(separator: "\n").first { $0.hasPrefix("DATABASE_URL=") })
            #expect(url.contains("/rgw_drill_") && !url.contains(source.cluster.password), "\(url)")
            #expect(recorded.contains("RGW_DATABASE_URL=" + url.dropFirst("DATABASE_URL=".count)), "\(recorded)")
            let kept = try TestDatabase.named(String(url.split(separator: "/").last!))
            defer { kept.drop() }
            #expect(try kept.psql("SELECT count(*) FROM schema_migrations WHERE version = '20251201090000'").contains("1"), "applied to the scratch database")
            #expect(try source.psql("SELECT count(*) FROM schema_migrations WHERE version = '20251201090000'").contains("0"), "never to the source")
        }
    }

    @Test func aMigrateCommandThatFailsHangsOrIsMissingFailsTheDrill() throws {
        try Self.withArchive(events: 30) { source, archive in
            let environment = ["RGW_DATABASE_URL": source.url]
            let failing = try CLI.run(["drill", archive, "--migrate-command", ProductionFixture.migrateCommand], environment: environment.merging(["FAKE_APP_FAIL": "3"]) { $1 })
            #expect(failing.status == 2 && failing.stdout.contains("FAIL  migrations: the application's migrate command (--migrate-command) on rgw_drill_"), "\(failing)")
            #expect(failing.stdout.contains("exited 3; output: migrate: simulated failure"), "\(failing)")

            // A number of seconds of its own: other runs on the machine may have a `sleep 300` of theirs.
            let sleepSeconds = Int.random(in: 3000...9999)
            let started = Date()
            let hanging = try CLI.run(["drill", archive, "--migrate-command", ProductionFixture.migrateCommand, "--migrate-timeout", "2s"],
                                      environment: environment.merging(["FAKE_APP_SLEEP": String(sleepSeconds)]) { $1 })
            #expect(hanging.status == 2 && hanging.stdout.contains("timed out after 2 s and was stopped"), "\(hanging)")
            #expect(Date().timeIntervalSince(started) < 60, "the timeout ended it, and the sleep under the shell with it")
            let digits = String(sleepSeconds)
            #expect(try Shell.run("/bin/sh", ["-c", "pgrep -f 'sleep [\(digits.prefix(1))]\(digits.dropFirst())$' || true"]).stdout.isEmpty, "no process of the command is left")

            let missing = try CLI.run(["drill", archive, "--migrate-command", "/nonexistent/rack-gateway-api migrate"], environment: environment)
            #expect(missing.status == 2 && missing.stdout.contains("exited 127 (command not found)"), "\(missing)")
            let empty = try CLI.run(["drill", archive, "--migrate-command", " "], environment: environment)
            #expect(empty.status == 64, "\(empty)")
        }
    }

    @Test func auditPruneUsesTheAppsTriggersAndTheDrillAcceptsOnlyTheRecordedStart() throws {
        try ProductionFixture.with(events: 400) { database in
            let aggregated = try database.psql("SELECT md5(string_agg(a::text, ',' ORDER BY a::text)) FROM audit.audit_event_aggregated a")
            let environment = ["RGW_DATABASE_URL": database.url]
            let pruned = try CLI.run(["maint", "audit-prune", "--older-than", "400d", "--yes"], environment: environment)
            #expect(pruned.status == 0, "\(pruned)")
            #expect(pruned.stdout.contains("Pruned 200 audit events (chain_index 0...199); the chain now starts at 200, recorded in rack_gateway_db.audit_prune_log; triggers t_forbid_delete were off"), "\(pruned)")
            #expect(try database.psql("SELECT string_agg(tgname || '=' || tgenabled::text, ',' ORDER BY tgname) FROM pg_trigger WHERE tgrelid = 'audit.audit_event'::regclass AND NOT tgisinternal")
                    .contains("audit_event_aggregation_trigger=O,t_forbid_delete=O,t_forbid_update=O"))
            #expect(try database.psql("SELECT md5(string_agg(a::text, ',' ORDER BY a::text)) FROM audit.audit_event_aggregated a") == aggregated)
            #expect(try database.psql("SELECT pruned_count || ' ' || new_chain_start FROM rack_gateway_db.audit_prune_log").contains("200 200"))
            // The app's triggers still refuse a delete after the prune.
            #expect(throws: (any Error).self) { try database.psql("DELETE FROM audit.audit_event WHERE chain_index = 300") }

            let directory = try TestArchives.temporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let archive = try TestArchives.backup(database, directory: directory).file
            let drill = try CLI.run(["drill", archive] + Self.appMigrations, environment: environment)
            #expect(drill.status == 0, "\(drill)")
            #expect(drill.stdout.contains("PASS  audit chain: 200 events linked from chain_index 200, where the recorded prune ended (linked to the last pruned event) to 399; audit.verify_chain agrees"), "\(drill)")

            // Ten more events gone without a recorded prune: the chain no longer starts where it ended.
            try database.psql("""
                ALTER TABLE audit.audit_event DISABLE TRIGGER t_forbid_delete;
                DELETE FROM audit.audit_event WHERE chain_index < 210;
                ALTER TABLE audit.audit_event ENABLE TRIGGER t_forbid_delete;
                """)
            let later = try TestArchives.backup(database, directory: directory).file
            let failed = try CLI.run(["drill", later] + Self.appMigrations, environment: environment)
            #expect(failed.status == 2, "\(failed)")
            #expect(failed.stdout.contains("FAIL  audit chain: the chain starts at chain_index 210 but the last prune recorded in rack_gateway_db.audit_prune_log ended at 200: events are missing"), "\(failed)")
        }
    }

    @Test func aBrokenLinkIsReportedByTheAppsVerifyChainShape() throws {
        try ProductionFixture.with(events: 120) { database in
            try database.psql("""
                ALTER TABLE audit.audit_event DISABLE TRIGGER t_forbid_update;
                UPDATE audit.audit_event SET previous_hash = sha256('forged'::bytea) WHERE chain_index = 77;
                ALTER TABLE audit.audit_event ENABLE TRIGGER t_forbid_update;
                """)
            let directory = try TestArchives.temporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let archive = try TestArchives.backup(database, directory: directory).file
            let drill = try CLI.run(["drill", archive] + Self.appMigrations, environment: ["RGW_DATABASE_URL": database.url])
            #expect(drill.status == 2, "\(drill)")
            #expect(drill.stdout.contains("chain_index 77: previous_hash does not match the event_hash of the event before it; audit.verify_chain reports chain_index 77: previous hash does not match"), "\(drill)")
        }
    }
}
