import RGWPostgres

/// The state of a database's schema objects that a faithful restore reproduces: which owned
/// sequences are behind their column's maximum, which constraints are NOT VALID, which indexes are
/// invalid, which materialized views are populated. Recorded in the manifest at backup time, so the
/// drill judges the restore against the source instead of against an ideal the source never met.
public struct SchemaState: Codable, Sendable, Equatable {
    /// Owned sequences (`schema.sequence`) that would hand out a value at or below their column's maximum.
    public var sequencesBehind: [String]
    /// `schema.constraint on schema.table`.
    public var notValidConstraints: [String]
    /// `schema.index`: invalid or not ready (pg_dump does not dump these).
    public var invalidIndexes: [String]
    /// `schema.view`, populated or not.
    public var materializedViews: [String: Bool]

    public init(sequencesBehind: [String] = [], notValidConstraints: [String] = [], invalidIndexes: [String] = [],
                materializedViews: [String: Bool] = [:]) {
        self.sequencesBehind = sequencesBehind
        self.notValidConstraints = notValidConstraints
        self.invalidIndexes = invalidIndexes
        self.materializedViews = materializedViews
    }

    public static func read(_ connection: Connection) throws -> SchemaState {
        SchemaState(sequencesBehind: try sequencePositions(connection).behind.map(\.name),
                    notValidConstraints: try notValidConstraints(connection),
                    invalidIndexes: try invalidIndexes(connection),
                    materializedViews: try materializedViews(connection))
    }

    /// Every sequence owned by a column (serial, identity, OWNED BY), and those behind: the next value
    /// would be at or below the column's maximum. One `max()` per owned column (an index scan where
    /// the column is a key).
    public static func sequencePositions(_ connection: Connection) throws -> (owned: Int, behind: [(name: String, detail: String)]) {
        let owned = try connection.query("""
            SELECT sn.nspname, s.relname, tn.nspname, t.relname, a.attname
            FROM pg_catalog.pg_depend d
            JOIN pg_catalog.pg_class s ON s.oid = d.objid AND s.relkind = 'S'
            JOIN pg_catalog.pg_namespace sn ON sn.oid = s.relnamespace
            JOIN pg_catalog.pg_class t ON t.oid = d.refobjid
            JOIN pg_catalog.pg_namespace tn ON tn.oid = t.relnamespace
            JOIN pg_catalog.pg_attribute a ON a.attrelid = t.oid AND a.attnum = d.refobjsubid
            WHERE d.classid = 'pg_catalog.pg_class'::regclass AND d.refclassid = 'pg_catalog.pg_class'::regclass
              AND d.deptype IN ('a', 'i') AND t.relkind IN ('r', 'p')
            ORDER BY 1, 2
            """).rows
        var behind: [(name: String, detail: String)] = []
        for row in owned {
            let sequence = SQL.qualified(row[0]!, row[1]!)
            let table = SQL.qualified(row[2]!, row[3]!)
            let result = try connection.query("""
                SELECT coalesce(m::text, 'none'), s.last_value::text, s.is_called,
                       m IS NULL OR m <= CASE WHEN s.is_called THEN s.last_value ELSE s.last_value - 1 END
                FROM (SELECT max(\(SQL.identifier(row[4]!))) AS m FROM \(table)) x, \(sequence) s
                """).rows[0]
            if result[3] != "t" {
                behind.append(("\(row[0]!).\(row[1]!)",
                               "\(row[0]!).\(row[1]!) is at \(result[1]!) (is_called \(result[2] == "t")) but \(row[2]!).\(row[3]!).\(row[4]!) reaches \(result[0]!)"))
            }
        }
        return (owned.count, behind)
    }

