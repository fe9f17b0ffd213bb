import Foundation
import RGWPostgres

/// Row count and fingerprint of a table in a live database, computed the way `backup` computes
/// them (same session settings, same COPY text): for `restore --verify`, drills and tests.
public enum LiveFingerprint {
    public struct Result: Sendable, Equatable {
        public var rows: Int
        public var fingerprint: String
    }

    /// Pins the dump session settings on `connection` (call once per connection).
    public static func prepare(_ connection: Connection) throws {
        try DumpSession.apply(to: connection)
    }

    public static func compute(_ connection: Connection, schema: String, table: String, columns: [String]) throws -> Result {
        let (rows, sum) = try scan(connection, DataChunk.copyOutStatement(schema: schema, name: table, columns: columns))
        return Result(rows: rows, fingerprint: ArchiveManifest.fingerprintText(sum))
    }

    /// Rows and the sum of their hashes for what `statement` (a COPY ... TO STDOUT) sends.
    static func scan(_ connection: Connection, _ statement: String) throws -> (rows: Int, sum: UInt64) {
        var rows = 0
        var sum: UInt64 = 0
        try connection.copyOut(statement) { stream in
            while try stream.withNextRow({ sum &+= DataChunk.rowHash($0) }) {
                rows += 1
            }
        }
        return (rows, sum)
    }

    /// One piece of work: a whole table, or a range of its blocks (a big table is split so that
    /// every connection shares it; the fingerprint is a sum, so the pieces add up).
    struct Piece: Sendable {
        var table: Int
        var blocks: Range<Int>?
    }

    /// Split tables of more than `splitAbove` blocks into about `parts` block ranges each, biggest
    /// tables first.
    static func pieces(_ manifest: ArchiveManifest, blocks: [Int], parts: Int, splitAbove: Int = 4096) -> [Piece] {
        var pieces: [Piece] = []
        let order = manifest.tables.indices.sorted { blocks[$0] != blocks[$1] ? blocks[$0] > blocks[$1] : manifest.tables[$0].bytes > manifest.tables[$1].bytes }
        for index in order {
            let count = blocks[index]
            guard parts > 1, count > splitAbove, manifest.tables[index].filter == nil else {
                pieces.append(Piece(table: index, blocks: nil))
                continue
            }
            let step = (count + parts - 1) / parts
            for start in stride(from: 0, to: count, by: step) {
                // The last range is open-ended, so nothing past the size read a moment ago is missed.
                let end = start + step >= count ? Int.max : start + step
                pieces.append(Piece(table: index, blocks: start..<end))
            }
        }
        return pieces
    }

    /// The conditions the extensions' configuration tables of `manifest` are read with (by table
    /// index): each the database's own (`pg_extension.extcondition`), which the manifest's `filter`
    /// must repeat word for word. A manifest is untrusted input: its text never becomes SQL.
    static func conditions(_ manifest: ArchiveManifest, connection: Connection) throws -> [Int: String] {
        var conditions: [Int: String] = [:]
        for (index, table) in manifest.tables.enumerated() {
            guard let filter = table.filter else { continue }
            let own = try connection.query("""
                SELECT coalesce(x.condition, '') FROM pg_catalog.pg_extension e
                CROSS JOIN LATERAL unnest(e.extconfig, e.extcondition) AS x(relation, condition)
                WHERE x.relation = to_regclass($1)
                """, [SQL.qualified(table.schema, table.name)]).rows.first?[0] ?? nil
            guard let own, own == filter else {
                throw ToolError(.mismatch, "table \(table.qualifiedName): the manifest's filter \"\(filter.prefix(100))\" is not the condition its extension records in the database (\(own.map { "\"\($0)\"" } ?? "none")), so it was not run",
                                fix: "Do not trust this archive: its manifest was altered; use an older archive (rack-gateway-db list).")
            }
            conditions[index] = own
        }
        return conditions
    }

    /// Every table's size in blocks (by `manifest`'s order; 0 for one the database does not hold,
    /// and for those not in `only` when given, which are not looked at), for `pieces`.
    static func blocks(_ manifest: ArchiveManifest, connection: Connection, only: Set<Int>? = nil) throws -> [Int] {
        try manifest.tables.enumerated().map { index, table -> Int in
            if let only, !only.contains(index) { return 0 }
            let value = try connection.query("SELECT coalesce(pg_catalog.pg_relation_size(to_regclass($1)) / current_setting('block_size')::bigint, 0)::text",
                                             [SQL.qualified(table.schema, table.name)]).scalar
            return Int(value ?? "0") ?? 0
        }
    }

    /// Starts a REPEATABLE READ, READ ONLY transaction on `connection` and exports its snapshot, for
    /// `join`: every connection of one comparison then reads the database as of one moment, as
    /// pg_dump -j's do. The transaction stays open until the connection commits or closes.
    static func exportSnapshot(_ connection: Connection) throws -> String {
        try connection.execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        return try connection.query("SELECT pg_catalog.pg_export_snapshot()").scalar ?? ""
    }

    /// Makes `connection` read in the snapshot `exportSnapshot` exported (while its exporter's
    /// transaction is open).
    static func join(_ connection: Connection, snapshot: String) throws {
        try connection.execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        try connection.execute("SET TRANSACTION SNAPSHOT \(SQL.literal(snapshot))")
    }

    /// Reads `pieces` of `manifest`'s tables over `jobs` connections from `connect` (which applies
    /// the dump's session settings, `prepare`) and adds each piece's row count and hash sum to `totals` (expected
    /// there per piece); `tableDone` once a table's last piece is in.
    static func scan(_ pieces: [Piece], of manifest: ArchiveManifest, conditions: [Int: String], jobs: Int, totals: TableTotals,
                     connect: @escaping @Sendable () throws -> Connection, tableDone: @escaping @Sendable (Int) -> Void = { _ in }) throws {
        for piece in pieces { totals.expect(table: piece.table) }
        try forEachInParallel(pieces, workers: jobs, name: "fingerprint", connect: connect) { connection, piece in
            let table = manifest.tables[piece.table]
            let statement = DataChunk.copyOutStatement(schema: table.schema, name: table.name, columns: table.columns, blocks: piece.blocks, filter: conditions[piece.table])
            let rows: Int, sum: UInt64
            do {
                (rows, sum) = try scan(connection, statement)
            } catch let error as PostgresError {
                throw ToolError(.failed, "reading table \(table.qualifiedName) failed: \(error.description)\n  \(statement.prefix(300))")
            }
            if totals.add(table: piece.table, rows: rows, sum: sum) { tableDone(piece.table) }
        }
    }

    /// Re-read every table of `manifest` over `jobs` connections with the dump's session settings
    /// (big tables split by block ranges across the connections); one line per table whose row
    /// count or fingerprint differs.
    public static func mismatches(manifest: ArchiveManifest, settings: ConnectionSettings, jobs: Int,
                                  tableDone: @escaping @Sendable () -> Void = {}) throws -> [String] {
        let sizing = try settings.open(.verify)
        let blocks = try Self.blocks(manifest, connection: sizing)
        let conditions = try Self.conditions(manifest, connection: sizing)
        let pieces = Self.pieces(manifest, blocks: blocks, parts: jobs * 2)
        let totals = TableTotals(tables: manifest.tables.count)
        try scan(pieces, of: manifest, conditions: conditions, jobs: jobs, totals: totals, connect: {
            let connection = try settings.open(.verify)
            try prepare(connection)
            return connection
        }, tableDone: { _ in tableDone() })
        return totals.mismatches(against: manifest, place: "in the database").sorted()
    }
}
