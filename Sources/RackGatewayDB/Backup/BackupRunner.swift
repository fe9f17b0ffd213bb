import Compression
import Foundation
import Logging
import Postgres

/// `backup`: one consistent snapshot, dumped over parallel COPY streams into an archive (format v1).
public struct BackupOptions: Sendable {
    public var directory: String
    public var prefix: String = "rack_gateway_backup"
    public var jobs: Int
    public var compressors: Int
    public var compressionLevel: Int32 = 5
    /// COPY text per data member: 4 MiB keeps peak memory under 64 MB with two readers and two
    /// compressors at no cost in speed or size (measured against 8 MiB on the bench database).
    public var chunkSize: Int = 4 << 20
    public var lockTimeoutMilliseconds: Int = 10_000
    public var environment: [String: String] = ProcessInfo.processInfo.environment
    /// An object store (S3) to write to instead of `directory`.
    public var store: ArchiveStore?
    /// The archive is suspect when a table's rows or the whole data fell by more than this since
    /// the previous good archive (`--max-shrink`; 1 turns the check off).
    public var maxShrink: Double = 0.5

    public init(directory: String, jobs: Int, compressors: Int) {
        self.directory = directory
        self.jobs = jobs
        self.compressors = compressors
    }
}

public struct BackupReport: Codable, Sendable {
    public var file: String
    public var sha256: String
    public var sizeBytes: Int
    public var durationSeconds: Double
    public var tables: Int
    public var rows: Int
    public var bytesIn: Int
    public var bytesOut: Int
    public var ratio: Double
    public var members: Int
    public var sequences: Int
    public var jobs: Int
    public var snapshot: String
    public var createdAt: String
    /// Why the archive looks like a bad backup next to the previous good one; nil when it does not.
    public var suspect: String?
}

/// Progress counters shared by the pipeline threads and the progress reporter.
public final class BackupProgress: @unchecked Sendable {
    private let lock = NSLock()
    public private(set) var tablesTotal = 0
    public private(set) var tablesDone = 0
    public private(set) var rows = 0
    public private(set) var bytesIn = 0
    public private(set) var bytesOut = 0
    public private(set) var estimatedBytes = 0
    /// Estimated on-disk bytes of finished tables, to turn `estimatedBytes` into a fraction.
    public private(set) var estimatedDone = 0
    public let started = Date()

    func begin(tables: Int, estimatedBytes: Int) {
        lock.withLock { tablesTotal = tables; self.estimatedBytes = estimatedBytes }
    }

    func add(rows: Int, bytesIn: Int) { lock.withLock { self.rows += rows; self.bytesIn += bytesIn } }
    func add(bytesOut: Int) { lock.withLock { self.bytesOut += bytesOut } }
    func tableDone(estimated: Int) { lock.withLock { tablesDone += 1; estimatedDone += estimated } }

    public struct Snapshot: Sendable {
        public var tablesTotal, tablesDone, rows, bytesIn, bytesOut: Int
        public var elapsed: Double
        /// 0...1, from the catalog's size estimates.
        public var fraction: Double
    }

    public func snapshot() -> Snapshot {
        lock.withLock {
            // Finished tables' estimated size, or the COPY text read so far against the whole
            // estimate when that says more (one big table would otherwise show nothing done until
            // it ends); the on-disk estimate and COPY text sizes are close for these tables.
            let done = max(estimatedDone, bytesIn)
            let fraction = estimatedBytes > 0 ? min(tablesDone == tablesTotal ? 1 : 0.99, Double(done) / Double(estimatedBytes))
                : (tablesTotal > 0 ? Double(tablesDone) / Double(tablesTotal) : 0)
            return Snapshot(tablesTotal: tablesTotal, tablesDone: tablesDone, rows: rows, bytesIn: bytesIn, bytesOut: bytesOut,
                            elapsed: Date().timeIntervalSince(started), fraction: fraction)
        }
    }
}

public final class BackupRunner: @unchecked Sendable {
    public let settings: ConnectionSettings
    public let options: BackupOptions
    public let logger: Logger
    public let progress = BackupProgress()

