import Foundation
import Logging
import RGWPostgres

public struct RestoreOptions: Sendable {
    public var jobs: Int
    /// Drop and recreate a target that holds tables (the caller has confirmed).
    public var clean = false
    public var verify = false
    public var createMissingRoles = false
    /// `maintenance_work_mem` for the index and constraint builds; nil keeps the server's.
    public var maintenanceWorkMem: String? = nil
    /// Refuse a target database that exists, even empty (drills create their own).
    public var requireNewDatabase = false
    /// The command has `--create-missing-roles` (a plain restore); a drill's and the pipeline's fix
    /// for missing roles names only CREATE ROLE.
    public var offersCreateMissingRoles = true
    /// Try an archive of a newer server on an older one (PostgresVersions).
    public var allowDowngrade = false
    /// Take the target database's restore lock (RestoreLock); off where the caller holds it already.
    public var lockTarget = true
    public var environment: [String: String] = ProcessInfo.processInfo.environment
    /// What a restore run again needs besides the archive, the target, `--clean` and `--yes`, as
    /// arguments (`--identity FILE`, `--verify-key KEY`, `--jobs N`...; key files by path, never
    /// their contents): the printed command to run again keeps them, so that pasted it opens the
    /// archive and checks its signature as this run did.
    public var againArguments: [String] = []
    /// `--latest`: how long choosing, fetching (from S3, the whole download) and checking the
    /// archive took before this restore began. It is the restore's first phase and part of its
    /// duration: a recovery from S3 pays for the download, and the RTO counts it.
    public var fetchSeconds: Double?

    public init(jobs: Int) { self.jobs = jobs }
}

public struct RestoreReport: Codable, Sendable {
    public var file: String
    public var format: DumpFormat
    public var target: String
    public var database: String
    /// `created` (did not exist), `recreated` (--clean), or `existing` (was empty).
    public var targetAction: String
    public var createdRoles: [String]
    public var jobs: Int
    public var tables: Int?
    public var rows: Int?
    public var bytes: Int?
    public var archiveBytes: Int
    public var archiveCreatedAt: String?
    public var phases: [RestorePhase]
    public var durationSeconds: Double
    /// Whether `--verify` re-read every table; `mismatches` lists what differed.
    public var verified: Bool
    public var mismatches: [String]
    /// How the tables got their planner statistics (imported or analyzed, and why).
    public var statistics: PlannerStatisticsOutcome? = nil
    /// The archive's `.minisig` was checked against `--verify-key` before it was read (nil for a pg_dump).
    public var signatureChecked: Bool? = nil
}

/// How a restore's tables got their planner statistics: imported from the archive's statistics
/// member (PostgreSQL 18 and newer) or analyzed, and briefly why those analyzed were.
public struct PlannerStatisticsOutcome: Codable, Sendable, Equatable {
    /// Tables whose statistics were imported from the archive.
    public var imported: Int
    /// Tables the restore analyzed (with the rows restored).
    public var analyzed: Int
    /// Why tables were analyzed rather than imported; nil when none were.
    public var analyzedBecause: String?

    public init(imported: Int, analyzed: Int, analyzedBecause: String?) {
        self.imported = imported
        self.analyzed = analyzed
        self.analyzedBecause = analyzed == 0 ? nil : analyzedBecause
    }

    /// One line for a person: `imported for 9 tables, 2 analyzed (why)`.
    public var text: String {
        var parts: [String] = []
        if imported > 0 { parts.append("imported for \(Plural.of(imported, "table"))") }
        if analyzed > 0 || imported == 0 { parts.append("\(Plural.of(analyzed, "table")) analyzed" + (analyzedBecause.map { " (\($0))" } ?? "")) }
        return parts.joined(separator: ", ")
    }
}

/// `restore`: check the archive and the target before changing anything, prepare the target
/// (create it, or with `--clean` drop and recreate it; create missing roles when asked), load, and
/// on any failure leave the target marked as failed (`COMMENT ON DATABASE`), never looking good.
public final class RestoreRunner: @unchecked Sendable {
    public let target: RestoreTarget
    public let options: RestoreOptions
    public let logger: Logger
    public let progress: RestoreProgress
    public let context: RunContext
    /// Asked before `--clean` drops a database that holds tables; false stops the restore.
    public var confirm: (String) -> Bool = { _ in false }
    /// The target's states, owned here; the drill and the pipeline observe them.
    public let lifecycle: TargetLifecycle
    /// An existing target's own comment, put back when the restore removes its mark.
    private var originalComment: String?
    /// Whether this restore created (or recreated) the target, and so gives it the source's properties.
    private var createdTarget: Bool { lifecycle.created }
    private var marked: Bool { lifecycle.markedInDatabase }

