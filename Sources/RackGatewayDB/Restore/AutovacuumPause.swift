import Logging
import RGWPostgres

/// Autovacuum off on the tables being loaded until their indexes are built: otherwise it starts
/// vacuuming a freshly loaded table (a full scan) while the load and the index builds need every
/// core, and cancels itself on their locks anyway. Each table gets its own setting back (the one its
/// CREATE TABLE gave it, or none), on success and when the restore fails or is stopped: then on a
/// connection of its own (`resumeAfterStop`), since the run's are cancelled with it. Only a second
/// signal leaves it off, which the clean-up entry (`leftUndone`) then names.
struct AutovacuumPause {
    let connection: Connection
    /// Each paused table and its reloptions as they were (`key=value`, in order).
    var paused: [(table: String, original: [String])] = []
    let logger: Logger

    init(_ connection: Connection, tables: [ArchiveManifest.Table], logger: Logger) {
        self.connection = connection
        self.logger = logger
        for table in tables where table.rows > 0 {
            let name = SQL.qualified(table.schema, table.name)
            do {
                let original = try connection.query("""
                    SELECT option FROM pg_catalog.pg_class c, unnest(c.reloptions) WITH ORDINALITY AS o(option, n)
                    WHERE c.oid = $1::regclass ORDER BY n
                    """, [name]).rows.map { $0[0]! }
                try connection.execute("ALTER TABLE ONLY \(name) SET (autovacuum_enabled = off)")
                paused.append((name, original))
            } catch {
                logger.debug("autovacuum stays on", metadata: ["table": "\(name)", "reason": "\(error)"])
            }
        }
    }

    /// What a second signal leaves undone (and the fallback's clean-up does), with how to do it by
    /// hand; nil when nothing was paused.
    func leftUndone(database: String) -> String? {
        guard !paused.isEmpty else { return nil }
        return "put autovacuum back on \(Plural.of(paused.count, "table")) of database \(database), paused for the load "
            + "(by hand: ALTER TABLE ... RESET (autovacuum_enabled) on each, or restore again with --clean)"
    }

    /// Put every table's options back on a new connection that belongs to no run (the run's own
    /// were cancelled by the signal that stopped it, and refuse statements): a failed or stopped
    /// restore's clean-up. A lock still held elsewhere is waited for 10 s at most; whatever
    /// fails is a warning naming the SQL to run. Static, with what it needs, as it may run on
    /// the signal path's thread.
    static func resumeAfterStop(_ paused: [(table: String, original: [String])], settings: ConnectionSettings, logger: Logger) {
        guard !paused.isEmpty else { return }
        do {
            let connection = try settings.cancelled(by: nil).open(.restore)
            try connection.execute("SET lock_timeout = '10s'")
            try resume(paused, on: connection)
        } catch {
            logger.warning("autovacuum is still paused on tables of the unfinished restore; put it back with ALTER TABLE ... RESET (autovacuum_enabled) on each, or restore again with --clean",
                           metadata: ["database": "\(settings.databaseName ?? "?")", "tables": "\(paused.map(\.table).joined(separator: ", "))", "why": "\(error)"])
        }
    }

    /// Put every table's options back, on the restore's own connection.
    func resume() throws { try Self.resume(paused, on: connection) }

    /// Put every table's options back exactly, in their order (pg_dump prints them in that order).
    static func resume(_ paused: [(table: String, original: [String])], on connection: Connection) throws {
        for (table, original) in paused {
            let options = original.map { option -> (key: String, value: String) in
                let parts = option.split(separator: "=", maxSplits: 1)
                return (String(parts[0]), parts.count > 1 ? String(parts[1]) : "")
            }
            var statement = "ALTER TABLE ONLY \(table) RESET (\((["autovacuum_enabled"] + options.map(\.key)).map(SQL.identifier).joined(separator: ", ")))"
            if !options.isEmpty {
                statement += "; ALTER TABLE ONLY \(table) SET (\(options.map { "\(SQL.identifier($0.key)) = \(SQL.literal($0.value))" }.joined(separator: ", ")))"
            }
            do {
                try connection.execute(statement)
            } catch {
                throw ToolError(.failed, "could not put back the storage options of \(table): \(error)")
            }
        }
    }
}
