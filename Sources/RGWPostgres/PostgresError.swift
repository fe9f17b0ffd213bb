/// An error from libpq or the server, keeping what PostgreSQL said about it.
///
/// The description never contains a password or a full connection string: connection
/// errors are reported with the redacted target (`user@host:port/db`) only.
public struct PostgresError: Error, CustomStringConvertible, Sendable {
    public enum Kind: Sendable, Equatable {
        /// The connection could not be made (unreachable host, authentication, missing database).
        case connection
        /// The server rejected a statement; `sqlState` says why.
        case server
        /// The connection broke or libpq reported a failure outside a server error.
        case client
        /// A connection string or URL could not be parsed (`hint` says how to write it).
        case malformedConnectionString
        /// No URL and no `PG*` variable says which database to use (`hint` says how to).
        case notConfigured
        /// The run was stopped (Ctrl-C, SIGTERM, SIGHUP, a stall) and this statement with it.
        case interrupted
    }

    /// Why a connection could not be made, as far as libpq's message says.
    public enum ConnectionFailure: Sendable, Equatable {
        /// The server refused the user name or password.
        case authentication
        /// No server answered: refused, no such host, a timeout, no route.
        case unreachable
        /// The server answered, and the database or role does not exist.
        case unknownName

        /// What to check, as a sentence.
        public var fix: String {
            switch self {
            case .authentication: "Check the user name and password in the database URL or PGPASSWORD."
            case .unreachable: "Check the host and port, and that the server is running and accepts TCP connections."
            case .unknownName: "Check the database and role names."
            }
        }
    }

    public var kind: Kind
    /// Set for a connection that could not be made when libpq's message says why.
    public var connectionFailure: ConnectionFailure?
    /// Five-character SQLSTATE code (`42P01`), when the server sent one.
    public var sqlState: String?
    public var message: String
    public var detail: String?
    public var hint: String?
    /// 1-based character position in the statement text, when the server sent one.
    public var position: Int?
    /// Where the error happened (`PL/pgSQL function ...`), when the server sent one.
    public var context: String?
    /// The redacted target the error concerns, such as `postgres@127.0.0.1:5432/rgw`.
    public var target: String?

    public init(
        kind: Kind, sqlState: String? = nil, message: String, detail: String? = nil,
        hint: String? = nil, position: Int? = nil, context: String? = nil, target: String? = nil
    ) {
        self.kind = kind
        self.sqlState = sqlState
        self.message = message
        self.detail = detail
        self.hint = hint
        self.position = position
        self.context = context
        self.target = target
    }

    /// SQLSTATE class 08 (connection exception) or a broken connection seen by libpq.
    public var isConnectionLoss: Bool {
        if kind == .connection { return true }
        if let sqlState, sqlState.hasPrefix("08") || sqlState == "57P01" || sqlState == "57P02" || sqlState == "57P03" {
            return true
        }
        return kind == .client
    }

    /// The description without the advice (the connection failure's, the hint): a report gives
    /// that as the fix (`fix`).
    public var summary: String { text(advice: false) }

    /// What to do: the connection failure's advice, else the hint the server or parser gave.
    public var fix: String? { connectionFailure?.fix ?? hint }

    public var description: String { text(advice: true) }

    func text(advice: Bool) -> String {
        var text: String
        switch kind {
        case .connection:
            text = "cannot connect to PostgreSQL"
            if let target { text += " at \(target)" }
            text += ": \(message)"
            if advice, let fix = connectionFailure?.fix { text += " (\(fix.prefix(1).lowercased() + fix.dropFirst().dropLast()))" }
        case .malformedConnectionString:
            text = "invalid database URL: \(message)"
            if advice, let hint { return text + "\n" + hint }
            if hint != nil { return text }
        case .notConfigured:
            text = "no database is configured: \(message)"
            if advice, let hint { return text + "\n" + hint }
            if hint != nil { return text }
        case .server, .client, .interrupted:
            text = message
            if let sqlState { text += " (SQLSTATE \(sqlState))" }
        }
        if let detail { text += "\nDETAIL: \(detail)" }
        if advice, let hint { text += "\nHINT: \(hint)" }
        return text
    }
}
