import Foundation
import Postgres
import RackGatewayDB

/// The production-shaped Rack Gateway database of `Tests/Fixtures/rack-gateway-app` (our own SQL from
/// the facts about the application's schema), built the way the application builds one: the roles
/// Terraform creates, the application's migrate (the stand-in `fake-rack-gateway-api migrate`: its
/// migration files, then River's tables), then data.
public enum ProductionFixture {
    public static var fixtures: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Fixtures")
    }
    /// The application-style migration set.
    public static var migrations: String { fixtures.appendingPathComponent("rack-gateway-app/migrations").path }
    /// The stand-in for the application's binary.
    public static var appBinary: String { fixtures.appendingPathComponent("fake-rack-gateway-api").path }
    /// `--migrate-command` that runs the stand-in's migrate.
    public static var migrateCommand: String { "'\(appBinary)' migrate" }
    public static var migrationVersions: [String] {
        get throws {
            try FileManager.default.contentsOfDirectory(atPath: migrations).filter { $0.hasSuffix(".sql") }.sorted()
                .map { String($0.prefix { $0 != "_" }) }
        }
    }

    /// `audit_owner`, `audit_writer`, `audit_reader`: made outside the migrations, as in production.
    public static func createRoles(_ cluster: TestCluster) throws {
        let admin = try Connection(settings: try cluster.adminSettings)
        for role in ["audit_owner", "audit_writer", "audit_reader"] {
            try admin.execute("""
                DO $$ BEGIN
                    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = '\(role)') THEN CREATE ROLE \(role) NOLOGIN; END IF;
                EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
                END $$
                """)
        }
    }

    /// Migrate `database` as the application does, then fill it (`events` audit events, the first 200
    /// older than 400 days).
    public static func build(_ database: TestDatabase, events: Int = 1200) throws {
        try createRoles(database.cluster)
        let settings = try database.settings
        let migrate = ApplicationMigrateCommand(command: migrateCommand, timeout: 120)
            .run(target: settings, base: ProcessInfo.processInfo.environment, logger: .quiet)
        guard migrate.ok else { throw ToolError(.failed, "the fixture's migrate failed: \(migrate.summary)") }
        let data = fixtures.appendingPathComponent("rack-gateway-app/data.sql").path
        _ = try Shell.runChecked("psql", ["-X", "-q", "-v", "ON_ERROR_STOP=1", "-v", "events=\(events)", "-f", data],
                                 environment: settings.childEnvironment)
    }

    /// Run `body` with a fresh production-shaped database, dropped afterwards.
    public static func with<R>(events: Int = 1200, _ body: (TestDatabase) throws -> R) throws -> R {
        try TestDatabase.with { database in
            try build(database, events: events)
            return try body(database)
        }
    }

    /// Every user table's rows as text, md5 over the sorted rows (an oracle independent of the
    /// tool's fingerprints), UNLOGGED tables included; with each table's persistence.
    public static func tableDigests(_ database: TestDatabase) throws -> [String: String] {
        let connection = try database.connect()
        let tables = try connection.query("""
            SELECT format('%I.%I', n.nspname, c.relname), c.relpersistence::text FROM pg_catalog.pg_class c
            JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
            WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%'
            ORDER BY 1
            """).rows
        var digests: [String: String] = [:]
        for row in tables {
            let name = row[0]!
            let digest = try connection.query("SELECT count(*)::text || ' ' || coalesce(md5(string_agg(t::text, E'\\n' ORDER BY t::text)), '-') FROM \(name) t").scalar ?? ""
            digests[name] = "\(row[1]!) \(digest)"
        }
        return digests
    }

    /// Every sequence's state (last_value, is_called), for comparing a restore with its source.
    public static func sequenceStates(_ database: TestDatabase) throws -> [String: String] {
        let connection = try database.connect()
        var states: [String: String] = [:]
        for row in try connection.query("SELECT format('%I.%I', schemaname, sequencename) FROM pg_catalog.pg_sequences ORDER BY 1").rows {
            states[row[0]!] = try connection.query("SELECT last_value::text || ' ' || is_called::text FROM \(row[0]!)").scalar
        }
        return states
    }
}
