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
            try refuseAnotherCommandsOption()
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

    /// Options that belong to a neighbouring command, with what this one has instead. The parser
    /// would say "Unknown option" at best; followed by its value it takes the value for the archive
    /// path and blames something else (`drill --latest --target-url URL`).
    static let anotherCommandsOptions: [String: [String: String]] = [
        "drill": ["--target-url": "drill has no --target-url: it restores into a scratch database it creates on --scratch-url's server (default: the configured database's), checks it and drops it; --target-url is restore's",
                  "--clean": "drill has no --clean: its scratch database is always new, and dropped afterwards unless --keep"],
        "restore": ["--scratch-url": "restore has no --scratch-url: it restores into --target-url (default: the configured database); --scratch-url is drill's"],
    ]

    static func refuseAnotherCommandsOption(_ arguments: [String] = Array(CommandLine.arguments.dropFirst())) throws {
        guard let command = arguments.first, let options = anotherCommandsOptions[command] else { return }
        for word in arguments.dropFirst().prefix(while: { $0 != "--" }) {
            let name = word.split(separator: "=", maxSplits: 1).first.map(String.init) ?? word
            if let hint = options[name] { throw ValidationError(hint) }
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