    public init(target: RestoreTarget, options: RestoreOptions, logger: Logger, progress: RestoreProgress = RestoreProgress(),
                context: RunContext? = nil) {
        self.progress = progress
        self.context = context ?? .detached(logger: logger)
        self.target = RestoreTarget(checked: target, cancellation: self.context.cancellation)
        self.lifecycle = TargetLifecycle(target: self.target)
        self.options = options
        self.logger = logger
    }

    /// Restore `path`; `preflight` is the archive check already made (by `--latest`), if any.
    public func run(path: String, preflight: ArchiveVerifier.Report? = nil) throws -> RestoreReport {
        try run(archive: ArchiveLocation(path: path), preflight: preflight)
    }

    /// Restore an archive in a store (S3: read with ranged requests, or with `--verify-key` from the
    /// local spool its signature was checked over) or a local file (which may also be a pg_dump).
    public func run(archive: ArchiveLocation, preflight: ArchiveVerifier.Report? = nil) throws -> RestoreReport {
        try run(archive: archive, opened: nil, preflight: preflight)
    }

    /// Restore an archive already opened (`--latest`'s choice, a drill's): read through `reader`,
    /// never opened again by name.
    public func run(reader: ArchiveReader, preflight: ArchiveVerifier.Report? = nil) throws -> RestoreReport {
        try run(archive: reader.archive, opened: reader, preflight: preflight)
    }

