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
/// value back where the live row's is still NULL and the parent exists again (only those columns:
/// whatever else changed in the row since stays); such foreign keys from
/// tables that were not restored are named in a comment as not repaired. The live tables' sequences
/// are moved past the ids copied back. The live tables' enabled triggers are disabled until COMMIT
/// (as `pg_restore --disable-triggers` does for data), so the rows keep their archived values.
///
/// Before any INSERT a check refuses the whole copy when a restored row's key is held in the live
/// table by a different row: a row the INSERT would skip as "already there" is then another row (one
/// that differs in another unique key, or in a foreign key both hold a value of), and the restored
/// rows that reference the skipped one would be given to it (ids reused after `TRUNCATE ... RESTART
/// IDENTITY`, a person who signed up again under the same email). The file starts with `\set
/// ON_ERROR_STOP on`, so psql stops at the first error and exits non-zero however it is run.
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
        /// The live table's unique keys on plain columns that are copied (no partial or expression
        /// index), the primary key first (`hasPrimaryKey`).
        var uniqueKeys: [[String]] = []
        var hasPrimaryKey = false
        /// The columns of the live table's foreign keys that are copied.
        var foreignKeyColumns: [[String]] = []
        /// Columns only the live table has that are NOT NULL with no default: copied rows need a value.
        var needValue: Set<String> = []
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
            let copied = Set(table.columns)
            for row in try connection.query("""
                SELECT i.indisprimary::text, \(Self.keyColumns("i.indkey::int2[]", relation: "i.indrelid")) FROM pg_catalog.pg_index i
                WHERE i.indrelid = $1::regclass AND i.indisunique AND i.indpred IS NULL AND i.indexprs IS NULL
                ORDER BY i.indisprimary DESC, i.indexrelid
                """, [live]).rows {
                let columns = (row[1] ?? "").components(separatedBy: Self.separator)
                guard !columns.isEmpty, columns.allSatisfy(copied.contains), !table.uniqueKeys.contains(columns) else { continue }
                if row[0] == "true" && table.uniqueKeys.isEmpty { table.hasPrimaryKey = true }
                table.uniqueKeys.append(columns)
            }
            table.foreignKeyColumns = try connection.query("""
                SELECT \(Self.keyColumns("c.conkey", relation: "c.conrelid")) FROM pg_catalog.pg_constraint c
                WHERE c.contype = 'f' AND c.conrelid = $1::regclass ORDER BY c.conname
                """, [live]).rows.map { ($0[0] ?? "").components(separatedBy: Self.separator) }.filter { $0.allSatisfy(copied.contains) }
            table.needValue = Set(try connection.query("""
                SELECT pg_catalog.quote_ident(a.attname) FROM pg_catalog.pg_attribute a
                WHERE a.attrelid = $1::regclass AND a.attnum > 0 AND NOT a.attisdropped AND a.attnotnull AND NOT a.atthasdef
                  AND a.attidentity = '' AND a.attgenerated = ''
                """, [live]).rows.compactMap { $0[0] }).intersection(table.onlyLive)
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

    /// The check that runs before any INSERT: a DO block that raises one error listing, per table,
    /// the restored rows whose key the live table holds for a different row (matched on one unique
    /// key, different in another, or in a foreign key's columns where both rows have a value), with
    /// their count and first keys. Nothing when no table has two such keys.
    func check(_ tables: [Table]) throws -> [String] {
        var checks: [String] = []
        for table in tables where !table.uniqueKeys.isEmpty {
            let shownKey = table.hasPrimaryKey ? table.uniqueKeys[0] : nil
            func row(_ alias: String, _ columns: [String]) -> String { "ROW(" + columns.map { "\(alias).\($0)" }.joined(separator: ", ") + ")" }
            func list(_ columns: [String]) -> String { columns.joined(separator: ", ") }
            for key in table.uniqueKeys {
                let others = table.uniqueKeys.filter { $0 != key }.map { ($0, false) } + table.foreignKeyColumns.filter { $0 != key }.map { ($0, true) }
                let shown = shownKey ?? key
                let keyText = shown.count == 1 ? "r.\(shown[0])::text" : "\(row("r", shown))::text"
                for (other, isForeign) in others {
                    let bothSet = isForeign ? " AND \(row("l", other)) IS NOT NULL AND \(row("r", other)) IS NOT NULL" : ""
                    let what = " whose \(list(key)) the live table holds for a row with another \(list(other)): \(list(shown)) "
                    let match = "\(row("l", key)) = \(row("r", key)) AND \(row("l", other)) IS DISTINCT FROM \(row("r", other))\(bothSet)"
                    let leaveOut = "\n    to leave them out of the copy: DELETE FROM ONLY \(table.restoredName) AS r USING ONLY \(table.liveName) AS l WHERE \(match);"
                    checks.append("""
                            SELECT count(*), pg_catalog.array_to_string((pg_catalog.array_agg(\(keyText) ORDER BY \(shown.map { "r.\($0)" }.joined(separator: ", "))))[1:5], ', ')
                              INTO n, first_keys FROM ONLY \(table.restoredName) AS r JOIN ONLY \(table.liveName) AS l ON \(row("l", key)) = \(row("r", key))
                              WHERE \(row("l", other)) IS DISTINCT FROM \(row("r", other))\(bothSet);
                            IF n > 0 THEN
                                problems := problems || E'\\n  ' || \(SQL.literal(table.liveName + ": ")) || n || CASE WHEN n = 1 THEN ' restored row' ELSE ' restored rows' END
                                    || \(SQL.literal(what)) || first_keys || CASE WHEN n > 5 THEN ', ...' ELSE '' END || \(SQL.literal(leaveOut));
                            END IF;
                        """)
                }
            }
        }
        guard !checks.isEmpty else { return [] }
        let side = try quoted(into)
        let hint = "A key such as an id went to another row since the backup (ids reused after TRUNCATE ... RESTART IDENTITY, "
            + "a person who signed up again with the same email), or the row changed that key since. Compare them with the live rows. "
            + "To copy back everything else, run the DELETE given for them (it changes only schema \(side); the restored rows that "
            + "reference them go too where their foreign key cascades) and this file again; then put back by hand what they held "
            + "that the live rows need."
        var lines = ["",
                     "-- The check: a row the INSERTs below would skip because the live table holds its key must be that same row;",
                     "-- if the key now belongs to another row (another unique value, another parent), the restored rows that",
                     "-- reference it would be given to that row. Then nothing is copied: the error lists the rows and what to do.",
                     "DO $rgw_check$",
                     "DECLARE",
                     "    n bigint;",
                     "    first_keys text;",
                     "    problems text := '';",
                     "BEGIN"]
        lines += checks
        lines += ["    IF problems <> '' THEN",
                  "        RAISE EXCEPTION USING MESSAGE = 'copy-back refused, nothing was changed: keys the live tables hold belong to other rows than the archived ones, and the restored rows that reference them would be given to those rows:' || problems,",
                  "            HINT = \(SQL.literal(hint));",
                  "    END IF;",
                  "END",
                  "$rgw_check$;"]
        return lines
    }

    func text() throws -> String {
        let read = try read()
        let restoredByName = Dictionary(uniqueKeysWithValues: read.map { ($0.restoredName, $0) })
        let (tables, cycle) = Self.ordered(read, into: into)
        let present = tables.filter(\.exists)
        let side = try quoted(into)
        var lines: [String] = [
            "\\set ON_ERROR_STOP on",
            "-- Copy back the rows of schema \(side) (restored from \(archive), taken \(createdAt)) that the live tables lack.",
            "-- Parents before children, by foreign key. ON CONFLICT DO NOTHING: a row whose primary key or unique value",
            "-- the live table holds already is not copied, and the live row is left as it is; the only live rows changed are",
            "-- those whose foreign key an ON DELETE SET NULL cleared (below), and only in the cleared columns.",
            "-- First a check refuses the whole copy, changing nothing, when a key the live table holds belongs to a different",
            "-- row than the archived one (it differs in another unique key or in a parent): rows referencing it would go to it.",
            "-- Review it, then run it: psql DATABASE_URL -f FILE (one transaction: all or nothing; the first line makes psql",
            "-- stop at the first error and exit non-zero).",
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
        lines += try check(present)
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
            let defaulted = table.onlyLive.filter { !table.needValue.contains($0) }
            let needValue = table.onlyLive.filter(table.needValue.contains)
            if !defaulted.isEmpty {
                let (these, get) = defaulted.count == 1 ? ("column \(defaulted[0]) is", "its default") : ("columns \(defaulted.joined(separator: ", ")) are", "their defaults")
                lines.append("-- \(table.liveName)'s \(these) not in the archive's table: copied rows get \(get) (NULL where there is none).")
            }
            if !needValue.isEmpty {
                lines.append("-- \(table.liveName)'s \(needValue.joined(separator: ", ")) \(needValue.count == 1 ? "is" : "are") NOT NULL without a default and not in the archive's table: the")
                lines.append("-- NULL placeholder below makes this INSERT fail (null value ... violates not-null constraint) until you replace it with")
                lines.append("-- the value the copied rows should have (e.g. 1 AS tenant_id, or a column of the restored table).")
            }
            let columns = (table.columns + needValue).joined(separator: ", ")
            let selected = (table.columns + needValue.map { "NULL AS \($0)" }).joined(separator: ", ")
            let overriding = table.identity ? "\n    OVERRIDING SYSTEM VALUE" : ""
            if table.unique {
                lines.append("INSERT INTO \(table.liveName) (\(columns))\(overriding)\n    SELECT \(selected) FROM ONLY \(table.restoredName)\n    ON CONFLICT DO NOTHING;")
            } else {
                lines.append("-- \(table.liveName) has no primary key or unique index, so no conflict would stop a duplicate: the rows it lacks, as a multiset.")
                lines.append("INSERT INTO \(table.liveName) (\(columns))\(overriding)\n    SELECT \(selected) FROM ONLY \(table.restoredName)\n    EXCEPT ALL SELECT \(columns) FROM ONLY \(table.liveName);")
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
                // Only the cleared columns: whatever else changed in the row since the backup (a status,
                // a note, a trigger's updated_at on the clearing) is the live table's and stays.
                let whole = table.columns.filter { !table.primaryKey.contains($0) && !table.identityColumns.contains($0) }
                func update(_ columns: [String]) -> String {
                    "UPDATE ONLY \(table.liveName) AS live SET " + columns.map { "\($0) = r.\($0)" }.joined(separator: ", ")
                        + "\n    FROM ONLY \(table.restoredName) AS r\n    WHERE \(match) AND " + (wasCleared + hadValue).joined(separator: " AND ")
                        + "\n      AND EXISTS (SELECT FROM \(parent.liveName) AS p WHERE \(parentMatch));"
                }
                repairs.append("-- \(key.name): ON DELETE SET NULL")
                if !table.triggers.isEmpty {
                    repairs.append("-- The clearing was an UPDATE, and \(table.liveName)'s triggers (\(table.triggers.joined(separator: ", "))) fired on it: what they")
                    repairs.append("-- changed besides the key (an updated_at) stays. To put these rows back whole as the archive has them instead")
                    repairs.append("-- (losing every change made to them since the backup), use:")
                    repairs.append(update(whole).split(separator: "\n").map { "--   " + $0 }.joined(separator: "\n"))
                }
                repairs.append(update(key.columns))
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
        lines += ["", "COMMIT;", "",
                  "-- Once the rows are back, drop the side schema: it holds copies of the restored rows (secrets included), and",
                  "-- every backup includes it until it is dropped:",
                  "--   DROP SCHEMA \(side) CASCADE;"]
        return lines.joined(separator: "\n") + "\n"
    }
}
