import Foundation
import Logging
import RGWPostgres

/// The routine tasks of the Rack Gateway maintenance guide (docs/design.md section 6), each one safe to
/// run on a live database.
public struct Maintenance {
    public let connection: Connection
    public let logger: Logger

    /// Connected for maintenance through `connections`.
    public init(connections: ConnectionFactory, logger: Logger) throws {
        self.init(connection: try connections.open(.maint), logger: logger)
    }

    public init(connection: Connection, logger: Logger) {
        self.connection = connection
        self.logger = logger
    }

    // MARK: sessions-cleanup

    public struct SessionsCleanup: Codable, Sendable {
        public var cutoff: String
        public var dryRun: Bool
        public var matched: Int
        public var deleted: Int
        public var batches: Int
    }

    /// Delete `user_sessions` created before now − `olderThan`, `batch` rows per transaction so no
    /// lock is held for long on a busy table.
    public func sessionsCleanup(olderThan seconds: Double, dryRun: Bool, batch: Int = 5000) throws -> SessionsCleanup {
        let cutoff = try connection.query("SELECT (now() - make_interval(secs => $1::double precision))::text", [String(seconds)]).scalar ?? ""
        let matched = Int(try connection.query("SELECT count(*) FROM public.user_sessions WHERE created_at < $1::timestamptz", [cutoff]).scalar ?? "0") ?? 0
        var report = SessionsCleanup(cutoff: cutoff, dryRun: dryRun, matched: matched, deleted: 0, batches: 0)
        guard !dryRun else { return report }
        while true {
            let deleted = try connection.query("""
                DELETE FROM public.user_sessions WHERE id IN (
                    SELECT id FROM public.user_sessions WHERE created_at < $1::timestamptz ORDER BY id LIMIT $2)
                """, [cutoff, String(batch)]).affectedRows ?? 0
            guard deleted > 0 else { break }
            report.deleted += deleted
            report.batches += 1
            logger.debug("sessions deleted", metadata: ["batch": "\(report.batches)", "rows": "\(deleted)"])
        }
        return report
    }

    // MARK: audit-volume

    public struct AuditVolume: Codable, Sendable {
        public struct Day: Codable, Sendable {
            public var day: String
            public var events: Int
        }
        public var days: [Day]
        public var total: Int
        public var tableBytes: Int
    }

    public func auditVolume(days: Int) throws -> AuditVolume {
        let rows = try connection.query("""
            SELECT to_char(date_trunc('day', "timestamp" AT TIME ZONE 'UTC'), 'YYYY-MM-DD'), count(*)::text
            FROM audit.audit_event WHERE "timestamp" >= date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' - make_interval(days => $1::int - 1)
            GROUP BY 1 ORDER BY 1 DESC
            """, [String(days)]).rows
        let list = rows.map { AuditVolume.Day(day: $0[0]!, events: Int($0[1]!) ?? 0) }
        let size = Int(try connection.query("SELECT pg_catalog.pg_total_relation_size('audit.audit_event')::text").scalar ?? "0") ?? 0
        return AuditVolume(days: list, total: list.reduce(0) { $0 + $1.events }, tableBytes: size)
    }

    // MARK: vacuum

    public struct VacuumTable: Codable, Sendable {
        public var table: String
        public var seconds: Double
    }

    public static func userTables(_ connection: Connection) throws -> [String] {
        try connection.query("""
            SELECT n.nspname, c.relname FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
            WHERE c.relkind IN ('r', 'm') AND \(CatalogSQL.userSchemaFilter) ORDER BY 1, 2
            """).rows.map { SQL.qualified($0[0]!, $0[1]!) }
    }

    /// VACUUM (with ANALYZE / FULL) one table at a time, outside a transaction.
    public func vacuum(table: String?, analyze: Bool, full: Bool, progress: (String, Int, Int) -> Void) throws -> [VacuumTable] {
        var tables = try Self.userTables(connection)
        if let table {
            let parts = DumpScript.identifierParts(Substring(table))
            let wanted = parts.count == 2 ? SQL.qualified(parts[0], parts[1]) : SQL.qualified("public", parts.first ?? table)
            guard tables.contains(wanted) else {
                throw ToolError(.failed, "no table \(table) in \(connection.databaseName)", fix: "Name it as schema.table (rack-gateway-db maint size lists them).")
            }
            tables = [wanted]
        }
        var options: [String] = []
        if full { options.append("FULL") }
        if analyze { options.append("ANALYZE") }
        let prefix = options.isEmpty ? "VACUUM" : "VACUUM (\(options.joined(separator: ", ")))"
        var done: [VacuumTable] = []
        for (index, table) in tables.enumerated() {
            progress(table, index + 1, tables.count)
            let stopwatch = Stopwatch()
            try connection.execute("\(prefix) \(table)")
            done.append(VacuumTable(table: table, seconds: stopwatch.elapsed))
        }
        return done
    }

