import Foundation
import Logging
import RGWPostgres

/// `drill --existing-url`'s checks of the database against what the archive holds (its manifest and
/// its post-data schema), of the audit log's append-only triggers, and of what was written while
/// the drill ran. A database restored elsewhere may be older than the archive (a snapshot taken
/// before it): it may lack rows added since, never a table, a column, a constraint or an index.
enum ExistingChecks {
    static let schemaCheck = "tables and schema"
    static let triggersCheck = "audit triggers"
    static let writesCheck = "read-only"

    /// A `schema.name` key.
    static func key(_ schema: String, _ name: String) -> String { "\(schema).\(name)" }

    /// The archive's post-data entries: its constraints and indexes by table (`schema.table` ->
    /// names), and its triggers by table (trigger entries: `CREATE [CONSTRAINT] TRIGGER name ... ON s.t`).
    struct PostData {
        var constraints: [String: Set<String>] = [:]
        var indexes: [String: Set<String>] = [:]
        var triggers: [String: Set<String>] = [:]

        init(_ script: DumpScript) {
            for entry in script.entries {
                guard let text = entry.statements.first?.text else { continue }
                switch entry.type {
                case "CONSTRAINT", "FK CONSTRAINT":
                    guard let table = entry.table, let add = text.range(of: " ADD CONSTRAINT ") else { continue }
                    if let name = DumpScript.identifierParts(text[add.upperBound...]).first {
                        constraints[key(table.schema, table.name), default: []].insert(name)
                    }
                case "INDEX":
                    guard let table = entry.table, let index = text.range(of: "INDEX ") else { continue }
                    if let name = DumpScript.identifierParts(text[index.upperBound...]).first {
                        indexes[key(table.schema, table.name), default: []].insert(name)
                    }
                case "TRIGGER":
                    guard let start = text.range(of: "TRIGGER "), let on = text.range(of: " ON ", range: start.upperBound..<text.endIndex) else { continue }
                    let name = DumpScript.identifierParts(text[start.upperBound...]).first
                    var rest = text[on.upperBound...]
                    if rest.hasPrefix("ONLY ") { rest = rest.dropFirst(5) }
                    let table = DumpScript.identifierParts(rest)
                    if let name, table.count >= 2 { triggers[key(table[0], table[1]), default: []].insert(name) }
                default:
                    continue
                }
            }
        }
    }

    /// The archive's post-data, parsed (its member read and checked as a restore reads it).
    static func postData(_ reader: ArchiveReader, settings: ConnectionSettings, logger: Logger) throws -> PostData {
        PostData(try section(.postData, of: reader, settings: settings, logger: logger))
    }

    /// A schema section of the archive (pre-data or post-data), parsed; empty when the archive has none.
    static func section(_ kind: ArchiveManifest.MemberKind, of reader: ArchiveReader, settings: ConnectionSettings, logger: Logger) throws -> DumpScript {
        guard let member = reader.manifest.members.first(where: { $0.kind == kind }) else { return try DumpScript("", section: kind.rawValue) }
        let loader = ArchiveLoader(reader: reader, settings: settings, jobs: 1, maintenanceWorkMem: nil, logger: logger, progress: RestoreProgress())
        var compressed: [UInt8] = []
        var text: [UInt8] = []
        try loader.decompress(member, compressed: &compressed, into: &text)
        return try DumpScript(String(decoding: text, as: UTF8.self), section: kind.rawValue)
    }

    /// The bodies of the archive's functions (pre-data `FUNCTION` entries) by `schema.name(arguments)`
    /// as the entry names it: the dollar-quoted text after `AS`, what `pg_proc.prosrc` holds. A
    /// function without one (C, `BEGIN ATOMIC`) is left out.
    static func functionBodies(_ script: DumpScript) -> [String: String] {
        var bodies: [String: String] = [:]
        for entry in script.entries where entry.type == "FUNCTION" {
            guard let schema = entry.schema, let text = entry.statements.first?.text,
                  let body = dollarQuotedBody(text) else { continue }
            bodies["\(schema).\(entry.name)"] = body
        }
        return bodies
    }

