import Compression
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
        let columnList = columns.map(SQL.identifier).joined(separator: ", ")
        var rows = 0
        var sum: UInt64 = 0
        try connection.copyOut("COPY \(SQL.qualified(schema, table)) (\(columnList)) TO STDOUT") { stream in
            while try stream.withNextRow({ raw in
                sum &+= XXH64.hash(UnsafeRawBufferPointer(rebasing: raw.dropLast()))
            }) {
                rows += 1
            }
        }
        return Result(rows: rows, fingerprint: ArchiveManifest.fingerprintText(sum))
    }
}
