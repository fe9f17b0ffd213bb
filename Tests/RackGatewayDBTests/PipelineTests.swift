import RGWCompression
import RGWCrypto
import Foundation
import RGWPostgres
import Testing
import TestSupport
@testable import RackGatewayDB

/// `restore --convox-app` against a real server and the fake `convox` (Tests/Fixtures/fake-convox).
@Suite("Convox restore pipeline")
struct PipelineTests {
    /// A live database with 200 users, backed up, then given 50 more (so a swap is visible).
    static func withLiveDatabase(_ body: (TestDatabase, String) throws -> Void) throws {
        try TestDatabase.withMigrated { live in
            defer {
                if let admin = try? Connection(settings: try live.cluster.adminSettings),
                   let rows = try? admin.query("SELECT datname FROM pg_database WHERE datname LIKE $1", [live.name + "\\_%"]).rows {
                    for row in rows { _ = try? admin.execute("DROP DATABASE IF EXISTS \(SQL.identifier(row[0]!)) WITH (FORCE)") }
                }
            }
            try live.psql("INSERT INTO users (email) SELECT 'u' || i || '@example.com' FROM generate_series(1, 200) i")
            let directory = try TestArchives.temporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let archive = try TestArchives.backup(live, directory: directory, chunkSize: 16 * 1024).file
            try live.psql("INSERT INTO users (email) SELECT 'late' || i || '@example.com' FROM generate_series(1, 50) i")
            try body(live, archive)
        }
    }

    static func users(_ database: TestDatabase) throws -> String {
        try database.psql("SELECT count(*) FROM users").trimmingCharacters(in: .whitespacesAndNewlines)
    }

    @Test func swapRestoresScalesBackToTheRememberedCountAndKeepsThePrevious() throws {
        let rack = try FakeRack(count: 3)
        defer { rack.remove() }
        try Self.withLiveDatabase { live, archive in
            let result = try CLI.run(["restore", archive, "--convox-app", rack.app, "--yes", "--database-url", live.url, "--json"],
                                     environment: rack.environment())
            #expect(result.status == 0, "\(result)")
            #expect(try Self.users(live) == "200", "the live name holds the restored copy")
            #expect(try rack.count() == 3, "back to the remembered count, not a fixed one")
            let report = try CLI.decode(PipelineReport.self, result.stdout)
            let previous = try #require(report.previousDatabase)
            #expect(try Self.users(TestDatabase.named(previous)) == "250", "the previous database is kept for rollback")
            #expect(report.steps.map(\.name) == ["preflight", "remember count", "scale down", "wait for processes", "terminate sessions", "load", "migrate", "swap", "scale up"])
            // No data was loaded while a process of the service was listed: ps was polled until empty first.
            let calls = try rack.calls
            let down = try #require(calls.firstIndex { $0.starts(with: ["scale", "gateway", "--count", "0"]) })
            let up = try #require(calls.lastIndex { $0.starts(with: ["scale", "gateway", "--count", "3"]) })
            #expect(calls[down..<up].filter { $0.first == "ps" }.count >= 3, "\(calls)")
            #expect(report.steps.first { $0.name == "wait for processes" }?.detail.contains("3 polls") == true, "\(report.steps)")
            #expect(calls.allSatisfy { $0.contains("-a") || $0.first == "api" }, "every call names the app")
            #expect(report.recovery.contains { $0.contains("RENAME TO") })
            // Pasted with PGPASSWORD set, the way back reaches this server, not a local socket.
            let back = try #require(report.commands?.first { $0.purpose == "To go back to the previous database" })
            #expect(back.commands.contains { $0.hasPrefix("psql postgres://postgres@") && $0.contains(":\(live.cluster.port)/postgres -c 'SELECT count(pg_catalog.pg_terminate_backend(") && $0.contains("; ALTER DATABASE") }, "\(back)")
            // Issue 29: the suffix is the archive names' digits, a valid unquoted identifier.
            #expect(previous.firstMatch(of: /^\w+_pre_restore_\d{8}_\d{6}$/) != nil, "\(previous)")
            #expect(!result.output.contains(live.cluster.password))
        }
    }