    /// The dollar-quoted body of pg_dump's `CREATE FUNCTION ... AS $tag$body$tag$`: pg_dump puts
    /// `AS` on a line of its own after the function's header, and writes `prosrc` as it is.
    static func dollarQuotedBody(_ text: String) -> String? {
        guard let expression = try? NSRegularExpression(pattern: "\\n\\s+AS (\\$[A-Za-z0-9_]*\\$)"),
              let match = expression.firstMatch(in: text, range: NSRange(text.startIndex..., in: text)),
              let tagRange = Range(match.range(at: 1), in: text), let start = Range(match.range, in: text)?.upperBound else { return nil }
        let tag = text[tagRange]
        guard let end = text.range(of: tag, range: start..<text.endIndex) else { return nil }
        return String(text[start..<end.lowerBound])
    }

    /// Every table of the archive is in the database with its columns; a table the archive had rows
    /// in is not empty, nor fell by more than the backup's shrink rule (`ShrinkCheck`, its default
    /// `--max-shrink`: an older snapshot has somewhat fewer rows, not half); every constraint and
    /// index of the archive's post-data is on its table. One `count(*)` per table (a sequential
    /// scan of each, as `diff` makes); UNLOGGED tables' rows are not judged.
    static func schema(_ connection: Connection, manifest: ArchiveManifest, postData: PostData) throws -> DrillCheck {
        var columns: [String: Set<String>] = [:]
        var unlogged: Set<String> = []
        for row in try connection.query("""
            SELECT n.nspname, c.relname, a.attname, c.relpersistence = 'u' FROM pg_catalog.pg_class c
            JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
            JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
            WHERE c.relkind IN ('r', 'p')
            """).rows {
            columns[key(row[0]!, row[1]!), default: []].insert(row[2]!)
            if row[3] == "t" { unlogged.insert(key(row[0]!, row[1]!)) }
        }
        var live: (constraints: [String: Set<String>], indexes: [String: Set<String>]) = ([:], [:])
        for row in try connection.query("""
            SELECT n.nspname, c.relname, con.conname FROM pg_catalog.pg_constraint con
            JOIN pg_catalog.pg_class c ON c.oid = con.conrelid JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
            """).rows {
            live.constraints[key(row[0]!, row[1]!), default: []].insert(row[2]!)
        }
        for row in try connection.query("""
            SELECT n.nspname, t.relname, i.relname FROM pg_catalog.pg_index x
            JOIN pg_catalog.pg_class i ON i.oid = x.indexrelid JOIN pg_catalog.pg_class t ON t.oid = x.indrelid
            JOIN pg_catalog.pg_namespace n ON n.oid = t.relnamespace
            """).rows {
            live.indexes[key(row[0]!, row[1]!), default: []].insert(row[2]!)
        }
        let shrink = ShrinkCheck(maxShrink: ShrinkCheck.defaultMaxShrink)
        // What is missing first (tables, columns, constraints, indexes), then rows.
        var problems: [String] = []
        var rowProblems: [String] = []
        var rows = 0
        for table in manifest.tables {
            guard let have = columns[table.qualifiedName] else {
                problems.append("table \(table.qualifiedName) is missing (the archive has it, \(Plural.of(table.rows, "row")))")
                continue
            }
            let lacking = table.columns.filter { !have.contains($0) }
            if !lacking.isEmpty { problems.append("\(table.qualifiedName) lacks \(Plural.of(lacking.count, "column")) the archive has: \(lacking.joined(separator: ", "))") }
            // An extension's configuration table holds what CREATE EXTENSION made too: not compared.
            // An UNLOGGED table is empty after a snapshot's restore or on a replica (and cannot be
            // read on a standby): its rows are not judged.
            guard table.filter == nil, table.rows > 0, !unlogged.contains(table.qualifiedName) else { continue }
            let count = Int(try connection.query("SELECT count(*)::text FROM ONLY \(SQL.qualified(table.schema, table.name))").scalar ?? "0") ?? 0
            rows += count
            if count == 0 {
                rowProblems.append("\(table.qualifiedName) is empty (the archive has \(Plural.of(table.rows, "row")))")
            } else if shrink.fell(from: table.rows, to: count) {
                rowProblems.append("\(table.qualifiedName) has \(count) rows, the archive \(table.rows) (\(ShrinkCheck.percent(count, table.rows)), more than --max-shrink's default \(Int(shrink.maxShrink * 100))%)")
            }
        }
        var missing: [String] = []
        for (table, names) in postData.constraints.sorted(by: { $0.key < $1.key }) where columns[table] != nil {
            missing += names.subtracting(live.constraints[table] ?? []).sorted().map { "constraint \($0) on \(table)" }
        }
        for (table, names) in postData.indexes.sorted(by: { $0.key < $1.key }) where columns[table] != nil {
            missing += names.subtracting(live.indexes[table] ?? []).sorted().map { "index \($0) on \(table)" }
        }
        if !missing.isEmpty { problems.append("\(Plural.of(missing.count, "constraint or index", plural: "constraints or indexes")) of the archive's schema missing: " + missing.prefix(10).joined(separator: ", ") + (missing.count > 10 ? ", ..." : "")) }
        problems += rowProblems
        let constraints = postData.constraints.values.reduce(0) { $0 + $1.count }, indexes = postData.indexes.values.reduce(0) { $0 + $1.count }
        return DrillCheck(name: schemaCheck, ok: problems.isEmpty,
                          detail: problems.isEmpty
                              ? "the archive's \(Plural.of(manifest.tables.count, "table")) are here with their columns (\(Plural.of(rows, "row")); none empty or fell by more than \(Int(shrink.maxShrink * 100))% of the archive's), and its \(Plural.of(constraints, "constraint")) and \(Plural.of(indexes, "index", plural: "indexes"))"
                              : problems.prefix(12).joined(separator: "; ") + (problems.count > 12 ? "; ..." : ""))
    }

