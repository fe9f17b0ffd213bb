import ArgumentParser
import Foundation
import RGWPostgres
import RackGatewayDB

struct DrillCommand: ToolCommand {
    var outputOptions: OutputOptions { global.output }

    static let configuration = CommandConfiguration(
        commandName: "drill",
        abstract: "Prove an archive restores: restore into a scratch database, check it, report, drop it.",
        discussion: """
            Restores into rgw_drill_<UTC timestamp> on --scratch-url (default: the configured database's \
            server), then checks, each with a PASS/FAIL line: rows and fingerprints against the manifest, \
            sequences at or past their column's maximum, constraints and indexes valid, the audit chain \
            (contiguous and linked, starting where a recorded prune ended; audit.verify_chain when present), \
            the WORM anchors when configured, and that the database's own migrations apply (--migrations DIR \
            of its set, or the application's --migrate-command; a foreign set is not applied and the check \
            is reported NOT CHECKED). Reports the \
            restore time (RTO) and the backup's age at the drill (not the RPO: report measures that from the gaps between backups), appends a line to drills.jsonl next to the \
            archive, and drops the scratch database even on failure or Ctrl-C (unless --keep). \
            Exit 0 when every check passes, 2 when one fails (or, with --latest, when the newest archive \
            does not verify: the newest good one is drilled in its place and reported as such), 1 when the \
            drill could not run, 130/143/129 when Ctrl-C, SIGTERM or SIGHUP stopped it (the scratch database \
            is dropped first). \
            With --existing-url URL, nothing is restored: a database restored by something else (an RDS \
            snapshot or point-in-time restore, a promoted replica) is checked in place, every session \
            read-only: sequences, constraints and indexes, materialized views, the audit chain, the WORM \
            anchors, the audit history against ARCHIVE or --latest (NOT CHECKED without one), and its \
            migrations against the set or --migrate-command in a form that only reads; with an archive also \
            its tables, columns, rows (none emptied or halved), constraints, indexes, audit triggers and \
            recorded migrations (a database older than the archive is compared up to its last event; \
            --latest takes the newest archive whose audit chain does not go past the database's), and writes \
            during the drill are measured (any \
            fails it); recorded as a drill of kind existing (in --dir without an archive), metrics \
            rgw_drill_existing_*.
            """)

    @OptionGroup var global: GlobalOptions
    @OptionGroup var directoryOptions: DirectoryOptions
    @OptionGroup var choice: ArchiveChoice
    @OptionGroup var migrationOptions: MigrationOptions
    @OptionGroup var migrateCommandOptions: MigrateCommandOptions

    @Option(name: .customLong("audit-anchors"), help: ArgumentHelp("The application's WORM anchors to check the restored chain head against (default: from AUDIT_ANCHOR_BUCKET and AUDIT_ANCHOR_CHAIN_ID).", valueName: "s3://bucket/chain-id"))
    var auditAnchors: String?

    @Option(name: .customLong("existing-url"), help: ArgumentHelp("Check this database, restored by something else (an RDS snapshot or point-in-time restore, a replica promoted by hand), in place and read-only instead of restoring an archive; ARCHIVE or --latest is then optional: the audit history is checked against it.", valueName: "url"))
    var existingURL: String?

    @Option(name: .customLong("scratch-url"), help: ArgumentHelp("Server for the scratch database (default: the configured database's server).", valueName: "url"))
    var scratchURL: String?

    @Flag(help: "Keep the scratch database afterwards.")
    var keep = false

    @Flag(name: .customLong("allow-downgrade"), help: "Try an archive of a newer PostgreSQL major version on an older scratch server.")
    var allowDowngrade = false

    @OptionGroup var jobsOption: JobsOption
    @OptionGroup var stall: StallOptions

    @OptionGroup var notifications: NotificationOptions
    var notificationOptions: NotificationOptions? { notifications }
    @OptionGroup var metrics: MetricsOptions

