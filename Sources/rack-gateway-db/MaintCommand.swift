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
    static func run(_ global: GlobalOptions, _ context: RunContext, _ body: (Maintenance) throws -> Void) throws {
        try body(try Maintenance(connections: try global.connections(context), logger: context.logger))
    }

    static func duration(_ text: String, _ name: String) throws -> Double {
        guard let seconds = MaintenanceDuration.parse(text) else { throw ValidationError("\(name) takes a duration such as 30d, 12h, 90m or 45s") }
        return seconds
    }
}
