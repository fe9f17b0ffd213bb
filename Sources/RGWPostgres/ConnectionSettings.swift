import CLibPQ
import Foundation

/// Where to connect, resolved from a URL, the environment, or libpq's `PG*` variables.
///
/// The raw connection string is kept private; `description` redacts the password, and
/// `childEnvironment` hands the settings to `pg_dump` or `psql` through `PG*` variables so
/// that no password ever lands in a child's argv.
public struct ConnectionSettings: Sendable, CustomStringConvertible {
    /// Where the settings came from, for messages (`--database-url`, `RGW_DATABASE_URL`, ...).
    public let source: String
    /// The connection string or URL; empty means "libpq's PG* variables and defaults".
    let conninfo: String
    /// Options set explicitly in `conninfo`: libpq keyword, value, and the PG* variable for it.
    let explicit: [Option]
    /// The run this connection's work belongs to: its statements are cancelled when the run is
    /// stopped (Ctrl-C, SIGTERM, a stall). Nil for connections that belong to no run.
    public var cancellation: Cancellation?

    struct Option: Sendable {
        var keyword: String
        var value: String
        var environmentVariable: String?
    }

    /// Resolve the connection in the documented order: `--database-url`, `RGW_DATABASE_URL`,
    /// `DATABASE_URL`, then libpq's own `PG*` variables.
    public static func resolve(databaseURL: String?, environment: [String: String]) throws -> ConnectionSettings {
        if let url = databaseURL, !url.isEmpty {
            return try ConnectionSettings(conninfo: url, source: "--database-url")
        }
        for name in ["RGW_DATABASE_URL", "DATABASE_URL"] {
            if let url = environment[name], !url.isEmpty {
                return try ConnectionSettings(conninfo: url, source: name)
            }
        }
        return try ConnectionSettings(conninfo: "", source: "PG* environment variables")
    }

    /// The same settings, their work belonging to `cancellation`.
    public func cancelled(by cancellation: Cancellation?) -> ConnectionSettings {
        var settings = self
        settings.cancellation = cancellation
        return settings
    }

    /// Parse a `postgres://` URL or a `key=value` connection string (libpq's own parser).
    public init(conninfo: String, source: String = "connection string") throws {
        self.source = source
        self.conninfo = conninfo
        var errorMessage: UnsafeMutablePointer<CChar>?
        guard let options = PQconninfoParse(conninfo, &errorMessage) else {
            var message = "libpq could not parse it"
            if let errorMessage {
                message = Self.redact(String(cString: errorMessage).trimmingWhitespace(), secret: conninfo)
                PQfreemem(errorMessage)
            }
            throw Self.malformed(message, source: source)
        }
        defer { PQconninfoFree(options) }
        self.explicit = Self.options(options, onlyWithValues: true)
        try validateValues()
    }

    /// libpq accepts any text for these at parse time and only complains when connecting; a value that
    /// can never work is a malformed connection string, so say so before trying.
    func validateValues() throws {
        var problem: String?
        if let port = explicit.first(where: { $0.keyword == "port" })?.value {
            for part in port.split(separator: ",", omittingEmptySubsequences: false) where !part.isEmpty {
                guard let number = Int(part), (1...65535).contains(number) else {
                    problem = "invalid port \"\(part)\" (a number from 1 to 65535)"
                    break
                }
            }
        }
        let sslModes = ["disable", "allow", "prefer", "require", "verify-ca", "verify-full"]
        if let mode = explicit.first(where: { $0.keyword == "sslmode" })?.value, !sslModes.contains(mode) {
            problem = "invalid sslmode \"\(mode)\" (one of \(sslModes.joined(separator: ", ")))"
        }
        if let problem { throw Self.malformed(problem, source: source) }
    }

    static func malformed(_ problem: String, source: String) -> PostgresError {
        PostgresError(kind: .malformedConnectionString,
                      message: "\(problem) (from \(source); expected postgres://user:password@host:port/dbname?sslmode=...)")
    }

    private init(source: String, conninfo: String, explicit: [Option]) {
        self.source = source
        self.conninfo = conninfo
        self.explicit = explicit
    }

    static func options(_ list: UnsafeMutablePointer<PQconninfoOption>, onlyWithValues: Bool) -> [Option] {
        var result: [Option] = []
        var cursor = list
        while let keyword = cursor.pointee.keyword {
            if let value = cursor.pointee.val {
                result.append(Option(
                    keyword: String(cString: keyword),
                    value: String(cString: value),
                    environmentVariable: cursor.pointee.envvar.map { String(cString: $0) }
                ))
            }
            cursor += 1
        }
        return result
    }

