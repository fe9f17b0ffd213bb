import Foundation

/// restic-style retention: keep the newest N archives, and the newest archive of each of the last N
/// days, ISO weeks, months and years that have one (UTC). The newest archive that verifies is
/// always kept, whatever the policy says.
public struct RetentionPolicy: Sendable, Equatable {
    public var last = 0
    public var daily = 0
    public var weekly = 0
    public var monthly = 0
    public var yearly = 0

    public init(last: Int = 0, daily: Int = 0, weekly: Int = 0, monthly: Int = 0, yearly: Int = 0) {
        self.last = last
        self.daily = daily
        self.weekly = weekly
        self.monthly = monthly
        self.yearly = yearly
    }

    public var isEmpty: Bool { last + daily + weekly + monthly + yearly == 0 }

    /// For each archive time (newest first), the reasons to keep it; empty means delete.
    public func reasons(for times: [Date]) -> [[String]] {
        var calendar = Calendar(identifier: .iso8601)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        var reasons = Array(repeating: [String](), count: times.count)
        for (index, _) in times.enumerated() where index < last { reasons[index].append("last") }
        let buckets: [(String, Int, (Date) -> String)] = [
            ("daily", daily, { let c = calendar.dateComponents([.year, .month, .day], from: $0); return "\(c.year!)-\(c.month!)-\(c.day!)" }),
            ("weekly", weekly, { let c = calendar.dateComponents([.yearForWeekOfYear, .weekOfYear], from: $0); return "\(c.yearForWeekOfYear!)-W\(c.weekOfYear!)" }),
            ("monthly", monthly, { let c = calendar.dateComponents([.year, .month], from: $0); return "\(c.year!)-\(c.month!)" }),
            ("yearly", yearly, { "\(calendar.component(.year, from: $0))" }),
        ]
        for (name, count, key) in buckets where count > 0 {
            var seen = Set<String>()
            for (index, time) in times.enumerated() {
                let bucket = key(time)
                guard !seen.contains(bucket) else { continue }
                guard seen.count < count else { break }
                seen.insert(bucket)
                reasons[index].append(name)
            }
        }
        return reasons
    }
}

/// `prune`: what to delete under a policy, and deleting it (archive and sidecars together).
public struct Pruner {
    public struct Decision: Codable, Sendable {
        public var file: String
        public var time: Date
        public var keep: Bool
        public var reasons: [String]
    }

    public let directory: ArchiveDirectory
    public let policy: RetentionPolicy

    public init(directory: ArchiveDirectory, policy: RetentionPolicy) {
        self.directory = directory
        self.policy = policy
    }

    /// The policy counts good archives only: readable, not marked suspect by `backup`, and verified
    /// (by an earlier `verify`, else verified now and recorded). So a run of bad backups never pushes
    /// the last good one out. The newest good archive is always kept; archives newer than it that are
    /// not good (a suspect backup) are kept too — nothing is thrown away before a good one follows;
    /// unreadable ones are kept and named for a person to look at.
    public func plan() throws -> [Decision] {
        let entries = try directory.entries()
        var reasons = Array(repeating: [String](), count: entries.count)
        var good: [Int] = []
        for (index, entry) in entries.enumerated() {
            if entry.problem != nil {
                reasons[index].append("unreadable")
            } else if directory.isGood(entry) {
                good.append(index)
            }
        }
        for (slot, keep) in policy.reasons(for: good.map { entries[$0].time }).enumerated() {
            reasons[good[slot]] += keep
        }
        if let newest = good.first {
            reasons[newest].append("newest-verified")
            for index in 0..<newest where reasons[index].isEmpty {
                reasons[index].append(entries[index].suspect != nil ? "suspect-newer-than-newest-good" : "newer-than-newest-good")
            }
        } else {
            // No good archive at all: delete nothing.
            for index in entries.indices where reasons[index].isEmpty { reasons[index].append("no-good-archive-yet") }
        }
        // S3 Object Lock: what is still retained cannot be deleted (on a versioned bucket a delete
        // would only hide it behind a delete marker), so it stays and the plan says why.
        let now = directory.clock.now()
        for (index, entry) in entries.enumerated() where reasons[index].isEmpty {
            if let until = try directory.store.retainedUntil(entry.file), until > now {
                reasons[index].append("locked-until-\(ISO8601DateFormatter().string(from: until))")
            }
        }
        return zip(entries, reasons).map { Decision(file: $0.file, time: $0.time, keep: !$1.isEmpty, reasons: $1) }
    }

    /// Delete what the plan does not keep; returns the deleted file names.
    public func apply(_ plan: [Decision]) throws -> [String] {
        var deleted: [String] = []
        for decision in plan where !decision.keep {
            // The archive first: a sidecar without its archive is ignored, the reverse would look unverified.
            try directory.store.delete(decision.file)
            for sidecar in ArchiveName.sidecars(of: decision.file) { try directory.store.delete(sidecar) }
            deleted.append(decision.file)
        }
        try directory.store.syncDirectory()
        return deleted
    }
}
