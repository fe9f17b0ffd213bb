import RGWCompression
import Foundation
import Logging
import RGWPostgres

/// `backup`: one consistent snapshot, dumped over parallel COPY streams into an archive (format v1,
/// docs/archive-format.md). `run` reads as its phases, in the order the archive's members go.
public final class BackupRunner: @unchecked Sendable {
    public let settings: ConnectionSettings
    public let options: BackupOptions
    public let logger: Logger
    public let progress = BackupProgress()
    public let context: RunContext
    let connections: ConnectionFactory

    /// Session advisory lock key of `backup` ("RGWDBKUP"); advisory locks are per database.
    public static var advisoryLockKey: Int64 { BackupSnapshot.advisoryLockKey }

    public init(settings: ConnectionSettings, options: BackupOptions, logger: Logger, context: RunContext? = nil) {
        let context = context ?? .detached(logger: logger)
        self.context = context
        self.settings = settings.cancellation == nil ? context.connections(settings) : settings
        self.options = options
        self.logger = logger
        connections = ConnectionFactory(settings: self.settings)
    }

    static func iso8601(_ date: Date) -> String {
        UTCTime.iso8601(date)
    }

    public func run() throws -> BackupReport {
        let stopwatch = Stopwatch()
        // Chunk buffers (megabytes each) are allocated and freed all the time: have glibc map and
        // unmap them instead of keeping freed ones in per-thread arenas, so memory stays flat.
        Memory.mapLargeAllocations(from: 256 * 1024)

        // Phase 1, prerequisites that need no database: pg_dump, the store's lease.
        let pgDump = try PostgresTools.pgDump(environment: options.environment).get()
        // Who holds it, as the local lock file says it: a person can tell a killed run from a running one.
        let started = context.clock.now()
        let lease = try options.store.lease(".\(options.prefix).lock", holder: "backup of \(settings.description), pid \(getpid()) on \(ProcessInfo.processInfo.hostName), since \(UTCTime.iso8601(started))",
                                            at: started)
        defer { lease.release() }

        // Phase 2, the snapshot: lock, export, catalog.
        let snapshot = try BackupSnapshot.open(connections, pgDump: pgDump, lockTimeoutMilliseconds: options.lockTimeoutMilliseconds)
        defer { snapshot.close() }
        logger.info("backup started", metadata: ["database": "\(settings.description)", "snapshot": "\(snapshot.id)",
                                                 "tables": "\(snapshot.catalog.tables.count)", "jobs": "\(options.jobs)"])

        // Phase 3, the archive, member by member in the layout's order.
        let createdAt = context.clock.now()
        let name = ArchiveName.fileName(prefix: options.prefix, date: createdAt, codec: options.codec, encrypted: options.keys.encrypts)
        let writer = try ArchiveWriter(store: options.store, name: name, codec: options.codec, keys: options.keys, cleanups: context.cleanups)
        do {
            let compressor = try MemberCompressor(codec: options.codec, level: options.compressionLevel)
            func append(_ text: String, _ kind: ArchiveManifest.MemberKind) throws {
                try writer.append(try compressor.compressShared(Array(text.utf8)[...]), kind: kind)
            }
            let sections = PgDumpSections(pgDump: pgDump, settings: settings, snapshot: snapshot.id)
            let header = ArchiveHeader(
                toolVersion: RackGatewayDB.toolVersion, createdAt: Self.iso8601(createdAt), fileName: writer.name,
                database: snapshot.database, serverVersion: snapshot.serverVersion, serverMajor: snapshot.coordinator.serverMajorVersion,
                pgDumpVersion: pgDump.version, pgDumpMajor: pgDump.majorVersion, snapshot: snapshot.id,
                roles: snapshot.catalog.roles, properties: snapshot.properties, codec: options.codec,
                tables: snapshot.catalog.tables.map { ($0.schema, $0.name, $0.columns) })
            try append(header.text, .header)
            try append(try sections.preData(snapshot.coordinator), .preData)
            let postData = sections.startPostData(refreshes: SchemaState.refreshText(snapshot.refreshOrder))
            let tables = try TableDump(connections: connections, options: options, progress: progress)
                .run(catalog: snapshot.catalog, snapshot: snapshot.id, writer: writer)
            // The large objects' contents, read by the coordinator inside the same snapshot.
            let largeObjects = try LargeObjects.dump(snapshot.coordinator) { text in
                _ = try writer.append(try compressor.compressShared(text[...]), kind: .largeObjects)
            }
            try append(ArchiveLayout.sequencesText(snapshot.sequences), .sequences)
            try append(try postData.wait(), .postData)
            // Format v2: the planner statistics, after everything they describe was created.
            try append(snapshot.statistics.text, .statistics)

            // Phase 4, the shrink check against the previous good archive, then the manifest.
            let suspect = shrinkCheck(tables, database: snapshot.database)
            var manifest = ArchiveManifest(
                toolVersion: RackGatewayDB.toolVersion, createdAt: Self.iso8601(createdAt), completedAt: Self.iso8601(context.clock.now()),
                database: snapshot.database, serverVersion: snapshot.serverVersion, serverVersionNum: snapshot.coordinator.serverVersionNumber,
                pgDumpVersion: pgDump.version, snapshot: snapshot.id, sessionSettings: DumpSession.manifestSettings,
                schemaMigrations: snapshot.catalog.migrations, roles: snapshot.catalog.roles, members: writer.recordedMembers,
                tables: tables, sequences: snapshot.sequences, suspect: suspect, schemaState: snapshot.schemaState,
                databaseProperties: snapshot.properties.isEmpty ? nil : snapshot.properties, largeObjects: largeObjects,
                codec: options.codec == .gzip ? nil : options.codec.rawValue)
            manifest.sourceHost = "\(settings.effectiveValue("host") ?? settings.effectiveValue("hostaddr") ?? "[local socket]"):\(settings.effectiveValue("port") ?? "5432")"
            progress.finishing(options.store.location.hasPrefix("s3://") ? "uploading the rest of the archive and its sidecars" : "writing the manifest and the sidecars")
            let sha256 = try writer.finish(manifest: manifest, clock: context.clock, compress: { try compressor.compress($0) })
            return report(writer: writer, manifest: manifest, sha256: sha256, stopwatch: stopwatch, snapshot: snapshot.id)
        } catch {
            // A stopped backup says what it left: nothing under the archive's name (the
            // unfinished file removed, the upload aborted).
            // (A stall's own message says what stopped it; it is kept as it is.)
            if writer.discard(), context.cancellation.signal != nil {
                let message = (error as? ToolError)?.message ?? (error as? PostgresError)?.message ?? String(describing: error)
                throw ToolError(.interrupted, message + "; the unfinished archive was removed: nothing is left under \(writer.location)")
            }
            throw error
        }
    }