    /// The audit log's append-only protection: the triggers the archive's schema puts on it (without
    /// an archive: an enabled trigger firing on UPDATE and one on DELETE, whatever their names, as
    /// the bundled schema's and production's are named differently) exist and are enabled, and can
    /// fire: not silenced by `session_replication_role = replica` set for the database, a role or the
    /// server (`replicaRoleSettings`), nor ENABLE REPLICA (silent in ordinary sessions).
    ///
    /// With the archive's function bodies (`functions`, `functionBodies`), each archived trigger's
    /// function must have the archive's body (`prosrc`): one replaced by a function that lets rows
    /// through is named. Without an archive that part is not made, and the detail says so.
    static func auditTriggers(_ connection: Connection, table: (schema: String, name: String), archived: Set<String>?, functions: [String: String]? = nil) throws -> DrillCheck {
        let rows = try connection.query("""
            SELECT t.tgname, t.tgenabled::text, (t.tgtype & 16 <> 0)::text, (t.tgtype & 8 <> 0)::text,
                   n.nspname || '.' || p.proname || '(' || pg_catalog.pg_get_function_identity_arguments(p.oid) || ')', p.prosrc
            FROM pg_catalog.pg_trigger t JOIN pg_catalog.pg_proc p ON p.oid = t.tgfoid JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
            WHERE t.tgrelid = to_regclass($1) AND NOT t.tgisinternal ORDER BY 1
            """, [SQL.qualified(table.schema, table.name)]).rows
        let name = key(table.schema, table.name)
        let enabled = rows.filter { $0[1] != "D" }
        let disabled = rows.filter { $0[1] == "D" }.map { $0[0]! }
        var problems: [String] = []
        // Enabled is not firing: an ENABLE (origin) trigger is silent in a session whose
        // session_replication_role is replica, an ENABLE REPLICA one in every other session.
        // The archive's triggers; without them, those that fire on UPDATE or DELETE.
        let judged = enabled.filter { archived?.isEmpty == false ? archived!.contains($0[0]!) : ($0[2] == "true" || $0[3] == "true") }
        let origin = judged.filter { $0[1] == "O" }.map { $0[0]! }
        let replica = try replicaRoleSettings(connection)
        if !origin.isEmpty && !replica.isEmpty {
            problems.append("session_replication_role = replica is set for \(replica.joined(separator: ", ")), so \(Plural.of(origin.count, "trigger")) on \(name) never \(origin.count == 1 ? "fires" : "fire") in those sessions: \(origin.joined(separator: ", "))")
        }
        let replicaOnly = judged.filter { $0[1] == "R" }.map { $0[0]! }
        if !replicaOnly.isEmpty {
            problems.append("\(Plural.of(replicaOnly.count, "trigger")) on \(name) \(replicaOnly.count == 1 ? "fires" : "fire") only when session_replication_role is replica (ENABLE REPLICA), not in ordinary sessions: \(replicaOnly.joined(separator: ", "))")
        }
        if let archived, !archived.isEmpty {
            let present = Set(rows.map { $0[0]! })
            let missing = archived.subtracting(present).sorted()
            if !missing.isEmpty { problems.append("\(name) lacks the \(Plural.of(missing.count, "trigger")) the archive has: \(missing.joined(separator: ", "))") }
            let off = disabled.filter(archived.contains)
            if !off.isEmpty { problems.append("\(Plural.of(off.count, "trigger")) on \(name) disabled: \(off.joined(separator: ", "))") }
            // Each function once, with the archived triggers that call it.
            var callers: [String: [String]] = [:]
            var compared = 0
            for row in rows where archived.contains(row[0]!) {
                guard let function = row[4], let body = functions?[function] else { continue }
                compared += callers[function] == nil ? 1 : 0
                if row[5] != body { callers[function, default: []].append(row[0]!) } else { callers[function] = callers[function] ?? [] }
            }
            for (function, triggers) in callers.sorted(by: { $0.key < $1.key }) where !triggers.isEmpty {
                problems.append("the function \(function) that \(triggers.joined(separator: ", ")) \(triggers.count == 1 ? "calls" : "call") is not the archive's: its body differs from the one in the archive's schema")
            }
            let bodies = functions == nil ? "" : "; \(Plural.of(compared, "trigger function")) as in the archive"
            return DrillCheck(name: triggersCheck, ok: problems.isEmpty,
                              detail: problems.isEmpty ? "the archive's \(Plural.of(archived.count, "trigger")) on \(name) are there and enabled (\(archived.sorted().joined(separator: ", ")))\(bodies)" : problems.joined(separator: "; "))
        }
        if !enabled.contains(where: { $0[2] == "true" }) { problems.append("no enabled trigger on \(name) fires on UPDATE") }
        if !enabled.contains(where: { $0[3] == "true" }) { problems.append("no enabled trigger on \(name) fires on DELETE") }
        if !disabled.isEmpty { problems.append("disabled: \(disabled.joined(separator: ", "))") }
        return DrillCheck(name: triggersCheck, ok: problems.isEmpty,
                          detail: problems.isEmpty ? "\(name) has enabled triggers on UPDATE and DELETE (\(enabled.map { $0[0]! }.joined(separator: ", "))); their functions' bodies not compared (no archive)"
                              : "the append-only protection is not there: " + problems.joined(separator: "; "))
    }

