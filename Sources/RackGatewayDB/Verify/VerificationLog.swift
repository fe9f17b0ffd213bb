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
        /// The file's `ArchiveStore.version` when it was verified: `list` and `prune` trust an `ok`
        /// only while the file's version is still this (absent in older logs: never trusted).
        public var version: String? = nil
        /// What a failed verification found (its first problems; absent when it passed, and in older logs).
        public var problems: [String]? = nil
    }

    /// `report`'s outcome, verified at `time` (the run's clock).
    public static func record(_ report: ArchiveVerifier.Report, store: ArchiveStore, at time: Date) throws {
        try append(report.file, sha256: report.sha256, size: report.fileSize, ok: report.ok, store: store, at: time,
                   problems: report.ok ? nil : Array(report.problems.prefix(3)))
    }

    /// An archive that could not even be opened (truncated, its trailer or manifest unreadable, not
    /// an archive at all) failed verification too: recorded so that `list` marks it VERIFY-FAILED.
    public static func recordUnreadable(_ name: String, store: ArchiveStore, at time: Date) throws {
        guard let size = try store.size(URL(fileURLWithPath: name).lastPathComponent) else { return }
        try append(name, sha256: "", size: size, ok: false, store: store, at: time, problems: ["it could not be opened as an archive"])
    }

    /// One line for the file `name` (its last path component), with its version as it is now.
    private static func append(_ name: String, sha256: String, size: Int, ok: Bool, store: ArchiveStore, at time: Date, problems: [String]?) throws {
        let file = URL(fileURLWithPath: name).lastPathComponent
        let entry = Entry(file: file, sha256: sha256, size: size, ok: ok,
                          verifiedAt: ISO8601DateFormatter().string(from: time), version: (try? store.version(file)) ?? nil, problems: problems)
        try JSONLines.append(entry, to: fileName, in: store)
    }

    /// The latest entry per file name.
    public static func load(store: ArchiveStore) -> [String: Entry] {
        var result: [String: Entry] = [:]
        for entry in JSONLines.read(Entry.self, from: fileName, in: store) { result[entry.file] = entry }
        return result
    }
}
