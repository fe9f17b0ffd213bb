import Foundation
import RGWCompression

/// Archive file names, `<prefix>_<YYYYMMDD>T<HHMMSS>Z.sql.gz` (UTC), and their sidecars: `.sha256`,
/// `.minisig` (a signed archive) and `.summary.json` (an encrypted one).
public enum ArchiveName {
    public static let suffix = ".sql.gz"
    /// A zstd archive's (`backup --compress zstd`).
    public static let zstdSuffix = ".sql.zst"
    /// Added to either by age encryption (`backup --recipient`).
    public static let ageSuffix = ".age"
    public static let suffixes = [suffix, zstdSuffix, suffix + ageSuffix, zstdSuffix + ageSuffix]

    public static func suffix(for codec: MemberCodec, encrypted: Bool = false) -> String {
        (codec == .gzip ? suffix : zstdSuffix) + (encrypted ? ageSuffix : "")
    }

    /// The name without its `.sql.gz`, `.sql.zst` or either with `.age`.
    public static func stem(_ fileName: String) -> String {
        for suffix in suffixes where fileName.hasSuffix(suffix) { return String(fileName.dropLast(suffix.count)) }
        return fileName
    }

    public static func isEncrypted(_ fileName: String) -> Bool { fileName.hasSuffix(ageSuffix) }

    public static func fileName(prefix: String, date: Date, codec: MemberCodec = .gzip, encrypted: Bool = false) -> String {
        "\(prefix)_\(UTCTime.stamp(date))\(suffix(for: codec, encrypted: encrypted))"
    }

    /// Every sidecar an archive may have (`prune` deletes them with it).
    public static func sidecars(of archive: String) -> [String] { [sidecar(of: archive), signature(of: archive), summary(of: archive)] }

    /// `<archive>.minisig`, minisign's signature file.
    public static func signature(of archive: String) -> String { archive + ".minisig" }

    /// `<archive>.summary.json`: what `list`, `prune`, `check` and the shrink check read of an
    /// encrypted archive without its key.
    public static func summary(of archive: String) -> String { archive + ".summary.json" }
    /// The most bytes a sidecar may have: a `.sha256` line, a `.minisig` (four short lines), a
    /// `.summary.json` (a few lines per table). Larger ones are refused unread.
    public static let digestLimit = 4 << 10
    public static let signatureLimit = 4 << 10
    public static let summaryLimit = 1 << 20

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

    /// The prefix of the safety backup `restore --in-place` takes of the database `database`.
    public static func safetyBackupPrefix(database: String) -> String { "\(database)_pre_restore" }

    /// Whether `name` is such a safety backup (`<db>_pre_restore_<YYYYMMDD>T<HHMMSS>Z...`).
    public static func isSafetyBackup(_ name: String) -> Bool {
        name.range(of: #"_pre_restore_\d{8}T\d{6}Z"#, options: .regularExpression) != nil
    }
}
