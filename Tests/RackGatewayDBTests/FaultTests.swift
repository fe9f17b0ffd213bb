import Foundation
import RGWPostgres
import RackGatewayDB
import Testing
import TestSupport

/// Connections cut under a run, TLS refused, runs that overlap: a clear error, a non-zero exit,
/// nothing lost.
@Suite("faults and overlapping runs")
struct FaultTests {
    /// Run `arguments` on another thread; when `ready` (polled) says so, terminate the server
    /// processes whose query matches `pattern` on database `database`; the CLI's result.
    static func terminating(_ pattern: String, on database: String, while arguments: [String], environment: [String: String] = [:]) throws -> CLI.Result {
        let box = Box()
        let done = DispatchSemaphore(value: 0)
        Thread {
            box.result = try? CLI.run(arguments, environment: environment)
            done.signal()
        }.start()
        let admin = try Connection(settings: try TestCluster.shared().adminSettings)
        var terminated = 0
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline, done.wait(timeout: .now()) != .success {
            terminated = Int(try admin.query("""
                SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = $1 AND query LIKE $2 AND pid <> pg_backend_pid()
                """, [database, pattern]).scalar ?? "0") ?? 0
            if terminated > 0 { break }
            Thread.sleep(forTimeInterval: 0.01)
        }
        done.wait()
        #expect(terminated > 0, "a connection was terminated mid-COPY")
        return try #require(box.result)
    }

    final class Box: @unchecked Sendable { var result: CLI.Result? }

    @Test func aConnectionTerminatedDuringCopyFailsTheBackupAndTheRestoreCleanly() throws {
        try TestDatabase.withSampleData(events: 40000) { source in
            let directory = try TestArchives.temporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let backup = try Self.terminating("COPY %TO STDOUT%", on: source.name,
                                              while: ["backup", "--dir", directory + "/cut", "--jobs", "2", "--compress-level", "9"],
                                              environment: ["RGW_DATABASE_URL": source.url])
            #expect(backup.status == 1 && (backup.stderr.contains("terminat") || backup.stderr.contains("connection")), "\(backup)")
            let left = (try? FileManager.default.contentsOfDirectory(atPath: directory + "/cut")) ?? []
            #expect(left.allSatisfy { !$0.hasSuffix(".sql.gz") && !$0.hasSuffix(".partial") && !$0.hasSuffix(".sha256") }, "\(left)")

            let archive = try TestArchives.backup(source, directory: directory, chunkSize: 64 * 1024).file
            try TestDatabase.withUnused { target in
                let restore = try Self.terminating("COPY %FROM STDIN%", on: target.name,
                                                   while: ["restore", archive, "--target-url", target.url, "--jobs", "2"])
                #expect(restore.status == 1 && restore.stderr.contains("FAILED"), "\(restore)")
                let comment = try target.psql("SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = current_database()")
                #expect(comment.contains("FAILED restore"), "\(comment)")
            }
        }
    }

