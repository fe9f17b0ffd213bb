import ArgumentParser
import RackGatewayDB

struct MigrateCommand: ToolCommand {
    var outputOptions: OutputOptions { global.output }

    static let configuration = CommandConfiguration(
        commandName: "migrate",
        abstract: "Apply pending migrations in version order, each in its own transaction.",
        discussion: "Concurrent runs wait for each other (advisory lock); a second run applies nothing.")

    @OptionGroup var global: GlobalOptions
    @OptionGroup var migrationOptions: MigrationOptions

    @Flag(help: "List the migrations that would be applied; change nothing.")
    var dryRun = false

    func run(_ context: RunContext) throws {
        do {
            let migrations = try migrationOptions.load()
            let migrator = try Migrator(connections: try global.connections(context), purpose: .migrate, migrations: migrations, logger: context.logger)
            let outcome = try migrator.migrate(dryRun: dryRun)
            if global.json { return try Reporting.printJSON(outcome) }
            if dryRun {
                if outcome.status.pending.isEmpty { print("Nothing to apply: \(migrator.database) is up to date.") }
                for pending in outcome.status.pending { print("would apply \(pending.file)") }
            } else if outcome.applied.isEmpty {
                print("Nothing to apply: \(migrator.database) is up to date (\(Plural.of(outcome.status.applied.count, "migration"))).")
            } else {
                for file in outcome.applied { print("applied \(file)") }
                print("\(Plural.of(outcome.applied.count, "migration")) applied to \(migrator.database).")
            }
        }
    }
}