    func validate() throws {
        if existingURL == nil { try choice.requireOne() }
        // --existing-url without an archive: --dir is where drills.jsonl goes.
        try choice.checkDirectory(directoryOptions, usedOtherwise: existingURL != nil && choice.archive == nil)
        if existingURL != nil {
            let given = [(scratchURL != nil, "--scratch-url"), (keep, "--keep"), (allowDowngrade, "--allow-downgrade"), (jobsOption.jobs != nil, "--jobs"),
                         (stall.stallTimeout != nil, "--stall-timeout"), (global.databaseURL != nil, "--database-url")].filter(\.0).map(\.1)
            let keys = [(choice.keyOptions.identityOption.identity != nil, "--identity"), (choice.keyOptions.verifyKey != nil, "--verify-key")].filter(\.0).map(\.1)
            if choice.archive == nil && !choice.latest, let key = keys.first {
                throw ValidationError("\(key) reads an archive; --existing-url without ARCHIVE or --latest reads none")
            }
            if let first = given.first {
                throw ValidationError("\(first) does not apply with --existing-url (the drill restores nothing: it checks that database in place, read-only\(first == "--database-url" ? ", and --existing-url names it" : ""))")
            }
        }
        if migrationOptions.migrations != nil && migrateCommandOptions.migrateCommand != nil {
            throw ValidationError("--migrations and --migrate-command exclude each other (the drill checks one way of migrating)")
        }
    }

