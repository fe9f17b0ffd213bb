import Foundation
import Logging
import RGWPostgres

public struct DrillOptions: Sendable {
    /// The scratch server (any database on it; the drill creates its own).
    public var scratch: ConnectionSettings
    public var jobs: Int
    public var keep = false
    public var migrations: MigrationSet
    /// The application's own migrate command, run against the scratch database instead of the set.
    public var migrateCommand: ApplicationMigrateCommand?
    /// The WORM anchors to compare the restored chain head with.
    public var anchors: AuditAnchorSource?
    /// Try an archive of a newer server on an older scratch server.
    public var allowDowngrade = false
    public var environment: [String: String] = ProcessInfo.processInfo.environment
    /// For a command printed to restore the archive again (`RestoreOptions.againArguments`).
    public var againArguments: [String] = []
    /// `--latest`: the time to choose, fetch and check the archive before the drill began; part of
    /// the measured RTO and of the drill's duration (`RestoreOptions.fetchSeconds`).
    public var fetchSeconds: Double?

    public init(scratch: ConnectionSettings, jobs: Int, migrations: MigrationSet) {
        self.scratch = scratch
        self.jobs = jobs
        self.migrations = migrations
    }
}

public struct DrillReport: Codable, Sendable {
    /// The archive's file name (`drills.jsonl` and `list` match on it) and full path.
    public var archive: String
    public var path: String
    public var ok: Bool
    /// Why the drill could not run to its checks (server down, missing roles, ...), if so.
    public var error: String?
    /// The code of the error that stopped the drill (`database_auth_failed`, ...), as other
    /// commands give it for the same cause; nil for a drill that ran (or older reports).
    public var errorCode: String?
    /// What to do about `error`, when the error that stopped the drill says (the CREATE ROLE
    /// statements for missing roles, ...).
    public var errorFix: String?
    public var startedAt: String
    public var scratchDatabase: String
    /// The scratch server's version (`15.10`): the RTO was measured there. Nil when the drill
    /// stopped before its checks connected (and in reports of older versions).
    public var scratchServerVersion: String?
    public var kept: Bool
    /// What became of the scratch database once the drill was over (nil in reports of older versions).
    public var scratchFate: ScratchFate?
    /// The measured RTO: archive check plus restore, in seconds.
    public var restoreSeconds: Double
    public var durationSeconds: Double
    /// The RPO: the backup's snapshot time and its age when the drill started.
    public var backupCreatedAt: String
    public var backupAgeSeconds: Double
    public var archiveBytes: Int
    /// The restored archive's tables, rows and bytes of COPY text: nil for `drill --existing-url`,
    /// whose database is not the archive (its figures are in `archiveContents`).
    public var tables: Int?
    public var rows: Int?
    public var bytes: Int?
    /// `drill --existing-url` with an archive: what the archive holds (not the database's figures).
    public var archiveContents: ArchiveContents?
    public struct ArchiveContents: Codable, Sendable {
        public var tables: Int
        public var rows: Int
        public var bytes: Int
    }
    public var checks: [DrillCheck]
    public var restorePhases: [RestorePhase]
    /// The backup's shrink-check mark on the drilled archive, if any (it restores; the data shrank).
    public var suspect: String?
    /// The archive's `.minisig` was checked against --verify-key before it was read (nil for
    /// `drill --existing-url` without an archive).
    public var signatureChecked: Bool?
    /// `drill --latest`: the newest archive in the directory did not verify (this report is of the
    /// newest good archive, drilled in its place); the drill exits 2 whatever its checks say.
    public var newestFailed: ArchiveDirectory.NewestProblem?
    /// `existing` for `drill --existing-url` (a database restored by something else, checked in
    /// place; no restore, no RTO); nil for a drill that restored the archive itself.
    public var kind: DrillKind?
    /// `drill --existing-url`: the database is the archive's own source (the same host, port and
    /// database name as its manifest records), not a copy restored elsewhere; nil without an archive.
    public var sameAsSource: Bool?
    /// `drill --existing-url --latest`: which archive was chosen and why, when not the newest.
    public var latestChoice: String?
    /// `drill --existing-url`: the database checked (never its password).
    public var database: DatabaseIdentity?
    /// `drill --existing-url`: false when the audit history was not checked (no archive, or one
    /// without an audit log): a pass then checked less. Nil for a restore drill.
    public var complete: Bool?
    /// What became of the drill's scratch database.
    public enum ScratchFate: String, Codable, Sendable {
        /// The drill stopped before it sent CREATE DATABASE.
        case notCreated = "not_created"
        case dropped
        /// `--keep`.
        case kept
        /// DROP DATABASE failed (the error is logged): the database is still there.
        case dropFailed = "drop_failed"
    }

