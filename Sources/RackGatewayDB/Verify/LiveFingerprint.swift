import Foundation
import Postgres

/// Row count and fingerprint of a table in a live database, computed the way `backup` computes
/// them (same session settings, same COPY text): for `restore --verify`, drills and tests.
public enum LiveFingerprint {
    public struct Result: Sendable, Equatable {
        public var rows: Int
        public var fingerprint: String
    }

    /// Pins the dump session settings on `connection` (call once per connection).
    public static func prepare(_ connection: Connection) throws {
        try DumpSession.apply(to: connection)
    }

    public static func compute(_ connection: Connection, schema: String, table: String, columns: [String]) throws -> Result {
        var rows = 0
        var sum: UInt64 = 0
        try connection.copyOut(DataChunk.copyOutStatement(schema: schema, name: table, columns: columns)) { stream in
            while try stream.withNextRow({ sum &+= DataChunk.rowHash($0) }) {
                rows += 1
            }
        }
        return Result(rows: rows, fingerprint: ArchiveManifest.fingerprintText(sum))
    }

    /// Re-read every table of `manifest` over `jobs` connections (largest first) with the dump's
    /// session settings; one line per table whose row count or fingerprint differs.
    public static func mismatches(manifest: ArchiveManifest, settings: ConnectionSettings, jobs: Int,
                                  tableDone: @escaping @Sendable () -> Void = {}) throws -> [String] {
        let mismatches = LockedList<String>()
        let order = manifest.tables.indices.sorted { manifest.tables[$0].bytes > manifest.tables[$1].bytes }
        try forEachInParallel(order, workers: jobs, name: "fingerprint", connect: {
            let connection = try Connection(settings: settings, applicationName: "rack-gateway-db verify")
            try prepare(connection)
            return connection
        }) { connection, index in
            let table = manifest.tables[index]
            let live = try compute(connection, schema: table.schema, table: table.name, columns: table.columns)
            if live.rows != table.rows || live.fingerprint != table.fingerprint {
                mismatches.add("table \(table.qualifiedName): \(live.rows) rows with fingerprint \(live.fingerprint) in the database, the manifest says \(table.rows) rows with \(table.fingerprint)")
            }
            tableDone()
        }
        return mismatches.items.sorted()
    }
}