    func run(archive: ArchiveLocation, opened: ArchiveReader?, preflight: ArchiveVerifier.Report?) throws -> RestoreReport {
        let path = archive.path
        let stopwatch = Stopwatch()
        var phases: [RestorePhase] = []
        func timed<R>(_ name: String, _ body: () throws -> R) rethrows -> R {
            let phase = Stopwatch()
            let result = try body()
            phases.append(RestorePhase(name: name, seconds: phase.elapsed))
            return result
        }
        progress.begin(phase: "checking the archive")
        // The check `--latest` made when it chose the archive is this restore's archive check.
        if let fetch = options.fetchSeconds {
            phases.append(RestorePhase(name: "fetch and archive check (--latest)", seconds: fetch))
        } else if let preflight {
            phases.append(RestorePhase(name: "archive check", seconds: preflight.durationSeconds))
        }
        let (format, reader) = try checkArchive(archive, opened: opened, preflight: preflight) { body in try timed("archive check", body) }
        let manifest = reader?.manifest
        logger.info("restore started", metadata: ["file": "\(path)", "format": "\(format.rawValue)", "target": "\(target.settings.description)"])

        progress.begin(phase: "checking the target")
        let lock: RestoreLock?
        do {
            lock = options.lockTarget ? try RestoreLock.acquire([.target(target.database)], on: target) : nil
        } catch let error as ToolError where error.code == .lockHeld && options.requireNewDatabase {
            // A new database's name taken by another run (two drills in the same second): as taken.
            throw ToolError(.databaseExists, "database \(target.database) is being created by another run", cause: error)
        }
        defer { lock?.release() }
        let (action, createdRoles): (String, [String])
        do {
            (action, createdRoles) = try timed("target") { try prepareTarget(roles: manifest?.roles ?? [], file: path, archiveServer: manifest?.serverVersionNum) }
        } catch where lifecycle.state > .creating {
            throw markFailed(error, file: path)
        }
        // Until the load ends one way or the other: if this run cannot unwind by itself (a signal
        // and a thread stuck where it cannot be cancelled), its last act still marks the target.
        // A failed load marks it through this entry too, so a second signal meanwhile names it.
        let failure = FirstError()
        let failedMark = context.cleanups.push("mark database \(target.database) FAILED (its restore did not finish; until then it is marked INCOMPLETE: "
                                               + "restore it again with --clean, or drop it)") { [self] in
            _ = markFailed(failure.error ?? context.interruptedError(), file: path)
        }
        defer { failedMark.dismiss() }

        var mismatches: [String] = []
        var statistics: PlannerStatisticsOutcome?
        var unmarked = false
        do {
            if let reader {
                let loader = ArchiveLoader(reader: reader, settings: target.settings, jobs: options.jobs,
                                           maintenanceWorkMem: options.maintenanceWorkMem, logger: logger, progress: progress,
                                           cleanups: context.cleanups)
                do {
                    mismatches = try loader.run(verify: options.verify)
                    statistics = loader.statisticsOutcome
                    if !mismatches.isEmpty {
                        throw ToolError(.mismatch, "the restored data differs from the archive's manifest: " + mismatches.prefix(5).joined(separator: "; "))
                    }
                    // The event triggers before the database's own properties (commands on a
                    // database fire no event trigger), which may make its new sessions read-only
                    // (`default_transaction_read_only`); then the mark (COMMENT ON DATABASE),
                    // whose session writes regardless.
                    try loader.createEventTriggers()
                    try applyProperties(reader.manifest.databaseProperties)
                    unmarked = unmark(comment: createdTarget ? reader.manifest.databaseProperties?.comment : originalComment)
                } catch {
                    phases += loader.phases
                    throw error
                }
                phases += loader.phases
            } else {
                progress.begin(phase: format == .gzipSQL || format == .plainSQL ? "psql" : "pg_restore")
                try timed("load (\(format == .gzipSQL || format == .plainSQL ? "psql" : "pg_restore"))") {
                    try ForeignDumpLoader(path: path, format: format, target: target, jobs: options.jobs,
                                          environment: options.environment).run()
                }
                let analyzed = try timed("analyze") { try target.analyze(jobs: options.jobs) }
                statistics = PlannerStatisticsOutcome(imported: 0, analyzed: analyzed.count, analyzedBecause: "a pg_dump file's statistics are not imported")
                unmarked = unmark(comment: originalComment)
            }
            lifecycle.move(to: .loaded)
        } catch {
            failure.record(error)
            failedMark.run()
            throw markFailed(error, file: path)
        }
        lifecycle.move(to: .finished)
        if marked && !unmarked {
            logger.warning("the restore finished but its INCOMPLETE comment could not be removed; remove it with COMMENT ON DATABASE ... IS NULL",
                           metadata: ["database": "\(target.database)"])
        }
        let report = RestoreReport(
            file: path, format: format, target: target.settings.description, database: target.database,
            targetAction: action, createdRoles: createdRoles, jobs: options.jobs,
            tables: manifest?.tables.count, rows: manifest?.totalRows, bytes: manifest?.totalBytes,
            archiveBytes: reader?.fileSize ?? Self.size(of: path), archiveCreatedAt: manifest?.createdAt,
            phases: phases, durationSeconds: stopwatch.elapsed + (options.fetchSeconds ?? 0), verified: options.verify, mismatches: mismatches, statistics: statistics,
            signatureChecked: reader?.signatureChecked)
        logger.info("restore finished", metadata: ["file": "\(path)", "target": "\(target.settings.description)",
                                                   "seconds": "\(String(format: "%.1f", report.durationSeconds))"])
        return report
    }

    /// The archive's format and, for an archive, its checked reader (`opened`, else opened here,
    /// once): nothing is restored from an archive that does not verify.
    func checkArchive(_ archive: ArchiveLocation, opened: ArchiveReader?, preflight: ArchiveVerifier.Report?,
                      timed: (() throws -> ArchiveVerifier.Report) throws -> ArchiveVerifier.Report) throws -> (DumpFormat, ArchiveReader?) {
        let path = archive.path
        // Objects in a store are archives (a pg_dump there must be fetched first).
        let format = opened != nil ? .archive : try archive.localPath.map(DumpFormat.detect) ?? .archive
        if format != .archive, archive.keys.verifyKey != nil {
            throw ToolError(.signatureInvalid, "\(path) is a \(format.rawValue) pg_dump, which carries no signature, and --verify-key requires one",
                            fix: "Restore a signed rack-gateway-db archive, or drop --verify-key for this file.")
        }
        guard format == .archive else {
            if options.verify {
                throw ToolError(.usage, "--verify compares with an archive's manifest; \(path) is \(format.rawValue), which has none")
            }
            // What only an archive's manifest makes possible: given for a pg_dump, it would be ignored.
            let archiveOnly = [(options.createMissingRoles, "--create-missing-roles (a pg_dump does not list the roles it needs; create them first)"),
                               (options.maintenanceWorkMem != nil, "--maintenance-work-mem (psql and pg_restore build the indexes with the server's)"),
                               (options.allowDowngrade, "--allow-downgrade (a pg_dump's server version is not checked; psql or pg_restore decide)")]
            if let (_, name) = archiveOnly.first(where: { $0.0 }) {
                throw ToolError(.usage, "\(path) is a \(format.rawValue), and \(name) applies to rack-gateway-db archives only")
            }
            return (format, nil)
        }
        let opened = try opened ?? archive.reader()
        let check = try preflight ?? timed { try ArchiveVerifier().preflight(opened, logger: logger) }
        guard check.ok else {
            throw ToolError(.archiveCorrupt, "\(path) does not verify, so nothing was restored: " + check.problems.prefix(5).joined(separator: "; "),
                            fix: "Restore an older archive (rack-gateway-db list shows which verify).")
        }
        return (format, opened)
    }

