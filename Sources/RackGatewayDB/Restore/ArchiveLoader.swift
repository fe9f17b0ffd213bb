import RGWCompression
import Foundation
import Logging
import RGWPostgres

/// Loads a rack-gateway-db archive into an empty database: pre-data on one connection, data chunks
/// over `jobs` connections through COPY FROM STDIN, sequences, post-data (index and constraint
/// builds in parallel, then foreign keys, then the rest in order), `ANALYZE`, and optionally a
/// re-read of every table compared with the manifest.
///
/// The archive is hostile input, checked before its content reaches the server: first the layout
/// (`checkLayout`: the documented member order, the tables' chunk lists, the large objects, the
/// header and sequences members read and compared with what the backup writes); then as it loads,
/// each member's CRC32 and size against the manifest before it is sent, each data chunk's COPY
/// framing and row count (and the server's `COPY n` after it), each large-object line's grammar
/// before any of it runs, and each table's fingerprint once all its chunks are in.
final class ArchiveLoader: @unchecked Sendable {
    let reader: ArchiveReader
    let manifest: ArchiveManifest
    let settings: ConnectionSettings
    let jobs: Int
    let maintenanceWorkMem: String?
    let logger: Logger
    let progress: RestoreProgress
    private(set) var phases: [RestorePhase] = []
    /// Tables analyzed by the data workers as soon as their last chunk was in (qualified names).
    let analyzedEarly = LockedList<String>()
    /// Tables loaded frozen (qualified names): every page of theirs is all-visible and all-frozen.
    let loadedFrozen = LockedList<String>()
    /// The archive's statistics member, parsed by `checkLayout` (nil: the archive has none).
    private(set) var statistics: ArchiveStatistics?
    /// Tables whose statistics were imported in place of ANALYZE, and those whose import failed
    /// (analyzed instead), with why.
    private(set) var statisticsImported: [String] = []
    private(set) var statisticsFailed: [(table: String, why: String)] = []
    /// The run's clean-up stack: the paused autovacuum setting is on it until it is put back, so a
    /// second signal names it and the signal path's fallback puts it back.
    let cleanups: CleanupStack
    /// How the tables got their statistics, once `run` analyzed them.
    private(set) var statisticsOutcome: PlannerStatisticsOutcome?

    init(reader: ArchiveReader, settings: ConnectionSettings, jobs: Int, maintenanceWorkMem: String?,
         logger: Logger, progress: RestoreProgress, cleanups: CleanupStack = CleanupStack()) {
        self.cleanups = cleanups
        self.reader = reader
        self.manifest = reader.manifest
        self.settings = settings
        self.jobs = max(1, jobs)
        self.maintenanceWorkMem = maintenanceWorkMem
        self.logger = logger
        self.progress = progress
    }

    func timed<R>(_ name: String, _ body: () throws -> R) throws -> R {
        let stopwatch = Stopwatch()
        logger.debug("restore phase started", metadata: ["phase": "\(name)"])
        let result = try body()
        let seconds = stopwatch.elapsed
        phases.append(RestorePhase(name: name, seconds: seconds))
        logger.info("restore phase done", metadata: ["phase": "\(name)", "seconds": "\(String(format: "%.2f", seconds))"])
        return result
    }

    func connect(_ purpose: String) throws -> Connection {
        let connection = try settings.open(.restoreWorker(purpose))
        try DumpSession.apply(to: connection)
        return connection
    }

    /// The decompressed text of the one member of `kind` (whole: for the small schema members);
    /// `checkLayout` made sure there is exactly one.
    func text(of kind: ArchiveManifest.MemberKind) throws -> String {
        guard let member = manifest.members.first(where: { $0.kind == kind }) else { return "" }
        var compressed = [UInt8]()
        var text = [UInt8]()
        try decompress(member, compressed: &compressed, into: &text)
        return String(decoding: text, as: UTF8.self)
    }

    static let corruptFix = "Restore an older archive (rack-gateway-db list); this one fails verification."