    /// What happened to the scratch database, for the report's last line and a stopped drill's
    /// error ("scratch database rgw_drill_... dropped").
    public var scratchOutcome: String {
        switch scratchFate {
        case .notCreated: "no scratch database was created"
        case .dropped: "scratch database \(scratchDatabase) dropped"
        case .kept: "scratch database \(scratchDatabase) kept (--keep)" + (restored ? "" : ", incomplete: its restore did not finish")
        case .dropFailed: "scratch database \(scratchDatabase) could NOT be dropped: drop it by hand (DROP DATABASE \(SQL.identifier(scratchDatabase)))"
        case nil: kept ? "scratch database \(scratchDatabase) kept (--keep)" : "scratch database \(scratchDatabase) dropped"
        }
    }

    /// Whether the restore into the scratch database finished (its check passed): only then is
    /// `restoreSeconds` a measured RTO.
    public var restored: Bool { checks.contains { $0.name == "restore" && $0.ok } }

    /// A drill of a database restored elsewhere (`drill --existing-url`).
    public var isExisting: Bool { kind == .existing }

    public var checksFailed: Int { checks.filter { !$0.ok }.count }
    public var checksNotChecked: Int { checks.filter { !$0.checked }.count }
}

/// `drill`: restore an archive into `rgw_drill_<UTC timestamp>` on the scratch server, check it
/// (docs/design.md section 5), report, and drop it (also on failure and Ctrl-C) unless `--keep`.
public final class DrillRunner: @unchecked Sendable {
    public let options: DrillOptions
    public let logger: Logger
    public let context: RunContext
    public let progress = RestoreProgress()

    public init(options: DrillOptions, logger: Logger, context: RunContext? = nil) {
        self.options = options
        self.logger = logger
        self.context = context ?? .detached(logger: logger)
    }

    static func scratchName(_ date: Date, attempt: Int) -> String {
        let stamp = ArchiveName.stem(ArchiveName.fileName(prefix: "rgw_drill", date: date))
        return attempt == 0 ? stamp : "\(stamp)_\(attempt + 1)"
    }

    /// Run the drill. A check that fails gives a report with `ok` false (exit 2); a drill that could
    /// not run to its checks (server down, missing roles) a report with `error` set (exit 1); an
    /// archive that cannot even be opened throws.
    public func run(path: String, preflight: ArchiveVerifier.Report? = nil) throws -> DrillReport {
        try run(archive: ArchiveLocation(path: path), preflight: preflight)
    }

    public func run(archive: ArchiveLocation, preflight: ArchiveVerifier.Report? = nil) throws -> DrillReport {
        try run(reader: try archive.reader(), preflight: preflight)
    }

    /// The drill of an archive already opened (`--latest`'s choice): its checks and its restore read
    /// through `reader`, never opening the archive again by name.
    public func run(reader: ArchiveReader, preflight: ArchiveVerifier.Report? = nil) throws -> DrillReport {
        let started = context.clock.now()
        let created = LockedList<RestoreTarget>()
        let failedDrops = LockedList<String>()
        // Only the database this drill created: a name taken by another drill is not ours. Dropped
        // on every way out (a failed check, an error, a signal), unless --keep.
        let dropScratch = context.cleanups.push("drop the drill's scratch database \(Self.scratchName(started, attempt: 0)) (look for rgw_drill_* databases)") { [options, logger] in
            if !options.keep { for scratch in created.items where !Self.drop(scratch, logger: logger) { failedDrops.add(scratch.database) } }
        }
        let outcome = Result { try run(reader: reader, preflight: preflight, started: started, created: created) }
        dropScratch.run()
        var report = try outcome.get()
        // What was done, not what was meant: a drop that failed, or a drill stopped before it
        // created anything, is said as such.
        report.scratchFate = created.items.isEmpty ? .notCreated : options.keep ? .kept : failedDrops.items.isEmpty ? .dropped : .dropFailed
        return report
    }