    // MARK: connections

    public struct Connections: Codable, Sendable {
        public struct Session: Codable, Sendable {
            public var pid: Int
            public var user: String
            public var application: String
            public var client: String
            public var state: String
            public var since: String
        }
        public var database: String
        public var count: Int
        public var serverTotal: Int
        public var maxConnections: Int
        public var dbMaxOpenConns: Int
        public var sessions: [Session]
    }

    public func connections(dbMaxOpenConns: Int) throws -> Connections {
        let sessions = try connection.query("""
            SELECT pid::text, coalesce(usename, ''), coalesce(application_name, ''), coalesce(host(client_addr), 'local socket'),
                   coalesce(state, ''), to_char(coalesce(state_change, backend_start) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')
            FROM pg_catalog.pg_stat_activity WHERE datname = current_database() ORDER BY backend_start
            """).rows.map {
            Connections.Session(pid: Int($0[0]!) ?? 0, user: $0[1]!, application: $0[2]!, client: $0[3]!, state: $0[4]!, since: $0[5] ?? "")
        }
        let totals = try connection.query("""
            SELECT (SELECT count(*) FROM pg_catalog.pg_stat_activity WHERE backend_type = 'client backend')::text,
                   current_setting('max_connections')
            """).rows[0]
        return Connections(database: connection.databaseName, count: sessions.count, serverTotal: Int(totals[0]!) ?? 0,
                           maxConnections: Int(totals[1]!) ?? 0, dbMaxOpenConns: dbMaxOpenConns, sessions: sessions)
    }

    // MARK: slow-queries

    public struct SlowQuery: Codable, Sendable {
        public var pid: Int
        public var seconds: Double
        public var state: String
        public var user: String
        public var query: String
    }

    public func slowQueries(minSeconds: Double) throws -> [SlowQuery] {
        try connection.query("""
            SELECT pid::text, extract(epoch FROM now() - query_start)::text, coalesce(state, ''), coalesce(usename, ''), coalesce(query, '')
            FROM pg_catalog.pg_stat_activity
            WHERE state <> 'idle' AND pid <> pg_catalog.pg_backend_pid() AND query_start IS NOT NULL
              AND backend_type = 'client backend' AND now() - query_start >= make_interval(secs => $1::double precision)
            ORDER BY query_start
            """, [String(minSeconds)]).rows.map { row in
            let text = row[4]!.split(whereSeparator: \.isWhitespace).joined(separator: " ")
            return SlowQuery(pid: Int(row[0]!) ?? 0, seconds: Double(row[1]!) ?? 0, state: row[2]!, user: row[3]!,
                             query: text.count > 160 ? String(text.prefix(157)) + "..." : text)
        }
    }

    public func cancel(pid: Int) throws -> Bool {
        try connection.query("SELECT pg_catalog.pg_cancel_backend($1::int)", [String(pid)]).scalar == "t"
    }

    // MARK: size

    public struct Size: Codable, Sendable {
        public struct Table: Codable, Sendable {
            public var table: String
            public var totalBytes: Int
            public var tableBytes: Int
            public var indexBytes: Int
            public var toastBytes: Int
        }
        public var database: String
        public var databaseBytes: Int
        public var tables: [Table]
    }

    public func size() throws -> Size {
        let tables = try connection.query("""
            SELECT n.nspname || '.' || c.relname, pg_catalog.pg_total_relation_size(c.oid)::text,
                   pg_catalog.pg_relation_size(c.oid)::text, pg_catalog.pg_indexes_size(c.oid)::text,
                   coalesce(pg_catalog.pg_total_relation_size(NULLIF(c.reltoastrelid, 0)), 0)::text
            FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
            WHERE c.relkind IN ('r', 'm') AND \(CatalogSQL.userSchemaFilter)
            ORDER BY pg_catalog.pg_total_relation_size(c.oid) DESC, 1
            """).rows.map {
            Size.Table(table: $0[0]!, totalBytes: Int($0[1]!) ?? 0, tableBytes: Int($0[2]!) ?? 0, indexBytes: Int($0[3]!) ?? 0, toastBytes: Int($0[4]!) ?? 0)
        }
        let total = Int(try connection.query("SELECT pg_catalog.pg_database_size(current_database())::text").scalar ?? "0") ?? 0
        return Size(database: connection.databaseName, databaseBytes: total, tables: tables)
    }
}
