import ArgumentParser
import Foundation
import RGWPostgres
import RackGatewayDB

extension MaintCommand {
    struct AuditVolume: ToolCommand {
        var outputOptions: OutputOptions { global.output }
        static let configuration = CommandConfiguration(commandName: "audit-volume", abstract: "Audit events per day, newest first, with the total and the table's size.")
        @OptionGroup var global: GlobalOptions
        @Option(help: "Days to show (UTC days, today included).") var days = 10
        func validate() throws { guard days >= 1 else { throw ValidationError("--days must be at least 1") } }

        func run(_ context: RunContext) throws {
            try MaintCommand.run(global, context) { maintenance in
                let report = try maintenance.auditVolume(days: days)
                if global.json { return try Reporting.printJSON(report) }
                for day in report.days { print("\(day.day)  \(day.events)") }
                print("total \(Plural.of(report.total, "event")) in \(Plural.of(days, "day")); audit.audit_event is \(ProgressDisplay.bytes(report.tableBytes))")
            }
        }
    }
}