    /// The drill itself; `created` collects the scratch database once CREATE DATABASE is sent.
    func run(reader: ArchiveReader, preflight: ArchiveVerifier.Report?, started: Date, created: LockedList<RestoreTarget>) throws -> DrillReport {
        let path = reader.archive.path
        let stopwatch = Stopwatch()
        let manifest = reader.manifest
        let backupCreated = ISO8601DateFormatter.withFractions.date(from: manifest.createdAt) ?? started
        var report = DrillReport(
            archive: URL(fileURLWithPath: path).lastPathComponent, path: path, ok: false, error: nil,
            startedAt: ISO8601DateFormatter().string(from: started), scratchDatabase: "", kept: options.keep,
            restoreSeconds: 0, durationSeconds: 0, backupCreatedAt: manifest.createdAt,
            backupAgeSeconds: started.timeIntervalSince(backupCreated), archiveBytes: reader.storedSize,
            tables: manifest.tables.count, rows: manifest.totalRows, bytes: manifest.totalBytes, checks: [], restorePhases: [])
        report.suspect = manifest.suspect
        report.signatureChecked = reader.signatureChecked

        let check = try preflight ?? ArchiveVerifier().preflight(reader, logger: logger)
        report.checks.append(DrillCheck(name: "archive", ok: check.ok,
                                        detail: check.ok ? "structure and SHA-256 \(check.sha256.prefix(16))... match (sidecar \(check.sidecar))"
                                            + (reader.signatureChecked ? "; signature checked (--verify-key)" : "") : check.problems.prefix(3).joined(separator: "; ")))
        guard check.ok else { return finish(report, stopwatch) }

        var target: RestoreTarget!
        var restore: RestoreReport?
        var restoreError: Error?
        for attempt in 0..<5 {
            target = try RestoreTarget(settings: options.scratch.replacingDatabase(with: Self.scratchName(started, attempt: attempt)))
            var restoreOptions = RestoreOptions(jobs: options.jobs)
            restoreOptions.requireNewDatabase = true
            restoreOptions.offersCreateMissingRoles = false
            restoreOptions.allowDowngrade = options.allowDowngrade
            restoreOptions.environment = options.environment
            restoreOptions.againArguments = options.againArguments
            restoreOptions.fetchSeconds = options.fetchSeconds
            let runner = RestoreRunner(target: target, options: restoreOptions, logger: logger, progress: progress, context: context)
            let scratch = runner.target
            runner.lifecycle.observe { state in
                // From the moment CREATE DATABASE is sent: a run stopped while the server creates
                // it still drops it (the name was free when checked and this run holds its lock).
                if state == .creating { created.add(scratch) }
            }
            do {
                restore = try runner.run(reader: reader, preflight: check)
                restoreError = nil
                break
            } catch let error as ToolError where error.code == .databaseExists {
                // Created by another run between the check and CREATE DATABASE: not ours to drop.
                if runner.lifecycle.state == .creating { _ = created.popLast() }
                restoreError = error
                continue
            } catch {
                restoreError = error
                break
            }
        }
        report.scratchDatabase = target.database
        if let restoreError {
            guard let error = restoreError as? ToolError, error.category == .mismatch else {
                // Stopped: the scratch database is dropped next, so what the restore left is not news.
                report.error = context.cancellation.isCancelled ? "\(context.cancellation.description) during the restore" : String(describing: restoreError)
                report.errorCode = (restoreError as? ToolError)?.code.rawValue ?? (restoreError as? PostgresError)?.toolCode.rawValue
                if let error = restoreError as? ToolError, !context.cancellation.isCancelled {
                    // The message and its fix apart; a refused downgrade's fix is the command's own
                    // (it names the drill's options, not the restore's).
                    report.error = error.message
                    report.errorFix = error.code == .downgradeRefused ? nil : error.fix
                }
                return finish(report, stopwatch)
            }
            report.checks.append(DrillCheck(name: "restore", ok: false, detail: error.message))
            return finish(report, stopwatch)
        }
        let restored = restore!
        report.restorePhases = restored.phases
        report.restoreSeconds = restored.durationSeconds
        report.checks.append(DrillCheck(name: "restore", ok: true,
                                        detail: "\(Plural.of(manifest.tables.count, "table")), \(Plural.of(manifest.totalRows, "row")) in \(String(format: "%.1f", restored.durationSeconds)) s (the measured RTO)"))

        do {
            progress.begin(phase: "checks: rows and fingerprints", steps: manifest.tables.count)
            try timedCheck(&report) {
                let mismatches = try LiveFingerprint.mismatches(manifest: manifest, settings: target.settings, jobs: options.jobs) { [progress] in progress.stepDone() }
                return DrillCheck(name: "rows and fingerprints", ok: mismatches.isEmpty,
                                  detail: mismatches.isEmpty ? "all \(manifest.tables.count) tables match the manifest (\(manifest.totalRows) rows)" : mismatches.prefix(5).joined(separator: "; "))
            }
            let connection = try target.settings.open(.drill)
            report.scratchServerVersion = connection.serverVersion
            try DumpSession.apply(to: connection)
            progress.begin(phase: "checks")
            try timedCheck(&report) { try DrillChecks.sequences(connection, recorded: manifest.schemaState) }
            try timedCheck(&report) { try DrillChecks.constraintsAndIndexes(connection, recorded: manifest.schemaState) }
            try timedCheck(&report) { try DrillChecks.statistics(connection, manifest: manifest, outcome: restored.statistics) }
            if let recorded = manifest.largeObjects {
                try timedCheck(&report) {
                    let problems = LargeObjects.mismatches(try LargeObjects.live(connection), recorded: recorded)
                    return DrillCheck(name: "large objects", ok: problems.isEmpty,
                                      detail: problems.isEmpty ? "\(recorded.count) large objects, \(recorded.bytes) bytes: contents, owners, grants and comments match the source" : problems.joined(separator: "; "))
                }
            }
            if let views = try DrillChecks.materializedViews(connection, recorded: manifest.schemaState) {
                try timedCheck(&report) { views }
            }
            try timedCheck(&report) { try DrillChecks.auditChain(connection, settings: target.settings) }
            if let anchors = options.anchors {
                try timedCheck(&report) {
                    guard try connection.query("SELECT to_regclass('audit.audit_event') IS NOT NULL").scalar == "t" else {
                        return DrillCheck(name: AuditAnchorCheck.name, ok: false, detail: "anchors are configured (\(anchors.description)) but the restored database has no audit.audit_event")
                    }
                    return AuditAnchorCheck(source: anchors, environment: options.environment, clock: context.clock).run(connection, snapshot: backupCreated)
                }
            }
            try connection.execute("RESET ALL")
            // The migrate command connects on its own: this session must not hold anything it needs.
            try timedCheck(&report) { try DrillChecks.migrations(connection, settings: target.settings, options: options, logger: logger) }
        } catch {
            report.error = context.cancellation.isCancelled ? "\(context.cancellation.description) during the checks"
                : "the drill could not finish its checks on \(target.database): \(error)"
            return finish(report, stopwatch)
        }
        return finish(report, stopwatch)
    }

