import ArgumentParser
import Foundation
import Logging
import RGWPostgres
import RackGatewayDB

/// `ARCHIVE | --latest`, shared by restore and drill.
struct ArchiveChoice: ParsableArguments {
    @Argument(help: "The archive: a path, s3://bucket/prefix/name, or a name as list prints it (the file in the current directory, else the archive in --dir); for restore also a pg_dump file or directory. The format is read from the content.")
    var archive: String?

    @Flag(help: "The newest archive in --dir that verifies.")
    var latest = false

    @OptionGroup var keyOptions: ReadKeyOptions

    func validate() throws {
        if latest, let archive {
            // An option this command does not have, with its value after it (`drill --latest
            // --target-url URL`), leaves the value as the archive path: say what was read.
            throw ValidationError("give an archive path or --latest, not both (\"\(Self.withoutPasswords(archive))\" was read as the archive path; "
                                  + "if it is an option's value, that option is not one of this command's: see --help)")
        }
    }

    /// Neither given: a usage error where an archive is required (all but `drill --existing-url`).
    func requireOne() throws {
        if !latest && archive == nil { throw ValidationError("give an archive path or --latest (one of them)") }
    }

    /// `--dir` applies to `--latest`, a bare name, or the pipeline's `--in-place` (`DirectoryOptions.checkApplies`).
    func checkDirectory(_ options: DirectoryOptions, usedOtherwise: Bool = false) throws {
        try options.checkApplies(archive: archive, latest: latest, usedOtherwise: usedOtherwise)
    }

    /// The archive, and when `--latest` chose it, its opened reader and the archive check already
    /// made (what the restore reads: it is not opened, fetched or hashed again). For restore:
    /// `--latest` stops (exit 2, nothing changed) when the newest archive is not good, naming it,
    /// the newest good one and the command that restores that one.
    func resolve(_ options: DirectoryOptions, logger: Logger, clock: RunClock) throws -> (archive: ArchiveLocation, chosen: ArchiveDirectory.Chosen?) {
        let keys = try keyOptions.keys()
        if let archive { return (try options.location(of: archive, keys: keys, clock: clock), nil) }
        let directory = try options.archiveDirectory(keys: keys, clock: clock)
        let latest = try Self.stoppingOnHostFailure("restore --latest stopped before changing anything") {
            try directory.latest(acceptSuspectNewest: false, logger: logger)
        }
        if let wrong = latest.foreignKey {
            throw ToolError(.signatureInvalid, "restore --latest stopped before changing anything: " + Self.foreignKeyProblem(wrong, latest: latest, in: directory.directory),
                            fix: ArchiveSignature.wrongKeyFix(wrong))
        }
        if let problem = latest.newestProblem {
            var lines = ["restore --latest stopped before changing anything: " + problem.describe(in: directory.directory) + "."]
            var commands: [String] = []
            if let signedBy = problem.signedBy, let given = problem.keyGiven {
                commands.append("If the backup host's signing key was rotated (the newest archive is signed by key \(signedBy), the older ones by the key given, \(given)), "
                                + "give its new public key with --verify-key; if key \(signedBy) is not yours, do not restore the newest archive.")
            }
            if let chosen = latest.chosen {
                lines.append("The newest good archive is \(chosen.archive.path).")
                commands.append("To restore it: " + Self.commandLine(replacingLatestWith: chosen.archive.path, keys: keyOptions.againArguments))
            } else {
                lines.append("No older archive in \(directory.directory) is good either.")
            }
            if problem.kind == .suspect {
                commands.append("To restore the suspect one (its shrink was intended): " + Self.commandLine(replacingLatestWith: problem.path, keys: keyOptions.againArguments))
            }
            if !commands.isEmpty && CommandLine.arguments.contains(where: { $0 != Self.withoutPasswords($0) }) {
                commands.append("(The password is left out of the command: give it with PGPASSWORD or ~/.pgpass.)")
            }
            throw ToolError(problem.code, lines.joined(separator: "\n"),
                            fix: commands.isEmpty ? "Find a good copy of the archive (verify ARCHIVE says what is wrong with one)." : commands.joined(separator: "\n"))
        }
        let chosen = latest.chosen!
        logger.info("--latest chose an archive", metadata: ["archive": "\(chosen.archive.path)"])
        return (chosen.archive, chosen)
    }

