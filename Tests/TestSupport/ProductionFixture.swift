import Foundation
import RGWPostgres
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
}
