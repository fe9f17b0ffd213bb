import ArgumentParser
import Postgres
import RackGatewayDB

struct CheckCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Check connectivity, TLS, server version, pg_dump, migrations and backup privileges.",
        discussion: "Exits 1 when any check fails; warnings alone exit 0.")

    @OptionGroup var global: GlobalOptions
    @OptionGroup var migrationOptions: MigrationOptions

    func run() throws {
        try Reporting.run {
            let settings = try global.connectionSettings()
            let report = HealthCheck(settings: settings, migrations: try migrationOptions.load(),
                                     logger: global.makeLogger()).run()
            if global.json {
                try Reporting.printJSON(report)
            } else {
                print("Checking \(report.target)")
                for item in report.items {
                    print("  \(item.status.rawValue.uppercased().padding(toLength: 4, withPad: " ", startingAt: 0))  \(item.name): \(item.detail)")
                }
            }
            if !report.ok { throw ExitCode(1) }
        }
    }
}