    /// Where `session_replication_role = replica` is set for sessions of this database (which
    /// silences ENABLE triggers): `ALTER DATABASE ... SET`, `ALTER ROLE ... [IN DATABASE ...] SET`
    /// (pg_db_role_setting), and the server's configuration; each named, empty when nowhere.
    static func replicaRoleSettings(_ connection: Connection) throws -> [String] {
        var found = try connection.query("""
            SELECT CASE WHEN s.setrole = 0 THEN 'database ' || quote_ident(current_database())
                        WHEN s.setdatabase = 0 THEN 'role ' || quote_ident(r.rolname)
                        ELSE 'role ' || quote_ident(r.rolname) || ' in database ' || quote_ident(current_database()) END
            FROM pg_catalog.pg_db_role_setting s LEFT JOIN pg_catalog.pg_roles r ON r.oid = s.setrole
            WHERE (s.setdatabase = 0 OR s.setdatabase = (SELECT oid FROM pg_catalog.pg_database WHERE datname = current_database()))
              AND 'session_replication_role=replica' = ANY (s.setconfig)
            ORDER BY 1
            """).rows.compactMap { $0[0] }
        if try connection.query("""
            SELECT 1 FROM pg_catalog.pg_settings WHERE name = 'session_replication_role'
               AND source IN ('configuration file', 'command line', 'environment variable') AND reset_val = 'replica'
            """).rows.count > 0 {
            found.append("the whole server (its configuration)")
        }
        return found
    }

