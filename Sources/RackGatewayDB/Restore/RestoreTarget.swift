import Foundation
import RGWPostgres

/// The database a restore loads into, and the server around it: whether it exists and is empty,
/// the roles an archive needs, dropping and creating it, and the comment that marks it while a
/// restore is unfinished or after one failed.
public struct RestoreTarget: Sendable {
    public let settings: ConnectionSettings
    public let database: String

    public init(settings: ConnectionSettings) throws {
        guard let database = settings.databaseName, !database.isEmpty else {
            throw ToolError(.usage, "the target connection names no database", fix: "Give a URL ending in /dbname (--target-url).")
        }
        self.settings = settings
        self.database = database
    }

    /// The same target, its statements belonging to the run that `cancellation` stops.
    init(checked target: RestoreTarget, cancellation: Cancellation) {
        settings = target.settings.cancellation == nil ? target.settings.cancelled(by: cancellation) : target.settings
        database = target.database
    }

    /// A connection to the server's maintenance database (`postgres`, else `template1`), for
    /// creating and dropping databases and for questions about the server as a whole.
    public func maintenanceConnection() throws -> Connection {
        var firstError: Error?
        for name in ["postgres", "template1"] where name != database {
            do {
                return try settings.replacingDatabase(with: name).open(.restore)
            } catch {
                if firstError == nil { firstError = error }
            }
        }
        throw firstError ?? ToolError(.failed, "cannot connect to a maintenance database on \(settings.description)")
    }

    /// A connection to the target, else (it does not exist) to its server's maintenance database:
    /// what a command opens first, so that a wrong URL or password is said of the database given.
    public func connectionToItOrItsServer() throws -> Connection {
        try connectIfExists() ?? maintenanceConnection()
    }

    /// Connect to the target; nil when the database does not exist (any other failure throws).
    public func connectIfExists() throws -> Connection? {
        do {
            return try settings.open(.restore)
        } catch let error as PostgresError where error.message.contains("database \"\(database)\" does not exist") {
            return nil
        }
    }

    /// User objects outside the system schemas and extensions: schemas (but `public`), relations,
    /// types, functions, extensions (but plpgsql), event triggers, publications, large objects. Any
    /// one of them makes a database non-empty: a restore into it would collide.
    public static func userObjects(_ connection: Connection, limit: Int = 6, except excluded: String = "") throws -> (count: Int, names: [String]) {
        let member = { (catalog: String, alias: String) in CatalogSQL.notExtensionMember(alias, catalog: catalog) }
        let rows = try connection.query("""
            WITH objects(name) AS (
                SELECT 'schema ' || n.nspname FROM pg_catalog.pg_namespace n
                WHERE \(CatalogSQL.userSchemaFilter) AND n.nspname <> 'public' AND \(member("pg_catalog.pg_namespace", "n"))
                UNION ALL
                SELECT CASE c.relkind WHEN 'S' THEN 'sequence ' WHEN 'v' THEN 'view ' WHEN 'm' THEN 'materialized view ' ELSE '' END
                       || n.nspname || '.' || c.relname
                FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
                WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S', 'c') AND \(CatalogSQL.userSchemaFilter) AND \(member("pg_catalog.pg_class", "c"))
                UNION ALL
                SELECT 'type ' || n.nspname || '.' || t.typname
                FROM pg_catalog.pg_type t JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace
                WHERE t.typtype IN ('b', 'd', 'e', 'r', 'p') AND \(CatalogSQL.userSchemaFilter) AND \(member("pg_catalog.pg_type", "t"))
                  AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_type e WHERE e.typarray = t.oid)
                UNION ALL
                SELECT 'function ' || n.nspname || '.' || p.proname
                FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
                WHERE \(CatalogSQL.userSchemaFilter) AND \(member("pg_catalog.pg_proc", "p"))
                UNION ALL
                SELECT 'extension ' || x.extname FROM pg_catalog.pg_extension x WHERE x.extname <> 'plpgsql'
                UNION ALL
                SELECT 'event trigger ' || e.evtname FROM pg_catalog.pg_event_trigger e WHERE \(member("pg_catalog.pg_event_trigger", "e"))
                UNION ALL
                SELECT 'publication ' || p.pubname FROM pg_catalog.pg_publication p
                UNION ALL
                SELECT 'large object ' || l.oid FROM pg_catalog.pg_largeobject_metadata l
            )
            SELECT count(*) OVER ()::text, name FROM objects WHERE name <> $2 ORDER BY name LIMIT $1
            """, [String(limit), excluded]).rows
        return (Int(rows.first?[0] ?? "0") ?? 0, rows.map { $0[1]! })
    }

