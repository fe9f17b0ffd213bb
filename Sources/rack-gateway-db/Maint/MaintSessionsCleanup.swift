import ArgumentParser
import Foundation
import RGWPostgres
import RackGatewayDB

extension MaintCommand {
    struct SessionsCleanup: ToolCommand {
        var outputOptions: OutputOptions { global.output }
        static let configuration = CommandConfiguration(commandName: "sessions-cleanup",
                                                        abstract: "Delete user sessions created before a cutoff, in small batches.")
        @OptionGroup var global: GlobalOptions
        @Option(name: .customLong("older-than"), help: "Age cutoff, e.g. 30d.") var olderThan = "30d"
        @Flag(name: .customLong("dry-run"), help: "Count; delete nothing.") var dryRun = false
        func validate() throws { _ = try MaintCommand.duration(olderThan, "--older-than") }

        func run(_ context: RunContext) throws {
            try MaintCommand.run(global, context) { maintenance in
                let report = try maintenance.sessionsCleanup(olderThan: try MaintCommand.duration(olderThan, "--older-than"), dryRun: dryRun)
                if global.json { return try Reporting.printJSON(report) }
                print(dryRun ? "Would delete \(Plural.of(report.matched, "session")) created before \(report.cutoff) (dry run)."
                             : "Deleted \(Plural.of(report.deleted, "session")) created before \(report.cutoff) in \(Plural.of(report.batches, "batch", plural: "batches")).")
            }
        }
    }
}
