import CLibPQ
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One libpq connection. Not thread-safe: a connection belongs to the thread that uses it.
///
/// Statements run in text format. `execute` uses the simple-query protocol (several
/// statements in one string, no parameters); `query` uses the extended protocol with `$1`
/// parameters, so values never need quoting.
public final class Connection {
    let handle: OpaquePointer
    public let settings: ConnectionSettings
    /// Set when this connection does a run's work (opened before the run was stopped): the run's
    /// cancellation then cancels its statement, and it runs no further one.
    private var stopID: Int?

    /// Connect, with `application_name` defaulting to `rack-gateway-db`.
    public init(settings: ConnectionSettings, applicationName: String = "rack-gateway-db") throws {
        self.settings = settings
        let keywords = ["dbname", "fallback_application_name"]
        let values = [settings.conninfo, applicationName]
        let connection: OpaquePointer? = withCStringArray(keywords) { keywordPointers in
            withCStringArray(values) { valuePointers in
                PQconnectdbParams(keywordPointers, valuePointers, 1)
            }
        }
        guard let connection else {
            throw PostgresError(kind: .connection, message: "out of memory", target: settings.description)
        }
        guard PQstatus(connection) == CONNECTION_OK else {
            let message = String(cString: PQerrorMessage(connection))
            PQfinish(connection)
            var error = PostgresError(kind: .connection, message: Self.oneLine(message), target: settings.description)
            error.connectionFailure = Self.connectionFailure(message)
            throw error
        }
        self.handle = connection
        PQsetNoticeProcessor(connection, { _, _ in }, nil)
        if let cancellation = settings.cancellation, let canceller = makeCanceller() {
            do {
                stopID = try cancellation.begin("a connection to \(settings.description)") { canceller.cancel() }
            } catch {
                // Every property is set: deinit runs and closes the connection.
                throw PostgresError(kind: .interrupted, message: String(describing: error), target: settings.description)
            }
        }
    }

    deinit {
        settings.cancellation?.unregister(stopID)
        PQfinish(handle)
    }

    /// The run this connection works for, once that run is stopped; nil while it runs, and for a
    /// connection that does no run's work (opened for a clean-up, or outside any run).
    private var stoppedRun: Cancellation? {
        guard stopID != nil, let cancellation = settings.cancellation, cancellation.isCancelled else { return nil }
        return cancellation
    }

    /// Throw when the run this connection works for was stopped (a statement after Ctrl-C).
    func checkRun() throws {
        guard let run = stoppedRun else { return }
        throw PostgresError(kind: .interrupted, message: run.description, target: settings.description)
    }

