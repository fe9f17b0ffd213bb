import Foundation
import Testing
import TestSupport
@testable import RackGatewayDB

/// Issue 30, items 3 and 4: `prune` keeps SUSPECT archives as evidence (until `--delete-suspect`, or
/// older than `--keep-suspect-days`), records what it deletes with its state in `prunes.jsonl`, and
/// a plain `restore` goes into `restores.jsonl` as the pipeline's do.
@Suite("retention keeps evidence")
struct EvidenceRetentionTests {
    static func archives(_ directory: String) throws -> Set<String> {
        Set(try FileManager.default.contentsOfDirectory(atPath: directory).filter { $0.hasSuffix(".sql.gz") })
    }

    @Test func pruneKeepsSuspectArchivesUntilTheyAreOldOrDeleteSuspectIsGiven() throws {
        try TestDatabase.with { source in
            try source.psql("CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t SELECT generate_series(1, 1000)")
            let work = try TestArchives.temporaryDirectory(), directory = try TestArchives.temporaryDirectory()
            defer { for path in [work, directory] { try? FileManager.default.removeItem(atPath: path) } }
            let good = try TestArchives.backup(source, directory: work)
            try source.psql("DELETE FROM t WHERE id > 10")
            Thread.sleep(forTimeInterval: 1.1)
            let suspect = try TestArchives.backup(source, directory: work)
            try #require(suspect.suspect != nil)

            // Good archives 1, 20 and 50 days ago; suspect ones 10 and 40 days ago.
            let now = Date()
            var names: [Int: String] = [:]
            for (days, archive) in [(1, good), (10, suspect), (20, good), (40, suspect), (50, good)] {
                let name = ArchiveName.fileName(prefix: "rack_gateway_backup", date: now.addingTimeInterval(-Double(days) * 86_400))
                names[days] = name
                try FileManager.default.copyItem(atPath: archive.file, toPath: directory + "/" + name)
                try TestArchives.tamper(directory + "/" + name, sidecarToo: true) { _ in }
            }

            let refused = try CLI.run(["prune", "--dir", directory, "--keep-last", "1", "--delete-suspect", "--keep-suspect-days", "5"])
            #expect(refused.status == 64 && refused.stderr.contains("--keep-suspect-days does not go with --delete-suspect"), "\(refused)")
            let negative = try CLI.run(["prune", "--dir", directory, "--keep-last", "1", "--keep-suspect-days", "-1"])
            #expect(negative.status == 64, "\(negative)")

            // The default, 35 days: the suspect archive of 10 days ago stays, the one of 40 days ago goes.
            let prune = try CLI.run(["prune", "--dir", directory, "--keep-last", "1"])
            #expect(prune.status == 0, "\(prune)")
            #expect(prune.stdout.contains("keep    \(names[10]!)  suspect-kept-as-evidence"), "\(prune.stdout)")
            #expect(try Self.archives(directory) == [names[1]!, names[10]!], "\(prune.stdout)")
            let store = LocalStore(directory: directory)
            let first = try #require(PruneLog.latest(store: store))
            #expect(Set(first.deleted) == [names[20]!, names[40]!, names[50]!] && first.keepSuspectDays == 35 && first.deleteSuspect == false)
            let deleted = Dictionary(uniqueKeysWithValues: (first.deletedArchives ?? []).map { ($0.file, $0) })
            #expect(deleted[names[20]!]?.verified == true && deleted[names[20]!]?.suspect == nil && deleted[names[20]!]?.drilled == false)
            #expect(deleted[names[40]!]?.verified == false && deleted[names[40]!]?.suspect == suspect.suspect, "\(deleted)")
            #expect(deleted[names[20]!]?.time == UTCTime.iso8601(ArchiveName.timestamp(of: names[20]!)!))

            // A shorter --keep-suspect-days lets it go; so does --delete-suspect.
            let dryRun = try CLI.run(["prune", "--dir", directory, "--keep-last", "1", "--keep-suspect-days", "5", "--dry-run"])
            #expect(dryRun.status == 0 && dryRun.stdout.contains("would delete  \(names[10]!)"), "\(dryRun)")
            let deleteSuspect = try CLI.run(["prune", "--dir", directory, "--keep-last", "1", "--delete-suspect", "--json"])
            #expect(deleteSuspect.status == 0, "\(deleteSuspect)")
            #expect(try Self.archives(directory) == [names[1]!])
            let second = try #require(PruneLog.latest(store: store))
            #expect(second.deleted == [names[10]!] && second.deleteSuspect == true && second.keepSuspectDays == nil)

            // An archive that does not read, 5 days ago: taken, so not MISSED, and not a backup either.
            names[5] = ArchiveName.fileName(prefix: "rack_gateway_backup", date: now.addingTimeInterval(-5 * 86_400))
            try Data("not an archive".utf8).write(to: URL(fileURLWithPath: directory + "/" + names[5]!))

            // The report: the suspect days are not MISSED; the good ones removed by retention are backed up.
            let report = try CLI.decode(EvidenceReport.self, try CLI.run(["report", "--dir", directory, "--since", "60d", "--format", "json"]).stdout)
            func status(_ days: Int) -> EvidenceReport.Status? {
                report.days.first { $0.date == EvidenceReport.day(ArchiveName.timestamp(of: names[days]!)!) }?.status
            }
            #expect(status(1) == .backedUp && status(10) == .suspect && status(20) == .removedByRetention && status(40) == .suspect && status(50) == .removedByRetention)
            #expect(status(5) == .unreadable && report.summary.unreadableDays == 1 && report.summary.text.contains(", 1 day with only an unreadable archive"), "\(report.summary.text)")
            #expect(report.days.filter(\.missed).count == report.summary.missedDays && !report.days.filter(\.missed).contains { $0.date == EvidenceReport.day(now.addingTimeInterval(-5 * 86_400)) })
            #expect(report.summary.suspectArchives == 2 && report.summary.daysWithBackup == 3 && report.summary.daysRemovedByRetention == 2, "\(report.summary)")
            #expect(report.retention?.policy == "--keep-last 1 --delete-suspect")
        }
    }

