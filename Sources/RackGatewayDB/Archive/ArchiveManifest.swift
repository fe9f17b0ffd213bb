import RGWCompression
import Foundation

/// The manifest of an archive (format v1): one JSON line near the end of the file, found through the
/// trailer. Field names are snake_case in the JSON.
public struct ArchiveManifest: Codable, Sendable, Equatable {
    public static let formatName = "rack-gateway-db archive"
    /// The version this release writes: 2 is 1 with the statistics member (docs/archive-format.md
    /// section 13), which a reader of version 1 would not know, so it refuses the archive as newer.
    public static let currentFormatVersion = 2
    /// The versions this release reads.
    public static let readableFormatVersions = 1...2
    public static let linePrefix = "-- rack-gateway-db manifest: "

    public enum MemberKind: String, Codable, Sendable {
        case header, preData = "pre-data", data, largeObjects = "large-objects", sequences, postData = "post-data", statistics
    }

    public struct Member: Codable, Sendable, Equatable {
        public var index: Int
        public var kind: MemberKind
        /// Byte offset of the gzip member in the file, and its compressed length.
        public var offset: Int
        public var length: Int
        /// Uncompressed size and CRC32 (as gzip records them).
        public var size: Int
        public var crc32: UInt32
        /// For data members: the table's index in `tables`.
        public var table: Int?
        public var rows: Int?
    }

    public struct Table: Codable, Sendable, Equatable {
        public var schema: String
        public var name: String
        public var columns: [String]
        public var rows: Int
        /// Bytes of COPY text (rows with their newlines).
        public var bytes: Int
        public var chunks: [Int]
        /// Sum modulo 2^64 of XXH64 (seed 0) of each row's COPY text line without its newline, 16 hex digits.
        public var fingerprint: String
        /// For an extension's configuration table: the condition its rows were dumped with (`WHERE
        /// ...`, or empty for all rows); the extension's own rows come from CREATE EXTENSION.
        public var filter: String? = nil
        public var qualifiedName: String { "\(schema).\(name)" }
    }

    public struct Sequence: Codable, Sendable, Equatable {
        public var schema: String
        public var name: String
        public var value: String
        public var isCalled: Bool
    }

    public var format: String = ArchiveManifest.formatName
    public var formatVersion: Int = ArchiveManifest.currentFormatVersion
    public var toolVersion: String
    public var createdAt: String
    public var completedAt: String
    public var database: String
    public var serverVersion: String
    public var serverVersionNum: Int
    public var pgDumpVersion: String
    public var snapshot: String
    public var sessionSettings: [String: String]
    public var schemaMigrations: [String]
    public var roles: [String]
    public var members: [Member]
    public var tables: [Table]
    public var sequences: [Sequence]
    /// Set by the shrink check of a later issue; absent means not suspect.
    public var suspect: String?
    /// Sequences behind their column, NOT VALID constraints, invalid indexes and materialized views'
    /// populated state at backup time (absent in archives of older versions).
    public var schemaState: SchemaState? = nil
    /// The database's own settings, comment and grants (absent in archives of older versions).
    public var databaseProperties: DatabaseProperties? = nil
    /// Count, bytes and fingerprints of the large objects; absent when there are none.
    public var largeObjects: LargeObjects.Summary? = nil
    /// `"zstd"` when the members are zstd frames; absent for gzip members.
    public var codec: String? = nil
    /// The server the backup read, `host:port` (no user, no password); absent in archives of older
    /// versions. `report` names the source database by it.
    public var sourceHost: String? = nil

    /// The members' codec (gzip when `codec` is absent); nil for a codec this version does not know.
    public var memberCodec: MemberCodec? { codec.map { MemberCodec(rawValue: $0) } ?? .gzip }

    public var totalRows: Int { tables.reduce(0) { $0 + $1.rows } }
    public var totalBytes: Int { tables.reduce(0) { $0 + $1.bytes } }

    static func encoder() -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }

    static func decoder() -> JSONDecoder {
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        return decoder
    }

    /// The manifest line, with its newline: `-- rack-gateway-db manifest: {json}\n`.
    public func line() throws -> [UInt8] {
        Array(Self.linePrefix.utf8) + Array(try Self.encoder().encode(self)) + [0x0A]
    }

    /// What every format version keeps: the format's name and version, read before anything else so
    /// that a newer format is refused as newer (exit 1), not as corrupt.
    public struct Envelope: Decodable, Sendable {
        public var format: String
        public var formatVersion: Int
    }

    static func json(of line: [UInt8]) throws -> ArraySlice<UInt8> {
        let prefix = Array(linePrefix.utf8)
        guard line.count > prefix.count, Array(line.prefix(prefix.count)) == prefix else {
            throw ToolError(.mismatch, "the manifest member does not start with '\(linePrefix)'")
        }
        var json = line[prefix.count...]
        if json.last == 0x0A { json = json.dropLast() }
        return json
    }

    /// The manifest member's compressed bytes at most (a manifest of a million members takes
    /// about 20 MiB): a trailer pointing to more is refused before it is read.
    public static let maximumMemberLength = 64 << 20
    /// The manifest's text at most, refused before it is decompressed (the member's own recorded
    /// size) and so before any of it is allocated: 256 MiB, and no more than 1 MiB plus 16 bytes
    /// per byte before the manifest (a member's entry takes about 110 bytes of text for at least 20
    /// of member, a table's about as many as its CREATE TABLE compressed in pre-data), so a small
    /// file cannot claim a huge manifest.
    public static func maximumTextLength(manifestOffset: Int) -> Int {
        min(256 << 20, (1 << 20) + min(max(0, manifestOffset), 256 << 20) * 16)
    }

    /// How many JSON values a manifest before `offset` (the bytes its members take) may hold:
    /// 64 Ki for any archive, plus one per two bytes of members (a member takes 20 bytes and
    /// about 9 values; a table's names take bytes in pre-data). A claim of more is refused by the
    /// scan, before the decoder builds anything.
    public static func maximumValues(manifestOffset: Int) -> Int { (64 << 10) + max(0, manifestOffset) / 2 }

    public static func envelope(line: [UInt8], maximumValues: Int = Int.max) throws -> Envelope {
        let json = try json(of: line)
        if let problem = ArchiveJSON.problem(json, maximumValues: maximumValues) {
            throw ToolError(.mismatch, "the manifest is not valid: \(problem)")
        }
        do {
            return try decoder().decode(Envelope.self, from: Data(json))
        } catch {
            throw ToolError(.mismatch, "the manifest has no format and format_version (\(ArchiveJSON.describe(error)))")
        }
    }

    /// The manifest (after `envelope`, which checked its syntax and size).
    public static func parse(line: [UInt8]) throws -> ArchiveManifest {
        let json = try json(of: line)
        do {
            return try decoder().decode(ArchiveManifest.self, from: Data(json))
        } catch {
            throw ToolError(.mismatch, "the manifest is not valid JSON of format v\(currentFormatVersion): \(ArchiveJSON.describe(error))")
        }
    }

    public static func fingerprintText(_ value: UInt64) -> String { String(value, radix: 16).zeroPadded(16) }
}
