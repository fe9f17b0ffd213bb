import ArgumentParser
import Foundation
import RGWPostgres
import RackGatewayDB

extension MaintCommand {
    struct SlowQueries: ToolCommand {
        var outputOptions: OutputOptions { global.output }
        static let configuration = CommandConfiguration(commandName: "slow-queries", abstract: "Active queries running longer than a threshold, longest first; --cancel PID cancels one.")
        @OptionGroup var global: GlobalOptions
        @Option(name: .customLong("min-duration"), help: "Threshold, e.g. 1s or 5m.") var minDuration = "1s"
        @Option(help: "Cancel this backend's query (pg_cancel_backend).") var cancel: Int?
        func validate() throws { _ = try MaintCommand.duration(minDuration, "--min-duration") }

        func run(_ context: RunContext) throws {
            try MaintCommand.run(global, context) { maintenance in
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
}
