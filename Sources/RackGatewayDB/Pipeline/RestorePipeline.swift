import Foundation
import Logging
import RGWPostgres

/// `restore --convox-app`: preflight (read-only: the archive, the server's permissions, the app and
/// its service), then a plan (`PipelinePlan`: scale down, wait, terminate sessions, load, verify,
/// migrate, swap or in place, scale up) that `--dry-run` prints and `PipelineExecutor` walks.
/// Before the point of no return any failure leaves the live database untouched and scales the
/// service back to its remembered count; what cannot be done is printed as commands to run.
public final class RestorePipeline: @unchecked Sendable {
    public let live: RestoreTarget
    public let options: PipelineOptions
    public let logger: Logger
    /// What the steps share; the progress display reads the wait and the load from it.
    public let state = PipelineState()
    public let context: RunContext
    /// Each step as it starts and ends (the executor's `onStepStarted` and `onStep`).
    public var onStepStarted: (@Sendable (String) -> Void)?
    public var onStep: (@Sendable (PipelineStep) -> Void)?

    public init(live: RestoreTarget, options: PipelineOptions, logger: Logger, context: RunContext? = nil) {
        self.live = live
        self.options = options
        self.logger = logger
        self.context = context ?? .detached(logger: logger)
    }

    /// The new databases' suffix: the archive names' UTC date and time digits, `20261204_031209`
    /// for `..._20261204T031209Z`. No letters, so the name is the same whatever case a person types
    /// it in, and stays a valid unquoted identifier (`DROP DATABASE rack_gateway_pre_restore_...`
    /// works without quotes, where `...T031209Z` would fold to lower case and not be found).
    static func stamp(_ date: Date) -> String {
        let stamp = UTCTime.stamp(date)
        return stamp.prefix(8) + "_" + stamp.dropFirst(9).prefix(6)
    }

    /// `02:30Z, 23 minutes ago` (the date too when not today): when an archive whose manifest says
    /// `createdAt` was taken; nil when that does not read as a time.
    public static func taken(_ createdAt: String, now: Date) -> String? {
        guard let created = ISO8601DateFormatter.withFractions.date(from: createdAt) ?? ISO8601DateFormatter().date(from: createdAt) else { return nil }
        let text = UTCTime.iso8601(created)
        let day = UTCTime.iso8601(now).prefix(10) == text.prefix(10) ? "" : text.prefix(10) + " "
        let seconds = max(0, now.timeIntervalSince(created))
        let minutes = Int(seconds / 60)
        let ago = minutes < 2 ? "\(Int(seconds)) seconds" : minutes < 120 ? "\(minutes) minutes"
            : minutes < 48 * 60 ? "\(minutes / 60) hours" : "\(minutes / 60 / 24) days"
        return "\(day)\(text.dropFirst(11).prefix(5))Z, \(ago) ago"
    }

    public func run(path: String, confirm: (String) -> Bool) -> PipelineReport {
        run(archive: ArchiveLocation(path: path), confirm: confirm)
    }

    /// The three ways on when the archive's database was migrated by a set other than the configured one.
    static let foreignWaysOn = "Pass --migrations DIR (the application's internal/gateway/db/migrations of the deployed release), --migrate-command CMD (the application's own migrate, e.g. 'rack-gateway-api migrate'), or --skip-migrate (restore without migrating; the report warns)."

    func migrationPlan(for manifest: ArchiveManifest) throws -> MigrationPlan {
        if let command = options.migrateCommand { return .command(command) }
        if options.skipMigrate { return .skip }
        if case .foreign(let unknown) = options.migrations.relation(toApplied: manifest.schemaMigrations) {
            throw ToolError(.foreignMigrationSet, "the archive's database was migrated by another migration set than \(options.migrations.name): " + options.migrations.foreignAdvice(unknown: unknown),
                            fix: Self.foreignWaysOn)
        }
        return .set(options.migrations)
    }

