import Foundation
import Testing
import TestSupport
@testable import RackGatewayDB

/// `--latest` when last night's archive, the newest, is corrupt: the drill exits 2 naming it (and
/// drills the newest good one, reported as such), the restore stops before changing anything and
/// prints the command for the newest good one, and `list` marks the archive that failed `verify`.
@Suite("--latest: the newest archive is the news")
struct LatestArchiveTests {
    /// Two archives a second apart; the newest gets one byte flipped (its sidecar left as written).
    static func twoArchivesTheNewestCorrupt(_ database: TestDatabase, directory: String) throws -> (good: String, corrupt: String) {
        let older = try TestArchives.backup(database, directory: directory)
        Thread.sleep(forTimeInterval: 1.1)  // a new archive name
        let newest = try TestArchives.backup(database, directory: directory)
        try TestArchives.tamper(newest.file, sidecarToo: false) { data in data[data.count / 2] ^= 0xFF }
        return (URL(fileURLWithPath: older.file).lastPathComponent, URL(fileURLWithPath: newest.file).lastPathComponent)
    }

    @Test func drillLatestExitsTwoNamingACorruptNewestAndItsMetricsSaySo() throws {
        try TestDatabase.withMigrated { database in
            let directory = try TestArchives.temporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let (good, corrupt) = try Self.twoArchivesTheNewestCorrupt(database, directory: directory)
            let metrics = directory + "/drill.prom"

            let drill = try CLI.run(["drill", "--latest", "--dir", directory, "--database-url", database.url, "--metrics-file", metrics])
            #expect(drill.status == 2, "\(drill)")
            #expect(drill.stdout.contains("NEWEST ARCHIVE FAILED: ") && drill.stdout.contains(corrupt) && drill.stdout.contains("SHA-256"), "\(drill.stdout)")
            #expect(drill.stdout.contains("Drill of ") && drill.stdout.contains(good) && drill.stdout.contains("PASS  restore:"), "the newest good one is drilled: \(drill.stdout)")
            #expect(!drill.stdout.contains("Drill PASSED") && drill.stdout.contains("Drill FAILED: the newest archive \(corrupt) did not verify"), "\(drill.stdout)")
            #expect(drill.stderr.contains(corrupt), "\(drill.stderr)")
            let prometheus = try String(contentsOfFile: metrics, encoding: .utf8)
            #expect(prometheus.contains("rgw_drill_newest_archive_failed{database=\"\(database.name)\",dir=\"\(directory)\"} 1"), "\(prometheus)")
            #expect(!prometheus.contains("rgw_drill_last_success_timestamp_seconds") && prometheus.contains("rgw_drill_last_failure_timestamp_seconds"), "\(prometheus)")
            let logged = try String(contentsOfFile: directory + "/drills.jsonl", encoding: .utf8).split(separator: "\n")
            #expect(logged.count == 1 && logged[0].contains("\"newest_failed\"") && logged[0].contains(corrupt) && logged[0].contains("\"archive\":\"\(good)\""), "\(logged)")

            let json = try CLI.run(["drill", "--latest", "--dir", directory, "--database-url", database.url, "--json"])
            #expect(json.status == 2, "\(json)")
            let report = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any]
            let newest = report?["newest_failed"] as? [String: Any]
            #expect(report?["archive"] as? String == good && newest?["file"] as? String == corrupt && newest?["kind"] as? String == "corrupt", "\(json.stdout)")
            #expect((newest?["problems"] as? [String])?.first?.contains("SHA-256") == true, "\(json.stdout)")

            // The evidence report counts it as a failed drill.
            let evidence = try CLI.run(["report", "--dir", directory, "--format", "json"])
            #expect(evidence.status == 0 && evidence.stdout.contains("\"drills_failed\" : 2"), "\(evidence)")
        }
    }

    @Test func restoreLatestStopsNamingBothArchivesAndPrintsTheCommand() throws {
        try TestDatabase.withMigrated { database in
            let directory = try TestArchives.temporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let (good, corrupt) = try Self.twoArchivesTheNewestCorrupt(database, directory: directory)
            let password = try #require(URLComponents(string: database.url)?.password)
            try TestDatabase.withUnused { target in
                let refused = try CLI.run(["restore", "--latest", "--dir", directory, "--target-url", target.url, "--verify"])
                #expect(refused.status == 2, "\(refused)")
                #expect(refused.stderr.contains("stopped before changing anything") && refused.stderr.contains(corrupt), "\(refused.stderr)")
                #expect(refused.stderr.contains("The newest good archive is ") && refused.stderr.contains(good), "\(refused.stderr)")
                #expect(!refused.output.contains(password), "no password in the output: \(refused)")
                #expect(try !target.exists, "nothing created on the target")
                let line = try #require(refused.stderr.split(separator: "\n").first { $0.hasPrefix("To restore it: ") }, "\(refused.stderr)")
                let command = String(line.dropFirst("To restore it: ".count))
                #expect(command.hasPrefix("rack-gateway-db restore ") && command.contains(good) && !command.contains("--latest")
                        && command.contains("--target-url") && command.contains("postgres://postgres@") && command.contains("--verify"), "\(command)")
                #expect(refused.stderr.contains("The password is left out of the command: give it with PGPASSWORD"), "\(refused.stderr)")
                let json = try CLI.run(["restore", "--latest", "--dir", directory, "--target-url", target.url, "--json"])
                let document = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: [String: Any]]
                #expect(json.status == 2 && document?["error"]?["code"] as? String == "archive_corrupt"
                        && (document?["error"]?["fix"] as? String)?.contains(good) == true, "\(json)")
                let created = try target.exists
                #expect(!json.output.contains(password) && !created)

                // The printed command, pasted with the password in PGPASSWORD, restores the newest good archive.
                let runnable = command.replacingOccurrences(of: "rack-gateway-db ", with: "'\(CLI.executable)' ")
                let restored = try Shell.run("/bin/sh", ["-c", runnable], environment: CLI.baseEnvironment().merging(["PGPASSWORD": password]) { $1 })
                #expect(restored.status == 0 && restored.stdout.contains(good), "\(restored)")
            }

            // The Convox pipeline stops at the same place, before any convox call, naming both.
            let pipeline = try CLI.run(["restore", "--latest", "--dir", directory, "--convox-app", "rgw", "--skip-migrate", "--yes", "--database-url", database.url],
                                       environment: ["PATH": "/nonexistent"])
            #expect(pipeline.status == 2 && pipeline.stderr.contains(corrupt) && pipeline.stderr.contains(good), "\(pipeline)")
            #expect(pipeline.stderr.contains("--convox-app rgw") && !pipeline.output.contains(password), "\(pipeline)")
        }
    }

    @Test func listMarksAnArchiveThatFailedVerification() throws {
        try TestDatabase.withMigrated { database in
            let directory = try TestArchives.temporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let (good, corrupt) = try Self.twoArchivesTheNewestCorrupt(database, directory: directory)
            #expect(try CLI.run(["verify", directory + "/" + corrupt]).status == 2)
            #expect(try CLI.run(["verify", directory + "/" + good]).status == 0)
            let list = try CLI.run(["list", "--dir", directory])
            let lines = list.stdout.split(separator: "\n")
            #expect(list.status == 0 && lines.first { $0.contains(corrupt) }?.contains("VERIFY-FAILED") == true, "\(list.stdout)")
            #expect(lines.first { $0.contains(good) }.map { !$0.contains("VERIFY-FAILED") && $0.contains("verified") } == true, "\(list.stdout)")
            let json = try CLI.run(["list", "--dir", directory, "--json"])
            let entries = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [[String: Any]] ?? []
            #expect(entries.first { $0["file"] as? String == corrupt }?["verification_failed"] as? Bool == true, "\(json.stdout)")
            #expect(entries.first { $0["file"] as? String == good }?["verification_failed"] as? Bool == false, "\(json.stdout)")
        }
    }
}
