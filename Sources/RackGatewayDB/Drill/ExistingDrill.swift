import Foundation
import Logging
import RGWPostgres

/// What a drill restored itself (`restore`) or found restored by something else (`existing`).
public enum DrillKind: String, Codable, Sendable {
    case restore
    case existing
}

/// Which database `drill --existing-url` checked: where it was reached and what the server says it
/// is. Never the password.
public struct DatabaseIdentity: Codable, Sendable, Equatable {
    public var host: String
    public var port: String
    public var dbname: String
    public var user: String
    /// `pg_control_system()`'s system identifier: the cluster's, the same on its replicas and on a
    /// snapshot's restore (nil when this role may not read it).
    public var systemIdentifier: String?
    /// `server_version` as the server gives it (`15.18 (Debian 15.18-0+deb12u1)`); the description has its number.
    public var serverVersion: String
    /// A hot standby (read-only by itself).
    public var inRecovery: Bool

    /// `host:port/dbname`, the server version, and the system identifier when read.
    public var description: String {
        "\(host):\(port)/\(dbname) (PostgreSQL \(serverVersion.split(separator: " ").first.map(String.init) ?? serverVersion)" + (systemIdentifier.map { ", system identifier \($0)" } ?? "")
            + (inRecovery ? ", a hot standby" : "") + ")"
    }
}

/// `drill --existing-url`: the drill's checks that need no restore of their own, on a database that
/// something else restored (an RDS snapshot or point-in-time restore, AWS Backup's restore testing, a
/// replica promoted by hand): sequences, constraints and indexes, materialized views, the audit chain,
/// the WORM anchors, the audit history against an archive when one is given (`AuditHistoryCheck`), and
/// the schema against the migration set (or the application's migrate command in its dry-run form).
/// Every session is read-only from its start (`ConnectionSettings.readOnly`), the checks run in one
/// `REPEATABLE READ, READ ONLY` transaction (one snapshot), and nothing is ever written to the database.
public struct ExistingDrill {
    public let options: DrillOptions
    /// The database to check, read-only.
    public let settings: ConnectionSettings
    public let logger: Logger
    public let context: RunContext
    /// Which check runs, for the progress line at a terminal.
    public let progress = RestoreProgress()

    public init(settings: ConnectionSettings, options: DrillOptions, logger: Logger, context: RunContext? = nil) {
        self.settings = settings.readOnly()
        self.options = options
        self.logger = logger
        self.context = context ?? .detached(logger: logger)
    }

    /// The check named when no archive was given: it is reported NOT CHECKED, failing nothing.
    public static let historyCheck = "audit history"

    /// Run the checks; `reader` is the archive to check the audit history against (nil: none, the
    /// history check is reported NOT CHECKED). A check that fails gives a report with `ok` false; a
    /// database that cannot be reached or read a report with `error` set.
    public func run(reader: ArchiveReader?) throws -> DrillReport {
        let started = context.clock.now()
        let stopwatch = Stopwatch()
        let manifest = reader?.manifest
        let backupCreated = manifest.flatMap { ISO8601DateFormatter.withFractions.date(from: $0.createdAt) }
        var report = DrillReport(
            archive: reader.map { URL(fileURLWithPath: $0.archive.path).lastPathComponent } ?? "", path: reader?.archive.path ?? "",
            ok: false, error: nil, startedAt: ISO8601DateFormatter().string(from: started), scratchDatabase: "", kept: false,
            restoreSeconds: 0, durationSeconds: 0, backupCreatedAt: manifest?.createdAt ?? "",
            backupAgeSeconds: backupCreated.map { started.timeIntervalSince($0) } ?? 0, archiveBytes: reader?.storedSize ?? 0,
            tables: manifest?.tables.count ?? 0, rows: manifest?.totalRows ?? 0, bytes: manifest?.totalBytes ?? 0, checks: [], restorePhases: [])
        report.kind = .existing
        report.suspect = manifest?.suspect
        let runner = DrillRunner(options: options, logger: logger, context: context)
        do {
            let connection = try settings.open(.drill)
            report.database = try Self.identity(connection, settings: settings)
            try DumpSession.apply(to: connection)
            // One snapshot for every check; read-only twice over (the session's default too).
            try connection.execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            progress.begin(phase: "checks (read-only)")
            try runner.timedCheck(&report) { try DrillChecks.sequences(connection, recorded: manifest?.schemaState) }
            try runner.timedCheck(&report) { try DrillChecks.constraintsAndIndexes(connection, recorded: manifest?.schemaState) }
            if let views = try DrillChecks.materializedViews(connection, recorded: manifest?.schemaState) {
                try runner.timedCheck(&report) { views }
            }
            try runner.timedCheck(&report) { try DrillChecks.auditChain(connection, settings: settings) }
            let hasAudit = try connection.query("SELECT to_regclass('audit.audit_event') IS NOT NULL").scalar == "t"
            if let anchors = options.anchors {
                try runner.timedCheck(&report) {
                    guard hasAudit else {
                        return DrillCheck(name: AuditAnchorCheck.name, ok: false, detail: "anchors are configured (\(anchors.description)) but the database has no audit.audit_event")
                    }
                    // The database may be restored to any time: an anchor naming an event past its
                    // last one was written after that time and is passed over (`upTo`).
                    let last = try connection.query("SELECT max(chain_index)::text FROM audit.audit_event").scalar.flatMap { Int64($0) } ?? -1
                    var check = AuditAnchorCheck(source: anchors, environment: options.environment, clock: context.clock)
                    check.upTo = last
                    return check.run(connection, snapshot: started)
                }
            }
            progress.begin(phase: "checks: audit history")
            try runner.timedCheck(&report) { try history(reader, connection: connection) }
            progress.begin(phase: "checks: migrations")
            try connection.execute("COMMIT")
            try connection.execute("RESET ALL")
            try runner.timedCheck(&report) { try migrations(connection) }
        } catch {
            report.error = context.cancellation.isCancelled ? "\(context.cancellation.description) during the checks"
                : report.database == nil ? "\(error)" : "the drill could not finish its checks: \(error)"
        }
        return runner.finish(report, stopwatch)
    }

