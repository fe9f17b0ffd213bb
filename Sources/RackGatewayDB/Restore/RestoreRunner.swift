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
    /// Try an archive of a newer server on an older one (PostgresVersions).
    public var allowDowngrade = false
    public var environment: [String: String] = ProcessInfo.processInfo.environment

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
}

/// `restore`: check the archive and the target before changing anything, prepare the target
/// (create it, or with `--clean` drop and recreate it; create missing roles when asked), load, and
/// on any failure leave the target marked as failed (`COMMENT ON DATABASE`), never looking good.
public final class RestoreRunner: @unchecked Sendable {
    public let target: RestoreTarget
    public let options: RestoreOptions
    public let logger: Logger
    public let progress: RestoreProgress
    /// Asked before `--clean` drops a database that holds tables; false stops the restore.
    public var confirm: (String) -> Bool = { _ in false }
    /// Called once the target database is created (or recreated, or found empty) and about to
    /// change: the drill registers the clean-up of its scratch database here.
    public var onTargetCreated: (RestoreTarget) -> Void = { _ in }
    /// Whether the target carries the INCOMPLETE comment (not when the role does not own it).
    private var marked = false
    /// An existing target's own comment, put back when the restore removes its mark.
    private var originalComment: String?
    /// Whether this restore created (or recreated) the target, and so gives it the source's properties.
    private var createdTarget = false

    public init(target: RestoreTarget, options: RestoreOptions, logger: Logger, progress: RestoreProgress = RestoreProgress()) {
        self.progress = progress
        self.target = target
        self.options = options
        self.logger = logger
    }

    /// Restore `path`; `preflight` is the archive check already made (by `--latest`), if any.
    public func run(path: String, preflight: ArchiveVerifier.Report? = nil) throws -> RestoreReport {
        try run(archive: ArchiveLocation(path: path), preflight: preflight)
    }

