import ArgumentParser
import Foundation
import RGWPostgres
import RackGatewayDB
import RGWCompression

struct BackupCommand: ToolCommand {
    var outputOptions: OutputOptions { global.output }

    static let configuration = CommandConfiguration(
        commandName: "backup",
        abstract: "Write one dated archive (<prefix>_<YYYYMMDD>T<HHMMSS>Z.sql.gz, or .sql.zst) of the database into --dir.",
        discussion: """
            One consistent snapshot dumped over parallel COPY streams. The archive is a gzip file (with \
            --compress zstd, a zstd file) whose text is a psql script: gunzip -c FILE (zstd -dc FILE) | psql \
            -v ON_ERROR_STOP=1 restores it into an empty database. \
            Exits 3 when another backup of the same database or directory is running.
            """)

    @OptionGroup var global: GlobalOptions
    @OptionGroup var directoryOptions: DirectoryOptions

    @Option(help: "File name prefix.")
    var prefix = "rack_gateway_backup"

    @Option(help: "Parallel COPY connections (default: the number of cores, within DB_MAX_OPEN_CONNS).")
    var jobs: Int?

    @Option(help: "Compression threads (default: the number of cores).")
    var compressors: Int?

    @Option(help: ArgumentHelp("gzip members (a .sql.gz, the default) or zstd frames (a .sql.zst, restored by stock tools with zstd -dc), with an optional level: gzip 0-12 (default 5), zstd 1-19 (default 1).", valueName: "gzip[:LEVEL]|zstd[:LEVEL]"))
    var compress = "gzip"

    @Option(name: .customLong("compress-level"), help: "The level when --compress names none: gzip 1 (fastest) to 12 (smallest), 0 stores the data uncompressed; zstd 1 to 19.")
    var compressLevel: Int32?

    /// The codec and level `--compress` and `--compress-level` name; nil when they are not valid.
    var compression: (codec: MemberCodec, level: Int32)? {
        let parts = compress.split(separator: ":", omittingEmptySubsequences: false)
        guard (1...2).contains(parts.count), let codec = MemberCodec(rawValue: String(parts[0])) else { return nil }
        let level = parts.count == 2 ? Int32(parts[1]) : compressLevel ?? codec.defaultLevel
        guard let level, codec.levels.contains(level) else { return nil }
        return (codec, level)
    }

    @Option(name: .customLong("lock-timeout"), help: "Seconds to wait for a table lock before failing.")
    var lockTimeout: Double = 10

    @OptionGroup var upload: S3UploadFlags

    @Option(name: .customLong("copy-to"), help: ArgumentHelp("After the backup, copy it with its sidecars to this directory or s3://bucket/prefix and verify the copy there, as copy does; repeat for more (default: $RGW_BACKUP_COPY_TO, absolute directories or s3:// locations separated by spaces or commas). A directory must exist. Exits 4 (copy_failed) when the backup succeeded and a copy did not.", valueName: "dir"))
    var copyTo: [String] = []

    @OptionGroup var stall: StallOptions
    @OptionGroup var keyOptions: WriteKeyOptions
    @OptionGroup var metrics: MetricsOptions
    @OptionGroup var notifications: NotificationOptions
    var notificationOptions: NotificationOptions? { notifications }

    @Option(name: .customLong("max-shrink"), help: ArgumentHelp("Mark the archive suspect (exit 2, kept) when a table's rows or the whole data fell by more than this since the previous good archive; 100% turns it off.", valueName: "percent"))
    var maxShrink = "50%"

    func validate() throws {
        guard ShrinkCheck.parse(maxShrink) != nil else { throw ValidationError("--max-shrink is a percentage from 0% to 100%") }
        guard compression != nil else {
            throw ValidationError("--compress is gzip or zstd with an optional :LEVEL, gzip 0-12, zstd 1-19 (also for --compress-level)")
        }
        guard lockTimeout > 0 else { throw ValidationError("--lock-timeout must be positive") }
        guard !prefix.isEmpty, !prefix.contains("/") else { throw ValidationError("--prefix must be a file name prefix without /") }
        if let compressors, compressors < 1 { throw ValidationError("--compressors must be at least 1") }
    }

