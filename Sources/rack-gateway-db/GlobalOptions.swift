import ArgumentParser
import Foundation
import Logging
import RGWPostgres
import RackGatewayDB

/// How to report and how much to log: every command takes these (`--json`, `-v`).
struct OutputOptions: ParsableArguments {
    @Flag(help: "Print one machine-readable JSON report on stdout.")
    var json = false

    @Flag(name: .shortAndLong, help: "Log debug detail to stderr.")
    var verbose = false

    /// At a terminal: the progress bar and the summary, log lines only from warning up (all with -v
    /// or RGW_LOG_LEVEL), written above the bar. Without one (cron, CI, a pipe): info lines with
    /// timestamps. Either way as `ToolLogHandler` writes them, with its one label.
    func makeLogger() -> Logger {
        let chosen = Logger.Level(rawValue: ProcessInfo.processInfo.environment["RGW_LOG_LEVEL"] ?? "")
        return ToolLogHandler.logger(level: verbose ? .debug : chosen ?? (TerminalOutput.shared.isTTY ? .warning : .info))
    }
}

/// Options every command that talks to a database takes: where it is, how to report, how much to log.
struct GlobalOptions: ParsableArguments {
    @Option(name: .customLong("database-url"),
            help: ArgumentHelp("PostgreSQL URL (postgres://user:password@host:port/db?sslmode=...).", valueName: "url"))
    var databaseURL: String?

    @OptionGroup var output: OutputOptions

    var json: Bool { output.json }
    var verbose: Bool { output.verbose }
    var environment: [String: String] { ProcessInfo.processInfo.environment }

    /// The connection settings in the documented order; a malformed URL, or none configured, is a
    /// usage error.
    func connectionSettings() throws -> ConnectionSettings {
        try Self.usage { try ConnectionSettings.resolve(databaseURL: databaseURL, environment: environment) }
    }

    /// The settings of a URL given to an option of its own (`--target-url`, `--scratch-url`).
    static func connectionSettings(url: String, option: String) throws -> ConnectionSettings {
        try usage { try ConnectionSettings(conninfo: url, source: option) }
    }

    /// A malformed database URL or no database at all as the usage error it is, its fix apart.
    static func usage(_ body: () throws -> ConnectionSettings) throws -> ConnectionSettings {
        do {
            return try body()
        } catch var error as PostgresError where error.kind == .malformedConnectionString || error.kind == .notConfigured {
            let fix = error.hint
            error.hint = nil
            throw ToolError(.usage, String(describing: error), fix: fix, cause: error)
        }
    }

    /// The connection settings, their statements belonging to the run (cancelled when it stops).
    func connectionSettings(_ context: RunContext) throws -> ConnectionSettings {
        context.connections(try connectionSettings())
    }

    /// How the command's core types open their connections.
    func connections(_ context: RunContext) throws -> ConnectionFactory { ConnectionFactory(settings: try connectionSettings(context)) }

    func makeLogger() -> Logger { output.makeLogger() }
}

/// `--migrations DIR`, for the commands that apply or compare migrations.
struct MigrationOptions: ParsableArguments {
    @Option(help: ArgumentHelp("The database's migration set: a directory of YYYYMMDDHHMMSS_name.sql files, for production the application's internal/gateway/db/migrations (default: $RGW_MIGRATIONS_DIR, else the bundled set). A database migrated by another set is never migrated.", valueName: "dir"))
    var migrations: String?

    func load() throws -> MigrationSet {
        try MigrationSet.resolve(explicitDirectory: migrations)
    }
}

/// `--migrate-command CMD` and its timeout, for drill and the Convox pipeline.
struct MigrateCommandOptions: ParsableArguments {
    @Option(name: .customLong("migrate-command"), help: ArgumentHelp("Run the application's own migrate instead of a migration set (through /bin/sh; DATABASE_URL and RGW_DATABASE_URL name the restored database, the password is in PGPASSWORD), e.g. 'rack-gateway-api migrate'.", valueName: "cmd"))
    var migrateCommand: String?

    @Option(name: .customLong("migrate-timeout"), help: ArgumentHelp("Stop --migrate-command after this long, e.g. 30m (default: 30m).", valueName: "duration"))
    var migrateTimeout: String?

    func validate() throws {
        if let migrateTimeout {
            _ = try MaintCommand.duration(migrateTimeout, "--migrate-timeout")
            if migrateCommand == nil { throw ValidationError("--migrate-timeout goes with --migrate-command") }
        }
        if let migrateCommand, migrateCommand.trimmingCharacters(in: .whitespaces).isEmpty { throw ValidationError("--migrate-command is empty") }
    }

    func command() throws -> ApplicationMigrateCommand? {
        try migrateCommand.map { ApplicationMigrateCommand(command: $0, timeout: try MaintCommand.duration(migrateTimeout ?? "30m", "--migrate-timeout")) }
    }
}
