import Foundation
import Logging
import RGWPostgres

/// `30d`, `12h`, `90m`, `45s` (or plain seconds): a duration in seconds.
public enum MaintenanceDuration {
    public static func parse(_ text: String) -> Double? {
        let units: [Character: Double] = ["s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604_800]
        guard let last = text.last else { return nil }
        if let unit = units[last], let value = Double(text.dropLast()), value >= 0 { return value * unit }
        return Double(text).flatMap { $0 >= 0 ? $0 : nil }
    }
}

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

    // MARK: audit-prune

    public struct AuditPrune: Codable, Sendable {
        public var cutoff: String
        public var dryRun: Bool
        public var count: Int
        public var firstChainIndex: Int?
        public var lastChainIndex: Int?
        public var newChainStart: Int?
        public var pruned: Bool
        /// The DELETE triggers disabled for the delete and enabled again (read from the catalog).
        public var triggers: [String] = []
        /// Where the prune was recorded.
        public var recordedIn: String?
    }

    /// The key `audit.append_event` locks: the chain cannot grow while it is pruned.
    static let chainLock = "SELECT pg_catalog.pg_advisory_xact_lock(hashtext('audit.audit_event chain'))"

    /// What a prune before `cutoff` would remove: a prefix of the chain (by chain_index) up to the
    /// first event at or after the cutoff, and never the newest event (the next append links to it).
    func prunePlan(cutoff: String) throws -> (count: Int, first: Int?, last: Int?) {
        let row = try connection.query("""
            WITH bound AS (
                SELECT least(
                    coalesce((SELECT min(chain_index) FROM audit.audit_event WHERE "timestamp" >= $1::timestamptz), 9223372036854775807),
                    (SELECT max(chain_index) FROM audit.audit_event)) AS keep_from
            )
            SELECT count(*)::text, min(chain_index)::text, max(chain_index)::text
            FROM audit.audit_event, bound WHERE chain_index < bound.keep_from
            """, [cutoff]).rows[0]
        return (Int(row[0] ?? "0") ?? 0, row[1].flatMap { Int($0) }, row[2].flatMap { Int($0) })
    }

    /// Delete the audit events older than now − `olderThan` (a prefix of the chain), in one
    /// transaction: the chain lock, the DELETE triggers the catalog names off, the delete, the
    /// triggers on as they were, a row in the prune log (`AuditPruneLog`). `confirm` is asked with
    /// the count before anything changes.
    ///
    /// - Important: deletes audit events for good (the WORM anchors and backups keep what they
    ///   recorded); refuses cutoffs younger than `minimumDays`.
    public func auditPrune(olderThan seconds: Double, minimumDays: Int, dryRun: Bool, confirm: (Int) -> Bool) throws -> AuditPrune {
        guard seconds >= Double(minimumDays) * 86400 else {
            throw ToolError(.failed, "refusing to prune audit events younger than \(minimumDays) days (AUDIT_ANCHOR_RETENTION_DAYS): --older-than is \(String(format: "%.1f", seconds / 86400)) days",
                            fix: "Use --older-than \(minimumDays)d or more; the audit anchors in S3 are kept \(minimumDays) days.")
        }
        let cutoff = try connection.query("SELECT (now() - make_interval(secs => $1::double precision))::text", [String(seconds)]).scalar ?? ""
        let plan = try prunePlan(cutoff: cutoff)
        var report = AuditPrune(cutoff: cutoff, dryRun: dryRun, count: plan.count, firstChainIndex: plan.first,
                                lastChainIndex: plan.last, newChainStart: plan.last.map { $0 + 1 }, pruned: false)
        guard !dryRun, plan.count > 0 else { return report }
        guard confirm(plan.count) else {
            throw ToolError(.notConfirmed, "not confirmed; nothing was pruned", fix: "Pass --yes to prune without asking.")
        }
        try connection.execute("BEGIN")
        do {
            try connection.execute(Self.chainLock)
            // Planned again under the lock: the chain may have grown meanwhile.
            let locked = try prunePlan(cutoff: cutoff)
            guard let first = locked.first, let last = locked.last, locked.count > 0 else {
                try connection.execute("ROLLBACK")
                return report
            }
            // Exactly the triggers that fire on DELETE, off for this transaction's delete and on again
            // in their former state before it commits (ALTER TABLE is transactional).
            let triggers = try AuditPruneLog.deleteTriggers(connection)
            for trigger in triggers {
                try connection.execute("ALTER TABLE audit.audit_event DISABLE TRIGGER \(SQL.identifier(trigger.name))")
            }
            let hash = try connection.query("SELECT encode(event_hash, 'hex') FROM audit.audit_event WHERE chain_index = $1::bigint", [String(last)]).scalar ?? ""
            let deleted = try connection.query("DELETE FROM audit.audit_event WHERE chain_index <= $1::bigint", [String(last)]).affectedRows ?? 0
            for trigger in triggers {
                try connection.execute("ALTER TABLE audit.audit_event \(trigger.enable) \(SQL.identifier(trigger.name))")
            }
            let log = try AuditPruneLog.prepare(connection)
            try connection.query("""
                INSERT INTO \(log) (cutoff, pruned_count, first_chain_index, last_chain_index, new_chain_start, last_pruned_event_hash)
                VALUES ($1::timestamptz, $2::bigint, $3::bigint, $4::bigint, $4::bigint + 1, decode($5, 'hex'))
                """, [cutoff, String(deleted), String(first), String(last), hash])
            try connection.execute("COMMIT")
            report.triggers = triggers.map(\.name)
            report.recordedIn = log
            report.count = deleted
            report.firstChainIndex = first
            report.lastChainIndex = last
            report.newChainStart = last + 1
            report.pruned = true
            return report
        } catch {
            _ = try? connection.execute("ROLLBACK")
            if let error = error as? PostgresError, error.sqlState == "42501" {
                throw ToolError(.failed, "\(connection.userName) may not alter audit.audit_event (\(error.message)); nothing was pruned",
                                fix: "Run audit-prune as the table's owner (audit_owner) or a superuser.")
            }
            throw error
        }
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
            let started = Date()
            try connection.execute("\(prefix) \(table)")
            done.append(VacuumTable(table: table, seconds: Date().timeIntervalSince(started)))
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
