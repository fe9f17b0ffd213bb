import Foundation

/// What an archive holds, from its manifest alone (the trailer and manifest: two ranged reads, no
/// member): `inspect`'s report.
public struct ArchiveInspection: Encodable, Sendable {
    public struct Table: Encodable, Sendable {
        public var schema: String
        public var name: String
        public var rows: Int
        /// COPY text bytes (rows with their newlines).
        public var copyBytes: Int
        /// Compressed bytes of the table's data members, as stored (before encryption).
        public var storedBytes: Int
        public var chunks: Int
        public var fingerprint: String
        /// An extension configuration table's dump condition.
        public var filter: String?
    }

    public struct LargeObjectSummary: Encodable, Sendable {
        public var count: Int
        public var bytes: Int
        public var fingerprint: String
    }

    public var archive: String
    public var createdAt: String
    public var completedAt: String
    public var database: String
    public var sourceHost: String?
    public var serverVersion: String
    public var pgDumpVersion: String
    public var toolVersion: String
    /// The archive format's version (docs/archive-format.md): 2 since the statistics member; a
    /// release that reads only version 1 refuses a version 2 archive.
    public var formatVersion: Int
    /// Whether the archive holds the source's planner statistics (the statistics member).
    public var plannerStatistics: Bool
    public var codec: String
    public var encrypted: Bool
    /// A `.minisig` lies beside the archive (checked only with `--verify-key`).
    public var signed: Bool
    /// The signature was checked against `--verify-key` (and is good: a bad one is refused first).
    public var signatureChecked: Bool
    public var fileBytes: Int
    public var suspect: String?
    public var tables: [Table]
    public var totalRows: Int
    public var totalCopyBytes: Int
    public var largeObjects: LargeObjectSummary?
    public var roles: [String]
    /// The applied `schema_migrations` versions at backup, in the manifest's order.
    public var schemaMigrations: [String]
    public var sequences: Int

    public init(_ reader: ArchiveReader) {
        let manifest = reader.manifest
        archive = reader.path
        createdAt = manifest.createdAt
        completedAt = manifest.completedAt
        database = manifest.database
        sourceHost = manifest.sourceHost
        serverVersion = manifest.serverVersion
        pgDumpVersion = manifest.pgDumpVersion
        toolVersion = manifest.toolVersion
        formatVersion = manifest.formatVersion
        plannerStatistics = manifest.members.contains { $0.kind == .statistics }
        codec = reader.codec.rawValue
        encrypted = reader.isEncrypted
        signed = reader.hasSignature
        signatureChecked = reader.signatureChecked
        fileBytes = reader.storedSize
        suspect = manifest.suspect
        tables = manifest.tables.map { table in
            let stored = table.chunks.reduce(0) { $0 + (manifest.members.indices.contains($1) ? manifest.members[$1].length : 0) }
            return Table(schema: table.schema, name: table.name, rows: table.rows, copyBytes: table.bytes, storedBytes: stored,
                         chunks: table.chunks.count, fingerprint: table.fingerprint, filter: table.filter)
        }
        totalRows = manifest.totalRows
        totalCopyBytes = manifest.totalBytes
        largeObjects = manifest.largeObjects.map { LargeObjectSummary(count: $0.count, bytes: $0.bytes, fingerprint: $0.fingerprint) }
        roles = manifest.roles
        schemaMigrations = manifest.schemaMigrations
        sequences = manifest.sequences.count
    }
}
