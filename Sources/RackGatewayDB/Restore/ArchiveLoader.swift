import RGWCompression
import Foundation
import Logging
import RGWPostgres

/// Loads a rack-gateway-db archive into an empty database: pre-data on one connection, data chunks
/// over `jobs` connections through COPY FROM STDIN, sequences, post-data (index and constraint
/// builds in parallel, then foreign keys, then the rest in order), `ANALYZE`, and optionally a
/// re-read of every table compared with the manifest.
///
/// The archive is checked as it loads: each member's CRC32 and size (libdeflate), each data
/// chunk's COPY framing and row count, and each table's fingerprint once all its chunks are in.
final class ArchiveLoader: @unchecked Sendable {
    let reader: ArchiveReader
    let manifest: ArchiveManifest
    let settings: ConnectionSettings
    let jobs: Int
    let maintenanceWorkMem: String?
    let logger: Logger
    let progress: RestoreProgress
    private(set) var phases: [RestorePhase] = []

    init(reader: ArchiveReader, settings: ConnectionSettings, jobs: Int, maintenanceWorkMem: String?,
         logger: Logger, progress: RestoreProgress) {
        self.reader = reader
        self.manifest = reader.manifest
        self.settings = settings
        self.jobs = max(1, jobs)
        self.maintenanceWorkMem = maintenanceWorkMem
        self.logger = logger
        self.progress = progress
    }

    func timed<R>(_ name: String, _ body: () throws -> R) throws -> R {
        let started = Date()
        logger.debug("restore phase started", metadata: ["phase": "\(name)"])
        let result = try body()
        let seconds = Date().timeIntervalSince(started)
        phases.append(RestorePhase(name: name, seconds: seconds))
        logger.info("restore phase done", metadata: ["phase": "\(name)", "seconds": "\(String(format: "%.2f", seconds))"])
        return result
    }

    func connect(_ purpose: String) throws -> Connection {
        let connection = try settings.open(.restoreWorker(purpose))
        try DumpSession.apply(to: connection)
        return connection
    }

    /// The decompressed text of a member (whole: for the small schema members).
    func text(of kind: ArchiveManifest.MemberKind) throws -> String {
        guard let member = manifest.members.first(where: { $0.kind == kind }) else { return "" }
        var compressed = [UInt8]()
        var text = [UInt8]()
        try decompress(member, compressed: &compressed, into: &text)
        return String(decoding: text, as: UTF8.self)
    }

    func decompress(_ member: ArchiveManifest.Member, compressed: inout [UInt8], into output: inout [UInt8],
                    decompressor: GzipMemberDecompressor? = nil, prefetcher: MemberPrefetcher? = nil) throws {
        if let prefetcher {
            try prefetcher.take(member, into: &compressed)
        } else {
            try reader.readBytes(offset: member.offset, count: member.length, into: &compressed)
        }
        do {
            let decompressor = try decompressor ?? GzipMemberDecompressor()
            try decompressor.decompress(compressed[...], uncompressedSize: member.size, into: &output)
        } catch let error as CompressionError {
            throw ToolError(.mismatch, "\(ArchiveVerifier.describe(member, in: manifest)) is corrupt (\(error.message)); the restore stopped there",
                            fix: "Restore an older archive (rack-gateway-db list); this one fails verification.")
        }
    }

    /// The event triggers of post-data, created by `createEventTriggers` once the restore's own DDL
    /// is done.
    private var eventTriggers: [DumpScript.Entry] = []

