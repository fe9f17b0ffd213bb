import Logging
import RGWPostgres

/// Autovacuum off on the tables being loaded until their indexes are built: otherwise it starts
/// vacuuming a freshly loaded table (a full scan) while the load and the index builds need every
/// core, and cancels itself on their locks anyway. Each table gets its own setting back (the one its
/// CREATE TABLE gave it, or none). An interrupted restore leaves it off, on a database that is
/// marked INCOMPLETE and must be restored again anyway.
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

    /// Put every table's options back exactly, in their order (pg_dump prints them in that order).
    func resume() throws {
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
