import Foundation
import Logging
import RGWPostgres

public struct PipelineOptions: Sendable {
    public var app: String
    public var service = "gateway"
    public var rack: String?
    public var jobs: Int
    public var dryRun = false
    /// Restore over the live database after a safety backup into `safetyDirectory`, instead of the swap.
    public var inPlace = false
    public var safetyDirectory = "./backups"
    public var allowAutoscaled = false
    /// How long to wait for the service's processes to be gone after the scale-down.
    public var stopTimeout: Double = 600
    public var pollInterval: Double = 2
    public var migrations: MigrationSet
    /// The application's own migrate command, run against the restored database instead of the set.
    public var migrateCommand: ApplicationMigrateCommand?
    /// Restore without migrating (the report carries a warning).
    public var skipMigrate = false
    public var environment: [String: String] = ProcessInfo.processInfo.environment

    public init(app: String, jobs: Int, migrations: MigrationSet) {
        self.app = app
        self.jobs = jobs
        self.migrations = migrations
    }
}

/// One step of the pipeline as the transcript records it.
public struct PipelineStep: Codable, Sendable {
    public var name: String
    public var startedAt: String
    public var seconds: Double
    /// `ok`, `failed`, or `planned` (dry run).
    public var outcome: String
    public var detail: String
}

public struct PipelineReport: Codable, Sendable {
    public var archive: String
    public var app: String
    public var service: String
    public var rack: String?
    public var database: String
    public var mode: String
    public var dryRun: Bool
    public var ok: Bool
    public var error: String?
    public var rememberedCount: Int?
    public var finalCount: Int?
    /// Where the previous live database is now (swap mode).
    public var previousDatabase: String?
    /// The backup of the live database taken before an in-place restore.
    public var safetyBackup: String?
    public var steps: [PipelineStep]
    /// Commands that undo the restore, or recover from where it stopped.
    public var recovery: [String]
    /// What the operator should know although nothing failed (`--skip-migrate`).
    public var warnings: [String] = []
    public var durationSeconds: Double
}

/// `restore --convox-app`: scale the service down, restore into a new database, verify, migrate,
/// swap names with the live database, scale back up. Before the swap any failure leaves the live
/// database untouched and scales the service back to its remembered count; the scale-up is attempted
/// on every path, and what it cannot do is printed as commands to run.
public final class RestorePipeline: @unchecked Sendable {
    public let live: RestoreTarget
    public let options: PipelineOptions
    public let logger: Logger
    public let progress = RestoreProgress()
    private var steps: [PipelineStep] = []
    private let lock = NSLock()

    /// What a Ctrl-C handler needs to know: whether the live database has been changed, and the
    /// new database being loaded.
    final class InterruptState: @unchecked Sendable {
        private let lock = NSLock()
        private var pastNoReturn = false
        private var restore: RestoreTarget?
        func setPastNoReturn() { lock.withLock { pastNoReturn = true } }
        func set(restore target: RestoreTarget) { lock.withLock { restore = target } }
        func read() -> (Bool, RestoreTarget?) { lock.withLock { (pastNoReturn, restore) } }
    }
    let interruptState = InterruptState()

    public init(live: RestoreTarget, options: PipelineOptions, logger: Logger) {
        self.live = live
        self.options = options
        self.logger = logger
    }

    static func stamp(_ date: Date) -> String {
        ArchiveName.fileName(prefix: "x", date: date).dropFirst(2).replacingOccurrences(of: ".sql.gz", with: "").lowercased()
    }

    func step<R>(_ name: String, _ body: () throws -> (R, String)) throws -> R {
        let started = Date()
        logger.info("pipeline step started", metadata: ["step": "\(name)"])
        do {
            let (result, detail) = try body()
            record(PipelineStep(name: name, startedAt: ISO8601DateFormatter().string(from: started),
                                seconds: Date().timeIntervalSince(started), outcome: "ok", detail: detail))
            logger.info("pipeline step done", metadata: ["step": "\(name)", "detail": "\(detail)"])
            return result
        } catch {
            record(PipelineStep(name: name, startedAt: ISO8601DateFormatter().string(from: started),
                                seconds: Date().timeIntervalSince(started), outcome: "failed", detail: String(describing: error)))
            logger.error("pipeline step failed", metadata: ["step": "\(name)", "error": "\(error)"])
            throw error
        }
    }

    func record(_ step: PipelineStep) { lock.withLock { steps.append(step) } }
    var transcript: [PipelineStep] { lock.withLock { steps } }

