import ArgumentParser
import Foundation
import Logging
import Postgres
import RackGatewayDB

/// Options every command takes: where the database is, how to report, how much to log.
struct GlobalOptions: ParsableArguments {
    @Option(name: .customLong("database-url"),
            help: ArgumentHelp("PostgreSQL URL (postgres://user:password@host:port/db?sslmode=...).", valueName: "url"))
    var databaseURL: String?

    @Flag(help: "Print one machine-readable JSON report on stdout.")
    var json = false

    @Flag(name: .shortAndLong, help: "Log debug detail to stderr.")
    var verbose = false

    var environment: [String: String] { ProcessInfo.processInfo.environment }

    /// The connection settings in the documented order; a malformed URL is a usage error.
    func connectionSettings() throws -> ConnectionSettings {
        try ConnectionSettings.resolve(databaseURL: databaseURL, environment: environment)
    }

    func makeLogger(label: String = "rack-gateway-db") -> Logger {
        let level: Logger.Level = verbose ? .debug : (Logger.Level(rawValue: environment["RGW_LOG_LEVEL"] ?? "") ?? .info)
        var logger = Logger(label: label) { StreamLogHandler.standardError(label: $0) }
        logger.logLevel = level
        return logger
    }
}

/// `--migrations DIR`, for the commands that apply or compare migrations.
struct MigrationOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Directory of YYYYMMDDHHMMSS_name.sql files (default: the checkout's migrations/, else the copy built into this binary).", valueName: "dir"))
    var migrations: String?

    func load() throws -> MigrationSet {
        try MigrationSet.resolve(explicitDirectory: migrations)
    }
}
