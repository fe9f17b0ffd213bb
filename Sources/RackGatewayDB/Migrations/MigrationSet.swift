import Foundation

/// An ordered set of migrations, read from a directory or from the copy embedded in the binary.
public struct MigrationSet: Sendable {
    public var migrations: [Migration]
    /// Where they came from, for messages: a directory path or "embedded".
    public var origin: String

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
                            fix: "Pass an existing directory with --migrations DIR.")
        }
        var migrations: [Migration] = []
        for fileName in names where fileName.hasSuffix(".sql") {
            guard let parsed = Migration.parseFileName(fileName) else {
                throw ToolError(.usage, "migration file \(fileName) is not named YYYYMMDDHHMMSS_name.sql",
                                fix: "Rename it, e.g. 20260101120000_add_widgets.sql (lower-case letters, digits, underscores).")
            }
            let sql = try String(contentsOf: directory.appendingPathComponent(fileName), encoding: .utf8)
            migrations.append(Migration(version: parsed.version, name: parsed.name, sql: sql))
        }
        return try MigrationSet(migrations: migrations, origin: directory.path)
    }

    /// The Rack Gateway migrations compiled into this binary.
    public static var embedded: MigrationSet {
        // The embedded list is generated from migrations/ and checked by a test, so it is valid.
        try! MigrationSet(
            migrations: EmbeddedMigrations.all.map { Migration(version: $0.version, name: $0.name, sql: $0.sql) },
            origin: "embedded")
    }

    /// `--migrations DIR` when given; else `migrations/` beside the package the executable was
    /// built in (a development checkout); else the embedded copy, so an installed binary works anywhere.
    public static func resolve(explicitDirectory: String?, executablePath: String = CommandLine.arguments.first ?? "") throws -> MigrationSet {
        if let explicitDirectory {
            return try load(directory: URL(fileURLWithPath: explicitDirectory))
        }
        if let directory = checkoutMigrationsDirectory(executablePath: executablePath) {
            return try load(directory: directory)
        }
        return embedded
    }

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