    /// `chosen`: the archive `--latest` opened and checked already, read as it is (not opened,
    /// fetched or hashed again).
    public func run(archive: ArchiveLocation, chosen: ArchiveDirectory.Chosen? = nil, confirm: (String) -> Bool) -> PipelineReport {
        let started = context.clock.now()
        let stopwatch = Stopwatch()
        let stamp = Self.stamp(started)
        let executor = PipelineExecutor(logger: logger, context: context, state: state)
        executor.onStepStarted = onStepStarted
        executor.onStep = onStep
        var report = PipelineReport(archive: archive.path, app: options.app, service: options.service, rack: options.rack,
                                    database: live.database, mode: options.inPlace ? "in-place" : "swap", dryRun: options.dryRun, ok: false, error: nil,
                                    rememberedCount: nil, finalCount: nil, previousDatabase: nil, safetyBackup: nil, steps: [], recovery: [],
                                    durationSeconds: 0)
        // From the choice of the archive (`--latest`'s download is part of the recovery's time).
        report.startedAt = UTCTime.iso8601(started.addingTimeInterval(-(options.fetchSeconds ?? 0)))
        report.fetchSeconds = options.fetchSeconds
        /// --allow-autoscaled: the command that puts the service's range back after --count pinned it.
        var rangeBack: String?
        func finish(_ error: Error?) -> PipelineReport {
            report.ok = error == nil
            let failure = error.map(ToolError.init(reporting:))
            report.error = failure?.message
            report.fix = failure?.fix
            report.errorCode = failure?.code
            report.steps = executor.transcript
            // Said when a database was restored unmigrated (a dry run plans it; a stopped run may not get there).
            if options.skipMigrate && options.migrateCommand == nil
                && (options.dryRun || report.steps.contains(where: { $0.name == "migrate" && $0.outcome == "ok" })) {
                report.warnings.append("--skip-migrate: the restored database was not migrated; run the application's migrate (rack-gateway-api migrate) before relying on it")
            }
            if let rangeBack, report.steps.contains(where: { $0.name == "scale down" && $0.outcome == "ok" }) {
                report.warnings.append("--allow-autoscaled: convox scale --count pinned \(options.service)'s range to one count; put its range back: \(rangeBack)")
            }
            var aftermath = executor.state.aftermath
            if let error, aftermath == PipelineAftermath(), !executor.state.pastNoReturn, (error as? ToolError)?.code != .notConfirmed {
                // Preflight, or stopped before the first step of the plan.
                aftermath.facts = ["Nothing was changed: \(options.service) was not scaled, the live database \(live.database) is untouched, no new database was created."]
            }
            report.recovery = aftermath.lines()
            report.now = aftermath.facts
            report.commands = aftermath.commands
            report.failedStep = error == nil ? nil : report.steps.last { $0.outcome == "failed" || $0.outcome == "stopped" }?.name
            report.finalCount = executor.state.finalCount
            report.safetyBackup = executor.state.safetyBackup
            report.previousDatabase = executor.state.previousDatabase
            report.durationSeconds = stopwatch.elapsed + (options.fetchSeconds ?? 0)
            return report
        }
        do {
            let (client, service, reader, check, migration, lock) = try executor.step("preflight") { try self.preflight(archive, given: chosen) }
            defer { lock?.release() }
            if service.autoscaled, let min = service.min, let max = service.max {
                rangeBack = client.commandLine(["scale", options.service, "--min", String(min), "--max", String(max)])
            }
            report.archiveCreatedAt = reader.manifest.createdAt
            let count = options.scaleTo ?? service.count
            report.rememberedCount = try executor.step("remember count") {
                (count, "\(options.service) desired count \(service.count)" + (options.scaleTo.map { "; --scale-to \($0): scaled to \($0) afterwards" } ?? ""))
            }
            let database = PostgresPipelineDatabase(live: live, reader: reader, check: check, migration: migration,
                                                    options: options, logger: logger,
                                                    progress: { [state] in let progress = RestoreProgress(); state.load = progress; return progress },
                                                    context: context)
            let facts = PipelineFacts(
                archive: archive.path, service: options.service, live: live.database,
                restoreName: "\(live.database)_restore_\(stamp)", previousName: "\(live.database)_pre_restore_\(stamp)",
                count: count, migration: migration.description, safetyDirectory: options.safetyDirectory,
                stopTimeout: options.stopTimeout, pollInterval: options.pollInterval,
                services: client, database: database, clock: executor.clock,
                serverURL: live.settings.replacingDatabase(with: "postgres").urlWithoutPassword, liveURL: live.settings.urlWithoutPassword,
                verifyKeyInEnvironment: !(options.environment["RGW_VERIFY_KEY"] ?? "").isEmpty)
            let plan = options.inPlace ? PipelinePlan.inPlace(facts) : PipelinePlan.swap(facts)
            if options.dryRun {
                executor.plan(plan)
                return finish(nil)
            }
            guard confirm(confirmation(archive: archive, manifest: reader.manifest, facts: facts, serviceCount: service.count)) else {
                throw ToolError(.notConfirmed, "not confirmed; nothing was changed", fix: "Pass --yes to run without asking.")
            }
            try executor.run(plan)
            return finish(nil)
        } catch {
            return finish(error)
        }
    }

    /// The question before anything changes: what is restored, when it was taken and what that
    /// loses, what happens to the current database (the mode), and what happens to the service.
    func confirmation(archive: ArchiveLocation, manifest: ArchiveManifest, facts: PipelineFacts, serviceCount: Int) -> String {
        let now = context.clock.now()
        let taken = Self.taken(manifest.createdAt, now: now).map { "taken \($0): writes since then are not in it" } ?? "taken at an unknown time"
        let mode = options.inPlace
            ? "In-place: \(live.database) is backed up first into \(options.safetyDirectory)/, then dropped and restored; "
                + "once it is dropped nothing is undone: stopped or failed after that, the service stays at 0 until the safety backup or the archive is restored."
            : "Swap: the archive is restored into \(facts.restoreName), then it takes the name \(live.database); the current database is kept as \(facts.previousName)."
        let rackText = options.rack.map { "rack \($0), " } ?? ""
        return "Restore database \(live.database) on \(live.settings.description) from \(archive.path) (\(taken)).\n\(mode)\n"
            + "\(rackText)app \(options.app): service \(options.service) (count \(serviceCount)) is scaled to 0 meanwhile, and to \(facts.count) afterwards.\nContinue?"
    }