    /// Session advisory lock key of `backup` ("RGWDBKUP"); advisory locks are per database.
    public static let advisoryLockKey: Int64 = 0x5247_5744_424B_5550

    public init(settings: ConnectionSettings, options: BackupOptions, logger: Logger) {
        self.settings = settings
        self.options = options
        self.logger = logger
    }

    static func iso8601(_ date: Date) -> String {
        ISO8601DateFormatter.withFractions.string(from: date)
    }

    public func run() throws -> BackupReport {
        let started = Date()
        // Chunk buffers (megabytes each) are allocated and freed all the time: have glibc map and
        // unmap them instead of keeping freed ones in per-thread arenas, so memory stays flat.
        Memory.mapLargeAllocations(from: 256 * 1024)
        // Checks that need no database first: pg_dump, the directory, the lock file.
        let pgDump = try PostgresTools.pgDump(environment: options.environment).get()
        let lease: StoreLease
        if let store = options.store {
            lease = try store.lease(".\(options.prefix).lock", holder: "backup of \(settings.description)")
        } else {
            try FileManager.default.createDirectory(atPath: options.directory, withIntermediateDirectories: true,
                                                    attributes: [.posixPermissions: 0o700])
            lease = LocalStore.LocalLease(try DirectoryLock.acquire(directory: options.directory, name: ".\(options.prefix).lock",
                                                                    what: "backup of \(settings.description)"))
        }
        defer { lease.release() }

        let coordinator = try Connection(settings: settings, applicationName: "rack-gateway-db backup")
        guard pgDump.majorVersion >= coordinator.serverMajorVersion else {
            throw ToolError(.failed, "\(pgDump.path) is version \(pgDump.version), older than the server (\(coordinator.serverMajorVersion)): it cannot dump this database",
                            fix: "Install postgresql-client-\(coordinator.serverMajorVersion) or newer, or point RGW_PG_BIN_DIR at its bin directory.")
        }
        try acquireAdvisoryLock(coordinator)
        try DumpSession.apply(to: coordinator)
        try coordinator.execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        try coordinator.execute("SET LOCAL lock_timeout = \(options.lockTimeoutMilliseconds)")
        let snapshot = try coordinator.query("SELECT pg_catalog.pg_export_snapshot()").scalar ?? ""
        var catalog = try BackupCatalog.read(coordinator)
        try lockTables(catalog, coordinator)
        try catalog.sortBySize(coordinator)
        var sequences: [ArchiveManifest.Sequence] = []
        for sequence in catalog.sequences {
            let row = try coordinator.query("SELECT last_value::text, is_called FROM \(SQL.qualified(sequence.schema, sequence.name))").rows[0]
            sequences.append(.init(schema: sequence.schema, name: sequence.name, value: row[0] ?? "1", isCalled: row[1] == "t"))
        }
        let database = coordinator.databaseName
        let serverVersion = try coordinator.query("SHOW server_version").scalar ?? coordinator.serverVersion
        // What the drill compares the restore with, and what pg_dump leaves out without --create.
        let schemaState = try SchemaState.read(coordinator)
        let refreshOrder = try SchemaState.refreshOrder(coordinator)
        let properties = try DatabaseProperties.read(coordinator)
        logger.info("backup started", metadata: ["database": "\(settings.description)", "snapshot": "\(snapshot)",
                                                 "tables": "\(catalog.tables.count)", "jobs": "\(options.jobs)"])

        let createdAt = Date()
        let name = ArchiveName.fileName(prefix: options.prefix, date: createdAt)
        let writer = try options.store.map { try ArchiveFileWriter(store: $0, fileName: name) }
            ?? ArchiveFileWriter(directory: options.directory, fileName: name)
        do {
            let compressor = try GzipMemberCompressor(level: options.compressionLevel)
            let header = """
                -- rack-gateway-db archive format \(ArchiveManifest.currentFormatVersion)
                -- tool: rack-gateway-db \(RackGatewayDB.toolVersion)
                -- created: \(Self.iso8601(createdAt))
                -- database: \(database)
                -- server: PostgreSQL \(serverVersion)
                -- pg_dump: \(pgDump.version)
                -- snapshot: \(snapshot)
                -- A gzip file of gzip members whose text is a psql script. Restore into an empty database with:
                --   gunzip -c \(writer.fileName) | psql -v ON_ERROR_STOP=1 --single-transaction "$DATABASE_URL"
                -- Roles it references (create them first, NOLOGIN will do): \(catalog.roles.isEmpty ? "none" : catalog.roles.joined(separator: ", "))
                \(Self.versionComment(pgDumpMajor: pgDump.majorVersion, serverMajor: coordinator.serverMajorVersion))\(Self.propertiesComment(properties, database: database))
                """
            try writer.append(member: try compressor.compressShared(Array(header.utf8)[...]), kind: .header)

            let dumpEnvironment = settings.childEnvironment
            // pg_dump's pre-data, then the large objects' metadata (--schema-only leaves them out).
            let preData = try runPgDump(pgDump.path, section: "pre-data", snapshot: snapshot, environment: dumpEnvironment)
                + (try LargeObjects.metadataStatements(coordinator))
            try writer.append(member: try compressor.compressShared(Array(preData.utf8)[...]), kind: .preData)
            // Post-data is dumped while the data flows.
            let postDataBox = ResultBox<String>()
            let postGroup = DispatchGroup()
            let path = pgDump.path
            spawnThread("pg_dump post-data", group: postGroup) { [self] in
                postDataBox.value = Result { try self.runPgDump(path, section: "post-data", snapshot: snapshot, environment: dumpEnvironment) }
            }

            let tables = try dumpData(catalog: catalog, snapshot: snapshot, writer: writer)
            // The large objects' contents, read by the coordinator inside the same snapshot.
            let largeObjects = try LargeObjects.dump(coordinator) { text in
                _ = try writer.append(member: try compressor.compressShared(text[...]), kind: .largeObjects)
            }

            var sequenceText = "\n-- Sequences\n"
            for sequence in sequences {
                sequenceText += "SELECT pg_catalog.setval(\(SQL.literal(SQL.qualified(sequence.schema, sequence.name)))"
                    + ", \(sequence.value), \(sequence.isCalled));\n"
            }
            try writer.append(member: try compressor.compressShared(Array(sequenceText.utf8)[...]), kind: .sequences)
            postGroup.wait()
            let postData = Self.insertingRefreshes(SchemaState.refreshText(refreshOrder), into: try postDataBox.value!.get())
            try writer.append(member: try compressor.compressShared(Array(postData.utf8)[...]), kind: .postData)

            var suspect: String?
            if options.maxShrink < 1, let previous = ShrinkCheck.previousGood(in: try writer.store(), prefix: options.prefix, database: database) {
                let problems = ShrinkCheck(maxShrink: options.maxShrink).problems(tables: tables, previous: previous.manifest)
                if !problems.isEmpty {
                    suspect = problems.joined(separator: "; ") + " since \(previous.name)"
                    logger.warning("the archive looks like a bad backup; it is kept and marked suspect", metadata: ["why": "\(suspect!)"])
                }
            }
            let completedAt = Date()
            let manifest = ArchiveManifest(
                toolVersion: RackGatewayDB.toolVersion, createdAt: Self.iso8601(createdAt), completedAt: Self.iso8601(completedAt),
                database: database, serverVersion: serverVersion, serverVersionNum: coordinator.serverVersionNumber,
                pgDumpVersion: pgDump.version, snapshot: snapshot, sessionSettings: DumpSession.manifestSettings,
                schemaMigrations: catalog.migrations, roles: catalog.roles, members: writer.recordedMembers,
                tables: tables, sequences: sequences, suspect: suspect, schemaState: schemaState,
                databaseProperties: properties.isEmpty ? nil : properties, largeObjects: largeObjects)
            let manifestMember = try compressor.compress(try manifest.line())
            let manifestOffset = try writer.appendUnrecorded(manifestMember[...])
            _ = try writer.appendUnrecorded(ArchiveTrailer(manifestOffset: manifestOffset, manifestLength: manifestMember.count).member()[...])
            let sha256 = try writer.publish()
            _ = try? coordinator.execute("COMMIT")
            let size = writer.bytesWritten
            let totals = progress.snapshot()
            let report = BackupReport(
                file: writer.finalPath, sha256: sha256, sizeBytes: size, durationSeconds: Date().timeIntervalSince(started),
                tables: tables.count, rows: manifest.totalRows, bytesIn: totals.bytesIn, bytesOut: size,
                ratio: size > 0 ? Double(totals.bytesIn) / Double(size) : 0, members: manifest.members.count,
                sequences: sequences.count, jobs: options.jobs, snapshot: snapshot, createdAt: manifest.createdAt, suspect: suspect)
            logger.info("backup written", metadata: ["file": "\(report.file)", "bytes": "\(size)", "rows": "\(report.rows)"])
            return report
        } catch {
            writer.discard()
            throw error
        }
    }