    func timedCheck(_ report: inout DrillReport, _ body: () throws -> DrillCheck) throws {
        try context.checkStopped()
        let stopwatch = Stopwatch()
        var check = try body()
        check.seconds = stopwatch.elapsed
        logger.info("drill check", metadata: ["check": "\(check.name)", "ok": "\(check.ok)", "detail": "\(check.detail)"])
        report.checks.append(check)
    }

    func finish(_ report: DrillReport, _ stopwatch: Stopwatch) -> DrillReport {
        var report = report
        report.ok = report.error == nil && !report.checks.isEmpty && report.checks.allSatisfy(\.ok)
        report.durationSeconds = stopwatch.elapsed + (options.fetchSeconds ?? 0)
        return report
    }

    /// Drop a scratch database; false (and the error logged) when that failed.
    static func drop(_ target: RestoreTarget, logger: Logger) -> Bool {
        do {
            // Connections of its own: the run's were cancelled when it was stopped.
            let target = try RestoreTarget(settings: target.settings.cancelled(by: nil))
            try target.drop(try target.maintenanceConnection())
            return true
        } catch {
            logger.error("could not drop the drill's scratch database; drop it by hand",
                         metadata: ["database": "\(target.database)", "error": "\(error)"])
            return false
        }
    }
}

extension ISO8601DateFormatter {
    /// `2026-11-25T06:21:46.123Z`, as manifests write times.
    static var withFractions: ISO8601DateFormatter {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter
    }
}