    func run(_ context: RunContext) throws {
        do {
            try metrics.start("backup", labels: ["database": "unknown", "dir": directoryOptions.metricsLabel], context: context)
            let settings = try global.connectionSettings(context)
            MetricsRecorder.label("database", settings.databaseName ?? "unknown")
            let logger = context.logger
            let copyTargets = try copyDestinations()
            try upload.checkApplies(writesToS3: directoryOptions.isS3 || copyTargets.contains { $0.hasPrefix("s3://") }, where: "--dir or --copy-to")
            var options = BackupOptions(store: try directoryOptions.store(upload: upload.upload, clock: context.clock), jobs: try Defaults.jobs(requested: jobs),
                                        compressors: compressors ?? Defaults.cores)
            // Each destination's store before the backup: a usage error (a malformed location, the
            // backup's own --dir, one given twice) is refused before any work; a destination that
            // cannot be opened (no credentials, a profile, a region lookup) is a failed copy after
            // the backup, never the end of it.
            let copyStores = try copyTargets.map { target in
                do {
                    return CopyDestination(location: try CopyCommand.locationName(target),
                                           store: .success(try directoryOptions.s3.store(target, upload: upload.upload, clock: context.clock)))
                } catch let error as ToolError where error.code == .usage {
                    throw error
                } catch {
                    return CopyDestination(location: try CopyCommand.locationName(target), store: .failure(ToolError(reporting: error)))
                }
            }
            if let same = copyStores.first(where: { ArchiveCopy.normalized($0.location) == ArchiveCopy.normalized(options.store.location) }) {
                throw ToolError(.usage, "--copy-to \(same.location) is the backup's own --dir: a copy goes somewhere else",
                                fix: "Give --copy-to another directory or s3://bucket/prefix.")
            }
            for (index, store) in copyStores.enumerated() {
                if let earlier = copyStores[..<index].first(where: { ArchiveCopy.normalized($0.location) == ArchiveCopy.normalized(store.location) }) {
                    throw ToolError(.usage, "--copy-to \(copyTargets[index]) is the same place as \(earlier.location), given before",
                                    fix: "Give each destination once.")
                }
            }
            options.prefix = prefix
            (options.codec, options.compressionLevel) = compression!
            options.lockTimeoutMilliseconds = Int(lockTimeout * 1000)
            options.maxShrink = ShrinkCheck.parse(maxShrink)!
            options.keys = try keyOptions.keys()
            let runner = BackupRunner(settings: settings, options: options, logger: logger, context: context)
            let progress = runner.progress
            let display = ProgressDisplay(logger: logger) { progress.line() }
            var report: BackupReport
            let watchdog = try stall.watchdog("the backup of \(settings.description)", context: context) {
                let p = progress.snapshot()
                return p.bytesIn + p.bytesOut + p.tablesDone
            }
            defer { watchdog.stop() }
            do {
                report = try runner.run()
                display.stop()
            } catch {
                display.stop()
                throw error
            }
            if !copyStores.isEmpty {
                report.copies = try copies(of: report, from: options.store, to: copyStores, keys: options.keys, context: context)
            }
            let failedCopies = (report.copies ?? []).filter { $0.outcome == .failed }
            if !copyStores.isEmpty {
                MetricsRecorder.record([
                    .init("rgw_backup_copies_failed", "Copies (--copy-to) of the last backup that were not made or did not verify.", Double(failedCopies.count)),
                ])
            }
            // A SUSPECT archive is no success: its run ends with last_success unchanged (RunMetrics.Outcome).
            MetricsRecorder.record([
                .init("rgw_backup_suspect", "1 when the last backup shrank past --max-shrink since the previous good one (kept, marked suspect).", report.suspect == nil ? 0 : 1),
            ])
            if report.suspect == nil {
                MetricsRecorder.record([
                    .init("rgw_backup_duration_seconds", "Wall time of the last successful backup.", report.durationSeconds),
                    .init("rgw_backup_size_bytes", "Size of the last successful backup archive.", Double(report.sizeBytes)),
                    .init("rgw_backup_rows", "Rows in the last successful backup.", Double(report.rows)),
                    .init("rgw_backup_tables", "Tables in the last successful backup.", Double(report.tables)),
                ])
            }
            Notifications.keep(report, summary: (report.suspect == nil ? "backed up " : "SUSPECT backup of ") + "\(settings.description) to \(report.file), "
                               + "\(ProgressDisplay.bytes(report.sizeBytes)) in \(String(format: "%.1f", report.durationSeconds)) s"
                               + failedCopies.map { "; its copy to \($0.destination) FAILED" }.joined())
            if global.json {
                try Reporting.printJSON(report)
            } else {
                print("Backed up \(settings.description) to \(report.file)")
                print("  \(Plural.of(report.tables, "table")), \(Plural.of(report.rows, "row")), \(ProgressDisplay.bytes(report.bytesIn)) of COPY text -> "
                      + "\(ProgressDisplay.bytes(report.sizeBytes)) (ratio \(String(format: "%.1f", report.ratio))) in \(String(format: "%.1f", report.durationSeconds)) s")
                print("  sha256 \(report.sha256)" + (report.encrypted ? ", encrypted (age)" : "") + (report.signed ? ", signed (minisign)" : ""))
                for copy in report.copies ?? [] {
                    switch copy.outcome {
                    case .copied: print("  copied to \(copy.destination) in \(String(format: "%.1f", copy.durationSeconds)) s, checked \(copy.checks.joined(separator: ", "))"
                                        + (copy.notChecked.isEmpty ? "" : "; not checked: " + copy.notChecked.joined(separator: ", ")))
                    case .skipped: print("  already at \(copy.destination) (the same SHA-256)")
                    case .failed, .forgotten: print("  copy to \(copy.destination) FAILED: \(copy.problems.joined(separator: "; "))")
                    }
                }
            }
            if report.tables == 0 {
                // Written and good, but almost never what was meant: the wrong database, or a
                // migration that never ran. Said on stderr; the exit stays 0.
                context.output.writeLine("rack-gateway-db: warning: \(settings.description) has no tables (schema, roles and settings only): "
                                         + "is it the right database (\(settings.source)), and has the application migrated it?")
            }
            if let suspect = report.suspect {
                throw ToolError(.suspectBackup, "the archive is written and kept, but marked SUSPECT: \(suspect)",
                                fix: "Check the database (a truncated table, the wrong database?). If the shrink is intended (a cleanup), take a backup with --max-shrink 100%: that one is good and later backups compare with it.")
            }
            if !failedCopies.isEmpty {
                let name = ArchiveCopier.name(of: report.file)
                // One line: a notification (--notify, --webhook) takes the message's first line.
                throw ToolError(.copyFailed, "the backup is written and verified (\(report.file)), but \(Plural.of(failedCopies.count, "copy", plural: "copies")) of it \(failedCopies.count == 1 ? "was" : "were") not made or did not verify: "
                                + failedCopies.map { "\($0.destination): \($0.problems.joined(separator: ", "))" }.joined(separator: "; "),
                                fix: "Fix the destination (what its line says), then copy the archive again: "
                                    + failedCopies.map { "rack-gateway-db copy --from \(options.store.location) --to \($0.destination) \(name)" }.joined(separator: "; "))
            }
        }
    }

