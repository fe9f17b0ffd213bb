import ArgumentParser
import Foundation

/// `--dir`: the archive directory of every command that reads or writes archives.
struct DirectoryOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Archive directory (default: $RGW_BACKUP_DIR, else ./backups).", valueName: "dir"))
    var dir: String?

    var directory: String {
        let chosen = dir ?? ProcessInfo.processInfo.environment["RGW_BACKUP_DIR"].flatMap { $0.isEmpty ? nil : $0 } ?? "./backups"
        return URL(fileURLWithPath: chosen).standardizedFileURL.path
    }
}

enum Defaults {
    static var cores: Int { max(1, ProcessInfo.processInfo.activeProcessorCount) }

    /// `--jobs` default: the number of cores, within `DB_MAX_OPEN_CONNS` (default 25) less the
    /// coordinator's own connection and pg_dump's.
    static func jobs(requested: Int?) throws -> Int {
        let cap = Int(ProcessInfo.processInfo.environment["DB_MAX_OPEN_CONNS"] ?? "") ?? 25
        guard cap >= 1 else { throw ValidationError("DB_MAX_OPEN_CONNS must be at least 1") }
        if let requested {
            guard requested >= 1 else { throw ValidationError("--jobs must be at least 1") }
            return min(requested, max(1, cap - 2))
        }
        return max(1, min(cores, cap - 2))
    }
}

/// `--jobs` of restore and drill.
struct JobsOption: ParsableArguments {
    @Option(help: "Parallel connections (default: the number of cores, within DB_MAX_OPEN_CONNS).")
    var jobs: Int?

    func resolved() throws -> Int { try Defaults.jobs(requested: jobs) }
}
