import Foundation

/// `copies.jsonl`: one line per archive `copy` (or `backup --copy-to`) copied, skipped or failed to
/// copy. The line is appended at the destination and, when it accepts writes, at the source too, so
/// that `list`, `report` and `check` of either location know the other's state.
public enum CopyLog {
    public static let fileName = "copies.jsonl"

    /// What became of one archive's copy.
    public enum Outcome: String, Codable, Sendable {
        /// Copied and verified at the destination.
        case copied
        /// Already at the destination with the same SHA-256 (verified then, or read again now).
        case skipped
        /// The copy did not verify at the destination (it was deleted there) or could not be made.
        case failed
        /// `copy --forget`: the destination is no longer tracked from this location (a one-off test
        /// copy, a retired bucket); the lines before it about that destination are ignored by
        /// `latest`, until a later copy to it. Its `file` is empty. A reader that does not know this
        /// outcome skips the line (JSONLines.read), so it still sees the destination: no harm done.
        case forgotten
    }

    public struct Entry: Codable, Sendable, Equatable {
        /// The archive's file name.
        public var file: String
        /// Where it was copied from and to: a directory or `s3://bucket/prefix` (never credentials).
        public var source: String
        public var destination: String
        public var outcome: Outcome
        /// The archive's SHA-256 (its `.sha256` sidecar) and size in bytes.
        public var sha256: String
        public var size: Int
        /// When the copy was made or skipped (the run's clock), ISO 8601 UTC.
        public var copiedAt: String
        /// What was checked at the destination before it was called copied: `sha256`, `trailer`,
        /// `manifest`, `signature` (what could not be checked, e.g. an encrypted archive's manifest on a
        /// host without its identity, is absent).
        public var checks: [String]
        /// The destination file's `ArchiveStore.version` after the copy: a later reader trusts the
        /// entry only while the file's version is still this.
        public var version: String? = nil
        /// The Object Lock retention date set at the destination, ISO 8601 UTC.
        public var retainUntil: String? = nil
        /// What went wrong (outcome `failed`).
        public var problems: [String]? = nil

        public init(file: String, source: String, destination: String, outcome: Outcome, sha256: String, size: Int,
                    copiedAt: Date, checks: [String], version: String? = nil, retainUntil: Date? = nil, problems: [String]? = nil) {
            self.file = file
            self.source = source
            self.destination = destination
            self.outcome = outcome
            self.sha256 = sha256
            self.size = size
            self.copiedAt = UTCTime.iso8601(copiedAt)
            self.checks = checks
            self.version = version
            self.retainUntil = retainUntil.map(UTCTime.iso8601)
            self.problems = problems
        }

        /// A copy that is at the destination, verified.
        public var isGood: Bool { outcome != .failed }
    }

    public static func append(_ entry: Entry, store: ArchiveStore) throws {
        try JSONLines.append(entry, to: fileName, in: store)
    }

    /// Every entry of `store`'s log, in the log's order.
    public static func entries(store: ArchiveStore) -> [Entry] {
        JSONLines.read(Entry.self, from: fileName, in: store)
    }

    /// A line that stops tracking `destination` from `source` (`copy --forget`).
    public static func forget(destination: String, source: String, at time: Date) -> Entry {
        Entry(file: "", source: source, destination: destination, outcome: .forgotten, sha256: "", size: 0, copiedAt: time, checks: [])
    }

    /// The latest entry per archive file name and destination, in the log's order; a destination
    /// forgotten (`copy --forget`) drops out with every line about it before that.
    public static func latest(store: ArchiveStore) -> [Entry] {
        var index: [String: Int] = [:]
        var result: [Entry] = []
        for entry in entries(store: store) {
            if entry.outcome == .forgotten {
                let gone = ArchiveCopy.normalized(entry.destination)
                result.removeAll { ArchiveCopy.normalized($0.destination) == gone }
                index = Dictionary(uniqueKeysWithValues: result.enumerated().map { ($1.file + "\u{0}" + $1.destination, $0) })
                continue
            }
            let key = entry.file + "\u{0}" + entry.destination
            if let at = index[key] { result[at] = entry } else { index[key] = result.count; result.append(entry) }
        }
        return result
    }
}