    /// Restore an archive in a store (S3: read with ranged requests, never downloaded whole) or a
    /// local file (which may also be a pg_dump).
    public func run(archive: ArchiveLocation, preflight: ArchiveVerifier.Report? = nil) throws -> RestoreReport {
        let path = archive.path
        let started = Date()
        var phases: [RestorePhase] = []
        func timed<R>(_ name: String, _ body: () throws -> R) rethrows -> R {
            let begin = Date()
            let result = try body()
            phases.append(RestorePhase(name: name, seconds: Date().timeIntervalSince(begin)))
            return result
        }
        progress.begin(phase: "checking the archive")
        // Objects in a store are archives (a pg_dump there must be fetched first).
        let format = try archive.localPath.map(DumpFormat.detect) ?? .archive
        if format != .archive, archive.keys.verifyKey != nil {
            throw ToolError(.signatureInvalid, "\(path) is a \(format.rawValue) pg_dump, which carries no signature, and --verify-key requires one",
                            fix: "Restore a signed rack-gateway-db archive, or drop --verify-key for this file.")
        }
        var reader: ArchiveReader?
        if format == .archive {
            let opened = try archive.reader()
            let check = try preflight ?? timed("archive check") { try ArchiveVerifier().preflight(opened) }
            guard check.ok else {
                throw ToolError(.mismatch, "\(path) does not verify, so nothing was restored: " + check.problems.prefix(5).joined(separator: "; "),
                                fix: "Restore an older archive (rack-gateway-db list shows which verify).")
            }
            reader = opened
        } else if options.verify {
            throw ToolError(.usage, "--verify compares with an archive's manifest; \(path) is \(format.rawValue), which has none")
        }
        let manifest = reader?.manifest
        logger.info("restore started", metadata: ["file": "\(path)", "format": "\(format.rawValue)", "target": "\(target.settings.description)"])

        progress.begin(phase: "checking the target")
        let (action, createdRoles) = try timed("target") { try prepareTarget(roles: manifest?.roles ?? [], file: path, archiveServer: manifest?.serverVersionNum) }

        var mismatches: [String] = []
        var unmarked = false
        do {
            if let reader {
                let loader = ArchiveLoader(reader: reader, settings: target.settings, jobs: options.jobs,
                                           maintenanceWorkMem: options.maintenanceWorkMem, logger: logger, progress: progress)
                do {
                    mismatches = try loader.run(verify: options.verify)
                    if !mismatches.isEmpty {
                        throw ToolError(.mismatch, "the restored data differs from the archive's manifest: " + mismatches.prefix(5).joined(separator: "; "))
                    }
                    // The mark (COMMENT ON DATABASE) and the database's own properties are DDL too:
                    // both before the event triggers exist.
                    try applyProperties(reader.manifest.databaseProperties)
                    unmarked = unmark(comment: createdTarget ? reader.manifest.databaseProperties?.comment : originalComment)
                    try loader.createEventTriggers()
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
                try timed("analyze") { try target.analyze(jobs: options.jobs) }
                unmarked = unmark(comment: originalComment)
            }
        } catch {
            throw markFailed(error, file: path)
        }
        if marked && !unmarked {
            logger.warning("the restore finished but its INCOMPLETE comment could not be removed; remove it with COMMENT ON DATABASE ... IS NULL",
                           metadata: ["database": "\(target.database)"])
        }
        let report = RestoreReport(
            file: path, format: format, target: target.settings.description, database: target.database,
            targetAction: action, createdRoles: createdRoles, jobs: options.jobs,
            tables: manifest?.tables.count, rows: manifest?.totalRows, bytes: manifest?.totalBytes,
            archiveBytes: reader?.fileSize ?? Self.size(of: path), archiveCreatedAt: manifest?.createdAt,
            phases: phases, durationSeconds: Date().timeIntervalSince(started), verified: options.verify, mismatches: mismatches)
        logger.info("restore finished", metadata: ["file": "\(path)", "target": "\(target.settings.description)",
                                                   "seconds": "\(String(format: "%.1f", report.durationSeconds))"])
        return report
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

    /// Every check first (roles, emptiness, confirmation), then the changes: roles, drop/create,
    /// the in-progress mark.
    func prepareTarget(roles: [String], file: String, archiveServer: Int? = nil) throws -> (action: String, createdRoles: [String]) {
        let existing = try target.connectIfExists()
        if existing != nil && options.requireNewDatabase {
            throw ToolError(.databaseExists, "database \(target.database) \(RestoreTarget.alreadyExists)")
        }
        let server = try existing ?? target.maintenanceConnection()
        if let archiveServer {
            try PostgresVersions.checkRestore(archiveServer: archiveServer, targetServer: server.serverVersionNumber, allowDowngrade: options.allowDowngrade)
        }
        let missing = try RestoreTarget.missingRoles(roles, connection: server)
        if !missing.isEmpty && !options.createMissingRoles {
            throw ToolError(.failed, "the archive needs role\(missing.count == 1 ? "" : "s") missing on \(target.settings.description): \(missing.joined(separator: ", ")); nothing was changed",
                            fix: "Create them (" + missing.map { RestoreTarget.createRoleStatement($0) + ";" }.joined(separator: " ")
                                + ") or pass --create-missing-roles, which creates them NOLOGIN.")
        }
        var action = existing == nil ? "created" : "existing"
        if let existing {
            let objects = try RestoreTarget.userObjects(existing)
            if objects.count > 0 {
                guard options.clean else {
                    throw ToolError(.failed, "target database \(target.database) already holds \(objects.count) object\(objects.count == 1 ? "" : "s") (\(objects.names.joined(separator: ", "))\(objects.count > objects.names.count ? ", ..." : "")); nothing was changed",
                                    fix: "Restore into a new or empty database (--target-url), or pass --clean to drop and recreate \(target.database).")
                }
                guard confirm("Drop database \(target.database) on \(target.settings.description) (\(objects.count) objects) and restore \(file) into it?") else {
                    throw ToolError(.notConfirmed, "not confirmed; nothing was changed", fix: "Pass --yes to drop and recreate \(target.database) without asking.")
                }
                action = "recreated"
            }
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
            createdTarget = true
            let admin = existing == nil ? server : try target.maintenanceConnection()
            if action == "recreated" {
                try target.dropAndCreate(admin)
            } else {
                try target.create(admin)
            }
        }
        onTargetCreated(target)
        let connection = try target.settings.open(.restore)
        marked = RestoreTarget.markInProgress(connection, file: URL(fileURLWithPath: file).lastPathComponent)
        if !marked {
            logger.warning("cannot mark the target with COMMENT ON DATABASE (not its owner); an interrupted restore will not be marked",
                           metadata: ["database": "\(target.database)"])
        }
        return (action, missing)
    }

    /// Mark the target as failed and add what state it is in to the error.
    func markFailed(_ error: Error, file: String) -> Error {
        let reason = (error as? ToolError)?.message ?? String(describing: error)
        let marked = (try? target.settings.open(.restore))
            .map { RestoreTarget.markFailed($0, file: URL(fileURLWithPath: file).lastPathComponent, reason: reason) } ?? false
        let state = marked
            ? "database \(target.database) is left incomplete and marked FAILED (COMMENT ON DATABASE)"
            : "database \(target.database) is left incomplete (it could not be marked)"
        let fix = "Do not use \(target.database); fix the cause and restore again with --clean, or drop it."
        if let error = error as? ToolError {
            return ToolError(error.code, "\(error.message); \(state)", fix: [error.fix, fix].compactMap { $0 }.joined(separator: "\n"))
        }
        return ToolError(.failed, "\(error); \(state)", fix: fix)
    }
}