    /// The roles of `names` that do not exist on the server.
    public static func missingRoles(_ names: [String], connection: Connection) throws -> [String] {
        guard !names.isEmpty else { return [] }
        let existing = Set(try connection.query("SELECT rolname FROM pg_catalog.pg_roles WHERE rolname = ANY ($1::text[])",
                                                [Self.textArray(names)]).rows.map { $0[0]! })
        return names.filter { !existing.contains($0) }
    }

    public static func createRoleStatement(_ name: String) -> String { "CREATE ROLE \(SQL.identifier(name)) NOLOGIN" }

    /// Create the roles NOLOGIN; a restoring role that is not a superuser (an RDS master user with
    /// CREATEROLE) then makes itself a member able to SET ROLE to each, without which it could not
    /// give them the archive's objects (`ALTER ... OWNER TO`). PostgreSQL 16 grants the creator only
    /// ADMIN OPTION, so the membership is granted explicitly, WITH SET and INHERIT there.
    public static func createRoles(_ names: [String], connection: Connection) throws {
        let superuser = try connection.query("SELECT rolsuper::text FROM pg_catalog.pg_roles WHERE rolname = current_user").scalar == "true"
        for name in names {
            do {
                try connection.execute(createRoleStatement(name))
            } catch let error as PostgresError where error.sqlState == "42710" || error.sqlState == "23505" {
                // Created meanwhile: by another restore at the same moment the catalog's unique index
                // says so (23505) rather than CREATE ROLE's own check (42710). CI saw the former.
                continue
            } catch let error as PostgresError where error.sqlState == "42501" {
                throw ToolError(.failed, "cannot create role \(name): \(error.message)",
                                fix: "Create the roles as a superuser or a role with CREATEROLE, then restore again.")
            }
            guard !superuser else { continue }
            let options = connection.serverMajorVersion >= 16 ? " WITH INHERIT TRUE, SET TRUE" : ""
            do {
                try connection.execute("GRANT \(SQL.identifier(name)) TO CURRENT_USER\(options)")
            } catch let error as PostgresError {
                throw ToolError(.failed, "created role \(name) but cannot make \(connection.userName) a member of it: \(error.message)",
                                fix: "GRANT \(name) TO \(connection.userName) as a superuser, then restore again.")
            }
        }
    }

    /// `{"a","b"}`: a text[] parameter.
    static func textArray(_ values: [String]) -> String {
        "{" + values.map { "\"" + $0.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\"" }
            .joined(separator: ",") + "}"
    }

    static let alreadyExists = "already exists"

    /// Create the database (template0, UTF8, owned by the connecting role).
    public func create(_ admin: Connection) throws {
        do {
            try admin.execute("CREATE DATABASE \(SQL.identifier(database)) TEMPLATE template0 ENCODING 'UTF8'")
        } catch let error as PostgresError where error.sqlState == "42P04" || error.sqlState == "23505" {
            throw ToolError(.databaseExists, "database \(database) \(Self.alreadyExists) (created by another run meanwhile)")
        } catch let error as PostgresError where error.sqlState == "42501" {
            throw ToolError(.failed, "cannot create database \(database): \(error.message)",
                            fix: "Restore as a role with CREATEDB, or create the empty database first.")
        }
    }

    /// Drop the database (ending its sessions) and create it again with the same owner, encoding
    /// and locale. Its own settings, comment and grants are the archive's afterwards (the restore
    /// applies the recorded database properties).
    ///
    /// - Important: destroys every object and row of the database; callers confirm first (`--clean`
    ///   and `--yes` or the y/N question) and check the archive before calling it.
    public func dropAndCreate(_ admin: Connection) throws {
        let rows = try admin.query("""
            SELECT pg_catalog.pg_get_userbyid(d.datdba), pg_catalog.pg_encoding_to_char(d.encoding), d.datcollate, d.datctype,
                   d.datlocprovider::text, coalesce(to_jsonb(d) ->> 'datlocale', to_jsonb(d) ->> 'daticulocale', '')
            FROM pg_catalog.pg_database d WHERE d.datname = $1
            """, [database]).rows
        guard let row = rows.first else { return try create(admin) }
        var options = "TEMPLATE template0 OWNER \(SQL.identifier(row[0]!)) ENCODING \(SQL.literal(row[1]!))"
            + " LC_COLLATE \(SQL.literal(row[2]!)) LC_CTYPE \(SQL.literal(row[3]!))"
        // The provider's own locale: daticulocale up to 16, datlocale from 17 (which added the
        // builtin provider), read through to_jsonb so that one query serves both.
        if row[4] == "i" { options += " LOCALE_PROVIDER icu ICU_LOCALE \(SQL.literal(row[5]!))" }
        if row[4] == "b" { options += " LOCALE_PROVIDER builtin BUILTIN_LOCALE \(SQL.literal(row[5]!))" }
        do {
            try admin.execute("DROP DATABASE \(SQL.identifier(database)) WITH (FORCE)")
            try admin.execute("CREATE DATABASE \(SQL.identifier(database)) \(options)")
        } catch let error as PostgresError where error.sqlState == "42501" {
            throw ToolError(.failed, "--clean cannot drop and recreate \(database): \(error.message)",
                            fix: "Run the restore as the database's owner with CREATEDB, or a superuser.")
        }
    }

