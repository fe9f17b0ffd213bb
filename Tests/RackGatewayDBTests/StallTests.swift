import Foundation
import Postgres
import RackGatewayDB
import Testing
import TestSupport

/// A run that stops moving fails with a clear message instead of hanging "in progress".
@Suite("stall watchdog")
struct StallTests {
    @Test func aBackupWhosePgDumpHangsFailsCleanly() throws {
        try TestDatabase.with { source in
            try source.psql("CREATE TABLE t (id int); INSERT INTO t SELECT generate_series(1, 100)")
            let directory = try BackupTests.temporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let bin = directory + "/bin"
            try FileManager.default.createDirectory(atPath: bin, withIntermediateDirectories: true)
            // pg_dump that answers --version like the real one, then hangs (a lock it never gets).
            let real = try Shell.runChecked("/bin/sh", ["-c", "command -v pg_dump"]).trimmingCharacters(in: .whitespacesAndNewlines)
            let marker = "rgw-hang-\(UUID().uuidString.prefix(8))"
            try "#!/bin/sh\n[ \"$1\" = --version ] && exec \(real) --version\nexec python3 -c 'import time; time.sleep(600)' \(marker)\n"
                .write(toFile: bin + "/pg_dump", atomically: true, encoding: .utf8)
            chmod(bin + "/pg_dump", 0o755)
            let started = Date()
            let result = try CLI.run(["backup", "--dir", directory + "/archives", "--stall-timeout", "3s"],
                                     environment: ["RGW_DATABASE_URL": source.url, "RGW_PG_BIN_DIR": bin])
            #expect(result.status == 1, "\(result)")
            #expect(result.stderr.contains("stalled: nothing moved for 3s") && result.stderr.contains("--stall-timeout"), "\(result)")
            #expect(Date().timeIntervalSince(started) < 30)
            let left = (try? FileManager.default.contentsOfDirectory(atPath: directory + "/archives")) ?? []
            #expect(left.allSatisfy { !$0.hasSuffix(".sql.gz") && !$0.hasSuffix(".partial") }, "\(left)")
            Thread.sleep(forTimeInterval: 0.3)
            let children = try Shell.run("/usr/bin/pgrep", ["-f", marker])
            #expect(children.status != 0, "the hung pg_dump was stopped with the run: \(children.stdout)")
        }
    }

    @Test func aRestoreWhoseNetworkGoesSilentFailsCleanly() throws {
        try TestDatabase.withSampleData(events: 40000) { source in
            let directory = try BackupTests.temporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let archive = try BackupTests.backup(source, directory: directory, chunkSize: 256 * 1024).file
            let cluster = try TestCluster.shared()
            let proxy = try TCPProxy(upstreamPort: cluster.port)
            try TestDatabase.withUnused { target in
                let box = ResultBox()
                let url = proxy.route(target.url, clusterPort: cluster.port)
                let thread = Thread {
                    box.result = try? CLI.run(["restore", archive, "--target-url", url, "--jobs", "2", "--stall-timeout", "3s"])
                }
                thread.start()
                // Once the data is flowing, the network goes silent.
                let admin = try Connection(settings: try cluster.adminSettings)
                for _ in 0..<300 {
                    if try admin.query("SELECT count(*) FROM pg_stat_progress_copy p JOIN pg_database d ON d.oid = p.datid WHERE d.datname = $1", [target.name]).scalar != "0" { break }
                    Thread.sleep(forTimeInterval: 0.02)
                }
                proxy.freeze()
                let started = Date()
                while box.result == nil && Date().timeIntervalSince(started) < 60 { Thread.sleep(forTimeInterval: 0.1) }
                let result = try #require(box.result, "the restore ended by itself")
                #expect(result.status == 1 && result.stderr.contains("the restore into") && result.stderr.contains("stalled"), "\(result)")
                proxy.cut()
                let comment = try target.psql("SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = current_database()")
                #expect(comment.contains("INCOMPLETE restore"), "a half-restored database never looks finished: \(comment)")
            }
        }
    }

    @Test func aDrillWhoseNetworkGoesSilentEndsAndSaysWhatMayBeLeft() throws {
        try TestDatabase.withSampleData(events: 40000) { source in
            let directory = try BackupTests.temporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let archive = try BackupTests.backup(source, directory: directory, chunkSize: 256 * 1024).file
            let cluster = try TestCluster.shared()
            let proxy = try TCPProxy(upstreamPort: cluster.port)
            let box = ResultBox()
            let url = proxy.route(source.url, clusterPort: cluster.port)
            let thread = Thread {
                box.result = try? CLI.run(["drill", archive, "--database-url", url, "--jobs", "2", "--stall-timeout", "3s"])
            }
            thread.start()
            let admin = try Connection(settings: try cluster.adminSettings)
            var scratch: String?
            for _ in 0..<500 {
                scratch = try admin.query("SELECT d.datname FROM pg_stat_progress_copy p JOIN pg_database d ON d.oid = p.datid WHERE d.datname LIKE 'rgw_drill_%' LIMIT 1").scalar
                if scratch != nil { break }
                Thread.sleep(forTimeInterval: 0.02)
            }
            proxy.freeze()
            let started = Date()
            while box.result == nil && Date().timeIntervalSince(started) < 90 { Thread.sleep(forTimeInterval: 0.1) }
            let result = try #require(box.result, "the drill ended by itself")
            #expect(Date().timeIntervalSince(started) < 60, "stall (3 s) plus bounded clean-up (20 s)")
            #expect(result.status == 1 && result.stderr.contains("the drill on") && result.stderr.contains("stalled"), "\(result)")
            #expect(result.stderr.contains("did not finish") && result.stderr.contains("rgw_drill_"), "\(result)")
            proxy.cut()
            if let scratch { _ = try? admin.execute("DROP DATABASE IF EXISTS \(SQL.identifier(scratch)) WITH (FORCE)") }
        }
    }

    final class ResultBox: @unchecked Sendable {
        var result: CLI.Result?
    }
}