    func run(_ context: RunContext) throws {
        if let existingURL { return try runExisting(existingURL, context) }
        let logger = context.logger
        // `dir` where --dir applies (--latest, a bare name); the database is the configured one's.
        let usesDirectory = choice.latest || choice.archive.map(DirectoryOptions.isBareName) == true
        try metrics.start("drill", labels: ["database": "unknown"].merging(usesDirectory ? ["dir": directoryOptions.metricsLabel] : [:]) { $1 },
                          context: context)
        do {
            let scratch = try scratchURL.map { context.connections(try GlobalOptions.connectionSettings(url: $0, option: "--scratch-url")) } ?? global.connectionSettings(context)
            let configured = scratchURL == nil ? scratch : try? global.connectionSettings(context)
            MetricsRecorder.label("database", configured?.databaseName ?? scratch.databaseName ?? "unknown")
            // Options first: a wrong --migrations is a usage error before any archive is read.
            let migrations = try migrationOptions.load()
            let anchors = try AuditAnchorSource.resolve(option: auditAnchors, environment: context.environment,
                                                        endpoint: directoryOptions.s3.s3Endpoint)
            // The scratch server first: a wrong URL or password is said before the archive is
            // checked through (from S3, a whole download), as a restore does.
            // The database given first, as a restore probes its target: a wrong password is then
            // said of it, not of template1 (the maintenance database tried when it is `postgres`).
            _ = try RestoreTarget(settings: scratch).connectionToItOrItsServer()
            let archive: ArchiveLocation
            // What --latest chose: opened and checked once, and drilled as it is.
            let chosen: ArchiveDirectory.Chosen?
            var newestProblem: ArchiveDirectory.NewestProblem?
            let fetch = Stopwatch()
            if choice.latest {
                // The newest archive is the news: when it does not verify the drill exits 2, after
                // drilling the newest good archive in its place (reported as such).
                let directory = try directoryOptions.archiveDirectory(clock: context.clock)
                let latest = try Reporting.beforeAnyChange(context, "the archives were fetched and checked", nothing: Self.nothingDrilled) {
                    try choice.resolveLatest(directoryOptions, logger: logger, clock: context.clock)
                }
                newestProblem = latest.newestProblem
                MetricsRecorder.record([Self.newestGauge(failed: newestProblem != nil)])
                if let wrong = latest.foreignKey {
                    throw ToolError(.signatureInvalid, "drill --latest: " + ArchiveChoice.foreignKeyProblem(wrong, latest: latest, in: directory.directory) + "; nothing was drilled",
                                    fix: ArchiveSignature.wrongKeyFix(wrong))
                }
                guard let taken = latest.chosen else {
                    let problem = latest.newestProblem!
                    throw ToolError(problem.code, "drill --latest: " + problem.describe(in: directory.directory) + "; no older archive is good either: nothing was drilled",
                                    fix: problem.wrongKey.map(ArchiveSignature.wrongKeyFix) ?? "Find out what happened to the archive (verify ARCHIVE), and make a good backup now.")
                }
                if let problem = newestProblem {
                    Reporting.printError("drill --latest: " + problem.describe(in: directory.directory) + "; drilling the newest good archive, \(taken.archive.path), in its place")
                }
                (archive, chosen) = (taken.archive, taken)
            } else {
                (archive, chosen) = try Reporting.beforeAnyChange(context, "the archive was fetched and checked", nothing: Self.nothingDrilled) {
                    try choice.resolve(directoryOptions, logger: logger, clock: context.clock)
                }
            }
            var options = DrillOptions(scratch: scratch, jobs: try jobsOption.resolved(), migrations: migrations)
            options.keep = keep
            options.allowDowngrade = allowDowngrade
            // What --latest took to choose and fetch the archive is part of the RTO measured.
            if chosen != nil { options.fetchSeconds = fetch.elapsed }
            options.againArguments = choice.keyOptions.againArguments + (directoryOptions.s3.s3Endpoint.map { ["--s3-endpoint", $0] } ?? [])
                + (jobsOption.jobs.map { ["--jobs", String($0)] } ?? []) + (allowDowngrade ? ["--allow-downgrade"] : [])
            options.migrateCommand = try migrateCommandOptions.command()
            options.anchors = anchors
            let runner = DrillRunner(options: options, logger: logger, context: context)
            var report = try stall.watching("the drill on \(scratch.description)", context: context, progress: runner.progress, server: scratch,
                                            applications: "rack-gateway-db") {
                try chosen.map { try runner.run(reader: $0.reader, preflight: $0.check) } ?? runner.run(archive: archive)
            }
            let drilledPassed = report.ok
            report.newestFailed = newestProblem
            // The drill's verdict: not ok when the newest archive failed, whatever the stand-in did.
            if newestProblem != nil { report.ok = false }
            try? DrillLog.append(report, store: archive.store)
            MetricsRecorder.record(Self.gauges(report))
            Notifications.keep(report, summary: "drill of \(report.archive) " + (report.ok ? "PASSED" : "FAILED")
                               + (report.restored ? ", RTO \(String(format: "%.1f", report.restoreSeconds)) s" : ""))
            if global.json {
                try Reporting.printJSON(report)
            } else {
                printText(report, stopped: context.cancellation.isCancelled)
            }
            if let problem = newestProblem {
                throw ToolError(problem.code, "drill --latest FAILED: \(problem.path), the newest archive, \(problem.kind == .signature ? "fails its signature check" : "does not verify"): "
                                + problem.problems.prefix(3).joined(separator: "; ")
                                + "; the newest good archive, \(report.archive), was drilled in its place and \(drilledPassed ? "passed" : "failed too")",
                                fix: problem.signedBy.map { signedBy in
                                    "The newest archive is signed by key \(signedBy), the one drilled by the key given (\(problem.keyGiven ?? "?")): if the backup host's signing key was rotated, "
                                        + "give its new public key with --verify-key (RGW_VERIFY_KEY); if key \(signedBy) is not yours, find out who signed the newest archive."
                                } ?? "Find out what happened to the newest archive (verify \(problem.path)), and make a good backup now.")
            }
            if let error = report.error, context.cancellation.isCancelled {
                throw ToolError(.interrupted, "drill of \(report.archive) stopped: \(error); \(report.scratchOutcome)")
            }
            if let error = report.error, report.errorCode == ToolError.Code.downgradeRefused.rawValue {
                throw ToolError(.downgradeRefused, "drill of \(report.archive) could not run: \(error)",
                                fix: "Drill on a server of the archive's version or newer (--scratch-url), or pass --allow-downgrade to try anyway (what the older server does not support then fails the drill).")
            }
            if let error = report.error {
                throw ToolError(.failed, "drill of \(report.archive) could not run: \(error)",
                                fix: report.errorFix
                                    ?? "Fix what stopped it (the scratch database's server, --scratch-url or the database URL, must take the restore), then drill again.")
            }
            if !report.ok {
                // The failed checks by name: the one line a ping or a chat message shows.
                let failed = report.checks.filter { !$0.ok }.map(\.name)
                // Only the migrations check failing: the archive restored and matched; the migrate
                // step may be the drill's own environment (the command not found), not the archive.
                let fix = failed.allSatisfy { $0 == "migrations" }
                    ? "The archive restored and matched what was dumped; the migrations check failed: read its line. If the migrate command could not run (not found, exit 127; a variable it needs), fix the drill's environment and drill again; if a migration fails on the restored data, fix the migration before a restore needs it."
                    : "Do not count on \(report.archive) for a restore: the failed checks say what is wrong; drill an older archive, and find out what went wrong with this one."
                throw ToolError(.drillFailed, "drill of \(report.archive) FAILED: \(Plural.of(report.checksFailed, "check")) failed (\(failed.joined(separator: ", ")))", fix: fix)
            }
        }
    }