    /// Which servers the script loads into with stock tools.
    static func versionComment(pgDumpMajor: Int, serverMajor: Int) -> String {
        var text = "-- Loads into PostgreSQL \(serverMajor) or newer (the server it was dumped from is \(serverMajor)).\n"
        if pgDumpMajor >= 17 {
            text += "-- pg_dump \(pgDumpMajor) writes SET transaction_timeout, which servers before 17 reject; psql into such a server:\n"
            text += "--   gunzip -c FILE | sed '/^SET transaction_timeout = /d' | psql -v ON_ERROR_STOP=1 --single-transaction \"$DATABASE_URL\"\n"
        }
        return text
    }

    /// Header lines naming the database's own properties, for whoever restores with stock tools
    /// (the tool applies them itself when it creates the target).
    static func propertiesComment(_ properties: DatabaseProperties, database: String) -> String {
        guard !properties.isEmpty else { return "" }
        let lines = properties.statements(database: database).map { "--   \($0.replacingOccurrences(of: "\n", with: " "));" }
        return (["-- The source database's own properties (pg_dump leaves them out without --create); after a restore",
                 "-- with stock tools, run these against the new database (with its name):"] + lines).joined(separator: "\n") + "\n"
    }

    /// The materialized view refreshes go into post-data after everything but the event triggers
    /// (which would fire on them), in the stock-tools path too.
    static func insertingRefreshes(_ refreshes: String, into postData: String) -> String {
        guard !refreshes.isEmpty else { return postData }
        let script = SQLScript(postData)
        guard let header = script.comments.first(where: { $0.text.hasPrefix("-- Name: ") && $0.text.contains("; Type: EVENT TRIGGER;") }) else {
            return postData + "\n" + refreshes
        }
        // Before the header's opening "--" line.
        var lines = postData.split(separator: "\n", omittingEmptySubsequences: false)
        let at = max(0, header.line - 2)
        lines.insert(contentsOf: refreshes.split(separator: "\n", omittingEmptySubsequences: false), at: at)
        return lines.joined(separator: "\n")
    }

