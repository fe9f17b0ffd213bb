import Foundation

/// `verifications.jsonl` in the archive directory: one line per `verify` run, so `list` can say
/// which archives verified (and `prune` which are known good) without reading them again. A line of
/// `verify --sample` (`kind: "sample"`) records the members it re-read: its pass is no verification
/// (it read part of the file; its `sha256` is empty, so that older versions do not trust it either),
/// its failure is (the archive is damaged).
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
        /// `sample` for a line of `verify --sample`; absent for a full verify.
        public var kind: String? = nil
        /// A sample's PERCENT, the seed its choice was made with (given or drawn), the members it
        /// read (`SampleVerifier.MemberSet`: `0-3,7,12-15`), their stored bytes, and the share of the
        /// data members' bytes read at this version by it and the samples before it (0 to 100).
        public var percent: Double? = nil
        public var seed: UInt64? = nil
        public var members: String? = nil
        public var bytesRead: Int? = nil
        public var coveredPercent: Double? = nil
        /// The members a failed sample found damaged (`MemberSet`), which the next sample of the file
        /// re-reads first; absent when it passed, for a full verify, and in older logs.
        public var failedMembers: String? = nil

        public var isSample: Bool { kind == Self.sampleKind }
        static let sampleKind = "sample"
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
        try recordFailure(name, size: size, problems: ["it could not be opened as an archive"], store: store, at: time)
    }

    /// A failure found by another command than verify (`copy` reading a source that does not match
    /// its `.sha256`): recorded as a failed verification, so that `list` marks it VERIFY-FAILED.
    public static func recordFailure(_ name: String, size: Int, problems: [String], store: ArchiveStore, at time: Date) throws {
        try append(name, sha256: "", size: size, ok: false, store: store, at: time, problems: problems)
    }

    /// A sample of the archive `name` (`verify --sample`), at the file's `version` when it was opened.
    public static func recordSample(_ report: SampleVerifier.Report, version: String?, store: ArchiveStore, at time: Date) throws {
        var entry = Entry(file: URL(fileURLWithPath: report.file).lastPathComponent, sha256: "", size: report.fileSize, ok: report.ok,
                          verifiedAt: ISO8601DateFormatter().string(from: time), version: version,
                          problems: report.ok ? nil : Array(report.problems.prefix(3)))
        entry.kind = Entry.sampleKind
        (entry.percent, entry.seed, entry.members) = (report.percent, report.seed, report.membersRead)
        (entry.bytesRead, entry.coveredPercent) = (report.bytesRead, report.coveredPercent)
        entry.failedMembers = report.failedMembers.isEmpty ? nil : report.failedMembers
        try JSONLines.append(entry, to: fileName, in: store)
    }

    /// One line for the file `name` (its last path component), with its version as it is now.
    private static func append(_ name: String, sha256: String, size: Int, ok: Bool, store: ArchiveStore, at time: Date, problems: [String]?) throws {
        let file = URL(fileURLWithPath: name).lastPathComponent
        let entry = Entry(file: file, sha256: sha256, size: size, ok: ok,
                          verifiedAt: ISO8601DateFormatter().string(from: time), version: (try? store.version(file)) ?? nil, problems: problems)
        try JSONLines.append(entry, to: fileName, in: store)
    }

    /// Every line, oldest first.
    public static func lines(store: ArchiveStore) -> [Entry] {
        JSONLines.read(Entry.self, from: fileName, in: store)
    }

    /// The latest verdict per file name: a full verify's line, or a sample's that failed (a sample
    /// that passed read part of the file: it neither verifies it nor clears a failure).
    public static func load(store: ArchiveStore) -> [String: Entry] { verdicts(lines(store: store)) }

    public static func verdicts(_ lines: [Entry]) -> [String: Entry] {
        var result: [String: Entry] = [:]
        for entry in lines where !(entry.isSample && entry.ok) { result[entry.file] = entry }
        return result
    }

    /// The failed verdict (of `verdicts`) that still stands for the file `file` as it is now (`size`,
    /// `version`): the file is as large as the one that failed, and the same file when both versions
    /// are known (one written over it since, e.g. by `copy` replacing a damaged copy, is another
    /// file). Only a passing full verify of it, or another version of the file, ends it: a passing
    /// sample read part of it. nil when none stands.
    public static func standingFailure(_ verdicts: [String: Entry], file: String, size: Int, version: String?) -> Entry? {
        guard let check = verdicts[file], !check.ok, check.size == size,
              check.version == nil || version == nil || check.version == version else { return nil }
        return check
    }

    /// The latest sample per file name.
    public static func latestSamples(_ lines: [Entry]) -> [String: Entry] {
        var result: [String: Entry] = [:]
        for entry in lines where entry.isSample { result[entry.file] = entry }
        return result
    }
}
