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

    /// The policy's buckets in use: name, how many to keep, and the bucket of a time (UTC).
    private var buckets: [(name: String, count: Int, key: (Date) -> String)] {
        var calendar = Calendar(identifier: .iso8601)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        let all: [(name: String, count: Int, key: (Date) -> String)] = [
            ("daily", daily, { let c = calendar.dateComponents([.year, .month, .day], from: $0); return "\(c.year!)-\(c.month!)-\(c.day!)" }),
            ("weekly", weekly, { let c = calendar.dateComponents([.yearForWeekOfYear, .weekOfYear], from: $0); return "\(c.yearForWeekOfYear!)-W\(c.weekOfYear!)" }),
            ("monthly", monthly, { let c = calendar.dateComponents([.year, .month], from: $0); return "\(c.year!)-\(c.month!)" }),
            ("yearly", yearly, { "\(calendar.component(.year, from: $0))" }),
        ]
        return all.filter { $0.count > 0 }
    }

    /// Whether two times fall in one bucket of the policy (the same UTC day under `--keep-daily`, …):
    /// the newer one kept is what stands in for the older one deleted.
    public func shareABucket(_ a: Date, _ b: Date) -> Bool {
        buckets.contains { $0.key(a) == $0.key(b) }
    }

    /// For each archive time (newest first), the reasons to keep it; empty means delete.
    public func reasons(for times: [Date]) -> [[String]] {
        var reasons = Array(repeating: [String](), count: times.count)
        for (index, _) in times.enumerated() where index < last { reasons[index].append("last") }
        for (name, count, key) in buckets {
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
        /// Why it is kept, or (never empty) why it is deleted.
        public var reasons: [String]
    }

    public let directory: ArchiveDirectory
    public let policy: RetentionPolicy
    /// SUSPECT archives, and those that did not verify (VERIFY-FAILED), are evidence of what happened
    /// to the data: kept, whatever the policy says, until they are older than `keepSuspectDays`
    /// (nil: kept for good) unless `deleteSuspect`.
    public var deleteSuspect = false
    public var keepSuspectDays: Int? = Pruner.defaultKeepSuspectDays
    public static let defaultKeepSuspectDays = 35

    public init(directory: ArchiveDirectory, policy: RetentionPolicy) {
        self.directory = directory
        self.policy = policy
    }

    /// The policy counts good archives only: readable, not marked suspect by `backup`, and verified
    /// (by an earlier `verify`, else verified now and recorded). So a run of bad backups never pushes
    /// the last good one out. The newest good archive is always kept; archives newer than it that are
    /// not good (a suspect backup) are kept too — nothing is thrown away before a good one follows;
    /// unreadable ones are kept and named for a person to look at.
    ///
    /// Before anything is deleted, the archives it relies on — the newest good one, and each kept
    /// good archive that stands in for one to delete (one of the last N, or in the same bucket) — are read again as
    /// they are now when their goodness came from an earlier `verify`: one whose bytes changed since
    /// is not good (recorded, so `list` marks it), and the plan is made again without it.
    public func plan() throws -> [Decision] { try planWithEvidence().plan }

    /// The plan, and what each archive was when it was planned (for `prunes.jsonl`).
    public func planWithEvidence() throws -> (plan: [Decision], evidence: [String: PruneLog.Archive]) {
        var entries = try directory.entries()
        var goodness = entries.map(directory.goodness)
        // Readable and not suspect, yet not good: its verify failed, earlier (VERIFY-FAILED) or just now.
        for index in entries.indices where goodness[index] == .notGood && entries[index].problem == nil && entries[index].suspect == nil {
            entries[index].verificationFailed = true
        }
        while true {
            let plan = try plan(entries: entries, goodness: goodness)
            let reliedOn = Self.reliedOn(plan, entries: entries, goodness: goodness, policy: policy)
            let changed = reliedOn.filter { !directory.confirm(entries[$0]) }
            if changed.isEmpty {
                let evidence = zip(entries, goodness).map { entry, goodness in
                    PruneLog.Archive(file: entry.file, time: UTCTime.iso8601(entry.time), sizeBytes: entry.sizeBytes, tables: entry.tables, rows: entry.rows,
                                     verified: goodness != .notGood, drilled: entry.drilled, suspect: entry.suspect, problem: entry.problem,
                                     verifyFailed: entry.verificationFailed)
                }
                return (plan, Dictionary(evidence.map { ($0.file, $0) }, uniquingKeysWith: { first, _ in first }))
            }
            for index in changed {
                goodness[index] = .notGood
                entries[index].verificationFailed = true
            }
            // Confirmed ones stay confirmed on the next round.
            for index in reliedOn where !changed.contains(index) { goodness[index] = .checkedNow }
        }
    }

    /// The good archives (by an earlier `verify`, not read in this run) that the deletions of `plan`
    /// rely on; empty when it deletes nothing.
    static func reliedOn(_ plan: [Decision], entries: [ArchiveDirectory.Entry], goodness: [ArchiveDirectory.Goodness], policy: RetentionPolicy) -> [Int] {
        let deleted = plan.indices.filter { !plan[$0].keep }
        guard !deleted.isEmpty, let newest = goodness.firstIndex(where: { $0 != .notGood }) else { return [] }
        return plan.indices.filter { index in
            guard goodness[index] == .recorded, plan[index].keep else { return false }
            // Kept as one of the last N, it stands in for every older one deleted.
            let last = plan[index].reasons.contains("last")
            return index == newest || deleted.contains { $0 > index && (last || policy.shareABucket(entries[$0].time, entries[index].time)) }
        }
    }

    private func plan(entries: [ArchiveDirectory.Entry], goodness: [ArchiveDirectory.Goodness]) throws -> [Decision] {
        var reasons = Array(repeating: [String](), count: entries.count)
        var good: [Int] = []
        for (index, entry) in entries.enumerated() {
            if entry.problem != nil {
                reasons[index].append("unreadable")
            } else if goodness[index] != .notGood {
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
        // A SUSPECT archive, or one that did not verify, is kept as evidence (the report shows what
        // happened that day) for --keep-suspect-days, unless --delete-suspect.
        let now = directory.clock.now()
        if !deleteSuspect {
            for (index, entry) in entries.enumerated() where reasons[index].isEmpty && (entry.suspect != nil || entry.verificationFailed) {
                if let days = keepSuspectDays, now.timeIntervalSince(entry.time) >= Double(days) * 86_400 { continue }
                reasons[index].append(entry.suspect != nil ? "suspect-kept-as-evidence" : "verify-failed-kept-as-evidence")
            }
        }
        // S3 Object Lock: what is still retained cannot be deleted (on a versioned bucket a delete
        // would only hide it behind a delete marker), so it stays and the plan says why.
        for (index, entry) in entries.enumerated() where reasons[index].isEmpty {
            if let until = try directory.store.retainedUntil(entry.file), until > now {
                reasons[index].append("locked-until-\(ISO8601DateFormatter().string(from: until))")
            }
        }
        return zip(entries, reasons).map { entry, reasons in
            Decision(file: entry.file, time: entry.time, keep: !reasons.isEmpty, reasons: reasons.isEmpty ? [deletion(of: entry)] : reasons)
        }
    }

    /// Why an archive nothing keeps is deleted: outside the policy, or (SUSPECT, VERIFY-FAILED) past the evidence rule.
    private func deletion(of entry: ArchiveDirectory.Entry) -> String {
        let what = entry.suspect != nil ? "suspect" : entry.verificationFailed ? "verify-failed" : nil
        guard let what else { return "outside-policy" }
        if deleteSuspect { return "\(what)-delete-suspect" }
        return keepSuspectDays.map { "\(what)-older-than-\($0)-days" } ?? "\(what)"
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
