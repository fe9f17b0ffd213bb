import RGWCompression
import Foundation
import RGWPostgres

/// The load: data chunks over `jobs` COPY connections with the index builds beside them, then the
/// large objects.
extension ArchiveLoader {
    /// Worker state: a connection and the buffers reused for every chunk.
    final class DataWorker {
        let connection: Connection
        let decompressor: MemberDecompressor
        var compressed: [UInt8] = []
        var text: [UInt8] = []
        init(connection: Connection, codec: MemberCodec) throws {
            self.connection = connection
            decompressor = try MemberDecompressor(codec: codec)
        }
    }

    /// A chunk decompressed and checked, ready to send: its rows lie in the worker's `text`.
    struct PreparedChunk {
        var member: ArchiveManifest.Member
        var rows: Int
        var sum: UInt64
        var body: Range<Int>
    }

    static let sendSlice = 256 * 1024

    /// Tables whose statistics can be gathered once their own rows are in: plain tables without
    /// inheritance children (a parent's ANALYZE also samples its children, which may still be loading).
    func earlyAnalyzable(_ connection: Connection) throws -> Set<String> {
        Set(try connection.query("""
            SELECT n.nspname, c.relname FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
            WHERE c.relkind = 'r' AND NOT EXISTS (SELECT FROM pg_catalog.pg_inherits i WHERE i.inhparent = c.oid)
              AND \(CatalogSQL.userSchemaFilter)
            """).rows.map { SQL.qualified($0[0]!, $0[1]!) })
    }

    /// A load worker: one connection that loads chunks and runs builds, with the buffers of one and
    /// the settings of the other.
    final class LoadWorker {
        let data: DataWorker
        let schema: SchemaWorker
        init(connection: Connection, codec: MemberCodec) throws {
            data = try DataWorker(connection: connection, codec: codec)
            schema = SchemaWorker(connection: connection)
        }
    }

    /// The data chunks and the index and constraint builds over `jobs` connections, as one queue
    /// (`LoadQueue`): the biggest tables' chunks first, each table's builds as soon as its last
    /// chunk is in, the dearest build first; a table that one connection loads whole comes as one
    /// item, truncated and loaded frozen in one transaction (`TableLoad`). A worker that loads a
    /// table's last chunk checks the table's rows and fingerprint and runs its ANALYZE right away.
    func loadDataAndBuilds(_ plan: RestorePlan, freezable: Set<Int>) throws {
        let manifest = self.manifest
        let members = plan.data
        progress.beginData(chunks: members.count, bytes: manifest.totalBytes, builds: plan.queued.count)
        let totals = TableTotals(tables: manifest.tables.count)
        for member in members { totals.expect(table: member.table!) }
        let loads = TableLoad.loads(members, manifest: manifest, freezable: freezable, jobs: jobs)
        let queue = RestoreQueue(chunks: loads.map { ($0, $0.table) }, builds: plan.queued)
        let prefetcher = reader.isRemote ? MemberPrefetcher(reader: reader, members: members) : nil
        defer { prefetcher?.stop() }
        let deadlocked = LockedList<DumpScript.Entry>()
        let failure = FirstError()
        let group = DispatchGroup()
        for number in 0..<jobs {
            spawnThread("restore load \(number)", group: group) { [self] in
                do {
                    let connection = try connect("data")
                    // Each chunk (or frozen table) commits on its own; the restore's later commits flush them all.
                    try connection.execute("SET synchronous_commit = off")
                    try setMaintenanceWorkMem(connection)
                    let worker = try LoadWorker(connection: connection, codec: reader.codec)
                    while let item = queue.take() {
                        defer { queue.done(item) }
                        do {
                            switch item {
                            case .chunk(let tableLoad, _):
                                try load(tableLoad, worker: worker.data, totals: totals, analyzable: plan.analyzeEarly, prefetcher: prefetcher)
                            case .build(let entry, _):
                                try runBeside(entry, on: worker.schema, deadlocked: deadlocked)
                            }
                        } catch {
                            // Stopped before the item counts as done (the defer runs after this): a
                            // refused chunk never releases its table's index builds to another worker.
                            queue.stop()
                            throw error
                        }
                    }
                } catch {
                    failure.record(error)
                    queue.stop()
                }
            }
        }
        group.wait()
        if let error = failure.error { throw error }
        let problems = totals.mismatches(against: manifest, place: "loaded from the archive")
        if !problems.isEmpty {
            throw ToolError(.mismatch, "the archive's data does not match its manifest: " + problems.prefix(5).joined(separator: "; "))
        }
        if !deadlocked.items.isEmpty {
            try runAgainAlone(deadlocked.items, on: SchemaWorker(connection: try connect("post-data")))
        }
    }

