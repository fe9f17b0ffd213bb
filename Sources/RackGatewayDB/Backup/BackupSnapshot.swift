import Foundation
import RGWPostgres

/// The consistent view a backup dumps: the coordinator's REPEATABLE READ transaction, its exported
/// snapshot (which pg_dump and every reader join), the tables locked ACCESS SHARE, and what the
/// catalog says inside it.
struct BackupSnapshot {
    let coordinator: Connection
    let id: String
    let catalog: BackupCatalog
    let sequences: [ArchiveManifest.Sequence]
    let database: String
    let serverVersion: String
    /// What the drill compares the restore with, and what pg_dump leaves out without --create.
    let schemaState: SchemaState
    let refreshOrder: [(schema: String, name: String, owner: String)]
    let properties: DatabaseProperties
    /// The tables' planner statistics inside the snapshot (the archive's statistics member).
    let statistics: ArchiveStatistics

    /// Session advisory lock key of `backup` ("RGWDBKUP"); advisory locks are per database.
    static let advisoryLockKey: Int64 = 0x5247_5744_424B_5550

    /// Take the backup lock, open the snapshot, lock the tables, read the catalog.
    static func open(_ connections: ConnectionFactory, pgDump: PostgresTools.Tool, lockTimeoutMilliseconds: Int) throws -> BackupSnapshot {
        let coordinator = try connections.open(.backup)
        guard pgDump.majorVersion >= coordinator.serverMajorVersion else {
            throw ToolError(.failed, "\(pgDump.path) is version \(pgDump.version), older than the server (\(coordinator.serverMajorVersion)): it cannot dump this database",
                            fix: "Install postgresql-client-\(coordinator.serverMajorVersion) or newer, or point RGW_PG_BIN_DIR at its bin directory.")
        }
        try acquireAdvisoryLock(coordinator)
        try DumpSession.apply(to: coordinator)
        try coordinator.execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        try coordinator.execute("SET LOCAL lock_timeout = \(lockTimeoutMilliseconds)")
        let id = try coordinator.query("SELECT pg_catalog.pg_export_snapshot()").scalar ?? ""
        var catalog = try BackupCatalog.read(coordinator)
        try lockTables(catalog, coordinator, timeoutMilliseconds: lockTimeoutMilliseconds)
        try catalog.sortBySize(coordinator)
        var sequences: [ArchiveManifest.Sequence] = []
        for sequence in catalog.sequences {
            let row = try coordinator.query("SELECT last_value::text, is_called FROM \(SQL.qualified(sequence.schema, sequence.name))").rows[0]
            sequences.append(.init(schema: sequence.schema, name: sequence.name, value: row[0] ?? "1", isCalled: row[1] == "t"))
        }
        return BackupSnapshot(
            coordinator: coordinator, id: id, catalog: catalog, sequences: sequences, database: coordinator.databaseName,
            serverVersion: try coordinator.query("SHOW server_version").scalar ?? coordinator.serverVersion,
            schemaState: try SchemaState.read(coordinator), refreshOrder: try SchemaState.refreshOrder(coordinator),
            properties: try DatabaseProperties.read(coordinator), statistics: try ArchiveStatistics.read(coordinator))
    }

    /// End the snapshot transaction (the backup lock goes with the session).
    func close() { _ = try? coordinator.execute("COMMIT") }

    static func acquireAdvisoryLock(_ connection: Connection) throws {
        let key = String(advisoryLockKey)
        guard try connection.query("SELECT pg_catalog.pg_try_advisory_lock($1::bigint)", [key]).scalar == "t" else {
            let holder = try? connection.query("""
                SELECT a.pid::text, a.usename, coalesce(a.application_name, ''), coalesce(host(a.client_addr), 'local socket'),
                       to_char(a.backend_start AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')
                FROM pg_catalog.pg_locks l JOIN pg_catalog.pg_stat_activity a ON a.pid = l.pid
                WHERE l.locktype = 'advisory' AND l.granted
                  AND l.database = (SELECT oid FROM pg_catalog.pg_database WHERE datname = current_database())
                  AND l.classid = (($1::bigint >> 32) & 4294967295)::oid AND l.objid = ($1::bigint & 4294967295)::oid AND l.objsubid = 1
                """, [key]).rows.first
            let who = holder.map { "server process \($0[0] ?? "?") (user \($0[1] ?? "?"), \($0[2] ?? ""), from \($0[3] ?? "?"), since \($0[4] ?? "?"))" } ?? "another session"
            throw ToolError(.lockHeld, "another backup of \(connection.databaseName) is running: \(who) holds the backup lock",
                            fix: "Wait for it to finish; only one backup of a database runs at a time.")
        }
    }

    static func lockTables(_ catalog: BackupCatalog, _ connection: Connection, timeoutMilliseconds: Int) throws {
        for table in catalog.tables {
            do {
                try connection.execute("LOCK TABLE \(table.qualified) IN ACCESS SHARE MODE")
            } catch let error as PostgresError where error.sqlState == "55P03" {
                throw ToolError(.failed, "table \(table.schema).\(table.name) is locked by another session (waited \(timeoutMilliseconds) ms for ACCESS SHARE)",
                                fix: "Find the holder with rack-gateway-db maint connections (or pg_locks), let it finish, then run the backup again; --lock-timeout waits longer.")
            }
        }
    }
}
