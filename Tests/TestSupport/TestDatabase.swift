import Foundation
import RGWPostgres
import RackGatewayDB

/// A database of its own for one test, created on the shared cluster and dropped afterwards.
public struct TestDatabase: Sendable {
    public let cluster: TestCluster
    public let name: String

    public var url: String { cluster.url(database: name) }
    public var settings: ConnectionSettings { get throws { try ConnectionSettings(conninfo: url, source: "test") } }

    public func connect() throws -> Connection { try Connection(settings: try settings) }

    public static func create(prefix: String = "rgw_t", on cluster: TestCluster? = nil) throws -> TestDatabase {
        let database = try unused(prefix: prefix, on: cluster)
        let admin = try Connection(settings: try database.cluster.adminSettings)
        try admin.execute("CREATE DATABASE \(SQL.identifier(database.name))")
        return database
    }

    /// A fresh name on the shared cluster, not created (for commands that create their target).
    public static func unused(prefix: String = "rgw_t", on cluster: TestCluster? = nil) throws -> TestDatabase {
        let name = "\(prefix)_\(UUID().uuidString.replacingOccurrences(of: "-", with: "").prefix(12).lowercased())"
        return TestDatabase(cluster: try cluster ?? TestCluster.shared(), name: name)
    }

    /// The database `name` on the shared cluster (which this test did not make).
    public static func named(_ name: String) throws -> TestDatabase {
        TestDatabase(cluster: try TestCluster.shared(), name: name)
    }

    /// Run `body` with a name for a database that does not exist yet; dropped afterwards if made.
    public static func withUnused<R>(_ body: (TestDatabase) throws -> R) throws -> R {
        let database = try unused(prefix: "rgw_r")
        defer { database.drop() }
        return try body(database)
    }

    public var exists: Bool {
        get throws {
            let admin = try Connection(settings: try cluster.adminSettings)
            return try admin.query("SELECT count(*) FROM pg_database WHERE datname = $1", [name]).scalar == "1"
        }
    }

    public func drop() {
        guard let admin = try? Connection(settings: try cluster.adminSettings) else { return }
        _ = try? admin.execute("DROP DATABASE IF EXISTS \(SQL.identifier(name)) WITH (FORCE)")
    }

    /// Run `body` with a fresh database that is dropped whatever happens.
    public static func with<R>(on cluster: TestCluster? = nil, _ body: (TestDatabase) throws -> R) throws -> R {
        let database = try create(on: cluster)
        defer { database.drop() }
        return try body(database)
    }

    /// Run `body` with a fresh database migrated to the current schema.
    public static func withMigrated<R>(_ body: (TestDatabase) throws -> R) throws -> R {
        try with { database in
            let connection = try database.connect()
            _ = try Migrator(connection: connection, migrations: MigrationSet.embedded, logger: .quiet).migrate()
            return try body(database)
        }
    }

    /// `psql -v ON_ERROR_STOP=1 -c SQL` against this database; returns stdout.
    @discardableResult
    public func psql(_ sql: String) throws -> String {
        try Shell.runChecked("psql", ["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", sql],
                             environment: try settings.childEnvironment)
    }
}
