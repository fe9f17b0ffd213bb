import Logging
import RGWPostgres

/// Drops every object of one database, migrates it afresh and marks its environment.
///
/// - Important: destroys all data of the database. Run only after `ResetGuards` allowed it.
public struct DatabaseReset {
    public let connection: Connection
    public let migrations: MigrationSet
    public let guards: ResetGuards
    public let logger: Logger

    public init(connections: ConnectionFactory, migrations: MigrationSet, guards: ResetGuards, logger: Logger) throws {
        self.init(connection: try connections.open(.reset), migrations: migrations, guards: guards, logger: logger)
    }

    public init(connection: Connection, migrations: MigrationSet, guards: ResetGuards, logger: Logger) {
        self.connection = connection
        self.migrations = migrations
        self.guards = guards
        self.logger = logger
    }

    public struct Report: Codable, Sendable {
        public var database: String
        public var droppedSchemas: [String]
        public var droppedExtensions: [String]
        public var appliedMigrations: [String]
        public var environment: String
    }

    /// The environment recorded in `rgw_internal_metadata`, or nil when there is none.
    public static func recordedEnvironment(_ connection: Connection) throws -> String? {
        guard try connection.query("SELECT to_regclass('public.rgw_internal_metadata') IS NOT NULL").scalar == "t" else {
            return nil
        }
        return try connection.query("SELECT environment FROM public.rgw_internal_metadata LIMIT 1").scalar
    }

    public func run() throws -> Report {
        let recorded = try Self.recordedEnvironment(connection)
        if let refusal = guards.refusal(metadataEnvironment: recorded) { throw refusal }
        logger.warning("reset-db: dropping every schema of the database", metadata: ["pg.database": "\(connection.databaseName)"])

        try connection.execute("BEGIN")
        let dropped: (schemas: [String], extensions: [String])
        do {
            dropped = try dropEverything()
            try connection.execute("COMMIT")
        } catch {
            _ = try? connection.execute("ROLLBACK")
            throw error
        }
        let outcome = try Migrator(connection: connection, migrations: migrations, logger: logger).migrate()
        let environment = recorded ?? "development"
        try connection.query("""
            INSERT INTO public.rgw_internal_metadata (singleton, environment) VALUES (true, $1)
            ON CONFLICT (singleton) DO UPDATE SET environment = EXCLUDED.environment, updated_at = now()
            """, [environment])
        return Report(database: connection.databaseName, droppedSchemas: dropped.schemas,
                      droppedExtensions: dropped.extensions, appliedMigrations: outcome.applied, environment: environment)
    }

    /// - Important: drops all user schemas (public included) and extensions, then recreates `public`.
    private func dropEverything() throws -> (schemas: [String], extensions: [String]) {
        let extensions = try connection.query("SELECT extname FROM pg_catalog.pg_extension WHERE extname <> 'plpgsql' ORDER BY 1")
            .rows.compactMap { $0[0] }
        for name in extensions {
            try connection.execute("DROP EXTENSION IF EXISTS \(SQL.identifier(name)) CASCADE")
        }
        let schemas = try connection.query("""
            SELECT n.nspname FROM pg_catalog.pg_namespace n WHERE \(CatalogSQL.userSchemaFilter)
            ORDER BY 1
            """).rows.compactMap { $0[0] }
        for name in schemas {
            try connection.execute("DROP SCHEMA \(SQL.identifier(name)) CASCADE")
        }
        if connection.serverMajorVersion >= 15 {
            try connection.execute("CREATE SCHEMA public AUTHORIZATION pg_database_owner")
            try connection.execute("GRANT USAGE ON SCHEMA public TO PUBLIC")
        } else {
            try connection.execute("CREATE SCHEMA public")
            try connection.execute("GRANT ALL ON SCHEMA public TO PUBLIC")
        }
        try connection.execute("COMMENT ON SCHEMA public IS 'standard public schema'")
        return (schemas, extensions)
    }
}
