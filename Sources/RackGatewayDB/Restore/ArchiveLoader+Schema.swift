import Foundation
import RGWPostgres

/// The schema phases: pre-data in order on one connection, post-data entries in parallel where
/// their phase allows.
extension ArchiveLoader {
    func runPreData(_ connection: Connection, settingFilter filter: SessionSettingFilter) throws {
        let statements = try DumpScript.statements(try text(of: .preData), section: "pre-data")
        progress.begin(phase: "pre-data", steps: statements.count)
        var skipped: Set<String> = []
        for (statement, line) in statements {
            guard try filter.keep(statement, section: "pre-data", line: line) else {
                skipped.insert(DumpScript.settingName(statement) ?? statement)
                continue
            }
            do {
                try connection.execute(statement)
            } catch let error as PostgresError {
                throw ToolError(.failed, "pre-data statement at line \(line) failed: \(error.description)\n  \(statement.prefix(200))",
                                fix: Self.fixForSchemaError(error))
            }
            progress.stepDone()
        }
        if !skipped.isEmpty {
            logger.notice("skipped settings this server does not have (harmless: they only switch a limit off)",
                          metadata: ["settings": "\(skipped.sorted().joined(separator: ", "))", "server": "\(connection.serverMajorVersion)"])
        }
    }

    static func fixForSchemaError(_ error: PostgresError) -> String? {
        switch error.sqlState {
        case "42704"?: "A role or type the archive needs is missing on the target server; see the message, create it, and restore again (--clean)."
        case "42501"?: "The restoring role lacks a privilege; restore as the owner of the objects or a superuser."
        default: nil
        }
    }

    /// A post-data connection remembers which settings it runs with, to send them only on change.
    final class SchemaWorker {
        let connection: Connection
        var settings: [String] = []
        init(connection: Connection) { self.connection = connection }

        func run(_ entry: DumpScript.Entry) throws {
            if entry.settings != settings {
                try connection.execute(entry.settings.joined(separator: "; "))
                settings = entry.settings
            }
            for (statement, line) in entry.statements {
                do {
                    try connection.execute(statement)
                } catch let error as PostgresError {
                    throw EntryFailure(entry: entry, line: line, error: error)
                }
            }
        }
    }

    /// `--maintenance-work-mem` on a connection that builds indexes.
    func setMaintenanceWorkMem(_ connection: Connection) throws {
        if let maintenanceWorkMem { try connection.execute("SET maintenance_work_mem = \(SQL.literal(maintenanceWorkMem))") }
    }

    /// Run `entry` on `worker` beside other workers: a deadlock (the server cancelled this side;
    /// concurrent DDL on related tables can deadlock) puts it in `deadlocked`, to run again alone.
    func runBeside(_ entry: DumpScript.Entry, on worker: SchemaWorker, deadlocked: LockedList<DumpScript.Entry>) throws {
        do {
            try worker.run(entry)
        } catch let failure as EntryFailure where failure.error.sqlState == "40P01" {
            deadlocked.add(entry)
        } catch let failure as EntryFailure {
            throw failure.toolError
        }
        progress.stepDone()
    }

    /// The entries a deadlock cancelled, one at a time on `worker`.
    func runAgainAlone(_ entries: [DumpScript.Entry], on worker: SchemaWorker) throws {
        for entry in entries {
            logger.info("running again after a deadlock", metadata: ["entry": "\(entry.label)"])
            do { try worker.run(entry) } catch let failure as EntryFailure { throw failure.toolError }
        }
    }

    struct EntryFailure: Error {
        var entry: DumpScript.Entry
        var line: Int
        var error: PostgresError
        var toolError: ToolError {
            ToolError(.failed, "post-data \(entry.label) (line \(line)) failed: \(error.description)",
                      fix: ArchiveLoader.fixForSchemaError(error))
        }
    }

    func runPostData(_ entries: [DumpScript.Entry], parallel: Bool, main: Connection) throws {
        progress.begin(phase: "post-data", steps: entries.count)
        let serial = SchemaWorker(connection: main)
        guard parallel, jobs > 1, entries.count > 1 else {
            for entry in entries {
                do { try serial.run(entry) } catch let failure as EntryFailure { throw failure.toolError }
                progress.stepDone()
            }
            return
        }
        let deadlocked = LockedList<DumpScript.Entry>()
        try forEachInParallel(entries, workers: jobs, name: "restore post-data", connect: { [self] in
            let connection = try settings.open(.restoreWorker("post-data"))
            try setMaintenanceWorkMem(connection)
            return SchemaWorker(connection: connection)
        }) { [self] worker, entry in
            try runBeside(entry, on: worker, deadlocked: deadlocked)
        }
        try runAgainAlone(deadlocked.items, on: serial)
    }
}
