import Foundation
import Logging
import RGWPostgres

/// One pass/fail line of a drill.
public struct DrillCheck: Codable, Sendable {
    public var name: String
    public var ok: Bool
    public var detail: String
    public var seconds: Double
    /// False when the check could not be made (`detail` says why): it does not fail the drill.
    public var checked: Bool

    public init(name: String, ok: Bool, detail: String, seconds: Double = 0, checked: Bool = true) {
        self.name = name
        self.ok = ok
        self.detail = detail
        self.seconds = seconds
        self.checked = checked
    }

    enum CodingKeys: String, CodingKey { case name, ok, detail, seconds, checked }

    public init(from decoder: Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        name = try container.decode(String.self, forKey: .name)
        // null: not checked (written so by this version: a filter on ok == false must not read it as a pass).
        ok = try container.decodeIfPresent(Bool.self, forKey: .ok) ?? true
        detail = try container.decode(String.self, forKey: .detail)
        seconds = try container.decodeIfPresent(Double.self, forKey: .seconds) ?? 0
        checked = try container.decodeIfPresent(Bool.self, forKey: .checked) ?? true
    }

    /// `ok` is null for a check not made: it neither passed nor failed.
    public func encode(to encoder: Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(name, forKey: .name)
        if checked { try container.encode(ok, forKey: .ok) } else { try container.encodeNil(forKey: .ok) }
        try container.encode(detail, forKey: .detail)
        try container.encode(seconds, forKey: .seconds)
        try container.encode(checked, forKey: .checked)
    }

    /// PASS, FAIL or NOT CHECKED.
    public var verdict: String { !checked ? "NOT CHECKED" : (ok ? "PASS" : "FAIL") }
}

/// The checks a drill runs on a restored database (docs/design.md section 5), each read-only except the
/// migrations check, which applies the pending migrations.
enum DrillChecks {
    /// What the restore has that the source had too (reported, not failed) and what only the
    /// restore has (failed); with no recorded state (an older archive) everything found fails.
    static func judge(_ found: [String], recorded: [String]?) -> (failed: [String], inherited: [String]) {
        guard let recorded else { return (found, []) }
        let source = Set(recorded)
        return (found.filter { !source.contains($0) }, found.filter { source.contains($0) })
    }

    static func inheritedNote(_ inherited: [String], what: String) -> String {
        inherited.isEmpty ? "" : "; as in the source at backup time (reported, not failed): \(inherited.count) \(what) (\(inherited.prefix(5).joined(separator: ", "))\(inherited.count > 5 ? ", ..." : ""))"
    }

    /// Every table with rows has planner statistics, imported from the archive (PostgreSQL 18) or
    /// made by the restore's ANALYZE: `pg_class.reltuples` at least 0 and a `pg_stats` row for
    /// each of its columns (but those with a statistics target of 0, which ANALYZE skips). The
    /// restore's `outcome` says how many were imported and how many analyzed, and why.
    static func statistics(_ connection: Connection, manifest: ArchiveManifest, outcome: PlannerStatisticsOutcome? = nil) throws -> DrillCheck {
        let rows = try connection.query("""
            SELECT n.nspname, c.relname, c.reltuples >= 0,
                   (SELECT pg_catalog.string_agg(a.attname, ', ' ORDER BY a.attnum) FROM pg_catalog.pg_attribute a
                    WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped AND coalesce(a.attstattarget::integer, -1) <> 0
                      AND NOT EXISTS (SELECT FROM pg_catalog.pg_stats s WHERE s.schemaname = n.nspname AND s.tablename = c.relname
                                                                          AND s.attname = a.attname))
            FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
            WHERE c.relkind IN ('r', 'm') AND \(CatalogSQL.userSchemaFilter)
            """).rows
        let found = Dictionary(rows.map { (SQL.qualified($0[0]!, $0[1]!), (counted: $0[2] == "t", missing: $0[3])) }, uniquingKeysWith: { a, _ in a })
        let withRows = manifest.tables.filter { $0.rows > 0 }
        var problems: [String] = []
        for table in withRows {
            let name = SQL.qualified(table.schema, table.name)
            guard let state = found[name] else { problems.append("\(name) is missing"); continue }
            if !state.counted { problems.append("\(name) has no row estimate (pg_class.reltuples is -1)") }
            if let missing = state.missing { problems.append("\(name) has no pg_stats for its columns \(missing.prefix(200))") }
        }
        return DrillCheck(name: "statistics", ok: problems.isEmpty,
                          detail: problems.isEmpty ? "all \(withRows.count) tables with rows have planner statistics (a row estimate and pg_stats for every column)"
                              + (outcome.map { "; the restore's: \($0.text)" } ?? "")
                              : problems.prefix(5).joined(separator: "; ") + (problems.count > 5 ? "; and \(problems.count - 5) more" : ""))
    }

