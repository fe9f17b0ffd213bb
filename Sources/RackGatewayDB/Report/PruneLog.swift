import Foundation

/// `prunes.jsonl` in the archive directory: one line per `prune` that deleted (or could have deleted)
/// anything, with the policy it ran with, so `report` can say which retention policy is in force.
public enum PruneLog {
    public static let fileName = "prunes.jsonl"

    public struct Entry: Codable, Sendable {
        public var prunedAt: String
        public var keepLast: Int
        public var keepDaily: Int
        public var keepWeekly: Int
        public var keepMonthly: Int
        public var keepYearly: Int
        public var kept: Int
        public var deleted: [String]

        public var policy: RetentionPolicy {
            RetentionPolicy(last: keepLast, daily: keepDaily, weekly: keepWeekly, monthly: keepMonthly, yearly: keepYearly)
        }
    }

    public static func record(policy: RetentionPolicy, kept: Int, deleted: [String], store: ArchiveStore, at date: Date) throws {
        let entry = Entry(prunedAt: UTCTime.iso8601(date), keepLast: policy.last, keepDaily: policy.daily, keepWeekly: policy.weekly,
                          keepMonthly: policy.monthly, keepYearly: policy.yearly, kept: kept, deleted: deleted)
        try JSONLines.append(entry, to: fileName, in: store)
    }

    public static func latest(store: ArchiveStore) -> Entry? { JSONLines.read(Entry.self, from: fileName, in: store).last }
}

extension RetentionPolicy {
    /// `--keep-daily 7 --keep-weekly 4`, the options prune takes for it.
    public var options: String {
        [("last", last), ("daily", daily), ("weekly", weekly), ("monthly", monthly), ("yearly", yearly)]
            .filter { $0.1 > 0 }.map { "--keep-\($0.0) \($0.1)" }.joined(separator: " ")
    }
}