    /// Everything read-only: the archive verifies, its migrations can be applied, the role may do
    /// what the mode needs, the live database exists, the roles it references exist, the app runs
    /// and its service is not autoscaled (unless allowed).
    func preflight(_ archive: ArchiveLocation, given chosen: ArchiveDirectory.Chosen?) throws
        -> ((ConvoxClient, ConvoxClient.Service, ArchiveReader, ArchiveVerifier.Report, MigrationPlan, RestoreLock?), String) {
        let reader = try chosen?.reader ?? archive.reader()
        let check = try chosen?.check ?? ArchiveVerifier().preflight(reader, logger: logger)
        guard check.ok else {
            throw ToolError(.archiveCorrupt, "\(archive.path) does not verify: " + check.problems.prefix(3).joined(separator: "; "),
                            fix: "Restore an older archive (rack-gateway-db list shows which verify).")
        }
        let migration = try migrationPlan(for: reader.manifest)
        let server = try live.maintenanceConnection()
        if options.inPlace {
            guard try server.query("""
                SELECT r.rolsuper OR (pg_catalog.pg_has_role(d.datdba, 'MEMBER') AND r.rolcreatedb)
                FROM pg_catalog.pg_roles r, pg_catalog.pg_database d WHERE r.rolname = current_user AND d.datname = $1
                """, [live.database]).scalar == "t" else {
                throw ToolError(.failed, "role \(server.userName) cannot drop and recreate \(live.database), which --in-place needs", fix: "Run as the database's owner with CREATEDB, or a superuser.")
            }
        } else {
            guard try server.query("SELECT rolcreatedb OR rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user").scalar == "t" else {
                throw ToolError(.failed, "role \(server.userName) cannot create databases, which swap mode needs", fix: "Run as a role with CREATEDB, or use --in-place as the database's owner.")
            }
        }
        guard try live.connectIfExists() != nil else { throw ToolError(.failed, "the live database \(live.database) does not exist on \(live.settings.description)") }
        let missing = try RestoreTarget.missingRoles(reader.manifest.roles, connection: server)
        guard missing.isEmpty else {
            throw ToolError(.failed, "roles missing on the server: \(missing.joined(separator: ", "))",
                            fix: missing.map { RestoreTarget.createRoleStatement($0) + ";" }.joined(separator: " "))
        }
        // Before the service is read: a second run is told who holds it, not that the service is at 0
        // (the first scaled it down). A dry run asks too, and gives it back at once.
        var lock: RestoreLock? = try RestoreLock.acquire([.pipeline(app: options.app, service: options.service, rack: options.rack),
                                                          .target(live.database)], on: live)
        if options.dryRun {
            lock?.release()
            lock = nil
        }
        var client = try ConvoxClient(app: options.app, rack: options.rack, environment: options.environment)
        client.cancellation = context.cancellation
        let status = try client.appStatus()
        guard status == "running" else { throw ToolError(.failed, "app \(options.app) is \(status), not running", fix: "Wait until the app is running (no deploy in progress), then restore again.") }
        let services = try client.services()
        guard let service = services.first(where: { $0.name == options.service }) else {
            throw ToolError(.failed, "app \(options.app) has no service \(options.service); its services: \(services.map(\.name).joined(separator: ", "))",
                            fix: "Pass --service with the service that uses the database.")
        }
        if service.count == 0 && options.scaleTo == nil {
            throw ToolError(.failed, "service \(options.service) of app \(options.app) is at count 0 already, so the count to bring it back to is unknown (another restore may have scaled it down, or it was stopped on purpose)",
                            fix: "Check that no other restore is running (convox ps), then pass --scale-to N with the count the service should run at after the restore.")
        }
        if service.autoscaled && !options.allowAutoscaled {
            throw ToolError(.failed, "service \(options.service) is autoscaled (\(service.autoscale ? "autoscaling configured, " : "")min \(service.min.map(String.init) ?? "-"), max \(service.max.map(String.init) ?? "-")); --count would pin it",
                            fix: "Pass --allow-autoscaled, and afterwards restore its range with convox scale --min/--max.")
        }
        return ((client, service, reader, check, migration, lock),
                "archive sha256 \(check.sha256.prefix(16))..., \(reader.manifest.tables.count) tables; app \(options.app) running; \(options.service) at \(service.count)")
    }
}
