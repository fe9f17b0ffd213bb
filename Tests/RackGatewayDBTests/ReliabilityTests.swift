import Foundation
import RGWPostgres
import RackGatewayDB
import Testing
import TestSupport

/// docs/design.md section 7's promises under load and faults: consistent archives while the gateway
/// writes, corrupt input found and refused, nothing lost or half-done when a run is cut off.
@Suite("reliability under load and faults")
struct ReliabilityTests {
    /// Writers doing what the gateway does — audit events through audit.append_event, sessions
    /// created and deleted, users updated, the odd user deleted (cascading) — until stopped.
    final class WriteLoad: @unchecked Sendable {
        private let lock = NSLock()
        private var stop = false
        private var count = 0
        private let group = DispatchGroup()
        private let failure = FirstError()

        init(_ database: TestDatabase, writers: Int) throws {
            let settings = try database.settings
            for writer in 0..<writers {
                spawnThread("write load \(writer)", group: group) { [self] in
                    do {
                        let connection = try Connection(settings: settings, applicationName: "write load")
                        var step = 0
                        while !lock.withLock({ stop }) {
                            step += 1
                            // Writers race each other as the gateway's requests do: a session for a
                            // user another writer just deleted, a deadlock; such a step is retried.
                            do {
                            try connection.execute("""
                                SELECT audit.append_event('api', 'deploy', 'success', 'u\(writer)@example.com', NULL, 'app/\(step)', 'app',
                                                          jsonb_build_object('step', \(step)));
                                INSERT INTO public.user_sessions (user_id, token_hash, expires_at)
                                  SELECT id, decode(md5(random()::text || clock_timestamp()::text), 'hex'), now() + interval '1 day'
                                  FROM public.users ORDER BY random() LIMIT 1;
                                UPDATE public.users SET name = md5(random()::text), updated_at = now()
                                  WHERE id = (SELECT id FROM public.users ORDER BY random() LIMIT 1);
                                DELETE FROM public.user_sessions WHERE id = (SELECT min(id) FROM public.user_sessions WHERE \(step) % 2 = 0);
                                """)
                            if step % 50 == 0 {
                                try connection.execute("""
                                    DELETE FROM public.users WHERE id = (SELECT max(id) FROM public.users);
                                    INSERT INTO public.users (email) VALUES ('new-\(writer)-\(step)-' || md5(random()::text) || '@example.com')
                                    """)
                            }
                            } catch let error as PostgresError where ["23503", "23505", "40P01"].contains(error.sqlState ?? "") {
                                continue
                            }
                            lock.withLock { count += 1 }
                        }
                    } catch {
                        failure.record(error)
                    }
                }
            }
        }

        var operations: Int { lock.withLock { count } }

        func finish() throws -> Int {
            lock.withLock { stop = true }
            group.wait()
            if let error = failure.error { throw error }
            return operations
        }
    }

    @Test func backupsTakenDuringHeavyWritesDrillClean() throws {
        try TestDatabase.withSampleData(events: 20000) { source in
            let directory = try TestArchives.temporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let load = try WriteLoad(source, writers: 2)
            var archives: [String] = []
            var during: [Int] = []
            for _ in 0..<3 {
                let before = load.operations
                archives.append(try TestArchives.backup(source, directory: directory, chunkSize: 64 * 1024).file)
                during.append(load.operations - before)
                Thread.sleep(forTimeInterval: 1.1)
            }
            let total = try load.finish()
            #expect(total > 0 && during.allSatisfy { $0 > 0 }, "writes went on during every backup: \(during)")
            for archive in archives {
                // Restored, every check: rows and fingerprints as the manifest says, constraints
                // (so no orphaned foreign key) and indexes valid, the audit chain gap-free and linked.
                let drill = try CLI.run(["drill", archive, "--json", "--database-url", source.url])
                #expect(drill.status == 0, "\(drill)")
                let report = try CLI.decode(DrillReport.self, drill.stdout)
                #expect(report.ok && report.checks.contains { $0.name == "audit chain" && $0.ok }, "\(report.checks)")
            }
        }
    }