    /// A member's text into `output`, checked against the manifest before anyone sees it: its size
    /// and framing (the decompressor: gzip's own CRC32 and ISIZE, zstd's content size and checksum)
    /// and the manifest's CRC32 (gzip's footer, as `verify` reads it; computed from a zstd text).
    func decompress(_ member: ArchiveManifest.Member, compressed: inout [UInt8], into output: inout [UInt8],
                    decompressor: MemberDecompressor? = nil, prefetcher: MemberPrefetcher? = nil) throws {
        if let prefetcher {
            try prefetcher.take(member, into: &compressed)
        } else {
            try reader.readBytes(offset: member.offset, count: member.length, into: &compressed)
        }
        do {
            let decompressor = try decompressor ?? MemberDecompressor(codec: reader.codec)
            try decompressor.decompress(compressed[...], uncompressedSize: member.size, into: &output)
        } catch let error as CompressionError {
            throw ToolError(.mismatch, "\(ArchiveVerifier.describe(member, in: manifest)) is corrupt (\(error.message)); the restore stopped there",
                            fix: Self.corruptFix)
        }
        let crc = reader.codec == .gzip ? GzipFooter(endOf: compressed)?.crc32 ?? 0 : CRC32.checksum(output)
        guard crc == member.crc32 else {
            throw ToolError(.mismatch, "\(ArchiveVerifier.describe(member, in: manifest)) has CRC32 \(crc) but the manifest says \(member.crc32): it is not the member the backup wrote; the restore stopped there",
                            fix: Self.corruptFix)
        }
    }

    /// What the restore relies on beyond the structure the reader checked when it opened the archive
    /// (`ArchiveLayout.structuralProblems`: the member order, the tables' chunk lists, the large
    /// objects), checked before anything is loaded so that the tool's restore and `gunzip | psql`
    /// build the same database: every data member records its rows (compared with the server's
    /// `COPY n`), and the header and sequences members, read and compared with what the backup writes.
    func checkLayout() throws {
        func refuse(_ problem: String) -> ToolError {
            ToolError(.mismatch, "\(reader.path): \(problem); nothing of it was loaded", fix: Self.corruptFix)
        }
        for member in manifest.members where member.kind == .data && member.rows == nil {
            throw refuse("\(ArchiveVerifier.describe(member, in: manifest)) records no row count")
        }
        if let problem = try ArchiveLayout.headerProblem(text(of: .header)) { throw refuse(problem) }
        if let problem = try ArchiveLayout.sequencesProblem(text(of: .sequences), manifest: manifest) { throw refuse(problem) }
        if manifest.members.contains(where: { $0.kind == .statistics }) {
            switch ArchiveStatistics.parse(try text(of: .statistics)) {
            case .success(let parsed): statistics = parsed
            case .failure(let problem): throw refuse(problem.description)
            }
        }
    }

    /// The tables whose statistics the restore imports in place of ANALYZE: on PostgreSQL 18 or
    /// newer (`pg_restore_relation_stats`), those the archive has statistics for that stand in for
    /// an ANALYZE (`ArchiveStatistics.standsInForAnalyze`); none otherwise.
    func statisticsToImport(_ connection: Connection) -> Set<String> {
        guard connection.serverVersionNumber >= 180000, let statistics else { return [] }
        let tables = Dictionary(manifest.tables.map { (SQL.qualified($0.schema, $0.name), $0) }, uniquingKeysWith: { a, _ in a })
        return Set(statistics.byTable.filter { ArchiveStatistics.standsInForAnalyze($0.value, table: tables[$0.key]) }.keys)
    }

    /// Import the statistics of `tables` (all they hold when nil), each table's calls on one
    /// connection over `jobs`, checking each call's result: a table whose import returned false
    /// or failed is a warning and is analyzed like a table without statistics. Returns the tables
    /// imported.
    func importStatistics(only tables: Set<String>? = nil) throws -> Set<String> {
        guard let statistics else { return [] }
        let byTable = statistics.byTable.filter { tables?.contains($0.key) ?? true }
        let imported = LockedList<String>(), failed = LockedList<(table: String, why: String)>()
        let frozen = Set(loadedFrozen.items)
        progress.begin(phase: "statistics", steps: byTable.count)
        try forEachInParallel(byTable.keys.sorted(), workers: jobs, name: "import statistics", connect: { [self] in
            try connect("statistics")
        }) { [progress] connection, table in
            let calls = byTable[table]!
            if let why = try ArchiveStatistics.importTable(calls, connection, allVisible: frozen.contains(table)) {
                failed.add(("\(calls[0].schema).\(calls[0].table)", why))
            } else {
                imported.add(table)
            }
            progress.stepDone()
        }
        for failure in failed.items.sorted(by: { $0.table < $1.table }) {
            logger.warning("the statistics of a table could not be imported; it is analyzed instead",
                           metadata: ["table": "\(failure.table)", "why": "\(failure.why)"])
        }
        statisticsImported += imported.items.sorted()
        statisticsFailed += failed.items
        return Set(imported.items)
    }