    /// Issue 19: the pipeline takes --identity and --verify-key; an unsigned archive is refused in
    /// the preflight, before the service is touched; an encrypted, signed one restores.
    @Test func theEncryptedPipelineDemandsTheSignatureBeforeScalingDown() throws {
        let rack = try FakeRack(count: 2)
        defer { rack.remove() }
        try Self.withLiveDatabase { live, archive in
            let keys = try TestKeys.make()
            defer { try? FileManager.default.removeItem(atPath: keys.directory) }
            let unsigned = try CLI.run(["restore", archive, "--convox-app", rack.app, "--yes", "--database-url", live.url, "--verify-key", keys.publicKeyFile],
                                       environment: rack.environment())
            #expect(unsigned.status != 0 && unsigned.output.contains("is not signed"), "\(unsigned)")
            #expect(((try? rack.calls) ?? []).allSatisfy { !$0.starts(with: ["scale"]) }, "nothing scaled")
            #expect(try Self.users(live) == "250")

            let directory = URL(fileURLWithPath: archive).deletingLastPathComponent().path
            let encrypted = try TestArchives.backup(live, directory: directory,
                                                    keys: BackupKeys(recipients: [try AgeRecipient(keys.recipient)], signKey: try KeyFiles.signKey(keys.signKey)))
            let result = try CLI.run(["restore", encrypted.file, "--convox-app", rack.app, "--yes", "--database-url", live.url,
                                      "--identity", keys.identity, "--verify-key", keys.publicKeyFile], environment: rack.environment())
            #expect(result.status == 0, "\(result)")
            #expect(try Self.users(live) == "250" && rack.count() == 2)
        }
    }

    @Test func aFailedLoadLeavesTheLiveDatabaseAndScalesBack() throws {
        let rack = try FakeRack(count: 1)
        defer { rack.remove() }
        try Self.withLiveDatabase { live, archive in
            let manifest = try ArchiveReader(path: archive).manifest
            let member = try #require(manifest.members.last { $0.kind == .data })
            try TestArchives.tamper(archive, sidecarToo: true) { $0[member.offset + member.length / 2] ^= 0x5A }
            let result = try CLI.run(["restore", archive, "--convox-app", rack.app, "--yes", "--database-url", live.url],
                                     environment: rack.environment())
            #expect(result.status == 1, "\(result)")
            #expect(result.stderr.contains("stopped at load: ") && result.stderr.contains("live database \(live.name) is untouched"), "\(result)")
            #expect(try Self.users(live) == "250", "the live database is untouched")
            #expect(try rack.count() == 1, "scaled back to the remembered 1")
            let admin = try Connection(settings: try live.cluster.adminSettings)
            #expect(try admin.query("SELECT count(*) FROM pg_database WHERE datname LIKE $1", [live.name + "\\_restore\\_%"]).scalar == "0")
        }
    }

    @Test func aFailingScaleUpExitsOneWithTheCommandToRun() throws {
        let rack = try FakeRack(count: 3)
        defer { rack.remove() }
        try Self.withLiveDatabase { live, archive in
            let result = try CLI.run(["restore", archive, "--convox-app", rack.app, "--yes", "--database-url", live.url],
                                     environment: rack.environment(["FAKE_CONVOX_FAIL_SCALE_TO": "3"]))
            #expect(result.status == 1, "\(result)")
            #expect(result.output.contains("convox scale gateway --count 3 -a \(rack.app)"), "\(result)")
            #expect(try Self.users(live) == "200", "the restore itself finished")
            #expect(try rack.count() == 0)
        }
    }

    @Test func aDryRunChangesNothing() throws {
        let rack = try FakeRack(count: 2)
        defer { rack.remove() }
        try Self.withLiveDatabase { live, archive in
            let result = try CLI.run(["restore", archive, "--convox-app", rack.app, "--dry-run", "--database-url", live.url],
                                     environment: rack.environment())
            #expect(result.status == 0, "\(result)")
            #expect(result.stdout.contains("convox scale gateway --count 0 -a \(rack.app)") && result.stdout.contains("--count 2"), "\(result)")
            // Issue 29: each planned step by its name, not `PLANNED plan 1`.
            #expect(result.stdout.contains("\n  1. scale down: convox scale gateway --count 0 -a \(rack.app)\n") && !result.output.contains("plan 1"), "\(result)")
            #expect(try rack.count() == 2)
            #expect(try rack.calls.allSatisfy { $0.first == "apps" || $0.first == "api" }, "read-only calls only")
            #expect(try Self.users(live) == "250")
        }
    }

