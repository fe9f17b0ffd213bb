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
}