    /// `drill --existing-url`: the checks on a database restored elsewhere, against the archive when
    /// one is given; recorded in drills.jsonl (the archive's directory, else --dir) as a drill of kind
    /// `existing`, and in the metrics as `rgw_drill_existing_*` (the restore drill's names keep
    /// their meaning).
    func runExisting(_ url: String, _ context: RunContext) throws {
        let logger = context.logger
        let usesDirectory = choice.archive.map(DirectoryOptions.isBareName) ?? true
        // The same labels however the archive is named: `dir` is the archive's directory (its path's, or --dir).
        let dir = usesDirectory ? directoryOptions.metricsLabel : Self.directoryLabel(of: choice.archive!)
        // `server` too: many restored databases (RDS snapshots) share one name; each its own series.
        try metrics.start("drill_existing", labels: ["database": "unknown", "dir": dir, "server": "unknown"], context: context)
        // drills.jsonl goes to --dir without an archive: a directory that is not there is refused now,
        // as a missing --metrics-file directory is, not found out after the checks.
        if choice.archive == nil && !choice.latest && !directoryOptions.isS3 {
            let directory = try directoryOptions.directory
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory.boolValue else {
                throw ToolError(.usage, "\(directoryOptions.source.naming(directoryOptions.chosen)): the directory \(directory) does not exist, and drill --existing-url without an archive records the drill there (\(DrillLog.fileName))",
                                fix: "Give --dir the archive directory (where drills.jsonl and the report are), or create it.")
            }
        }
        let target = context.connections(try GlobalOptions.connectionSettings(url: url, option: "--existing-url"))
        MetricsRecorder.label("database", target.databaseName ?? "unknown")
        MetricsRecorder.label("server", Self.serverLabel(target))
        let migrations = try migrationOptions.load()
        let anchors = try AuditAnchorSource.resolve(option: auditAnchors, environment: context.environment, endpoint: directoryOptions.s3.s3Endpoint)
        var reader: ArchiveReader?
        var newestProblem: ArchiveDirectory.NewestProblem?
        var latestChoice: String?
        if choice.latest, let picked = try Self.archiveItShouldHold(target, directory: try directoryOptions.archiveDirectory(keys: try choice.keyOptions.keys(), clock: context.clock)) {
            // A snapshot older than the newest archive: checked against the archive of its time.
            reader = try picked.0.reader()
            latestChoice = picked.1
        } else if choice.latest {
            let directory = try directoryOptions.archiveDirectory(clock: context.clock)
            let latest = try choice.resolveLatest(directoryOptions, logger: logger, clock: context.clock, command: "drill --existing-url --latest")
            newestProblem = latest.newestProblem
            if let wrong = latest.foreignKey {
                throw ToolError(.signatureInvalid, "drill --existing-url --latest: " + ArchiveChoice.foreignKeyProblem(wrong, latest: latest, in: directory.directory) + "; nothing was checked",
                                fix: ArchiveSignature.wrongKeyFix(wrong))
            }
            guard let taken = latest.chosen else {
                let problem = latest.newestProblem!
                throw ToolError(problem.code, "drill --existing-url --latest: " + problem.describe(in: directory.directory) + "; no older archive is good either: nothing was checked",
                                fix: "Find out what happened to the archive (verify ARCHIVE), or drill --existing-url without an archive.")
            }
            if let problem = newestProblem {
                Reporting.printError("drill --existing-url --latest: " + problem.describe(in: directory.directory) + "; checking against the newest good archive, \(taken.archive.path), in its place")
            }
            reader = taken.reader
        } else if choice.archive != nil {
            reader = try choice.resolve(directoryOptions, logger: logger, clock: context.clock).archive.reader()
        }
        var options = DrillOptions(scratch: target, jobs: 1, migrations: migrations)
        options.migrateCommand = try migrateCommandOptions.command()
        options.anchors = anchors
        let drill = ExistingDrill(settings: target, options: options, logger: logger, context: context)
        let display = drill.progress.display(logger: logger)
        var report = try { defer { display.stop() }; return try drill.run(reader: reader) }()
        report.latestChoice = latestChoice
        report.complete = report.checks.contains { $0.name == ExistingDrill.historyCheck && $0.checked }
        if let database = report.database { MetricsRecorder.label("server", "\(database.host):\(database.port)") }
        let checkedPassed = report.ok
        report.newestFailed = newestProblem
        if newestProblem != nil { report.ok = false }
        // Next to the archive; without one, in --dir.
        do {
            try DrillLog.append(report, store: try reader?.archive.store ?? directoryOptions.store(clock: context.clock))
        } catch {
            TerminalOutput.shared.writeLine("rack-gateway-db: warning: the drill was not recorded in \(DrillLog.fileName): \(error)")
        }
        MetricsRecorder.record(Self.gauges(report, prefix: "rgw_drill_existing"))
        if report.ok && reader == nil {
            // A pass without an archive checked less (not the audit history): it must not clear the
            // alarm of an earlier failure, so it sets its own timestamp, not last_success.
            MetricsRecorder.record([.init("rgw_drill_existing_last_partial_success_timestamp_seconds",
                                          "Unix time of the last drill --existing-url that passed without an archive (its audit history not checked).",
                                          context.clock.now().timeIntervalSince1970)])
            MetricsRecorder.current?.partial = true
        }
        let name = report.database?.description ?? target.description
        Notifications.keep(report, summary: "drill of the existing database \(name) " + (report.ok ? "PASSED" : "FAILED"))
        if global.json {
            try Reporting.printJSON(report)
        } else {
            printExisting(report, target: target, stopped: context.cancellation.isCancelled)
        }
        if let problem = newestProblem {
            throw ToolError(problem.code, "drill --existing-url --latest FAILED: \(problem.path), the newest archive, does not verify: " + problem.problems.prefix(3).joined(separator: "; ")
                            + "; the database was checked against the newest good archive, \(report.archive), and \(checkedPassed ? "passed" : "failed too")",
                            fix: "Find out what happened to the newest archive (verify \(problem.path)), and make a good backup now.")
        }
        if let error = report.error, context.cancellation.isCancelled {
            throw ToolError(.interrupted, "drill of the existing database \(target.description) stopped: \(error)")
        }
        if let error = report.error {
            let fix = error.contains("row-level security")
                ? "Give --existing-url a role that reads every row (BYPASSRLS, as backup's role has, or the table's owner): with fewer rows the checks would judge a part of the table."
                : "Check --existing-url (the server must be up and this role able to connect and read every table), then drill again."
            // The same code as check and diff give for the same cause (database_auth_failed, ...).
            throw ToolError(report.errorCode.flatMap(ToolError.Code.init(rawValue:)) ?? .failed, "drill of the existing database \(target.description) could not run: \(error)", fix: fix)
        }
        if let wrong = report.checks.first(where: { $0.name == ExistingDrill.historyCheck && $0.detail.hasPrefix(ExistingDrill.unrelatedPrefix) }) {
            throw ToolError(.usage, "drill of the existing database \(name): the archive is not of this database: " + wrong.detail.dropFirst(ExistingDrill.unrelatedPrefix.count),
                            fix: "Give an archive of this database (inspect ARCHIVE shows its source database), or none.")
        }
        if !report.ok {
            let failed = report.checks.filter { !$0.ok }.map(\.name)
            let history = report.checks.first { $0.name == ExistingDrill.historyCheck && !$0.ok }.map { ": \($0.detail)" } ?? ""
            throw ToolError(.drillFailed, "drill of the existing database \(name) FAILED: \(Plural.of(report.checksFailed, "check")) failed (\(failed.joined(separator: ", ")))\(history)",
                            fix: "Do not put this database in service as it is: the failed checks say what is wrong with it; restore another snapshot or time, or restore an archive (drill ARCHIVE first).")
        }
    }

