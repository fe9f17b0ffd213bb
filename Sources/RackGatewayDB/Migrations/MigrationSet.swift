import Foundation

/// An ordered set of migrations, read from a directory or from the copy embedded in the binary.
public struct MigrationSet: Sendable {
    public var migrations: [Migration]
    /// Where they came from, for messages: a directory path or "embedded".
    public var origin: String
    /// True when this is the set bundled with the tool (the embedded copy or the checkout's
    /// `migrations/`), chosen because no `--migrations`/`RGW_MIGRATIONS_DIR` named another.
    public var isBundled = false

    public init(migrations: [Migration], origin: String) throws {
        var seen: [String: String] = [:]
        for migration in migrations {
            if let other = seen[migration.version] {
                throw ToolError(.usage, "two migrations share version \(migration.version): \(other) and \(migration.fileName)",
                                fix: "Give each file in \(origin) its own YYYYMMDDHHMMSS version.")
            }
            seen[migration.version] = migration.fileName
        }
        self.migrations = migrations.sorted { $0.version < $1.version }
        self.origin = origin
    }

    /// Read every `*.sql` file of `directory`; a `.sql` file with a malformed name is an error.
    public static func load(directory: URL) throws -> MigrationSet {
        let names: [String]
        do {
            names = try FileManager.default.contentsOfDirectory(atPath: directory.path)
        } catch {
            throw ToolError(.usage, "cannot read the migrations directory \(directory.path): \(error.localizedDescription)",
                            fix: "Pass an existing, readable directory of YYYYMMDDHHMMSS_name.sql files with --migrations DIR (or RGW_MIGRATIONS_DIR).")
        }
        var migrations: [Migration] = []
        for fileName in names where fileName.hasSuffix(".sql") {
            guard let parsed = Migration.parseFileName(fileName) else {
                throw ToolError(.usage, "migration file \(fileName) is not named YYYYMMDDHHMMSS_name.sql",
                                fix: "Rename it, e.g. 20260101120000_add_widgets.sql (lower-case letters, digits, underscores).")
            }
            let sql: String
            do {
                sql = try String(contentsOf: directory.appendingPathComponent(fileName), encoding: .utf8)
            } catch {
                throw ToolError(.usage, "cannot read migration file \(directory.appendingPathComponent(fileName).path): \(error.localizedDescription)",
                                fix: "Make the files of \(directory.path) readable by this user.")
            }
            migrations.append(Migration(version: parsed.version, name: parsed.name, sql: sql))
        }
        guard !migrations.isEmpty else {
            // An empty set would make every database look foreign, or a fresh one look migrated.
            throw ToolError(.usage, "the migrations directory \(directory.path) holds no YYYYMMDDHHMMSS_name.sql file",
                            fix: "Point --migrations (or RGW_MIGRATIONS_DIR) at the application's internal/gateway/db/migrations of the deployed release.")
        }
        return try MigrationSet(migrations: migrations, origin: directory.path)
    }

    /// Where they came from, in a sentence: "6 migrations of the embedded set", "... of /srv/migrations".
    public var described: String { origin == "embedded" ? "the embedded set" : origin }

    /// The Rack Gateway migrations compiled into this binary.
    public static var embedded: MigrationSet {
        // The embedded list is generated from migrations/ and checked by a test, so it is valid.
        var set = try! MigrationSet(
            migrations: EmbeddedMigrations.all.map { Migration(version: $0.version, name: $0.name, sql: $0.sql) },
            origin: "embedded")
        set.isBundled = true
        return set
    }

    /// `--migrations DIR` when given; else `RGW_MIGRATIONS_DIR`; else `migrations/` beside the package
    /// the executable was built in (a development checkout); else the embedded copy, so an installed
    /// binary works anywhere. The last two are the bundled set (the tool's demo and dev schema).
    public static func resolve(explicitDirectory: String?, environment: [String: String] = ProcessInfo.processInfo.environment,
                               executablePath: String = CommandLine.arguments.first ?? "") throws -> MigrationSet {
        if let explicitDirectory {
            return try load(directory: URL(fileURLWithPath: explicitDirectory))
        }
        if let directory = environment["RGW_MIGRATIONS_DIR"], !directory.isEmpty {
            return try load(directory: URL(fileURLWithPath: directory))
        }
        if let directory = checkoutMigrationsDirectory(executablePath: executablePath) {
            var set = try load(directory: directory)
            set.isBundled = true
            return set
        }
        return embedded
    }

    /// How a database whose `schema_migrations` holds `applied` stands to this set.
    public enum Relation: Sendable, Equatable {
        /// Every applied version is a file of this set (some files may be pending).
        case matching
        /// Every file of this set is applied, and the database has `newer` versions besides, all
        /// after this set's newest: it was migrated by a newer release of the same set.
        case ahead(newer: [String])
        /// The database has `unknown` versions this set does not have, other than a newer release's:
        /// it was migrated by another migration set, which must never be applied over it.
        case foreign(unknown: [String])
    }

    /// The rule: versions the set does not know make it foreign, unless the set is fully applied
    /// and every unknown version is newer than the set's newest (a newer release added them).
    public func relation(toApplied applied: [String]) -> Relation {
        let files = Set(migrations.map(\.version))
        let unknown = applied.filter { !files.contains($0) }.sorted()
        guard !unknown.isEmpty else { return .matching }
        let appliedSet = Set(applied)
        if let newest = migrations.last?.version, unknown.allSatisfy({ $0 > newest }), files.isSubset(of: appliedSet) {
            return .ahead(newer: unknown)
        }
        return .foreign(unknown: unknown)
    }

    /// What to tell a person whose database is foreign to this set: where the right one is.
    public func foreignAdvice(unknown: [String]) -> String {
        let sample = unknown.count > 3 ? "\(unknown.prefix(2).joined(separator: ", ")), ... \(unknown.last!)" : unknown.joined(separator: ", ")
        return "the database was migrated by another migration set: \(Plural.of(unknown.count, "applied version")) (\(sample)) \(unknown.count == 1 ? "is" : "are") not in \(name)"
    }

    /// The set as messages name it: "the bundled set (origin)", or the directory.
    public var name: String { isBundled ? "the bundled set (\(origin))" : origin }

    /// How to point at the right set.
    public static let foreignFix = "Point --migrations (or RGW_MIGRATIONS_DIR) at the application's own migrations (internal/gateway/db/migrations of the deployed release's checkout), or let the application migrate (rack-gateway-api migrate)."

    /// Walks up from the executable to the first directory holding `Package.swift` and `migrations/`.
    static func checkoutMigrationsDirectory(executablePath: String) -> URL? {
        var directory = URL(fileURLWithPath: executablePath).resolvingSymlinksInPath().deletingLastPathComponent()
        let fileManager = FileManager.default
        for _ in 0..<8 {
            let migrations = directory.appendingPathComponent("migrations")
            if fileManager.fileExists(atPath: directory.appendingPathComponent("Package.swift").path),
               fileManager.fileExists(atPath: migrations.path) {
                return migrations
            }
            let parent = directory.deletingLastPathComponent()
            if parent.path == directory.path { break }
            directory = parent
        }
        return nil
    }
}
