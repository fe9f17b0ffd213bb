import CLibPQ

extension Connection {
    /// Run `COPY ... TO STDOUT` and hand the rows to `body` through a `CopyOutStream`.
    ///
    /// If `body` throws before the stream is exhausted, the statement is cancelled, the
    /// connection drained back to idle, and the error rethrown.
    public func copyOut<R>(_ sql: String, _ body: (CopyOutStream) throws -> R) throws -> R {
        try checkRun()
        let start = try check(PQexec(handle, sql), sql: sql)
        guard PQresultStatus(start.handle) == PGRES_COPY_OUT else {
            throw PostgresError(kind: .client, message: "statement did not start COPY TO STDOUT: \(sql.prefix(80))")
        }
        let stream = CopyOutStream(connection: self)
        do {
            let value = try body(stream)
            if !stream.finished {
                // The caller stopped early: drain the rest so the connection stays usable.
                try stream.abandon()
            }
            return value
        } catch {
            if !stream.finished { try? stream.abandon() }
            throw error
        }
    }

    /// Run `COPY ... FROM STDIN`; `body` writes COPY text through the `CopyInStream`.
    ///
    /// If `body` throws, the COPY is ended with `PQputCopyEnd(conn, message)` so the server
    /// rolls the statement back, and the caller's error is rethrown. Returns the rows loaded.
    @discardableResult
    public func copyIn(_ sql: String, _ body: (CopyInStream) throws -> Void) throws -> Int {
        try checkRun()
        let start = try check(PQexec(handle, sql), sql: sql)
        guard PQresultStatus(start.handle) == PGRES_COPY_IN else {
            throw PostgresError(kind: .client, message: "statement did not start COPY FROM STDIN: \(sql.prefix(80))")
        }
        let stream = CopyInStream(connection: self)
        do {
            try body(stream)
        } catch {
            let reason = String(describing: error)
            _ = PQputCopyEnd(handle, "rack-gateway-db aborted the COPY: \(reason)")
            drainResults()
            throw error
        }
        guard PQputCopyEnd(handle, nil) == 1 else { throw connectionError() }
        return try finishCopy(sql: sql)
    }

    /// Collect the final result of a COPY; throws the server's error if it failed.
    func finishCopy(sql: String) throws -> Int {
        var firstError: PostgresError?
        var rows = 0
        while let result = PQgetResult(handle) {
            let owned = QueryResult(result)
            if PQresultStatus(result) == PGRES_COMMAND_OK {
                rows = owned.affectedRows ?? 0
            } else if firstError == nil {
                firstError = Self.error(from: result, connection: handle)
            }
        }
        if let firstError { throw stopped(firstError) }
        if PQstatus(handle) != CONNECTION_OK { throw connectionError() }
        return rows
    }

    func drainResults() {
        while let result = PQgetResult(handle) { PQclear(result) }
    }
}

/// Rows of a running `COPY ... TO STDOUT`, one per call, in the server's COPY text format.
public final class CopyOutStream {
    private let connection: Connection
    public private(set) var finished = false
    public private(set) var rowCount = 0

    init(connection: Connection) { self.connection = connection }

    /// Append the next row, with its trailing newline, to `buffer`; returns its length, or nil at the end.
    public func nextRow(appendingTo buffer: inout [UInt8]) throws -> Int? {
        var length = 0
        let more = try withNextRow { row in
            buffer.append(contentsOf: row)
            length = row.count
        }
        return more ? length : nil
    }

    /// Hand the next row, with its trailing newline, to `body` without copying it; returns false at
    /// the end. The bytes are valid only during the call (libpq's buffer, freed right after).
    public func withNextRow(_ body: (UnsafeRawBufferPointer) throws -> Void) throws -> Bool {
        guard !finished else { return false }
        var data: UnsafeMutablePointer<CChar>?
        let length = PQgetCopyData(connection.handle, &data, 0)
        if length > 0, let data {
            defer { PQfreemem(data) }
            rowCount += 1
            try body(UnsafeRawBufferPointer(start: data, count: Int(length)))
            return true
        }
        finished = true
        if length == -1 {
            _ = try connection.finishCopy(sql: "COPY")
            return false
        }
        let error = connection.stopped(connection.connectionError())
        connection.drainResults()
        throw error
    }

    /// Stop early: cancel the COPY on the server and drain what is in flight.
    func abandon() throws {
        connection.makeCanceller()?.cancel()
        var data: UnsafeMutablePointer<CChar>?
        while true {
            let length = PQgetCopyData(connection.handle, &data, 0)
            if let pointer = data { PQfreemem(pointer); data = nil }
            if length < 0 { break }
        }
        finished = true
        connection.drainResults()
    }
}

/// The sending side of a running `COPY ... FROM STDIN`.
public final class CopyInStream {
    private let connection: Connection

    init(connection: Connection) { self.connection = connection }

    /// Send bytes of COPY text (any split; libpq buffers them).
    public func write(_ bytes: ArraySlice<UInt8>) throws {
        let status = bytes.withUnsafeBytes { raw -> Int32 in
            guard let base = raw.baseAddress, raw.count > 0 else { return 1 }
            return PQputCopyData(connection.handle, base.assumingMemoryBound(to: CChar.self), Int32(raw.count))
        }
        guard status == 1 else { throw connection.stopped(connection.connectionError()) }
    }

    public func write(_ bytes: [UInt8]) throws { try write(bytes[...]) }

    public func write(_ text: String) throws { try write(Array(text.utf8)) }
}
