import Foundation
import RGWPostgres

/// One restore at a time where two would hurt: per Convox app and service (the pipeline), and per
/// target database (every restore). Session advisory locks on the server's maintenance database,
/// so two operators on two machines are kept apart as well as two terminals on one; held by a
/// connection of their own for the whole run (its compensation included) and gone with it, also
/// when the process dies. The holder names itself in `application_name` (pid and host), and the
/// server adds when it connected and from where, so a second run says who holds it.
public final class RestoreLock: @unchecked Sendable {
    public struct Key: Sendable {
        /// What is locked, for messages: "the restore pipeline for app rack-gateway, service gateway".
        public var what: String
        var scope: String
        var name: String

        public static func pipeline(app: String, service: String, rack: String?) -> Key {
            Key(what: "the restore pipeline for app \(app), service \(service)" + (rack.map { " on rack \($0)" } ?? ""),
                scope: "rack-gateway-db pipeline", name: "\(rack ?? "")/\(app)/\(service)")
        }

        public static func target(_ database: String) -> Key {
            Key(what: "restores into database \(database)", scope: "rack-gateway-db restore target", name: database)
        }
    }

    private let connection: Connection
    public let keys: [Key]

    private init(connection: Connection, keys: [Key]) {
        self.connection = connection
        self.keys = keys
    }

    /// Take every key or none; a key another session holds throws `lockHeld` (exit 3) naming it.
    public static func acquire(_ keys: [Key], on server: RestoreTarget, pid: Int32 = getpid(),
                               host: String = ProcessInfo.processInfo.hostName) throws -> RestoreLock {
        // Its own connection, outside the run's cancellation: the lock must outlive the run's
        // statements, through the clean-ups that follow a Ctrl-C.
        let target = try RestoreTarget(settings: server.settings.cancelled(by: nil))
        let connection = try target.maintenanceConnection()
        try connection.query("SELECT pg_catalog.set_config('application_name', $1, false)",
                             [String("rack-gateway-db lock pid=\(pid) host=\(host)".prefix(63))])
        for key in keys {
            guard try connection.query("SELECT pg_catalog.pg_try_advisory_lock(hashtext($1), hashtext($2))", [key.scope, key.name]).scalar == "t" else {
                throw ToolError(.lockHeld, "another run holds \(key.what): \(holder(of: key, connection)); nothing was changed",
                                fix: "Wait for it to finish (or, if that run is gone, for its server session to end: rack-gateway-db maint connections); only one runs at a time.")
            }
        }
        return RestoreLock(connection: connection, keys: keys)
    }

    /// Who holds `key`: the tool's pid and host from its application_name, when it connected, and
    /// from where.
    static func holder(of key: Key, _ connection: Connection) -> String {
        guard let row = try? connection.query("""
            SELECT coalesce(a.application_name, ''), coalesce(host(a.client_addr), 'local socket'), a.usename,
                   to_char(a.backend_start AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')
            FROM pg_catalog.pg_locks l JOIN pg_catalog.pg_stat_activity a ON a.pid = l.pid
            WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2
              AND l.database = (SELECT oid FROM pg_catalog.pg_database WHERE datname = current_database())
              AND l.classid::bigint = (hashtext($1)::bigint & 4294967295) AND l.objid::bigint = (hashtext($2)::bigint & 4294967295)
            """, [key.scope, key.name]).rows.first else { return "another session" }
        let name = row[0] ?? ""
        let pid = name.firstMatch(of: /pid=(\d+)/).map { "pid \($0.1)" }
        let host = name.firstMatch(of: /host=(\S+)/).map { "on host \($0.1)" }
        let who = [pid, host].compactMap { $0 }.joined(separator: " ")
        return "\(who.isEmpty ? "a session named '\(name)'" : "rack-gateway-db \(who)"), started \(row[3] ?? "?") (user \(row[2] ?? "?"), connected from \(row[1] ?? "?"))"
    }

    /// Give the locks back (closing the connection would too).
    public func release() {
        _ = try? connection.execute("SELECT pg_catalog.pg_advisory_unlock_all()")
    }
}
