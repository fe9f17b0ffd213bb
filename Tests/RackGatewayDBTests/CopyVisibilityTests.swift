import Foundation
import Testing
import TestSupport
@testable import RackGatewayDB

/// Issue 32, item 4: `list`, `report` and `check --max-backup-age` know about copies, from
/// `copies.jsonl` (CopyLog) at the location they read. The lines are written here with
/// `CopyLog.append`, as `copy` writes them: what is tested is the reading side. A directory without
/// copies.jsonl reads as it did before.
@Suite("copies seen by list, report and check")
struct CopyVisibilityTests {
    static let bucket = "s3://offsite-b2/nightly"
    static let second = "/mnt/second-copy"

    /// `count` archives in a new directory, copies of one backup of `database` under names `hours`
    /// hours old (oldest first), each with its own `.sha256` sidecar.
    static func archives(_ database: TestDatabase, hours: [Double]) throws -> (directory: String, names: [String]) {
        let work = try TestArchives.temporaryDirectory(), directory = try TestArchives.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: work) }
        let backup = try TestArchives.backup(database, directory: work)
        let names = hours.map { ArchiveName.fileName(prefix: "rack_gateway_backup", date: Date().addingTimeInterval(-$0 * 3600)) }
        for name in names {
            try FileManager.default.copyItem(atPath: backup.file, toPath: directory + "/" + name)
            try TestArchives.tamper(directory + "/" + name, sidecarToo: true) { _ in }
        }
        return (directory, names)
    }

    /// A CopyLog line for `name` in `directory`, its SHA-256 and size as they are there (unless given).
    static func entry(_ directory: String, _ name: String, from source: String, to destination: String, _ outcome: CopyLog.Outcome = .copied,
                      hoursAgo: Double, sha256: String? = nil, version: String? = nil, problems: [String]? = nil) throws -> CopyLog.Entry {
        let digest = try #require(ArchiveLocation(store: LocalStore(directory: directory), name: name).sidecarDigest())
        let size = try #require(try LocalStore(directory: directory).size(name))
        return CopyLog.Entry(file: name, source: source, destination: destination, outcome: outcome, sha256: sha256 ?? digest, size: size,
                             copiedAt: Date().addingTimeInterval(-hoursAgo * 3600), checks: outcome == .failed ? [] : ["sha256", "trailer", "manifest"],
                             version: version, problems: problems)
    }

    static func lines(_ text: String) -> [String] { text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init) }

    static func json(_ text: String) throws -> [[String: Any]] {
        try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [[String: Any]], "\(text)")
    }

    /// `list --dir` of a copy's source: a COPIES column per archive (a good copy, a failed one, a
    /// copy of an earlier file of the same name), what each destination holds under the table, a
    /// `copies` array per archive in --json; the columns before it as they were, and as before
    /// for the same directory without copies.jsonl.
    @Test func listOfASourceShowsEachArchivesCopiesGoodFailedAndOfAnEarlierFile() throws {
        try TestDatabase.withMigrated { database in
            let (source, names) = try Self.archives(database, hours: [5, 3, 1])
            defer { try? FileManager.default.removeItem(atPath: source) }
            let (old, middle, newest) = (names[0], names[1], names[2])
            let before = try CLI.run(["list", "--dir", source])
            #expect(before.status == 0 && !before.stdout.contains("COPIES") && !before.stdout.contains("Copies"), "\(before)")
            let beforeJSON = try CLI.run(["list", "--dir", source, "--json"])
            #expect(beforeJSON.status == 0 && !beforeJSON.stdout.contains("\"copies\""), "\(beforeJSON)")

            let store = LocalStore(directory: source)
            try CopyLog.append(try Self.entry(source, newest, from: source, to: Self.bucket, hoursAgo: 0.9, version: "\"etag-1\""), store: store)
            try CopyLog.append(try Self.entry(source, newest, from: source, to: Self.second, .failed, hoursAgo: 0.8,
                                              problems: ["its SHA-256 at the destination is not its sidecar's"]), store: store)
            // The middle archive's copy was of another file of the same name (another SHA-256).
            try CopyLog.append(try Self.entry(source, middle, from: source, to: Self.bucket, hoursAgo: 2.9, sha256: String(repeating: "0", count: 64)), store: store)

            let list = try CLI.run(["list", "--dir", source])
            #expect(list.status == 0, "\(list)")
            let after = Self.lines(list.stdout), earlier = Self.lines(before.stdout)
            #expect(after[0].hasSuffix("  COPIES"), "\(list)")
            // The existing columns and marks are as they were; COPIES comes after them.
            for row in 0..<4 { #expect(after[row].hasPrefix(earlier[row]), "row \(row): \(after[row]) / \(earlier[row])") }
            let row = { (name: String) in after.first { $0.contains(name) && $0.hasPrefix("20") } ?? "" }
            #expect(row(newest).hasSuffix("  1 copy,1 FAILED"), "\(list)")
            #expect(row(middle).hasSuffix("  copy CHANGED"), "\(list)")
            #expect(row(old).hasSuffix("  -"), "\(list)")
            #expect(list.stdout.contains("Copies to \(Self.bucket): 1 of 3 archives listed (newest \(newest): copied to \(Self.bucket) and verified there "), "\(list)")
            #expect(list.stdout.contains("Copies to \(Self.second): 0 of 3 archives listed."), "\(list)")
            #expect(list.stdout.contains("\(newest): copy to \(Self.second) FAILED ") && list.stdout.contains("its SHA-256 at the destination is not its sidecar's"), "\(list)")
            #expect(list.stdout.contains("\(middle): copied to \(Self.bucket) ") && list.stdout.contains("the copy is of an earlier file"), "\(list)")

            let json = try Self.json(try CLI.run(["list", "--dir", source, "--json"]).stdout)
            func copies(_ name: String) -> [[String: Any]] { json.first { $0["file"] as? String == name }?["copies"] as? [[String: Any]] ?? [[:]] }
            #expect(copies(old).isEmpty, "\(json)")
            #expect(Set(copies(newest).map { "\($0["direction"] ?? "") \($0["location"] ?? "")=\($0["state"] ?? "")" }) == ["to \(Self.bucket)=recorded", "to \(Self.second)=failed"], "\(json)")
            #expect(copies(middle).first?["state"] as? String == "changed" && copies(newest).allSatisfy { $0["copied_at"] is String }, "\(json)")
        }
    }

    /// `list --dir` of a destination: the archive is a copy of its source, verified here, while its
    /// file's version is the one recorded; a file rewritten since is CHANGED. The log names the
    /// destination with a trailing slash: still this directory.
    @Test func listOfADestinationTrustsACopyOnlyWhileItsFileIsTheOneVerified() throws {
        try TestDatabase.withMigrated { database in
            let (source, names) = try Self.archives(database, hours: [2])
            let destination = try TestArchives.temporaryDirectory()
            defer { for path in [source, destination] { try? FileManager.default.removeItem(atPath: path) } }
            let name = names[0]
            for file in [name, name + ".sha256"] { try FileManager.default.copyItem(atPath: source + "/" + file, toPath: destination + "/" + file) }
            let store = LocalStore(directory: destination)
            let version = try #require(try store.version(name))
            try CopyLog.append(try Self.entry(destination, name, from: source, to: destination + "/", hoursAgo: 1.5, version: version), store: store)

            let list = try CLI.run(["list", "--dir", destination])
            #expect(list.status == 0, "\(list)")
            #expect(Self.lines(list.stdout).contains { $0.contains(name) && $0.hasSuffix("  copy") }, "\(list)")
            #expect(list.stdout.contains("Copies of \(source): 1 archive here verified as copied (newest \(name): a copy of \(source), verified here "), "\(list)")
            let json = try Self.json(try CLI.run(["list", "--dir", destination, "--json"]).stdout)
            let copy = try #require((json.first?["copies"] as? [[String: Any]])?.first, "\(json)")
            #expect(copy["direction"] as? String == "from" && copy["location"] as? String == source && copy["state"] as? String == "verified", "\(copy)")

            // The same bytes written again: another version, so the verification no longer vouches for it.
            let bytes = try Data(contentsOf: URL(fileURLWithPath: destination + "/" + name))
            Thread.sleep(forTimeInterval: 0.05)
            try bytes.write(to: URL(fileURLWithPath: destination + "/" + name))
            #expect(try store.version(name) != version)
            let changed = try CLI.run(["list", "--dir", destination])
            #expect(Self.lines(changed.stdout).contains { $0.contains(name) && $0.hasSuffix("  copy CHANGED") }, "\(changed)")
            #expect(changed.stdout.contains("\(name): a copy of \(source) verified here ") && changed.stdout.contains("changed here since"), "\(changed)")
            #expect(changed.stdout.contains("Copies of \(source): 0 archives here verified as copied."), "\(changed)")
        }
    }

    /// `report`: a "copies" column per archive (how many verified copies and where, a failed copy
    /// said), a Copies section and the summary's totals, the copies in its JSON; the HTML drawn by
    /// headless Chromium at 900 and 1200 px. Without copies.jsonl, none of it.
    @Test func reportHasACopiesColumnAndAFailedCopyIsVisible() throws {
        try TestDatabase.withMigrated { database in
            let (source, names) = try Self.archives(database, hours: [26, 1])
            let work = try TestArchives.temporaryDirectory()
            defer { for path in [source, work] { try? FileManager.default.removeItem(atPath: path) } }
            let (old, newest) = (names[0], names[1])
            let plain = try CLI.run(["report", "--dir", source, "--since", "3d", "--format", "html"])
            #expect(plain.status == 0 && !plain.stdout.contains("<th>copies</th>") && !plain.stdout.contains("<h2>Copies</h2>"), "\(plain)")

            let store = LocalStore(directory: source)
            for destination in [Self.bucket, Self.second] {
                try CopyLog.append(try Self.entry(source, old, from: source, to: destination, hoursAgo: 25), store: store)
            }
            try CopyLog.append(try Self.entry(source, newest, from: source, to: Self.bucket, hoursAgo: 0.9), store: store)
            try CopyLog.append(try Self.entry(source, newest, from: source, to: Self.second, .failed, hoursAgo: 0.8, problems: ["the destination refused the write"]), store: store)

            let html = work + "/report.html"
            let report = try CLI.run(["report", "--dir", source, "--since", "3d", "--format", "html", "-o", html])
            #expect(report.status == 0, "\(report)")
            let text = try String(contentsOfFile: html, encoding: .utf8)
            #expect(text.contains("<th>marks</th><th>copies</th>"), "\(text)")
            #expect(text.contains("<td>2 verified: \(Self.second), \(Self.bucket)</td>") || text.contains("<td>2 verified: \(Self.bucket), \(Self.second)</td>"), "\(text)")
            #expect(text.contains("<td class=\"fail\">1 verified: \(Self.bucket); FAILED to \(Self.second)</td>"), "\(text)")
            #expect(text.contains("<li class=\"fail\">Archive \(newest): copy to \(Self.second) FAILED ") && text.contains("the destination refused the write"), "\(text)")
            #expect(text.contains("<h2>Copies</h2>") && text.contains("to \(Self.bucket), 2 of 2 archives of this period verified there"), "\(text)")
            #expect(text.contains("to \(Self.second), 1 of 2 archives of this period verified there (newest \(old), copied ") && text.contains(", 1 FAILED"), "\(text)")
            for width in [900, 1200] {
                let screenshot = try ReportTests.screenshot(html, name: "copies-report-\(width)", width: width)
                print("CopyVisibilityTests: the report with copies at \(width) px is \(screenshot.path)")
                #expect(screenshot.console.isEmpty, "console: \(screenshot.console)")
                // The failed copy's cell is drawn red (#bb0000) under the charts (the RTO axis, #27864a),
                // and inside the window: the copies column is not cut off.
                let colors = try ReportTests.colors(in: screenshot.path, ["#bb0000", "#27864a"])
                let red = try #require(colors["#bb0000"]), chart = try #require(colors["#27864a"])
                #expect(red.count > 0 && chart.count > 0 && red.y1 > chart.y1 + 100 && red.x1 < width - 8, "\(width) px: red \(red), chart \(chart)")
            }

            let markdown = try CLI.run(["report", "--dir", source, "--since", "3d"])
            #expect(markdown.stdout.contains("| **1 verified: \(Self.bucket); FAILED to \(Self.second)** |") && markdown.stdout.contains("| marks | copies |"), "\(markdown)")
            #expect(markdown.stdout.contains("## Copies\n\nCopies, as copies.jsonl in this directory records them"), "\(markdown)")

            let json = try CLI.run(["report", "--dir", source, "--since", "3d", "--format", "json"])
            let object = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any], "\(json)")
            let totals = try #require(object["copies"] as? [[String: Any]], "\(json.stdout)")
            #expect(totals.map { "\($0["location"] ?? "") \($0["verified"] ?? "") \($0["failed"] ?? "")" } == ["\(Self.second) 1 1", "\(Self.bucket) 2 0"].sorted(), "\(totals)")
            let summary = (object["summary"] as? [String: Any])?["text"] as? String ?? ""
            #expect(summary.contains("copies to \(Self.second): 1 of 2 archives verified there, 1 FAILED"), "\(summary)")
            let archives = (object["days"] as? [[String: Any]] ?? []).flatMap { $0["archives"] as? [[String: Any]] ?? [] }
            #expect(archives.first { $0["file"] as? String == newest }.flatMap { $0["copies"] as? [[String: Any]] }?.count == 2, "\(archives)")
        }
    }

    /// `check --max-backup-age` at a copy's source: an item per destination naming its newest
    /// verified copy; exit 2 (backup_stale) naming the destination when the newest good archive's
    /// copy there failed or is missing; nothing of copies without copies.jsonl.
    @Test func checkSaysEachDestinationsNewestCopyAndFailsWhenTheNewestArchiveHasNone() throws {
        try TestDatabase.withMigrated { database in
            let (source, names) = try Self.archives(database, hours: [3, 1])
            defer { try? FileManager.default.removeItem(atPath: source) }
            let (old, newest) = (names[0], names[1])
            let environment = ["RGW_DATABASE_URL": database.url]
            let arguments = ["check", "--dir", source, "--max-backup-age", "26h"]
            let plain = try CLI.run(arguments, environment: environment)
            #expect(plain.status == 0 && !plain.stdout.contains("copies"), "\(plain)")

            let store = LocalStore(directory: source)
            try CopyLog.append(try Self.entry(source, old, from: source, to: Self.bucket, hoursAgo: 2.9), store: store)
            try CopyLog.append(try Self.entry(source, newest, from: source, to: Self.bucket, hoursAgo: 0.9), store: store)
            let fresh = try CLI.run(arguments, environment: environment)
            #expect(fresh.status == 0 && fresh.stdout.contains("OK    copies: to \(Self.bucket): newest verified copy \(newest), copied "), "\(fresh)")
            let json = try CLI.run(arguments + ["--json"], environment: environment)
            let items = (try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])?["items"] as? [[String: Any]] ?? []
            let copy = items.first { $0["name"] as? String == "copies" }?["copy"] as? [String: Any]
            #expect(json.status == 0 && copy?["destination"] as? String == Self.bucket && copy?["newest_archive"] as? String == newest
                    && copy?["fresh"] as? Bool == true && copy?["newest_copied_at"] is String, "\(json)")

            // The newest archive's copy fails (copy again, the destination refused it): exit 2, naming it.
            try CopyLog.append(try Self.entry(source, newest, from: source, to: Self.bucket, .failed, hoursAgo: 0.1, problems: ["403 Forbidden"]), store: store)
            let failed = try CLI.run(arguments, environment: environment)
            #expect(failed.status == 2 && failed.stdout.contains("FAIL  copies: to \(Self.bucket): newest verified copy \(old), copied "), "\(failed)")
            #expect(failed.stdout.contains("STALE: the newest good archive \(newest): copy to \(Self.bucket) FAILED ") && failed.stdout.contains("403 Forbidden"), "\(failed)")
            #expect(failed.stderr.contains("check failed: copies: to \(Self.bucket)") && failed.stderr.contains("rack-gateway-db copy --from \(source) --to \(Self.bucket) --latest"), "\(failed)")
            let failedJSON = try CLI.run(arguments + ["--json"], environment: environment)
            let error = (try JSONSerialization.jsonObject(with: Data(failedJSON.stdout.utf8)) as? [String: Any])?["error"] as? [String: Any]
            #expect(failedJSON.status == 2 && error?["code"] as? String == "backup_stale", "\(failedJSON)")

            // Copied again; a second destination that had the older archive has none of the newest yet:
            // pending, not a failure, while the older archive (3 hours) is within --max-backup-age (a copy
            // job on its own schedule runs after the backup)...
            try CopyLog.append(try Self.entry(source, newest, from: source, to: Self.bucket, hoursAgo: 0.05), store: store)
            try CopyLog.append(try Self.entry(source, old, from: source, to: Self.second, hoursAgo: 2.8), store: store)
            let pending = try CLI.run(arguments, environment: environment)
            #expect(pending.status == 0 && pending.stdout.contains("OK    copies: to \(Self.second): newest verified copy \(old)")
                    && pending.stdout.contains("the newest good archive \(newest) has no copy there yet"), "\(pending)")
            // ...and stale, exit 2 naming it alone, when the newest copy there is of an archive older than the limit.
            let strict = ["check", "--dir", source, "--max-backup-age", "2h"]
            let missing = try CLI.run(strict, environment: environment)
            #expect(missing.status == 2 && missing.stdout.contains("OK    copies: to \(Self.bucket): newest verified copy \(newest)"), "\(missing)")
            #expect(missing.stdout.contains("FAIL  copies: to \(Self.second): newest verified copy \(old)") && missing.stdout.contains("its newest verified copy is of an archive taken 3h")
                    && missing.stdout.contains("the newest good archive \(newest) has no copy there yet"), "\(missing)")
            #expect(missing.stderr.contains("--to \(Self.second) --latest") && !missing.stderr.contains("copies: to \(Self.bucket)") && !missing.stderr.contains("--to \(Self.bucket)"), "\(missing)")

            // The second destination has the newest too; a third is named only by an archive pruned here since: it has none of these.
            try CopyLog.append(try Self.entry(source, newest, from: source, to: Self.second, hoursAgo: 0.04), store: store)
            let third = "s3://third-copy/rgw", pruned = ArchiveName.fileName(prefix: "rack_gateway_backup", date: Date().addingTimeInterval(-40 * 86_400))
            var gone = try Self.entry(source, old, from: source, to: third, hoursAgo: 40 * 24)
            gone.file = pruned
            try CopyLog.append(gone, store: store)
            let forgotten = try CLI.run(arguments, environment: environment)
            #expect(forgotten.status == 2 && forgotten.stdout.contains("OK    copies: to \(Self.second): newest verified copy \(newest)"), "\(forgotten)")
            #expect(forgotten.stdout.contains("FAIL  copies: to \(third): no verified copy; STALE: no archive here has a verified copy there; the newest good archive \(newest) has no copy there yet"), "\(forgotten)")
        }
    }
}