    /// The value libpq will use for `keyword`: explicit first, then its PG* variable or default.
    public func effectiveValue(_ keyword: String) -> String? {
        if let option = explicit.first(where: { $0.keyword == keyword }) { return option.value }
        guard let defaults = PQconndefaults() else { return nil }
        defer { PQconninfoFree(defaults) }
        return Self.options(defaults, onlyWithValues: true).first(where: { $0.keyword == keyword })?.value
    }

    public var databaseName: String? { effectiveValue("dbname") ?? effectiveValue("user") }

    /// The same server and credentials with another database name (for scratch and restore targets).
    public func replacingDatabase(with name: String) -> ConnectionSettings {
        var options = explicit.filter { $0.keyword != "dbname" }
        options.append(Option(keyword: "dbname", value: name, environmentVariable: "PGDATABASE"))
        let conninfo = options.map { "\($0.keyword)=\(Self.quoteConninfoValue($0.value))" }.joined(separator: " ")
        var settings = ConnectionSettings(source: source, conninfo: conninfo, explicit: options)
        settings.cancellation = cancellation
        return settings
    }

    /// Replace `secret` (a whole connection string) in `text` with a form without its password.
    public static func redact(_ text: String, secret: String) -> String {
        guard !secret.isEmpty else { return text }
        return text.replacingOccurrences(of: secret, with: redactedConninfo(secret))
    }

    /// A connection string with the password part of a URL or a `password=` value masked.
    static func redactedConninfo(_ conninfo: String) -> String {
        var text = conninfo
        // URL form: scheme://user:password@host...
        if let scheme = text.range(of: "://") {
            let rest = text[scheme.upperBound...]
            if let at = rest.lastIndex(of: "@"), let colon = rest[..<at].firstIndex(of: ":") {
                text.replaceSubrange(text.index(after: colon)..<at, with: "***")
            }
        }
        // key=value form and URL query parameters: password=...
        var result = ""
        var remaining = Substring(text)
        while let range = remaining.range(of: "password=") {
            result += remaining[..<range.upperBound] + "***"
            remaining = remaining[range.upperBound...]
            let end = remaining.firstIndex { $0 == " " || $0 == "&" } ?? remaining.endIndex
            remaining = remaining[end...]
        }
        return result + remaining
    }

    public static func quoteConninfoValue(_ value: String) -> String {
        var quoted = "'"
        for character in value {
            if character == "'" || character == "\\" { quoted.append("\\") }
            quoted.append(character)
        }
        return quoted + "'"
    }

    /// `user@host:port/dbname` without the password, for messages and reports.
    public var description: String {
        let host = effectiveValue("host") ?? effectiveValue("hostaddr") ?? "[local socket]"
        let port = effectiveValue("port") ?? "5432"
        let user = effectiveValue("user").map { "\($0)@" } ?? ""
        let database = databaseName ?? "?"
        return "\(user)\(host):\(port)/\(database)"
    }

    /// A `postgres://` URL of the same place without the password (for a child's `DATABASE_URL`;
    /// the password goes in `PGPASSWORD`, which libpq, pgx and lib/pq all read).
    public var urlWithoutPassword: String {
        func encode(_ text: String) -> String {
            text.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(CharacterSet(charactersIn: "-._~"))) ?? text
        }
        let host = effectiveValue("host") ?? "localhost"
        let socket = host.hasPrefix("/")
        var url = "postgres://"
        if let user = effectiveValue("user") { url += encode(user) + "@" }
        if !socket { url += host.contains(":") ? "[\(host)]" : encode(host) }
        if let port = effectiveValue("port") { url += ":" + port }
        url += "/" + encode(databaseName ?? "")
        var query: [String] = socket ? ["host=" + encode(host)] : []
        for option in explicit where !["host", "port", "user", "dbname", "password", "passfile"].contains(option.keyword) {
            query.append(option.keyword + "=" + encode(option.value))
        }
        return query.isEmpty ? url : url + "?" + query.joined(separator: "&")
    }

    /// The password given explicitly, if any (for a child's `PGPASSWORD`).
    public var explicitPassword: String? { explicit.first { $0.keyword == "password" }?.value }

    /// Environment variables that make `pg_dump`/`psql`/`pg_restore` connect to the same place.
    ///
    /// Every explicit setting is passed as its `PG*` variable (the password as `PGPASSWORD`), so
    /// the child's argv carries no secret.
    public var childEnvironment: [String: String] {
        var environment: [String: String] = [:]
        for option in explicit {
            guard let name = option.environmentVariable else { continue }
            environment[name] = option.value
        }
        return environment
    }
}

extension String {
    func trimmingWhitespace() -> String {
        var scalars = Substring(self)
        while let first = scalars.first, first.isWhitespace { scalars.removeFirst() }
        while let last = scalars.last, last.isWhitespace { scalars.removeLast() }
        return String(scalars)
    }
}
