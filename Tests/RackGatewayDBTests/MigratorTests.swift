import Foundation
import RGWPostgres
import Testing
import TestSupport
@testable import RackGatewayDB

@Suite("migrate and status against a real server")
struct MigratorTests {
    @Test func migrateCreatesTheSchemaOnceAndStatusAgrees() throws {
        try TestDatabase.with { database in
            let connection = try database.connect()
            let migrator = Migrator(connection: connection, migrations: .embedded, logger: .quiet)
            let before = try migrator.status()
            #expect(before.applied.isEmpty)
            #expect(before.pending.count == MigrationSet.embedded.migrations.count)

            let first = try migrator.migrate()
            #expect(first.applied == MigrationSet.embedded.migrations.map(\.fileName))
            let second = try migrator.migrate()
            #expect(second.applied.isEmpty)
            let after = try migrator.status()
            #expect(after.pending.isEmpty && after.missingFiles.isEmpty)

            let tables = try connection.query("""
                SELECT string_agg(format('%s.%s', table_schema, table_name), ',' ORDER BY 1)
                FROM information_schema.tables WHERE table_schema IN ('public', 'audit')
                """).scalar ?? ""
            for table in ["public.users", "public.user_sessions", "public.api_tokens", "public.mfa_methods",
                          "public.mfa_backup_codes", "public.trusted_devices", "public.settings",
                          "public.deploy_approval_requests", "public.rgw_internal_metadata",
                          "public.schema_migrations", "audit.audit_event"] {
                #expect(tables.contains(table), "missing \(table)")
            }
        }
    }

    @Test func dryRunChangesNothing() throws {
        try TestDatabase.with { database in
            let connection = try database.connect()
            let outcome = try Migrator(connection: connection, migrations: .embedded, logger: .quiet).migrate(dryRun: true)
            #expect(outcome.status.pending.count == MigrationSet.embedded.migrations.count)
            #expect(try connection.query("SELECT to_regclass('public.users') IS NULL").scalar == "t")
            #expect(try connection.query("SELECT to_regclass('public.schema_migrations') IS NULL").scalar == "t")
        }
    }

    @Test func appliedVersionWithoutAFileIsReportedAsDrift() throws {
        try TestDatabase.withMigrated { database in
            let connection = try database.connect()
            try connection.query("INSERT INTO schema_migrations (version) VALUES ($1)", ["29991231000000"])
            let status = try Migrator(connection: connection, migrations: .embedded, logger: .quiet).status()
            #expect(status.missingFiles == ["29991231000000"])
            #expect(status.applied.last?.file == nil)
        }
    }

    @Test func aFailingFileRollsBackAndNamesFileLineAndSQLState() throws {
        try TestDatabase.with { database in
            let connection = try database.connect()
            let set = try MigrationSet(migrations: [
                Migration(version: "20250101000000", name: "good", sql: "CREATE TABLE good (id int);\n"),
                Migration(version: "20250102000000", name: "bad", sql: """
                    CREATE TABLE half_done (id int);
                    INSERT INTO half_done VALUES (1);

                    SELECT id
                      FROM no_such_table;
                    """),
                Migration(version: "20250103000000", name: "later", sql: "CREATE TABLE later (id int);"),
            ], origin: "test")
            let migrator = Migrator(connection: connection, migrations: set, logger: .quiet)
            let error = #expect(throws: ToolError.self) { try migrator.migrate() }
            #expect(error?.message.contains("20250102000000_bad.sql failed at line 5") == true, "\(String(describing: error))")
            #expect(error?.message.contains("SQLSTATE 42P01") == true)
            #expect(try connection.query("SELECT to_regclass('half_done') IS NULL").scalar == "t")
            #expect(try connection.query("SELECT to_regclass('later') IS NULL").scalar == "t")
            let status = try migrator.status()
            #expect(status.applied.map(\.version) == ["20250101000000"])
        }
    }

    @Test func aRuntimeErrorWithoutPositionStillNamesTheStatementLine() throws {
        try TestDatabase.with { database in
            let connection = try database.connect()
            let set = try MigrationSet(migrations: [
                Migration(version: "20250101000000", name: "dup", sql: "CREATE TABLE a (id int);\n\nCREATE TABLE a (id int);\n"),
            ], origin: "test")
            let error = #expect(throws: ToolError.self) {
                try Migrator(connection: connection, migrations: set, logger: .quiet).migrate()
            }
            #expect(error?.message.contains("20250101000000_dup.sql failed at line 3") == true)
            #expect(error?.message.contains("42P07") == true)
        }
    }

    @Test func concurrentRunsApplyEachMigrationOnce() throws {
        try TestDatabase.with { database in
            let settings = try database.settings
            let results = ResultBox()
            DispatchQueue.concurrentPerform(iterations: 4) { _ in
                do {
                    let connection = try Connection(settings: settings)
                    let outcome = try Migrator(connection: connection, migrations: .embedded, logger: .quiet).migrate()
                    results.append(.success(outcome.applied.count))
                } catch {
                    results.append(.failure(error))
                }
            }
            let counts = try results.values.map { try $0.get() }
            #expect(counts.sorted() == [0, 0, 0, MigrationSet.embedded.migrations.count])
        }
    }

    @Test func checkoutDirectoryIsFoundFromTheExecutable() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let found = MigrationSet.checkoutMigrationsDirectory(executablePath: root.path + "/.build/debug/rack-gateway-db")
        #expect(found?.standardizedFileURL.path == root.appendingPathComponent("migrations").standardizedFileURL.path)
        #expect(MigrationSet.checkoutMigrationsDirectory(executablePath: "/usr/local/bin/rack-gateway-db") == nil)
    }
}

final class ResultBox: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: [Result<Int, Error>] = []
    func append(_ value: Result<Int, Error>) { lock.withLock { stored.append(value) } }
    var values: [Result<Int, Error>] { lock.withLock { stored } }
}
