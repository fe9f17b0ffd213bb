import CLibPQ

/// The rows of one statement's result, in text format. Owns its `PGresult`.
public final class QueryResult {
    let handle: OpaquePointer

    init(_ handle: OpaquePointer) { self.handle = handle }
    deinit { PQclear(handle) }

    public var rowCount: Int { Int(PQntuples(handle)) }
    public var columnCount: Int { Int(PQnfields(handle)) }

    public var columnNames: [String] {
        (0..<columnCount).map { String(cString: PQfname(handle, Int32($0))) }
    }

    /// Rows affected by INSERT/UPDATE/DELETE/COPY, when the command reports it.
    public var affectedRows: Int? { Int(String(cString: PQcmdTuples(handle))) }

    /// The text value at `row`, `column`; nil for SQL NULL.
    public func value(_ row: Int, _ column: Int) -> String? {
        if PQgetisnull(handle, Int32(row), Int32(column)) == 1 { return nil }
        return String(cString: PQgetvalue(handle, Int32(row), Int32(column)))
    }

    /// Every row as an array of optional strings.
    public var rows: [[String?]] {
        (0..<rowCount).map { row in (0..<columnCount).map { value(row, $0) } }
    }

    /// The first column of the first row, if any.
    public var scalar: String? { rowCount > 0 && columnCount > 0 ? value(0, 0) : nil }
}
