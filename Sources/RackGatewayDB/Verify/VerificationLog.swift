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

    /// `report`'s outcome, verified at `time` (the run's clock).
    public static func record(_ report: ArchiveVerifier.Report, store: ArchiveStore, at time: Date) throws {
        let entry = Entry(file: URL(fileURLWithPath: report.file).lastPathComponent, sha256: report.sha256, size: report.fileSize, ok: report.ok,
                          verifiedAt: ISO8601DateFormatter().string(from: time))
        try JSONLines.append(entry, to: fileName, in: store)
    }

    /// The latest entry per file name.
    public static func load(store: ArchiveStore) -> [String: Entry] {
        var result: [String: Entry] = [:]
        for entry in JSONLines.read(Entry.self, from: fileName, in: store) { result[entry.file] = entry }
        return result
    }
}
