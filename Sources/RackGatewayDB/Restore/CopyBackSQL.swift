import Foundation
import RGWPostgres

/// The SQL `restore --table --into-schema NEW` prints: one transaction that copies the rows of the
/// restored tables (`NEW.t`) that the live tables (`schema.t`, same database) lack back into them.
///
/// Read from the catalog after the load, inside the restore's transaction (so it describes the
/// database as it is): per table, parents before children by the restored foreign keys, an
/// `INSERT INTO live (columns) SELECT columns FROM ONLY NEW.t ON CONFLICT DO NOTHING` naming the columns
/// (ONLY: an inheritance parent's rows without its children's, which are copied as their own tables)
/// both tables have (the live table's generated columns left out, `OVERRIDING SYSTEM VALUE` for
/// its identity columns; a live table without a primary key or unique index gets the restored rows
/// it lacks as a multiset, `EXCEPT ALL`, since no conflict would stop a duplicate). Then the
/// `ON DELETE SET NULL` repair: a parent's delete set its children's column to NULL instead of deleting
/// them, and the INSERT leaves such a row as it is (its key is there), so an UPDATE puts the archived
/// value back where the live row's is still NULL and the parent exists again (the whole archived row
/// when the live table has triggers, which fired on the clearing); such foreign keys from
/// tables that were not restored are named in a comment as not repaired. The live tables' sequences
/// are moved past the ids copied back. The live tables' enabled triggers are disabled until COMMIT
/// (as `pg_restore --disable-triggers` does for data), so the rows keep their archived values.
struct CopyBackSQL {
    let connection: Connection
    /// The restored tables, by their names in the archive (the live tables), in the archive's order.
    let tables: [TableSelection.Name]
    let into: String
    let archive: String
    let createdAt: String

    /// A foreign key of a restored table.
    struct ForeignKey {
        var name: String
        var parent: String
        var action: String
        var columns: [String]
        var parentColumns: [String]
    }

    struct Table {
        var live: TableSelection.Name
        var liveName: String
        var restoredName: String
        var exists: Bool
        var columns: [String] = []
        var identity = false
        /// Identity columns (quoted): an UPDATE cannot set an ALWAYS one.
        var identityColumns: Set<String> = []
        var unique = false
        var onlyRestored: [String] = []
        var onlyLive: [String] = []
        var primaryKey: [String] = []
        var foreignKeys: [ForeignKey] = []
        var triggers: [String] = []
        var sequences: [(column: String, sequence: String)] = []
    }

    func quoted(_ name: String) throws -> String {
        try connection.query("SELECT pg_catalog.quote_ident($1)", [name]).scalar ?? SQL.identifier(name)
    }

    func quoted(_ name: TableSelection.Name) throws -> String { try quoted(name.schema) + "." + quoted(name.name) }

    static let separator = "\u{1}"

    /// The columns (quoted) of a key given as `conkey`-style attribute numbers of `relation`.
    static func keyColumns(_ array: String, relation: String) -> String {
        """
        (SELECT pg_catalog.array_to_string(pg_catalog.array_agg(pg_catalog.quote_ident(a.attname) ORDER BY k.i), chr(1))
         FROM pg_catalog.unnest(\(array)) WITH ORDINALITY k(n, i) JOIN pg_catalog.pg_attribute a ON a.attrelid = \(relation) AND a.attnum = k.n)
        """
    }

