import ArgumentParser

@main
struct RackGatewayDBCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rack-gateway-db",
        abstract: "Back up, restore, verify, migrate and maintain the Rack Gateway PostgreSQL database.",
        discussion: """
            CONNECTION: --database-url, else RGW_DATABASE_URL, else DATABASE_URL, else the libpq PG* \
            variables (PGHOST, PGPORT, PGUSER, PGPASSWORD, PGDATABASE, PGSSLMODE, ...).

            EXIT STATUS:
              0   success
              1   failed
              2   verification found a mismatch or corruption
              3   another run holds the lock
              64  usage error
            """,
        version: ToolVersion.current,
        subcommands: [
            MigrateCommand.self,
            StatusCommand.self,
            ResetDBCommand.self,
            CheckCommand.self,
            BackupCommand.self,
            VerifyCommand.self,
            RekeyCommand.self,
            ListCommand.self,
            PruneCommand.self,
            RestoreCommand.self,
            DrillCommand.self,
            MaintCommand.self,
        ]
    )
}
