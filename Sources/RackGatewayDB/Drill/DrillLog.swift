import Foundation

/// `drills.jsonl` in the archive directory: one line per drill (its report), which `list` reads to
/// mark the archives a drill read in full and passed (`drilled`) and those whose last drill failed
/// (`DRILL-FAILED`).
public enum DrillLog {
    public static let fileName = "drills.jsonl"

    struct Line: Decodable {
        struct Check: Decodable {
            /// null: not checked.
            var ok: Bool?
        }
        var archive: String
        var ok: Bool
        var error: String?
        var archiveBytes: Int?
        var checks: [Check]?
        var kind: DrillKind?
    }

    /// What the last drill of an archive that ran to its checks found.
    public struct Verdict: Sendable, Equatable {
        /// Every check passed, the restore among them: every member was read and matched.
        public var passed: Bool
        /// The archive's size when it was drilled (nil in lines older versions wrote).
        public var size: Int?
    }

    public static func append(_ report: DrillReport, store: ArchiveStore) throws {
        try JSONLines.append(report, to: fileName, in: store)
    }

    /// The last verdict on each archive (by file name), in the log's order. A drill that could not
    /// run to its checks (the server down, missing roles, stopped by a signal: `error` set) says
    /// nothing about the archive and is passed over, as is a drill of a database restored elsewhere
    /// (`drill --existing-url`: it never restored the archive). The verdict is the drilled archive's own: a
    /// `--latest` drill that drilled an older archive in place of a newest that failed is `ok: false`
    /// as a whole, but its checks are the older archive's.
    public static func lastVerdicts(store: ArchiveStore) -> [String: Verdict] {
        var verdicts: [String: Verdict] = [:]
        // A drill of a database restored elsewhere (`existing`) read only the archive's audit log.
        for line in JSONLines.read(Line.self, from: fileName, in: store) where line.error == nil && line.kind != .existing {
            let checks = line.checks ?? []
            let passed = checks.isEmpty ? line.ok : checks.allSatisfy { $0.ok ?? true }
            verdicts[URL(fileURLWithPath: line.archive).lastPathComponent] = Verdict(passed: passed, size: line.archiveBytes)
        }
        return verdicts
    }
}