    /// For drill: what `--latest` found, the newest archive's problem included (a SUSPECT newest is
    /// drilled: it restores, and the drill says it is suspect).
    func resolveLatest(_ options: DirectoryOptions, logger: Logger, clock: RunClock, command: String = "drill --latest") throws -> ArchiveDirectory.Latest {
        let directory = try options.archiveDirectory(keys: try keyOptions.keys(), clock: clock)
        return try Self.stoppingOnHostFailure("\(command) stopped before drilling anything") {
            try directory.latest(acceptSuspectNewest: true, logger: logger)
        }
    }

    /// `body` (the `--latest` choice), a failure of this host or the store while it reads the
    /// archives (no room in $TMPDIR for the spool, S3 unreachable) said as what stopped the run:
    /// it is no verdict on any archive (`ArchiveDirectory.latest` passes over none for it).
    static func stoppingOnHostFailure<T>(_ stopped: String, _ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch where ArchiveDirectory.isHostFailure(error) && (error as? ToolError)?.code != .interrupted {
            let error = ToolError(reporting: error)
            throw ToolError(error.code, "\(stopped): \(error.message)", fix: error.fix, cause: error)
        }
    }

    /// Every archive checked is signed by one other key than `--verify-key`'s: the key is the news.
    static func foreignKeyProblem(_ wrong: ArchiveSignature.WrongKey, latest: ArchiveDirectory.Latest, in directory: String) -> String {
        let count = latest.foreignlySigned
        let which = count == 1 ? "the only archive in \(directory) whose signature was checked, \(latest.newest.path), is" : "all \(count) archives in \(directory) whose signature was checked are"
        return "\(which) signed by key \(wrong.signedBy), not by the key given with --verify-key (\(wrong.given)): the key given is the likely problem, not the archives"
    }

    /// This run's own command line with `--latest` replaced by `path`, passwords in URLs masked,
    /// quoted for a POSIX shell.
    /// `--dir` goes too (it is where `--latest` looks, and with an archive path a usage error) unless
    /// `--in-place` writes its safety backup there.
    /// `keys` (`ReadKeyOptions.againArguments`: the keys by absolute path, from the options or the
    /// RGW_ variables) adds each key the command line itself does not give: a key from the
    /// environment is kept when the command is pasted where that variable is not set.
    static func commandLine(replacingLatestWith path: String, arguments: [String] = CommandLine.arguments,
                            currentDirectory: String = FileManager.default.currentDirectoryPath, keys: [String] = []) -> String {
        var rest = Array(arguments.dropFirst())
        if !rest.contains("--in-place") {
            var kept: [String] = []
            var index = 0
            while index < rest.count {
                if rest[index] == "--dir" { index += 2; continue }
                if rest[index].hasPrefix("--dir=") { index += 1; continue }
                kept.append(rest[index])
                index += 1
            }
            rest = kept
        }
        // Files by their absolute paths (the archive, keys, migrations), as the command printed
        // after a stop has them: pasted from another directory it still finds them.
        func resolved(_ file: String) -> String { URL(fileURLWithPath: file, relativeTo: URL(fileURLWithPath: currentDirectory, isDirectory: true)).standardizedFileURL.path }
        func absolute(_ file: String) -> String {
            file.hasPrefix("/") || file.contains("://") || !FileManager.default.fileExists(atPath: resolved(file)) ? file : resolved(file)
        }
        let fileOptions: Set = ["--verify-key", "--identity", "--migrations"]
        var words = ["rack-gateway-db"]
        for (index, word) in rest.enumerated() {
            if word == "--latest" {
                words.append(path.contains("://") || path.hasPrefix("/") ? path : resolved(path))
            } else if index > 0, fileOptions.contains(rest[index - 1]) {
                words.append(absolute(word))
            } else if let equals = word.firstIndex(of: "="), fileOptions.contains(String(word[..<equals])) {
                words.append(String(word[...equals]) + absolute(String(word[word.index(after: equals)...])))
            } else {
                words.append(withoutPasswords(word))
            }
        }
        for index in stride(from: 0, to: keys.count - 1, by: 2) where !rest.contains(where: { $0 == keys[index] || $0.hasPrefix(keys[index] + "=") }) {
            words += [keys[index], keys[index + 1]]
        }
        return ShellCommand.line(words)
    }