    func printExisting(_ report: DrillReport, target: ConnectionSettings, stopped: Bool) {
        if let newest = report.newestFailed {
            print("NEWEST ARCHIVE FAILED: \(newest.path) does not verify: \(newest.problems.prefix(3).joined(separator: "; "))")
        }
        print("Drill of the existing database \(report.database?.description ?? target.description), read-only, "
              + (report.path.isEmpty ? "without an archive" : "against \(report.path)"))
        if let choice = report.latestChoice { print("  NOTE  --latest: \(choice)") }
        if report.sameAsSource == true, let database = report.database {
            print("  NOTE  this is the archive's own source database (\(database.host):\(database.port)/\(database.dbname), as its manifest records), not a copy restored elsewhere")
        }
        if let suspect = report.suspect { print("  NOTE  the archive is marked SUSPECT by its backup: \(suspect)") }
        for check in report.checks {
            print("  \(check.verdict)  \(check.name): \(check.detail)")
        }
        // Said only when measured and true (the read-only check).
        let written = report.checks.first { $0.name == "read-only" && $0.checked && $0.ok } != nil ? "nothing was written to the database (measured); " : ""
        print("  no restore (RTO not measured); \(written)drill \(String(format: "%.1f", report.durationSeconds)) s")
        let unchecked = report.checksNotChecked == 0 ? "every check passed" : "every check made passed, \(report.checksNotChecked) not checked"
        // Without an archive the history is not checked: the verdict says so in its first words.
        let partial = report.checks.contains { $0.name == ExistingDrill.historyCheck && !$0.checked } ? " (audit history NOT CHECKED: no archive)" : ""
        print(report.ok ? "Drill PASSED\(partial): \(unchecked)." : report.newestFailed != nil ? "Drill FAILED: the newest archive did not verify." : report.error != nil ? "Drill \(stopped ? "STOPPED" : "could not run") (\(report.error!))." : "Drill FAILED.")
    }

