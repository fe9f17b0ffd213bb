import RGWPostgres

/// What a backup dumps, read inside the snapshot transaction: tables with data (ordinary, leaf
/// partitions, unlogged), their columns, sequences, referenced roles and applied migrations.
struct BackupCatalog {
    struct Table {
        var oid: String
        var schema: String
        var name: String
        var columns: [String]
        /// Heap plus TOAST bytes on disk: the order (largest first) and the progress estimate.
        var estimatedBytes: Int
        /// An extension configuration table's dump condition (pg_extension.extcondition).
        var filter: String? = nil
        var qualified: String { SQL.qualified(schema, name) }
    }

    var tables: [Table]
    var sequences: [(schema: String, name: String)]
    var roles: [String]
    var migrations: [String]

    static func read(_ connection: Connection) throws -> BackupCatalog {
        let tableRows = try connection.query("""
            SELECT c.oid::text, n.nspname, c.relname, '0'
            FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
            WHERE c.relkind = 'r' AND c.relpersistence IN ('p', 'u') AND \(CatalogSQL.userSchemaFilter)
              AND \(CatalogSQL.notExtensionMember("c"))
            ORDER BY n.nspname, c.relname
            """).rows
        let columnRows = try connection.query("""
            SELECT a.attrelid::text, a.attname
            FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_class c ON c.oid = a.attrelid
            JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
            WHERE c.relkind = 'r' AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''
              AND \(CatalogSQL.userSchemaFilter)
            ORDER BY a.attrelid, a.attnum
            """).rows
        var columns: [String: [String]] = [:]
        for row in columnRows { columns[row[0]!, default: []].append(row[1]!) }
        var tables = tableRows.map { row in
            Table(oid: row[0]!, schema: row[1]!, name: row[2]!, columns: columns[row[0]!] ?? [],
                  estimatedBytes: Int(row[3] ?? "0") ?? 0)
        }
        // Extensions' configuration tables (pg_extension_config_dump): the rows their condition
        // selects, as pg_dump dumps them; their sequences' positions.
        let configuration = try connection.query("""
            SELECT c.oid::text, n.nspname, c.relname, c.relkind::text, coalesce(x.condition, '')
            FROM pg_catalog.pg_extension e
            CROSS JOIN LATERAL unnest(e.extconfig, e.extcondition) AS x(relation, condition)
            JOIN pg_catalog.pg_class c ON c.oid = x.relation
            JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
            WHERE e.extconfig IS NOT NULL
            ORDER BY n.nspname, c.relname
            """).rows
        // Their columns came with the column query above, which leaves no extension's table out.
        for row in configuration where row[3] == "r" {
            tables.append(Table(oid: row[0]!, schema: row[1]!, name: row[2]!, columns: columns[row[0]!] ?? [], estimatedBytes: 0, filter: row[4]!))
        }
        let sequences = try connection.query("""
            SELECT n.nspname, c.relname
            FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
            WHERE c.relkind = 'S' AND \(CatalogSQL.userSchemaFilter) AND \(CatalogSQL.notExtensionMember("c"))
            ORDER BY n.nspname, c.relname
            """).rows.map { (schema: $0[0]!, name: $0[1]!) }
            + configuration.filter { $0[3] == "S" }.map { (schema: $0[1]!, name: $0[2]!) }
        let roles = try connection.query("""
            WITH schemas AS (
                SELECT n.oid, n.nspowner, n.nspacl FROM pg_catalog.pg_namespace n WHERE \(CatalogSQL.userSchemaFilter)
            ), referenced(role) AS (
                SELECT nspowner FROM schemas
                UNION SELECT (pg_catalog.aclexplode(nspacl)).grantee FROM schemas WHERE nspacl IS NOT NULL
                UNION SELECT c.relowner FROM pg_catalog.pg_class c JOIN schemas s ON s.oid = c.relnamespace
                UNION SELECT (pg_catalog.aclexplode(c.relacl)).grantee FROM pg_catalog.pg_class c JOIN schemas s ON s.oid = c.relnamespace WHERE c.relacl IS NOT NULL
                UNION SELECT p.proowner FROM pg_catalog.pg_proc p JOIN schemas s ON s.oid = p.pronamespace
                UNION SELECT (pg_catalog.aclexplode(p.proacl)).grantee FROM pg_catalog.pg_proc p JOIN schemas s ON s.oid = p.pronamespace WHERE p.proacl IS NOT NULL
                UNION SELECT t.typowner FROM pg_catalog.pg_type t JOIN schemas s ON s.oid = t.typnamespace
                UNION SELECT pg_catalog.unnest(pol.polroles) FROM pg_catalog.pg_policy pol
                UNION SELECT d.defaclrole FROM pg_catalog.pg_default_acl d
                UNION SELECT (pg_catalog.aclexplode(d.defaclacl)).grantee FROM pg_catalog.pg_default_acl d
                UNION SELECT l.lomowner FROM pg_catalog.pg_largeobject_metadata l
                UNION SELECT (pg_catalog.aclexplode(l.lomacl)).grantee FROM pg_catalog.pg_largeobject_metadata l WHERE l.lomacl IS NOT NULL
            )
            SELECT DISTINCT r.rolname FROM referenced JOIN pg_catalog.pg_roles r ON r.oid = referenced.role
            WHERE r.rolname NOT LIKE 'pg\\_%'
            ORDER BY 1
            """).rows.map { $0[0]! }
        var migrations: [String] = []
        if try connection.query("SELECT to_regclass('public.schema_migrations') IS NOT NULL").scalar == "t" {
            migrations = try connection.query("SELECT version FROM public.schema_migrations ORDER BY version").rows.map { $0[0]! }
        }
        return BackupCatalog(tables: tables, sequences: sequences, roles: roles, migrations: migrations)
    }

    /// Sizes on disk, largest first. Call after the tables are locked: pg_relation_size takes a lock
    /// of its own and would wait, without the lock timeout's clear error, on a locked table.
    mutating func sortBySize(_ connection: Connection) throws {
        let sizes = try connection.query("""
            SELECT c.oid::text, (pg_catalog.pg_relation_size(c.oid)
                    + coalesce(pg_catalog.pg_relation_size(NULLIF(c.reltoastrelid, 0)), 0))::text
            FROM pg_catalog.pg_class c WHERE c.oid = ANY ($1::oid[])
            """, ["{" + tables.map(\.oid).joined(separator: ",") + "}"]).rows
        var byOID: [String: Int] = [:]
        for row in sizes { byOID[row[0]!] = Int(row[1] ?? "0") ?? 0 }
        for index in tables.indices { tables[index].estimatedBytes = byOID[tables[index].oid] ?? 0 }
        tables.sort { $0.estimatedBytes != $1.estimatedBytes ? $0.estimatedBytes > $1.estimatedBytes : $0.qualified < $1.qualified }
    }
}