    /// `postgres://user:secret@host/db?password=x&sslmode=require` -> `postgres://user@host/db?sslmode=require`
    /// (and `password=...` left out of a key=value conninfo): pasted, the command takes the password
    /// from PGPASSWORD or ~/.pgpass, where a masked one would be sent as the password.
    static func withoutPasswords(_ text: String) -> String {
        var text = text
        for (pattern, template) in [("(://[^:/@?#\\s]*):[^@/?#\\s]*@", "$1@"), ("([?&])password=[^&\\s]*&?", "$1"),
                                    ("(^|\\s)password\\s*=\\s*('[^']*'|\\S*)", "$1")] {
            guard let expression = try? NSRegularExpression(pattern: pattern, options: [.caseInsensitive]) else { continue }
            text = expression.stringByReplacingMatches(in: text, range: NSRange(text.startIndex..., in: text), withTemplate: template)
        }
        return text
    }

}

enum Confirmation {
    /// A person answered the question with anything but yes: the run's `not_confirmed` is then their
    /// choice, not an error, and is reported as such (`Reporting.run`).
    nonisolated(unsafe) static var declined = false

    /// `--yes`, else a y/N question on the terminal; false when there is no terminal to ask.
    static func ask(_ question: String, yes: Bool) -> Bool {
        if yes { return true }
        guard isatty(0) == 1 else { return false }
        let confirmed = TerminalOutput.shared.withBarHidden {
            FileHandle.standardError.write(Data("\(question) [y/N] ".utf8))
            guard let answer = readLine()?.trimmingCharacters(in: .whitespaces).lowercased() else { return false }
            return answer == "y" || answer == "yes"
        }
        if !confirmed { declined = true }
        return confirmed
    }
}

/// The pipeline as it runs. At a terminal: a line as each step starts and as it ends (with its
/// time), and while it runs a bar below them: the load's own progress, the wait for processes
/// against its timeout, else the step's elapsed time. Without a terminal the executor's log lines
/// (`pipeline step started`, `pipeline step done` with its seconds) say the same with their
/// timestamps, and the bar's text is logged every few seconds.
final class PipelineDisplay: @unchecked Sendable {
    let state: PipelineState
    let logger: Logger
    let terminal = TerminalOutput.shared.isTTY
    private let lock = NSLock()
    private var progress: ProgressDisplay?

    init(state: PipelineState, logger: Logger) {
        self.state = state
        self.logger = logger
    }

    func started(_ name: String) {
        stop()
        if terminal { TerminalOutput.shared.writeLine("...     \(name)") }
        let stopwatch = Stopwatch()
        let display = ProgressDisplay(logger: logger) { [state] in Self.line(name, state: state, stopwatch: stopwatch) }
        lock.withLock { progress = display }
    }

    func ended(_ step: PipelineStep) {
        stop()
        if terminal { TerminalOutput.shared.writeLine(RestoreCommand.line(step)) }
    }

    func stop() {
        let display = lock.withLock { () -> ProgressDisplay? in defer { progress = nil }; return progress }
        display?.stop()
    }

