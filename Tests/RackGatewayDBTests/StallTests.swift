import Foundation
import RGWPostgres
import RackGatewayDB
import Testing
import TestSupport

/// A run that stops moving fails with a clear message instead of hanging "in progress".
@Suite("stall watchdog")
struct StallTests {
    /// A bin directory whose pg_dump answers --version like the real one, then hangs (a lock it
    /// never gets); the marker names its process.
    static func hangingPgDump(in directory: String) throws -> (bin: String, marker: String) {
        let bin = directory + "/bin"
        try FileManager.default.createDirectory(atPath: bin, withIntermediateDirectories: true)
        let real = try Shell.runChecked("/bin/sh", ["-c", "command -v pg_dump"]).trimmingCharacters(in: .whitespacesAndNewlines)
        let marker = "rgw-hang-\(UUID().uuidString.prefix(8))"
        try TestArchives.writeExecutable("#!/bin/sh\n[ \"$1\" = --version ] && exec \(real) --version\nexec python3 -c 'import time; time.sleep(600)' \(marker)\n",
                                         to: bin + "/pg_dump")
        return (bin, marker)
    }

    @Test func aBackupWhosePgDumpHangsFailsCleanly() throws {
        try TestDatabase.with { source in
            try source.psql("CREATE TABLE t (id int); INSERT INTO t SELECT generate_series(1, 100)")
            let directory = try TestArchives.temporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let (bin, marker) = try Self.hangingPgDump(in: directory)
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

    /// Ctrl-C while the archive is being written: exit 130 and its `.partial` file is gone (the
    /// archive writer's clean-up discards it).
    @Test func aBackupInterruptedWhileWritingLeavesNoPartialFile() throws {
        try TestDatabase.with { source in
            try source.psql("CREATE TABLE t (id int); INSERT INTO t SELECT generate_series(1, 100)")
            let directory = try TestArchives.temporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let (bin, marker) = try Self.hangingPgDump(in: directory)
            // A signal from kill (not the terminal) reaches the tool only: stop its pg_dump afterwards.
            defer { _ = try? Shell.run("/usr/bin/pkill", ["-f", marker]) }
            let archives = directory + "/archives"
            // Interrupt once the .partial exists (the header is written before pg_dump's pre-data).
            let script = #"""
                "$@" & pid=$!
                for i in $(seq 100); do ls "$ARCHIVES"/*.partial >/dev/null 2>&1 && break; sleep 0.1; done
                ls "$ARCHIVES"/*.partial >/dev/null 2>&1 && echo "partial seen"
                kill -INT $pid
                wait $pid
                echo "exit=$?"
                """#
            let result = try Shell.run("/bin/sh", ["-c", script, "sh", CLI.executable, "backup", "--dir", archives],
                                       environment: CLI.baseEnvironment().merging(["RGW_DATABASE_URL": source.url, "RGW_PG_BIN_DIR": bin,
                                                                                   "ARCHIVES": archives]) { $1 })
            #expect(result.stdout.contains("partial seen") && result.stdout.contains("exit=130"), "\(result.stdout)\n\(result.stderr)")
            let left = (try? FileManager.default.contentsOfDirectory(atPath: archives)) ?? []
            #expect(left.allSatisfy { !$0.hasSuffix(".sql.gz") && !$0.hasSuffix(".partial") }, "\(left)")
        }
    }

    @Test func aRestoreWhoseNetworkGoesSilentFailsCleanly() throws {
        try Self.withArchiveBehindProxy { _, archive, cluster, proxy in
            try TestDatabase.withUnused { target in
                let run = try Self.freezeDuringCopy(proxy, ["restore", archive, "--target-url", proxy.route(target.url, clusterPort: cluster.port),
                                                            "--jobs", "2", "--stall-timeout", "6s"], databases: target.name, limit: 60)
                let result = try #require(run.result, "the restore ended by itself")
                #expect(result.status == 1 && result.stderr.contains("the restore into") && result.stderr.contains("stalled"), "\(result)")
                proxy.cut()
                let comment = try target.psql("SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = current_database()")
                #expect(comment.contains("INCOMPLETE restore"), "a half-restored database never looks finished: \(comment)")
            }
        }
    }

    @Test func aDrillWhoseNetworkGoesSilentEndsAndSaysWhatMayBeLeft() throws {
        try Self.withArchiveBehindProxy { source, archive, cluster, proxy in
            let run = try Self.freezeDuringCopy(proxy, ["drill", archive, "--database-url", proxy.route(source.url, clusterPort: cluster.port),
                                                        "--jobs", "2", "--stall-timeout", "6s"], databases: "rgw_drill_%", limit: 90)
            let result = try #require(run.result, "the drill ended by itself")
            #expect(run.seconds < 60, "stall (6 s) plus bounded clean-up (20 s)")
            #expect(result.status == 1 && result.stderr.contains("the drill on") && result.stderr.contains("stalled"), "\(result)")
            #expect(result.stderr.contains("did not finish") && result.stderr.contains("rgw_drill_"), "\(result)")
            proxy.cut()
            if let scratch = run.database {
                let admin = try Connection(settings: try cluster.adminSettings)
                _ = try? admin.execute("DROP DATABASE IF EXISTS \(SQL.identifier(scratch)) WITH (FORCE)")
            }
        }
    }

    /// A database with sample data, an archive of it in small chunks, and a TCP proxy in front of
    /// the test cluster: (database, archive path, cluster, proxy).
    static func withArchiveBehindProxy(_ body: (TestDatabase, String, TestCluster, TCPProxy) throws -> Void) throws {
        try TestDatabase.withSampleData(events: 40000) { source in
            let directory = try TestArchives.temporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let archive = try TestArchives.backup(source, directory: directory, chunkSize: 256 * 1024).file
            let cluster = try TestCluster.shared()
            try body(source, archive, cluster, try TCPProxy(upstreamPort: cluster.port))
        }
    }

    /// Run the CLI with `arguments` on another thread; once a COPY into a database whose name is
    /// LIKE `databases` is under way, the proxy goes silent. The run's result (nil when it did not
    /// end within `limit` seconds of the freeze), how long it took after the freeze, and that database.
    static func freezeDuringCopy(_ proxy: TCPProxy, _ arguments: [String], databases: String, limit: Double)
        throws -> (result: CLI.Result?, seconds: Double, database: String?) {
        let box = ResultBox()
        Thread { box.result = try? CLI.run(arguments) }.start()
        let admin = try Connection(settings: try TestCluster.shared().adminSettings)
        var database: String?
        // Until a COPY runs (a loaded CI machine may take tens of seconds to get there): freezing
        // earlier would test another moment than the one named.
        let waiting = Date()
        while database == nil && box.result == nil && Date().timeIntervalSince(waiting) < 120 {
            database = try admin.query("SELECT d.datname FROM pg_stat_progress_copy p JOIN pg_database d ON d.oid = p.datid WHERE d.datname LIKE $1 LIMIT 1",
                                       [databases]).scalar
            if database == nil { Thread.sleep(forTimeInterval: 0.02) }
        }
        guard database != nil else { throw ToolError(.failed, "no COPY into \(databases) was seen; the run: \(String(describing: box.result))") }
        proxy.freeze()
        let started = Date()
        while box.result == nil && Date().timeIntervalSince(started) < limit { Thread.sleep(forTimeInterval: 0.1) }
        return (box.result, Date().timeIntervalSince(started), database)
    }

    final class ResultBox: @unchecked Sendable {
        var result: CLI.Result?
    }
}
