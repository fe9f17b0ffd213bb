import Foundation
import RGWPostgres
import Testing
import TestSupport
@testable import RackGatewayDB

@Suite("reset-db and check against a real server")
struct ResetAndCheckTests {
    static let confirmed = ResetGuards(environment: ["RESET_RACK_GATEWAY_DATABASE": "DELETE_ALL_DATA"])

    @Test func resetDropsEverythingAndMigratesADevelopmentDatabase() throws {
        try TestDatabase.withMigrated { database in
            let connection = try database.connect()
            try connection.execute("""
                INSERT INTO rgw_internal_metadata (environment) VALUES ('development');
                INSERT INTO users (email) VALUES ('a@example.com');
                CREATE SCHEMA extra; CREATE TABLE extra.junk (id int);
                CREATE TABLE public.stray (id int);
                """)
            let report = try DatabaseReset(connection: connection, migrations: .embedded, guards: Self.confirmed, logger: .quiet).run()
            #expect(report.droppedSchemas.sorted() == ["audit", "extra", "public"])
            #expect(report.environment == "development")
            #expect(report.appliedMigrations.count == MigrationSet.embedded.migrations.count)
            #expect(try connection.query("SELECT count(*) FROM users").scalar == "0")
            #expect(try connection.query("SELECT to_regclass('public.stray') IS NULL AND to_regnamespace('extra') IS NULL").scalar == "t")
            #expect(try connection.query("SELECT environment FROM rgw_internal_metadata").scalar == "development")
        }
    }

    @Test func refusalsChangeNothing() throws {
        try TestDatabase.withMigrated { database in
            let connection = try database.connect()
            try connection.execute("INSERT INTO users (email) VALUES ('keep@example.com')")
            // No metadata row and no DEV_MODE.
            #expect(throws: ToolError.self) {
                try DatabaseReset(connection: connection, migrations: .embedded, guards: Self.confirmed, logger: .quiet).run()
            }
            try connection.execute("INSERT INTO rgw_internal_metadata (environment) VALUES ('production')")
            let error = #expect(throws: ToolError.self) {
                try DatabaseReset(connection: connection, migrations: .embedded, guards: Self.confirmed, logger: .quiet).run()
            }
            #expect(error?.message.contains("production") == true)
            #expect(try connection.query("SELECT email FROM users").scalar == "keep@example.com")
        }
    }

    @Test func checkPassesOnAMigratedDatabase() throws {
        try TestDatabase.withMigrated { database in
            let report = HealthCheck(settings: try database.settings, migrations: .embedded, logger: .quiet).run()
            #expect(report.ok, "\(report.items)")
            #expect(report.items.map(\.name) == ["connection", "tls", "server", "pg_dump", "migrations", "privileges"])
            #expect(report.items.first { $0.name == "migrations" }?.status == .ok)
        }
    }

    @Test func checkWarnsOfPendingMigrationsAndFailsForAFilteredRole() throws {
        try TestDatabase.with { database in
            let connection = try database.connect()
            let pending = HealthCheck(settings: try database.settings, migrations: .embedded, logger: .quiet).run()
            #expect(pending.items.first { $0.name == "migrations" }?.status == .warn)

            _ = try Migrator(connection: connection, migrations: .embedded, logger: .quiet).migrate()
            let role = "rgw_limited_\(database.name.suffix(6))"
            try connection.execute("""
                CREATE ROLE \(role) LOGIN PASSWORD 'limited-pw';
                GRANT USAGE ON SCHEMA audit TO \(role);
                GRANT SELECT ON ALL TABLES IN SCHEMA public, audit TO \(role);
                GRANT SELECT ON ALL SEQUENCES IN SCHEMA public, audit TO \(role);
                """)
            defer { _ = try? connection.execute("DROP OWNED BY \(role); DROP ROLE \(role)") }
            let limited = try ConnectionSettings(conninfo: database.cluster.url(database: database.name, user: role, password: "limited-pw"))
            let report = HealthCheck(settings: limited, migrations: .embedded, logger: .quiet).run()
            let privileges = report.items.first { $0.name == "privileges" }
            #expect(privileges?.status == .fail)
            #expect(privileges?.detail.contains("audit.audit_event: row-level security would filter rows") == true)
            #expect(!report.ok)
        }
    }

    @Test func checkReportsAnUnreachableServerAsAFailure() throws {
        let settings = try ConnectionSettings(conninfo: "postgres://u:pw@127.0.0.1:1/db")
        let report = HealthCheck(settings: settings, migrations: .embedded, logger: .quiet).run()
        #expect(!report.ok)
        #expect(report.items.count == 1)
    }

    /// A database a restore left marked INCOMPLETE or FAILED fails `check` (exit 1), naming the mark
    /// and the fix; with the comment gone it passes again.
    @Test func checkFailsOnADatabaseARestoreMarked() throws {
        try TestDatabase.withMigrated { database in
            let connection = try database.connect()
            let file = "rack_gateway_backup_20261125T050407Z.sql.gz"
            for (kind, mark) in [("INCOMPLETE", { RestoreTarget.markInProgress(connection, file: file, at: Date()) }),
                                 ("FAILED", { RestoreTarget.markFailed(connection, file: file, reason: "the server closed the connection", at: Date()) })] {
                #expect(mark())
                let text = try CLI.run(["check", "--database-url", database.url])
                #expect(text.status == 1, "\(kind): \(text)")
                #expect(text.stdout.contains("FAIL  restore mark:") && text.stdout.contains("rack-gateway-db: \(kind) restore of \(file)"), "\(text.stdout)")
                // The fix names the marked archive in a command that runs as printed (was "restore ARCHIVE --target-url URL"
                // inside the message), and the migrations are not judged on an incomplete database.
                #expect(text.stderr.contains("rack-gateway-db restore \(file) --target-url postgres://") && text.stderr.contains("--clean")
                        && text.stderr.contains("-c 'DROP DATABASE"), "\(text)")
                #expect(text.stdout.contains("WARN  migrations: not judged"), "\(text.stdout)")
                let json = try CLI.run(["check", "--database-url", database.url, "--json"])
                #expect(json.status == 1, "\(json)")
                let document = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
                let error = try #require(document["error"] as? [String: Any], "\(json)")
                #expect((error["fix"] as? String)?.contains("rack-gateway-db restore \(file)") == true
                        && (error["message"] as? String)?.contains("rack-gateway-db restore") == false, "\(json)")
                let item = try CLI.decode(HealthCheck.Report.self, json.stdout).items.first { $0.name == "restore mark" }
                #expect(item?.status == .fail && item?.detail.contains("\(kind) restore of \(file)") == true, "\(json.stdout)")
            }
            #expect(RestoreTarget.mark(connection, nil))
            let clean = try CLI.run(["check", "--database-url", database.url])
            #expect(clean.status == 0 && !clean.stdout.contains("restore mark"), "\(clean)")
        }
    }
}