    public func run(path: String, confirm: (String) -> Bool) -> PipelineReport {
        run(archive: ArchiveLocation(path: path), confirm: confirm)
    }

    /// How the restored database will be migrated, decided in preflight from the archive's recorded
    /// `schema_migrations` versions, before anything changes.
    enum MigrationPlan {
        case command(ApplicationMigrateCommand)
        case set(MigrationSet)
        case skip

        var description: String {
            switch self {
            case .command(let command): "run the application's migrate command on the restored database: \(command.command)"
            case .set(let set): "apply the pending migrations of \(set.origin) to the restored database"
            case .skip: "no migration (--skip-migrate)"
            }
        }
    }

    /// The three ways on when the archive's database was migrated by a set other than the configured one.
    static let foreignWaysOn = "Pass --migrations DIR (the application's internal/gateway/db/migrations of the deployed release), --migrate-command CMD (the application's own migrate, e.g. 'rack-gateway-api migrate'), or --skip-migrate (restore without migrating; the report warns). Nothing was changed: the service was not scaled."

    func migrationPlan(for manifest: ArchiveManifest) throws -> MigrationPlan {
        if let command = options.migrateCommand { return .command(command) }
        if options.skipMigrate { return .skip }
        if case .foreign(let unknown) = options.migrations.relation(toApplied: manifest.schemaMigrations) {
            throw ToolError(.foreignMigrationSet, "the archive's database was migrated by another migration set than \(options.migrations.name): " + options.migrations.foreignAdvice(unknown: unknown),
                            fix: Self.foreignWaysOn)
        }
        return .set(options.migrations)
    }

