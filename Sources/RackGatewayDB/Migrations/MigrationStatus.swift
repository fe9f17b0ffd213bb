/// Applied, pending and drifted migrations of one database.
public struct MigrationStatus: Codable, Sendable, Equatable {
    public struct Applied: Codable, Sendable, Equatable {
        public var version: String
        /// The file name, or nil when the version has no file (drift).
        public var file: String?
        public var appliedAt: String
    }

    public struct Pending: Codable, Sendable, Equatable {
        public var version: String
        public var file: String
    }

    /// Where the migration files came from.
    public var source: String
    public var applied: [Applied]
    public var pending: [Pending]
    /// Versions recorded in `schema_migrations` that have no file here.
    public var missingFiles: [String]

    public var isUpToDate: Bool { pending.isEmpty }
}