    /// An archive whose `verify` failed (`list`'s VERIFY-FAILED) is no good backup to the report, as to
    /// `check`: its day says so, the RPO is counted without it, "since the last good backup" names the
    /// archive `check` names. `prune` keeps it as evidence as it keeps a SUSPECT one (same rule), gives
    /// every decision a reason, and records it in prunes.jsonl as having failed; the report then calls
    /// its day "did not verify, removed by retention". A drill of a SUSPECT archive says so; a failed
    /// `drill --latest` says its checks are of the older archive drilled in the newest one's place.
    @Test func aVerifyFailedArchiveIsNoGoodBackupAndPruneKeepsItAsEvidence() throws {
        try TestDatabase.withSampleData(events: 200) { source in
            try source.psql("CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t SELECT generate_series(1, 1000)")
            let work = try TestArchives.temporaryDirectory(), directory = try TestArchives.temporaryDirectory()
            defer { for path in [work, directory] { try? FileManager.default.removeItem(atPath: path) } }
            let good = try TestArchives.backup(source, directory: work)
            // Archives at 03:00 UTC 1 to 5 days ago (day 1 the newest).
            var calendar = Calendar(identifier: .gregorian)
            calendar.timeZone = TimeZone(identifier: "UTC")!
            let today = calendar.startOfDay(for: Date())
            func time(_ day: Int) -> Date { today.addingTimeInterval(Double(-day) * 86_400 + 3 * 3600) }
            var names: [Int: String] = [:]
            for day in 1...5 {
                names[day] = ArchiveName.fileName(prefix: "rack_gateway_backup", date: time(day))
                try FileManager.default.copyItem(atPath: good.file, toPath: directory + "/" + names[day]!)
                try TestArchives.tamper(directory + "/" + names[day]!, sidecarToo: true) { _ in }
            }
            func corrupt(_ day: Int) throws {
                try TestArchives.tamper(directory + "/" + names[day]!, sidecarToo: false) { $0[$0.count / 2] ^= 0x5a }
                let verify = try CLI.run(["verify", directory + "/" + names[day]!])
                #expect(verify.status == 2, "\(verify)")
            }
            func report() throws -> EvidenceReport {
                let run = try CLI.run(["report", "--dir", directory, "--since", "7d", "--format", "json"])
                #expect(run.status == 0, "\(run)")
                return try CLI.decode(EvidenceReport.self, run.stdout)
            }
            func day(_ report: EvidenceReport, _ number: Int) -> EvidenceReport.Day? { report.days.first { $0.date == EvidenceReport.day(time(number)) } }

            try corrupt(3)
            #expect(PruneTrustTests.line(try CLI.run(["list", "--dir", directory]).stdout, names[3]!).contains("VERIFY-FAILED"))
            let first = try report()
            #expect(day(first, 3)?.status == .verifyFailed && day(first, 3)?.archives.first?.good == false, "\(String(describing: day(first, 3)))")
            #expect(first.summary.unreadableDays == 1 && first.summary.verifyFailedDays == 1 && first.summary.daysWithBackup == 4, "\(first.summary)")
            #expect(first.summary.text.contains("1 day whose archive did not verify"), "\(first.summary.text)")
            // The RPO without it: day 4 to day 2, 48 hours.
            #expect(first.recovery.largestGapSeconds == 48 * 3600 && first.recovery.largestGapFrom == UTCTime.iso8601(time(4)), "\(first.recovery)")
            let markdown = try CLI.run(["report", "--dir", directory, "--since", "7d"]).stdout
            #expect(markdown.contains("| **VERIFY-FAILED: did not verify** | \(names[3]!) |"), "\(markdown)")
            // When it was found and what verify found, from verifications.jsonl (it said only "its last verify failed").
            let callout = markdown.split(separator: "\n").first { $0.contains("Archive \(names[3]!) did not verify (its last verify on 20") }
            #expect(callout?.contains("verifications.jsonl: ") == true && callout?.contains("not a good backup") == true, "\(markdown)")

            // prune: kept as evidence under the SUSPECT rule; every decision has its reason.
            let kept = try CLI.run(["prune", "--dir", directory, "--keep-last", "2", "--dry-run"])
            #expect(kept.status == 0 && PruneTrustTests.line(kept.stdout, names[3]!) == "keep    \(names[3]!)  verify-failed-kept-as-evidence", "\(kept)")
            #expect(PruneTrustTests.line(kept.stdout, names[5]!) == "would delete  \(names[5]!)  outside-policy", "\(kept)")
            for line in kept.stdout.split(separator: "\n") where line.contains(".sql.gz") {
                #expect(line.split(separator: " ", omittingEmptySubsequences: true).count >= 3, "a decision without a reason: \(line)")
            }
            let prune = try CLI.run(["prune", "--dir", directory, "--keep-last", "2", "--keep-suspect-days", "1"])
            #expect(prune.status == 0 && PruneTrustTests.line(prune.stdout, names[3]!) == "delete  \(names[3]!)  verify-failed-older-than-1-days", "\(prune)")
            #expect(try Self.archives(directory) == [names[1]!, names[2]!])
            let log = try #require(PruneLog.latest(store: LocalStore(directory: directory)))
            let deleted = Dictionary(uniqueKeysWithValues: (log.deletedArchives ?? []).map { ($0.file, $0) })
            #expect(deleted[names[3]!]?.verifyFailed == true && deleted[names[3]!]?.verified == false && deleted[names[4]!]?.verifyFailed == false, "\(deleted)")
            #expect(deleted[names[4]!]?.tables == good.tables, "\(deleted)")

            let second = try report()
            #expect(day(second, 3)?.status == .verifyFailed && day(second, 4)?.status == .removedByRetention && second.summary.daysWithBackup == 4, "\(second.summary)")
            #expect(second.recovery.largestGapSeconds == 48 * 3600 && second.recovery.largestGapFrom == UTCTime.iso8601(time(4)), "\(second.recovery)")
            let html = try CLI.run(["report", "--dir", directory, "--since", "7d", "--format", "html"]).stdout
            #expect(html.contains("did not verify, removed by retention on " + String(log.prunedAt.prefix(10))), "\(html)")
            #expect(!html.contains("backed up, removed by retention on " + String(log.prunedAt.prefix(10)) + "</td><td>\(names[3]!)"))
            // The tables column of a pruned day, from prunes.jsonl.
            #expect(html.contains("<td>\(names[4]!)</td><td>03:00 UTC</td><td>\(EvidenceReport.size(good.sizeBytes))</td><td>\(good.tables)</td>"), "\(html)")
            // Marked on the size chart.
            #expect(second.sizeChart.render().contains("data-mark=\"verify-failed\""))

            // The newest corrupt too: the last good backup is the one check names, and drill --latest drills it.
            try corrupt(1)
            let check = try CLI.run(["check", "--dir", directory, "--max-backup-age", "26h"], environment: ["RGW_DATABASE_URL": source.url])
            #expect(check.stdout.contains("newest good archive \(names[2]!)"), "\(check)")
            let third = try report()
            #expect(third.recovery.lastGoodBackup == UTCTime.iso8601(time(2)) && third.recovery.overdue, "\(third.recovery)")
            #expect(third.summary.text.contains("since the last good backup (OVERDUE: over 26h"), "\(third.summary.text)")
            let drill = try CLI.run(["drill", "--latest", "--dir", directory, "--database-url", source.url])
            #expect(drill.status == 2, "\(drill)")

            // A drill of a SUSPECT archive: rows deleted, a backup the shrink check marks.
            try source.psql("DELETE FROM t WHERE id > 10")
            let suspect = try TestArchives.backup(source, directory: work)
            try #require(suspect.suspect != nil)
            names[6] = ArchiveName.fileName(prefix: "rack_gateway_backup", date: time(6))
            try FileManager.default.copyItem(atPath: suspect.file, toPath: directory + "/" + names[6]!)
            try TestArchives.tamper(directory + "/" + names[6]!, sidecarToo: true) { _ in }
            let suspectDrill = try CLI.run(["drill", directory + "/" + names[6]!, "--database-url", source.url])
            #expect(suspectDrill.stdout.contains("NOTE  the archive is marked SUSPECT"), "\(suspectDrill)")

            let last = try report()
            let latest = try #require(last.drills.first { $0.newestFailed != nil })
            #expect(!latest.ok && latest.newestFailed == names[1]! && latest.archive == names[2]!, "\(latest)")
            let drilledSuspect = try #require(last.drills.first { $0.archive == names[6]! })
            #expect(drilledSuspect.suspect == suspect.suspect)
            let page = try CLI.run(["report", "--dir", directory, "--since", "7d", "--format", "html"]).stdout
            #expect(page.contains(SVGChart.escape("FAILED, the newest archive \(names[1]!) did not verify; the older \(names[2]!) was drilled in its place")), "\(page)")
            #expect(page.contains(SVGChart.escape("The newest archive, \(names[1]!), failed verification")), "\(page)")
            #expect(page.contains(SVGChart.escape("\(names[6]!) (a SUSPECT archive)")) && page.contains("NOTE: the drilled archive is marked SUSPECT"), "\(page)")
            let rto = last.rtoChart.render()
            #expect(rto.contains("data-mark=\"failed\"") && rto.contains(">failed drill</text>"), "\(rto)")
            #expect(last.sizeChart.render().contains("data-mark=\"suspect\""))
        }
    }

