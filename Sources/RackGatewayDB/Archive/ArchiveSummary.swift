import Foundation
import RGWCompression

/// What the backup host needs to know of an archive without being able to decrypt it: the
/// database, when it was taken, whether the shrink check marked it suspect, and each table's row
/// count and COPY text size. Written beside an encrypted archive as `<archive>.summary.json`; read
/// by `list`, `prune`, `check --max-backup-age` and the next backup's shrink check. It holds no
/// row content, no fingerprint, no schema text and no key; it is not authenticated (the archive's
/// signature covers the archive only), so `verify` with the identity compares it with the manifest.
public struct ArchiveSummary: Codable, Sendable, Equatable {
    public static let formatName = "rack-gateway-db summary"
    public struct Table: Codable, Sendable, Equatable {
        public var schema: String
        public var name: String
        public var rows: Int
        public var bytes: Int
        public var qualifiedName: String { "\(schema).\(name)" }
    }

    public var format: String = ArchiveSummary.formatName
    public var formatVersion: Int = 1
    public var archive: String
    public var database: String
    public var createdAt: String
    public var suspect: String?
    public var tables: [Table]

    public var totalRows: Int { tables.reduce(0) { $0 + $1.rows } }
    public var totalBytes: Int { tables.reduce(0) { $0 + $1.bytes } }

    public init(manifest: ArchiveManifest, archive: String) {
        self.archive = archive
        database = manifest.database
        createdAt = manifest.createdAt
        suspect = manifest.suspect
        tables = manifest.tables.map { Table(schema: $0.schema, name: $0.name, rows: $0.rows, bytes: $0.bytes) }
    }

    public func json() throws -> [UInt8] { Array(try ArchiveManifest.encoder().encode(self)) + [0x0A] }

    /// The summary in `bytes` (the `.summary.json` of an archive whose stored file takes
    /// `storedSize` bytes). It is not authenticated, so its numbers are checked as a manifest's
    /// are: rows and bytes non-negative, no more rows than bytes, and no table, nor all together,
    /// with more bytes than the archive can inflate to (an absurd count would make the next
    /// backup's shrink check mark a good backup SUSPECT, or overflow a sum). Syntax errors say where.
    public static func parse(_ bytes: [UInt8], path: String, storedSize: Int) throws -> ArchiveSummary {
        if let problem = ArchiveJSON.problem(bytes[...], maximumValues: 1 << 18) {
            throw ToolError(.archiveCorrupt, "\(path) is not a valid archive summary: \(problem)", fix: fix)
        }
        let summary: ArchiveSummary
        do {
            summary = try ArchiveManifest.decoder().decode(ArchiveSummary.self, from: Data(bytes))
        } catch {
            throw ToolError(.archiveCorrupt, "\(path) is not a valid archive summary: \(ArchiveJSON.describe(error))", fix: fix)
        }
        guard summary.format == formatName, summary.formatVersion == 1 else {
            throw ToolError(.formatUnsupported, "\(path) is a summary of format \(summary.format.prefix(100)) v\(summary.formatVersion)")
        }
        // The plaintext is at most the stored file; its text at most what zstd inflates that to.
        let ceiling = MemberCodec.zstd.maximumSize(compressedLength: storedSize)
        var total = 0
        for table in summary.tables {
            var overflow = false
            (total, overflow) = total.addingReportingOverflow(max(0, table.bytes))
            guard table.rows >= 0, table.bytes >= 0, table.rows <= table.bytes, !overflow, total <= ceiling else {
                throw ToolError(.archiveCorrupt, "\(path): table \(table.qualifiedName.prefix(200)) has \(table.rows) rows in \(table.bytes) bytes, which an archive of \(storedSize) bytes cannot hold; the summary is damaged", fix: fix)
            }
        }
        return summary
    }

    static let fix = "Run rack-gateway-db verify with the archive's --identity: it compares the summary with the archive; rewrite or delete a damaged summary."

    /// Where it differs from `manifest` (verify with the identity); empty when it agrees.
    public func differences(from manifest: ArchiveManifest) -> [String] {
        let expected = ArchiveSummary(manifest: manifest, archive: archive)
        var problems: [String] = []
        if database != expected.database || createdAt != expected.createdAt || suspect != expected.suspect {
            problems.append("the summary's database, time or suspect mark differs from the archive's manifest")
        }
        if tables != expected.tables { problems.append("the summary's table row counts or sizes differ from the archive's manifest") }
        return problems
    }
}