    @Test func anOpenTransactionIsNotDumpedAndDDLDuringABackupWaitsOrFailsItsOwnWay() throws {
        try TestDatabase.withSampleData(events: 40000) { source in
            let directory = try TestArchives.temporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: directory) }
            // A long transaction holding row locks and an uncommitted user: the backup neither waits
            // for it nor sees its rows.
            let open = try source.connect()
            try open.execute("BEGIN; UPDATE public.users SET name = 'uncommitted' WHERE id IN (SELECT id FROM public.users LIMIT 10); INSERT INTO public.users (email) VALUES ('uncommitted@example.com')")
            // A migration's DDL attempted while the backup runs waits for the backup's ACCESS SHARE
            // locks; with a lock timeout it gives up, and the backup is not disturbed.
            let ddlSettings = try source.settings
            let adminSettings = try TestCluster.shared().adminSettings
            let ddlOutcome = ResultHolder()
            let watcher = Thread {
                guard let ddl = try? Connection(settings: ddlSettings), let admin = try? Connection(settings: adminSettings) else {
                    ddlOutcome.set("no connection")
                    return
                }
                for _ in 0..<500 {
                    if (try? admin.query("SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND query LIKE 'COPY %TO STDOUT%'", [source.name]).scalar) != "0" { break }
                    Thread.sleep(forTimeInterval: 0.01)
                }
                do {
                    try ddl.execute("SET lock_timeout = '1s'; ALTER TABLE public.users ADD COLUMN during_backup int")
                    ddlOutcome.set("applied")
                } catch let error as PostgresError {
                    ddlOutcome.set(error.sqlState ?? "error")
                } catch {
                    ddlOutcome.set("error")
                }
            }
            watcher.start()
            let report = try TestArchives.backup(source, directory: directory, chunkSize: 64 * 1024)
            while ddlOutcome.get() == nil { Thread.sleep(forTimeInterval: 0.05) }
            try open.execute("ROLLBACK")
            #expect(ddlOutcome.get() == "55P03", "the DDL timed out waiting for the backup's locks: \(ddlOutcome.get() ?? "")")
            #expect(try ArchiveVerifier().verify(path: report.file).ok)
            try TestDatabase.with { restored in
                try TestArchives.restoreWithStockTools(report.file, into: restored)
                #expect(try restored.psql("SELECT count(*) FROM public.users WHERE email = 'uncommitted@example.com' OR name = 'uncommitted'").trimmingCharacters(in: .whitespacesAndNewlines) == "0")
            }
        }
    }

    final class ResultHolder: @unchecked Sendable {
        private let lock = NSLock()
        private var value: String?
        func set(_ new: String) { lock.withLock { value = new } }
        func get() -> String? { lock.withLock { value } }
    }

    /// Every truncation at a member boundary and inside every member, and a flipped byte in the
    /// header, a data chunk, the manifest and the trailer: `verify` exits 2 naming the problem, and
    /// `restore` refuses before creating anything.
    @Test func truncatedAndFlippedArchivesAreRefusedBeforeAnythingChanges() throws {
        try TestDatabase.withMigrated { source in
            try source.psql("INSERT INTO users (email) SELECT 'u' || i || '@example.com' FROM generate_series(1, 3000) i")
            let directory = try TestArchives.temporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let report = try TestArchives.backup(source, directory: directory, chunkSize: 32 * 1024)
            let original = try [UInt8](Data(contentsOf: URL(fileURLWithPath: report.file)))
            let manifest = try ArchiveReader(path: report.file).manifest
            let trailerOffset = original.count - ArchiveTrailer.memberLength
            var cuts = Set<Int>()
            for member in manifest.members { cuts.insert(member.offset); cuts.insert(member.offset + member.length / 2) }
            cuts.insert(trailerOffset)
            cuts.insert(trailerOffset + ArchiveTrailer.memberLength / 2)
            cuts.insert(original.count - 1)
            let data = try #require(manifest.members.first { $0.kind == .data })
            let flips = [("header", 20), ("data chunk", data.offset + data.length / 2), ("manifest", manifest.members.last!.offset + manifest.members.last!.length + 30),
                         ("trailer", trailerOffset + 40)]
            var inputs: [(String, [UInt8])] = cuts.sorted().map { ("cut at \($0)", Array(original[..<$0])) }
            for (place, offset) in flips {
                var bytes = original
                bytes[offset] ^= 0x5a
                inputs.append(("\(place) byte \(offset) flipped", bytes))
            }
            let bad = directory + "/bad"
            try FileManager.default.createDirectory(atPath: bad, withIntermediateDirectories: true)
            let name = URL(fileURLWithPath: report.file).lastPathComponent
            for (what, bytes) in inputs {
                let path = bad + "/" + name
                try Data(bytes).write(to: URL(fileURLWithPath: path))
                try FileManager.default.copyItem(atPath: report.file + ".sha256", toPath: path + ".sha256")
                defer { unlink(path); unlink(path + ".sha256") }
                let verify = try CLI.run(["verify", path])
                #expect(verify.status == 2 || (verify.status == 1 && bytes.isEmpty), "\(what): \(verify)")
                #expect(!verify.stderr.isEmpty && verify.stderr.split(separator: "\n").count <= 60, "\(what): one clear message")
                let target = "rgw_never_\(UUID().uuidString.prefix(8).lowercased())"
                let restore = try CLI.run(["restore", path, "--target-url", source.cluster.url(database: target)])
                #expect(restore.status != 0, "\(what): \(restore)")
                #expect(try !TestDatabase.named(target).exists, "\(what): nothing created")
            }
            #expect(inputs.count >= 20, "\(inputs.count) damaged archives tried")
            FileHandle.standardError.write(Data("damaged archives tried: \(inputs.count)\n".utf8))
            // A sidecar that does not match: verify 2, restore 2, nothing created.
            try "0000000000000000000000000000000000000000000000000000000000000000  \(name)\n".write(toFile: report.file + ".sha256", atomically: true, encoding: .utf8)
            #expect(try CLI.run(["verify", report.file]).status == 2)
            let target = "rgw_never_\(UUID().uuidString.prefix(8).lowercased())"
            let restore = try CLI.run(["restore", report.file, "--target-url", source.cluster.url(database: target)])
            #expect(restore.status == 2 && restore.stderr.contains("does not verify"), "\(restore)")
            #expect(try !TestDatabase.named(target).exists)
        }
    }
}