    func run(verify: Bool) throws -> [String] {
        let main = try connect("pre-data")
        // The target's known settings, to skip or refuse what a newer pg_dump sets (PostgresVersions).
        let settingFilter = try SessionSettingFilter(main)
        try timed("pre-data") { try runPreData(main, settingFilter: settingFilter) }
        let autovacuum = AutovacuumPause(main, tables: manifest.tables, logger: logger)
        do {
            try loadAndBuild(main, settingFilter: settingFilter)
        } catch {
            // Never leave the restore's own temporary settings behind, even on a failed target.
            try? autovacuum.resume()
            throw error
        }
        try autovacuum.resume()
        try timed("analyze") {
            progress.begin(phase: "analyze")
            try RestoreTarget(settings: settings).analyze(jobs: jobs, analyzed: Set(analyzedEarly.items))
        }
        guard verify else { return [] }
        return try timed("verify") { try verifyTables() }
    }

    /// The database's event triggers, last: after this no statement of the restore's own may run.
    func createEventTriggers() throws {
        guard !eventTriggers.isEmpty else { return }
        let main = try connect("event triggers")
        try timed("post-data: \(DumpScript.Phase.eventTriggers.label)") { try runPostData(eventTriggers, parallel: false, main: main) }
    }

    private func loadAndBuild(_ main: Connection, settingFilter filter: SessionSettingFilter) throws {
        try timed("data") { try loadData(main) }
        if manifest.members.contains(where: { $0.kind == .largeObjects }) {
            try timed("large objects") { try loadLargeObjects() }
        }
        try timed("sequences") { try setSequences(main) }
        var postData = try DumpScript(try text(of: .postData), section: "post-data")
        for index in postData.entries.indices {
            postData.entries[index].settings = try postData.entries[index].settings.filter {
                try filter.keep($0, section: "post-data", line: postData.entries[index].statements.first?.line ?? 0)
            }
        }
        eventTriggers = postData.entries(in: .eventTriggers)
        // The longest builds first, so no long build starts last and runs alone.
        let costs = try BuildCostModel(main, tables: manifest.tables)
        for phase in DumpScript.Phase.allCases where phase != .eventTriggers {
            var entries = postData.entries(in: phase)
            if phase.parallel {
                entries = entries.map { (entry: $0, cost: costs.cost(of: $0)) }.enumerated()
                    .sorted { $0.element.cost != $1.element.cost ? $0.element.cost > $1.element.cost : $0.offset < $1.offset }
                    .map(\.element.entry)
            }
            guard !entries.isEmpty else { continue }
            try timed("post-data: \(phase.label)") { try runPostData(entries, parallel: phase.parallel, main: main) }
        }
    }

    func runPreData(_ connection: Connection, settingFilter filter: SessionSettingFilter) throws {
        let statements = try DumpScript.statements(try text(of: .preData), section: "pre-data")
        progress.begin(phase: "pre-data", steps: statements.count)
        var skipped: Set<String> = []
        for (statement, line) in statements {
            guard try filter.keep(statement, section: "pre-data", line: line) else {
                skipped.insert(DumpScript.settingName(statement) ?? statement)
                continue
            }
            do {
                try connection.execute(statement)
            } catch let error as PostgresError {
                throw ToolError(.failed, "pre-data statement at line \(line) failed: \(error.description)\n  \(statement.prefix(200))",
                                fix: Self.fixForSchemaError(error))
            }
            progress.stepDone()
        }
        if !skipped.isEmpty {
            logger.notice("skipped settings this server does not have (harmless: they only switch a limit off)",
                          metadata: ["settings": "\(skipped.sorted().joined(separator: ", "))", "server": "\(connection.serverMajorVersion)"])
        }
    }

    static func fixForSchemaError(_ error: PostgresError) -> String? {
        switch error.sqlState {
        case "42704"?: "A role or type the archive needs is missing on the target server; see the message, create it, and restore again (--clean)."
        case "42501"?: "The restoring role lacks a privilege; restore as the owner of the objects or a superuser."
        default: nil
        }
    }

