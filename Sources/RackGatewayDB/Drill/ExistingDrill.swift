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
        // The archive's figures are the archive's, not the database's.
        report.archiveContents = manifest.map { DrillReport.ArchiveContents(tables: $0.tables.count, rows: $0.totalRows, bytes: $0.totalBytes) }
        (report.tables, report.rows, report.bytes) = (nil, nil, nil)
        report.suspect = manifest?.suspect
        let runner = DrillRunner(options: options, logger: logger, context: context)
        do {
            let connection = try settings.open(.drill)
            report.database = try Self.identity(connection, settings: settings)
            if let manifest, let database = report.database {
                report.sameAsSource = manifest.sourceHost == "\(database.host):\(database.port)" && manifest.database == database.dbname
            }
            let standby = report.database?.inRecovery == true
            try DumpSession.apply(to: connection)
            // What was written while the drill ran is measured, not assumed: from here to the end.
            let before = standby ? nil : try ExistingChecks.WriteMark.read(connection)
            let postData = try reader.map { try ExistingChecks.postData($0, settings: settings, logger: logger) }
            let functions = try reader.map { ExistingChecks.functionBodies(try ExistingChecks.section(.preData, of: $0, settings: settings, logger: logger)) }
            // One snapshot for every check; read-only twice over (the session's default too).
            try connection.execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            progress.begin(phase: "checks (read-only)")
            if let manifest, let postData {
                try runner.timedCheck(&report) { try ExistingChecks.schema(connection, manifest: manifest, postData: postData) }
            }
            try runner.timedCheck(&report) { try DrillChecks.sequences(connection, recorded: manifest?.schemaState) }
            try runner.timedCheck(&report) { try DrillChecks.constraintsAndIndexes(connection, recorded: manifest?.schemaState) }
            if let views = try DrillChecks.materializedViews(connection, recorded: manifest?.schemaState) {
                try runner.timedCheck(&report) { views }
            }
            try runner.timedCheck(&report) { try DrillChecks.auditChain(connection, settings: settings) }
            let hasAudit = try connection.query("SELECT to_regclass('audit.audit_event') IS NOT NULL").scalar == "t"
            if hasAudit {
                // The archive's audit log's triggers when it has one; else any that protect it.
                let audit = manifest.flatMap(AuditHistoryCheck.auditTable)
                let table = audit.map { ($0.schema, $0.name) } ?? ("audit", "audit_event")
                let archived = audit.map { postData?.triggers[$0.qualifiedName] ?? [] }
                try runner.timedCheck(&report) { try ExistingChecks.auditTriggers(connection, table: table, archived: archived, functions: functions) }
            }
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
            var older = false
            let database = report.database
            try runner.timedCheck(&report) {
                let (check, isOlder) = try history(reader, connection: connection, database: database)
                older = isOlder
                return check
            }
            progress.begin(phase: "checks: migrations")
            try connection.execute("COMMIT")
            try connection.execute("RESET ALL")
            try runner.timedCheck(&report) { try migrations(connection, manifest: manifest, databaseIsOlder: older) }
            if standby || before != nil {
                try runner.timedCheck(&report) { try ExistingChecks.writes(connection, since: before ?? .init(nextXid: 0, tuples: 0), standby: standby) }
            }
        } catch {
            report.errorCode = (error as? ToolError)?.code.rawValue ?? (error as? PostgresError)?.toolCode.rawValue
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

    /// Starts the history check's detail when the archive is of another database (not a rewrite
    /// of this one's history): the drill then exits 64.
    public static let unrelatedPrefix = "not this database's archive: "

    /// The audit history check (item 5 of issue 31) against the archive: its audit log's events up to
    /// its last chain_index must be the database's, less recorded prunes. A database whose newest
    /// event is older than the archive's time is an older snapshot: compared up to its own last
    /// event, the archive's later ones said, not failed (true with the check). An archive none of
    /// whose events match is of another database, said as such.
    func history(_ reader: ArchiveReader?, connection: Connection, database: DatabaseIdentity?) throws -> (DrillCheck, Bool) {
        let name = Self.historyCheck
        guard let reader else {
            return (DrillCheck(name: name, ok: true, detail: "no archive was given, so the audit log was not compared with one; give ARCHIVE or --latest to check that its history was not rewritten", checked: false), false)
        }
        guard let table = AuditHistoryCheck.auditTable(reader.manifest) else {
            return (DrillCheck(name: name, ok: true, detail: "the archive \(reader.path) holds no audit log (no table with chain_index, previous_hash and event_hash)", checked: false), false)
        }
        let qualified = SQL.qualified(table.schema, table.name)
        guard try connection.query("SELECT to_regclass($1) IS NOT NULL", [qualified]).scalar == "t" else {
            return (DrillCheck(name: name, ok: false, detail: "the archive has the audit log \(table.qualifiedName) but the database has no such table"), false)
        }
        // The database's newest event, by its time column where the table has one.
        let time = table.columns.contains("timestamp") ? "max(\(SQL.identifier("timestamp")))" : "NULL::timestamptz"
        let newest = try connection.query("SELECT max(chain_index)::text, extract(epoch FROM \(time))::text, to_char(\(time) AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') FROM ONLY \(qualified)").rows[0]
        let archiveTime = ISO8601DateFormatter.withFractions.date(from: reader.manifest.createdAt)
        let newestTime = newest[1].flatMap(Double.init).map(Date.init(timeIntervalSince1970:))
        let older = archiveTime != nil && newestTime != nil && newestTime! < archiveTime!
        let upTo = older ? (newest[0].flatMap { Int64($0) } ?? -1) : nil
        let diff = ArchiveDiff(archive: reader, other: .database(settings), options: ArchiveDiff.Options())
        let result = try AuditHistoryCheck.check(diff, table: table, connection: connection, upTo: upTo)
        let file = URL(fileURLWithPath: reader.path).lastPathComponent
        if result.unrelated {
            let source = AuditHistoryCheck.source(reader.manifest)
            let this = database?.dbname ?? settings.databaseName ?? "this one"
            return (DrillCheck(name: name, ok: false, detail: Self.unrelatedPrefix + "this archive (\(file)) is of database \(source)\(reader.manifest.database == this ? "" : ", not of \(this)"); "
                               + "its events do not match from the first one (chain_index \(result.firstDifference ?? 0): \(Plural.of(result.changed, "event")) differ, none is the same)"), false)
        }
        guard result.ok else {
            return (DrillCheck(name: name, ok: false, detail: "\(result.table)\(result.firstDifference != nil ? " was changed" : ""): " + result.changedDetail(upTo: upTo)), false)
        }
        guard result.beyondDatabase > 0, let last = upTo else { return (DrillCheck(name: name, ok: true, detail: result.heldDetail + " in \(file)"), false) }
        return (DrillCheck(name: name, ok: true, detail: "\(result.table): the \(Plural.of(result.events - result.beyondDatabase, "event")) up to chain_index \(last) (this database's last) are as archived in \(file)"
                           + result.prunedNote + "; the archive goes \(Plural.of(result.beyondDatabase, "event")) further than this database "
                           + "(it is newer: taken \(reader.manifest.createdAt); the database's newest event \(newest[2] ?? "?"))"), true)
    }

    /// The schema against the migration set, or the application's migrate command (in its dry-run
    /// form: it connects read-only, so a command that writes fails here): nothing is applied.
    func migrations(_ connection: Connection, manifest: ArchiveManifest?, databaseIsOlder: Bool) throws -> DrillCheck {
        var check = try migrations(connection)
        // What the archive recorded as applied must be here: a missing row makes the application
        // run that migration again, on tables it already made.
        guard let recorded = manifest?.schemaMigrations, !recorded.isEmpty else { return check }
        let exists = try connection.query("SELECT to_regclass('public.schema_migrations') IS NOT NULL").scalar == "t"
        let live = Set(exists ? try connection.query("SELECT version::text FROM public.schema_migrations").rows.compactMap { $0[0] } : [])
        let lacking = recorded.filter { !live.contains($0) }
        guard !lacking.isEmpty else { return check }
        let list = lacking.prefix(5).joined(separator: ", ") + (lacking.count > 5 ? ", ..." : "")
        if databaseIsOlder {
            check.detail += "; the archive recorded \(Plural.of(lacking.count, "migration")) this database has not applied (\(list)): expected, the database is older than the archive"
        } else {
            check.ok = false
            check.checked = true
            check.detail = "the archive recorded \(Plural.of(lacking.count, "migration")) as applied that the database lacks in public.schema_migrations: \(list) (the application would apply them again); " + check.detail
        }
        return check
    }

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

