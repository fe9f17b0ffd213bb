import Foundation
import Logging
import RGWPostgres

/// `check`: is the database reachable, encrypted, migrated, and can this role back it up?
public struct HealthCheck {
    public let settings: ConnectionSettings
    public let migrations: MigrationSet
    public let logger: Logger

    public init(settings: ConnectionSettings, migrations: MigrationSet, logger: Logger) {
        self.settings = settings
        self.migrations = migrations
        self.logger = logger
    }

    public struct Item: Codable, Sendable, Equatable {
        public enum Status: String, Codable, Sendable { case ok, warn, fail }
        public var name: String
        public var status: Status
        public var detail: String
        /// A `copies` item (`--max-backup-age` where copies.jsonl records copies from --dir): the
        /// destination, its newest verified copy, and whether it is fresh.
        public var copy: ArchiveCopy.Freshness?

        public init(name: String, status: Status, detail: String) {
            self.name = name
            self.status = status
            self.detail = detail
        }
    }

    public struct Report: Codable, Sendable {
        public var target: String
        public var items: [Item]
        /// Why the connection could not be made (`database_auth_failed`, `database_unreachable`,
        /// with what to check), for the run's error; not part of the report's JSON.
        public var connectionFailure: ToolError?
        /// A restore's mark on the database: the commands that clear it (restore the marked archive
        /// again, or drop the database), for the run's error; not part of the report's JSON.
        public var restoreMarkFix: String?
        /// True when no item failed (warnings allowed).
        public var ok: Bool { !items.contains { $0.status == .fail } }

        enum CodingKeys: String, CodingKey { case target, items, ok }
        public func encode(to encoder: Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(target, forKey: .target)
            try container.encode(items, forKey: .items)
            try container.encode(ok, forKey: .ok)
        }
        public init(from decoder: Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            target = try container.decode(String.self, forKey: .target)
            items = try container.decode([Item].self, forKey: .items)
        }
        init(target: String, items: [Item]) {
            self.target = target
            self.items = items
        }
    }

    public func run() -> Report {
        var items: [Item] = []
        let connection: Connection
        do {
            connection = try settings.open(.check)
            let one = try connection.query("SELECT 1").scalar
            items.append(Item(name: "connection", status: one == "1" ? .ok : .fail,
                              detail: "connected to \(settings) as \(connection.userName); SELECT 1 returned \(one ?? "nothing")"))
        } catch {
            items.append(Item(name: "connection", status: .fail, detail: String(describing: error)))
            var report = Report(target: settings.description, items: items)
            report.connectionFailure = ToolError(reporting: error)
            return report
        }
        let mark = restoreMark(connection)
        if let mark { items.append(mark.item) }
        items.append(tlsItem(connection))
        let serverVersion = (try? connection.query("SHOW server_version").scalar) ?? connection.serverVersion
        items.append(Item(name: "server", status: .ok, detail: "PostgreSQL \(serverVersion)"))
        items.append(pgDumpItem(serverMajor: connection.serverMajorVersion))
        // An incomplete database's migrations say nothing of the application's set.
        items.append(mark == nil ? migrationItem(connection)
                     : Item(name: "migrations", status: .warn, detail: "not judged: the database is incomplete (see the restore mark)"))
        items.append(privilegeItem(connection))
        var report = Report(target: settings.description, items: items)
        report.restoreMarkFix = mark?.fix
        return report
    }

    /// A database a restore marked INCOMPLETE (running, or killed) or FAILED is not one to use:
    /// the mark's text says which restore and when. Nil when it carries no mark.
    func restoreMark(_ connection: Connection) -> (item: Item, fix: String)? {
        let query = "SELECT pg_catalog.shobj_description(d.oid, 'pg_database') FROM pg_catalog.pg_database d WHERE d.datname = current_database()"
        guard let comment = (try? connection.query(query).rows.first?[0]) ?? nil, RestoreTarget.isMark(comment) else { return nil }
        let database = connection.databaseName
        // The mark names the archive: the command restores that one again (the password in PGPASSWORD).
        let archive = RestoreTarget.markedArchive(comment) ?? "ARCHIVE"
        let again = ShellCommand.line(["rack-gateway-db", "restore", archive, "--target-url", settings.urlWithoutPassword, "--clean"])
        let drop = ShellCommand.psql(settings.replacingDatabase(with: "postgres").urlWithoutPassword, ["DROP DATABASE \(SQL.identifier(database)) WITH (FORCE)"])
        let item = Item(name: "restore mark", status: .fail,
                        detail: "database \(database) carries a restore's mark (COMMENT ON DATABASE): \"\(comment)\"; its contents are incomplete; "
                            + "a restore still running removes the mark itself when it succeeds")
        return (item, "Unless a restore is still running into it, restore the archive again: \(again) (with the --identity or --verify-key it needs; "
                    + "answer its question, or add --yes), "
                    + "or drop the database: \(drop); the password in PGPASSWORD.")
    }

