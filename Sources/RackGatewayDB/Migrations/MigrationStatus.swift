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
    /// `matching`, `ahead` (migrated by a newer release of this set) or `foreign` (by another set:
    /// `pending` is then empty, since nothing of this set may be applied).
    public var migrationSet: String
    /// For a foreign set: what to say about it.
    public var advice: String?

    public var isUpToDate: Bool { pending.isEmpty }
    public var isForeign: Bool { migrationSet == "foreign" }
}