    /// Every sequence owned by a column (serial, identity, OWNED BY) will hand out a value above
    /// the column's maximum, unless the source's was already behind.
    static func sequences(_ connection: Connection, recorded: SchemaState?) throws -> DrillCheck {
        let positions = try SchemaState.sequencePositions(connection)
        let details = Dictionary(positions.behind.map { ($0.name, $0.detail) }, uniquingKeysWith: { a, _ in a })
        let verdict = judge(positions.behind.map(\.name), recorded: recorded?.sequencesBehind)
        let note = inheritedNote(verdict.inherited, what: "behind their column")
        return DrillCheck(name: "sequences", ok: verdict.failed.isEmpty,
                          detail: verdict.failed.isEmpty ? "\(positions.owned) owned sequences are at or past their column's maximum\(note)"
                              : verdict.failed.prefix(5).compactMap { details[$0] }.joined(separator: "; ") + note)
    }

    /// No constraint NOT VALID and no index invalid or not ready, but what the source had; the
    /// counts leave out NOT NULL constraints, which PostgreSQL 18 lists in pg_constraint and older
    /// versions do not, so they compare across versions.
    static func constraintsAndIndexes(_ connection: Connection, recorded: SchemaState?) throws -> DrillCheck {
        let constraints = judge(try SchemaState.notValidConstraints(connection), recorded: recorded?.notValidConstraints)
        let indexes = judge(try SchemaState.invalidIndexes(connection), recorded: recorded?.invalidIndexes)
        let counts = try connection.query("""
            SELECT (SELECT count(*) FROM pg_catalog.pg_constraint c JOIN pg_catalog.pg_namespace n ON n.oid = c.connamespace WHERE c.contype <> 'n' AND \(CatalogSQL.userSchemaFilter))::text,
                   (SELECT count(*) FROM pg_catalog.pg_index x JOIN pg_catalog.pg_class i ON i.oid = x.indexrelid JOIN pg_catalog.pg_namespace n ON n.oid = i.relnamespace WHERE \(CatalogSQL.userSchemaFilter))::text
            """).rows[0]
        let problems = constraints.failed.map { "constraint \($0) is not valid" } + indexes.failed.map { "index \($0) is not valid" }
        let note = inheritedNote(constraints.inherited, what: "NOT VALID constraints")
        // pg_dump leaves invalid indexes out, so the source's never reach a restore: say so.
        let skipped = (recorded?.invalidIndexes ?? []).filter { !indexes.inherited.contains($0) }
        let skippedNote = skipped.isEmpty ? "" : "; the source's invalid indexes are not restored (pg_dump leaves them out): \(skipped.prefix(5).joined(separator: ", "))"
        return DrillCheck(name: "constraints and indexes", ok: problems.isEmpty,
                          detail: (problems.isEmpty ? "\(counts[0]!) constraints and \(counts[1]!) indexes are valid" : problems.prefix(8).joined(separator: "; ")) + note + skippedNote)
    }

    /// Every materialized view is populated exactly when it was in the source.
    static func materializedViews(_ connection: Connection, recorded: SchemaState?) throws -> DrillCheck? {
        let restored = try SchemaState.materializedViews(connection)
        guard !restored.isEmpty || !(recorded?.materializedViews.isEmpty ?? true) else { return nil }
        guard let recorded else {
            let empty = restored.filter { !$0.value }.keys.sorted()
            return DrillCheck(name: "materialized views", ok: true,
                              detail: "\(restored.count) materialized views, \(empty.count) not populated; the archive records no source state to compare with", checked: false)
        }
        var problems: [String] = []
        for (name, populated) in recorded.materializedViews.sorted(by: { $0.key < $1.key }) {
            guard let now = restored[name] else { problems.append("\(name) is missing"); continue }
            if now != populated { problems.append("\(name) is \(now ? "" : "not ")populated, the source's was \(populated ? "" : "not")") }
        }
        let populated = recorded.materializedViews.values.filter { $0 }.count
        return DrillCheck(name: "materialized views", ok: problems.isEmpty,
                          detail: problems.isEmpty ? "\(recorded.materializedViews.count) materialized views as in the source (\(populated) populated, refreshed in dependency order)"
                              : problems.prefix(5).joined(separator: "; "))
    }

