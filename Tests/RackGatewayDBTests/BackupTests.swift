import Foundation
import Logging
import RGWPostgres
import Testing
import TestSupport
@testable import RackGatewayDB

/// backup → verify → `gunzip -c | psql` against a real server.
@Suite("backup and verify against a real server")
struct BackupTests {
    /// The restored copy has the same data as the source and the same schema as `pg_dump SOURCE | psql`.
    static func expectRoundTrip(_ source: TestDatabase, chunkSize: Int = 8 << 20) throws -> ArchiveManifest {
        let directory = try TestArchives.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let report = try TestArchives.backup(source, directory: directory, chunkSize: chunkSize)
        let verification = try ArchiveVerifier().verify(path: report.file)
        #expect(verification.ok, "\(verification.problems)")
        #expect(verification.sidecar == "ok")
        let manifest = try ArchiveReader(path: report.file).manifest
        #expect(try TestArchives.fingerprintMismatches(manifest, in: source) == [])

        let digests = try DatabaseOracle.tableDigests(source)
        try TestDatabase.with { restored in
            try TestArchives.restoreWithStockTools(report.file, into: restored)
            #expect(try TestArchives.fingerprintMismatches(manifest, in: restored) == [])
            #expect(try DatabaseOracle.tableDigests(restored) == digests, "every table's rows, by an oracle that is not the tool's fingerprint")
            try TestDatabase.with { reference in
                let copy = try Shell.run("/bin/sh", ["-c", #"pg_dump --no-password -d "$1" | psql -X -q -v ON_ERROR_STOP=1 -o /dev/null -d "$2""#, "sh",
                                                     source.name, reference.name],
                                         environment: try source.settings.childEnvironment)
                #expect(copy.status == 0, "\(copy.stderr)")
                #expect(try TestArchives.schemaDump(restored) == TestArchives.schemaDump(reference))
            }
        }
        return manifest
    }

    @Test func sampleDatabaseRoundTripsThroughGunzipAndPsql() throws {
        try TestDatabase.withSampleData(events: 3000) { source in
            // Small chunks so the audit table spans several members.
            let manifest = try Self.expectRoundTrip(source, chunkSize: 256 * 1024)
            let audit = try #require(manifest.tables.first { $0.qualifiedName == "audit.audit_event" })
            #expect(audit.rows == 3000)
            #expect(audit.chunks.count > 1)
            #expect(manifest.schemaMigrations.count == MigrationSet.embedded.migrations.count)
            #expect(manifest.roles.contains("audit_owner") && manifest.roles.contains("audit_reader"))
            #expect(manifest.sequences.contains { $0.name == "audit_event_chain_index_seq" && $0.value == "2999" })
            #expect(manifest.tables.first?.qualifiedName == "audit.audit_event", "largest first")
        }
    }

    @Test func manyFeatureSchemaRoundTrips() throws {
        try TestDatabase.with { source in
            try source.psql(TestArchives.featureSchema)
            let manifest = try Self.expectRoundTrip(source, chunkSize: 4096)
            let names = Set(manifest.tables.map(\.qualifiedName))
            #expect(names.contains("feat.measurements_2025") && names.contains("feat.measurements_2026"))
            #expect(!names.contains("feat.measurements"), "partitioned parents hold no data")
            #expect(names.contains("feat.scratch"), "unlogged tables are dumped")
            let mixed = try #require(manifest.tables.first { $0.name == "MixedCase Table" })
            #expect(mixed.rows == 3)
            let generated = try #require(manifest.tables.first { $0.name == "items" })
            #expect(!generated.columns.contains("total"), "generated columns are not copied")
        }
    }

