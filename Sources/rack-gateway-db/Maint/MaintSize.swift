import ArgumentParser
import Foundation
import RGWPostgres
import RackGatewayDB

extension MaintCommand {
    struct Size: ToolCommand {
        var outputOptions: OutputOptions { global.output }
        static let configuration = CommandConfiguration(commandName: "size", abstract: "Database size and per-table total size (table, indexes, TOAST), largest first.")
        @OptionGroup var global: GlobalOptions

        func run(_ context: RunContext) throws {
            try MaintCommand.run(global, context) { maintenance in
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