    /// Result columns of `audit.verify_chain(bigint, bigint)` this tool knows: the bundled schema's
    /// `(chain_index, problem)` and the application's `(broken_at_index, event_id, error_message)`.
    static let verifyChainIndexColumns = ["chain_index", "broken_at_index"]
    static let verifyChainMessageColumns = ["problem", "error_message"]

    /// What the database has of `audit.verify_chain(bigint, bigint)`, read from the catalog.
    enum VerifyChainShape {
        case missing
        /// Result columns this tool does not know.
        case unknown
        case known(index: String, message: String)
    }

    static func verifyChainShape(_ connection: Connection) throws -> VerifyChainShape {
        guard try connection.query("SELECT to_regprocedure('audit.verify_chain(bigint,bigint)') IS NOT NULL").scalar == "t" else { return .missing }
        let columns = try connection.query("""
            SELECT a.name FROM pg_catalog.pg_proc p,
                   unnest(p.proargnames, p.proargmodes) WITH ORDINALITY AS a(name, mode, position)
            WHERE p.oid = to_regprocedure('audit.verify_chain(bigint,bigint)') AND a.mode IN ('t', 'o')
            ORDER BY a.position
            """).rows.compactMap { $0[0] }
        guard let index = verifyChainIndexColumns.first(where: columns.contains),
              let message = verifyChainMessageColumns.first(where: columns.contains) else { return .unknown }
        return .known(index: index, message: message)
    }

    /// The newest recorded prune: in the bundled schema's `audit.audit_prune_log`, or in the tool's own
    /// `rack_gateway_db.audit_prune_log` (databases whose schema has none, like the application's).
    /// Returns (where, new chain start, whether the first remaining event links to the last pruned hash).
    static func latestPrune(_ connection: Connection) throws -> (table: String, start: String, linked: Bool)? {
        var best: (table: String, start: String, linked: Bool)?
        for table in AuditPruneLog.tables {
            guard try connection.query("SELECT to_regclass($1) IS NOT NULL", [table]).scalar == "t" else { continue }
            guard let row = try connection.query("""
                SELECT p.new_chain_start::text, coalesce(p.last_pruned_event_hash = e.previous_hash, false)::text
                FROM \(table) p LEFT JOIN audit.audit_event e ON e.chain_index = p.new_chain_start
                ORDER BY p.new_chain_start DESC LIMIT 1
                """).rows.first, let start = row[0] else { continue }
            if best == nil || Int64(start) ?? 0 > Int64(best!.start) ?? 0 { best = (table, start, row[1] == "true") }
        }
        return best
    }