    /// Replace the in-progress mark with the database's comment (or none); false when it could not be.
    func unmark(comment: String?) -> Bool {
        (try? target.settings.open(.restore)).map { RestoreTarget.mark($0, comment) } ?? false
    }

    /// The source database's settings and grants, on a target this restore created (the comment is
    /// set with the unmark). An existing target keeps its own.
    func applyProperties(_ properties: DatabaseProperties?) throws {
        guard createdTarget, let properties else { return }
        let connection = try target.settings.open(.restore)
        for statement in properties.statements(database: target.database, comment: false) {
            do {
                try connection.execute(statement)
            } catch let error as PostgresError {
                throw ToolError(.failed, "applying the source database's property failed: \(statement): \(error.description)",
                                fix: "Restore as the owner of the new database or a superuser (per-role settings need the role to exist).")
            }
        }
    }

    static func size(of path: String) -> Int {
        (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0
    }

    /// What the target is now, read without changing anything: the checked state.
    struct TargetInspection {
        var existing: Connection?
        var server: Connection
        var missingRoles: [String]
        var objects: (count: Int, names: [String])
        /// Why the restore would be refused as asked, with the fix; nil when it would go ahead.
        var refusal: ToolError?
    }

    func inspectTarget(roles: [String], archiveServer: Int?) throws -> TargetInspection {
        let existing = try target.connectIfExists()
        if existing != nil && options.requireNewDatabase {
            throw ToolError(.databaseExists, "database \(target.database) \(RestoreTarget.alreadyExists)")
        }
        let server = try existing ?? target.maintenanceConnection()
        if let archiveServer {
            try PostgresVersions.checkRestore(archiveServer: archiveServer, targetServer: server.serverVersionNumber, allowDowngrade: options.allowDowngrade)
        }
        let missing = try RestoreTarget.missingRoles(roles, connection: server)
        let objects = try existing.map { try RestoreTarget.userObjects($0) } ?? (count: 0, names: [])
        var refusal: ToolError?
        if !missing.isEmpty && !options.createMissingRoles {
            // Roles belong to the server, not to a database (the target may not exist yet): the
            // server is named, and the command to create them connects to the database it was read on.
            let place = target.settings.replacingDatabase(with: server.databaseName)
            let serverName = place.description.split(separator: "/", omittingEmptySubsequences: false).dropLast().joined(separator: "/")
            let create = ShellCommand.psql(place.urlWithoutPassword, missing.map(RestoreTarget.createRoleStatement))
            refusal = ToolError(.failed, "the archive needs \(missing.count == 1 ? "role" : "roles") \(missing.joined(separator: ", ")), missing on the server \(serverName); nothing was changed",
                                fix: "Create \(missing.count == 1 ? "it" : "them") (NOLOGIN, as the archive's grants and owners need): \(create) (the password in PGPASSWORD), then run again"
                                    + (options.offersCreateMissingRoles ? "; or pass --create-missing-roles, which creates \(missing.count == 1 ? "it" : "them") so." : "."))
        } else if objects.count > 0 && !options.clean {
            let configured = configuredTarget
            refusal = ToolError(.databaseExists, "target database \(target.database) already holds \(Plural.of(objects.count, "object")) (\(objects.names.joined(separator: ", "))\(objects.count > objects.names.count ? ", ..." : "")); nothing was changed",
                                fix: configured.map { "\(target.database) is the configured database (from \($0)), the one the application may be using. To restore beside it, "
                                    + "pass --target-url with a new database's name; --clean drops \(target.database) and all its data, then restores the archive into it." }
                                    ?? "Restore into a new or empty database (--target-url), or pass --clean to drop and recreate \(target.database).")
        }
        return TargetInspection(existing: existing, server: server, missingRoles: missing, objects: objects, refusal: refusal)
    }

    /// Where the configured database came from when the target is it (no `--target-url`): a
    /// refusal or question about dropping it says so, since it is the one the application uses.
    var configuredTarget: String? {
        let source = target.settings.source
        return options.requireNewDatabase || source == "--target-url" ? nil : source
    }

    /// Every check first (roles, emptiness, confirmation), then the changes: roles, drop/create,
    /// the in-progress mark.
    func prepareTarget(roles: [String], file: String, archiveServer: Int? = nil) throws -> (action: String, createdRoles: [String]) {
        let inspection = try inspectTarget(roles: roles, archiveServer: archiveServer)
        if let refusal = inspection.refusal { throw refusal }
        let (existing, server, missing, objects) = (inspection.existing, inspection.server, inspection.missingRoles, inspection.objects)
        var action = existing == nil ? "created" : "existing"
        if objects.count > 0 {
            let which = configuredTarget.map { ", the configured database (from \($0))," } ?? ""
            guard confirm("Drop database \(target.database)\(which) on \(target.settings.description) (\(Plural.of(objects.count, "object"))) and restore \(file) into it?") else {
                throw ToolError(.notConfirmed, "not confirmed; nothing was changed", fix: "Pass --yes to drop and recreate \(target.database) without asking.")
            }
            action = "recreated"
        }
        if !missing.isEmpty {
            try RestoreTarget.createRoles(missing, connection: server)
            logger.info("created missing roles (NOLOGIN)", metadata: ["roles": "\(missing.joined(separator: ", "))"])
        }
        if let existing, action == "existing" {
            originalComment = try existing.query("SELECT pg_catalog.shobj_description(d.oid, 'pg_database') FROM pg_catalog.pg_database d WHERE d.datname = current_database()").rows.first?[0] ?? nil
            if let comment = originalComment, RestoreTarget.isMark(comment) { originalComment = nil }
        }
        if action != "existing" {
            let admin = existing == nil ? server : try target.maintenanceConnection()
            lifecycle.move(to: .creating)
            if action == "recreated" {
                try target.dropAndCreate(admin)
            } else {
                try target.create(admin)
            }
        }
        lifecycle.move(to: .prepared, created: action != "existing", recreated: action == "recreated")
        try context.checkStopped()
        let connection = try target.settings.open(.restore)
        let marked = RestoreTarget.markInProgress(connection, file: file, at: context.clock.now())
        lifecycle.move(to: .marked, marked: marked)
        if !marked {
            logger.warning("cannot mark the target with COMMENT ON DATABASE (not its owner); an interrupted restore will not be marked",
                           metadata: ["database": "\(target.database)"])
        }
        return (action, missing)
    }

    /// Mark the target as failed (once) and add what state it is in, and what clears it, to the
    /// error. A restore a signal stopped says so instead of blaming the statement it cancelled.
    func markFailed(_ error: Error, file: String) -> Error {
        let stopped = context.cancellation.isCancelled
        let reason = stopped ? context.cancellation.description : (error as? ToolError)?.message ?? String(describing: error)
        if lifecycle.state != .failed {
            // A new connection: the run's own were cancelled with it.
            let marked = (try? target.settings.cancelled(by: nil).open(.restore))
                .map { RestoreTarget.markFailed($0, file: file, reason: reason, at: context.clock.now()) } ?? false
            lifecycle.move(to: .failed, marked: marked)
        }
        let state = lifecycle.summary ?? "database \(target.database) was not changed"
        // An archive that is itself refused (damaged, or a script psql must not run) is no way back.
        let refused = (error as? ToolError).map { [.archiveCorrupt, .mismatch, .signatureInvalid].contains($0.code) || $0.cause is PsqlScriptGuard.Refused } ?? false
        let fix = lifecycle.clearing(archive: file, again: stopped || !refused, arguments: options.againArguments)
        if stopped {
            let how = context.cancellation.signal == nil ? "stopped: \(reason)" : "was \(reason)"
            return ToolError(.interrupted, "the restore into \(target.database) \(how); \(state)", fix: fix)
        }
        if let error = error as? ToolError {
            return ToolError(error.code, "\(error.message); \(state)", fix: [error.fix, fix].compactMap { $0 }.joined(separator: "\n"), cause: error)
        }
        let reported = ToolError(reporting: error)
        return ToolError(reported.code, "\(reported.message); \(state)", fix: [reported.fix, fix].compactMap { $0 }.joined(separator: "\n"), cause: error)
    }
}
