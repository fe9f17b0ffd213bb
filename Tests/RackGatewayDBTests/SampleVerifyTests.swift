import Foundation
@testable import RackGatewayDB
import Testing
import TestSupport

/// `verify --sample PERCENT [--seed N]`: every archive in a directory re-read in part by ranged
/// reads, the least recently read chunks first, so that a flipped byte anywhere in an old archive is
/// found within ceil(100/PERCENT) runs; recorded in verifications.jsonl, shown by list and report.
@Suite("verify --sample")
struct SampleVerifyTests {
    /// An archive of many small data members (32 KiB chunks of random text) in a fresh directory.
    static func archive(_ source: TestDatabase, rows: Int = 30000) throws -> (directory: String, name: String, manifest: ArchiveManifest) {
        _ = try source.psql("INSERT INTO users (email) SELECT md5(random()::text) || md5(random()::text) || i || '@example.com' FROM generate_series(1, \(rows)) i")
        let directory = try TestArchives.temporaryDirectory()
        _ = try TestArchives.backup(source, directory: directory, chunkSize: 32 << 10)
        let name = try #require(try FileManager.default.contentsOfDirectory(atPath: directory).first { $0.hasSuffix(".sql.gz") })
        return (directory, name, try ArchiveReader(path: directory + "/" + name).manifest)
    }

    /// `list --dir DIRECTORY --json`, decoded.
    static func list(_ directory: String) throws -> [ArchiveDirectory.Entry] {
        let run = try CLI.run(["list", "--dir", directory, "--json"])
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        decoder.dateDecodingStrategy = .iso8601
        return try decoder.decode([ArchiveDirectory.Entry].self, from: Data(run.stdout.utf8))
    }

    static func samples(_ directory: String, _ name: String) -> [VerificationLog.Entry] {
        VerificationLog.lines(store: LocalStore(directory: directory)).filter { $0.file == name && $0.isSample }
    }