    public static func notValidConstraints(_ connection: Connection) throws -> [String] {
        try connection.query("""
            SELECT n.nspname || '.' || c.conname || coalesce(' on ' || tn.nspname || '.' || t.relname, '')
            FROM pg_catalog.pg_constraint c
            JOIN pg_catalog.pg_namespace n ON n.oid = c.connamespace
            LEFT JOIN pg_catalog.pg_class t ON t.oid = c.conrelid
            LEFT JOIN pg_catalog.pg_namespace tn ON tn.oid = t.relnamespace
            WHERE NOT c.convalidated AND \(CatalogSQL.userSchemaFilter) ORDER BY 1
            """).rows.map { $0[0]! }
    }

    public static func invalidIndexes(_ connection: Connection) throws -> [String] {
        try connection.query("""
            SELECT n.nspname || '.' || i.relname FROM pg_catalog.pg_index x
            JOIN pg_catalog.pg_class i ON i.oid = x.indexrelid JOIN pg_catalog.pg_namespace n ON n.oid = i.relnamespace
            WHERE (NOT x.indisvalid OR NOT x.indisready) AND \(CatalogSQL.userSchemaFilter) ORDER BY 1
            """).rows.map { $0[0]! }
    }

    public static func materializedViews(_ connection: Connection) throws -> [String: Bool] {
        var views: [String: Bool] = [:]
        for row in try connection.query("""
            SELECT n.nspname || '.' || c.relname, c.relispopulated FROM pg_catalog.pg_class c
            JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
            WHERE c.relkind = 'm' AND \(CatalogSQL.userSchemaFilter) AND \(CatalogSQL.notExtensionMember("c"))
            """).rows {
            views[row[0]!] = row[1] == "t"
        }
        return views
    }

    /// The populated materialized views as (schema, name), each after every materialized view it reads
    /// (directly or through views): the order their `REFRESH` must run in, as pg_restore runs them.
    public static func refreshOrder(_ connection: Connection) throws -> [(schema: String, name: String, owner: String)] {
        let views = try connection.query("""
            SELECT c.oid::text, n.nspname, c.relname, c.relkind::text, c.relispopulated, pg_catalog.pg_get_userbyid(c.relowner)
            FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
            WHERE c.relkind IN ('m', 'v') AND \(CatalogSQL.userSchemaFilter) AND \(CatalogSQL.notExtensionMember("c"))
            ORDER BY n.nspname, c.relname
            """).rows
        var reads: [String: Set<String>] = [:]
        for row in try connection.query("""
            SELECT DISTINCT r.ev_class::text, d.refobjid::text
            FROM pg_catalog.pg_rewrite r
            JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_rewrite'::regclass AND d.objid = r.oid
                AND d.refclassid = 'pg_catalog.pg_class'::regclass AND d.refobjid <> r.ev_class
            JOIN pg_catalog.pg_class c ON c.oid = d.refobjid AND c.relkind IN ('m', 'v')
            """).rows {
            reads[row[0]!, default: []].insert(row[1]!)
        }
        let byOID = Dictionary(uniqueKeysWithValues: views.map { ($0[0]!, $0) })
        var order: [(schema: String, name: String, owner: String)] = []
        var visited: Set<String> = []
        func visit(_ oid: String) {
            guard !visited.contains(oid), let row = byOID[oid] else { return }
            visited.insert(oid)
            for dependency in (reads[oid] ?? []).sorted() { visit(dependency) }
            if row[3] == "m" && row[4] == "t" { order.append((row[1]!, row[2]!, row[5]!)) }
        }
        for row in views { visit(row[0]!) }
        return order
    }

    /// pg_dump-style post-data entries that refresh the populated materialized views, in order.
    public static func refreshText(_ order: [(schema: String, name: String, owner: String)]) -> String {
        order.map { view in
            """
            --
            -- Name: \(view.name); Type: MATERIALIZED VIEW DATA; Schema: \(view.schema); Owner: \(view.owner)
            --

            REFRESH MATERIALIZED VIEW \(SQL.qualified(view.schema, view.name));


            """
        }.joined()
    }
}