    func runPgDump(_ path: String, section: String, snapshot: String, environment: [String: String]) throws -> String {
        let output = try ChildProcess(executable: path, arguments: [
            "--schema-only", "--section=\(section)", "--snapshot=\(snapshot)", "--no-password",
        ], environment: environment).run()
        guard output.status == 0 else {
            let message = ConnectionSettings.redact(output.stderr.trimmingCharacters(in: .whitespacesAndNewlines),
                                                    secret: settings.effectiveValue("password") ?? "")
            throw ToolError(.failed, "pg_dump --section=\(section) failed (exit \(output.status)): \(message)")
        }
        return output.stdout
    }

    func acquireAdvisoryLock(_ connection: Connection) throws {
        let key = String(Self.advisoryLockKey)
        guard try connection.query("SELECT pg_catalog.pg_try_advisory_lock($1::bigint)", [key]).scalar == "t" else {
            let holder = try? connection.query("""
                SELECT a.pid::text, a.usename, coalesce(a.application_name, ''), coalesce(host(a.client_addr), 'local socket'),
                       to_char(a.backend_start AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')
                FROM pg_catalog.pg_locks l JOIN pg_catalog.pg_stat_activity a ON a.pid = l.pid
                WHERE l.locktype = 'advisory' AND l.granted
                  AND l.database = (SELECT oid FROM pg_catalog.pg_database WHERE datname = current_database())
                  AND l.classid = (($1::bigint >> 32) & 4294967295)::oid AND l.objid = ($1::bigint & 4294967295)::oid AND l.objsubid = 1
                """, [key]).rows.first
            let who = holder.map { "server process \($0[0] ?? "?") (user \($0[1] ?? "?"), \($0[2] ?? ""), from \($0[3] ?? "?"), since \($0[4] ?? "?"))" } ?? "another session"
            throw ToolError(.lockHeld, "another backup of \(connection.databaseName) is running: \(who) holds the backup lock",
                            fix: "Wait for it to finish; only one backup of a database runs at a time.")
        }
    }