    /// The in-place pipeline over a live database (the archive's directory as --dir), with `extra` options.
    static func withInPlaceRun(_ extra: [String], _ body: (_ rack: FakeRack, _ live: TestDatabase, _ directory: String, _ result: CLI.Result) throws -> Void) throws {
        let rack = try FakeRack(count: 2)
        defer { rack.remove() }
        try Self.withLiveDatabase { live, archive in
            let directory = URL(fileURLWithPath: archive).deletingLastPathComponent().path
            let result = try CLI.run(["restore", archive, "--convox-app", rack.app, "--in-place", "--yes", "--database-url", live.url,
                                      "--dir", directory] + extra, environment: rack.environment())
            try body(rack, live, directory, result)
        }
    }

    @Test func inPlaceTakesASafetyBackupFirst() throws {
        try Self.withInPlaceRun(["--json"]) { rack, live, directory, result in
            #expect(result.status == 0, "\(result)")
            let report = try CLI.decode(PipelineReport.self, result.stdout)
            let safety = try #require(report.safetyBackup)
            #expect(try ArchiveReader(path: safety).manifest.tables.first { $0.name == "users" }?.rows == 250)
            // In a folder of its own: --latest, list and check never take the replaced database's state for a backup.
            #expect(safety.hasPrefix(directory + "/pre-restore/"), "\(safety)")
            // Nor one an older version wrote beside the nightlies.
            let name = URL(fileURLWithPath: safety).lastPathComponent
            try FileManager.default.copyItem(atPath: safety, toPath: directory + "/" + name)
            try FileManager.default.copyItem(atPath: safety + ".sha256", toPath: directory + "/" + name + ".sha256")
            let list = try CLI.run(["list", "--dir", directory, "--json"])
            #expect(list.status == 0 && !list.stdout.contains("pre_restore") && list.stdout.contains("rack_gateway_backup_"), "\(list)")
            #expect(try Self.users(live) == "200")
            #expect(try rack.count() == 2)
        }
    }

    @Test func anInPlaceLoadThatFailsAfterTheDropLeavesTheServiceDownWithWorkingRecovery() throws {
        let rack = try FakeRack(count: 2)
        defer { rack.remove() }
        try Self.withLiveDatabase { live, archive in
            let directory = URL(fileURLWithPath: archive).deletingLastPathComponent().path
            let manifest = try ArchiveReader(path: archive).manifest
            let member = try #require(manifest.members.last { $0.kind == .data })
            try TestArchives.tamper(archive, sidecarToo: true) { $0[member.offset + member.length / 2] ^= 0x5A }
            let result = try CLI.run(["restore", archive, "--convox-app", rack.app, "--in-place", "--yes", "--database-url", live.url,
                                      "--dir", directory, "--json"], environment: rack.environment())
            #expect(result.status == 1, "\(result)")
            #expect(try rack.count() == 0, "past the drop the service stays down")
            let report = try CLI.decode(PipelineReport.self, result.stdout)
            let safety = try #require(report.safetyBackup)
            #expect(report.recovery.contains { $0.contains(safety) } && report.recovery.contains { $0.contains("--count 2") }, "\(report.recovery)")
            // The printed recovery works.
            let recovered = try CLI.run(["restore", safety, "--clean", "--yes", "--database-url", live.url])
            #expect(recovered.status == 0, "\(recovered)")
            #expect(try Self.users(live) == "250")
        }
    }

    /// In place, a migrate step that fails leaves the live database holding the restored copy, not
    /// migrated: it is marked FAILED so that `check` fails on it (issue 33's second trial: it had no
    /// mark and `check` passed), and restoring the safety backup as printed clears it.
    @Test func inPlaceWithAFailedMigrateLeavesTheLiveDatabaseMarked() throws {
        try Self.withInPlaceRun(["--migrate-command", "echo migrating; exit 3"]) { rack, live, directory, result in
            #expect(result.status == 1 && result.stderr.contains("holds the restored copy, not migrated") && !result.stderr.contains("was not swapped"), "\(result)")
            #expect(try rack.count() == 0, "past the drop the service stays down")
            let comment = try live.psql("SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = current_database()")
            // The archive by its full location, as a restore's own marks name it: check's fix then restores it when pasted.
            #expect(comment.contains("rack-gateway-db: FAILED restore of \(directory)/rack_gateway_backup_") && comment.contains("the migrate step failed"), "\(comment)")
            let check = try CLI.run(["check", "--database-url", live.url])
            #expect(check.status != 0, "check fails on the mark: \(check)")
            let recovery = PrintedCommands.under("To restore the safety backup, then bring gateway back up:", in: result.stderr)
            #expect(recovery.count == 2, "\(result)")
            for command in recovery {
                let output = try PrintedCommands.run(command, environment: PipelineOutputTests.shell(rack, live))
                #expect(output.status == 0, "\(command): \(output)")
            }
            let after = try live.psql("SELECT coalesce(shobj_description(oid, 'pg_database'), 'none') FROM pg_database WHERE datname = current_database()")
            #expect(after.trimmingCharacters(in: .whitespacesAndNewlines) == "none", "the mark is gone with the safety backup's restore: \(after)")
            #expect(try Self.users(live) == "250" && rack.count() == 2)
        }
    }

