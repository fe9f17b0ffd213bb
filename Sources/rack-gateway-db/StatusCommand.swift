import ArgumentParser
import RackGatewayDB

struct StatusCommand: ToolCommand {
    var outputOptions: OutputOptions { global.output }

    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Show applied and pending migrations, and applied versions that have no file.")

    @OptionGroup var global: GlobalOptions
    @OptionGroup var migrationOptions: MigrationOptions

    func run(_ context: RunContext) throws {
        do {
            let migrations = try migrationOptions.load()
            let migrator = try Migrator(connections: try global.connections(context), purpose: .status, migrations: migrations, logger: context.logger)
            let status = try migrator.status()
            if global.json { return try Reporting.printJSON(status) }
            print("Database \(migrator.database), migrations from \(status.source)")
            for applied in status.applied {
                print("  applied  \(applied.file ?? applied.version)  \(applied.appliedAt)")
            }
            if let advice = status.advice, status.isForeign {
                print("Foreign migration set: \(advice).")
                print(MigrationSet.foreignFix)
                return
            }
            for pending in status.pending { print("  pending  \(pending.file)") }
            for version in status.missingFiles { print("  no file  \(version) (applied, newer than this set's newest: migrated by a newer release)") }
            print("\(status.applied.count) applied, \(status.pending.count) pending, \(status.missingFiles.count) without a file.")
        }
    }
}
