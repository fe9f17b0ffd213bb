import Foundation

/// `prunes.jsonl` in the archive directory: one line per `prune` that deleted (or could have deleted)
/// anything, with the policy it ran with, so `report` can say which retention policy is in force,
/// and each deleted archive as it was (its time, tables, rows, verified, drilled, suspect, verify failed), so `report` calls its
/// day "backed up, removed by retention" and not missed.
public enum PruneLog {
    public static let fileName = "prunes.jsonl"

    /// A deleted archive as prune saw it before deleting it.
    public struct Archive: Codable, Sendable, Equatable {
        public var file: String
        public var time: String
        public var sizeBytes: Int
        public var tables: Int?
        public var rows: Int?
        /// Good to prune: readable, not suspect, and verified (by an earlier `verify`, or in this run).
        public var verified: Bool
        /// Its last drill passed.
        public var drilled: Bool
        public var suspect: String?
        public var problem: String?
        /// Its last `verify` failed, or it failed the one prune ran (`list`'s VERIFY-FAILED; absent in lines of older versions).
        public var verifyFailed: Bool?
        public init(file: String, time: String, sizeBytes: Int, tables: Int? = nil, rows: Int?, verified: Bool, drilled: Bool, suspect: String?, problem: String?,
                    verifyFailed: Bool? = nil) {
            self.file = file
            self.time = time
            self.sizeBytes = sizeBytes
            self.tables = tables
            self.rows = rows
            self.verifyFailed = verifyFailed
            self.verified = verified
            self.drilled = drilled
            self.suspect = suspect
            self.problem = problem
        }
    }

    public struct Entry: Codable, Sendable {
        public var prunedAt: String
        public var keepLast: Int
        public var keepDaily: Int
        public var keepWeekly: Int
        public var keepMonthly: Int
        public var keepYearly: Int
        public var kept: Int
        public var deleted: [String]
        /// Each deleted archive as it was (absent in lines of older versions).
        public var deletedArchives: [Archive]? = nil
        /// `--delete-suspect`, and `--keep-suspect-days` (absent in lines of older versions, and
        /// with --delete-suspect).
        public var deleteSuspect: Bool? = nil
        public var keepSuspectDays: Int? = nil

        public var policy: RetentionPolicy {
            RetentionPolicy(last: keepLast, daily: keepDaily, weekly: keepWeekly, monthly: keepMonthly, yearly: keepYearly)
        }
    }

    public static func record(policy: RetentionPolicy, kept: Int, deleted: [String], store: ArchiveStore, at date: Date,
                              archives: [Archive]? = nil, deleteSuspect: Bool? = nil, keepSuspectDays: Int? = nil) throws {
        let entry = Entry(prunedAt: UTCTime.iso8601(date), keepLast: policy.last, keepDaily: policy.daily, keepWeekly: policy.weekly,
                          keepMonthly: policy.monthly, keepYearly: policy.yearly, kept: kept, deleted: deleted, deletedArchives: archives,
                          deleteSuspect: deleteSuspect, keepSuspectDays: keepSuspectDays)
        try JSONLines.append(entry, to: fileName, in: store)
    }

    public static func all(store: ArchiveStore) -> [Entry] { JSONLines.read(Entry.self, from: fileName, in: store) }

    public static func latest(store: ArchiveStore) -> Entry? { JSONLines.read(Entry.self, from: fileName, in: store).last }
}

extension PruneLog.Entry {
    /// The policy as prune's options, the suspect ones included when recorded.
    public var options: String {
        var text = policy.options
        if deleteSuspect == true { text += " --delete-suspect" } else if let keepSuspectDays { text += " --keep-suspect-days \(keepSuspectDays)" }
        return text
    }
}

extension RetentionPolicy {
    /// `--keep-daily 7 --keep-weekly 4`, the options prune takes for it.
    public var options: String {
        [("last", last), ("daily", daily), ("weekly", weekly), ("monthly", monthly), ("yearly", yearly)]
            .filter { $0.1 > 0 }.map { "--keep-\($0.0) \($0.1)" }.joined(separator: " ")
    }
}
