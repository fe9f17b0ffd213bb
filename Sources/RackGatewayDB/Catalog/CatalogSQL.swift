/// The catalog predicates every query of user objects shares, so that backup, restore, drill,
/// check, maint and reset-db agree on what "the user's objects" are.
enum CatalogSQL {
    /// Schema `alias` (a pg_namespace row) is the user's: not a system schema, not TOAST, not a
    /// session's temporary schema.
    static func userSchema(_ alias: String = "n") -> String {
        """
        \(alias).nspname NOT IN ('pg_catalog', 'information_schema')
          AND \(alias).nspname NOT LIKE 'pg\\_toast%' AND \(alias).nspname NOT LIKE 'pg\\_temp\\_%'
        """
    }

    /// The same predicate over `n`, the alias every query here gives pg_namespace.
    static let userSchemaFilter = userSchema()

    /// The object `alias` of catalog `catalog` (pg_class by default) is no extension's member.
    static func notExtensionMember(_ alias: String, catalog: String = "pg_catalog.pg_class") -> String {
        "NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d WHERE d.classid = '\(catalog)'::regclass AND d.objid = \(alias).oid AND d.deptype = 'e')"
    }
}