    /// Worker state: a connection and the buffers reused for every chunk.
    final class DataWorker {
        let connection: Connection
        let decompressor: GzipMemberDecompressor
        var compressed: [UInt8] = []
        var text: [UInt8] = []
        init(connection: Connection) throws {
            self.connection = connection
            decompressor = try GzipMemberDecompressor()
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

    /// Tables analyzed by the data workers as soon as their last chunk was in (qualified names).
    let analyzedEarly = LockedList<String>()

    /// Tables whose statistics can be gathered once their own rows are in: plain tables without
    /// inheritance children (a parent's ANALYZE also samples its children, which may still be loading).
    func earlyAnalyzable(_ connection: Connection) throws -> Set<String> {
        Set(try connection.query("""
            SELECT n.nspname, c.relname FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
            WHERE c.relkind = 'r' AND NOT EXISTS (SELECT FROM pg_catalog.pg_inherits i WHERE i.inhparent = c.oid)
              AND \(CatalogSQL.userSchemaFilter)
            """).rows.map { SQL.qualified($0[0]!, $0[1]!) })
    }

    /// The data chunks over `jobs` connections, the biggest tables' first. A worker that loads a
    /// table's last chunk checks the table's rows and fingerprint and runs its ANALYZE right away,
    /// while the other workers go on loading: the statistics of the big table are gathered while
    /// the small tables load instead of after every index build, on an otherwise idle core.
    func loadData(_ main: Connection) throws {
        let manifest = self.manifest
        let analyzable = try earlyAnalyzable(main)
        // From a store the chunks come in file order, one stream ahead of the workers.
        let remote = reader.isRemote
        let members = manifest.members.enumerated().filter { $0.element.kind == .data }
            .sorted { a, b in
                let sizeA = manifest.tables[a.element.table!].bytes, sizeB = manifest.tables[b.element.table!].bytes
                return sizeA != sizeB && !remote ? sizeA > sizeB : a.element.offset < b.element.offset
            }.map(\.element)
        progress.beginData(chunks: members.count, bytes: manifest.totalBytes)
        let totals = TableTotals(tables: manifest.tables.count)
        for member in members { totals.expect(table: member.table!) }
        let prefetcher = remote ? MemberPrefetcher(reader: reader, members: members) : nil
        defer { prefetcher?.stop() }
        try forEachInParallel(members, workers: jobs, name: "restore data", connect: { [self] in
            let connection = try connect("data")
            // Each chunk commits on its own; the restore's later commits flush them all.
            try connection.execute("SET synchronous_commit = off")
            return try DataWorker(connection: connection)
        }) { [self] worker, member in
            let chunk = try prepare(member, worker: worker, prefetcher: prefetcher)
            let table = manifest.tables[member.table!]
            do {
                try worker.connection.copyIn(DataChunk.copyInStatement(schema: table.schema, name: table.name, columns: table.columns)) { stream in
                    var start = chunk.body.lowerBound
                    while start < chunk.body.upperBound {
                        let end = min(start + Self.sendSlice, chunk.body.upperBound)
                        try stream.write(worker.text[start..<end])
                        start = end
                    }
                }
            } catch let error as PostgresError {
                throw ToolError(.failed, "loading \(ArchiveVerifier.describe(member, in: manifest)) failed, its COPY was rolled back: \(error.description)",
                                fix: error.isConnectionLoss ? "Check that the target server is up, then restore again with --clean." : nil)
            }
            let complete = totals.add(table: member.table!, rows: chunk.rows, sum: chunk.sum)
            progress.chunkDone(rows: chunk.rows, bytes: chunk.body.count)
            guard complete else { return }
            let problems = totals.mismatches(against: manifest, place: "loaded from the archive", only: member.table!)
            if !problems.isEmpty {
                throw ToolError(.mismatch, "the archive's data does not match its manifest: " + problems.joined(separator: "; "))
            }
            let name = SQL.qualified(table.schema, table.name)
            if analyzable.contains(name) {
                try worker.connection.execute("ANALYZE \(name)")
                analyzedEarly.add(name)
            }
        }
        let problems = totals.mismatches(against: manifest, place: "loaded from the archive")
        if !problems.isEmpty {
            throw ToolError(.mismatch, "the archive's data does not match its manifest: " + problems.prefix(5).joined(separator: "; "))
        }
    }

    /// The large objects' contents (their metadata came with pre-data): each member's `lo_put`
    /// statements checked against the manifest's sums, then run as one batch, over `jobs` connections.
    func loadLargeObjects() throws {
        let members = manifest.members.filter { $0.kind == .largeObjects }
        progress.begin(phase: "large objects", steps: members.count)
        let totals = LockedList<(bytes: Int, sum: UInt64)>()
        try forEachInParallel(members, workers: jobs, name: "restore large objects", connect: { [self] in
            try DataWorker(connection: try connect("large objects"))
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

    func setSequences(_ connection: Connection) throws {
        progress.begin(phase: "sequences", steps: manifest.sequences.count)
        for sequence in manifest.sequences {
            try connection.query("SELECT pg_catalog.setval($1::regclass, $2::bigint, $3::boolean)",
                                 [SQL.qualified(sequence.schema, sequence.name), sequence.value, sequence.isCalled ? "true" : "false"])
            progress.stepDone()
        }
    }

    /// A post-data connection remembers which settings it runs with, to send them only on change.
    final class SchemaWorker {
        let connection: Connection
        var settings: [String] = []
        init(connection: Connection) { self.connection = connection }

        func run(_ entry: DumpScript.Entry) throws {
            if entry.settings != settings {
                try connection.execute(entry.settings.joined(separator: "; "))
                settings = entry.settings
            }
            for (statement, line) in entry.statements {
                do {
                    try connection.execute(statement)
                } catch let error as PostgresError {
                    throw EntryFailure(entry: entry, line: line, error: error)
                }
            }
        }
    }

    struct EntryFailure: Error {
        var entry: DumpScript.Entry
        var line: Int
        var error: PostgresError
        var toolError: ToolError {
            ToolError(.failed, "post-data \(entry.label) (line \(line)) failed: \(error.description)",
                      fix: ArchiveLoader.fixForSchemaError(error))
        }
    }

    func runPostData(_ entries: [DumpScript.Entry], parallel: Bool, main: Connection) throws {
        progress.begin(phase: "post-data", steps: entries.count)
        let serial = SchemaWorker(connection: main)
        guard parallel, jobs > 1, entries.count > 1 else {
            for entry in entries {
                do { try serial.run(entry) } catch let failure as EntryFailure { throw failure.toolError }
                progress.stepDone()
            }
            return
        }
        // Concurrent DDL on related tables can deadlock; the server then cancels one side, which
        // is run again after the others.
        let deadlocked = LockedList<DumpScript.Entry>()
        let workMem = maintenanceWorkMem
        do {
            try forEachInParallel(entries, workers: jobs, name: "restore post-data", connect: { [self] in
                let connection = try settings.open(.restoreWorker("post-data"))
                if let workMem { try connection.execute("SET maintenance_work_mem = \(SQL.literal(workMem))") }
                return SchemaWorker(connection: connection)
            }) { [progress] worker, entry in
                do {
                    try worker.run(entry)
                } catch let failure as EntryFailure where failure.error.sqlState == "40P01" {
                    deadlocked.add(entry)
                }
                progress.stepDone()
            }
        } catch let failure as EntryFailure {
            throw failure.toolError
        }
        for entry in deadlocked.items {
            logger.info("running again after a deadlock", metadata: ["entry": "\(entry.label)"])
            do { try serial.run(entry) } catch let failure as EntryFailure { throw failure.toolError }
        }
    }

    func verifyTables() throws -> [String] {
        progress.begin(phase: "verify", steps: manifest.tables.count)
        var problems = try LiveFingerprint.mismatches(manifest: manifest, settings: settings, jobs: jobs) { [progress] in progress.stepDone() }
        if let recorded = manifest.largeObjects {
            problems += LargeObjects.mismatches(try LargeObjects.live(try connect("verify")), recorded: recorded)
        }
        return problems
    }
}
