import RGWPostgres

/// How long an index or constraint build is likely to take compared with the others, to start the
/// longest first: with builds handed out in that order, no long one starts last and runs alone
/// while the other connections idle. A build reads its whole table and sorts its keys, so the cost
/// is the table's size times how dear the keys are to compare. Strings under a locale collation
/// compare through strcoll: on the bench database (2.5 M audit events) an index on one such text
/// column took 4.3-5.1 s, one on a bigint or timestamp 1.1-1.5 s. An expression is evaluated per
/// row. Foreign keys have no keys here and weigh their table's size.
struct BuildCostModel {
    var bytes: [String: Int] = [:]
    /// Per table, the columns whose collation is a locale's (not C or POSIX).
    var localeColumns: [String: Set<String>] = [:]

    static func key(_ schema: String, _ name: String) -> String { schema + "\u{0}" + name }

    init(bytes: [String: Int], localeColumns: [String: Set<String>]) {
        self.bytes = bytes
        self.localeColumns = localeColumns
    }

    init(_ connection: Connection, tables: [ArchiveManifest.Table]) throws {
        for table in tables { bytes[Self.key(table.schema, table.name)] = table.bytes }
        let rows = try connection.query("""
            SELECT n.nspname, c.relname, a.attname
            FROM pg_catalog.pg_attribute a
            JOIN pg_catalog.pg_class c ON c.oid = a.attrelid
            JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
            WHERE a.attnum > 0 AND NOT a.attisdropped AND a.attcollation <> 0
              AND c.relkind IN ('r', 'p', 'm')
              AND \(CatalogSQL.userSchemaFilter)
              AND a.attcollation NOT IN ('pg_catalog."C"'::regcollation, 'pg_catalog."POSIX"'::regcollation)
              AND NOT (a.attcollation = 'pg_catalog."default"'::regcollation
                       AND (SELECT datcollate IN ('C', 'POSIX') FROM pg_catalog.pg_database WHERE datname = current_database()))
            """).rows
        for row in rows { localeColumns[Self.key(row[0]!, row[1]!), default: []].insert(row[2]!) }
    }

    func cost(of entry: DumpScript.Entry) -> Int {
        guard let table = entry.table else { return 0 }
        let key = Self.key(table.schema, table.name)
        let size = max(bytes[key] ?? 0, 1)
        var weight = 1
        for item in entry.keys ?? [] {
            switch item {
            case .column(let name): if localeColumns[key]?.contains(name) == true { weight += 2 }
            case .expression: weight += 1
            }
        }
        return size * weight
    }
}
