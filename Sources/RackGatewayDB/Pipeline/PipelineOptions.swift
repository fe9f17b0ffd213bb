import Foundation

public struct PipelineOptions: Sendable {
    public var app: String
    /// `--latest`: the seconds its choice, download and check took before the pipeline began; part
    /// of the report's duration (`RestoreOptions.fetchSeconds`).
    public var fetchSeconds: Double?
    public var service = "gateway"
    public var rack: String?
    public var jobs: Int
    public var dryRun = false
    /// Restore over the live database after a safety backup into `safetyDirectory`, instead of the swap.
    public var inPlace = false
    public var safetyDirectory = "./backups"
    public var allowAutoscaled = false
    /// How long to wait for the service's processes to be gone after the scale-down.
    public var stopTimeout: Double = 600
    public var pollInterval: Double = 2
    public var migrations: MigrationSet
    /// The application's own migrate command, run against the restored database instead of the set.
    public var migrateCommand: ApplicationMigrateCommand?
    /// Restore without migrating (the report carries a warning).
    public var skipMigrate = false
    /// The count to scale the service to afterwards (and on the way back), instead of the count it
    /// has at preflight; needed when that is 0.
    public var scaleTo: Int?
    public var environment: [String: String] = ProcessInfo.processInfo.environment

    public init(app: String, jobs: Int, migrations: MigrationSet) {
        self.app = app
        self.jobs = jobs
        self.migrations = migrations
    }
}

/// One step of the pipeline as the transcript records it.
public struct PipelineStep: Codable, Sendable {
    public var name: String
    public var startedAt: String
    public var seconds: Double
    /// `ok`, `failed`, `stopped` (by a signal), or `planned` (dry run).
    public var outcome: String
    public var detail: String
}

public struct PipelineReport: Codable, Sendable {
    public var archive: String
    public var app: String
    public var service: String
    public var rack: String?
    public var database: String
    public var mode: String
    public var dryRun: Bool
    public var ok: Bool
    /// What failed (the error's message; its fix is in `fix`).
    public var error: String?
    /// What the error itself says to do, if anything.
    public var fix: String? = nil
    /// The error's code (`interrupted` for a signal, `lock_held` for a second run, ...).
    public var errorCode: ToolError.Code?
    public var rememberedCount: Int?
    public var finalCount: Int?
    /// Where the previous live database is now (swap mode).
    public var previousDatabase: String?
    /// The backup of the live database taken before an in-place restore.
    public var safetyBackup: String?
    public var steps: [PipelineStep]
    /// What the run left and what to run, as the text lines the command prints (`Now: ...`, each
    /// group of commands under what it is for); `now` and `commands` carry the same as fields.
    public var recovery: [String]
    /// The step that failed or was stopped (absent when none did, or before the first step).
    public var failedStep: String? = nil
    /// The state things are in now: the service, the live database, the new or previous database.
    public var now: [String]? = nil
    /// What to run, in order, each group with what it is for (shell command lines, no password).
    public var commands: [PipelineCommands]? = nil
    /// When the archive was taken (its manifest's `created_at`): writes since then are not in it.
    public var archiveCreatedAt: String? = nil
    /// What the operator should know although nothing failed (`--skip-migrate`).
    public var warnings: [String] = []
    public var durationSeconds: Double
    /// When it started (absent in lines of older versions); `report` lists restores by it.
    public var startedAt: String? = nil
    /// `--latest`: the seconds to choose, fetch and check the archive, before the first step
    /// (counted in `durationSeconds` and `startedAt`).
    public var fetchSeconds: Double? = nil
}
