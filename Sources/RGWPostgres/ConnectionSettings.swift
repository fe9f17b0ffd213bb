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

    /// The `PG*` variables that say which server or database libpq connects to. With none of them
    /// (and no URL) libpq would try the local socket as the login user, which is never what a
    /// scheduled job meant: that is "no database is configured".
    public static let locatingVariables = ["PGHOST", "PGHOSTADDR", "PGPORT", "PGDATABASE", "PGUSER", "PGSERVICE"]

    /// Resolve the connection in the documented order: `--database-url`, `RGW_DATABASE_URL`,
    /// `DATABASE_URL`, then libpq's own `PG*` variables; with none of them set, a `.notConfigured`
    /// error that says so.
    public static func resolve(databaseURL: String?, environment: [String: String]) throws -> ConnectionSettings {
        if let url = databaseURL, !url.isEmpty {
            return try ConnectionSettings(conninfo: url, source: "--database-url")
        }
        for name in ["RGW_DATABASE_URL", "DATABASE_URL"] {
            if let url = environment[name], !url.isEmpty {
                return try ConnectionSettings(conninfo: url, source: name)
            }
        }
        guard locatingVariables.contains(where: { !(environment[$0] ?? "").isEmpty }) else {
            throw notConfigured(databaseURL: databaseURL, environment: environment)
        }
        return try ConnectionSettings(conninfo: "", source: "PG* environment variables")
    }

    /// "no database is configured", naming what was looked at (and what was set but empty), with the fix.
    static func notConfigured(databaseURL: String?, environment: [String: String]) -> PostgresError {
        let names = ["RGW_DATABASE_URL", "DATABASE_URL"] + locatingVariables
        let empty = (databaseURL != nil ? ["--database-url"] : []) + names.filter { environment[$0]?.isEmpty == true }
        var message = "none of --database-url, \(names.dropLast().joined(separator: ", ")) or \(names.last!) is set"
        if !empty.isEmpty { message += " (\(empty.joined(separator: ", ")) \(empty.count == 1 ? "is" : "are") empty)" }
        let unlocating = environment.keys.filter { $0.hasPrefix("PG") && !locatingVariables.contains($0) && environment[$0]?.isEmpty == false }.sorted()
        if !unlocating.isEmpty { message += "; \(unlocating.joined(separator: ", ")) alone do\(unlocating.count == 1 ? "es" : "") not say which server" }
        return PostgresError(
            kind: .notConfigured, message: message,
            hint: "Set RGW_DATABASE_URL=postgres://USER:PASSWORD@HOST:5432/DBNAME and export it (an env file sourced "
                + "by cron or a script needs `set -a; . /etc/rack-gateway-db.env; set +a`), or pass --database-url URL, "
                + "or set PGHOST and PGDATABASE (with PGUSER, and PGPASSWORD or ~/.pgpass).")
    }

    /// The same settings, their work belonging to `cancellation`.
    public func cancelled(by cancellation: Cancellation?) -> ConnectionSettings {
        var settings = self
        settings.cancellation = cancellation
        return settings
    }

    /// Parse a `postgres://` URL or a `key=value` connection string (libpq's own parser).
    ///
    /// A URL whose user name, password or database name holds a character it should have
    /// percent-encoded is refused first (`checkEncoding`); libpq's own complaints are passed on
    /// with every quoted piece that is or may be part of a password hidden.
    public init(conninfo: String, source: String = "connection string") throws {
        self.source = source
        self.conninfo = conninfo
        try Self.checkEncoding(conninfo, source: source)
        var errorMessage: UnsafeMutablePointer<CChar>?
        guard let options = PQconninfoParse(conninfo, &errorMessage) else {
            var message = "libpq could not parse it"
            if let errorMessage {
                message = Self.redact(Self.hidingSecrets(String(cString: errorMessage).trimmingWhitespace(), of: conninfo), secret: conninfo)
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
                    problem = "invalid port \(Self.shown(String(part), of: conninfo)) (a number from 1 to 65535)"
                    break
                }
            }
        }
        let sslModes = ["disable", "allow", "prefer", "require", "verify-ca", "verify-full"]
        if let mode = explicit.first(where: { $0.keyword == "sslmode" })?.value, !sslModes.contains(mode) {
            problem = "invalid sslmode \(Self.shown(mode, of: conninfo)) (one of \(sslModes.joined(separator: ", ")))"
        }
        if let problem { throw Self.malformed(problem, source: source) }
    }

    static func malformed(_ problem: String, source: String, fix: String? = nil) -> PostgresError {
        PostgresError(kind: .malformedConnectionString, message: "\(problem) (from \(source))",
                      hint: fix ?? "Give it as postgres://user:password@host:port/dbname?sslmode=..., with @ # / ? : % in the "
                          + "user name or password percent-encoded (\(percentEncodings)).")
    }

    /// How to write the characters a URL's user name or password cannot hold as they are.
    static let percentEncodings = "@ as %40, # as %23, / as %2F, ? as %3F, : as %3A, % as %25"

    /// Refuse a `postgres://` URL that libpq and other URL parsers would read differently.
    ///
    /// libpq takes a URL's user name and password up to its *first* `@` (none when a `/` comes
    /// first) and the database name up to a `?`; RFC 3986 parsers (the application's, Python's,
    /// `psql`'s users' browsers) end the host part at the first `/`, `?` or `#` and the user part at
    /// its *last* `@`. A password with an `@`, `#`, `/`, `?` or a stray `%` not percent-encoded (RDS
    /// generates such passwords) is read differently by each, and libpq then shows pieces of it as a
    /// host or database name ("could not translate host name ..."). So: no `#` anywhere; where libpq
    /// sees a user part, the URL's host part has exactly that one `@`; no `@` or second `/` in the
    /// database name; every `%` in the user part starts an escape. The message quotes nothing of the URL.
    static func checkEncoding(_ conninfo: String, source: String) throws {
        guard conninfo.hasPrefix("postgresql://") || conninfo.hasPrefix("postgres://"), let scheme = conninfo.range(of: "://") else { return }
        let rest = conninfo[scheme.upperBound...]
        let endOfHostPart = rest.firstIndex { $0 == "/" || $0 == "?" } ?? rest.endIndex
        let hostPart = rest[..<endOfHostPart]
        let path = rest[endOfHostPart...].prefix { $0 != "?" }
        var ambiguous = rest.contains("#") || path.contains("@") || path.dropFirst().contains("/")
        if let at = rest.firstIndex(of: "@"), at < (rest.firstIndex(of: "/") ?? rest.endIndex) {
            // libpq's user part ends at this `@`: another parser's must too (no `?` before it, no
            // second `@` after it in the host part).
            let userPart = rest[..<at]
            ambiguous = ambiguous || hostPart.filter { $0 == "@" }.count != 1 || !percentEscapesAreWhole(userPart)
        }
        guard ambiguous else { return }
        throw malformed(
            "a character in its user name, password or database name is not percent-encoded (one of @ # / ? %; "
                + "the URL is not shown, since any part of it may be the password)",
            source: source,
            fix: "Percent-encode them in the password (and user name): \(percentEncodings); e.g. "
                + "postgres://USER:p%40ss%23word@HOST:5432/DBNAME for the password p@ss#word. Or leave the password out "
                + "of the URL (postgres://USER@HOST:5432/DBNAME) and set PGPASSWORD, or use ~/.pgpass.")
    }

    /// Whether every `%` in `text` is followed by two hex digits.
    static func percentEscapesAreWhole(_ text: Substring) -> Bool {
        var characters = text[...]
        while let percent = characters.firstIndex(of: "%") {
            let escape = characters[percent...].dropFirst().prefix(2)
            guard escape.count == 2, escape.allSatisfy(\.isHexDigit) else { return false }
            characters = characters[percent...].dropFirst(3)
        }
        return true
    }

    /// The parts of `conninfo` that are or may be part of a password: in a URL everything before
    /// its last `@` (user name and password, however mis-encoded), and every `password=` value to
    /// the end of the string.
    static func secretRanges(of conninfo: String) -> [Range<String.Index>] {
        var ranges: [Range<String.Index>] = []
        if let scheme = conninfo.range(of: "://"), let at = conninfo[scheme.upperBound...].lastIndex(of: "@") {
            ranges.append(scheme.upperBound..<at)
        }
        for keyword in conninfo.ranges(of: "password=") {
            ranges.append(keyword.upperBound..<conninfo.endIndex)
        }
        return ranges
    }

    /// `value` in quotes for a message, unless it is or may be part of a password (it overlaps a
    /// secret part of `conninfo`, or is not found in it as written).
    static func shown(_ value: String, of conninfo: String) -> String {
        // Empty, or one character of libpq's own syntax (`missing "=" after ...`).
        if value.isEmpty || (value.count == 1 && !value.first!.isLetter && !value.first!.isNumber) { return "\"\(value)\"" }
        let secrets = secretRanges(of: conninfo)
        let places = conninfo.ranges(of: value)
        let secret = places.isEmpty || places.contains { place in secrets.contains { $0.overlaps(place) } }
        return secret ? "(a value not shown: it may be part of the password)" : "\"\(value)\""
    }

    /// libpq's message with each `"quoted"` piece that is or may be part of a password replaced
    /// (libpq quotes a mis-encoded password as a host, a port, a percent-escape or a whole URI).
    static func hidingSecrets(_ message: String, of conninfo: String) -> String {
        let parts = message.split(separator: "\"", omittingEmptySubsequences: false)
        guard parts.count >= 3 else { return message }
        var result = ""
        for (index, part) in parts.enumerated() {
            if index % 2 == 0 {
                result += part
            } else if index == parts.count - 1 {
                result += "\"" + part  // an unpaired quote
            } else {
                result += shown(String(part), of: conninfo)
            }
        }
        return result
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

    /// The `PG*` variable libpq reads for `keyword` (as its own list of options names it).
    static func environmentVariable(of keyword: String) -> String? {
        guard let defaults = PQconndefaults() else { return nil }
        defer { PQconninfoFree(defaults) }
        var cursor = defaults
        while let name = cursor.pointee.keyword {
            if String(cString: name) == keyword { return cursor.pointee.envvar.map { String(cString: $0) } }
            cursor += 1
        }
        return nil
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

    /// The same place, every session in it read-only from its start (`options=-c
    /// default_transaction_read_only=on`, after any options given): what `drill --existing-url`
    /// and the children it runs connect with, so nothing they do can write to that database.
    public func readOnly() -> ConnectionSettings {
        let setting = "-c default_transaction_read_only=on"
        let given = explicit.first { $0.keyword == "options" }?.value
        var options = explicit.filter { $0.keyword != "options" }
        options.append(Option(keyword: "options", value: given.map { "\($0) \(setting)" } ?? setting, environmentVariable: Self.environmentVariable(of: "options")))
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