    @Test func autoscaledServicesAndStuckProcessesStopBeforeAnyChange() throws {
        let rack = try FakeRack(count: 2)
        defer { rack.remove() }
        try Self.withLiveDatabase { live, archive in
            var state = try String(contentsOfFile: rack.state, encoding: .utf8)
            state = state.replacingOccurrences(of: #""gateway": {"count": 2}"#, with: #""gateway": {"count": 2, "min": 1, "max": 4}"#)
            try state.write(toFile: rack.state, atomically: true, encoding: .utf8)
            let refused = try CLI.run(["restore", archive, "--convox-app", rack.app, "--yes", "--database-url", live.url], environment: rack.environment())
            #expect(refused.status == 1 && refused.output.contains("autoscaled"), "\(refused)")
            #expect(try rack.calls.allSatisfy { $0.first != "scale" || !$0.contains("--count") }, "nothing scaled")
            // KEDA configured with a pinned range (min = max) is autoscaled too; a static count,
            // whose min and max v3 always reports as equal (every other test's rack), is not.
            state = state.replacingOccurrences(of: #""min": 1, "max": 4}"#, with: #""min": 2, "max": 2, "autoscale": true}"#)
            try state.write(toFile: rack.state, atomically: true, encoding: .utf8)
            let keda = try CLI.run(["restore", archive, "--convox-app", rack.app, "--yes", "--database-url", live.url], environment: rack.environment())
            #expect(keda.status == 1 && keda.output.contains("is autoscaled (autoscaling configured, min 2, max 2)"), "\(keda)")
            #expect(try rack.calls.allSatisfy { $0.first != "scale" || !$0.contains("--count") }, "nothing scaled")

            // Processes that never go away: the wait times out, the service is scaled back.
            let stuck = try CLI.run(["restore", archive, "--convox-app", rack.app, "--yes", "--allow-autoscaled", "--stop-timeout", "0.3",
                                     "--database-url", live.url], environment: rack.environment(["FAKE_CONVOX_LINGER": "1000"]))
            #expect(stuck.status == 1 && stuck.output.contains("still listed"), "\(stuck)")
            #expect(try rack.count() == 2)
            #expect(try Self.users(live) == "250")

            // Allowed: the restore goes through and says how to put the range back (--count pinned it).
            var saved = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: rack.state))) as! [String: Any]
            var apps = saved["apps"] as! [String: Any], app = apps[rack.app] as! [String: Any], services = app["services"] as! [String: Any]
            services["gateway"] = ["count": 2, "min": 1, "max": 4]
            app["services"] = services
            apps[rack.app] = app
            saved["apps"] = apps
            try JSONSerialization.data(withJSONObject: saved).write(to: URL(fileURLWithPath: rack.state))
            let allowed = try CLI.run(["restore", archive, "--convox-app", rack.app, "--yes", "--allow-autoscaled", "--database-url", live.url],
                                      environment: rack.environment())
            #expect(allowed.status == 0 && allowed.stdout.contains("WARNING: --allow-autoscaled: ")
                    && allowed.stdout.contains("convox scale gateway --min 1 --max 4 -a \(rack.app)"), "\(allowed)")
            PipelineOutputTests.dropPrevious(live)
        }
    }

    @Test func ctrlCWhileWaitingScalesBackAndChangesNothing() throws {
        let rack = try FakeRack(count: 3)
        defer { rack.remove() }
        try Self.withLiveDatabase { live, archive in
            let script = #"""
                "$@" & pid=$!
                sleep 2.5
                kill -INT $pid
                wait $pid
                echo "exit=$?"
                """#
            let result = try Shell.run("/bin/sh", ["-c", script, "sh", CLI.executable, "restore", archive, "--convox-app", rack.app, "--yes",
                                                   "--database-url", live.url],
                                       environment: CLI.baseEnvironment().merging(rack.environment(["FAKE_CONVOX_LINGER": "1000", "FAKE_CONVOX_SLEEP": "0.2"])) { $1 })
            #expect(result.stdout.contains("exit=130"), "\(result.stdout)\n\(result.stderr)")
            #expect(try rack.count() == 3, "scaled back after Ctrl-C")
            #expect(try Self.users(live) == "250")
        }
    }

    @Test func aFailingScaleDownOrMigrationLeavesTheLiveDatabaseAndTheCount() throws {
        let rack = try FakeRack(count: 2)
        defer { rack.remove() }
        try Self.withLiveDatabase { live, archive in
            let refused = try CLI.run(["restore", archive, "--convox-app", rack.app, "--yes", "--database-url", live.url],
                                      environment: rack.environment(["FAKE_CONVOX_FAIL_SCALE_TO": "0"]))
            #expect(refused.status == 1 && refused.stderr.contains("stopped at scale down: "), "\(refused)")
            // The call as it was made, --wait included (an error about a flag names one it shows).
            #expect(refused.stderr.contains("`convox scale gateway --count 0 --wait -a \(rack.app)` failed (exit"), "\(refused)")
            #expect(try rack.count() == 2)
            #expect(try Self.users(live) == "250")

            // A pending migration that fails on the restored data: the swap never happens.
            let migrations = try TestArchives.temporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: migrations) }
            let source = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
                .deletingLastPathComponent().appendingPathComponent("migrations").path
            for file in try FileManager.default.contentsOfDirectory(atPath: source) {
                try FileManager.default.copyItem(atPath: source + "/" + file, toPath: migrations + "/" + file)
            }
            try "SELECT no_such_column FROM users;\n".write(toFile: migrations + "/29990101000000_broken.sql", atomically: true, encoding: .utf8)
            let failed = try CLI.run(["restore", archive, "--convox-app", rack.app, "--yes", "--database-url", live.url, "--migrations", migrations],
                                     environment: rack.environment())
            #expect(failed.status == 1 && failed.stderr.contains("stopped at migrate: "), "\(failed)")
            #expect(try rack.count() == 2)
            #expect(try Self.users(live) == "250")
        }
    }

    @Test func aScaleUpThatReportsRollbackButSetTheCountIsReadAgain() throws {
        let rack = try FakeRack(count: 3)
        defer { rack.remove() }
        try Self.withLiveDatabase { live, archive in
            let result = try CLI.run(["restore", archive, "--convox-app", rack.app, "--yes", "--database-url", live.url, "--json"],
                                     environment: rack.environment(["FAKE_CONVOX_ROLLBACK_TO": "3", "FAKE_CONVOX_HEADERS": "5"]))
            #expect(result.status == 0, "\(result)")
            let report = try CLI.decode(PipelineReport.self, result.stdout)
            #expect(report.finalCount == 3)
            #expect(report.steps.last?.name == "scale up" && report.steps.last?.outcome == "failed", "the failed exit stays in the transcript")
            #expect(try Self.users(live) == "200")
        }
    }

    @Test func rackTroubleStopsInPreflightAndNoiseDoesNot() throws {
        let rack = try FakeRack(count: 2)
        defer { rack.remove() }
        try Self.withLiveDatabase { live, archive in
            let unconfirmed = try CLI.run(["restore", archive, "--convox-app", rack.app, "--database-url", live.url], environment: rack.environment())
            #expect(unconfirmed.status == 1 && unconfirmed.output.contains("not confirmed"), "no TTY and no --yes: \(unconfirmed)")
            let arguments = ["restore", archive, "--convox-app", rack.app, "--yes", "--database-url", live.url]
            let updating = try CLI.run(arguments, environment: rack.environment(["FAKE_CONVOX_UPDATING_CALLS": "5"]))
            #expect(updating.status == 1 && updating.output.contains("is updating, not running"), "\(updating)")
            let unreachable = try CLI.run(arguments, environment: rack.environment(["FAKE_CONVOX_UNREACHABLE": "console"]))
            #expect(unreachable.status == 1 && unreachable.output.contains("could not find rack"), "\(unreachable)")
            let missing = try CLI.run(arguments + ["--service", "api"], environment: rack.environment())
            #expect(missing.status == 1 && missing.output.contains("has no service api"), "\(missing)")
            #expect(try rack.count() == 2 && Self.users(live) == "250", "nothing changed")

            // Budget noise on stderr with exit 0, the v2 one-line output and the 6-column table are all fine.
            let noisy = try CLI.run(arguments, environment: rack.environment(["FAKE_CONVOX_BUDGET_NOISE": "1", "FAKE_CONVOX_V2": "1", "FAKE_CONVOX_HEADERS": "6"]))
            #expect(noisy.status == 0, "\(noisy)")
            #expect(try rack.count() == 2 && Self.users(live) == "200")
            let directory = URL(fileURLWithPath: archive).deletingLastPathComponent().path
            let transcript = try String(contentsOfFile: directory + "/restores.jsonl", encoding: .utf8)
            #expect(transcript.split(separator: "\n").count == 5 && transcript.contains("\"ok\":true"), "every run is in restores.jsonl")
        }
    }

    @Test func aFingerprintMismatchOrAFailureAtTheSwapLeaveTheLiveDatabase() throws {
        let rack = try FakeRack(count: 1)
        defer { rack.remove() }
        try Self.withLiveDatabase { live, archive in
            // The swap step's own convox check fails (call 7: apps info, after 1 info, 2 api, 3 scale, 4-6 ps).
            let swap = try CLI.run(["restore", archive, "--convox-app", rack.app, "--yes", "--database-url", live.url],
                                   environment: rack.environment(["FAKE_CONVOX_FAIL_CALL": "7:deploy in progress"]))
            #expect(swap.status == 1 && swap.stderr.contains("stopped at swap: ") && swap.output.contains("deploy in progress"), "\(swap)")
            #expect(try rack.count() == 1 && Self.users(live) == "250")

            // A manifest whose fingerprint for users does not match the rows.
            let reader = try ArchiveReader(path: archive)
            let users = try #require(reader.manifest.tables.first { $0.name == "users" })
            let line = String(decoding: try reader.manifest.line(), as: UTF8.self)
                .replacingOccurrences(of: users.fingerprint, with: String(repeating: "0", count: 16))
            let member = try GzipMemberCompressor().compress(Array(line.utf8))
            let offset = reader.trailer.manifestOffset
            try TestArchives.tamper(archive, sidecarToo: true) { data in
                data = data.prefix(offset) + Data(member) + Data(ArchiveTrailer(manifestOffset: offset, manifestLength: member.count).member())
            }
            let mismatch = try CLI.run(["restore", archive, "--convox-app", rack.app, "--yes", "--database-url", live.url],
                                       environment: rack.environment())
            #expect(mismatch.status == 1 && mismatch.output.contains("public.users") && mismatch.output.contains("does not match"), "\(mismatch)")
            #expect(try rack.count() == 1 && Self.users(live) == "250")
        }
    }

    @Test func scaleTablesAreReadByHeaderName() {
        let rows = ConvoxClient.table("""
            SERVICE  DESIRED  RUNNING  CPU  MEMORY  GPU  MIN  MAX  STATUS
            gateway  3        3        256  512     0              running
            worker   1        1        256  512     0    1    4    running
            """)
        #expect(rows[0]["DESIRED"] == "3" && rows[0]["MIN"] == nil && rows[0]["STATUS"] == "running")
        #expect(rows[1]["MIN"] == "1" && rows[1]["MAX"] == "4")
    }

    /// `convox ps` rows that do not line up under the header (issue 33's second trial: the wait
    /// said "no process of gateway" while three were running, and the swap went ahead) are still
    /// the service's processes; other services' rows are not.
    @Test func psRowsThatDoNotLineUpStillCount() {
        let text = """
            ID  SERVICE  STATUS  RELEASE  STARTED  COMMAND
            gateway-00000    gateway  running  RABCDEFGHIJ  1 minute ago  bin/gateway
            gateway-00001 gateway pending RABCDEFGHIJ 2 minutes ago bin/gateway
            worker-00000     worker   running  RABCDEFGHIJ  1 minute ago  bin/worker
            """
        let found = ConvoxClient.processes(in: text, service: "gateway")
        #expect(found.map(\.id) == ["gateway-00000", "gateway-00001"] && found.map(\.status) == ["running", "pending"], "\(found)")
        let aligned = ConvoxClient.processes(in: """
            ID             SERVICE  STATUS   RELEASE      STARTED       COMMAND
            gateway-00000  gateway  running  RABCDEFGHIJ  1 minute ago  bin/gateway
            worker-00000   worker   running  RABCDEFGHIJ  1 minute ago  bin/worker
            """, service: "gateway")
        #expect(aligned.map(\.id) == ["gateway-00000"] && aligned.first?.status == "running", "\(aligned)")
    }
}
