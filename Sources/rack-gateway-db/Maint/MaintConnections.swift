import ArgumentParser
import Foundation
import RGWPostgres
import RackGatewayDB

extension MaintCommand {
    struct Connections: ToolCommand {
        var outputOptions: OutputOptions { global.output }
        static let configuration = CommandConfiguration(commandName: "connections", abstract: "Sessions on the database, against max_connections and DB_MAX_OPEN_CONNS.")
        @OptionGroup var global: GlobalOptions

        func run(_ context: RunContext) throws {
            let cap = Int(ProcessInfo.processInfo.environment["DB_MAX_OPEN_CONNS"] ?? "") ?? 25
            try MaintCommand.run(global, context) { maintenance in
                let report = try maintenance.connections(dbMaxOpenConns: cap)
                if global.json { return try Reporting.printJSON(report) }
                print("\(Plural.of(report.count, "session")) on \(report.database); \(report.serverTotal) of max_connections \(report.maxConnections) on the server; DB_MAX_OPEN_CONNS \(report.dbMaxOpenConns)")
                for session in report.sessions {
                    print("  pid \(session.pid)  \(session.user)  \(session.application.isEmpty ? "-" : session.application)  \(session.client)  \(session.state.isEmpty ? "-" : session.state) since \(session.since)")
                }
            }
        }
    }
}