    func read() throws -> [Table] {
        // regclass output qualified, as the names are compared with the quoted ones.
        try connection.execute("SET LOCAL search_path = ''")
        var result: [Table] = []
        for name in tables {
            let restored = TableSelection.Name(into, name.name)
            let live = SQL.qualified(name.schema, name.name)
            let new = SQL.qualified(into, name.name)
            var table = Table(live: name, liveName: try quoted(name), restoredName: try quoted(restored),
                              exists: try connection.query("SELECT pg_catalog.to_regclass($1) IS NOT NULL", [live]).scalar == "t")
            let columnsSQL = """
                SELECT a.attname, a.attgenerated::text, a.attidentity::text FROM pg_catalog.pg_attribute a
                WHERE a.attrelid = $1::regclass AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum
                """
            let restoredColumns = try connection.query(columnsSQL, [new]).rows.compactMap { $0[0] }
            table.foreignKeys = try connection.query("""
                SELECT c.conname, c.confrelid::regclass::text, c.confdeltype::text, \(Self.keyColumns("c.conkey", relation: "c.conrelid")),
                       \(Self.keyColumns("c.confkey", relation: "c.confrelid"))
                FROM pg_catalog.pg_constraint c WHERE c.contype = 'f' AND c.conrelid = $1::regclass ORDER BY c.conname
                """, [new]).rows.map {
                    ForeignKey(name: $0[0] ?? "", parent: $0[1] ?? "", action: $0[2] ?? "a",
                               columns: ($0[3] ?? "").components(separatedBy: Self.separator),
                               parentColumns: ($0[4] ?? "").components(separatedBy: Self.separator))
                }
            table.primaryKey = (try connection.query("""
                SELECT \(Self.keyColumns("c.conkey", relation: "c.conrelid")) FROM pg_catalog.pg_constraint c
                WHERE c.contype = 'p' AND c.conrelid = $1::regclass
                """, [new]).scalar).map { $0.components(separatedBy: Self.separator) } ?? []
            guard table.exists else {
                result.append(table)
                continue
            }
            let liveColumns = try connection.query(columnsSQL, [live]).rows
            for row in liveColumns {
                guard let column = row[0] else { continue }
                guard restoredColumns.contains(column) else { table.onlyLive.append(try quoted(column)); continue }
                if row[1] ?? "" != "" { continue }
                table.columns.append(try quoted(column))
                if row[2] ?? "" != "" {
                    table.identity = true
                    table.identityColumns.insert(try quoted(column))
                }
            }
            let liveNames = Set(liveColumns.compactMap { $0[0] })
            table.onlyRestored = try restoredColumns.filter { !liveNames.contains($0) }.map(quoted)
            table.unique = try connection.query("SELECT EXISTS (SELECT FROM pg_catalog.pg_index WHERE indrelid = $1::regclass AND indisunique)", [live]).scalar == "t"
            table.triggers = try connection.query("""
                SELECT pg_catalog.quote_ident(t.tgname) FROM pg_catalog.pg_trigger t
                WHERE t.tgrelid = $1::regclass AND NOT t.tgisinternal AND t.tgenabled IN ('O', 'A') ORDER BY t.tgname
                """, [live]).rows.compactMap { $0[0] }
            table.sequences = try connection.query("""
                SELECT pg_catalog.quote_ident(a.attname), pg_catalog.pg_get_serial_sequence($1, a.attname) FROM pg_catalog.pg_attribute a
                WHERE a.attrelid = $1::regclass AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''
                  AND pg_catalog.pg_get_serial_sequence($1, a.attname) IS NOT NULL ORDER BY a.attnum
                """, [live]).rows.map { ($0[0] ?? "", $0[1] ?? "") }
            result.append(table)
        }
        return result
    }

    /// The tables parents first: a table comes after every restored table its foreign keys reference
    /// (a reference to itself aside); a cycle keeps the archive's order for the tables in it.
    static func ordered(_ tables: [Table], into: String) -> (tables: [Table], cycle: [String]) {
        let restored = Dictionary(uniqueKeysWithValues: tables.map { ($0.restoredName, $0) })
        var done: Set<String> = []
        var result: [Table] = []
        var remaining = tables
        while !remaining.isEmpty {
            guard let next = remaining.firstIndex(where: { table in
                table.foreignKeys.allSatisfy { key in key.parent == table.restoredName || restored[key.parent] == nil || done.contains(key.parent) }
            }) else {
                return (result + remaining, remaining.map(\.liveName))
            }
            let table = remaining.remove(at: next)
            done.insert(table.restoredName)
            result.append(table)
        }
        return (result, [])
    }

