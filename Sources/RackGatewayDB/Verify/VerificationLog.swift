import Foundation

/// `verifications.jsonl` in the archive directory: one line per `verify` run, so `list` can say
/// which archives verified (and `prune` which are known good) without reading them again.
public enum VerificationLog {
    public static let fileName = "verifications.jsonl"

    public struct Entry: Codable, Sendable {
        public var file: String
        public var sha256: String
        public var size: Int
        public var ok: Bool
        public var verifiedAt: String
    }

    public static func record(_ report: ArchiveVerifier.Report) throws {
        let url = URL(fileURLWithPath: report.file)
        let entry = Entry(file: url.lastPathComponent, sha256: report.sha256, size: report.fileSize, ok: report.ok,
                          verifiedAt: ISO8601DateFormatter().string(from: Date()))
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        var line = try encoder.encode(entry)
        line.append(0x0A)
        let path = url.deletingLastPathComponent().appendingPathComponent(fileName).path
        let fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o600)
        guard fd >= 0 else { return }
        defer { close(fd) }
        _ = ArchiveFileWriter.writeFully(fd, [UInt8](line))
    }

    /// The latest entry per file name.
    public static func load(directory: String) -> [String: Entry] {
        guard let text = try? String(contentsOfFile: directory + "/" + fileName, encoding: .utf8) else { return [:] }
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        var result: [String: Entry] = [:]
        for line in text.split(separator: "\n") {
            if let entry = try? decoder.decode(Entry.self, from: Data(line.utf8)) { result[entry.file] = entry }
        }
        return result
    }
}