    /// With --sample 20 and the seeds 1, 2, 3, ...: an untouched archive is covered whole in 5 runs
    /// (each run takes the chunks not read yet first), and a byte flipped in the middle of a data
    /// chunk of an old archive is found by run 5 at the latest, naming the archive, the member, its
    /// offset and its table, marked VERIFY-FAILED in list, exit 2. A pass before it is no verification.
    @Test func aFlippedByteIsFoundWithinTheRunsItsPercentageTakes() throws {
        try TestDatabase.withMigrated { source in
            let (directory, name, manifest) = try Self.archive(source)
            defer { try? FileManager.default.removeItem(atPath: directory) }
            // A second, older archive: the same bytes under an earlier name, never touched.
            let olderName = try #require(Self.earlier(name))
            try FileManager.default.copyItem(atPath: directory + "/" + name, toPath: directory + "/" + olderName)
            try FileManager.default.copyItem(atPath: directory + "/" + name + ".sha256", toPath: directory + "/" + olderName + ".sha256")
            let data = manifest.members.filter { $0.kind == .data }
            #expect(data.count >= 30, "the archive has \(data.count) data members")

            // An old archive: sampled once, passing, before the byte flips.
            let first = try CLI.run(["verify", "--dir", directory, "--sample", "20", "--seed", "100"])
            #expect(first.status == 0, "\(first)")
            #expect(first.stdout.contains("OK \(name)") && first.stdout.contains("OK \(olderName)"), "\(first)")
            // A sampled pass is not a verification.
            let listed = try Self.list(directory)
            #expect(listed.allSatisfy { !$0.verified && !$0.verificationFailed && ($0.sampledPercent ?? 0) >= 20 && $0.sampledAt != nil }, "\(listed)")

            // A byte in the middle of a data chunk of the users table.
            let target = try #require(data.filter { manifest.tables[$0.table!].name == "users" }.dropFirst(7).first)
            let path = directory + "/" + name
            var bytes = try #require(FileManager.default.contents(atPath: path))
            bytes[target.offset + target.length / 2] ^= 0x40
            try bytes.write(to: URL(fileURLWithPath: path))

            var foundAt: Int?
            for seed in 1...5 {
                let run = try CLI.run(["verify", "--dir", directory, "--sample", "20", "--seed", String(seed)])
                if run.status == 0 {
                    #expect(run.stdout.contains("OK \(name)"), "\(run)")
                    continue
                }
                #expect(run.status == 2, "\(run)")
                #expect(run.stderr.contains("\(name): member \(target.index) (data) at offset \(target.offset) of table public.users"), "\(run)")
                #expect(run.stderr.contains("failed the sample") && run.stdout.contains("OK \(olderName)"), "\(run)")
                // The damaged member explains the rest: no table totals said on top of it.
                #expect(!run.stderr.contains("rows in its chunks") && !run.stderr.contains("chunk list"), "\(run)")
                foundAt = seed
                break
            }
            #expect(foundAt != nil, "a byte flipped in member \(target.index) was not found by 5 runs of --sample 20")
            let list = try CLI.run(["list", "--dir", directory])
            let row = try #require(list.stdout.split(separator: "\n").first { $0.contains(name) && !$0.contains(olderName) })
            #expect(row.contains("VERIFY-FAILED"), "\(list)")

            // The untouched archive: every data member read once its 6 runs (1 + up to 5) reach 100%.
            for seed in 6..<11 { _ = try CLI.run(["verify", "--dir", directory, "--sample", "20", "--seed", String(seed)]) }
            let history = Self.samples(directory, olderName)
            let read = history.reduce(into: Set<Int>()) { $0.formUnion(MemberSet.parse($1.members ?? "")) }
            #expect(Set(data.map(\.index)).isSubset(of: read), "not read: \(Set(data.map(\.index)).subtracting(read).sorted())")
            // Each run read its share and no more than one member over it (of the data's bytes).
            let dataBytes = data.reduce(0) { $0 + $1.length }, largest = data.map(\.length).max() ?? 0
            for entry in history.prefix(5) {
                let taken = MemberSet.parse(entry.members ?? "")
                let bytes = data.filter { taken.contains($0.index) }.reduce(0) { $0 + $1.length }
                #expect(bytes * 5 >= dataBytes && bytes * 5 < dataBytes + 5 * largest, "\(bytes) of \(dataBytes)")
            }
            #expect(history.last?.coveredPercent == 100, "\(history.map { $0.coveredPercent ?? -1 })")
            let after = try Self.list(directory)
            #expect(after.first { $0.file == olderName }?.sampledPercent == 100)
            let text = try CLI.run(["list", "--dir", directory]).stdout
            #expect(text.contains("re-read 100%"), "\(text)")
            // The mark is short (the time is below the table and in --json), and there is none beside
            // VERIFY-FAILED: a share re-read is no reassurance next to a failure that stands.
            let rows = text.split(separator: "\n")
            let olderRow = try #require(rows.first { $0.contains(olderName) })
            #expect(olderRow.hasSuffix("re-read 100%"), "\(text)")
            let damagedRow = try #require(rows.first { $0.contains(name) && !$0.contains(olderName) })
            #expect(damagedRow.contains("VERIFY-FAILED") && !damagedRow.contains("re-read"), "\(text)")
            let last = try #require(history.last?.verifiedAt)
            #expect(text.contains("re-read N%: by verify --sample since the file last changed; last \(EvidenceReport.display(last))"), "\(text)")
        }
    }