    /// Drop the database, ending its sessions.
    ///
    /// - Important: destroys the database; only for databases the tool created (drill scratch, the
    ///   pipeline's new database) or was told to replace.
    public func drop(_ admin: Connection) throws {
        try admin.execute("DROP DATABASE IF EXISTS \(SQL.identifier(database)) WITH (FORCE)")
    }

    /// `ANALYZE` every user table (and partitioned table and materialized view) over `jobs`
    /// connections, largest first: the restored database gets planner statistics without the
    /// cost of analyzing the system catalogs too. Tables in `analyzed` (qualified names, analyzed
    /// as soon as their data was in) are skipped unless they since got what an earlier ANALYZE
    /// cannot have seen: an expression index or extended statistics. Returns the tables analyzed.
    @discardableResult
    public func analyze(jobs: Int, analyzed: Set<String> = []) throws -> [String] {
        let connection = try settings.open(.analyze)
        let tables = try connection.query("""
            SELECT n.nspname, c.relname,
                   EXISTS (SELECT FROM pg_catalog.pg_index i WHERE i.indrelid = c.oid AND i.indexprs IS NOT NULL)
                   OR EXISTS (SELECT FROM pg_catalog.pg_statistic_ext x WHERE x.stxrelid = c.oid)
            FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
            WHERE c.relkind IN ('r', 'p', 'm') AND \(CatalogSQL.userSchemaFilter)
            ORDER BY pg_catalog.pg_total_relation_size(c.oid) DESC, 1, 2
            """).rows.compactMap { row -> String? in
                let name = SQL.qualified(row[0]!, row[1]!)
                return analyzed.contains(name) && row[2] != "t" ? nil : name
            }
        let settings = self.settings
        try forEachInParallel(tables, workers: jobs, name: "analyze", connect: {
            try settings.open(.analyze)
        }) { connection, table in
            try connection.execute("ANALYZE \(table)")
        }
        return tables
    }

    /// Set (or with nil remove) the database's comment; false when the role may not (not the owner).
    @discardableResult
    public static func mark(_ connection: Connection, _ text: String?) -> Bool {
        let value = text.map(SQL.literal) ?? "NULL"
        // A target given the source's `default_transaction_read_only = on` (a database property
        // the restore applies) still takes the tool's own marks: its session writes regardless.
        _ = try? connection.execute("SET default_transaction_read_only = off")
        return (try? connection.execute("COMMENT ON DATABASE \(SQL.identifier(connection.databaseName)) IS \(value)")) != nil
    }

    /// Whether a database comment is one of the tool's own marks (not the database's comment).
    public static func isMark(_ text: String) -> Bool {
        text.hasPrefix("rack-gateway-db: INCOMPLETE restore of ") || text.hasPrefix("rack-gateway-db: FAILED restore of ")
    }

    /// The archive a mark names (`... restore of FILE started|at ...`), nil for another comment.
    public static func markedArchive(_ comment: String) -> String? {
        guard isMark(comment), let of = comment.range(of: " restore of ") else { return nil }
        let rest = comment[of.upperBound...]
        guard let end = [" started ", " at "].compactMap({ rest.range(of: $0)?.lowerBound }).min() else { return nil }
        return String(rest[..<end])
    }

    public static func markInProgress(_ connection: Connection, file: String, at time: Date) -> Bool {
        mark(connection, "rack-gateway-db: INCOMPLETE restore of \(file) started \(ISO8601DateFormatter().string(from: time)); do not use this database: the restore removes this comment when it finishes, and one that was killed leaves it (restore again with --clean, or drop the database)")
    }

    @discardableResult
    public static func markFailed(_ connection: Connection, file: String, reason: String, at time: Date) -> Bool {
        mark(connection, "rack-gateway-db: FAILED restore of \(file) at \(ISO8601DateFormatter().string(from: time)): \(reason.prefix(300)); this database is incomplete, do not use it")
    }
}
