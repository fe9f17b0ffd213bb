import RGWCompression
import Foundation

/// What a file to restore is, told from its content; except that a file named like an archive or
/// with an archive's sidecar beside it is one of ours (`ArchiveLocation.ownership`), read as an
/// archive whatever it holds, so that a damaged archive is refused rather than run as SQL.
public enum DumpFormat: String, Codable, Sendable {
    /// A rack-gateway-db archive (format v1).
    case archive = "rack-gateway-db archive"
    /// `pg_dump` plain text.
    case plainSQL = "plain SQL"
    /// `pg_dump | gzip`.
    case gzipSQL = "gzip-compressed plain SQL"
    /// `pg_dump -Fc`.
    case custom = "pg_dump custom format"
    /// `pg_dump -Fd` (a directory with toc.dat).
    case directory = "pg_dump directory format"
    /// `pg_dump -Ft`.
    case tar = "pg_dump tar format"

    public static func detect(path: String) throws -> DumpFormat {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw ToolError(.archiveNotFound, "\(path) does not exist")
        }
        if isDirectory.boolValue {
            guard FileManager.default.fileExists(atPath: path + "/toc.dat") else {
                throw ToolError(.failed, "\(path) is a directory without toc.dat: not a pg_dump directory-format dump")
            }
            return .directory
        }
        if ArchiveLocation(path: path).ownership != nil { return .archive }
        guard let handle = FileHandle(forReadingAtPath: path) else {
            throw ToolError(.failed, "cannot open \(path): \(String(cString: strerror(errno)))")
        }
        let head = [UInt8](handle.readData(ofLength: 64 * 1024))
        try? handle.close()
        if head.starts(with: Array("PGDMP".utf8)) { return .custom }
        // An encrypted archive (the reader refuses a name without .age, with the reason).
        if head.starts(with: Array("age-encryption.org/v1\n".utf8)) { return .archive }
        if head.count >= 262, Array(head[257..<262]) == Array("ustar".utf8) { return .tar }
        if MemberCodec.detect(head[...]) == .zstd {
            // zstd is the archive's other codec; a foreign zstd file is not a format restore reads.
            let text = decompressedPrefix(of: head[...], limit: 200)
            if String(decoding: text, as: UTF8.self).hasPrefix(ArchiveHeader.firstLinePrefix) || Self.endsWithArchiveTrailer(path: path) {
                return .archive
            }
            throw ToolError(.failed, "\(path) is a zstd file but not a rack-gateway-db archive",
                            fix: "Restore a zstd-compressed plain pg_dump file with: zstd -dc FILE | psql -v ON_ERROR_STOP=1")
        }
        if head.starts(with: [0x1f, 0x8b]) {
            var text = [UInt8]()
            var inflated = false
            if let inflater = try? GzipStreamInflater() { inflated = (try? inflater.inflate(head[...], into: &text)) != nil }
            if String(decoding: text.prefix(200), as: UTF8.self).hasPrefix(ArchiveHeader.firstLinePrefix) { return .archive }
            // An archive whose first member is damaged still ends with its trailer: it goes the
            // archive's way, where the checksum check refuses it before anything changes.
            if Self.endsWithArchiveTrailer(path: path) { return .archive }
            if !inflated && text.isEmpty {
                throw ToolError(.mismatch, "\(path) is a gzip file whose start does not decompress: it is corrupt; nothing was restored",
                                fix: "Restore another copy or an older backup (rack-gateway-db list).")
            }
            if text.starts(with: Array("PGDMP".utf8)) {
                throw ToolError(.failed, "\(path) is a gzip-compressed pg_dump custom-format file",
                                fix: "Decompress it first (gunzip), then restore the result.")
            }
            return .gzipSQL
        }
        if head.isEmpty { throw ToolError(.failed, "\(path) is empty") }
        if String(validatingUTF8: head.prefix(4096).map { CChar(bitPattern: $0) } + [0]) != nil || Self.looksLikeText(head) {
            return .plainSQL
        }
        throw ToolError(.failed, "\(path) is not a dump restore knows: not a rack-gateway-db archive, SQL text, gzip, or a pg_dump custom, directory or tar file")
    }

    static func endsWithArchiveTrailer(path: String) -> Bool {
        guard let handle = FileHandle(forReadingAtPath: path) else { return false }
        defer { try? handle.close() }
        guard let size = try? handle.seekToEnd() else { return false }
        let length = min(size, UInt64(ArchiveTrailer.memberLength))
        try? handle.seek(toOffset: size - length)
        let tail = [UInt8](handle.readData(ofLength: Int(length)))
        return ArchiveTrailer.find(in: tail[...]) != nil
    }

    /// Printable text (UTF-8 may be cut mid-character at the end of the sample).
    static func looksLikeText(_ bytes: [UInt8]) -> Bool {
        let sample = bytes.prefix(4096)
        return !sample.contains(0) && sample.filter { $0 < 0x09 || ($0 > 0x0d && $0 < 0x20) }.isEmpty
    }
}

extension ArchiveLocation {
    /// Why this object is one of ours, whatever its content: a name of the archive pattern
    /// (`<prefix>_<YYYYMMDD>T<HHMMSS>Z.sql.gz`, `.sql.zst`, either with `.age`) or a `.sha256`,
    /// `.minisig` or `.summary.json` beside it; nil for neither (a foreign file).
    public var ownership: String? {
        if ArchiveName.timestamp(of: name) != nil { return "its name has the archive pattern <prefix>_<YYYYMMDD>T<HHMMSS>Z\(ArchiveName.suffix)" }
        let present = ArchiveName.sidecars(of: name).filter { ((try? store.size($0)) ?? nil) != nil }
        guard !present.isEmpty else { return nil }
        return (present.count == 1 ? "its sidecar " : "its sidecars ") + present.map { String($0.dropFirst(name.count)) }.joined(separator: ", ") + " lie" + (present.count == 1 ? "s" : "") + " beside it"
    }

    /// The error for one of ours (`ownership`) that does not read as an archive (`what`: how it
    /// fails): it is damaged (exit 2), never a dump to pipe into psql. With a `.sha256` beside it,
    /// says whether the file still has the digest recorded there.
    func damaged(_ what: String, because ownership: String) -> ToolError {
        var digest = ""
        if let recorded = sidecarDigest() {
            if let actual = try? storedSHA256() {
                digest = actual == recorded
                    ? "; its SHA-256 still matches its .sha256 (it was already so when the backup recorded it, or both were replaced)"
                    : "; its SHA-256 no longer matches its .sha256 (\(actual.prefix(16))... against \(recorded.prefix(16))...): it changed after the backup wrote it"
            } else {
                digest = "; its SHA-256 could not be read to compare with its .sha256"
            }
        }
        return ToolError(.archiveCorrupt, "\(path) is a damaged rack-gateway-db archive (\(ownership)): \(what)\(digest); nothing of it was run or restored",
                         fix: "Do not restore it; use another copy or an older archive (rack-gateway-db list). A pg_dump file of your own must not carry an archive's name or sidecars.")
    }
}
