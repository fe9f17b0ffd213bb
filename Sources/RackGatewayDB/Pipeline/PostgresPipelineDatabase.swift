import Foundation
import Logging
import RGWPostgres

/// How the restored database will be migrated, decided in preflight from the archive's recorded
/// `schema_migrations` versions, before anything changes.
enum MigrationPlan: Sendable {
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

/// The pipeline's database side on a real server: `RestoreRunner` loads, `Migrator` or the
/// application's command migrates, one transaction renames.
struct PostgresPipelineDatabase: PipelineDatabase {
    let live: RestoreTarget
    /// The archive preflight opened and checked: every load reads it (never opened again by name).
    let reader: ArchiveReader
    let check: ArchiveVerifier.Report
    let migration: MigrationPlan
    let options: PipelineOptions
    let logger: Logger
    /// A new progress for each load (its elapsed time from the load's start), shown while it runs.
    let progress: @Sendable () -> RestoreProgress
    let context: RunContext

    func target(_ database: String) throws -> RestoreTarget {
        database == live.database ? live : try RestoreTarget(settings: live.settings.replacingDatabase(with: database))
    }

    func terminateSessions(of database: String) throws -> String {
        let admin = try live.maintenanceConnection()
        let rows = try admin.query("""
            SELECT pid::text, usename, coalesce(application_name, ''), coalesce(host(client_addr), 'local'),
                   pg_catalog.pg_terminate_backend(pid)::text
            FROM pg_catalog.pg_stat_activity WHERE datname = $1 AND pid <> pg_catalog.pg_backend_pid()
            """, [database]).rows
        if rows.isEmpty { return "no other sessions on \(database)" }
        Thread.sleep(forTimeInterval: 0.2)
        return "terminated \(Plural.of(rows.count, "session")) on \(database): " + rows.map { "pid \($0[0] ?? "?") \($0[1] ?? "?") \($0[2] ?? "") from \($0[3] ?? "?")" }.joined(separator: "; ")
    }

    func restoreOptions() -> RestoreOptions {
        var restoreOptions = RestoreOptions(jobs: options.jobs)
        restoreOptions.verify = true
        restoreOptions.environment = options.environment
        return restoreOptions
    }

    /// A failed load's own error: the pipeline says what became of the database it loaded (dropped,
    /// or the safety backup to restore), not a plain restore's state and advice to clear it.
    func loading<R>(_ runner: RestoreRunner, _ body: () throws -> R) throws -> R {
        do {
            return try body()
        } catch let error as ToolError where runner.lifecycle.state == .failed {
            throw error.cause ?? error
        }
    }

    func load(into name: String) throws -> String {
        var restoreOptions = restoreOptions()
        restoreOptions.requireNewDatabase = true
        restoreOptions.offersCreateMissingRoles = false
        let runner = RestoreRunner(target: try target(name), options: restoreOptions, logger: logger, progress: progress(), context: context)
        let restored = try loading(runner) { try runner.run(reader: reader, preflight: check) }
        return "restored into \(name) in \(String(format: "%.1f", restored.durationSeconds)) s; fingerprints of \(restored.tables ?? 0) tables match"
    }

    func safetyBackup() throws -> (file: String, detail: String) {
        var backupOptions = BackupOptions(store: LocalStore(directory: options.safetyDirectory), jobs: options.jobs, compressors: max(1, options.jobs))
        backupOptions.prefix = ArchiveName.safetyBackupPrefix(database: live.database)
        backupOptions.environment = options.environment
        let backup = try BackupRunner(settings: live.settings, options: backupOptions, logger: logger, context: context).run()
        return (backup.file, "\(backup.file) (\(backup.rows) rows, sha256 \(backup.sha256.prefix(16))...)")
    }

    func loadInPlace(dropped: @escaping @Sendable () -> Void) throws -> String {
        var restoreOptions = restoreOptions()
        restoreOptions.clean = true
        restoreOptions.lockTarget = false  // the pipeline holds the live database's lock
        let runner = RestoreRunner(target: live, options: restoreOptions, logger: logger, progress: progress(), context: context)
        runner.confirm = { _ in true }  // confirmed for the whole pipeline
        runner.lifecycle.observe { state in
            // From the moment DROP DATABASE is sent: a run stopped while the server drops and
            // creates it must not bring the service back up on a database that may be gone.
            if state == .creating { dropped() }
        }
        let restored = try loading(runner) { try runner.run(reader: reader, preflight: check) }
        return "\(live.database) dropped, recreated and restored in \(String(format: "%.1f", restored.durationSeconds)) s; fingerprints of \(restored.tables ?? 0) tables match"
    }

    func migrate(_ database: String) throws -> String {
        let target = try target(database)
        do {
            return try migrate(target)
        } catch {
            // In place, the live database now holds the restored copy, not migrated: marked FAILED
            // (`check` fails on it) until the safety backup is restored or the restore runs again,
            // so that it never looks finished. In the swap it is the new copy, dropped next.
            if options.inPlace, let connection = try? target.settings.open(.restore) {
                RestoreTarget.markFailed(connection, file: reader.archive.path, reason: "the migrate step failed: \(ToolError(reporting: error).message)",
                                         at: context.clock.now())
            }
            throw error
        }
    }

    private func migrate(_ target: RestoreTarget) throws -> String {
        switch migration {
        case .skip:
            return "skipped (--skip-migrate): the restored database was not migrated"
        case .command(let command):
            let outcome = command.run(target: target.settings, base: options.environment, logger: logger)
            guard outcome.ok else {
                throw ToolError(.failed, "the application's migrate command failed on \(target.database): \(outcome.summary)",
                                fix: options.inPlace
                                    ? "Fix the command or the migration, then restore again; \(target.database) holds the restored copy, not migrated, and is marked FAILED until then (or until the safety backup is restored)."
                                    : "Fix the command or the migration, then restore again; the live database was not swapped.")
            }
            return "\(command.command) \(outcome.summary)"
        case .set(let set):
            let migrator = try Migrator(connections: ConnectionFactory(settings: target.settings), purpose: .restore, migrations: set, logger: logger)
            let outcome = try migrator.migrate()
            return outcome.applied.isEmpty ? "nothing pending" : "applied \(outcome.applied.joined(separator: ", "))"
        }
    }

    /// - Important: after the COMMIT the live name holds the restored copy; the previous database
    ///   is kept under `previous` for the way back.
    func swap(live: String, restored: String, previous: String) throws {
        let admin = try self.live.maintenanceConnection()
        try admin.execute("BEGIN")
        do {
            try admin.execute("ALTER DATABASE \(SQL.identifier(live)) RENAME TO \(SQL.identifier(previous))")
            try admin.execute("ALTER DATABASE \(SQL.identifier(restored)) RENAME TO \(SQL.identifier(live))")
            try admin.execute("COMMIT")
        } catch {
            _ = try? admin.execute("ROLLBACK")
            throw error
        }
    }

    func drop(_ database: String) -> Bool {
        guard database != live.database, let target = try? target(database), let admin = try? target.maintenanceConnection() else { return false }
        return (try? target.drop(admin)) != nil
    }
}
