import RGWPostgres

/// An error the tool reports to its user: a code saying what kind of failure it is, what happened,
/// what to do, and the error that caused it.
///
/// The message must never contain a password or a full connection string.
public struct ToolError: Error, CustomStringConvertible, Sendable {
    /// The outcome class of a code.
    public enum Category: Sendable, Equatable {
        /// The job failed (exit 1).
        case failed
        /// Verification found a mismatch or corruption (exit 2).
        case mismatch
        /// Another run holds the lock (exit 3).
        case locked
        /// `backup --copy-to` and `copy`: a copy was not made or did not verify at its destination
        /// (for a backup: the archive itself is written and verified; exit 4).
        case copyFailed
        /// The command line or configuration is wrong (exit 64).
        case usage
    }

    /// What kind of failure: the CLI derives the exit status from it in one switch, and `--json`
    /// reports it. Programs match on codes, never on message text.
    public enum Code: String, Codable, Sendable, CaseIterable {
        case failed
        case usage
        case mismatch
        case archiveCorrupt = "archive_corrupt"
        case formatUnsupported = "format_unsupported"
        case databaseExists = "database_exists"
        /// `restore --table`: a table to create exists in the target, or `--into-schema`'s schema holds objects.
        case tableExists = "table_exists"
        case lockHeld = "lock_held"
        case notConfirmed = "not_confirmed"
        case foreignMigrationSet = "foreign_migration_set"
        case downgradeRefused = "downgrade_refused"
        /// A backup written but marked suspect by the shrink check.
        case suspectBackup = "suspect_backup"
        /// `check --max-backup-age`: the newest good archive is too old (and nothing else failed).
        case backupStale = "backup_stale"
        /// A drill ran and a check failed.
        case drillFailed = "drill_failed"
        /// `--verify-key` given and the archive is unsigned, or its signature does not verify.
        case signatureInvalid = "signature_invalid"
        /// An encrypted archive and no identity given opens it (the archive may be fine).
        case identityMismatch = "identity_mismatch"
        /// The run was stopped by a signal or the stall watchdog (exit 128 + the signal's number
        /// for a signal, 1 for a stall).
        case interrupted
        /// The archive named (or, for `--latest`, any archive) is not where it was looked for.
        case archiveNotFound = "archive_not_found"
        /// The S3 bucket does not exist (NoSuchBucket).
        case bucketNotFound = "bucket_not_found"
        /// S3 denied the request (AccessDenied, or another 403): the IAM or bucket policy.
        case accessDenied = "access_denied"
        /// No AWS credentials were found, or the ones found expired or are not valid.
        case credentialsMissing = "credentials_missing"
        /// PostgreSQL refused the user name or password.
        case databaseAuthFailed = "database_auth_failed"
        /// PostgreSQL could not be reached (connection refused, no such host, timeout).
        case databaseUnreachable = "database_unreachable"
        /// A step of the restore pipeline failed (`ToolError.step` names it).
        case pipelineStepFailed = "pipeline_step_failed"
        /// `copy`, `backup --copy-to`: a copy could not be made, or did not verify at its
        /// destination (where it was deleted); a backup's own archive is written and verified.
        case copyFailed = "copy_failed"

        public var category: Category {
            switch self {
            case .failed, .interrupted, .identityMismatch, .formatUnsupported, .databaseExists, .tableExists, .notConfirmed, .foreignMigrationSet, .downgradeRefused,
                 .archiveNotFound, .bucketNotFound, .accessDenied, .credentialsMissing, .databaseAuthFailed, .databaseUnreachable, .pipelineStepFailed: .failed
            case .mismatch, .archiveCorrupt, .suspectBackup, .backupStale, .drillFailed, .signatureInvalid: .mismatch
            case .lockHeld: .locked
            case .copyFailed: .copyFailed
            case .usage: .usage
            }
        }

    }

    public var code: Code
    public var category: Category { code.category }
    public var message: String
    /// What the user should do about it, printed after the message.
    public var fix: String?
    /// The error this one explains, if any (kept for logs and for callers; the message already says
    /// what matters of it).
    public var cause: (any Error & Sendable)?
    /// The restore pipeline's step that failed (`pipeline_step_failed`), reported with the code.
    public var step: String?

    public init(_ code: Code, _ message: String, fix: String? = nil, cause: (any Error & Sendable)? = nil) {
        self.code = code
        self.message = message
        self.fix = fix
        self.cause = cause
    }

    /// Any error as the tool reports it: a ToolError as it is; S3's answers and PostgreSQL's
    /// connection failures with the code that says what went wrong and their advice as the fix
    /// (never folded into the message); anything else as `failed` with its description.
    public init(reporting error: Error) {
        switch error {
        case let error as ToolError:
            self = error
        case let failure as S3Client.Failure:
            self.init(failure.toolCode, failure.summary, fix: failure.hint, cause: failure)
        case let error as PostgresError:
            self.init(error.toolCode, error.summary, fix: error.fix, cause: error)
        default:
            self.init(.failed, String(describing: error))
        }
    }

    public var description: String {
        guard let fix else { return message }
        return "\(message)\n\(fix)"
    }
}

extension PostgresError {
    /// The tool's code for it: a refused password, an unreachable server, a malformed URL (usage),
    /// a stopped run; anything else is `failed`.
    public var toolCode: ToolError.Code {
        switch kind {
        case .malformedConnectionString: .usage
        case .interrupted: .interrupted
        case .connection: connectionFailure == .authentication ? .databaseAuthFailed : connectionFailure == .unreachable ? .databaseUnreachable : .failed
        default: .failed
        }
    }
}
