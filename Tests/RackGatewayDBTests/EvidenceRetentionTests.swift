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
