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
        do {
            var command = try parseAsRoot(nil)
            try command.run()
        } catch {
            // A command line the parser refused (exit 64) under --json: the error document too, as
            // for every other failure (a run's own failures were reported by `Reporting.run`).
            if !(error is ExitCode), exitCode(for: error) == .validationFailure,
               CommandLine.arguments.prefix { $0 != "--" }.contains("--json") {
                let refused = ToolError(.usage, message(for: error),
                                        fix: "See the command's options with rack-gateway-db help COMMAND (or COMMAND --help).")
                try? print(Reporting.jsonText(Reporting.ErrorDocument(refused)))
            }
            exit(withError: error)
        }
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
              4   backup or copy: a copy did not verify at its destination (copy_failed)
              64  usage error
            """,
        version: ToolVersion.current,
        subcommands: [
            MigrateCommand.self,
            StatusCommand.self,
            ResetDBCommand.self,
            CheckCommand.self,
            BackupCommand.self,
            VerifyCommand.self, InspectCommand.self, ExtractCommand.self,
            RekeyCommand.self,
            CopyCommand.self,
            ListCommand.self,
            PruneCommand.self,
            ReportCommand.self,
            RestoreCommand.self,
            DrillCommand.self,
            DiffCommand.self,
            MaintCommand.self,
        ]
    )
}