    /// Why `tables` look like a bad backup next to the previous good archive; nil when they do not.
    func shrinkCheck(_ tables: [ArchiveManifest.Table], database: String) -> String? {
        guard options.maxShrink < 1,
              let previous = ShrinkCheck.previousGood(in: options.store, prefix: options.prefix, database: database) else { return nil }
        let problems = ShrinkCheck(maxShrink: options.maxShrink).problems(tables: tables, previous: previous.summary)
        guard !problems.isEmpty else { return nil }
        let suspect = problems.joined(separator: "; ") + " since \(previous.name)"
        logger.warning("the archive looks like a bad backup; it is kept and marked suspect", metadata: ["why": "\(suspect)"])
        return suspect
    }

    func report(writer: ArchiveWriter, manifest: ArchiveManifest, sha256: String, stopwatch: Stopwatch, snapshot: String) -> BackupReport {
        let size = writer.storedBytes
        let totals = progress.snapshot()
        let report = BackupReport(
            file: writer.location, sha256: sha256, sizeBytes: size, durationSeconds: stopwatch.elapsed,
            tables: manifest.tables.count, rows: manifest.totalRows, bytesIn: totals.bytesIn, bytesOut: size,
            ratio: size > 0 ? Double(totals.bytesIn) / Double(size) : 0, members: manifest.members.count,
            sequences: manifest.sequences.count, jobs: options.jobs, snapshot: snapshot, createdAt: manifest.createdAt, suspect: manifest.suspect,
            encrypted: options.keys.encrypts, signed: options.keys.signKey != nil)
        logger.info("backup written", metadata: ["file": "\(report.file)", "bytes": "\(size)", "rows": "\(report.rows)"])
        return report
    }
}