    func text() throws -> String {
        let read = try read()
        let restoredByName = Dictionary(uniqueKeysWithValues: read.map { ($0.restoredName, $0) })
        let (tables, cycle) = Self.ordered(read, into: into)
        let present = tables.filter(\.exists)
        var lines: [String] = [
            "-- Copy back the rows of schema \(try quoted(into)) (restored from \(archive), taken \(createdAt)) that the live tables lack.",
            "-- Parents before children, by foreign key. ON CONFLICT DO NOTHING: a row whose primary key or unique value",
            "-- the live table holds already stays as the live table has it (it is not updated).",
            "-- Review it, then run it: psql DATABASE_URL -v ON_ERROR_STOP=1 -f FILE (one transaction: all or nothing).",
            "BEGIN;",
        ]
        let triggered = present.filter { !$0.triggers.isEmpty }
        if !triggered.isEmpty {
            lines += ["",
                      "-- The live tables' triggers are disabled until COMMIT, so the copied rows keep the archive's values and no",
                      "-- trigger treats them as new (this locks those tables until COMMIT). Delete these lines to let them fire."]
            for table in triggered {
                lines += table.triggers.map { "ALTER TABLE \(table.liveName) DISABLE TRIGGER \($0);" }
            }
        }
        if !cycle.isEmpty {
            lines += ["", "-- The foreign keys of \(cycle.joined(separator: ", ")) form a cycle: they are in the archive's order, and an INSERT",
                      "-- may fail on a row whose parent comes later (SET CONSTRAINTS ALL DEFERRED helps where they are DEFERRABLE)."]
        }
        for table in tables {
            lines.append("")
            guard table.exists else {
                lines.append("-- \(table.liveName) does not exist in this database: its rows stay in \(table.restoredName).")
                continue
            }
            if !table.onlyRestored.isEmpty {
                lines.append("-- \(table.liveName) has no column \(table.onlyRestored.joined(separator: ", ")) (the archive's table has): not copied.")
            }
            if !table.onlyLive.isEmpty {
                lines.append("-- \(table.liveName)'s \(table.onlyLive.joined(separator: ", ")) is not in the archive's table: copied rows get its default.")
            }
            let columns = table.columns.joined(separator: ", ")
            let overriding = table.identity ? "\n    OVERRIDING SYSTEM VALUE" : ""
            if table.unique {
                lines.append("INSERT INTO \(table.liveName) (\(columns))\(overriding)\n    SELECT \(columns) FROM ONLY \(table.restoredName)\n    ON CONFLICT DO NOTHING;")
            } else {
                lines.append("-- \(table.liveName) has no primary key or unique index, so no conflict would stop a duplicate: the rows it lacks, as a multiset.")
                lines.append("INSERT INTO \(table.liveName) (\(columns))\(overriding)\n    SELECT \(columns) FROM ONLY \(table.restoredName)\n    EXCEPT ALL SELECT \(columns) FROM ONLY \(table.liveName);")
            }
        }
        // ON DELETE SET NULL / SET DEFAULT between restored tables: the archived value back.
        var repairs: [String] = []
        var notRepaired: [String] = []
        for table in present {
            for key in table.foreignKeys where key.action == "n" || key.action == "d" {
                guard let parent = restoredByName[key.parent], parent.exists else { continue }
                guard key.action == "n" else {
                    notRepaired.append("-- \(table.liveName) (\(key.columns.joined(separator: ", "))) references \(parent.liveName) ON DELETE SET DEFAULT: a cleared value cannot be told from a default one, not repaired.")
                    continue
                }
                guard !table.primaryKey.isEmpty, key.columns.allSatisfy(table.columns.contains) else {
                    notRepaired.append("-- \(table.liveName) (\(key.columns.joined(separator: ", "))) references \(parent.liveName) ON DELETE SET NULL, and without a primary key its rows cannot be matched: not repaired.")
                    continue
                }
                let match = table.primaryKey.map { "live.\($0) = r.\($0)" }.joined(separator: " AND ")
                let wasCleared = key.columns.map { "live.\($0) IS NULL" }
                let hadValue = key.columns.map { "r.\($0) IS NOT NULL" }
                let parentMatch = zip(key.parentColumns, key.columns).map { "p.\($0.0) = r.\($0.1)" }.joined(separator: " AND ")
                // Without triggers the clearing changed the key's columns only; with them, it may have
                // changed more (an updated_at), so the archived row is put back whole.
                let whole = table.columns.filter { !table.primaryKey.contains($0) && !table.identityColumns.contains($0) }
                func update(_ columns: [String]) -> String {
                    "UPDATE ONLY \(table.liveName) AS live SET " + columns.map { "\($0) = r.\($0)" }.joined(separator: ", ")
                        + "\n    FROM ONLY \(table.restoredName) AS r\n    WHERE \(match) AND " + (wasCleared + hadValue).joined(separator: " AND ")
                        + "\n      AND EXISTS (SELECT FROM \(parent.liveName) AS p WHERE \(parentMatch));"
                }
                if table.triggers.isEmpty {
                    repairs.append("-- \(key.name): ON DELETE SET NULL")
                    repairs.append(update(key.columns))
                } else {
                    repairs.append("-- \(key.name): ON DELETE SET NULL. The clearing was an UPDATE, and \(table.liveName)'s triggers (\(table.triggers.joined(separator: ", ")))")
                    repairs.append("-- fired on it and may have changed more than the key, so these rows are put back as the archive has them (any")
                    repairs.append("-- change made to them since the backup goes too). To put back only the key's columns, use instead:")
                    repairs.append(update(key.columns).split(separator: "\n").map { "--   " + $0 }.joined(separator: "\n"))
                    repairs.append(update(whole))
                }
            }
        }
        // Such keys of live tables that were not restored: their cleared values are not in the restore.
        let restoredLive = Set(present.map(\.liveName))
        for table in present {
            let rows = try connection.query("""
                SELECT c.conrelid::regclass::text, c.conname, c.confdeltype::text, \(Self.keyColumns("c.conkey", relation: "c.conrelid"))
                FROM pg_catalog.pg_constraint c
                WHERE c.contype = 'f' AND c.confrelid = $1::regclass AND c.confdeltype IN ('n', 'd', 'c') ORDER BY 1, 2
                """, [SQL.qualified(table.live.schema, table.live.name)]).rows
            for row in rows {
                guard let child = row[0], !restoredLive.contains(child) else { continue }
                let columns = (row[3] ?? "").components(separatedBy: Self.separator).joined(separator: ", ")
                if row[2] == "c" {
                    notRepaired.append("-- \(child) (\(columns)) references \(table.liveName) ON DELETE CASCADE and was not restored: the rows a delete took with it stay deleted (restore \(child) too to bring them back).")
                } else {
                    notRepaired.append("-- \(child) (\(columns)) references \(table.liveName) ON DELETE \(row[2] == "n" ? "SET NULL" : "SET DEFAULT") and was not restored: where a delete cleared it, it stays cleared (restore \(child) too to repair it).")
                }
            }
        }
        if !repairs.isEmpty {
            lines += ["", "-- ON DELETE SET NULL: deleting a parent cleared its children's column instead of deleting them, so the",
                      "-- INSERT above skipped those rows (their key is there). Where the live row's column is still NULL, the",
                      "-- restored row has a value and that parent exists again, the archived value is put back."]
            lines += repairs
        }
        if !notRepaired.isEmpty {
            lines += ["", "-- Not repaired here:"]
            lines += notRepaired
        }
        let sequences = present.flatMap { table in table.sequences.map { (table, $0) } }
        if !sequences.isEmpty {
            lines += ["", "-- The live sequences, moved past the ids copied back (never moved backwards)."]
            for (table, sequence) in sequences {
                let literal = SQL.literal(sequence.sequence)
                lines.append("SELECT pg_catalog.setval(\(literal), m) FROM (SELECT max(\(sequence.column)) AS m FROM \(table.liveName)) AS copied\n    WHERE m > (SELECT last_value FROM \(sequence.sequence));")
            }
        }
        if !triggered.isEmpty {
            lines.append("")
            for table in triggered {
                lines += table.triggers.map { "ALTER TABLE \(table.liveName) ENABLE TRIGGER \($0);" }
            }
        }
        lines += ["", "COMMIT;"]
        return lines.joined(separator: "\n") + "\n"
    }
}
