import ArgumentParser
import RackGatewayDB

@main
struct RackGatewayDBCommand: ParsableCommand {
    /// Every command: buffers of 256 KiB and more are mapped on their own and unmapped when freed.
    /// Without it glibc raises its mmap threshold after the first multi-megabyte buffer is freed, and
    /// later ones linger in its arenas: a drill of the 2 GB sample database peaked at 69.2 MB of RSS,
    /// 53.2 MB with it (measured with MALLOC_MMAP_THRESHOLD_=262144), at the same speed.
    static func main() {
        Memory.mapLargeAllocations(from: 256 * 1024)
        main(nil)
    }

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
            ReportCommand.self,
            RestoreCommand.self,
            DrillCommand.self,
            MaintCommand.self,
        ]
    )
}