    @Test func twoDrillsAtOnceBothPassInTheirOwnScratchDatabases() throws {
        try TestDatabase.withSampleData(events: 5000) { source in
            let directory = try TestArchives.temporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let archive = try TestArchives.backup(source, directory: directory).file
            let results = LockedList<CLI.Result>()
            // --keep: both scratch databases live until the test drops them, so the second drill's
            // CREATE DATABASE meets the first's name whenever they start in the same second (without
            // it, a drill that finished and dropped its database first would free the name for the
            // other, and two equal names would say nothing).
            DispatchQueue.concurrentPerform(iterations: 2) { _ in
                if let result = try? CLI.run(["drill", archive, "--json", "--keep", "--database-url", source.url]) { results.add(result) }
            }
            #expect(results.items.count == 2)
            let reports = try results.items.map { try CLI.decode(DrillReport.self, $0.stdout) }
            defer { for report in reports { try? TestDatabase.named(report.scratchDatabase).drop() } }
            let allPassed = reports.allSatisfy { $0.ok }
            #expect(allPassed, "\(results.items)")
            #expect(Set(reports.map(\.scratchDatabase)).count == 2, "two scratch databases: \(reports.map(\.scratchDatabase))")
            for report in reports { #expect(try TestDatabase.named(report.scratchDatabase).exists, "\(report.scratchDatabase) kept") }
            let log = try String(contentsOfFile: directory + "/drills.jsonl", encoding: .utf8)
            #expect(log.split(separator: "\n").count == 2, "both drills logged, one line each")
        }
    }

    @Test func aPruneDuringABackupLeavesTheBackupAlone() throws {
        try TestDatabase.withSampleData(events: 40000) { source in
            let directory = try TestArchives.temporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let first = try TestArchives.backup(source, directory: directory).file
            Thread.sleep(forTimeInterval: 1.1)
            let box = Box()
            let done = DispatchSemaphore(value: 0)
            Thread {
                box.result = try? CLI.run(["backup", "--dir", directory, "--compress-level", "9", "--jobs", "1"], environment: ["RGW_DATABASE_URL": source.url])
                done.signal()
            }.start()
            var pruned: CLI.Result?
            for _ in 0..<500 {
                if (try FileManager.default.contentsOfDirectory(atPath: directory)).contains(where: { $0.hasSuffix(".partial") }) {
                    pruned = try CLI.run(["prune", "--dir", directory, "--keep-last", "1"])
                    break
                }
                Thread.sleep(forTimeInterval: 0.01)
            }
            done.wait()
            let prune = try #require(pruned, "prune ran while the backup was writing")
            #expect(prune.status == 0 && prune.stdout.contains("keep    \(URL(fileURLWithPath: first).lastPathComponent)"), "\(prune)")
            let backup = try #require(box.result)
            #expect(backup.status == 0, "\(backup)")
            let archives = try FileManager.default.contentsOfDirectory(atPath: directory).filter { $0.hasSuffix(".sql.gz") }
            #expect(archives.count == 2, "\(archives)")
            for archive in archives { #expect(try ArchiveVerifier().verify(path: directory + "/" + archive).ok) }
        }
    }

    @Test func aRoleThatMayNotCreateDatabasesGetsAClearErrorAndNothingChanges() throws {
        let cluster = try TestCluster.shared()
        let role = "rgw_nocreate_\(UUID().uuidString.prefix(6).lowercased())"
        let admin = try Connection(settings: try cluster.adminSettings)
        try admin.execute("CREATE ROLE \(role) LOGIN PASSWORD 'nocreate-pw'")
        defer { _ = try? admin.execute("DROP ROLE IF EXISTS \(role)") }
        try TestDatabase.with { source in
            try source.psql("CREATE TABLE t (id int); INSERT INTO t SELECT generate_series(1, 100)")
            let directory = try TestArchives.temporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let archive = try TestArchives.backup(source, directory: directory).file
            let target = "rgw_never_\(UUID().uuidString.prefix(8).lowercased())"
            let restore = try CLI.run(["restore", archive, "--target-url", cluster.url(database: target, user: role, password: "nocreate-pw")])
            #expect(restore.status == 1 && restore.stderr.contains("permission denied to create database"), "\(restore)")
            #expect(!restore.output.contains("nocreate-pw"))
            #expect(try !TestDatabase.named(target).exists)
        }
    }

    @Test func aServerThatRequiresTLSRefusesAClientThatWillNotUseIt() throws {
        let cluster = try TestCluster.startPrivate()
        defer { cluster.stop() }
        let data = try #require(cluster.directory) + "/data"
        try Shell.runChecked(asPostgres: getuid() == 0, "/usr/bin/openssl", ["req", "-new", "-x509", "-days", "2", "-nodes", "-subj", "/CN=127.0.0.1",
                                                                            "-keyout", data + "/server.key", "-out", data + "/server.crt"])
        chmod(data + "/server.key", 0o600)
        try "local all all trust\nhostssl all all 127.0.0.1/32 scram-sha-256\nhostnossl all all 127.0.0.1/32 reject\n"
            .write(toFile: data + "/pg_hba.conf", atomically: false, encoding: .utf8)
        let admin = try Connection(settings: try cluster.adminSettings)
        try admin.execute("ALTER SYSTEM SET ssl = on")
        _ = try admin.query("SELECT pg_reload_conf()")
        Thread.sleep(forTimeInterval: 0.5)
        let url = cluster.url(database: "postgres")
        let refused = try CLI.run(["check", "--database-url", url + "?sslmode=disable"])
        #expect(refused.status == 1 && (refused.output.contains("no encryption") || refused.output.contains("SSL")), "\(refused)")
        #expect(!refused.output.contains(cluster.password))
        let backup = try CLI.run(["backup", "--database-url", url + "?sslmode=disable", "--dir", NSTemporaryDirectory() + "/rgw-tls-\(UUID().uuidString.prefix(6))"])
        #expect(backup.status == 1 && backup.stderr.contains("cannot connect"), "\(backup)")
        let encrypted = try CLI.run(["check", "--database-url", url + "?sslmode=require"])
        #expect(encrypted.stdout.contains("TLS"), "\(encrypted)")
        #expect(!encrypted.stdout.contains("FAIL  connection"), "\(encrypted)")
    }
}
