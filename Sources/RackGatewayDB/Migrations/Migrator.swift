import Foundation
import Logging
import RGWPostgres

/// Applies migrations to one database, each file and its `schema_migrations` row in one transaction.
///
/// Concurrent runs are serialised by a session advisory lock: a second `migrate` waits for the
/// first, then finds nothing left to apply.
public struct Migrator {
    /// `pg_advisory_lock` key of migrations ("RGWDBMIG").
    public static let advisoryLockKey: Int64 = 0x5247_5744_424D_4947

    public let connection: Connection
    public let migrations: MigrationSet
    public let logger: Logger

    /// Connected through `connections` for `purpose` (`migrate`, `status`).
    public init(connections: ConnectionFactory, purpose: ConnectionPurpose, migrations: MigrationSet, logger: Logger) throws {
        self.init(connection: try connections.open(purpose), migrations: migrations, logger: logger)
    }

    public var database: String { connection.databaseName }

    public init(connection: Connection, migrations: MigrationSet, logger: Logger) {
        self.connection = connection
        self.migrations = migrations
        self.logger = logger
    }

    public struct Outcome: Codable, Sendable {
        public var applied: [String]
        public var dryRun: Bool
        public var status: MigrationStatus
    }

    /// Applied, pending and missing-file versions; reads only.
    public func status() throws -> MigrationStatus {
        let recorded = try appliedVersions()
        let files = Dictionary(uniqueKeysWithValues: migrations.migrations.map { ($0.version, $0) })
        let appliedSet = Set(recorded.map(\.version))
        let relation = migrations.relation(toApplied: recorded.map(\.version))
        // Set exactly when the database is foreign to this set: why.
        var foreignAdvice: String?
        if case .foreign(let unknown) = relation {
            foreignAdvice = migrations.foreignAdvice(unknown: unknown)
        } else if recorded.isEmpty {
            // No bookkeeping, yet objects: not a fresh database, and not one this set migrated.
            let objects = try RestoreTarget.userObjects(connection, limit: 3, except: "public.schema_migrations")
            if objects.count > 0 {
                foreignAdvice = "the database holds \(Plural.of(objects.count, "object")) (\(objects.names.joined(separator: ", "))\(objects.count > 3 ? ", ..." : "")) but no schema_migrations row: it was not migrated by \(migrations.name)"
            }
        }
        return MigrationStatus(
            source: migrations.origin,
            applied: recorded.map { .init(version: $0.version, file: files[$0.version]?.fileName, appliedAt: $0.appliedAt) },
            pending: foreignAdvice != nil ? [] : migrations.migrations.filter { !appliedSet.contains($0.version) }
                .map { .init(version: $0.version, file: $0.fileName) },
            missingFiles: recorded.map(\.version).filter { files[$0] == nil },
            migrationSet: foreignAdvice != nil ? "foreign" : (relation == .matching ? "matching" : "ahead"),
            advice: foreignAdvice
        )
    }

    /// Refuses, changing nothing, when the database was migrated by another set.
    func refuseForeign(_ status: MigrationStatus) throws {
        if let advice = status.advice, status.isForeign {
            throw ToolError(.foreignMigrationSet, "refusing to migrate \(connection.databaseName): \(advice)", fix: MigrationSet.foreignFix + " Nothing was changed.")
        }
    }

    private func appliedVersions() throws -> [(version: String, appliedAt: String)] {
        let exists = try connection.query("SELECT to_regclass('public.schema_migrations') IS NOT NULL").scalar == "t"
        guard exists else { return [] }
        let result = try connection.query("""
            SELECT version, to_char(applied_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')
            FROM public.schema_migrations ORDER BY version
            """)
        return result.rows.map { ($0[0] ?? "", $0[1] ?? "") }
    }

    /// Apply every pending migration in version order; with `dryRun`, only report what would run.
    public func migrate(dryRun: Bool = false) throws -> Outcome {
        // Read-only first: a foreign set must not even create schema_migrations.
        let before = try status()
        try refuseForeign(before)
        if dryRun {
            let status = before
            for pending in status.pending { logger.info("would apply", metadata: ["migration.file": "\(pending.file)"]) }
            return Outcome(applied: [], dryRun: true, status: status)
        }
        try connection.query("SELECT pg_advisory_lock($1)", [String(Self.advisoryLockKey)])
        defer { _ = try? connection.query("SELECT pg_advisory_unlock($1)", [String(Self.advisoryLockKey)]) }
        try connection.execute("""
            CREATE TABLE IF NOT EXISTS public.schema_migrations (
                version text PRIMARY KEY,
                applied_at timestamptz NOT NULL DEFAULT now()
            )
            """)
        // Read the state only once the lock is held: a concurrent run may just have applied some.
        let locked = try status()
        try refuseForeign(locked)
        let pending = locked.pending.map(\.version)
        var applied: [String] = []
        for migration in migrations.migrations where pending.contains(migration.version) {
            try apply(migration)
            applied.append(migration.fileName)
        }
        return Outcome(applied: applied, dryRun: false, status: try status())
    }

    /// Runs the file statement by statement, so a failure names the line it happened on.
    ///
    /// - Important: runs the file's SQL as it is; files must not contain their own BEGIN/COMMIT.
    private func apply(_ migration: Migration) throws {
        let stopwatch = Stopwatch()
        let script = SQLScript(migration.sql)
        if let meta = script.pieces.first(where: { if case .metaCommand = $0 { true } else { false } }),
           case .metaCommand(let text, let line) = meta {
            throw ToolError(.failed, "migration \(migration.fileName) line \(line): psql meta-command \(text) is not allowed in a migration",
                            fix: "Remove it; migrations are plain SQL. Nothing was applied.")
        }
        try connection.execute("BEGIN")
        var currentLine = 1
        do {
            for statement in script.statements {
                currentLine = statement.line
                try connection.execute(statement.text)
            }
            currentLine = 0
            try connection.query("INSERT INTO public.schema_migrations (version) VALUES ($1)", [migration.version])
            try connection.execute("COMMIT")
        } catch let error as PostgresError {
            _ = try? connection.execute("ROLLBACK")
            throw Self.failure(of: migration, statementLine: currentLine,
                               statementText: script.statements.first { $0.line == currentLine }?.text, error: error)
        }
        logger.info("applied migration", metadata: [
            "migration.file": "\(migration.fileName)",
            "duration.ms": "\(Int(stopwatch.elapsed * 1000))",
        ])
    }

    static func failure(of migration: Migration, statementLine: Int, statementText: String?, error: PostgresError) -> ToolError {
        var line = statementLine
        if let position = error.position, let statementText {
            line += lineNumber(ofCharacter: position, in: statementText) - 1
        }
        let place = line > 0 ? " at line \(line)" : ""
        var message = "migration \(migration.fileName) failed\(place): \(error.message)"
        if let sqlState = error.sqlState { message += " (SQLSTATE \(sqlState))" }
        if let detail = error.detail { message += "\nDETAIL: \(detail)" }
        if let context = error.context { message += "\nCONTEXT: \(context)" }
        return ToolError(.failed, message,
                         fix: "Nothing of this file was applied (its transaction was rolled back); later files were not run. Fix the file and run migrate again.")
    }

    /// The 1-based line of the 1-based character `position` (the server counts code points).
    static func lineNumber(ofCharacter position: Int, in text: String) -> Int {
        var line = 1
        for (index, scalar) in text.unicodeScalars.enumerated() {
            if index >= position - 1 { break }
            if scalar == "\n" { line += 1 }
        }
        return line
    }
}
