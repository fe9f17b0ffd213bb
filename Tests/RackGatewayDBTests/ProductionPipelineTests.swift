import RGWCompression
import Foundation
import RGWPostgres
import Testing
import TestSupport
@testable import RackGatewayDB

/// The Convox pipeline and the drill's WORM anchor check on a production-shaped database, with the
/// fake `convox`, the stand-in for the app's migrate, and moto for S3.
@Suite("production-shaped database: Convox pipeline and WORM anchors")
struct ProductionPipelineTests {
    /// A production-shaped live database and its archive; then more users, so a restore is visible.
    static func withLive(_ body: (TestDatabase, String, [String: String]) throws -> Void) throws {
        try ProductionFixture.with(events: 200) { live in
            defer {
                if let admin = try? Connection(settings: try live.cluster.adminSettings),
                   let rows = try? admin.query("SELECT datname FROM pg_database WHERE datname LIKE $1", [live.name + "\\_%"]).rows {
                    for row in rows { _ = try? admin.execute("DROP DATABASE IF EXISTS \(SQL.identifier(row[0]!)) WITH (FORCE)") }
                }
            }
            let directory = try TestArchives.temporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let archive = try TestArchives.backup(live, directory: directory).file
            let digests = try DatabaseOracle.tableDigests(live)
            try live.psql("INSERT INTO users (email) SELECT 'late' || i || '@example.com' FROM generate_series(1, 25) i")
            try body(live, archive, digests)
        }
    }