    func tlsItem(_ connection: Connection) -> Item {
        if connection.usesTLS {
            let proto = connection.tlsAttribute("protocol") ?? "TLS"
            let cipher = connection.tlsAttribute("cipher").map { ", \($0)" } ?? ""
            return Item(name: "tls", status: .ok, detail: "in use (\(proto)\(cipher))")
        }
        let host = connection.host
        let local = host.hasPrefix("/") || host == "localhost" || host.hasPrefix("127.") || host == "::1"
        return Item(name: "tls", status: local ? .ok : .warn,
                    detail: local ? "not in use (local connection to \(host))"
                        : "not in use: traffic to \(host) is unencrypted; add sslmode=require (or verify-full) to the URL")
    }

    func pgDumpItem(serverMajor: Int) -> Item {
        switch PostgresTools.pgDump() {
        case .failure(let error):
            return Item(name: "pg_dump", status: .fail, detail: error.description)
        case .success(let tool):
            guard tool.majorVersion >= serverMajor else {
                return Item(name: "pg_dump", status: .fail,
                            detail: "\(tool.path) is version \(tool.version), older than the server's \(serverMajor); install postgresql-client-\(serverMajor) or newer and put it first on PATH")
            }
            let versions = PostgresVersions.describe(serverMajor: serverMajor, clientMajor: tool.majorVersion)
            return Item(name: "pg_dump", status: PostgresVersions.supportedServers.contains(serverMajor) ? .ok : .warn,
                        detail: "\(tool.path) version \(tool.version) for server \(serverMajor)" + (versions.isEmpty ? "" : "; \(versions)"))
        }
    }

    func migrationItem(_ connection: Connection) -> Item {
        do {
            let status = try Migrator(connection: connection, migrations: migrations, logger: logger).status()
            if let advice = status.advice, status.isForeign {
                return Item(name: "migrations", status: .warn,
                            detail: "\(status.applied.count) applied; \(advice); to compare with the right set, point --migrations (or RGW_MIGRATIONS_DIR) at the application's internal/gateway/db/migrations of the deployed release")
            }
            var notes: [String] = []
            if !status.pending.isEmpty {
                notes.append("\(status.pending.count) pending (\(status.pending.map(\.file).joined(separator: ", "))); run migrate")
            }
            if !status.missingFiles.isEmpty {
                notes.append("applied versions newer than this set's newest: \(status.missingFiles.joined(separator: ", ")) (migrated by a newer release; use its migrations)")
            }
            if notes.isEmpty {
                return Item(name: "migrations", status: .ok, detail: "up to date (\(status.applied.count) applied)")
            }
            return Item(name: "migrations", status: .warn, detail: "\(status.applied.count) applied; " + notes.joined(separator: "; "))
        } catch {
            return Item(name: "migrations", status: .fail, detail: String(describing: error))
        }
    }

    /// Every table and sequence must be readable, and no table may be filtered by row-level security.
    func privilegeItem(_ connection: Connection) -> Item {
        do {
            let result = try connection.query("""
                SELECT format('%I.%I', n.nspname, c.relname) AS name,
                       CASE
                         WHEN NOT has_schema_privilege(n.oid, 'USAGE') THEN 'no USAGE on schema'
                         WHEN NOT has_table_privilege(c.oid, 'SELECT') THEN 'no SELECT'
                         WHEN c.relkind IN ('r', 'p') AND c.relrowsecurity
                              AND NOT r.rolsuper AND NOT r.rolbypassrls
                              AND (NOT pg_has_role(c.relowner, 'USAGE') OR c.relforcerowsecurity)
                           THEN 'row-level security would filter rows'
                       END AS problem
                FROM pg_catalog.pg_class c
                JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
                JOIN pg_catalog.pg_roles r ON r.rolname = current_user
                WHERE c.relkind IN ('r', 'p', 'S', 'm')
                  AND \(CatalogSQL.userSchemaFilter)
                ORDER BY 1
                """)
            let problems = result.rows.compactMap { row -> String? in
                guard let problem = row[1] else { return nil }
                return "\(row[0] ?? "?"): \(problem)"
            }
            if problems.isEmpty {
                return Item(name: "privileges", status: .ok, detail: "\(connection.userName) can read all \(result.rowCount) tables and sequences")
            }
            let shown = problems.prefix(10).joined(separator: "; ")
            let more = problems.count > 10 ? " and \(problems.count - 10) more" : ""
            return Item(name: "privileges", status: .fail,
                        detail: "\(connection.userName) cannot back up \(Plural.of(problems.count, "relation")): \(shown)\(more); use the owner, a superuser, or a role with SELECT and BYPASSRLS")
        } catch {
            return Item(name: "privileges", status: .fail, detail: String(describing: error))
        }
    }
}