    /// `drill --existing-url --latest` on a database older than the newest good archive (a snapshot
    /// taken before it): the newest good archive whose audit log ends at or before the database's,
    /// whose events the database should all hold, and why it was chosen; nil when that is the newest,
    /// or the database's audit log cannot be read (the newest is used). The ends are compared by the
    /// sequence behind `chain_index` (the database's value against each archive's manifest, newest
    /// first, a manifest read each: an archive of this very state has the same value); without one,
    /// by time: the newest archive taken at or before the database's newest audit event.
    static func archiveItShouldHold(_ target: ConnectionSettings, directory: ArchiveDirectory) throws -> (ArchiveLocation, String)? {
        guard let connection = try? target.readOnly().open(.drill),
              (try? connection.query("SELECT to_regclass('audit.audit_event') IS NOT NULL").scalar) == "t" else { return nil }
        let good = try directory.entries().filter(directory.isGood).sorted { $0.time > $1.time }
        guard let newest = good.first else { return nil }
        // The chain_index sequence: its schema, name and last value given (NULL before its first call).
        if let row = try? connection.query("""
            SELECT s.schemaname, s.sequencename, s.last_value::text FROM pg_catalog.pg_sequences s
            WHERE to_regclass(format('%I.%I', s.schemaname, s.sequencename)) = to_regclass(pg_catalog.pg_get_serial_sequence('audit.audit_event', 'chain_index'))
            """).rows.first, let schema = row[0], let name = row[1], let value = row[2].flatMap({ Int64($0) }) {
            var newer = 0
            for entry in good {
                guard let manifest = try? directory.location(of: entry).reader().manifest,
                      let archived = manifest.sequences.first(where: { $0.schema == schema && $0.name == name }),
                      let archivedValue = Int64(archived.value) else { break }
                let archivedLast = archived.isCalled ? archivedValue : archivedValue - 1
                if archivedLast <= value {
                    guard newer > 0 else { return nil }
                    return (directory.location(of: entry), "chose \(entry.file), the newest archive whose audit log ends at or before this database's "
                            + "(\(schema).\(name), behind audit.audit_event's chain_index: \(archivedLast) in the archive, \(value) here): "
                            + "\(Plural.of(newer, "newer archive")) (the newest \(newest.file)) hold events this database does not have")
                }
                newer += 1
            }
            if newer == good.count { return nil }
        }
        guard let text = (try? connection.query("SELECT extract(epoch FROM max(\"timestamp\"))::text FROM audit.audit_event").scalar) ?? nil,
              let epoch = Double(text) else { return nil }
        let newestEvent = Date(timeIntervalSince1970: epoch)
        guard newest.time > newestEvent, let older = good.first(where: { $0.time <= newestEvent }) else { return nil }
        let newer = good.prefix { $0.time > newestEvent }.count
        return (directory.location(of: older), "chose \(older.file), the newest archive taken at or before the database's newest audit event (\(UTCTime.iso8601(newestEvent))): "
                + "\(Plural.of(newer, "newer archive")) (the newest \(newest.file)) hold events this database cannot have")
    }