    /// `--copy-to`, else `RGW_BACKUP_COPY_TO` (separated by spaces, commas or semicolons; empty
    /// entries ignored). A relative directory in the variable is refused: a cron job's working
    /// directory is nobody's choice, so it would be a directory made wherever the job ran.
    func copyDestinations() throws -> [String] {
        guard copyTo.isEmpty else {
            if copyTo.contains(where: \.isEmpty) { throw ToolError(.usage, "--copy-to needs a directory or s3://bucket/prefix") }
            return copyTo
        }
        let given = (ProcessInfo.processInfo.environment["RGW_BACKUP_COPY_TO"] ?? "").split { $0.isWhitespace || $0 == "," || $0 == ";" }.map(String.init)
        for destination in given where !destination.hasPrefix("s3://") && !destination.hasPrefix("/") {
            throw ToolError(.usage, "RGW_BACKUP_COPY_TO names \(destination), a relative directory: it would be resolved against whatever directory the backup runs in",
                            fix: "Give absolute directories (or s3://bucket/prefix) in RGW_BACKUP_COPY_TO, separated by spaces or commas.")
        }
        return given
    }

    /// The new archive copied to each `--copy-to` destination in turn, as `copy` does it (the
    /// signature checked with the public half of `--sign-key`); a destination that fails is its
    /// result, never the end of the backup. A signal stops the run (the copy in flight discarded).
    func copies(of report: BackupReport, from source: ArchiveStore, to destinations: [CopyDestination], keys: BackupKeys, context: RunContext) throws -> [ArchiveCopier.Result] {
        let name = ArchiveCopier.name(of: report.file)
        var results: [ArchiveCopier.Result] = []
        for target in destinations {
            let destination: ArchiveStore
            switch target.store {
            case .success(let store): destination = store
            case .failure(let error):
                // Its message and fix as the error gives them, on the copy's one line.
                var failed = ArchiveCopier.Result.failed(name, destination: target.location, error: error)
                failed.problems = [error.message + (error.fix.map { " (\($0.hasSuffix(".") ? String($0.dropLast()) : $0))" } ?? "")]
                ArchiveCopier.recordUnopened(failed, source: source, context: context)
                results.append(failed)
                continue
            }
            var copier = ArchiveCopier(from: source, to: destination, keys: ArchiveKeys(verifyKey: keys.signKey?.publicKey), context: context)
            copier.destinationOption = "--copy-to"
            let progress = copier.progress
            let display = ProgressDisplay(logger: context.logger) { progress.line() }
            defer { display.stop() }
            do {
                results += try copier.copy([name]).archives
            } catch let error as ToolError where error.code == .interrupted {
                // The user ran a backup, not a copy: the fix is the copy command of each destination not reached.
                let left = destinations[results.count...].map { "rack-gateway-db copy --from \(source.location) --to \($0.location) \(name)" }
                throw ToolError(.interrupted, "the backup is written and verified (\(report.file)); " + error.message,
                                fix: "The archive is good; copy it (what is at a destination already is skipped): " + left.joined(separator: "; "))
            } catch {
                results.append(.failed(name, destination: destination.location, error: error))
            }
        }
        return results
    }
}

/// A `--copy-to` destination: its location as the copy names it, and its store, or why it could
/// not be opened (a failed copy after the backup).
struct CopyDestination {
    var location: String
    var store: Result<ArchiveStore, ToolError>
}
