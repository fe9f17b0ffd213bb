import Foundation
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
    /// Each paused table and its reloptions as they were; a table leaves it once its options are back.
    let paused: PausedTables
    let logger: Logger

    /// The tables still paused, shared with the clean-up entry and the signal path (which name
    /// what is left while another thread is putting them back).
    final class PausedTables: @unchecked Sendable {
        private let lock = NSLock()
        private var tables: [(table: String, original: [String])]
        init(_ tables: [(table: String, original: [String])]) { self.tables = tables }
        var remaining: [(table: String, original: [String])] { lock.withLock { tables } }
        var isEmpty: Bool { remaining.isEmpty }
        func resumed(_ table: String) { lock.withLock { tables.removeAll { $0.table == table } } }
    }

    init(_ connection: Connection, tables: [ArchiveManifest.Table], logger: Logger) {
        self.connection = connection
        self.logger = logger
        var paused: [(table: String, original: [String])] = []
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
        self.paused = PausedTables(paused)
    }

    /// What a second signal leaves undone (and the fallback's clean-up does), said when asked: the
    /// tables still paused by name, and the psql command that puts them back; nil when none is.
    static func leftUndone(_ paused: PausedTables, settings: ConnectionSettings) -> String? {
        let remaining = paused.remaining
        guard !remaining.isEmpty else { return nil }
        let shown = 20
        let names = remaining.prefix(shown).map(\.table).joined(separator: ", ") + (remaining.count > shown ? ", ..." : "")
        return "put autovacuum back on \(Plural.of(remaining.count, "table")) of database \(settings.databaseName ?? "?"), paused for the load (\(names)); by hand: "
            + ShellCommand.psql(settings.urlWithoutPassword, remaining.prefix(shown).flatMap { statements($0.table, $0.original) })
            + (remaining.count > shown ? " and the same for the other \(remaining.count - shown)" : "") + ", or restore again with --clean"
    }

    /// Put every table's options back on a new connection that belongs to no run (the run's own
    /// were cancelled by the signal that stopped it, and refuse statements): a failed or stopped
    /// restore's clean-up. A lock still held elsewhere is waited for 10 s at most; whatever
    /// fails is a warning naming the SQL to run. Static, with what it needs, as it may run on
    /// the signal path's thread.
    static func resumeAfterStop(_ paused: PausedTables, settings: ConnectionSettings, logger: Logger) {
        guard !paused.isEmpty else { return }
        do {
            let connection = try settings.cancelled(by: nil).open(.restore)
            try connection.execute("SET lock_timeout = '10s'")
            try resume(paused, on: connection)
        } catch {
            logger.warning("autovacuum is still paused on tables of the unfinished restore; put it back with ALTER TABLE ... RESET (autovacuum_enabled) on each, or restore again with --clean",
                           metadata: ["database": "\(settings.databaseName ?? "?")", "tables": "\(paused.remaining.map(\.table).joined(separator: ", "))", "why": "\(error)"])
        }
    }

    /// Put every table's options back, on the restore's own connection.
    func resume() throws { try Self.resume(paused, on: connection) }

    /// The statements that put one table's options back exactly, in their order (pg_dump prints
    /// them in that order).
    static func statements(_ table: String, _ original: [String]) -> [String] {
        let options = original.map { option -> (key: String, value: String) in
            let parts = option.split(separator: "=", maxSplits: 1)
            return (String(parts[0]), parts.count > 1 ? String(parts[1]) : "")
        }
        var statements = ["ALTER TABLE ONLY \(table) RESET (\((["autovacuum_enabled"] + options.map(\.key)).map(SQL.identifier).joined(separator: ", ")))"]
        if !options.isEmpty {
            statements.append("ALTER TABLE ONLY \(table) SET (\(options.map { "\(SQL.identifier($0.key)) = \(SQL.literal($0.value))" }.joined(separator: ", ")))")
        }
        return statements
    }

    /// Put every table still paused back; each leaves the list once it is.
    static func resume(_ paused: PausedTables, on connection: Connection) throws {
        for (table, original) in paused.remaining {
            do {
                try connection.execute(statements(table, original).joined(separator: "; "))
            } catch {
                throw ToolError(.failed, "could not put back the storage options of \(table): \(error)")
            }
            paused.resumed(table)
        }
    }
}