    /// The line while step `name` runs: the load's own, the wait's time against its timeout, else
    /// the step's elapsed time.
    static func line(_ name: String, state: PipelineState, stopwatch: Stopwatch) -> ProgressLine {
        if name == "load", let load = state.load { return load.line() }
        if name == "wait for processes", let wait = state.wait {
            // The moving field first, no bar: at 60 columns the time against the timeout stays in view.
            let listed = Plural.of(wait.listed.count, "process", plural: "processes") + " of \(wait.service) listed"
            return ProgressLine("waiting: \(ProgressDisplay.duration(wait.stopwatch.elapsed)) of \(ProgressDisplay.duration(wait.timeout)) (--stop-timeout)",
                                short: "waiting: \(ProgressDisplay.duration(wait.stopwatch.elapsed)) of \(ProgressDisplay.duration(wait.timeout))", [
                ProgressLine.Field("\(listed): \(wait.listed.prefix(3).joined(separator: ", "))", listed, priority: 20),
            ])
        }
        return ProgressLine(name, [ProgressLine.Field("\(ProgressDisplay.duration(stopwatch.elapsed)) elapsed", ProgressDisplay.duration(stopwatch.elapsed),
                                                      priority: 90)])
    }
}

extension RestoreProgress {
    func display(logger: Logger) -> ProgressDisplay {
        ProgressDisplay(logger: logger) { [self] in line() }
    }
}

/// The restore pipeline's options (`--convox-app` and what goes with it): one group, validated
/// together, so that none of them is accepted and ignored by a plain restore.
struct PipelineModeOptions: ParsableArguments {
    @Option(name: .customLong("convox-app"), help: ArgumentHelp("Run the Convox pipeline for this app: scale down, restore into a new database, verify, migrate (--migrations DIR of the database's own set, --migrate-command, or --skip-migrate), swap, scale up.", valueName: "app"))
    var convoxApp: String?

    @Option(help: "With --convox-app: the app's service that uses the database (default: gateway).")
    var service: String?

    @Option(help: "With --convox-app: the Convox rack (default: the CLI's own choice).")
    var rack: String?

    @Flag(name: .customLong("in-place"), help: "With --convox-app: back up the live database into --dir's folder pre-restore/, then restore over it (instead of the swap).")
    var inPlace = false

    @Flag(name: .customLong("allow-autoscaled"), help: "With --convox-app: allow a service with MIN/MAX set.")
    var allowAutoscaled = false

    @Option(name: .customLong("stop-timeout"), help: "With --convox-app: seconds to wait for the service's processes to stop (default: 600).")
    var stopTimeout: Double?

    @Option(name: .customLong("scale-to"), help: ArgumentHelp("With --convox-app: the count to scale the service to afterwards (and if the restore is undone), instead of its count at preflight; required when the service is at 0.", valueName: "n"))
    var scaleTo: Int?

    @OptionGroup var migrationOptions: MigrationOptions
    @OptionGroup var migrateCommandOptions: MigrateCommandOptions

    @Flag(name: .customLong("skip-migrate"), help: "With --convox-app: do not migrate the restored database (the report warns).")
    var skipMigrate = false

    /// The pipeline options given on the command line, as typed.
    var given: [String] {
        var names: [String] = []
        if service != nil { names.append("--service") }
        if rack != nil { names.append("--rack") }
        if inPlace { names.append("--in-place") }
        if allowAutoscaled { names.append("--allow-autoscaled") }
        if stopTimeout != nil { names.append("--stop-timeout") }
        if scaleTo != nil { names.append("--scale-to") }
        if migrationOptions.migrations != nil { names.append("--migrations") }
        if migrateCommandOptions.migrateCommand != nil { names.append("--migrate-command") }
        if migrateCommandOptions.migrateTimeout != nil { names.append("--migrate-timeout") }
        if skipMigrate { names.append("--skip-migrate") }
        return names
    }

    func validate() throws {
        if convoxApp == nil, let first = given.first {
            throw ValidationError("\(first) goes with --convox-app (the restore pipeline); a plain restore does not \(first == "--migrations" || first.hasPrefix("--migrate") || first == "--skip-migrate" ? "migrate" : "scale anything")")
        }
        if skipMigrate && migrateCommandOptions.migrateCommand != nil { throw ValidationError("--skip-migrate and --migrate-command exclude each other") }
        if skipMigrate && migrationOptions.migrations != nil { throw ValidationError("--skip-migrate and --migrations exclude each other") }
        if let scaleTo, scaleTo < 0 { throw ValidationError("--scale-to must be 0 or more") }
        if let stopTimeout, stopTimeout <= 0 { throw ValidationError("--stop-timeout must be positive") }
    }
}

