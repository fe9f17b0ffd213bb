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

    @Option(name: .customLong("object-lock-days"), help: "With an s3:// --dir: S3 Object Lock retention in days on the archive and its sidecar (the bucket must have Object Lock enabled).")
    var objectLockDays: Int?

    @Option(name: .customLong("object-lock-mode"), help: "With --object-lock-days: governance (privileged users may lift it; the default) or compliance (nobody can, not even the root account).")
    var objectLockMode: String?

    @Option(help: ArgumentHelp("With an s3:// --dir: server-side encryption, AES256 or aws:kms.", valueName: "AES256|aws:kms"))
    var sse: String?

    @Option(name: .customLong("sse-kms-key-id"), help: ArgumentHelp("With --sse aws:kms: the KMS key (id, alias or ARN; default: the account's aws/s3 key).", valueName: "id"))
    var sseKMSKeyID: String?

    @OptionGroup var stall: StallOptions
    @OptionGroup var keyOptions: WriteKeyOptions
    @OptionGroup var metrics: MetricsOptions
    @OptionGroup var notifications: NotificationOptions
    var notificationOptions: NotificationOptions? { notifications }

    @Option(name: .customLong("max-shrink"), help: ArgumentHelp("Mark the archive suspect (exit 2, kept) when a table's rows or the whole data fell by more than this since the previous good archive; 100% turns it off.", valueName: "percent"))
    var maxShrink = "50%"

    func validate() throws {
        guard ShrinkCheck.parse(maxShrink) != nil else { throw ValidationError("--max-shrink is a percentage from 0% to 100%") }
        if let objectLockDays, objectLockDays < 1 { throw ValidationError("--object-lock-days must be at least 1") }
        if let objectLockMode {
            guard S3UploadOptions.LockMode(rawValue: objectLockMode.uppercased()) != nil else { throw ValidationError("--object-lock-mode is governance or compliance") }
            if objectLockDays == nil { throw ValidationError("--object-lock-mode goes with --object-lock-days") }
        }
        if let sse, sse != "AES256", sse != "aws:kms" { throw ValidationError("--sse is AES256 or aws:kms") }
        if sseKMSKeyID != nil, sse != "aws:kms" { throw ValidationError("--sse-kms-key-id goes with --sse aws:kms") }
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
            if !directoryOptions.isS3, objectLockDays != nil || sse != nil {
                throw ToolError(.usage, "--object-lock-days and --sse need an s3://bucket/prefix --dir")
            }
            var upload = S3UploadOptions()
            upload.objectLockDays = objectLockDays
            upload.objectLockMode = S3UploadOptions.LockMode(rawValue: (objectLockMode ?? "governance").uppercased())!
            upload.serverSideEncryption = sse
            upload.kmsKeyID = sseKMSKeyID
            var options = BackupOptions(store: try directoryOptions.store(upload: upload, clock: context.clock), jobs: try Defaults.jobs(requested: jobs),
                                        compressors: compressors ?? Defaults.cores)
            options.prefix = prefix
            (options.codec, options.compressionLevel) = compression!
            options.lockTimeoutMilliseconds = Int(lockTimeout * 1000)
            options.maxShrink = ShrinkCheck.parse(maxShrink)!
            options.keys = try keyOptions.keys()
            let runner = BackupRunner(settings: settings, options: options, logger: logger, context: context)
            let progress = runner.progress
            let display = ProgressDisplay(logger: logger) { progress.line() }
            let report: BackupReport
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
                               + "\(ProgressDisplay.bytes(report.sizeBytes)) in \(String(format: "%.1f", report.durationSeconds)) s")
            if global.json {
                try Reporting.printJSON(report)
            } else {
                print("Backed up \(settings.description) to \(report.file)")
                print("  \(Plural.of(report.tables, "table")), \(Plural.of(report.rows, "row")), \(ProgressDisplay.bytes(report.bytesIn)) of COPY text -> "
                      + "\(ProgressDisplay.bytes(report.sizeBytes)) (ratio \(String(format: "%.1f", report.ratio))) in \(String(format: "%.1f", report.durationSeconds)) s")
                print("  sha256 \(report.sha256)" + (report.encrypted ? ", encrypted (age)" : "") + (report.signed ? ", signed (minisign)" : ""))
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
        }
    }
}