    /// Where and what the database is, read from the server (the system identifier only when this
    /// role may call `pg_control_system()`).
    static func identity(_ connection: Connection, settings: ConnectionSettings) throws -> DatabaseIdentity {
        let row = try connection.query("SELECT current_database(), current_user, current_setting('server_version'), pg_is_in_recovery()::text").rows[0]
        let system = try? connection.query("SELECT system_identifier::text FROM pg_control_system()").scalar
        return DatabaseIdentity(host: settings.effectiveValue("host") ?? connection.host, port: settings.effectiveValue("port") ?? connection.port,
                                dbname: row[0] ?? "?", user: row[1] ?? "?", systemIdentifier: system ?? nil,
                                serverVersion: row[2] ?? "?", inRecovery: row[3] == "true")
    }

    /// The audit history check (item 5 of issue 31) against the archive: its audit log's events up to
    /// its last chain_index must be the database's, less recorded prunes.
    func history(_ reader: ArchiveReader?, connection: Connection) throws -> DrillCheck {
        let name = Self.historyCheck
        guard let reader else {
            return DrillCheck(name: name, ok: true, detail: "no archive was given, so the audit log was not compared with one; give ARCHIVE or --latest to check that its history was not rewritten", checked: false)
        }
        guard let table = AuditHistoryCheck.auditTable(reader.manifest) else {
            return DrillCheck(name: name, ok: true, detail: "the archive \(reader.path) holds no audit log (no table with chain_index, previous_hash and event_hash)", checked: false)
        }
        guard try connection.query("SELECT to_regclass($1) IS NOT NULL", [SQL.qualified(table.schema, table.name)]).scalar == "t" else {
            return DrillCheck(name: name, ok: false, detail: "the archive has the audit log \(table.qualifiedName) but the database has no such table")
        }
        let diff = ArchiveDiff(archive: reader, other: .database(settings), options: ArchiveDiff.Options())
        let result = try AuditHistoryCheck.check(diff, table: table, connection: connection)
        return DrillCheck(name: name, ok: result.ok, detail: result.ok ? result.heldDetail + " in \(URL(fileURLWithPath: reader.path).lastPathComponent)" : "\(result.table)\(result.firstDifference != nil ? " was changed" : ""): " + result.changedDetail)
    }

    /// The schema against the migration set, or the application's migrate command (in its dry-run
    /// form: it connects read-only, so a command that writes fails here): nothing is applied.
    func migrations(_ connection: Connection) throws -> DrillCheck {
        if let command = options.migrateCommand {
            let outcome = command.run(target: settings, base: options.environment, logger: logger)
            return DrillCheck(name: "migrations", ok: outcome.ok,
                              detail: "the application's migrate command (--migrate-command, read-only: give its dry-run form) on \(settings.databaseName ?? "the database") \(outcome.summary)")
        }
        let status = try Migrator(connection: connection, migrations: options.migrations, logger: logger).status()
        if let advice = status.advice, status.isForeign {
            return DrillCheck(name: "migrations", ok: true,
                              detail: "\(advice); pass --migrations DIR (the application's migrations) or --migrate-command CMD in its dry-run form", checked: false)
        }
        let set = "\(options.migrations.migrations.count) migrations of \(options.migrations.described)"
        let ahead = status.migrationSet == "ahead" ? "; the database also has \(Plural.of(status.missingFiles.count, "newer version")) than this set (a newer release)" : ""
        guard !status.pending.isEmpty else { return DrillCheck(name: "migrations", ok: true, detail: "up to date (\(set))\(ahead)") }
        let pending = status.pending.map(\.file)
        return DrillCheck(name: "migrations", ok: true,
                          detail: "\(Plural.of(pending.count, "migration")) of \(set) pending, not applied (the database is only read; the application applies them when it migrates): "
                              + pending.prefix(5).joined(separator: ", ") + (pending.count > 5 ? ", ..." : "") + ahead)
    }
}