    /// An archive whose last verdict failed at its current version stays failed in every later
    /// sample (issue 32's trial: one run of --sample 100 found a flipped byte, the next runs of
    /// --sample 10 said OK and exited 0): after a failed full verify (which names no member), a
    /// sample that does not read the damage says it is still VERIFY-FAILED, when and what was found
    /// (exit 2, no OK line); once a sample found it, later ones re-read the damaged member first and
    /// find it again. A full verify that passes (the byte put back) ends it. check finds no good
    /// archive meanwhile.
    @Test func aDamagedArchiveStaysFailedInLaterSamples() throws {
        try TestDatabase.withMigrated { source in
            let (directory, name, manifest) = try Self.archive(source, rows: 15000)
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let data = manifest.members.filter { $0.kind == .data }
            #expect(data.count >= 20, "the archive has \(data.count) data members")
            let target = data[data.count / 2]
            let path = directory + "/" + name
            var bytes = try #require(FileManager.default.contents(atPath: path))
            bytes[target.offset + target.length / 2] ^= 0x40
            try bytes.write(to: URL(fileURLWithPath: path))
            let damage = "\(name): member \(target.index) (\(target.kind.rawValue)) at offset \(target.offset)"

            // A full verify's failure names no member: a sample that reads other chunks (a seed whose
            // choice misses the damaged one) says the failure stands, when it was found and what.
            let full = try CLI.run(["verify", "--dir", directory, name])
            #expect(full.status == 2, "\(full)")
            let verdict = try #require(VerificationLog.lines(store: LocalStore(directory: directory)).last)
            #expect(!verdict.isSample && !verdict.ok, "\(verdict)")
            let seed = try #require((1...200).first { !SampleVerifier(percent: 10, seed: UInt64($0)).choose(manifest, file: name, lastRead: [:]).contains { $0.index == target.index } })
            let after = try CLI.run(["verify", "--dir", directory, "--sample", "10", "--seed", String(seed), "--json"])
            #expect(after.status == 2, "\(after)")
            let object = try #require(try JSONSerialization.jsonObject(with: Data(after.stdout.utf8)) as? [String: Any])
            let archive = try #require((object["archives"] as? [[String: Any]])?.first)
            #expect(object["failed"] as? Int == 1 && object["ok"] as? Int == 0, "\(after.stdout)")
            // How many members were read (schema members too) says what it counts beside data_members.
            #expect(archive["member_count"] == nil && (archive["members_read_count"] as? Int ?? 0) > (archive["data_members_read"] as? Int ?? 0), "\(after.stdout)")
            #expect(archive["ok"] as? Bool == true && archive["verification_failed_at"] as? String == verdict.verifiedAt, "a sample that missed the damage: \(after.stdout)")
            #expect(after.stderr.contains("\(name): still VERIFY-FAILED: verify on \(EvidenceReport.display(verdict.verifiedAt)) found \(verdict.problems?.first ?? "?"); this sample"), "\(after)")
            #expect(after.stderr.contains("failed the sample or is still VERIFY-FAILED"), "\(after)")

            // Found by a sample (which records the damaged member): later samples of any share
            // re-read it first and find it again.
            let found = try CLI.run(["verify", "--dir", directory, "--sample", "100"])
            #expect(found.status == 2 && found.stderr.contains(damage), "\(found)")
            #expect(Self.samples(directory, name).last?.failedMembers == "\(target.index)")
            for arguments in [["--sample", "10"], ["--sample", "10", "--seed", "42"], ["--sample", "5%"]] {
                let run = try CLI.run(["verify", "--dir", directory] + arguments)
                #expect(run.status == 2, "\(arguments): \(run)")
                #expect(!run.stdout.contains("OK \(name)") && run.stdout.contains("0 ok, 1 failed"), "\(arguments): \(run)")
                #expect(run.stderr.contains(damage), "\(arguments): \(run)")
                // Said once: not again in the still-VERIFY-FAILED line, nor in the summary.
                #expect(run.stderr.components(separatedBy: "at offset \(target.offset)").count == 2, "\(arguments): \(run)")
                #expect(run.stderr.contains("\(name): still VERIFY-FAILED: verify --sample on ") && run.stderr.contains("re-read member \(target.index) first and found damage again"), "\(arguments): \(run)")
                let line = try #require(Self.samples(directory, name).last)
                #expect(MemberSet.parse(line.members ?? "").contains(target.index) && line.ok == false, "\(line)")
            }
            let listed = try Self.list(directory)
            #expect(listed.first?.verificationFailed == true && listed.first?.sampledPercent != nil, "\(listed)")
            // Its coverage is not shown beside the failure (no reassurance), in list or the report.
            let row = try #require(try CLI.run(["list", "--dir", directory]).stdout.split(separator: "\n").first { $0.contains(name) })
            #expect(row.contains("VERIFY-FAILED") && !row.contains("re-read"), "\(row)")
            let report = try CLI.run(["report", "--dir", directory, "--format", "md"])
            let reportRow = try #require(report.stdout.split(separator: "\n").first { $0.contains(name) && $0.hasPrefix("|") }, "\(report)")
            #expect(reportRow.contains("VERIFY-FAILED") && !reportRow.contains("re-read"), "\(reportRow)")
            let check = try CLI.run(["check", "--database-url", source.url, "--dir", directory, "--max-backup-age", "26h"])
            #expect(check.status == 2 && check.stdout.contains("no good archive in \(directory) (readable, not suspect, verified)"), "\(check)")

            // The byte put back: a full verify passes, and the samples after it pass too.
            bytes[target.offset + target.length / 2] ^= 0x40
            try bytes.write(to: URL(fileURLWithPath: path))
            #expect(try CLI.run(["verify", "--dir", directory, name]).status == 0)
            let clean = try CLI.run(["verify", "--dir", directory, "--sample", "10"])
            #expect(clean.status == 0 && clean.stdout.contains("OK \(name)"), "\(clean)")
        }
    }