    /// What the drill can see of writes: the server's next transaction id and the rows inserted,
    /// updated and deleted in this database's own tables (not the catalogs': autovacuum's ANALYZE
    /// updates those; DDL is seen by the catalog rows' xmin instead).
    struct WriteMark {
        var nextXid: Int64
        var tuples: Int64

        static func read(_ connection: Connection) throws -> WriteMark {
            _ = try connection.query("SELECT pg_catalog.pg_stat_clear_snapshot()")
            let row = try connection.query("""
                SELECT txid_snapshot_xmax(txid_current_snapshot())::text,
                       (SELECT coalesce(sum(n_tup_ins + n_tup_upd + n_tup_del), 0)::text FROM pg_catalog.pg_stat_user_tables)
                """).rows[0]
            return WriteMark(nextXid: Int64(row[0] ?? "0") ?? 0, tuples: Int64(row[1] ?? "0") ?? 0)
        }
    }

    /// Whether anything was written to the database between `before` and now: catalog rows written
    /// by a transaction whose id is not older than `before`'s next one (DDL; both ages taken in one
    /// statement, so other sessions' ids assigned meanwhile do not shift the bound), and this database's tuple counters; when the
    /// server assigned transaction ids meanwhile, the counters are read again for up to 3 s (a
    /// session that just ended reports its counts as it exits).
    static func writes(_ connection: Connection, since before: WriteMark, standby: Bool) throws -> DrillCheck {
        if standby {
            return DrillCheck(name: writesCheck, ok: true, detail: "a hot standby takes no writes (not measured)", checked: false)
        }
        var after = try WriteMark.read(connection)
        let assigned = after.nextXid - before.nextXid
        var waited = 0
        while assigned > 0 && after.tuples == before.tuples && waited < 12 {
            Thread.sleep(forTimeInterval: 0.25)
            waited += 1
            after = try WriteMark.read(connection)
        }
        let catalog = assigned > 0 ? try connection.query("""
            SELECT string_agg(DISTINCT n.nspname || '.' || c.relname, ', ') FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
            WHERE age(c.xmin) <= age($1::xid) AND c.xmin::text::bigint > 2
            """, [String(before.nextXid % (1 << 32))]).scalar ?? nil : nil
        var seen: [String] = []
        if let catalog { seen.append("relations created or altered: \(catalog)") }
        if after.tuples > before.tuples { seen.append("\(Plural.of(Int(after.tuples - before.tuples), "row")) inserted, updated or deleted (pg_stat_user_tables)") }
        guard seen.isEmpty else {
            return DrillCheck(name: writesCheck, ok: false, detail: "the database was written to while the drill ran (the migrate command or another session): " + seen.joined(separator: "; "))
        }
        return DrillCheck(name: writesCheck, ok: true,
                          detail: "nothing was written to the database (measured: no catalog change, no row inserted, updated or deleted"
                              + (assigned > 0 ? "; the server assigned \(Plural.of(Int(assigned), "transaction id")), none in this database)" : ", no transaction id assigned on the server)"))
    }
}
