import Foundation
import RGWPostgres

/// What belongs to the database itself rather than to its schema, which pg_dump writes only with
/// `--create`: its `ALTER DATABASE ... SET` settings (also per role), its comment and its grants.
/// Recorded in the manifest; applied when the tool creates or recreates a target; listed in the
/// header for the stock-tools path.
public struct DatabaseProperties: Codable, Sendable, Equatable {
    public struct Setting: Codable, Sendable, Equatable {
        /// The role of `ALTER ROLE r IN DATABASE d SET`, or nil for the whole database.
        public var role: String?
        public var name: String
        public var value: String
    }

    /// One privilege on the database. The privilege is a keyword that `GRANT` takes unquoted, so it
    /// is one of `privileges` or the grant cannot exist: decoding a manifest refuses anything else
    /// (a manifest is untrusted input, and its text must never become SQL).
    public struct Grant: Codable, Sendable, Equatable {
        /// A role name, or nil for PUBLIC.
        public var grantee: String?
        public let privilege: String
        public var grantable: Bool

        /// The privileges a database has (as `aclexplode` names them), and the spellings GRANT takes for them.
        public static let privileges: Set<String> = ["CREATE", "CONNECT", "TEMPORARY", "TEMP", "ALL", "ALL PRIVILEGES"]

        public init(grantee: String?, privilege: String, grantable: Bool) throws {
            guard Self.privileges.contains(privilege) else {
                throw ToolError(.archiveCorrupt, "its database grant names database privilege \"\(privilege.prefix(80))\", not one of \(Self.privileges.sorted().joined(separator: ", ")) (the manifest was altered)")
            }
            self.grantee = grantee
            self.privilege = privilege
            self.grantable = grantable
        }

        enum CodingKeys: String, CodingKey { case grantee, privilege, grantable }

        public init(from decoder: Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            try self.init(grantee: try container.decodeIfPresent(String.self, forKey: .grantee),
                          privilege: try container.decode(String.self, forKey: .privilege),
                          grantable: try container.decode(Bool.self, forKey: .grantable))
        }
    }

    public var settings: [Setting]
    public var comment: String?
    /// The database's grants; nil when it has the default privileges (datacl is NULL).
    public var grants: [Grant]?

    public var isEmpty: Bool { settings.isEmpty && comment == nil && grants == nil }

    public static func read(_ connection: Connection) throws -> DatabaseProperties {
        let settings = try connection.query("""
            SELECT CASE WHEN s.setrole = 0 THEN NULL ELSE pg_catalog.pg_get_userbyid(s.setrole) END, c.config
            FROM pg_catalog.pg_db_role_setting s, pg_catalog.pg_database d, unnest(s.setconfig) WITH ORDINALITY AS c(config, n)
            WHERE d.datname = current_database() AND s.setdatabase = d.oid
            ORDER BY s.setrole <> 0, 1, c.n
            """).rows.compactMap { row -> Setting? in
            let parts = row[1]!.split(separator: "=", maxSplits: 1)
            guard parts.count == 2 else { return nil }
            return Setting(role: row[0], name: String(parts[0]), value: String(parts[1]))
        }
        let database = try connection.query("""
            SELECT pg_catalog.shobj_description(d.oid, 'pg_database'), (d.datacl IS NULL)::text, pg_catalog.pg_get_userbyid(d.datdba)
            FROM pg_catalog.pg_database d WHERE d.datname = current_database()
            """).rows[0]
        var grants: [Grant]?
        if database[1] == "false" {
            grants = try connection.query("""
                SELECT CASE WHEN a.grantee = 0 THEN NULL ELSE pg_catalog.pg_get_userbyid(a.grantee) END, a.privilege_type, a.is_grantable::text
                FROM pg_catalog.pg_database d, pg_catalog.aclexplode(d.datacl) a
                WHERE d.datname = current_database() AND a.grantee <> d.datdba
                ORDER BY 1 NULLS FIRST, 2
                """).rows.map { try Grant(grantee: $0[0], privilege: $0[1]!, grantable: $0[2] == "true") }
        }
        // The in-progress mark of an interrupted restore is the tool's, not the database's.
        let comment = database[0].flatMap { RestoreTarget.isMark($0) ? nil : $0 }
        return DatabaseProperties(settings: settings, comment: comment, grants: grants)
    }

    /// Variables whose value is a list that `ALTER ... SET` takes as separate literals (as pg_dump
    /// writes them: `SET search_path TO '$user', 'public'`).
    static let listVariables: Set<String> = ["search_path", "temp_tablespaces", "session_preload_libraries",
                                             "shared_preload_libraries", "local_preload_libraries"]

    /// `a, "b c", "d""e"` as its elements.
    static func listElements(_ value: String) -> [String] {
        var elements: [String] = []
        var current = ""
        var quoted = false
        var index = value.startIndex
        while index < value.endIndex {
            let character = value[index]
            if character == "\"" {
                let next = value.index(after: index)
                if quoted && next < value.endIndex && value[next] == "\"" {
                    current.append("\"")
                    index = value.index(after: next)
                    continue
                }
                quoted.toggle()
            } else if character == "," && !quoted {
                elements.append(current.trimmingCharacters(in: .whitespaces))
                current = ""
            } else {
                current.append(character)
            }
            index = value.index(after: index)
        }
        elements.append(current.trimmingCharacters(in: .whitespaces))
        return elements
    }

    /// The statements that give database `database` these properties (without the comment, when the
    /// caller sets it itself).
    public func statements(database: String, comment includingComment: Bool = true) -> [String] {
        let target = SQL.identifier(database)
        var statements: [String] = settings.map { setting in
            let value = Self.listVariables.contains(setting.name.lowercased())
                ? Self.listElements(setting.value).map(SQL.literal).joined(separator: ", ")
                : SQL.literal(setting.value)
            let subject = setting.role.map { "ROLE \(SQL.identifier($0)) IN DATABASE \(target)" } ?? "DATABASE \(target)"
            return "ALTER \(subject) SET \(SQL.identifier(setting.name)) TO \(value)"
        }
        if includingComment, let comment { statements.append("COMMENT ON DATABASE \(target) IS \(SQL.literal(comment))") }
        if let grants {
            statements.append("REVOKE ALL ON DATABASE \(target) FROM PUBLIC")
            for grant in grants {
                statements.append("GRANT \(grant.privilege) ON DATABASE \(target) TO \(grant.grantee.map(SQL.identifier) ?? "PUBLIC")\(grant.grantable ? " WITH GRANT OPTION" : "")")
            }
        }
        return statements
    }
}
