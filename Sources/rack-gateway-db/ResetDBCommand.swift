import ArgumentParser
import RackGatewayDB

struct ResetDBCommand: ToolCommand {
    var outputOptions: OutputOptions { global.output }

    static let configuration = CommandConfiguration(
        commandName: "reset-db",
        abstract: "Drop and recreate everything in the database, then migrate (development only).",
        discussion: """
            Refuses unless RESET_RACK_GATEWAY_DATABASE=DELETE_ALL_DATA exactly, and the database's \
            rgw_internal_metadata.environment is 'development' (or DISABLE_DATABASE_ENVIRONMENT_CHECK=1). \
            A database without a metadata row also needs DEV_MODE=true. Roles are cluster-wide and are kept.
            """)

    @OptionGroup var global: GlobalOptions
    @OptionGroup var migrationOptions: MigrationOptions

    func run(_ context: RunContext) throws {
        do {
            let migrations = try migrationOptions.load()
            let guards = ResetGuards(environment: global.environment)
            // The confirmation variable is checked before connecting: no guard, no connection.
            if let refusal = guards.refusal(metadataEnvironment: "development") { throw refusal }
            let report = try DatabaseReset(connections: try global.connections(context), migrations: migrations, guards: guards,
                                           logger: context.logger).run()
            if global.json { return try Reporting.printJSON(report) }
            print("Reset \(report.database): dropped schemas \(report.droppedSchemas.joined(separator: ", ")); applied \(Plural.of(report.appliedMigrations.count, "migration")); environment '\(report.environment)'.")
        }
    }
}