    /// `preflight`: the archive check already made (by `--latest`), so it is not hashed again.
    public func run(archive: ArchiveLocation, preflight: ArchiveVerifier.Report? = nil, confirm: (String) -> Bool) -> PipelineReport {
        let path = archive.path
        let started = Date()
        let stamp = Self.stamp(started)
        let restoreName = "\(live.database)_restore_\(stamp)"
        let previousName = "\(live.database)_pre_restore_\(stamp)"
        var report = PipelineReport(archive: path, app: options.app, service: options.service, rack: options.rack,
                                    database: live.database, mode: options.inPlace ? "in-place" : "swap", dryRun: options.dryRun, ok: false, error: nil,
                                    rememberedCount: nil, finalCount: nil, previousDatabase: nil, safetyBackup: nil, steps: [], recovery: [],
                                    durationSeconds: 0)
        var convox: ConvoxClient?
        var remembered: Int?
        var scaledDown = false
        var swapped = false
        /// In place: from the moment the live database is dropped, failures leave the service down.
        var liveChanged = false
        var restoreTarget: RestoreTarget?
        defer { Interruption.removeOnInterrupt("pipeline") }
        func finish(_ error: Error?) -> PipelineReport {
            report.ok = error == nil
            report.error = error.map { String(describing: $0) }
            report.steps = transcript
            report.durationSeconds = Date().timeIntervalSince(started)
            return report
        }
        do {
            // 1. preflight: everything read-only.
            let (client, service, check, migration) = try step("preflight") { () -> ((ConvoxClient, ConvoxClient.Service, ArchiveVerifier.Report, MigrationPlan), String) in
                let reader = try archive.reader()
                let check = try preflight ?? ArchiveVerifier().preflight(reader)
                guard check.ok else {
                    throw ToolError(.failed, "\(path) does not verify: " + check.problems.prefix(3).joined(separator: "; "))
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
                let client = try ConvoxClient(app: options.app, rack: options.rack, environment: options.environment)
                let status = try client.appStatus()
                guard status == "running" else { throw ToolError(.failed, "app \(options.app) is \(status), not running", fix: "Wait until the app is running (no deploy in progress), then restore again.") }
                guard let service = try client.services().first(where: { $0.name == options.service }) else {
                    throw ToolError(.failed, "app \(options.app) has no service \(options.service)")
                }
                if service.autoscaled && !options.allowAutoscaled {
                    throw ToolError(.failed, "service \(options.service) is autoscaled (min \(service.min.map(String.init) ?? "-"), max \(service.max.map(String.init) ?? "-")); --count would pin it",
                                    fix: "Pass --allow-autoscaled, and afterwards restore its range with convox scale --min/--max.")
                }
                return ((client, service, check, migration), "archive sha256 \(check.sha256.prefix(16))..., \(reader.manifest.tables.count) tables; app \(options.app) running; \(options.service) at \(service.count)")
            }
            convox = client
            remembered = try step("remember count") { (service.count, "\(options.service) desired count \(service.count)") }
            report.rememberedCount = remembered
            if case .skip = migration {
                report.warnings.append("--skip-migrate: the restored database was not migrated; run the application's migrate (rack-gateway-api migrate) before relying on it")
            }

            let load = options.inPlace ? [
                "back up \(live.database) into \(options.safetyDirectory) (the safety backup)",
                "drop and recreate \(live.database), restore \(path) into it, verify fingerprints",
                migration.description,
            ] : [
                "restore \(path) into \(restoreName), verify fingerprints",
                migration.description,
                "ALTER DATABASE \(SQL.identifier(live.database)) RENAME TO \(SQL.identifier(previousName)); ALTER DATABASE \(SQL.identifier(restoreName)) RENAME TO \(SQL.identifier(live.database))",
            ]
            let plan = [
                client.commandLine(["scale", options.service, "--count", "0"]),
                "wait until `\(client.commandLine(["ps", "-s", options.service]))` lists no process of \(options.service)",
                "terminate the remaining sessions on \(live.database)",
            ] + load + [client.commandLine(["scale", options.service, "--count", String(service.count)])]
            if options.dryRun {
                for (index, line) in plan.enumerated() {
                    record(PipelineStep(name: "plan \(index + 1)", startedAt: ISO8601DateFormatter().string(from: Date()), seconds: 0, outcome: "planned", detail: line))
                }
                return finish(nil)
            }
            let rackText = options.rack.map { "rack \($0), " } ?? ""
            guard confirm("Restore \(path) over database \(live.database) on \(live.settings.description): \(rackText)app \(options.app), service \(options.service) (count \(service.count)) is scaled to 0 meanwhile. Continue?") else {
                throw ToolError(.notConfirmed, "not confirmed; nothing was changed", fix: "Pass --yes to run without asking.")
            }

            // 3. scale down and wait.
            try step("scale down") { () -> ((), String) in
                guard service.count > 0 else { return ((), "\(options.service) already at 0; left alone") }
                scaledDown = true
                // Ctrl-C from here on is a failure at the current step: undo what can be undone.
                let progressState = interruptState
                Interruption.onInterrupt("pipeline") { [options, logger] in
                    let (pastNoReturn, target) = progressState.read()
                    guard !pastNoReturn else {
                        FileHandle.standardError.write(Data("rack-gateway-db: interrupted after the point of no return; \(options.service) stays at 0. \(client.commandLine(["scale", options.service, "--count", String(service.count)])) when the database is right.\n".utf8))
                        return
                    }
                    if let target, let admin = try? target.maintenanceConnection() { _ = try? target.drop(admin) }
                    let back = (try? client.run(["scale", options.service, "--count", String(service.count)])) != nil
                    logger.error("interrupted: live database untouched", metadata: ["scaled back": "\(back)"])
                    if !back {
                        FileHandle.standardError.write(Data("rack-gateway-db: scale the service up by hand: \(client.commandLine(["scale", options.service, "--count", String(service.count)]))\n".utf8))
                    }
                }
                try client.run(["scale", options.service, "--count", "0"])
                return ((), "\(options.service) scaled to 0")
            }
            try step("wait for processes") { () -> ((), String) in
                let deadline = Date().addingTimeInterval(options.stopTimeout)
                var polls = 0
                while true {
                    polls += 1
                    let running = try client.processes(service: options.service)
                    if running.isEmpty { return ((), "no process of \(options.service) after \(polls) poll\(polls == 1 ? "" : "s")") }
                    guard Date() < deadline else {
                        throw ToolError(.failed, "\(running.count) process(es) of \(options.service) still listed after \(Int(options.stopTimeout)) s: \(running.map { "\($0.id) (\($0.status))" }.joined(separator: ", "))")
                    }
                    Thread.sleep(forTimeInterval: options.pollInterval)
                }
            }
            try step("terminate sessions") { ((), try terminateSessions(of: live.database)) }

            if options.inPlace {
                try runInPlace(archive: archive, check: check, migration: migration, report: &report, liveChanged: &liveChanged)
                try scaleBack(client, to: service.count, report: &report, wasDown: scaledDown)
                return finish(nil)
            }

            // 4. load into a new database, verify, migrate.
            let target = try RestoreTarget(settings: live.settings.replacingDatabase(with: restoreName))
            restoreTarget = target
            interruptState.set(restore: target)
            try step("load") { () -> ((), String) in
                var restoreOptions = RestoreOptions(jobs: options.jobs)
                restoreOptions.requireNewDatabase = true
                restoreOptions.verify = true
                restoreOptions.environment = options.environment
                let runner = RestoreRunner(target: target, options: restoreOptions, logger: logger, progress: progress)
                let restored = try runner.run(archive: archive, preflight: check)
                return ((), "restored into \(restoreName) in \(String(format: "%.1f", restored.durationSeconds)) s; fingerprints of \(restored.tables ?? 0) tables match")
            }
            try migrate(target, plan: migration)

            // 5. swap, after checking nothing came back up meanwhile (a deploy undoes a scale-down).
            // Important: the point of no return: from here the live name holds the restored copy
            // (the previous database is kept under <db>_pre_restore_<stamp> for the way back).
            try step("swap") { () -> ((), String) in
                let status = try client.appStatus()
                guard status == "running" else { throw ToolError(.failed, "app \(options.app) is \(status) just before the swap (a deploy?)") }
                let again = try client.processes(service: options.service)
                guard again.isEmpty else { throw ToolError(.failed, "\(again.count) process(es) of \(options.service) run again just before the swap (a deploy?)") }
                let terminated = try terminateSessions(of: live.database)
                let admin = try live.maintenanceConnection()
                try admin.execute("BEGIN")
                do {
                    try admin.execute("ALTER DATABASE \(SQL.identifier(live.database)) RENAME TO \(SQL.identifier(previousName))")
                    try admin.execute("ALTER DATABASE \(SQL.identifier(restoreName)) RENAME TO \(SQL.identifier(live.database))")
                    try admin.execute("COMMIT")
                } catch {
                    _ = try? admin.execute("ROLLBACK")
                    throw error
                }
                swapped = true
                interruptState.setPastNoReturn()
                report.previousDatabase = previousName
                return ((), "\(live.database) is the restored copy; the previous database is \(previousName); \(terminated)")
            }
            report.recovery = [
                "To go back: \(client.commandLine(["scale", options.service, "--count", "0"]))",
                "psql -d postgres -c 'ALTER DATABASE \(SQL.identifier(live.database)) RENAME TO \(SQL.identifier(restoreName))' -c 'ALTER DATABASE \(SQL.identifier(previousName)) RENAME TO \(SQL.identifier(live.database))'",
                client.commandLine(["scale", options.service, "--count", String(service.count)]),
                "When satisfied, drop the previous database: psql -d postgres -c 'DROP DATABASE \(SQL.identifier(previousName))'",
            ]
            try scaleBack(client, to: service.count, report: &report, wasDown: scaledDown)
            return finish(nil)
        } catch {
            // Compensate: before the swap the live database is untouched; bring the service back.
            if !swapped {
                var line = "The live database \(live.database) is untouched."
                if let restoreTarget, let admin = try? restoreTarget.maintenanceConnection(), (try? restoreTarget.drop(admin)) != nil {
                    line += " The incomplete \(restoreTarget.database) was dropped."
                }
                report.recovery.append(line)
            }
            if let convox, let remembered, scaledDown, !liveChanged {
                do {
                    try scaleBack(convox, to: remembered, report: &report, wasDown: true)
                } catch {
                    report.recovery.append(convox.commandLine(["scale", options.service, "--count", String(remembered)]))
                }
            }
            if swapped { report.recovery.insert("The restore itself finished: \(live.database) is the restored copy, \(previousName) the previous one.", at: 0) }
            if liveChanged, let convox, let remembered {
                // Past the point of no return: the service stays down until a person decides.
                report.recovery = [
                    "The service \(options.service) stays at 0: \(live.database) was dropped and its restore did not finish.",
                    "Restore the safety backup: rack-gateway-db restore \(report.safetyBackup ?? "SAFETY_BACKUP") --clean --yes --database-url URL_OF_\(live.database)",
                    "Then: \(convox.commandLine(["scale", options.service, "--count", String(remembered)]))",
                ]
                return finish(error)
            }
            return finish(error)
        }
    }

    /// --in-place: a safety backup of the live database, then a --clean restore over it, verify, migrate.
    func runInPlace(archive: ArchiveLocation, check: ArchiveVerifier.Report, migration: MigrationPlan,
                    report: inout PipelineReport, liveChanged: inout Bool) throws {
        let safety = try step("safety backup") { () -> (String, String) in
            var backupOptions = BackupOptions(store: LocalStore(directory: options.safetyDirectory), jobs: options.jobs, compressors: max(1, options.jobs))
            backupOptions.prefix = "\(live.database)_pre_restore"
            backupOptions.environment = options.environment
            let backup = try BackupRunner(settings: live.settings, options: backupOptions, logger: logger).run()
            return (backup.file, "\(backup.file) (\(backup.rows) rows, sha256 \(backup.sha256.prefix(16))...)")
        }
        report.safetyBackup = safety
        // From the moment the live database is dropped (not before), a failure leaves the service down.
        let dropped = LockedList<Bool>()
        defer { liveChanged = !dropped.items.isEmpty }
        try step("load") { () -> ((), String) in
            var restoreOptions = RestoreOptions(jobs: options.jobs)
            restoreOptions.clean = true
            restoreOptions.verify = true
            restoreOptions.environment = options.environment
            let runner = RestoreRunner(target: live, options: restoreOptions, logger: logger, progress: progress)
            runner.confirm = { _ in true }  // confirmed for the whole pipeline
            let state = interruptState
            runner.onTargetCreated = { _ in
                dropped.add(true)
                state.setPastNoReturn()
            }
            let restored = try runner.run(archive: archive, preflight: check)
            return ((), "\(live.database) dropped, recreated and restored in \(String(format: "%.1f", restored.durationSeconds)) s; fingerprints of \(restored.tables ?? 0) tables match")
        }
        try migrate(live, plan: migration)
        report.recovery = ["To go back to the state before the restore: rack-gateway-db restore \(safety) --clean --yes --database-url URL_OF_\(live.database), with the service at 0"]
    }

    /// The `migrate` step on the restored database, as preflight planned it.
    func migrate(_ target: RestoreTarget, plan: MigrationPlan) throws {
        try step("migrate") { () -> ((), String) in
            switch plan {
            case .skip:
                return ((), "skipped (--skip-migrate): the restored database was not migrated")
            case .command(let command):
                let outcome = command.run(target: target.settings, base: options.environment, logger: logger)
                guard outcome.ok else {
                    throw ToolError(.failed, "the application's migrate command failed on \(target.database): \(outcome.summary)",
                                    fix: "Fix the command or the migration, then restore again; the live database was not swapped.")
                }
                return ((), "\(command.command) \(outcome.summary)")
            case .set(let set):
                let connection = try target.settings.open(.restore)
                let outcome = try Migrator(connection: connection, migrations: set, logger: logger).migrate()
                return ((), outcome.applied.isEmpty ? "nothing pending" : "applied \(outcome.applied.joined(separator: ", "))")
            }
        }
    }

    /// Scale the service back to `count` and read the count again (a failed exit may still have set it).
    func scaleBack(_ client: ConvoxClient, to count: Int, report: inout PipelineReport, wasDown: Bool) throws {
        guard wasDown else {
            report.finalCount = count
            return
        }
        do {
            try step("scale up") { () -> ((), String) in
                try client.run(["scale", options.service, "--count", String(count)])
                return ((), "\(options.service) scaled back to \(count)")
            }
        } catch {
            let now = try? client.services().first { $0.name == options.service }?.count
            report.finalCount = now
            if now == count { return }
            report.recovery.append("Scale the service up by hand: \(client.commandLine(["scale", options.service, "--count", String(count)]))")
            throw error
        }
        report.finalCount = count
    }

    /// End every other session on `database` (the app's connections keep a database from being
    /// renamed); says which.
    func terminateSessions(of database: String) throws -> String {
        let admin = try live.maintenanceConnection()
        let rows = try admin.query("""
            SELECT pid::text, usename, coalesce(application_name, ''), coalesce(host(client_addr), 'local'),
                   pg_catalog.pg_terminate_backend(pid)::text
            FROM pg_catalog.pg_stat_activity WHERE datname = $1 AND pid <> pg_catalog.pg_backend_pid()
            """, [database]).rows
        if rows.isEmpty { return "no other sessions on \(database)" }
        Thread.sleep(forTimeInterval: 0.2)
        return "terminated \(rows.count) session(s) on \(database): " + rows.map { "pid \($0[0] ?? "?") \($0[1] ?? "?") \($0[2] ?? "") from \($0[3] ?? "?")" }.joined(separator: "; ")
    }
}