    /// Damage the nightly re-read finds reaches someone (issue 32's second trial: no verify option
    /// reported it, and check said OK with an old archive VERIFY-FAILED): a sample that finds a
    /// damaged archive writes the failure to --metrics-file (rgw_verify_sample_failed_archives 1,
    /// the last failure's time, no success) and pings URL/2 and the webhook; each problem is said
    /// once; the fix at a copy destination is `copy --from SOURCE`, and running it repairs the copy.
    /// check --max-backup-age then warns of the VERIFY-FAILED archive (exit 0: a newer good one
    /// exists) and writes rgw_backup_verify_failed_archives; a full verify writes rgw_verify_problems.
    @Test func aDamagedArchiveReachesTheMetricsTheNotificationsAndCheck() throws {
        try TestDatabase.withMigrated { source in
            let (origin, name, manifest) = try Self.archive(source, rows: 15000)
            defer { try? FileManager.default.removeItem(atPath: origin) }
            let older = try #require(Self.earlier(name))
            try FileManager.default.copyItem(atPath: origin + "/" + name, toPath: origin + "/" + older)
            try FileManager.default.copyItem(atPath: origin + "/" + name + ".sha256", toPath: origin + "/" + older + ".sha256")
            // The destination: both archives copied there by `copy`, the older one then damaged there.
            let directory = try TestArchives.temporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let copied = try CLI.run(["copy", "--from", origin, "--to", directory, name, older])
            #expect(copied.status == 0, "\(copied)")
            let target = try #require(manifest.members.filter { $0.kind == .data }.dropFirst(5).first)
            let path = directory + "/" + older
            var bytes = try #require(FileManager.default.contents(atPath: path))
            bytes[target.offset + target.length / 2] ^= 0x40
            try bytes.write(to: URL(fileURLWithPath: path))

            let receiver = try HTTPReceiver()
            let metrics = directory + "/verify.prom"
            let run = try CLI.run(["verify", "--dir", directory, "--sample", "100", "--metrics-file", metrics,
                                   "--notify", receiver.url("/ping/sample"), "--webhook", receiver.url("/hooks/sample")])
            #expect(run.status == 2, "\(run)")
            let damage = "\(older): member \(target.index) (data) at offset \(target.offset)"
            // Said once, in full: the summary names the archive, not its problem again.
            #expect(run.stderr.components(separatedBy: damage).count == 2, "\(run)")
            #expect(run.stderr.contains("1 archive in \(directory) failed the sample (the problems are above): \(older)"), "\(run)")
            let repair = "rack-gateway-db copy --from \(origin) --to \(directory) \(older)"
            #expect(run.stderr.split(separator: "\n").contains { $0.hasSuffix(repair) }, "the fix names the copy's source, the command ending its line (a paste of it runs): \(run)")
            let text = try String(contentsOfFile: metrics, encoding: .utf8)
            let label = "{dir=\"\(directory)\"}"
            #expect(text.contains("rgw_verify_sample_failed_archives\(label) 1\n") && text.contains("rgw_verify_sample_checked_archives\(label) 2\n"), "\(text)")
            #expect(text.contains("rgw_verify_sample_unchecked_archives\(label) 0\n") && text.contains("rgw_verify_sample_last_failure_timestamp_seconds\(label) "), "\(text)")
            #expect(!text.contains("rgw_verify_sample_last_success_timestamp_seconds"), "\(text)")
            let read = try #require(text.split(separator: "\n").first { $0.hasPrefix("rgw_verify_sample_bytes_read\(label) ") }.flatMap { Double($0.split(separator: " ").last!) })
            #expect(read > Double(manifest.members.filter { $0.kind == .data }.reduce(0) { $0 + $1.length }), "\(text)")
            let attributes = try FileManager.default.attributesOfItem(atPath: metrics)
            #expect((attributes[.posixPermissions] as? Int) == 0o644)
            let requests = receiver.requests
            #expect(requests.map { NotificationTests.route($0.path) } == ["/ping/sample/start", "/ping/sample/2", "/hooks/sample"], "\(requests.map(\.path))")
            #expect(requests[1].body.hasPrefix("rack-gateway-db verify FAILED (exit 2): 1 archive in \(directory) failed the sample"), "\(requests[1].body)")
            let hook = try #require(requests.last?.json)
            #expect(hook["failed"] as? Int == 1 && (hook["error"] as? [String: Any])?["code"] as? String != nil, "\(hook)")

            // check: the newest archive is good (exit 0), the damaged older one a warning and a gauge.
            let checkMetrics = directory + "/check.prom"
            let check = try CLI.run(["check", "--database-url", source.url, "--dir", directory, "--max-backup-age", "26h", "--metrics-file", checkMetrics])
            #expect(check.status == 0, "\(check)")
            #expect(check.stdout.contains("WARN  verify-failed: 1 archive in \(directory) VERIFY-FAILED") && check.stdout.contains(older), "\(check)")
            #expect(check.stdout.contains("OK    backups: newest good archive \(name)"), "\(check)")
            let checkText = try String(contentsOfFile: checkMetrics, encoding: .utf8)
            #expect(checkText.contains("rgw_backup_verify_failed_archives{database=\"\(source.name)\",dir=\"\(directory)\"} 1\n"), "\(checkText)")

            // verify of the one archive: its problems in the metrics, under its own command.
            let single = try CLI.run(["verify", "--dir", directory, older, "--metrics-file", metrics])
            #expect(single.status == 2, "\(single)")
            let after = try String(contentsOfFile: metrics, encoding: .utf8)
            #expect(after.contains("rgw_verify_problems\(label) ") && !after.contains("rgw_verify_problems\(label) 0\n") && after.contains("rgw_verify_last_failure_timestamp_seconds\(label) "), "\(after)")

            // The fix as printed: the copy replaced from its source, the next sample passes, and
            // check's gauge is back to 0.
            let repaired = try CLI.run(["copy", "--from", origin, "--to", directory, older])
            #expect(repaired.status == 0, "\(repaired)")
            let clean = try CLI.run(["verify", "--dir", directory, "--sample", "100", "--metrics-file", metrics])
            #expect(clean.status == 0, "\(clean)")
            let cleanText = try String(contentsOfFile: metrics, encoding: .utf8)
            #expect(cleanText.contains("rgw_verify_sample_failed_archives\(label) 0\n") && cleanText.contains("rgw_verify_sample_last_success_timestamp_seconds\(label) "), "\(cleanText)")
            let recheck = try CLI.run(["check", "--database-url", source.url, "--dir", directory, "--max-backup-age", "26h", "--metrics-file", checkMetrics])
            #expect(recheck.status == 0 && !recheck.stdout.contains("verify-failed"), "\(recheck)")
            #expect(try String(contentsOfFile: checkMetrics, encoding: .utf8).contains("rgw_backup_verify_failed_archives{database=\"\(source.name)\",dir=\"\(directory)\"} 0\n"))
        }
    }

