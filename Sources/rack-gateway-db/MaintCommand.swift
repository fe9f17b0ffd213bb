import ArgumentParser
import Foundation
import RGWPostgres
import RackGatewayDB

struct MaintCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "maint",
        abstract: "Routine maintenance: sessions, audit retention, vacuum, connections, slow queries, size.",
        subcommands: [SessionsCleanup.self, AuditVolume.self, AuditPrune.self, Vacuum.self, Connections.self, SlowQueries.self, Size.self])

    /// Connect with the global options and run `body` with the maintenance helper.
    static func run(_ global: GlobalOptions, _ body: (Maintenance) throws -> Void) throws {
        Interruption.install()
        try Reporting.run {
            try body(try Maintenance(connections: try global.connections(), logger: global.makeLogger()))
        }
    }

    static func duration(_ text: String, _ name: String) throws -> Double {
        guard let seconds = MaintenanceDuration.parse(text) else { throw ValidationError("\(name) takes a duration such as 30d, 12h, 90m or 45s") }
        return seconds
    }

    struct SessionsCleanup: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "sessions-cleanup",
                                                        abstract: "Delete user sessions created before a cutoff, in small batches.")
        @OptionGroup var global: GlobalOptions
        @Option(name: .customLong("older-than"), help: "Age cutoff, e.g. 30d.") var olderThan = "30d"
        @Flag(name: .customLong("dry-run"), help: "Count; delete nothing.") var dryRun = false
        func validate() throws { _ = try MaintCommand.duration(olderThan, "--older-than") }

        func run() throws {
            try MaintCommand.run(global) { maintenance in
                let report = try maintenance.sessionsCleanup(olderThan: try MaintCommand.duration(olderThan, "--older-than"), dryRun: dryRun)
                if global.json { return try Reporting.printJSON(report) }
                print(dryRun ? "Would delete \(report.matched) sessions created before \(report.cutoff) (dry run)."
                             : "Deleted \(report.deleted) sessions created before \(report.cutoff) in \(report.batches) batch(es).")
            }
        }
    }

    struct AuditVolume: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "audit-volume", abstract: "Audit events per day, newest first, with the total and the table's size.")
        @OptionGroup var global: GlobalOptions
        @Option(help: "Days to show (UTC days, today included).") var days = 10
        func validate() throws { guard days >= 1 else { throw ValidationError("--days must be at least 1") } }

        func run() throws {
            try MaintCommand.run(global) { maintenance in
                let report = try maintenance.auditVolume(days: days)
                if global.json { return try Reporting.printJSON(report) }
                for day in report.days { print("\(day.day)  \(day.events)") }
                print("total \(report.total) events in \(days) day(s); audit.audit_event is \(ProgressDisplay.bytes(report.tableBytes))")
            }
        }
    }

    struct AuditPrune: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "audit-prune",
            abstract: "Remove the oldest audit events (a prefix of the chain) older than a cutoff; the prune is recorded.",
            discussion: "Refuses a cutoff younger than AUDIT_ANCHOR_RETENTION_DAYS (default 400) days. Needs --yes or an interactive confirmation naming the count. Runs as the table's owner: the triggers that fire on DELETE (read from the catalog) are disabled and re-enabled inside one transaction. The prune is recorded in audit.audit_prune_log where the schema has it, else in rack_gateway_db.audit_prune_log (created on first use), which drills read.")
        @OptionGroup var global: GlobalOptions
        @Option(name: .customLong("older-than"), help: "Age cutoff, e.g. 400d.") var olderThan = "400d"
        @Flag(name: .customLong("dry-run"), help: "Count; prune nothing.") var dryRun = false
        @Flag(help: "Do not ask for confirmation.") var yes = false
        func validate() throws { _ = try MaintCommand.duration(olderThan, "--older-than") }

        func run() throws {
            let minimum = Int(ProcessInfo.processInfo.environment["AUDIT_ANCHOR_RETENTION_DAYS"] ?? "") ?? 400
            try MaintCommand.run(global) { maintenance in
                let report = try maintenance.auditPrune(olderThan: try MaintCommand.duration(olderThan, "--older-than"), minimumDays: minimum,
                                                        dryRun: dryRun) { count in
                    Confirmation.ask("Delete \(count) audit events older than \(olderThan) from \(maintenance.connection.databaseName)?", yes: yes)
                }
                if global.json { return try Reporting.printJSON(report) }
                guard report.count > 0 else { return print("Nothing to prune: no audit event before \(report.cutoff) (the newest event is always kept).") }
                let range = "chain_index \(report.firstChainIndex ?? 0)...\(report.lastChainIndex ?? 0)"
                print(report.pruned ? "Pruned \(report.count) audit events (\(range)); the chain now starts at \(report.newChainStart ?? 0), recorded in \(report.recordedIn ?? "?"); triggers \(report.triggers.joined(separator: ", ")) were off for the delete only."
                                    : "Would prune \(report.count) audit events (\(range)) older than \(report.cutoff) (dry run).")
            }
        }
    }

    struct Vacuum: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "vacuum", abstract: "VACUUM the user tables (or one), one at a time.")
        @OptionGroup var global: GlobalOptions
        @Flag(help: "Also ANALYZE.") var analyze = false
        @Option(help: "Only this table (schema.table).") var table: String?
        @Flag(help: "VACUUM FULL: rewrites each table under an exclusive lock (needs --yes).") var full = false
        @Flag(help: "Confirm --full.") var yes = false

        func run() throws {
            if full {
                FileHandle.standardError.write(Data("rack-gateway-db: warning: VACUUM FULL locks each table exclusively while it rewrites it; the gateway cannot use a table meanwhile.\n".utf8))
                guard Confirmation.ask("Run VACUUM FULL?", yes: yes) else {
                    Reporting.printError("VACUUM FULL not confirmed; nothing was done. Pass --yes to run it.")
                    throw ExitCode(1)
                }
            }
            try MaintCommand.run(global) { maintenance in
                let done = try maintenance.vacuum(table: table, analyze: analyze, full: full) { table, index, count in
                    maintenance.logger.info("vacuum", metadata: ["table": "\(table)", "progress": "\(index)/\(count)"])
                }
                if global.json { return try Reporting.printJSON(done) }
                for entry in done { print("vacuumed \(entry.table) in \(String(format: "%.2f", entry.seconds)) s") }
            }
        }
    }

    struct Connections: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "connections", abstract: "Sessions on the database, against max_connections and DB_MAX_OPEN_CONNS.")
        @OptionGroup var global: GlobalOptions

        func run() throws {
            let cap = Int(ProcessInfo.processInfo.environment["DB_MAX_OPEN_CONNS"] ?? "") ?? 25
            try MaintCommand.run(global) { maintenance in
                let report = try maintenance.connections(dbMaxOpenConns: cap)
                if global.json { return try Reporting.printJSON(report) }
                print("\(report.count) session(s) on \(report.database); \(report.serverTotal) of max_connections \(report.maxConnections) on the server; DB_MAX_OPEN_CONNS \(report.dbMaxOpenConns)")
                for session in report.sessions {
                    print("  pid \(session.pid)  \(session.user)  \(session.application.isEmpty ? "-" : session.application)  \(session.client)  \(session.state.isEmpty ? "-" : session.state) since \(session.since)")
                }
            }
        }
    }

    struct SlowQueries: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "slow-queries", abstract: "Active queries running longer than a threshold, longest first; --cancel PID cancels one.")
        @OptionGroup var global: GlobalOptions
        @Option(name: .customLong("min-duration"), help: "Threshold, e.g. 1s or 5m.") var minDuration = "1s"
        @Option(help: "Cancel this backend's query (pg_cancel_backend).") var cancel: Int?
        func validate() throws { _ = try MaintCommand.duration(minDuration, "--min-duration") }

        func run() throws {
            try MaintCommand.run(global) { maintenance in
                if let cancel {
                    guard try maintenance.cancel(pid: cancel) else {
                        throw ToolError(.failed, "could not cancel pid \(cancel): no such backend, or not allowed", fix: "Check the pid with maint slow-queries; cancelling another role's query needs pg_signal_backend.")
                    }
                    return print("Cancelled the query of pid \(cancel).")
                }
                let queries = try maintenance.slowQueries(minSeconds: try MaintCommand.duration(minDuration, "--min-duration"))
                if global.json { return try Reporting.printJSON(queries) }
                if queries.isEmpty { return print("No query has run longer than \(minDuration).") }
                for query in queries {
                    print("pid \(query.pid)  \(String(format: "%.1f", query.seconds)) s  \(query.state)  \(query.user)  \(query.query)")
                }
            }
        }
    }

    struct Size: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "size", abstract: "Database size and per-table total size (table, indexes, TOAST), largest first.")
        @OptionGroup var global: GlobalOptions

        func run() throws {
            try MaintCommand.run(global) { maintenance in
                let report = try maintenance.size()
                if global.json { return try Reporting.printJSON(report) }
                print("\(report.database): \(ProgressDisplay.bytes(report.databaseBytes))")
                for table in report.tables {
                    print("  \(table.table)  total \(ProgressDisplay.bytes(table.totalBytes))  table \(ProgressDisplay.bytes(table.tableBytes))  indexes \(ProgressDisplay.bytes(table.indexBytes))  toast \(ProgressDisplay.bytes(table.toastBytes))")
                }
            }
        }
    }
}
