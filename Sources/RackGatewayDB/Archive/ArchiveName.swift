import Foundation
import RGWCompression

/// Archive file names, `<prefix>_<YYYYMMDD>T<HHMMSS>Z.sql.gz` (UTC), and their `.sha256` sidecars.
public enum ArchiveName {
    public static let suffix = ".sql.gz"
    /// A zstd archive's (`backup --compress zstd`).
    public static let zstdSuffix = ".sql.zst"
    public static let suffixes = [suffix, zstdSuffix]

    public static func suffix(for codec: MemberCodec) -> String { codec == .gzip ? suffix : zstdSuffix }

    /// The name without its `.sql.gz` or `.sql.zst`.
    public static func stem(_ fileName: String) -> String {
        for suffix in suffixes where fileName.hasSuffix(suffix) { return String(fileName.dropLast(suffix.count)) }
        return fileName
    }

    public static func fileName(prefix: String, date: Date, codec: MemberCodec = .gzip) -> String {
        "\(prefix)_\(UTCTime.stamp(date))\(suffix(for: codec))"
    }

    /// `name_20261124T031500Z.sql.gz` (or `.sql.zst`) → its UTC time; nil for any other name.
    public static func timestamp(of fileName: String) -> Date? {
        let stem = stem(fileName)
        guard stem != fileName, let underscore = stem.lastIndex(of: "_") else { return nil }
        let stamp = String(stem[stem.index(after: underscore)...])
        return UTCTime.parseStamp(stamp)
    }

    /// `<archive>.sha256`, in `sha256sum` format.
    public static func sidecar(of archive: String) -> String { archive + ".sha256" }

    public static func sidecarText(digest: String, archive: String) -> [UInt8] { Array("\(digest)  \(archive)\n".utf8) }

    /// The digest a sidecar's text records, lower-cased; nil when it has none.
    public static func sidecarDigest(_ text: [UInt8]) -> String? {
        String(decoding: text, as: UTF8.self).split(separator: " ").first.map { String($0).lowercased() }
    }
}