    /// One chunk: read, decompress and check it, COPY it in; after a table's last chunk, check the
    /// table against the manifest and analyze it. With `freeze`, in the transaction that truncated
    /// the table (`load(_ load: TableLoad, ...)`).
    func load(_ member: ArchiveManifest.Member, worker: DataWorker, totals: TableTotals, analyzable: Set<String>,
              prefetcher: MemberPrefetcher?, freeze: Bool = false) throws {
        let chunk = try prepare(member, worker: worker, prefetcher: prefetcher)
        let table = manifest.tables[member.table!]
        let copied: Int
        do {
            let statement = DataChunk.copyInStatement(schema: table.schema, name: table.name, columns: table.columns) + (freeze ? " (FREEZE)" : "")
            copied = try worker.connection.copyIn(statement) { stream in
                var start = chunk.body.lowerBound
                while start < chunk.body.upperBound {
                    let end = min(start + Self.sendSlice, chunk.body.upperBound)
                    try stream.write(worker.text[start..<end])
                    start = end
                }
            }
        } catch let error as PostgresError {
            throw ToolError(.failed, "loading \(ArchiveVerifier.describe(member, in: manifest)) failed, its \(freeze ? "table's load" : "COPY") was rolled back: \(error.description)",
                            fix: error.isConnectionLoss ? "Check that the target server is up, then restore again with --clean." : nil)
        }
        // The server's own count (`COPY n`): a row it did not take (an end-of-data marker, a trigger
        // of a crafted pre-data) must not pass as loaded.
        guard copied == chunk.rows else {
            throw ToolError(.mismatch, "the server loaded \(copied) rows of \(ArchiveVerifier.describe(member, in: manifest)), which holds \(chunk.rows); the restore stopped there",
                            fix: Self.corruptFix)
        }
        let complete = totals.add(table: member.table!, rows: chunk.rows, sum: chunk.sum)
        progress.chunkDone(rows: chunk.rows, bytes: chunk.body.count)
        guard complete else { return }
        let problems = totals.mismatches(against: manifest, place: "loaded from the archive", only: member.table!)
        if !problems.isEmpty {
            throw ToolError(.mismatch, "the archive's data does not match its manifest: " + problems.joined(separator: "; "))
        }
        let name = SQL.qualified(table.schema, table.name)
        // A frozen load's ANALYZE comes after its COMMIT (`load(_ load: TableLoad, ...)`).
        if analyzable.contains(name), !freeze {
            try analyzeLoaded(name, on: worker.connection)
        }
    }

    /// ANALYZE a table just loaded through `connection`, once its load committed. From PostgreSQL
    /// 15 the session first flushes its pending row counts (`pg_stat_force_next_flush`, flushed at
    /// the end of that statement): sent after the ANALYZE, they would count the loaded rows as
    /// changed since it, and autovacuum would analyze the table again a minute later. A role that
    /// may not call it (EXECUTE revoked) skips it and analyzes as before.
    func analyzeLoaded(_ name: String, on connection: Connection) throws {
        if connection.serverVersionNumber >= 150000 {
            _ = try? connection.execute("""
                SELECT pg_catalog.pg_stat_force_next_flush()
                WHERE pg_catalog.has_function_privilege('pg_catalog.pg_stat_force_next_flush()', 'EXECUTE')
                """)
        }
        try connection.execute("ANALYZE \(name)")
        analyzedEarly.add(name)
    }

    /// The large objects' contents (their metadata came with pre-data), over `jobs` connections:
    /// each member checked against the manifest (CRC32, size) and every line of it against the one
    /// statement the backup writes (`LargeObjects.scan`) before any of it runs as one batch; the
    /// members' sums against the manifest's once all are in.
    func loadLargeObjects(_ members: [ArchiveManifest.Member]) throws {
        progress.begin(phase: "large objects", steps: members.count)
        let totals = LockedList<(bytes: Int, sum: UInt64)>()
        try forEachInParallel(members, workers: jobs, name: "restore large objects", connect: { [self] in
            try DataWorker(connection: try connect("large objects"), codec: reader.codec)
        }) { [self] worker, member in
            try decompress(member, compressed: &worker.compressed, into: &worker.text, decompressor: worker.decompressor)
            switch LargeObjects.scan(worker.text) {
            case .success(let (_, bytes, sum)): totals.add((bytes, sum))
            case .failure(let problem):
                throw ToolError(.mismatch, "\(ArchiveVerifier.describe(member, in: manifest)): \(problem); the restore stopped there")
            }
            do {
                try worker.connection.execute(String(decoding: worker.text, as: UTF8.self))
            } catch let error as PostgresError {
                throw ToolError(.failed, "loading \(ArchiveVerifier.describe(member, in: manifest)) failed: \(error.description)")
            }
            progress.stepDone()
        }
        let bytes = totals.items.reduce(0) { $0 + $1.bytes }
        let sum = totals.items.reduce(UInt64(0)) { $0 &+ $1.sum }
        if let recorded = manifest.largeObjects, bytes != recorded.bytes || ArchiveManifest.fingerprintText(sum) != recorded.fingerprint {
            throw ToolError(.mismatch, "the archive's large objects do not match its manifest (\(bytes) bytes, fingerprint \(ArchiveManifest.fingerprintText(sum)); recorded \(recorded.bytes), \(recorded.fingerprint))")
        }
    }

    /// Read, decompress and check one data member into the worker's buffer.
    func prepare(_ member: ArchiveManifest.Member, worker: DataWorker, prefetcher: MemberPrefetcher?) throws -> PreparedChunk {
        let table = manifest.tables[member.table!]
        try decompress(member, compressed: &worker.compressed, into: &worker.text, decompressor: worker.decompressor, prefetcher: prefetcher)
        let header = DataChunk.copyHeader(schema: table.schema, name: table.name, columns: table.columns)
        switch DataChunk.scan(worker.text, expectedHeader: header) {
        case .success(let (rows, sum)):
            if let recorded = member.rows, recorded != rows {
                throw ToolError(.mismatch, "\(ArchiveVerifier.describe(member, in: manifest)) holds \(rows) rows but the manifest says \(recorded); the restore stopped there")
            }
            return PreparedChunk(member: member, rows: rows, sum: sum,
                                 body: header.utf8.count..<(worker.text.count - DataChunk.terminator.count))
        case .failure(let problem):
            throw ToolError(.mismatch, "\(ArchiveVerifier.describe(member, in: manifest)): \(problem); the restore stopped there")
        }
    }
}