    @Test func verifyNamesTheCorruptMemberAndTable() throws {
        try TestDatabase.withMigrated { source in
            try source.psql("INSERT INTO users (email) SELECT 'u' || i || '@example.com' FROM generate_series(1, 5000) i")
            let directory = try TestArchives.temporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let report = try TestArchives.backup(source, directory: directory)
            let manifest = try ArchiveReader(path: report.file).manifest
            let usersIndex = try #require(manifest.tables.firstIndex { $0.name == "users" })
            let member = try #require(manifest.members.first { $0.table == usersIndex })
            let original = try Data(contentsOf: URL(fileURLWithPath: report.file))

            // A flipped byte in the middle of the users data member.
            var flipped = original
            flipped[member.offset + member.length / 2] ^= 0x55
            let flippedPath = directory + "/flipped_20250101T000000Z.sql.gz"
            try flipped.write(to: URL(fileURLWithPath: flippedPath))
            let result = try CLI.run(["verify", flippedPath])
            #expect(result.status == 2, "\(result)")
            #expect(result.stderr.contains("member \(member.index)") && result.stderr.contains("offset \(member.offset)") && result.stderr.contains("public.users"), "\(result)")

            // Truncated at a member boundary and inside a member.
            for cut in [member.offset, member.offset + 7, original.count - 1] {
                let path = directory + "/cut\(cut)_20250101T000000Z.sql.gz"
                try original.prefix(cut).write(to: URL(fileURLWithPath: path))
                let truncated = try CLI.run(["verify", path])
                #expect(truncated.status == 2, "cut at \(cut): \(truncated)")
                #expect(truncated.stderr.contains("truncated"), "\(truncated)")
            }

            // A sidecar that does not match.
            try "0000  x\n".write(toFile: report.file + ".sha256", atomically: true, encoding: .utf8)
            let badSidecar = try CLI.run(["verify", report.file])
            #expect(badSidecar.status == 2 && badSidecar.stderr.contains("sha256"), "\(badSidecar)")

            // A .partial file and a foreign gzip file are told apart from corruption.
            try original.prefix(member.offset).write(to: URL(fileURLWithPath: directory + "/x.sql.gz.partial"))
            let partial = try CLI.run(["verify", directory + "/x.sql.gz.partial"])
            #expect(partial.status == 1 && partial.stderr.contains("unfinished"), "\(partial)")
            let foreign = directory + "/foreign.sql.gz"
            _ = try Shell.run("/bin/sh", ["-c", #"echo 'SELECT 1;' | gzip > "$1""#, "sh", foreign])
            let foreignResult = try CLI.run(["verify", foreign])
            #expect(foreignResult.status == 1 && foreignResult.stderr.contains("not a rack-gateway-db archive"), "\(foreignResult)")
        }
    }

    @Test func aSecondBackupExitsThreeNamingTheHolder() throws {
        try TestDatabase.withMigrated { source in
            let directory = try TestArchives.temporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let holder = try source.connect()
            try holder.execute("SET application_name = 'the-other-backup'")
            _ = try holder.query("SELECT pg_advisory_lock($1::bigint)", [String(BackupRunner.advisoryLockKey)])
            let result = try CLI.run(["backup", "--dir", directory], environment: ["RGW_DATABASE_URL": source.url])
            #expect(result.status == 3, "\(result)")
            #expect(result.stderr.contains("the-other-backup") && result.stderr.contains("\(holder.backendPID)"), "\(result)")
            #expect(try FileManager.default.contentsOfDirectory(atPath: directory).allSatisfy { !$0.hasSuffix(".gz") && !$0.hasSuffix(".partial") })

            // The directory lock file too.
            let since = Date(timeIntervalSince1970: 1_767_225_600)
            let lock = try DirectoryLock.acquire(directory: directory, name: ".rack_gateway_backup.lock", what: "test holder", since: since)
            defer { lock.release() }
            _ = try holder.query("SELECT pg_advisory_unlock($1::bigint)", [String(BackupRunner.advisoryLockKey)])
            let second = try CLI.run(["backup", "--dir", directory], environment: ["RGW_DATABASE_URL": source.url])
            #expect(second.status == 3 && second.stderr.contains("test holder") && second.stderr.contains("since 2026-01-01T00:00:00.000Z"), "\(second)")
        }
    }

    @Test func anExclusivelyLockedTableFailsFastNamingIt() throws {
        try TestDatabase.withMigrated { source in
            let directory = try TestArchives.temporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let holder = try source.connect()
            try holder.execute("BEGIN; LOCK TABLE public.settings IN ACCESS EXCLUSIVE MODE")
            let started = Date()
            let error = #expect(throws: ToolError.self) { try TestArchives.backup(source, directory: directory, lockTimeout: 500) }
            #expect(error?.message.contains("public.settings") == true, "\(String(describing: error))")
            #expect(Date().timeIntervalSince(started) < 20)
            try holder.execute("ROLLBACK")
            #expect(try FileManager.default.contentsOfDirectory(atPath: directory).allSatisfy { !$0.hasSuffix(".gz") && !$0.hasSuffix(".partial") })
        }
    }

    /// A database with a table `secret` under row-level security that hides a row from a login
    /// role; `body` gets the database and that role's URL.
    static func withRowLevelSecurityRole(_ body: (TestDatabase, String) throws -> Void) throws {
        try TestDatabase.with { source in
            let role = "rls_\(source.name.suffix(8))"
            try source.psql("""
                CREATE ROLE \(role) LOGIN PASSWORD 'rls-pw';
                CREATE TABLE secret (id int, owner text);
                INSERT INTO secret VALUES (1, 'a'), (2, 'b');
                ALTER TABLE secret ENABLE ROW LEVEL SECURITY;
                CREATE POLICY mine ON secret USING (owner = 'a');
                GRANT SELECT ON secret TO \(role);
                """)
            defer { _ = try? source.psql("DROP OWNED BY \(role); DROP ROLE \(role)") }
            try body(source, source.cluster.url(database: source.name, user: role, password: "rls-pw"))
        }
    }

    @Test func aRoleFilteredByRowLevelSecurityGetsAnErrorAndNoArchive() throws {
        try Self.withRowLevelSecurityRole { _, url in
            let directory = try TestArchives.temporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let result = try CLI.run(["backup", "--dir", directory], environment: ["RGW_DATABASE_URL": url])
            #expect(result.status == 1, "\(result)")
            #expect(result.stderr.contains("row-level security"), "\(result)")
            #expect(try FileManager.default.contentsOfDirectory(atPath: directory).allSatisfy { !$0.hasSuffix(".gz") && !$0.hasSuffix(".partial") })
        }
    }

    @Test func aFullDiskLeavesNoFileUnderAnyName() throws {
        try TestDatabase.withMigrated { source in
            try source.psql("INSERT INTO users (email, name) SELECT 'u' || i || '@example.com', md5(i::text) || md5((i * 3)::text) FROM generate_series(1, 40000) i")
            let directory = try TestArchives.temporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: directory) }
            // ulimit -f counts 1024-byte blocks: 200 KiB is far less than the archive.
            let result = try Shell.run("/bin/sh", ["-c", #"ulimit -f 200; exec "$@""#, "sh", CLI.executable, "backup", "--dir", directory],
                                       environment: CLI.baseEnvironment().merging(["RGW_DATABASE_URL": source.url]) { $1 })
            #expect(result.status == 1, "\(result.stderr)")
            #expect(result.stderr.contains("file size limit") || result.stderr.contains("disk full"), "\(result.stderr)")
            #expect(try FileManager.default.contentsOfDirectory(atPath: directory).allSatisfy { !$0.hasSuffix(".gz") && !$0.hasSuffix(".partial") && !$0.hasSuffix(".sha256") })
        }
    }

    @Test func missingPgDumpFailsBeforeAnyWork() throws {
        try TestDatabase.withMigrated { source in
            let directory = try TestArchives.temporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let result = try CLI.run(["backup", "--dir", directory], environment: ["RGW_DATABASE_URL": source.url, "RGW_PG_BIN_DIR": "/nonexistent"])
            #expect(result.status == 1, "\(result)")
            #expect(result.stderr.contains("pg_dump not found"), "\(result)")
            #expect(try FileManager.default.contentsOfDirectory(atPath: directory).isEmpty)
        }
    }

    @Test func aPgDumpOlderThanTheServerFailsBeforeAnyWork() throws {
        try TestDatabase.withMigrated { source in
            let directory = try TestArchives.temporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let bin = directory + "/old-bin"
            try FileManager.default.createDirectory(atPath: bin, withIntermediateDirectories: true)
            // A pg_dump that says it is release 12 (and would fail if anything ran it for real).
            try TestArchives.writeExecutable("#!/bin/sh\n[ \"$1\" = --version ] && echo 'pg_dump (PostgreSQL) 12.22' && exit 0\nexit 1\n",
                                             to: bin + "/pg_dump")
            let archives = directory + "/archives"
            let result = try CLI.run(["backup", "--dir", archives], environment: ["RGW_DATABASE_URL": source.url, "RGW_PG_BIN_DIR": bin])
            #expect(result.status == 1, "\(result)")
            #expect(result.stderr.contains("version 12.22, older than the server") && result.stderr.contains("postgresql-client-"), "\(result)")
            let left = (try? FileManager.default.contentsOfDirectory(atPath: archives)) ?? []
            #expect(left.allSatisfy { !$0.hasSuffix(".sql.gz") && !$0.hasSuffix(".partial") }, "\(left)")
        }
    }

    @Test func cliBackupWritesReportMetricsListAndPrune() throws {
        try TestDatabase.withMigrated { source in
            let directory = try TestArchives.temporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let metrics = directory + "/backup.prom"
            let result = try CLI.run(["backup", "--dir", directory, "--json", "--metrics-file", metrics], environment: ["RGW_DATABASE_URL": source.url])
            #expect(result.status == 0, "\(result)")
            let report = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any]
            let file = try #require(report?["file"] as? String)
            #expect(!result.output.contains(source.cluster.password))
            let attributes = try FileManager.default.attributesOfItem(atPath: file)
            #expect((attributes[.posixPermissions] as? Int) == 0o600)
            #expect(URL(fileURLWithPath: file).lastPathComponent.range(of: #"^rack_gateway_backup_\d{8}T\d{6}Z\.sql\.gz$"#, options: .regularExpression) != nil)
            let prom = try String(contentsOfFile: metrics, encoding: .utf8)
            #expect(prom.contains("rgw_backup_last_success_timestamp_seconds{database=\"\(source.name)\",dir=\"\(directory)\"}"))
            #expect(prom.contains("rgw_backup_size_bytes"))
            #expect(try CLI.run(["verify", file]).status == 0)
            let list = try CLI.run(["list", "--dir", directory, "--json"])
            let entries = try JSONSerialization.jsonObject(with: Data(list.stdout.utf8)) as? [[String: Any]]
            #expect(entries?.count == 1 && entries?.first?["verified"] as? Bool == true, "\(list)")
            // Older copies: prune keeps the newest that verifies and deletes sidecars with archives.
            for stamp in ["20240101T000000Z", "20240102T000000Z"] {
                try FileManager.default.copyItem(atPath: file, toPath: directory + "/rack_gateway_backup_\(stamp).sql.gz")
                try FileManager.default.copyItem(atPath: file + ".sha256", toPath: directory + "/rack_gateway_backup_\(stamp).sql.gz.sha256")
            }
            let prune = try CLI.run(["prune", "--dir", directory, "--keep-last", "2"])
            #expect(prune.status == 0, "\(prune)")
            let left = try FileManager.default.contentsOfDirectory(atPath: directory)
            #expect(!left.contains("rack_gateway_backup_20240101T000000Z.sql.gz") && !left.contains("rack_gateway_backup_20240101T000000Z.sql.gz.sha256"))
            #expect(left.contains("rack_gateway_backup_20240102T000000Z.sql.gz") && left.contains(URL(fileURLWithPath: file).lastPathComponent))
        }
    }
}