    func lockTables(_ catalog: BackupCatalog, _ connection: Connection) throws {
        for table in catalog.tables {
            do {
                try connection.execute("LOCK TABLE \(table.qualified) IN ACCESS SHARE MODE")
            } catch let error as PostgresError where error.sqlState == "55P03" {
                throw ToolError(.failed, "table \(table.schema).\(table.name) is locked by another session (waited \(options.lockTimeoutMilliseconds) ms for ACCESS SHARE)",
                                fix: "Find the holder with rack-gateway-db maint connections (or pg_locks), let it finish, then run the backup again; --lock-timeout waits longer.")
            }
        }
    }

    /// Readers (COPY out, one table at a time, largest first) → bounded queue → compressors → writer.
    func dumpData(catalog: BackupCatalog, snapshot: String, writer: ArchiveFileWriter) throws -> [ArchiveManifest.Table] {
        let results = TableResults(catalog: catalog)
        progress.begin(tables: catalog.tables.count, estimatedBytes: catalog.tables.reduce(0) { $0 + $1.estimatedBytes })
        // A hand-over: a full chunk waits in its reader, not in the queue (one buffer less in flight).
        let queue = BoundedQueue<Chunk>(capacity: 0)
        let failure = FirstError()
        let nextTable = Counter()
        let readers = DispatchGroup()
        let compressors = DispatchGroup()
        let settings = self.settings
        let chunkSize = options.chunkSize
        let progress = self.progress
        let level = options.compressionLevel

        for worker in 0..<max(1, min(options.jobs, max(1, catalog.tables.count))) {
            spawnThread("backup reader \(worker)", group: readers) {
                do {
                    let connection = try Connection(settings: settings, applicationName: "rack-gateway-db backup worker")
                    try DumpSession.apply(to: connection)
                    try connection.execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                    try connection.execute("SET TRANSACTION SNAPSHOT \(SQL.literal(snapshot))")
                    while !failure.isSet {
                        let index = nextTable.next()
                        guard index < catalog.tables.count else { break }
                        try Self.copyTable(index: index, table: catalog.tables[index], connection: connection, chunkSize: chunkSize,
                                           queue: queue, failure: failure, progress: progress)
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
                    let compressor = try GzipMemberCompressor(level: level)
                    while let chunk = queue.take() {
                        if failure.isSet { continue }
                        let member = try compressor.compressShared(chunk.bytes[...])
                        let record = try writer.append(member: member, kind: .data, table: chunk.table, rows: chunk.rows)
                        results.add(chunk, member: record.index)
                        progress.add(bytesOut: member.count)
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
                          queue: BoundedQueue<Chunk>, failure: FirstError, progress: BackupProgress) throws {
        let header = Array(DataChunk.copyHeader(schema: table.schema, name: table.name, columns: table.columns).utf8)
        var buffer = [UInt8]()
        buffer.reserveCapacity(chunkSize + 64 * 1024)
        buffer.append(contentsOf: header)
        var rows = 0
        var sum: UInt64 = 0
        func emit() throws {
            let rowBytes = buffer.count - header.count
            buffer.append(contentsOf: DataChunk.terminator)
            progress.add(rows: rows, bytesIn: rowBytes)
            guard queue.put(Chunk(table: index, bytes: buffer, rows: rows, rowBytes: rowBytes, fingerprint: sum)) else {
                throw failure.error ?? ToolError(.failed, "backup stopped")
            }
            buffer = []
            buffer.reserveCapacity(chunkSize + 64 * 1024)
            buffer.append(contentsOf: header)
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

    func add(_ chunk: BackupRunner.Chunk, member: Int) {
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
