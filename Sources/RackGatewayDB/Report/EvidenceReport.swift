import Foundation

/// `report`: what an auditor asks for under an availability control ("backups are taken nightly and
/// restores are tested", SOC 2 A1.2/A1.3), read from an archive directory: the archives (manifests,
/// or the summaries of encrypted ones), `verifications.jsonl`, `drills.jsonl`, `restores.jsonl` and
/// `prunes.jsonl`. It holds times, names, sizes, counts and check results: no password, no key,
/// no row content.
public struct EvidenceReport: Codable, Sendable {
    public struct Archive: Codable, Sendable {
        public var file: String
        public var time: String
        public var sizeBytes: Int
        public var tables: Int?
        public var rows: Int?
        public var verified: Bool
        public var drilled: Bool
        public var encrypted: Bool
        public var signed: Bool
        public var suspect: String?
        public var problem: String?
        /// Readable and not suspect: counts as the day's backup.
        public var good: Bool { problem == nil && suspect == nil }
    }

    public struct Day: Codable, Sendable {
        public var date: String
        public var archives: [Archive]
        /// No good archive that day (today only once it is over).
        public var missed: Bool
    }

    public struct Drill: Codable, Sendable {
        public struct Check: Codable, Sendable {
            public var name: String
            public var ok: Bool
            public var checked: Bool
            public var detail: String
        }
        public var startedAt: String
        public var archive: String
        public var ok: Bool
        public var error: String?
        public var rtoSeconds: Double
        public var rpoSeconds: Double
        public var checks: [Check]
    }

    public struct Restore: Codable, Sendable {
        public var startedAt: String?
        public var archive: String
        public var app: String
        public var mode: String
        public var dryRun: Bool
        public var ok: Bool
        public var error: String?
        public var durationSeconds: Double
    }

    public struct Retention: Codable, Sendable {
        public var policy: String
        public var lastPrunedAt: String
        public var kept: Int
        public var deleted: Int
    }

    public struct Summary: Codable, Sendable {
        public var days: Int
        public var daysWithBackup: Int
        public var missedDays: Int
        public var suspectArchives: Int
        public var drills: Int
        public var drillsFailed: Int
        public var medianRtoSeconds: Double?
        public var restores: Int
        public var text: String
    }

    public var generatedAt: String
    public var directory: String
    /// The window: from `since` (a UTC day) to `until` (now).
    public var since: String
    public var until: String
    /// The first day the window counts backups from: `since`, or the first archive's day when the
    /// history starts later.
    public var countedFrom: String
    public var days: [Day]
    public var drills: [Drill]
    public var restores: [Restore]
    public var retention: Retention?
    public var summary: Summary

    static func day(_ date: Date) -> String { String(UTCTime.iso8601(date).prefix(10)) }

    static func parseTime(_ text: String) -> Date? {
        let formatter = ISO8601DateFormatter()
        if let date = formatter.date(from: text) { return date }
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter.date(from: text)
    }

