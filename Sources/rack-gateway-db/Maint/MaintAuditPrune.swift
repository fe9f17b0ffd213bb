import ArgumentParser
import Foundation
import RGWPostgres
import RackGatewayDB

extension MaintCommand {
    struct AuditPrune: ToolCommand {
        var outputOptions: OutputOptions { global.output }
        static let configuration = CommandConfiguration(
            commandName: "audit-prune",
            abstract: "Remove the oldest audit events (a prefix of the chain) older than a cutoff; the prune is recorded.",
            discussion: "Refuses a cutoff younger than AUDIT_ANCHOR_RETENTION_DAYS (default 400) days. Needs --yes or an interactive confirmation naming the count. Runs as the table's owner: the triggers that fire on DELETE (read from the catalog) are disabled and re-enabled inside one transaction. The prune is recorded in audit.audit_prune_log where the schema has it, else in rack_gateway_db.audit_prune_log (created on first use), which drills read.")
        @OptionGroup var global: GlobalOptions
        @Option(name: .customLong("older-than"), help: "Age cutoff, e.g. 400d.") var olderThan = "400d"
        @Flag(name: .customLong("dry-run"), help: "Count; prune nothing.") var dryRun = false
        @Flag(help: "Do not ask for confirmation.") var yes = false
        func validate() throws {
            _ = try MaintCommand.duration(olderThan, "--older-than")
            if dryRun && yes { throw ValidationError("--yes answers the prune's question; --dry-run asks none") }
        }

        func run(_ context: RunContext) throws {
            let minimum = Int(ProcessInfo.processInfo.environment["AUDIT_ANCHOR_RETENTION_DAYS"] ?? "") ?? 400
            try MaintCommand.run(global, context) { maintenance in
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
}