    /// The metrics `server` label of `drill --existing-url`: `host:port` as the drill's identity has
    /// it (the URL's, as given), so two servers' databases of one name keep their own series.
    static func serverLabel(_ target: ConnectionSettings) -> String {
        "\(target.effectiveValue("host") ?? "unknown"):\(target.effectiveValue("port") ?? "5432")"
    }

    /// A metrics `dir` label for an archive given by path: its directory (absolute), or its S3 prefix.
    static func directoryLabel(of archive: String) -> String {
        if archive.hasPrefix("s3://") { return String(archive[..<(archive.lastIndex(of: "/") ?? archive.endIndex)]) }
        return URL(fileURLWithPath: archive).standardizedFileURL.deletingLastPathComponent().path
    }

    static func newestGauge(failed: Bool) -> PrometheusFile.Gauge {
        .init("rgw_drill_newest_archive_failed", "1 when the last drill --latest found the newest archive not verifying (it drilled an older one, or none), else 0.", failed ? 1 : 0)
    }

    /// A drill stopped before its restore: what `scratch_fate` would say, said in the message.
    static let nothingDrilled = "nothing was changed; no scratch database was created"

    func printText(_ report: DrillReport, stopped: Bool = false) {
        if let newest = report.newestFailed {
            print("NEWEST ARCHIVE FAILED: \(newest.path) \(newest.kind == .signature ? "fails its signature check" : "does not verify"): \(newest.problems.prefix(3).joined(separator: "; "))")
            print("Drilling the newest good archive in its place.")
        }
        print("Drill of \(report.path) in scratch database \(report.scratchDatabase.isEmpty ? "(none)" : report.scratchDatabase)"
              + (report.scratchServerVersion.map { " (PostgreSQL \($0))" } ?? ""))
        if let suspect = report.suspect { print("  NOTE  the archive is marked SUSPECT by its backup: \(suspect)") }
        for check in report.checks {
            print("  \(check.verdict)  \(check.name): \(check.detail)")
        }
        // A restore that did not finish measured no recovery time: 0.0 s would read as one.
        let rto = report.restored ? "RTO (measured restore) \(String(format: "%.1f", report.restoreSeconds)) s" : "RTO not measured (no restore finished)"
        print("  \(rto); backup age at drill \(ProgressDisplay.duration(report.backupAgeSeconds)); "
              + "archive \(ProgressDisplay.bytes(report.archiveBytes)), \(Plural.of(report.tables ?? 0, "table")), \(Plural.of(report.rows ?? 0, "row")); drill \(String(format: "%.1f", report.durationSeconds)) s")
        let fate = report.scratchDatabase.isEmpty ? "" : "; " + report.scratchOutcome
        let unchecked = report.checksNotChecked == 0 ? "every check passed" : "every check made passed, \(report.checksNotChecked) not checked"
        if let newest = report.newestFailed {
            print("Drill FAILED: the newest archive \(newest.file) did not verify; the older archive \(report.archive) was drilled in its place and "
                  + (report.error == nil && report.checksFailed == 0 ? "\(unchecked)" : "failed too") + "\(fate).")
        } else {
            // A drill that could not run says why here too (a log may keep only stdout).
            print(report.ok ? "Drill PASSED: \(unchecked)\(fate)." : stopped ? "Drill STOPPED (\(report.error ?? "interrupted"))\(fate)."
                  : report.error.map { "Drill FAILED (it could not run: \($0))\(fate)." } ?? "Drill FAILED\(fate).")
        }
    }