struct RestoreCommand: ToolCommand {
    var outputOptions: OutputOptions { global.output }

    static let configuration = CommandConfiguration(
        commandName: "restore",
        abstract: "Load an archive (or a plain, gzip, custom or directory pg_dump) into a database.",
        discussion: """
            Checks the archive (structure and its .sha256) and the target before changing anything. A target \
            that holds any object is refused unless --clean, which drops and recreates it (asks, or --yes). Roles \
            the archive references must exist (--create-missing-roles creates them NOLOGIN). Data loads over \
            --jobs connections; index and constraint builds run in parallel. A failure leaves the target \
            marked FAILED with COMMENT ON DATABASE. Exit 2 when the archive is corrupt or --verify finds a \
            difference. Plain and gzip SQL go through psql --single-transaction, custom and directory dumps \
            through pg_restore. --dry-run prints what would be done and changes nothing. One restore into a \
            database at a time (exit 3 naming the other). Ctrl-C, SIGTERM or SIGHUP stop it: the target is \
            left marked FAILED, and the message says how to clear it (exit 130, 143, 129). With --table or \
            --schema only those tables are restored, in one transaction, into a database that may hold anything \
            else (--into-schema NEW: beside the live ones, printing the SQL that copies missing rows back).
            """)

    @OptionGroup var global: GlobalOptions
    @OptionGroup var stall: StallOptions
    @OptionGroup var directoryOptions: DirectoryOptions
    @OptionGroup var choice: ArchiveChoice

    @Option(name: .customLong("target-url"), help: ArgumentHelp("The database to restore into (default: the configured database); created when missing.", valueName: "url"))
    var targetURL: String?

    @Flag(help: "Drop and recreate a target that already holds any object (ends its sessions).")
    var clean = false

    @Flag(help: "Do not ask: before --clean drops the target, or before the pipeline starts.")
    var yes = false

    @OptionGroup var jobsOption: JobsOption

    @Flag(help: "Re-read every restored table and compare row counts and fingerprints with the manifest.")
    var verify = false

    @Flag(name: .customLong("create-missing-roles"), help: "Create roles the archive references that the server lacks, NOLOGIN.")
    var createMissingRoles = false

    @Flag(name: .customLong("allow-downgrade"), help: "Try an archive of a newer PostgreSQL major version on an older server (refused otherwise).")
    var allowDowngrade = false

    @Option(name: .customLong("maintenance-work-mem"), help: ArgumentHelp("maintenance_work_mem for index builds (e.g. 256MB); default: the server's.", valueName: "size"))
    var maintenanceWorkMem: String?

    @Flag(name: .customLong("dry-run"), help: "Print what would be done (archive checks, the target's state, what is dropped or created, tables, rows, bytes, roles; with --convox-app the pipeline's steps and commands); change nothing.")
    var dryRun = false

    @OptionGroup var pipeline: PipelineModeOptions
    @OptionGroup var tableMode: TableRestoreModeOptions
    @OptionGroup var metrics: MetricsOptions
    @OptionGroup var notifications: NotificationOptions
    var notificationOptions: NotificationOptions? { notifications }

    func validate() throws {
        try choice.requireOne()
        try choice.checkDirectory(directoryOptions, usedOtherwise: pipeline.inPlace)
        if dryRun && metrics.given { throw ValidationError("--metrics-file and --pushgateway report a restore; --dry-run makes none") }
        if tableMode.active, let (_, name) = fullRestoreOnly.first(where: { $0.0 }) {
            throw ValidationError("\(name) does not go with --table/--schema")
        }
        guard pipeline.convoxApp != nil else {
            if yes && !clean { throw ValidationError("--yes answers --clean's question; without --clean a restore asks nothing") }
            return
        }
        // The pipeline makes its own choices for these: given with it, they would be ignored.
        let plainOnly: [(Bool, String)] = [
            (targetURL != nil, "--target-url (the pipeline restores the configured database, --database-url)"),
            (clean, "--clean (the pipeline restores into a new database and swaps, or with --in-place recreates the live one)"),
            (verify, "--verify (the pipeline always verifies)"),
            (createMissingRoles, "--create-missing-roles (the pipeline refuses missing roles before it changes anything)"),
            (allowDowngrade, "--allow-downgrade"),
            (maintenanceWorkMem != nil, "--maintenance-work-mem"),
            (stall.stallTimeout != nil, "--stall-timeout"),
        ]
        if let (_, name) = plainOnly.first(where: { $0.0 }) {
            throw ValidationError("\(name) does not go with --convox-app")
        }
    }