    /// The audit chain: contiguous chain_index from its first remaining event, a genesis event
    /// without previous_hash, every other previous_hash equal to the prior event_hash, a start that
    /// only a recorded prune explains; and `audit.verify_chain` agrees when the database has one of a
    /// known shape (read from the catalog).
    static func auditChain(_ connection: Connection, settings: ConnectionSettings) throws -> DrillCheck {
        guard try connection.query("SELECT to_regclass('audit.audit_event') IS NOT NULL").scalar == "t" else {
            return DrillCheck(name: "audit chain", ok: true, detail: "no audit.audit_event table in this database")
        }
        let shape = try verifyChainShape(connection)
        let first = try connection.query("SELECT min(chain_index)::text FROM audit.audit_event").scalar
        // audit.verify_chain scans the chain too: on a second connection, at the same time.
        let verdict = ResultBox<[String?]?>()
        let group = DispatchGroup()
        if case .known(let indexColumn, let messageColumn) = shape, let first {
            spawnThread("verify_chain", group: group) {
                verdict.value = Result {
                    let other = try settings.open(.drill)
                    return try other.query("""
                        SELECT \(SQL.identifier(indexColumn))::text, \(SQL.identifier(messageColumn))::text
                        FROM audit.verify_chain($1::bigint, 9223372036854775807) LIMIT 1
                        """, [first]).rows.first
                }
            }
        }
        defer { group.wait() }
        let row = try connection.query("""
            SELECT count(*)::text, min(chain_index)::text, max(chain_index)::text,
                   min(chain_index) FILTER (WHERE prior_index IS NOT NULL AND chain_index <> prior_index + 1)::text,
                   min(prior_index) FILTER (WHERE prior_index IS NOT NULL AND chain_index <> prior_index + 1)::text,
                   min(chain_index) FILTER (WHERE prior_index IS NOT NULL AND previous_hash IS DISTINCT FROM prior_hash)::text,
                   coalesce(bool_or(chain_index = 0 AND previous_hash IS NOT NULL), false)
            FROM (SELECT chain_index, previous_hash,
                         lag(chain_index) OVER w AS prior_index, lag(event_hash) OVER w AS prior_hash
                  FROM audit.audit_event WINDOW w AS (ORDER BY chain_index)) chain
            """).rows[0]
        let count = Int(row[0]!) ?? 0
        guard count > 0, let first = row[1], let last = row[2] else {
            return DrillCheck(name: "audit chain", ok: true, detail: "the audit log is empty")
        }
        var problems: [String] = []
        if let gap = row[3] { problems.append("gap: chain_index \(gap) follows \(row[4] ?? "?")") }
        if row[6] == "t" { problems.append("the genesis event (chain_index 0) has a previous_hash") }
        if let broken = row[5] { problems.append("chain_index \(broken): previous_hash does not match the event_hash of the event before it") }
        var functionVerdict = ""
        switch shape {
        case .known:
            group.wait()
            if let bad = try verdict.value!.get() {
                problems.append("audit.verify_chain reports chain_index \(bad[0] ?? "?"): \(bad[1] ?? "")")
            } else {
                functionVerdict = "; audit.verify_chain agrees"
            }
        case .unknown:
            functionVerdict = "; audit.verify_chain has result columns this tool does not know, so only the drill's own linkage check was made"
        case .missing:
            functionVerdict = "; no audit.verify_chain function, linkage checked by the drill"
        }
        var start = "from the genesis event"
        if first != "0" {
            // Events before `first` are gone: only a recorded prune that ended right there explains it.
            let pruned = try latestPrune(connection)
            if let pruned, pruned.start == first {
                if pruned.linked {
                    start = "from chain_index \(first), where the recorded prune ended (linked to the last pruned event)"
                } else {
                    problems.append("chain_index \(first): previous_hash does not match the last pruned event's hash recorded in \(pruned.table)")
                }
            } else if let pruned {
                problems.append("the chain starts at chain_index \(first) but the last prune recorded in \(pruned.table) ended at \(pruned.start): events are missing")
            } else {
                problems.append("the chain starts at chain_index \(first) but no prune ending there is recorded (\(AuditPruneLog.tables.joined(separator: ", "))): events are missing")
            }
        }
        return DrillCheck(name: "audit chain", ok: problems.isEmpty,
                          detail: problems.isEmpty ? "\(count) events linked \(start) to \(last)\(functionVerdict)" : problems.joined(separator: "; "))
    }

    /// The restored database's own migrations apply cleanly: the application's migrate command when
    /// given, else the set when it is this database's (matching, or a newer release's database);
    /// a foreign set is never applied, and the check is then reported as not checked.
    static func migrations(_ connection: Connection, settings: ConnectionSettings, options: DrillOptions, logger: Logger) throws -> DrillCheck {
        if let command = options.migrateCommand {
            let outcome = command.run(target: settings, base: options.environment, logger: logger)
            return DrillCheck(name: "migrations", ok: outcome.ok,
                              detail: "the application's migrate command (--migrate-command) on \(settings.databaseName ?? "the scratch database") \(outcome.summary)")
        }
        let migrator = Migrator(connection: connection, migrations: options.migrations, logger: logger)
        let status = try migrator.status()
        if let advice = status.advice, status.isForeign {
            return DrillCheck(name: "migrations", ok: true,
                              detail: "\(advice), so it was not applied; pass --migrations DIR (the application's migrations) or --migrate-command CMD (e.g. 'rack-gateway-api migrate')",
                              checked: false)
        }
        do {
            let outcome = try migrator.migrate()
            let ahead = status.migrationSet == "ahead" ? "; the database also has \(Plural.of(status.missingFiles.count, "newer version")) than this set (a newer release)" : ""
            return DrillCheck(name: "migrations", ok: true,
                              detail: (outcome.applied.isEmpty ? "up to date (\(options.migrations.migrations.count) migrations of \(options.migrations.described)); nothing pending"
                                  : "applied \(outcome.applied.count) pending: \(outcome.applied.joined(separator: ", "))") + ahead)
        } catch {
            return DrillCheck(name: "migrations", ok: false, detail: "a pending migration fails on the restored data: \(error)")
        }
    }
}