    /// How the tables got their statistics: those imported, those `analyzed`, and why: the
    /// server cannot import (before 18), the archive has none (format 1), or per table no
    /// statistics in the archive (the source never analyzed it, or a column was added since), a
    /// failed import, or an expression index or extended statistics (analyzed after the import).
    func outcome(analyzed: Set<String>, imported: Set<String>, serverVersion: Int) -> PlannerStatisticsOutcome {
        let why: String
        if serverVersion < 180000 {
            why = "PostgreSQL \(serverVersion / 10000) cannot import planner statistics; 18 and newer can"
        } else if statistics == nil {
            why = "the archive holds no planner statistics (format version 1)"
        } else {
            let again = analyzed.intersection(imported).count, failed = statisticsFailed.count
            let without = max(0, analyzed.count - again - failed)
            why = [(without, "without statistics in the archive (not analyzed at the source, or a column added since)"),
                   (failed, "whose import failed"), (again, "with an expression index or extended statistics, after the import")]
                .filter { $0.0 > 0 }.map { "\($0.0) \($0.1)" }.joined(separator: ", ")
        }
        return PlannerStatisticsOutcome(imported: imported.count, analyzed: analyzed.count, analyzedBecause: why)
    }

    /// The event triggers of post-data, created by `createEventTriggers` once the restore's own DDL
    /// is done.
    private var eventTriggers: [DumpScript.Entry] = []

    func run(verify: Bool) throws -> [String] {
        try checkLayout()
        let main = try connect("pre-data")
        // The target's known settings, to skip or refuse what a newer pg_dump sets (PostgresVersions).
        let settingFilter = try SessionSettingFilter(main)
        try timed("pre-data") { try runPreData(main, settingFilter: settingFilter) }
        let autovacuum = AutovacuumPause(main, tables: manifest.tables, logger: logger)
        let pausedUndo = autovacuum.paused.isEmpty ? nil
            : cleanups.push(describing: { [paused = autovacuum.paused, settings] in AutovacuumPause.leftUndone(paused, settings: settings) }) {
                [paused = autovacuum.paused, settings, logger] in AutovacuumPause.resumeAfterStop(paused, settings: settings, logger: logger)
            }
        do {
            try loadAndBuild(main, settingFilter: settingFilter)
            try autovacuum.resume()
            pausedUndo?.dismiss()
        } catch {
            // Never leave the restore's own temporary settings behind, even on a failed or stopped
            // target: on a connection of its own, as `main` refuses statements once the run is stopped.
            pausedUndo?.run()
            throw error
        }
        // On PostgreSQL 18 the archive's statistics in place of ANALYZE, after every build (which
        // would record its own row counts over them); a table they do not cover is analyzed.
        var imported: Set<String> = []
        if !statisticsToImport(main).isEmpty {
            imported = try timed("statistics") { try importStatistics(only: statisticsToImport(main)) }
        }
        let analyzed = try timed("analyze") {
            progress.begin(phase: "analyze")
            return try RestoreTarget(settings: settings).analyze(jobs: jobs, analyzed: Set(analyzedEarly.items).union(imported))
        }
        statisticsOutcome = outcome(analyzed: Set(analyzedEarly.items).union(analyzed), imported: imported,
                                    serverVersion: main.serverVersionNumber)
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
        var postData = try DumpScript(try text(of: .postData), section: "post-data")
        for index in postData.entries.indices {
            postData.entries[index].settings = try postData.entries[index].settings.filter {
                try filter.keep($0, section: "post-data", line: postData.entries[index].statements.first?.line ?? 0)
            }
        }
        // The target's catalog after pre-data decides the rest: build costs, early ANALYZE.
        let plan = RestorePlan(manifest: manifest, postData: postData, costs: try BuildCostModel(main, tables: manifest.tables),
                               analyzable: try earlyAnalyzable(main).subtracting(statisticsToImport(main)), remote: reader.isRemote)
        let freezable = try freezableTables(main)
        try timed("data and index builds") { try loadDataAndBuilds(plan, freezable: freezable) }
        if !plan.largeObjects.isEmpty {
            try timed("large objects") { try loadLargeObjects(plan.largeObjects) }
        }
        try timed("sequences") { try setSequences(main) }
        eventTriggers = plan.eventTriggers
        for build in plan.builds {
            try timed("post-data: \(build.phase.label)") { try runPostData(build.entries, parallel: build.phase.parallel, main: main) }
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

    func verifyTables() throws -> [String] {
        progress.begin(phase: "verify", steps: manifest.tables.count)
        var problems = try LiveFingerprint.mismatches(manifest: manifest, settings: settings, jobs: jobs) { [progress] in progress.stepDone() }
        if let recorded = manifest.largeObjects {
            problems += LargeObjects.mismatches(try LargeObjects.live(try connect("verify")), recorded: recorded)
        }
        return problems
    }
}