    func runPipeline(app: String, context: RunContext) throws {
        let logger = context.logger
        let liveSettings = try global.connectionSettings(context)
        MetricsRecorder.label("database", liveSettings.databaseName ?? "unknown")
        let live = try RestoreTarget(settings: liveSettings)
        if pipeline.inPlace && directoryOptions.chosen.hasPrefix("s3://") {
            throw ToolError(.usage, "--in-place takes its safety backup into a local --dir, and \(directoryOptions.source.naming(directoryOptions.chosen)) is in S3",
                            fix: "Use the default swap mode (it needs no local directory), or give --dir a local directory and the archive as s3://bucket/prefix/NAME.")
        }
        let migrations = try pipeline.migrationOptions.load()
        let fetch = Stopwatch()
        let (archive, chosen) = try Reporting.beforeAnyChange(context, "the archive was fetched and checked") {
            try choice.resolve(directoryOptions, logger: logger, clock: context.clock)
        }
        var options = PipelineOptions(app: app, jobs: try jobsOption.resolved(), migrations: migrations)
        if chosen != nil {
            options.fetchSeconds = fetch.elapsed
            // In the transcript as a step before the plan's (it is in the report's time, not its steps).
            if TerminalOutput.shared.isTTY {
                TerminalOutput.shared.writeLine("OK      fetch and archive check (--latest) (\(String(format: "%.1f", fetch.elapsed)) s): \(archive.path)")
            }
        }
        options.service = pipeline.service ?? "gateway"
        options.rack = pipeline.rack
        options.dryRun = dryRun
        options.inPlace = pipeline.inPlace
        options.migrateCommand = try pipeline.migrateCommandOptions.command()
        options.skipMigrate = pipeline.skipMigrate
        options.scaleTo = pipeline.scaleTo
        // A folder of its own: in --dir itself, the newest archive there would be the safety backup
        // of the database being replaced, and --latest, list and check would take it for a backup.
        if pipeline.inPlace { options.safetyDirectory = try directoryOptions.directory + "/pre-restore" }
        options.allowAutoscaled = pipeline.allowAutoscaled
        options.stopTimeout = pipeline.stopTimeout ?? 600
        options.environment = context.environment
        if let interval = context.environment["RGW_PIPELINE_POLL_SECONDS"].flatMap(Double.init) { options.pollInterval = interval }
        let runner = RestorePipeline(live: live, options: options, logger: logger, context: context)
        let display = PipelineDisplay(state: runner.state, logger: logger)
        runner.onStepStarted = { display.started($0) }
        runner.onStep = { display.ended($0) }
        let report = runner.run(archive: archive, chosen: chosen) { Confirmation.ask($0, yes: yes) }
        display.stop()
        if !dryRun {
            try? JSONLines.append(report, to: "restores.jsonl", in: archive.store)
        }
        Notifications.keep(report, summary: dryRun ? "dry run of the restore pipeline, nothing was changed" : Self.summary(report, now: context.clock.now()))
        if global.json {
            try Reporting.printJSON(report)
        } else if report.ok {
            if dryRun {
                print("The plan (--dry-run: nothing was changed):")
                for (index, step) in report.steps.filter({ $0.outcome == "planned" }).enumerated() { print("  \(index + 1). \(step.name): \(step.detail)") }
            } else {
                report.recovery.forEach { print($0) }
            }
            for line in report.warnings { print("WARNING: \(line)") }
            if !dryRun { print(Self.summary(report, now: context.clock.now())) }
        }
        if report.errorCode == .notConfirmed && Confirmation.declined { throw ToolError(.notConfirmed, "not confirmed; nothing was changed") }
        if let error = report.error {
            // A stopped pipeline is a failure (1) unless a signal stopped it, another run held its lock, or
            // the archive was found corrupt or badly signed in preflight (2, as for a plain restore). A
            // failed step is `pipeline_step_failed` with the step; before any step, the error's own code.
            let underlying = report.errorCode ?? .failed
            let code: ToolError.Code = [.interrupted, .lockHeld, .archiveCorrupt, .signatureInvalid].contains(underlying) ? underlying
                : report.failedStep != nil ? .pipelineStepFailed : underlying.category == .failed ? underlying : .failed
            // One block: what failed, the state things are in now, what to run.
            let place = report.failedStep.map { " at \($0)" } ?? ""
            let fix = PipelineAftermath(facts: report.now ?? [], commands: report.commands ?? []).lines(advice: report.fix)
            var failure = ToolError(code, "the restore pipeline stopped\(place): \(error)", fix: fix.isEmpty ? nil : fix.joined(separator: "\n"))
            failure.step = report.failedStep
            throw failure
        }
    }