    /// A plain restore (not the Convox pipeline) is recorded in restores.jsonl, failed or not, and
    /// `report` lists it with its target (no password).
    @Test func aPlainRestoreIsRecordedAndReported() throws {
        try TestDatabase.with { source in
            try source.psql("CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t SELECT generate_series(1, 100)")
            let directory = try TestArchives.temporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let archive = try TestArchives.backup(source, directory: directory)
            let name = URL(fileURLWithPath: archive.file).lastPathComponent
            try TestDatabase.withUnused { target in
                let restore = try CLI.run(["restore", archive.file, "--target-url", target.url])
                #expect(restore.status == 0, "\(restore)")
                // Again into the database now holding tables, without --clean: refused, and recorded as failed.
                let again = try CLI.run(["restore", archive.file, "--target-url", target.url])
                #expect(again.status != 0, "\(again)")
                let lines = RestoreLog.read(store: LocalStore(directory: directory))
                #expect(lines.count == 2 && lines.allSatisfy { $0.mode == "plain" && $0.app == nil && $0.archive == name }, "\(lines)")
                #expect(lines.first?.ok == true && lines.last?.ok == false && lines.last?.error?.isEmpty == false)
                #expect(lines.first?.target?.hasSuffix("/" + target.name) == true)
                let raw = try String(contentsOfFile: directory + "/" + RestoreLog.fileName, encoding: .utf8)
                let password = URLComponents(string: target.url)?.password
                #expect(password.map { !raw.contains($0) } ?? true, "no password in restores.jsonl")

                let report = try CLI.run(["report", "--dir", directory, "--since", "1d"])
                #expect(report.status == 0 && report.stdout.contains("2 restores (1 succeeded)"), "\(report)")
                // One good backup: no gap to measure, said as such (not run into the clause before it).
                #expect(report.stdout.contains("; RPO not measurable (fewer than two good backups in the period), ") && report.stdout.contains("s since the last good backup;"), "\(report.stdout)")
                #expect(report.stdout.contains("| plain | ok |") && report.stdout.contains("| plain | FAILED: "), "\(report.stdout)")
            }
        }
    }
}