    /// The report of `directory` over the `seconds` before `now`.
    public static func make(directory: ArchiveDirectory, seconds: Double, now: Date) throws -> EvidenceReport {
        let store = directory.store
        let start = now.addingTimeInterval(-seconds)
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        let firstDay = calendar.startOfDay(for: start), today = calendar.startOfDay(for: now)

        let entries = try directory.entries().filter { $0.time >= firstDay && $0.time <= now }
        var byDay: [String: [Archive]] = [:]
        for entry in entries.sorted(by: { $0.time < $1.time }) {
            byDay[day(entry.time), default: []].append(Archive(
                file: entry.file, time: UTCTime.iso8601(entry.time), sizeBytes: entry.sizeBytes, tables: entry.tables, rows: entry.rows,
                verified: entry.verified, drilled: entry.drilled, encrypted: entry.encrypted, signed: entry.signed,
                suspect: entry.suspect, problem: entry.problem))
        }
        // Days are counted from the first archive when the history starts inside the window.
        let counted = max(firstDay, entries.map(\.time).min().map { calendar.startOfDay(for: $0) } ?? today)
        var days: [Day] = []
        var cursor = counted
        while cursor <= today {
            let key = day(cursor)
            let archives = byDay[key] ?? []
            let missed = !archives.contains(where: \.good) && cursor < today
            days.append(Day(date: key, archives: archives, missed: missed))
            cursor = calendar.date(byAdding: .day, value: 1, to: cursor)!
        }

        let drills = JSONLines.read(DrillReport.self, from: DrillLog.fileName, in: store).compactMap { report -> Drill? in
            guard let started = parseTime(report.startedAt), started >= start, started <= now else { return nil }
            // A `drill --latest` whose newest archive did not verify failed, whatever the older one's checks say.
            let newest = report.newestFailed.map { "the newest archive \($0.file) did not verify (\($0.problems.first ?? $0.kind.rawValue)); \(report.archive) was drilled instead" }
            return Drill(startedAt: UTCTime.iso8601(started), archive: report.archive, ok: report.ok && newest == nil, error: report.error ?? newest,
                         rtoSeconds: report.restoreSeconds, rpoSeconds: report.backupAgeSeconds,
                         checks: report.checks.map { Drill.Check(name: $0.name, ok: $0.ok, checked: $0.checked, detail: $0.detail) })
        }.sorted { $0.startedAt < $1.startedAt }
        let restores = JSONLines.read(PipelineReport.self, from: "restores.jsonl", in: store).compactMap { report -> Restore? in
            let started = report.startedAt.flatMap(parseTime)
            if let started, started < start || started > now { return nil }
            return Restore(startedAt: started.map(UTCTime.iso8601), archive: URL(fileURLWithPath: report.archive).lastPathComponent, app: report.app,
                           mode: report.mode, dryRun: report.dryRun, ok: report.ok, error: report.error, durationSeconds: report.durationSeconds)
        }
        let retention = PruneLog.latest(store: store).map {
            Retention(policy: $0.policy.options, lastPrunedAt: $0.prunedAt, kept: $0.kept, deleted: $0.deleted.count)
        }

        let withBackup = days.filter { $0.archives.contains(where: \.good) }.count
        let missed = days.filter(\.missed).count
        let suspect = days.flatMap(\.archives).filter { $0.suspect != nil }.count
        let failed = drills.filter { !$0.ok }.count
        let rtos = drills.filter(\.ok).map(\.rtoSeconds).sorted()
        let median = rtos.isEmpty ? nil : rtos.count % 2 == 1 ? rtos[rtos.count / 2] : (rtos[rtos.count / 2 - 1] + rtos[rtos.count / 2]) / 2
        var text = "\(Plural.of(withBackup, "nightly backup")) in \(Plural.of(days.count, "day")), \(missed) missed"
        if suspect > 0 { text += ", \(suspect) suspect" }
        text += "; \(Plural.of(drills.count, "drill")), " + (drills.isEmpty ? "none run" : failed == 0 ? "all passed" : "\(failed) failed")
        if let median { text += "; median RTO \(String(format: "%.1f", median)) s" }
        let done = restores.filter { !$0.dryRun }
        if !done.isEmpty { text += "; \(Plural.of(done.count, "restore")) (\(done.filter(\.ok).count) succeeded)" }
        let summary = Summary(days: days.count, daysWithBackup: withBackup, missedDays: missed, suspectArchives: suspect, drills: drills.count,
                              drillsFailed: failed, medianRtoSeconds: median, restores: done.count, text: text)
        return EvidenceReport(generatedAt: UTCTime.iso8601(now), directory: directory.directory, since: day(firstDay), until: UTCTime.iso8601(now),
                              countedFrom: day(counted), days: days, drills: drills, restores: restores, retention: retention, summary: summary)
    }
}