    /// What a drill measured; the restore's measures only when it passed (a drill of an older
    /// archive in place of a newest that failed is no success). The outcome's timestamp
    /// (`rgw_drill_last_success_timestamp_seconds` or `..._last_failure_...`) comes with the run's end.
    /// `drill --existing-url`'s are `rgw_drill_existing_*`: its checks, not-checked and duration.
    static func gauges(_ report: DrillReport, prefix: String = "rgw_drill") -> [PrometheusFile.Gauge] {
        var gauges: [PrometheusFile.Gauge] = [
            .init("\(prefix)_checks_failed", "Checks that failed in the last drill.", Double(report.checksFailed)),
            .init("\(prefix)_checks_not_checked", "Checks the last drill could not make (e.g. migrations of a foreign set).", Double(report.checksNotChecked)),
            .init("\(prefix)_duration_seconds", "Wall time of the last drill.", report.durationSeconds),
        ]
        if report.ok && report.newestFailed == nil && !report.isExisting {
            gauges += [
                .init("rgw_drill_restore_seconds", "Restore time (RTO) measured by the last passing drill.", report.restoreSeconds),
                .init("rgw_drill_backup_age_seconds", "Age of the drilled backup when the last passing drill started.", report.backupAgeSeconds),
                .init("rgw_drill_bytes", "Archive size of the last passing drill.", Double(report.archiveBytes)),
                .init("rgw_drill_rows", "Rows restored by the last passing drill.", Double(report.rows ?? 0)),
            ]
        }
        return gauges
    }
}
