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
        /// Its last `verify` failed (`list`'s VERIFY-FAILED).
        public var verifyFailed: Bool
        /// When that verify ran and what it found (`verifications.jsonl`; no problems in older logs).
        public var verifyFailedAt: String? = nil
        public var verifyProblems: [String]? = nil
        /// Its last `verify --sample` of the file as it is now, and the share of its data re-read
        /// since the file last changed (`ArchiveDirectory.Entry.sampledAt`, `sampledPercent`).
        public var sampledAt: String? = nil
        public var sampledPercent: Double? = nil
        /// Readable, not suspect, its last verify not failed (`ArchiveDirectory.Entry.listedNotGood`,
        /// what `check` and `list` go by): counts as the day's backup.
        public var good: Bool
        /// Its copies as `copies.jsonl` here records them (`list`'s COPIES); absent when the log has none.
        public var copies: [ArchiveCopy]? = nil
    }

    /// Per other location in `copies.jsonl`: how many of the period's archives (present here) have a
    /// verified copy there, or are verified copies of it, and how many copies failed.
    public struct CopyTotals: Codable, Sendable {
        public var direction: ArchiveCopy.Direction
        public var location: String
        public var verified: Int
        public var failed: Int
        /// Copies no longer the ones verified (ArchiveCopy.State.changed).
        public var changed: Int
        /// The newest archive with a verified copy, and when that copy was made.
        public var newestArchive: String?
        public var newestCopiedAt: String?
    }

    /// An archive taken that day and deleted by `prune` since (from `prunes.jsonl`).
    public struct Pruned: Codable, Sendable {
        public var file: String
        public var time: String
        public var removedAt: String
        /// Its size and rows, and its state, when prune deleted it (absent in lines of older versions).
        public var sizeBytes: Int?
        public var tables: Int?
        public var rows: Int?
        public var verified: Bool?
        public var drilled: Bool?
        public var suspect: String?
        public var problem: String?
        /// Its last verify had failed when prune deleted it.
        public var verifyFailed: Bool?
        /// Not suspect, readable and its verify not failed (as far as prune recorded): the day's backup.
        public var good: Bool { suspect == nil && problem == nil && verifyFailed != true }
        /// What it was, said on its day: "backed up", "did not verify", "SUSPECT", "UNREADABLE".
        public var what: String {
            problem != nil ? "UNREADABLE" : verifyFailed == true ? "did not verify" : suspect != nil ? "SUSPECT" : "backed up"
        }
    }

    /// What a day's record says.
    public enum Status: String, Codable, Sendable {
        /// A good archive is in the directory.
        case backedUp = "backed_up"
        /// A good archive was taken and later deleted by prune.
        case removedByRetention = "removed_by_retention"
        /// Only SUSPECT archives were taken.
        case suspect
        /// Only archives whose `verify` failed (`list`'s VERIFY-FAILED), and perhaps SUSPECT ones.
        case verifyFailed = "verify_failed"
        /// Only archives that do not read.
        case unreadable
        /// No archive was taken (and the day is over).
        case missed
        /// Before the first record of this directory (its first archive, present or pruned).
        case noRecord = "no_record"
        /// Today, nothing yet.
        case pending
    }

    public struct Day: Codable, Sendable {
        public var date: String
        public var status: Status
        public var archives: [Archive]
        public var pruned: [Pruned]
        /// No archive taken that day (today only once it is over).
        public var missed: Bool { status == .missed }
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
        /// How old the drilled backup was when the drill ran (not the RPO: see `Recovery`).
        public var backupAgeSeconds: Double
        public var checks: [Check]
        /// The drilled archive's SUSPECT mark (its backup's shrink check), if any.
        public var suspect: String?
        /// `drill --latest`: the newest archive did not verify (this one, an older one, was drilled
        /// in its place): its file and why. The drill failed whatever the checks below say.
        public var newestFailed: String?
        public var newestFailedReason: String?
        /// `existing`: `drill --existing-url` checked a database restored elsewhere (`database`);
        /// it measured no RTO. Nil for a drill that restored the archive itself.
        public var kind: DrillKind?
        public var database: String?
        /// A drill that restored its archive and so measured an RTO.
        public var restored: Bool { kind != .existing }
        /// A drill of a database restored elsewhere without an archive: its audit history was not
        /// checked, so a pass is partial.
        public var partial: Bool { kind == .existing && archive.isEmpty }
    }

    public struct Restore: Codable, Sendable {
        public var startedAt: String?
        public var archive: String
        /// The Convox app (the pipeline); absent for a plain restore.
        public var app: String?
        /// A plain restore's target, without the password.
        public var target: String?
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

    /// The recovery point: data written since the last good backup is what a restore loses. Its
    /// worst case in the period is the largest gap between consecutive good backups (present or
    /// removed by retention); `currentGapSeconds` is the gap now.
    public struct Recovery: Codable, Sendable {
        public var largestGapSeconds: Double?
        public var largestGapFrom: String?
        public var largestGapTo: String?
        public var lastGoodBackup: String?
        public var currentGapSeconds: Double?
        /// The gap now is over `overdueSeconds`: the nightly backup is overdue.
        public var overdue: Bool { (currentGapSeconds ?? .infinity) > EvidenceReport.overdueSeconds }
    }

    /// 26 hours: the report does not know the backup schedule, so it flags the gap now against the
    /// threshold the README's alert rules use for nightly backups (a day and two hours of slack).
    public static let overdueSeconds = 26.0 * 3600

    /// The database the archives are of, from the newest readable archive's manifest (the summary
    /// of an encrypted one gives the name only).
    public struct Source: Codable, Sendable {
        /// `host:port` of the server (absent for archives of older versions and encrypted ones read without the identity).
        public var host: String?
        public var database: String
        public var serverVersion: String?
        /// The version of rack-gateway-db that wrote that archive.
        public var archiveToolVersion: String?
        public var archive: String
    }

    public struct Summary: Codable, Sendable {
        public var days: Int
        public var daysWithBackup: Int
        /// Of `daysWithBackup`, those whose archive prune has deleted since.
        public var daysRemovedByRetention: Int
        public var missedDays: Int
        /// Days whose only archives do not read or did not verify (taken, so not missed, but no backup).
        public var unreadableDays: Int
        /// Of `unreadableDays`, those whose archives read but failed their `verify`.
        public var verifyFailedDays: Int
        public var noRecordDays: Int
        public var suspectArchives: Int
        public var drills: Int
        public var drillsFailed: Int
        public var medianRtoSeconds: Double?
        public var lastSuccessfulDrill: String?
        public var lastSuccessfulDrillRtoSeconds: Double?
        public var largestGapSeconds: Double?
        public var currentGapSeconds: Double?
        public var restores: Int
        public var text: String
    }

    public var generatedAt: String
    /// The rack-gateway-db that made the report.
    public var toolVersion: String
    public var directory: String
    public var source: Source?
    /// The period asked for: from `since` (a UTC day) to `until` (now).
    public var since: String
    public var until: String
    /// The day of this directory's first record (its oldest archive, present or pruned); days
    /// before it are `no_record`. nil when there is none.
    public var firstRecord: String?
    public var days: [Day]
    public var drills: [Drill]
    public var restores: [Restore]
    public var retention: Retention?
    public var recovery: Recovery
    /// What copies.jsonl records (absent when it records nothing).
    public var copies: [CopyTotals]? = nil
    public var summary: Summary

    static func day(_ date: Date) -> String { String(UTCTime.iso8601(date).prefix(10)) }

    static func parseTime(_ text: String) -> Date? {
        let formatter = ISO8601DateFormatter()
        if let date = formatter.date(from: text) { return date }
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter.date(from: text)
    }

    /// `2026-11-24 03:15 UTC`: the one way the report's renderings write a time (a day: `2026-11-24`).
    public static func display(_ iso: String) -> String {
        guard let date = parseTime(iso) else { return iso }
        return display(date)
    }

    public static func display(_ date: Date) -> String {
        let iso = UTCTime.iso8601(date)
        return String(iso.prefix(10)) + " " + String(iso.dropFirst(11).prefix(5)) + " UTC"
    }

    /// The report of `directory` over the `seconds` before `now`.
    public static func make(directory: ArchiveDirectory, seconds: Double, now: Date) throws -> EvidenceReport {
        let store = directory.store
        let start = now.addingTimeInterval(-seconds)
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        let firstDay = calendar.startOfDay(for: start), today = calendar.startOfDay(for: now)

        let all = try directory.entries()
        let entries = all.filter { $0.time >= firstDay && $0.time <= now }
        var byDay: [String: [Archive]] = [:]
        for entry in entries.sorted(by: { $0.time < $1.time }) {
            byDay[day(entry.time), default: []].append(Archive(
                file: entry.file, time: UTCTime.iso8601(entry.time), sizeBytes: entry.sizeBytes, tables: entry.tables, rows: entry.rows,
                verified: entry.verified, drilled: entry.drilled, encrypted: entry.encrypted, signed: entry.signed,
                suspect: entry.suspect, problem: entry.problem, verifyFailed: entry.verificationFailed,
                verifyFailedAt: entry.verificationFailedAt, verifyProblems: entry.verificationProblems,
                sampledAt: entry.sampledAt, sampledPercent: entry.sampledPercent, good: !entry.listedNotGood,
                copies: entry.copies))
        }
        // What prune deleted, by the day it was taken (an archive still present is not pruned).
        let present = Set(all.map(\.file))
        var pruned: [(time: Date, record: Pruned)] = []
        var seen = Set<String>()
        for prune in PruneLog.all(store: store) {
            let details = Dictionary((prune.deletedArchives ?? []).map { ($0.file, $0) }, uniquingKeysWith: { first, _ in first })
            for file in prune.deleted where !present.contains(file) && !seen.contains(file) {
                guard let time = ArchiveName.timestamp(of: file) ?? details[file].flatMap({ parseTime($0.time) }) else { continue }
                seen.insert(file)
                let detail = details[file]
                pruned.append((time, Pruned(file: file, time: UTCTime.iso8601(time), removedAt: prune.prunedAt, sizeBytes: detail?.sizeBytes,
                                            tables: detail?.tables, rows: detail?.rows, verified: detail?.verified, drilled: detail?.drilled,
                                            suspect: detail?.suspect, problem: detail?.problem, verifyFailed: detail?.verifyFailed)))
            }
        }
        var prunedByDay: [String: [Pruned]] = [:]
        for item in pruned.sorted(by: { $0.time < $1.time }) where item.time >= firstDay && item.time <= now {
            prunedByDay[day(item.time), default: []].append(item.record)
        }
        // The first record: the oldest archive ever taken here that anything still tells of.
        let firstRecordTime = (all.map(\.time) + pruned.map(\.time)).min()
        let firstRecordDay = firstRecordTime.map { calendar.startOfDay(for: $0) }
        var days: [Day] = []
        var cursor = firstDay
        while cursor <= today {
            let key = day(cursor)
            let archives = byDay[key] ?? [], removed = prunedByDay[key] ?? []
            let status: Status
            if archives.contains(where: \.good) {
                status = .backedUp
            } else if removed.contains(where: \.good) {
                status = .removedByRetention
            } else if archives.contains(where: { $0.verifyFailed && $0.problem == nil }) || removed.contains(where: { $0.verifyFailed == true && $0.problem == nil }) {
                status = .verifyFailed
            } else if archives.contains(where: { $0.suspect != nil }) || removed.contains(where: { $0.suspect != nil }) {
                status = .suspect
            } else if !archives.isEmpty || !removed.isEmpty {
                status = .unreadable
            } else if firstRecordDay.map({ cursor < $0 }) ?? true {
                status = .noRecord
            } else {
                status = cursor < today ? .missed : .pending
            }
            days.append(Day(date: key, status: status, archives: archives, pruned: removed))
            cursor = calendar.date(byAdding: .day, value: 1, to: cursor)!
        }

        // The recovery point: gaps between consecutive good backups in the period, and now.
        let goodTimes = (all.filter { !$0.listedNotGood }.map(\.time) + pruned.filter { $0.record.good }.map(\.time)).sorted()
        var recovery = Recovery()
        let inPeriod = goodTimes.filter { $0 >= firstDay && $0 <= now }
        for (older, newer) in zip(inPeriod, inPeriod.dropFirst()) where newer.timeIntervalSince(older) > (recovery.largestGapSeconds ?? -1) {
            recovery.largestGapSeconds = newer.timeIntervalSince(older)
            recovery.largestGapFrom = UTCTime.iso8601(older)
            recovery.largestGapTo = UTCTime.iso8601(newer)
        }
        if let last = goodTimes.last(where: { $0 <= now }) {
            recovery.lastGoodBackup = UTCTime.iso8601(last)
            recovery.currentGapSeconds = now.timeIntervalSince(last)
        }

        let drills = JSONLines.read(DrillReport.self, from: DrillLog.fileName, in: store).compactMap { report -> Drill? in
            guard let started = parseTime(report.startedAt), started >= start, started <= now else { return nil }
            // A `drill --latest` whose newest archive did not verify failed, whatever the older one's checks say.
            let newest = report.newestFailed.map { "the newest archive \($0.file) did not verify (\($0.problems.first ?? $0.kind.rawValue)); \(report.archive) was drilled instead" }
            return Drill(startedAt: UTCTime.iso8601(started), archive: report.archive, ok: report.ok && newest == nil, error: report.error ?? newest,
                         rtoSeconds: report.restoreSeconds, backupAgeSeconds: report.backupAgeSeconds,
                         checks: report.checks.map { Drill.Check(name: $0.name, ok: $0.ok, checked: $0.checked, detail: $0.detail) },
                         suspect: report.suspect, newestFailed: report.newestFailed?.file,
                         newestFailedReason: report.newestFailed.map { $0.problems.first ?? $0.kind.rawValue },
                         kind: report.kind, database: report.database?.description)
        }.sorted { $0.startedAt < $1.startedAt }
        let restores = RestoreLog.read(store: store).compactMap { line -> Restore? in
            let started = line.startedAt.flatMap(parseTime)
            if let started, started < start || started > now { return nil }
            return Restore(startedAt: started.map(UTCTime.iso8601), archive: URL(fileURLWithPath: line.archive).lastPathComponent, app: line.app,
                           target: line.target, mode: line.mode, dryRun: line.dryRun, ok: line.ok, error: line.error, durationSeconds: line.durationSeconds)
        }
        let retention = PruneLog.latest(store: store).map {
            Retention(policy: $0.options, lastPrunedAt: $0.prunedAt, kept: $0.kept, deleted: $0.deleted.count)
        }
        let source = all.first { $0.problem == nil }.flatMap { entry -> Source? in
            let location = directory.location(of: entry)
            if let manifest = try? location.reader().manifest {
                return Source(host: manifest.sourceHost, database: manifest.database, serverVersion: manifest.serverVersion, archiveToolVersion: manifest.toolVersion, archive: entry.file)
            }
            return (try? location.summary(storedSize: entry.sizeBytes)).map { Source(host: nil, database: $0.database, archive: entry.file) }
        }

        let withBackup = days.filter { $0.status == .backedUp || $0.status == .removedByRetention }.count
        let removed = days.filter { $0.status == .removedByRetention }.count
        let missed = days.filter(\.missed).count
        let noRecord = days.filter { $0.status == .noRecord }.count
        let suspect = days.flatMap(\.archives).filter { $0.suspect != nil }.count + days.flatMap(\.pruned).filter { $0.suspect != nil }.count
        let failed = drills.filter { !$0.ok }.count
        // RTOs of the drills that restored: a drill of a database restored elsewhere measured none.
        let rtos = drills.filter { $0.ok && $0.restored }.map(\.rtoSeconds).sorted()
        let median = rtos.isEmpty ? nil : rtos.count % 2 == 1 ? rtos[rtos.count / 2] : (rtos[rtos.count / 2 - 1] + rtos[rtos.count / 2]) / 2
        let lastPassed = drills.last { $0.ok && $0.restored }
        var text = "\(withBackup) of \(Plural.of(days.count, "day")) backed up"
        if removed > 0 { text += " (\(removed) removed by retention since)" }
        text += ", \(missed) missed"
        // Archives, not days: a SUSPECT archive may share its day with a good one.
        if suspect > 0 { text += ", \(Plural.of(suspect, "suspect archive"))" }
        let verifyFailed = days.filter { $0.status == .verifyFailed }.count
        let unreadable = days.filter { $0.status == .unreadable }.count + verifyFailed
        if verifyFailed > 0 { text += ", \(Plural.of(verifyFailed, "day")) whose archive did not verify" }
        if unreadable > verifyFailed { text += ", \(Plural.of(unreadable - verifyFailed, "day")) with only an unreadable archive" }
        if noRecord > 0 { text += ", \(noRecord) before the first record" }
        text += recovery.largestGapSeconds.map { "; RPO (largest gap between good backups) \(ProgressDisplay.duration($0))" }
            ?? "; RPO not measurable (fewer than two good backups in the period)"
        text += recovery.currentGapSeconds.map { ", \(ProgressDisplay.duration($0)) since the last good backup" } ?? ", no good backup at all"
        if recovery.overdue && recovery.currentGapSeconds != nil { text += " (OVERDUE: over 26h, the alert threshold for nightly backups)" }
        text += "; \(Plural.of(drills.count, "drill")), " + (drills.isEmpty ? "none run" : failed == 0 ? "all passed" : "\(failed) failed")
        let existing = drills.filter { !$0.restored }
        let partial = existing.filter { $0.ok && $0.partial }.count
        if !existing.isEmpty { text += " (\(existing.count) of a database restored elsewhere, \(existing.filter(\.ok).count) passed" + (partial > 0 ? ", \(partial) of them partial: no archive" : "") + ")" }
        if let lastPassed { text += "; last successful drill: \(display(lastPassed.startedAt)), RTO \(String(format: "%.1f", lastPassed.rtoSeconds)) s" }
        if let median { text += "; median RTO \(String(format: "%.1f", median)) s" }
        let done = restores.filter { !$0.dryRun }
        if !done.isEmpty { text += "; \(Plural.of(done.count, "restore")) (\(done.filter(\.ok).count) succeeded)" }
        let copies = entries.contains { $0.copies != nil } ? Self.copyTotals(days.flatMap(\.archives)) : nil
        for total in copies ?? [] {
            let archives = days.flatMap(\.archives).count
            text += total.direction == .to ? "; copies to \(total.location): \(total.verified) of \(Plural.of(archives, "archive")) verified there"
                : "; \(total.verified) of \(Plural.of(archives, "archive")) verified copies of \(total.location)"
            if total.failed > 0 { text += ", \(total.failed) FAILED" }
            if total.changed > 0 { text += ", \(total.changed) CHANGED since" }
        }
        let summary = Summary(days: days.count, daysWithBackup: withBackup, daysRemovedByRetention: removed, missedDays: missed, unreadableDays: unreadable, verifyFailedDays: verifyFailed, noRecordDays: noRecord,
                              suspectArchives: suspect, drills: drills.count, drillsFailed: failed, medianRtoSeconds: median,
                              lastSuccessfulDrill: lastPassed?.startedAt, lastSuccessfulDrillRtoSeconds: lastPassed?.rtoSeconds,
                              largestGapSeconds: recovery.largestGapSeconds, currentGapSeconds: recovery.currentGapSeconds, restores: done.count, text: text)
        return EvidenceReport(generatedAt: UTCTime.iso8601(now), toolVersion: RackGatewayDB.toolVersion, directory: directory.directory, source: source,
                              since: day(firstDay), until: UTCTime.iso8601(now), firstRecord: firstRecordDay.map(day), days: days, drills: drills,
                              restores: restores, retention: retention, recovery: recovery, copies: copies, summary: summary)
    }

    /// The totals per other location of `archives`' copies, destinations first, by name.
    static func copyTotals(_ archives: [Archive]) -> [CopyTotals] {
        let all = archives.sorted { $0.time > $1.time }.flatMap { archive in (archive.copies ?? []).map { (archive: archive, copy: $0) } }
        var keys: [(ArchiveCopy.Direction, String)] = []
        for item in all where !keys.contains(where: { $0 == (item.copy.direction, item.copy.location) }) { keys.append((item.copy.direction, item.copy.location)) }
        return keys.sorted { ($0.0 == .to ? 0 : 1, $0.1) < ($1.0 == .to ? 0 : 1, $1.1) }.map { direction, location in
            let these = all.filter { $0.copy.direction == direction && $0.copy.location == location }
            let newest = these.first { $0.copy.good }
            return CopyTotals(direction: direction, location: location, verified: these.filter(\.copy.good).count,
                              failed: these.filter { $0.copy.state == .failed }.count, changed: these.filter { $0.copy.state == .changed }.count,
                              newestArchive: newest?.archive.file, newestCopiedAt: newest?.copy.copiedAt)
        }
    }
}