    /// libpq's message, on one line.
    static func oneLine(_ raw: String) -> String {
        raw.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters() }.filter { !$0.isEmpty }.joined(separator: "; ")
    }

    /// What libpq's message says went wrong, when it says (the description adds what to check).
    static func connectionFailure(_ message: String) -> PostgresError.ConnectionFailure? {
        if message.contains("password authentication failed") || message.contains("no password supplied") {
            return .authentication
        } else if message.contains("Connection refused") || message.contains("could not translate host name")
            || message.contains("No such file or directory")
            || message.contains("timeout expired") || message.contains("No route to host")
        {
            return .unreachable
        } else if message.contains("does not exist") {
            return .unknownName
        }
        return nil
    }

    // MARK: Session facts

    /// The server version as libpq reports it, e.g. 150018 for 15.18.
    public var serverVersionNumber: Int { Int(PQserverVersion(handle)) }

    /// The server version as `major.minor`.
    public var serverVersion: String {
        let number = serverVersionNumber
        return number >= 100_000 ? "\(number / 10_000).\(number % 10_000)" : "\(number / 10_000).\(number / 100 % 100).\(number % 100)"
    }

    public var serverMajorVersion: Int { serverVersionNumber / 10_000 }

    /// Whether the connection is encrypted with TLS.
    public var usesTLS: Bool { PQsslInUse(handle) == 1 }

    /// A TLS attribute such as `protocol` or `cipher`, when TLS is in use.
    public func tlsAttribute(_ name: String) -> String? {
        guard let value = PQsslAttribute(handle, name) else { return nil }
        return String(cString: value)
    }

    public var databaseName: String { String(cString: PQdb(handle)) }
    public var userName: String { String(cString: PQuser(handle)) }
    public var host: String { String(cString: PQhost(handle)) }
    public var port: String { String(cString: PQport(handle)) }
    public var backendPID: Int32 { PQbackendPID(handle) }
    public var isAlive: Bool { PQstatus(handle) == CONNECTION_OK }

    // MARK: Statements

    /// Run one or more statements with the simple-query protocol; returns the last result.
    @discardableResult
    public func execute(_ sql: String) throws -> QueryResult {
        try checkRun()
        return try check(PQexec(handle, sql), sql: sql)
    }

    /// Run one statement with `$n` parameters sent separately from the text.
    @discardableResult
    public func query(_ sql: String, _ parameters: [String?] = []) throws -> QueryResult {
        try checkRun()
        if parameters.isEmpty {
            return try check(PQexecParams(handle, sql, 0, nil, nil, nil, nil, 0), sql: sql)
        }
        let result = withOptionalCStringArray(parameters) { pointers in
            PQexecParams(handle, sql, Int32(parameters.count), nil, pointers, nil, nil, 0)
        }
        return try check(result, sql: sql)
    }

    /// Turn a `PGresult` into a `QueryResult`, or throw the error it carries.
    func check(_ result: OpaquePointer?, sql: String) throws -> QueryResult {
        guard let result else { throw stopped(connectionError()) }
        let owned = QueryResult(result)
        switch PQresultStatus(result) {
        case PGRES_COMMAND_OK, PGRES_TUPLES_OK, PGRES_EMPTY_QUERY, PGRES_COPY_OUT, PGRES_COPY_IN:
            return owned
        default:
            throw stopped(Self.error(from: result, connection: handle))
        }
    }

    /// A statement that failed because its run was stopped (the server's "canceling statement due
    /// to user request") says so, instead of looking like a failure of its own.
    func stopped(_ error: PostgresError) -> PostgresError {
        guard let run = stoppedRun else { return error }
        return PostgresError(kind: .interrupted, message: run.description, detail: error.message, target: settings.description)
    }

    func connectionError() -> PostgresError {
        let message = String(cString: PQerrorMessage(handle)).trimmingWhitespace()
        return PostgresError(
            kind: .client, message: message.isEmpty ? "connection to the server was lost" : message,
            target: settings.description
        )
    }

    static func error(from result: OpaquePointer, connection: OpaquePointer) -> PostgresError {
        func field(_ code: Int32) -> String? {
            guard let value = PQresultErrorField(result, code) else { return nil }
            return String(cString: value)
        }
        let sqlState = field(Int32(UInt8(ascii: "C")))
        let primary = field(Int32(UInt8(ascii: "M")))
            ?? String(cString: PQresultErrorMessage(result)).trimmingWhitespace()
        let message = primary.isEmpty ? String(cString: PQerrorMessage(connection)).trimmingWhitespace() : primary
        return PostgresError(
            kind: sqlState == nil ? .client : .server,
            sqlState: sqlState,
            message: message.isEmpty ? "connection to the server was lost" : message,
            detail: field(Int32(UInt8(ascii: "D"))),
            hint: field(Int32(UInt8(ascii: "H"))),
            position: field(Int32(UInt8(ascii: "P"))).flatMap { Int($0) },
            context: field(Int32(UInt8(ascii: "W")))
        )
    }

    /// Ask the server to cancel the statement running on this connection (safe from another thread).
    public func makeCanceller() -> QueryCanceller? {
        guard let cancel = PQgetCancel(handle) else { return nil }
        return QueryCanceller(cancel)
    }
}

/// Cancels the running statement of one connection; usable from any thread.
public final class QueryCanceller: @unchecked Sendable {
    private let handle: OpaquePointer

    init(_ handle: OpaquePointer) { self.handle = handle }
    deinit { PQfreeCancel(handle) }

    @discardableResult
    public func cancel() -> Bool {
        var buffer = [CChar](repeating: 0, count: 256)
        return PQcancel(handle, &buffer, Int32(buffer.count)) == 1
    }
}

extension Substring {
    func trimmingCharacters() -> String { String(self).trimmingWhitespace() }
}

func withCStringArray<R>(_ strings: [String], _ body: (UnsafePointer<UnsafePointer<CChar>?>) -> R) -> R {
    withOptionalCStringArray(strings.map { Optional($0) }, body)
}

/// Calls `body` with a NULL-terminated array of C strings (nil entries stay NULL) that lives for the call.
func withOptionalCStringArray<R>(_ strings: [String?], _ body: (UnsafePointer<UnsafePointer<CChar>?>) -> R) -> R {
    let storage: [UnsafeMutablePointer<CChar>?] = strings.map { $0.map { strdup($0)! } }
    defer { storage.forEach { free($0) } }
    var pointers: [UnsafePointer<CChar>?] = storage.map { $0.map { UnsafePointer($0) } }
    pointers.append(nil)
    return pointers.withUnsafeBufferPointer { body($0.baseAddress!) }
}
