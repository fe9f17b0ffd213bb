import ArgumentParser
import Foundation
import RGWPostgres
import RackGatewayDB

extension MaintCommand {
    struct Vacuum: ToolCommand {
        var outputOptions: OutputOptions { global.output }
        static let configuration = CommandConfiguration(commandName: "vacuum", abstract: "VACUUM the user tables (or one), one at a time.")
        @OptionGroup var global: GlobalOptions
        @Flag(help: "Also ANALYZE.") var analyze = false
        @Option(help: "Only this table (schema.table).") var table: String?
        @Flag(help: "VACUUM FULL: rewrites each table under an exclusive lock (needs --yes).") var full = false
        @Flag(help: "Confirm --full.") var yes = false

        func run(_ context: RunContext) throws {
            try MaintCommand.run(global, context) { maintenance in
                if full {
                    TerminalOutput.shared.writeLine("rack-gateway-db: warning: VACUUM FULL locks each table exclusively while it rewrites it; the gateway cannot use a table meanwhile.")
                    guard Confirmation.ask("Run VACUUM FULL?", yes: yes) else {
                        throw ToolError(.notConfirmed, "VACUUM FULL not confirmed; nothing was done", fix: "Pass --yes to run it.")
                    }
                }
                let done = try maintenance.vacuum(table: table, analyze: analyze, full: full) { table, index, count in
                    maintenance.logger.info("vacuum", metadata: ["table": "\(table)", "progress": "\(index)/\(count)"])
                }
                if global.json { return try Reporting.printJSON(done) }
                for entry in done { print("vacuumed \(entry.table) in \(String(format: "%.2f", entry.seconds)) s") }
            }
        }
    }
}