    /// The success's last line: restored from what, the service back at its count, where the
    /// previous database is.
    static func summary(_ report: PipelineReport, now: Date) -> String {
        let name = URL(fileURLWithPath: report.archive).lastPathComponent
        let taken = report.archiveCreatedAt.flatMap { RestorePipeline.taken($0, now: now) }.map { " (taken \($0))" } ?? ""
        let service = report.finalCount.map { $0 == 0 ? "\(report.service) left at 0, as it was" : "\(report.service) scaled back to \($0)" }
            ?? "\(report.service)'s count is unknown"
        let previous = report.previousDatabase.map { "the previous database is kept as \($0)" }
            ?? report.safetyBackup.map { "the previous database is in the safety backup \($0)" } ?? "no previous database was kept"
        return "Restored \(report.database) from \(name)\(taken): \(service); \(previous)."
    }

    /// One step of the transcript for a person: `OK      load (4.2 s): ...`; a failed or stopped
    /// step without its error (the run's message says it, once).
    static func line(_ step: PipelineStep) -> String {
        let detail = step.outcome == "ok" ? ": \(step.detail)" : ""
        return "\(step.outcome.uppercased().padding(toLength: 7, withPad: " ", startingAt: 0)) \(step.name) (\(String(format: "%.1f", step.seconds)) s)\(detail)"
    }

    /// What the command printed to restore again (after a stop or a failure) needs besides the
    /// archive, the target, `--clean` and `--yes`: the keys, and the options of this run that
    /// change what the restore reads, checks or accepts (`RestoreOptions.againArguments`).
    var againArguments: [String] {
        var arguments = choice.keyOptions.againArguments
        if let endpoint = directoryOptions.s3.s3Endpoint { arguments += ["--s3-endpoint", endpoint] }
        if let jobs = jobsOption.jobs { arguments += ["--jobs", String(jobs)] }
        if verify { arguments.append("--verify") }
        if createMissingRoles { arguments.append("--create-missing-roles") }
        if allowDowngrade { arguments.append("--allow-downgrade") }
        if let maintenanceWorkMem { arguments += ["--maintenance-work-mem", maintenanceWorkMem] }
        if let stallTimeout = stall.stallTimeout { arguments += ["--stall-timeout", stallTimeout] }
        return arguments
    }