    /// The file name of an archive a day before `name`'s.
    static func earlier(_ name: String) -> String? {
        guard let range = name.range(of: #"_\d{8}T"#, options: .regularExpression) else { return nil }
        let digits = name[name.index(after: range.lowerBound)..<name.index(range.upperBound, offsetBy: -1)]
        guard let day = Int(digits) else { return nil }
        return name.replacingCharacters(in: range, with: "_\(day - 1)T")
    }

    /// Without --seed every run draws its own: two fresh directories holding the same archive get
    /// different chunks; with the same --seed, the same ones.
    @Test func withoutASeedTwoRunsChooseDifferently() throws {
        try TestDatabase.withMigrated { source in
            let (directory, name, _) = try Self.archive(source, rows: 15000)
            defer { try? FileManager.default.removeItem(atPath: directory) }
            func choice(_ extra: [String]) throws -> String {
                let copy = try TestArchives.temporaryDirectory()
                defer { try? FileManager.default.removeItem(atPath: copy) }
                try FileManager.default.copyItem(atPath: directory + "/" + name, toPath: copy + "/" + name)
                let run = try CLI.run(["verify", "--dir", copy, "--sample", "20", "--json"] + extra)
                #expect(run.status == 0, "\(run)")
                let sample = try #require(Self.samples(copy, name).last)
                #expect(sample.seed != nil && sample.percent == 20 && sample.sha256.isEmpty)
                return sample.members ?? ""
            }
            let (a, b) = (try choice([]), try choice([]))
            #expect(a != b, "two runs without --seed read the same members \(a)")
            #expect(try choice(["--seed", "7"]) == choice(["--seed", "7"]))
        }
    }

    /// From S3, `verify --sample 5` fetches at most 7% of the archive's bytes plus its trailer and
    /// manifest (counted as the response bytes of GETs of the archive's key through the proxy), and
    /// at least 5% of its data members' bytes.
    @Test func fromS3ASampleOf5PercentFetchesUnder7Percent() throws {
        let moto = try MotoServer.shared()
        let bucket = try moto.freshBucket().bucket
        let proxy = try FaultProxy(upstream: moto.endpoint)
        try TestDatabase.withMigrated { source in
            let (directory, name, manifest) = try Self.archive(source, rows: 120_000)
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let store = S3Store(client: proxy.client(bucket: bucket), prefix: "nightly")
            for file in [name, name + ".sha256"] { try store.put(file, try #require(FileManager.default.contents(atPath: directory + "/" + file)).map { $0 }) }
            let size = try #require(try store.size(name))
            let opening = ArchiveTrailer.memberLength + (try ArchiveReader(store: store, name: name).trailer.manifestLength)
            let dataBytes = manifest.members.filter { $0.kind == .data }.reduce(0) { $0 + $1.length }
            #expect(manifest.members.count > 100, "\(manifest.members.count) members")
            try proxy.clearLog()
            let environment = MotoServer.awsEnvironment.merging(["AWS_ENDPOINT_URL_S3": proxy.endpoint]) { $1 }
            let run = try CLI.run(["verify", "--dir", "s3://\(bucket)/nightly", "--sample", "5", "--json"], environment: environment)
            #expect(run.status == 0, "\(run)")
            let fetched = try proxy.requests().filter { $0.method == "GET" && $0.path == "/\(bucket)/nightly/\(name)" }.map(\.bytes).reduce(0, +)
            let bound = size * 7 / 100 + opening
            print("verify --sample 5 fetched \(fetched) bytes of an archive of \(size) (\(manifest.members.count) members; bound \(bound))")
            #expect(fetched <= bound, "fetched \(fetched) bytes of \(size) (at most 7% + trailer and manifest \(opening) = \(bound))")
            #expect(fetched >= dataBytes / 20, "fetched \(fetched), under 5% of the data's \(dataBytes)")
            #expect(run.stdout.contains("\"bytes_read\""), "\(run.stdout)")
            let line = try #require(VerificationLog.lines(store: store).last)
            #expect(line.isSample && line.ok && line.percent == 5 && line.bytesRead ?? 0 > 0, "\(line)")
        }
    }

    /// Encrypted: without --identity its data is not checked (said per archive, exit 64 when nothing
    /// failed, 2 when another archive failed); with it, the chunks are read through age and checked.
    /// A truncated archive fails (recorded: VERIFY-FAILED).
    @Test func encryptedNeedsItsIdentityAndATruncatedArchiveFails() throws {
        let keys = try TestKeys.make()
        defer { try? FileManager.default.removeItem(atPath: keys.directory) }
        try TestDatabase.withMigrated { source in
            let directory = try TestArchives.temporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let backup = try CLI.run(["backup", "--database-url", source.url, "--dir", directory, "--recipient", keys.recipient])
            #expect(backup.status == 0, "\(backup)")
            let name = try #require(try FileManager.default.contentsOfDirectory(atPath: directory).first { $0.hasSuffix(".age") })
            let keyless = try CLI.run(["verify", "--dir", directory, "--sample", "10"])
            #expect(keyless.status == 64, "\(keyless)")
            #expect(keyless.stdout.contains("NOT CHECKED \(name)") && keyless.stderr.contains("--identity"), "\(keyless)")
            #expect(Self.samples(directory, name).isEmpty)
            let keyed = try CLI.run(["verify", "--dir", directory, "--sample", "10", "--identity", keys.identity])
            #expect(keyed.status == 0 && keyed.stdout.contains("OK \(name)"), "\(keyed)")
            #expect(Self.samples(directory, name).last?.ok == true)

            // A truncated plain archive beside it: exit 2 with or without the identity.
            let plain = try TestArchives.temporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: plain) }
            _ = try TestArchives.backup(source, directory: plain)
            let plainName = try #require(try FileManager.default.contentsOfDirectory(atPath: plain).first { $0.hasSuffix(".sql.gz") })
            let truncatedName = try #require(Self.earlier(plainName))
            let whole = try #require(FileManager.default.contents(atPath: plain + "/" + plainName))
            try whole.prefix(whole.count - 100).write(to: URL(fileURLWithPath: directory + "/" + truncatedName))
            let mixed = try CLI.run(["verify", "--dir", directory, "--sample", "10"])
            #expect(mixed.status == 2 && mixed.stderr.contains(truncatedName) && mixed.stdout.contains("NOT CHECKED \(name)"), "\(mixed)")
            let listed = try Self.list(directory)
            #expect(listed.first { $0.file == truncatedName }?.verificationFailed == true, "\(listed)")
            #expect(listed.first { $0.file == name }?.verificationFailed == false, "\(listed)")
        }
    }

    /// What does not apply is a usage error (64); a passing sample neither verifies an archive nor
    /// clears a full verify's mark, and the report shows the coverage.
    @Test func usageErrorsAndWhatListAndReportShow() throws {
        for arguments in [["verify", "x.sql.gz", "--sample", "5"], ["verify", "--latest", "--sample", "5"], ["verify", "--latest", "--seed", "3"],
                          ["verify", "--sample", "0"], ["verify", "--sample", "101"], ["verify", "--sample", "five"], ["verify", "--sample", "5", "--verify-key", "RWQ"]] {
            let run = try CLI.run(arguments)
            #expect(run.status == 64, "\(arguments): \(run)")
        }
        try TestDatabase.withMigrated { source in
            let (directory, name, _) = try Self.archive(source, rows: 5000)
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let full = try CLI.run(["verify", "--dir", directory, name])
            #expect(full.status == 0, "\(full)")
            let sample = try CLI.run(["verify", "--dir", directory, "--sample", "50", "--json"])
            #expect(sample.status == 0, "\(sample)")
            let object = try #require(try JSONSerialization.jsonObject(with: Data(sample.stdout.utf8)) as? [String: Any])
            let archives = try #require(object["archives"] as? [[String: Any]])
            #expect(archives.count == 1 && object["ok"] as? Int == 1 && (archives[0]["covered_percent"] as? Double ?? 0) >= 50, "\(sample.stdout)")
            let listed = try Self.list(directory)
            #expect(listed.first?.verified == true && (listed.first?.sampledPercent ?? 0) >= 50, "\(listed)")
            let report = try CLI.run(["report", "--dir", directory, "--format", "md"])
            #expect(report.status == 0 && report.stdout.contains("re-read"), "\(report)")
        }
    }

    /// verify's usage errors read as every other run's (`rack-gateway-db: error:` and the fix, not
    /// the parser's `Error:` and usage), and a negative PERCENT gets the range message, not "Missing
    /// value"; --seed's help says what it repeats.
    @Test func usageErrorsReadAsTheOthersAndANegativePercentIsOutOfRange() throws {
        for value in ["-5", "0", "101"] {
            let run = try CLI.run(["verify", "--sample", value])
            #expect(run.status == 64, "\(value): \(run)")
            #expect(run.stderr.hasPrefix("rack-gateway-db: error: --sample \(value) is not a percentage over 0 and at most 100"), "\(value): \(run)")
            #expect(!run.stderr.contains("Error:") && !run.stderr.contains("Missing value"), "\(value): \(run)")
        }
        for arguments in [["verify", "x.sql.gz", "--sample", "5"], ["verify", "--latest", "--seed", "3"], ["verify", "--sample", "5", "--verify-key", "RWQ"],
                          ["verify", "/tmp/x.sql.gz", "--dir", "/tmp"]] {
            let run = try CLI.run(arguments)
            #expect(run.status == 64 && run.stderr.hasPrefix("rack-gateway-db: error: ") && run.stderr.contains("rack-gateway-db help verify"), "\(arguments): \(run)")
        }
        let neither = try CLI.run(["verify"])
        #expect(neither.status == 64 && neither.stderr.hasPrefix("rack-gateway-db: error: give an archive or --latest"), "\(neither)")
        #expect(neither.stderr.contains("rack-gateway-db help verify"), "the fix: \(neither)")
        let help = try CLI.run(["verify", "--help"])
        #expect(help.stdout.split(whereSeparator: \.isWhitespace).joined(separator: " ").contains("given the same verifications.jsonl"), "\(help)")
    }

    /// The members a sample read, written compactly and read back; PERCENT's bounds.
    @Test func memberSetsAndPercentages() {
        #expect(MemberSet.format([7, 0, 1, 2, 3, 12, 13, 14, 15, 3]) == "0-3,7,12-15")
        #expect(MemberSet.parse("0-3,7,12-15") == [0, 1, 2, 3, 7, 12, 13, 14, 15])
        #expect(MemberSet.format([]) == "" && MemberSet.parse("").isEmpty && MemberSet.parse("x,5-2,4") == [4])
        #expect(SampleVerifier.parsePercent("5") == 5 && SampleVerifier.parsePercent("12.5%") == 12.5 && SampleVerifier.parsePercent("100") == 100)
        for bad in ["0", "-1", "100.5", "nan", "inf", "", "%"] { #expect(SampleVerifier.parsePercent(bad) == nil, "\(bad)") }
    }
}