    @Test func aForeignSetIsRefusedInPreflightBeforeAnyScale() throws {
        let rack = try FakeRack(count: 2)
        defer { rack.remove() }
        try Self.withLive { live, archive, _ in
            let result = try CLI.run(["restore", archive, "--convox-app", rack.app, "--yes", "--database-url", live.url], environment: rack.environment())
            #expect(result.status == 1, "\(result)")
            #expect(result.stderr.contains("stopped at preflight: ") && result.output.contains("migrated by another migration set"), "\(result)")
            for way in ["--migrations DIR", "--migrate-command CMD", "--skip-migrate"] { #expect(result.stderr.contains(way), "\(way): \(result)") }
            let calls = try rack.calls
            #expect(calls.allSatisfy { $0.first != "scale" }, "\(calls)")
            #expect(try rack.count() == 2)
            #expect(try PipelineTests.users(live) == "325")
            let dry = try CLI.run(["restore", archive, "--convox-app", rack.app, "--dry-run", "--database-url", live.url], environment: rack.environment())
            #expect(dry.status == 1 && dry.stderr.contains("--skip-migrate"), "the dry run refuses the same way: \(dry)")
        }
    }

    @Test func thePipelineRunsTheAppsMigrateOnTheRestoredDatabaseBeforeTheSwap() throws {
        let rack = try FakeRack(count: 2)
        defer { rack.remove() }
        try Self.withLive { live, archive, digests in
            let record = rack.directory + "/migrate.txt"
            let result = try CLI.run(["restore", archive, "--convox-app", rack.app, "--yes", "--database-url", live.url, "--json",
                                      "--migrate-command", ProductionFixture.migrateCommand],
                                     environment: rack.environment(["FAKE_APP_RECORD": record]))
            #expect(result.status == 0, "\(result)")
            let report = try CLI.decode(PipelineReport.self, result.stdout)
            #expect(report.steps.map(\.name) == ["preflight", "remember count", "scale down", "wait for processes", "terminate sessions", "load", "migrate", "swap", "scale up"])
            #expect(report.steps.first { $0.name == "migrate" }?.detail.contains("exited 0") == true, "\(report.steps)")
            let recorded = try String(contentsOfFile: record, encoding: .utf8)
            #expect(recorded.contains("DATABASE_URL=postgres://postgres@") && recorded.contains("/\(live.name)_restore_") && recorded.contains("PGPASSWORD=set"), "\(recorded)")
            #expect(!recorded.contains(live.cluster.password))
            #expect(try DatabaseOracle.tableDigests(live) == digests, "the live name holds the restored copy, exactly")
            #expect(try rack.count() == 2)
        }
    }

    @Test func aFailingMigrateCommandLeavesTheLiveDatabaseAndScalesBack() throws {
        let rack = try FakeRack(count: 2)
        defer { rack.remove() }
        try Self.withLive { live, archive, _ in
            let before = try DatabaseOracle.tableDigests(live)
            let result = try CLI.run(["restore", archive, "--convox-app", rack.app, "--yes", "--database-url", live.url, "--migrate-command", ProductionFixture.migrateCommand],
                                     environment: rack.environment(["FAKE_APP_FAIL": "5"]))
            #expect(result.status == 1, "\(result)")
            #expect(result.stderr.contains("stopped at migrate: ") && result.output.contains("exited 5; output: migrate: simulated failure"), "\(result)")
            #expect(result.stderr.contains("The live database \(live.name) is untouched. The incomplete \(live.name)_restore_"), "\(result)")
            #expect(try DatabaseOracle.tableDigests(live) == before)
            #expect(try rack.count() == 2)
            let admin = try Connection(settings: try live.cluster.adminSettings)
            #expect(try admin.query("SELECT count(*) FROM pg_database WHERE datname LIKE $1", [live.name + "\\_restore\\_%"]).scalar == "0")
        }
    }

    @Test func skipMigrateRestoresAndWarns() throws {
        let rack = try FakeRack(count: 1)
        defer { rack.remove() }
        try Self.withLive { live, archive, digests in
            let result = try CLI.run(["restore", archive, "--convox-app", rack.app, "--yes", "--database-url", live.url, "--skip-migrate"], environment: rack.environment())
            #expect(result.status == 0 && result.stderr.contains("skipped (--skip-migrate)") && result.stdout.contains("WARNING: --skip-migrate"), "\(result)")
            #expect(try DatabaseOracle.tableDigests(live) == digests)
            let both = try CLI.run(["restore", archive, "--convox-app", rack.app, "--skip-migrate", "--migrate-command", "x"], environment: rack.environment())
            #expect(both.status == 64, "\(both)")
        }
    }

    @Test func theRunbookCommandRestoresTheLatestArchiveFromS3InSwapMode() throws {
        let server = try MotoServer.shared()
        let client = try server.freshBucket()
        let rack = try FakeRack(count: 2)
        defer { rack.remove() }
        try Self.withLive { live, _, _ in
            let aws = MotoServer.awsEnvironment.merging(["AWS_ENDPOINT_URL_S3": server.endpoint, "RGW_BACKUP_DIR": "s3://\(client.bucket)/nightly"]) { $1 }
            let backup = try CLI.run(["backup"], environment: aws.merging(["RGW_DATABASE_URL": live.url]) { $1 })
            #expect(backup.status == 0, "\(backup)")
            let digests = try DatabaseOracle.tableDigests(live)
            try live.psql("INSERT INTO users (email) VALUES ('after-the-backup@example.com')")
            let environment = rack.environment(aws.merging(["RGW_DATABASE_URL": live.url]) { $1 })
            let dry = try CLI.run(["restore", "--latest", "--convox-app", rack.app, "--dry-run"] + ProductionSchemaTests.appMigrations, environment: environment)
            #expect(dry.status == 0 && dry.stdout.contains("The plan (--dry-run: nothing was changed):") && dry.stdout.contains("apply the pending migrations of \(ProductionFixture.migrations)"), "\(dry)")
            let inPlace = try CLI.run(["restore", "--latest", "--convox-app", rack.app, "--in-place", "--yes"] + ProductionSchemaTests.appMigrations, environment: environment)
            #expect(inPlace.status == 64 && inPlace.stderr.contains("safety backup into a local --dir"), "\(inPlace)")
            let restore = try CLI.run(["restore", "--latest", "--convox-app", rack.app, "--yes"] + ProductionSchemaTests.appMigrations, environment: environment)
            #expect(restore.status == 0 && restore.stderr.split(separator: "\n").contains { $0.contains("pipeline step done (") && $0.hasSuffix(" step=migrate)") }, "\(restore)")
            #expect(try DatabaseOracle.tableDigests(live) == digests)
            #expect(try rack.count() == 2)
            let logs = try S3Store(client: client, prefix: "nightly").list().map(\.name)
            #expect(logs.contains("restores.jsonl"), "\(logs)")
        }
    }

    // MARK: WORM anchors

    /// Anchors the way the application writes them: `<chain>/YYYY/MM/DD/HH/anchor-YYYYMMDDTHH.json`,
    /// compact JSON in its key order, each linked to the previous object's SHA-256. One anchor an hour
    /// for `hours` hours back from now, each naming the chain head of that time (spread over the chain).
    static func writeAnchors(_ client: S3Client, chain: String, database: TestDatabase, hours: Int) throws -> [String] {
        let last = Int(try database.psql("SELECT max(chain_index) FROM audit.audit_event").trimmingCharacters(in: .whitespacesAndNewlines))!
        var previous: [UInt8]?
        var keys: [String] = []
        let stamp = DateFormatter()
        stamp.locale = Locale(identifier: "en_US_POSIX")
        stamp.timeZone = TimeZone(identifier: "UTC")
        for hour in stride(from: hours, through: 1, by: -1) {
            let time = Date().addingTimeInterval(Double(-hour) * 3600)
            let seq = last - hour * 3
            let hash = try database.psql("SELECT encode(event_hash, 'hex') FROM audit.audit_event WHERE chain_index = \(seq)").trimmingCharacters(in: .whitespacesAndNewlines)
            stamp.dateFormat = "yyyy/MM/dd/HH"
            let folder = stamp.string(from: time)
            stamp.dateFormat = "yyyyMMdd'T'HH"
            let key = "\(chain)/\(folder)/anchor-\(stamp.string(from: time)).json"
            var json = #"{"chain_id":"\#(chain)","last_seq":\#(seq),"last_hash":"\#(hash)","ts_utc":"\#(ISO8601DateFormatter().string(from: time))","db_snapshot_lsn":"""#
            if let previous {
                let hasher = SHA256()
                hasher.update(previous)
                json += #","prev_anchor_hash":"\#(SHA256.hex(hasher.finalize()))""#
            }
            json += "}"
            try client.putObject(key: key, data: Array(json.utf8))
            previous = Array(json.utf8)
            keys.append(key)
        }
        // One written after the snapshot (next hour): never the one compared.
        stamp.dateFormat = "yyyy/MM/dd/HH"
        let later = Date().addingTimeInterval(3600)
        let folder = stamp.string(from: later)
        stamp.dateFormat = "yyyyMMdd'T'HH"
        try client.putObject(key: "\(chain)/\(folder)/anchor-\(stamp.string(from: later)).json",
                             data: Array(#"{"chain_id":"\#(chain)","last_seq":99999999,"last_hash":"00","ts_utc":"\#(ISO8601DateFormatter().string(from: later))","db_snapshot_lsn":""}"#.utf8))
        return keys
    }

    @Test func theDrillChecksTheRestoredChainHeadAgainstTheWormAnchors() throws {
        let server = try MotoServer.shared()
        let client = try server.freshBucket()
        try ProductionSchemaTests.withArchive(events: 120) { source, archive in
            let keys = try Self.writeAnchors(client, chain: "rgw-prod", database: source, hours: 6)
            let environment = MotoServer.awsEnvironment.merging([
                "RGW_DATABASE_URL": source.url, "AWS_ENDPOINT_URL_S3": server.endpoint,
                "AUDIT_ANCHOR_BUCKET": client.bucket, "AUDIT_ANCHOR_CHAIN_ID": "rgw-prod",
            ]) { $1 }
            let drill = try CLI.run(["drill", archive] + ProductionSchemaTests.appMigrations, environment: environment)
            #expect(drill.status == 0, "\(drill)")
            #expect(drill.stdout.contains("PASS  audit anchors: anchor \(keys.last!) (chain_index 116) matches the restored event; 6 anchors linked back to \(keys.first!)"), "\(drill)")

            // No anchor at or before the snapshot under another chain id: reported, not failed.
            let none = try CLI.run(["drill", archive, "--audit-anchors", "s3://\(client.bucket)/other-chain"] + ProductionSchemaTests.appMigrations, environment: environment)
            #expect(none.status == 0 && none.stdout.contains("NOT CHECKED  audit anchors: no anchor in s3://\(client.bucket)/other-chain written at or before the snapshot"), "\(none)")

            // An altered middle anchor breaks the link from the one after it.
            let middle = keys[2]
            var altered = try client.getObject(key: middle)
            altered = Array(String(decoding: altered, as: UTF8.self).replacingOccurrences(of: "\"last_seq\":", with: "\"last_seq\":1").utf8)
            try client.putObject(key: middle, data: altered)
            let tampered = try CLI.run(["drill", archive] + ProductionSchemaTests.appMigrations, environment: environment)
            #expect(tampered.status == 2, "\(tampered)")
            #expect(tampered.stdout.contains("FAIL  audit anchors: anchor \(keys[3]): prev_anchor_hash") && tampered.stdout.contains("is not the SHA-256 of \(middle)"), "\(tampered)")

            // The newest anchor naming another hash than the restored event's.
            let newest = String(decoding: try client.getObject(key: keys.last!), as: UTF8.self)
            let hash = try #require(newest.range(of: #""last_hash":"[0-9a-f]+""#, options: .regularExpression))
            try client.putObject(key: keys.last!, data: Array(newest.replacingCharacters(in: hash, with: #""last_hash":"\#(String(repeating: "ab", count: 32))""#).utf8))
            let forged = try CLI.run(["drill", archive] + ProductionSchemaTests.appMigrations, environment: environment)
            #expect(forged.status == 2 && forged.stdout.contains("FAIL  audit anchors: anchor \(keys.last!): the restored event at chain_index 116 has event_hash"), "\(forged)")

            // A bucket that is not there, and one this role may not list: a failed check naming the place.
            let missing = try CLI.run(["drill", archive, "--audit-anchors", "s3://rgw-no-such-anchors/rgw-prod"] + ProductionSchemaTests.appMigrations, environment: environment)
            #expect(missing.status == 2 && missing.stdout.contains("FAIL  audit anchors: could not read the anchors in s3://rgw-no-such-anchors/rgw-prod") && missing.stdout.contains("NoSuchBucket"), "\(missing)")
            let proxy = try FaultProxy(upstream: server.endpoint)
            try proxy.set([FaultProxy.Rule(method: "GET", query: "list-type", times: -1, action: "denied")])
            let denied = try CLI.run(["drill", archive] + ProductionSchemaTests.appMigrations,
                                     environment: environment.merging(["AWS_ENDPOINT_URL_S3": proxy.endpoint, "RGW_S3_MAX_ATTEMPTS": "1"]) { $1 })
            #expect(denied.status == 2 && denied.stdout.contains("FAIL  audit anchors: could not read the anchors") && denied.stdout.contains("AccessDenied"), "\(denied)")
            #expect(!denied.output.contains("AWS_SECRET") && !drill.output.contains("test:test"))
        }
    }
}