    func run(_ context: RunContext) throws {
        let logger = context.logger
        if !dryRun {
            let usesDirectory = choice.latest || pipeline.inPlace || choice.archive.map(DirectoryOptions.isBareName) == true
            try metrics.start("restore", labels: ["database": "unknown"].merging(usesDirectory ? ["dir": directoryOptions.metricsLabel] : [:]) { $1 },
                              context: context)
        }
        if let convoxApp = pipeline.convoxApp { return try runPipeline(app: convoxApp, context: context) }
        let settings = try targetURL.map { context.connections(try GlobalOptions.connectionSettings(url: $0, option: "--target-url")) } ?? global.connectionSettings(context)
        MetricsRecorder.label("database", settings.databaseName ?? "unknown")
        if tableMode.active { return try runTables(context, settings: settings) }
        // The target's server first: a wrong URL or password is said before the archive is fetched
        // and checked (from S3, a whole download).
        _ = try RestoreTarget(settings: settings).connectionToItOrItsServer()
        let started = context.clock.now(), stopwatch = Stopwatch()
        let (archive, chosen) = try Reporting.beforeAnyChange(context, "the archive was fetched and checked") {
            try choice.resolve(directoryOptions, logger: logger, clock: context.clock)
        }
        var options = RestoreOptions(jobs: try jobsOption.resolved())
        // --latest's choice and download are the restore's first phase (a recovery pays for them).
        if chosen != nil { options.fetchSeconds = stopwatch.elapsed }
        options.clean = clean
        options.verify = verify
        options.createMissingRoles = createMissingRoles
        options.allowDowngrade = allowDowngrade
        options.maintenanceWorkMem = maintenanceWorkMem
        options.environment = context.environment
        options.againArguments = againArguments
        let runner = RestoreRunner(target: try RestoreTarget(settings: settings), options: options, logger: logger, context: context)
        if dryRun {
            let plan = try chosen.map { try runner.plan(reader: $0.reader, preflight: $0.check) } ?? runner.plan(archive: archive)
            Notifications.keep(plan, summary: "dry run of the restore into \(settings.description), nothing was changed")
            if global.json { try Reporting.printJSON(plan) } else { plan.lines.forEach { print($0) } }
            if let refusal = plan.refusalError { throw refusal }
            return
        }
        runner.confirm = { Confirmation.ask($0, yes: yes) }
        /// A plain restore goes into restores.jsonl as the pipeline's do (report lists them), whatever its outcome.
        func record(ok: Bool, error: String?) {
            let line = RestoreLog.Line(startedAt: UTCTime.iso8601(started), archive: archive.name, app: nil, mode: "plain", dryRun: false, ok: ok,
                                       error: error, durationSeconds: stopwatch.elapsed, target: settings.description)
            try? JSONLines.append(line, to: RestoreLog.fileName, in: archive.store)
        }
        let report: RestoreReport
        do {
            report = try stall.watching("the restore into \(settings.description)", context: context, progress: runner.progress, server: settings,
                                        applications: "rack-gateway-db restore") {
                try chosen.map { try runner.run(reader: $0.reader, preflight: $0.check) } ?? runner.run(archive: archive)
            }
        } catch let error as ToolError where error.code == .notConfirmed {
            throw error
        } catch {
            record(ok: false, error: (error as? ToolError)?.message ?? String(describing: error))
            throw error
        }
        record(ok: true, error: nil)
        Notifications.keep(report, summary: "restored \(report.file) into \(report.target) in \(String(format: "%.1f", report.durationSeconds)) s")
        if global.json { return try Reporting.printJSON(report) }
        print("Restored \(report.file) (\(report.format.rawValue)) into \(report.target) (\(report.targetAction)) in \(String(format: "%.1f", report.durationSeconds)) s")
        if let tables = report.tables, let rows = report.rows {
            print("  \(Plural.of(tables, "table")), \(Plural.of(rows, "row")), \(ProgressDisplay.bytes(report.bytes ?? 0)) of COPY text, \(Plural.of(report.jobs, "job"))")
        }
        print("  " + report.phases.map { "\($0.name) \(String(format: "%.1f", $0.seconds)) s" }.joined(separator: ", "))
        if report.signatureChecked == true { print("  signature checked (--verify-key) before anything of the archive was used") }
        if !report.createdRoles.isEmpty { print("  created roles (NOLOGIN): \(report.createdRoles.joined(separator: ", "))") }
        if let statistics = report.statistics { print("  planner statistics: \(statistics.text)") }
        if report.verified { print("  verified: every table's row count and fingerprint match the manifest") }
    }
}
