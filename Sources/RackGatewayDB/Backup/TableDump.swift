import RGWCompression
import Foundation
import RGWPostgres

/// The data phase of a backup: `jobs` readers join the exported snapshot and COPY one table at a
/// time (largest first) in chunks; `compressors` threads turn each chunk into a gzip member and
/// append it to the archive; the tables' rows, bytes and fingerprints are summed on the way.
struct TableDump {
    let connections: ConnectionFactory
    let options: BackupOptions
    let progress: BackupProgress

    /// Readers (COPY out, one table at a time, largest first) → bounded queue → compressors → writer.
    func run(catalog: BackupCatalog, snapshot: String, writer: ArchiveWriter) throws -> [ArchiveManifest.Table] {
        let results = TableResults(catalog: catalog)
        progress.begin(tables: catalog.tables.count, estimatedBytes: catalog.tables.reduce(0) { $0 + $1.estimatedBytes })
        // A hand-over: a full chunk waits in its reader, not in the queue (one buffer less in flight).
        let queue = BoundedQueue<Chunk>(capacity: 0)
        let failure = FirstError()
        let nextTable = Counter()
        let readers = DispatchGroup()
        let compressors = DispatchGroup()
        let connections = self.connections
        let chunkSize = options.chunkSize
        let progress = self.progress
        let (codec, level) = (options.codec, options.compressionLevel)
        // Chunk buffers go back to the readers once compressed: as many buffers as chunks in flight,
        // allocated once, instead of a fresh 4 MiB mapping (and its page faults) per chunk.
        let spare = LockedList<[UInt8]>()

        for worker in 0..<max(1, min(options.jobs, max(1, catalog.tables.count))) {
            spawnThread("backup reader \(worker)", group: readers) {
                do {
                    let connection = try connections.open(.backupWorker)
                    try DumpSession.apply(to: connection)
                    try connection.execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                    try connection.execute("SET TRANSACTION SNAPSHOT \(SQL.literal(snapshot))")
                    while !failure.isSet {
                        let index = nextTable.next()
                        guard index < catalog.tables.count else { break }
                        try Self.copyTable(index: index, table: catalog.tables[index], connection: connection, chunkSize: chunkSize,
                                           queue: queue, spare: spare, failure: failure, progress: progress)
                        progress.tableDone(estimated: catalog.tables[index].estimatedBytes)
                    }
                    _ = try? connection.execute("COMMIT")
                } catch {
                    failure.record(Self.explain(error, catalog: catalog))
                    queue.close()
                }
            }
        }
        for worker in 0..<max(1, options.compressors) {
            spawnThread("backup compressor \(worker)", group: compressors) {
                do {
                    let compressor = try MemberCompressor(codec: codec, level: level)
                    while var chunk = queue.take() {
                        if failure.isSet { continue }
                        let member = try compressor.compressShared(chunk.bytes[...])
                        let record = try writer.append(member, kind: .data, table: chunk.table, rows: chunk.rows)
                        results.add(chunk, member: record.index)
                        progress.add(bytesOut: member.bytes.count)
                        chunk.bytes.removeAll(keepingCapacity: true)
                        spare.add(chunk.bytes)
                    }
                } catch {
                    failure.record(error)
                    queue.close()
                }
            }
        }
        readers.wait()
        queue.close()
        compressors.wait()
        if let error = failure.error { throw error }
        return results.finished()
    }

    struct Chunk: @unchecked Sendable {
        var table: Int
        var bytes: [UInt8]
        var rows: Int
        var rowBytes: Int
        var fingerprint: UInt64
    }

    static func copyTable(index: Int, table: BackupCatalog.Table, connection: Connection, chunkSize: Int,
                          queue: BoundedQueue<Chunk>, spare: LockedList<[UInt8]>, failure: FirstError, progress: BackupProgress) throws {
        let header = Array(DataChunk.copyHeader(schema: table.schema, name: table.name, columns: table.columns).utf8)
        func fresh() -> [UInt8] {
            var buffer = spare.popLast() ?? []
            buffer.reserveCapacity(chunkSize + 64 * 1024)
            buffer.append(contentsOf: header)
            return buffer
        }
        var buffer = fresh()
        var rows = 0
        var sum: UInt64 = 0
        func emit() throws {
            let rowBytes = buffer.count - header.count
            buffer.append(contentsOf: DataChunk.terminator)
            progress.add(rows: rows, bytesIn: rowBytes)
            guard queue.put(Chunk(table: index, bytes: buffer, rows: rows, rowBytes: rowBytes, fingerprint: sum)) else {
                throw failure.error ?? ToolError(.failed, "backup stopped")
            }
            buffer = fresh()
            rows = 0
            sum = 0
        }
        try connection.copyOut(DataChunk.copyOutStatement(schema: table.schema, name: table.name, columns: table.columns, filter: table.filter)) { stream in
            while try stream.withNextRow({ raw in
                sum &+= DataChunk.rowHash(raw)
                buffer.append(contentsOf: raw)
            }) {
                rows += 1
                if buffer.count >= chunkSize { try emit() }
            }
        }
        if rows > 0 { try emit() }
        buffer.removeAll(keepingCapacity: true)
        spare.add(buffer)
    }

    /// Errors of a worker, named after the table when the server says which.
    static func explain(_ error: Error, catalog: BackupCatalog) -> Error {
        guard let error = error as? PostgresError else { return error }
        if error.sqlState == "42501" && error.message.contains("row-level security") {
            return ToolError(.failed, "\(error.message): the backup role is subject to row-level security, so the dump would be partial; no archive was written",
                             fix: "Back up as the table owner, a superuser, or a role with BYPASSRLS.")
        }
        if error.isConnectionLoss {
            return ToolError(.failed, "lost the connection to the server during the backup: \(error.message); no archive was written",
                             fix: "Check that the server is up, then run the backup again.")
        }
        return error
    }
}

/// Per-table totals assembled from the chunks as they are written.
final class TableResults: @unchecked Sendable {
    private let lock = NSLock()
    private var tables: [ArchiveManifest.Table]
    private var sums: [UInt64]

    init(catalog: BackupCatalog) {
        tables = catalog.tables.map {
            ArchiveManifest.Table(schema: $0.schema, name: $0.name, columns: $0.columns, rows: 0, bytes: 0, chunks: [], fingerprint: "", filter: $0.filter)
        }
        sums = Array(repeating: 0, count: catalog.tables.count)
    }

    func add(_ chunk: TableDump.Chunk, member: Int) {
        lock.withLock {
            tables[chunk.table].rows += chunk.rows
            tables[chunk.table].bytes += chunk.rowBytes
            tables[chunk.table].chunks.append(member)
            sums[chunk.table] &+= chunk.fingerprint
        }
    }

    func finished() -> [ArchiveManifest.Table] {
        lock.withLock {
            tables.enumerated().map { index, table in
                var table = table
                table.chunks.sort()
                table.fingerprint = ArchiveManifest.fingerprintText(sums[index])
                return table
            }
        }
    }
}
