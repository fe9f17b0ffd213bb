import RGWCompression
import Foundation
import Logging
import RGWPostgres
import Testing
import TestSupport
@testable import RackGatewayDB

/// restore and drill against a real server.
@Suite("restore and drill against a real server")
struct RestoreTests {
    static func restore(_ file: String, into target: TestDatabase, verify: Bool = true, clean: Bool = false,
                        createRoles: Bool = false, jobs: Int = 2) throws -> RestoreReport {
        var options = RestoreOptions(jobs: jobs)
        options.verify = verify
        options.clean = clean
        options.createMissingRoles = createRoles
        let runner = RestoreRunner(target: try RestoreTarget(settings: try target.settings), options: options, logger: .quiet)
        runner.confirm = { _ in true }
        return try runner.run(path: file)
    }

    static func sequences(_ database: TestDatabase, _ manifest: ArchiveManifest) throws -> [String] {
        let connection = try database.connect()
        return try manifest.sequences.map { sequence in
            let row = try connection.query("SELECT last_value::text, is_called::text FROM \(SQL.qualified(sequence.schema, sequence.name))").rows[0]
            return "\(sequence.schema).\(sequence.name)=\(row[0]!),\(row[1]!)"
        }
    }

    /// backup → restore (parallel, small chunks) → the same data, sequences and schema as
    /// `pg_dump SOURCE | psql`.
    static func expectExactRoundTrip(_ source: TestDatabase, chunkSize: Int) throws -> RestoreReport {
        let directory = try TestArchives.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let backup = try TestArchives.backup(source, directory: directory, chunkSize: chunkSize)
        let manifest = try ArchiveReader(path: backup.file).manifest
        return try TestDatabase.withUnused { target in
            let report = try restore(backup.file, into: target)
            #expect(report.targetAction == "created")
            #expect(report.verified && report.mismatches.isEmpty)
            #expect(try TestArchives.fingerprintMismatches(manifest, in: target) == [])
            #expect(try DatabaseOracle.tableDigests(target) == DatabaseOracle.tableDigests(source), "every table's rows, by an independent oracle")
            #expect(try sequences(target, manifest) == sequences(source, manifest))
            let comment = try target.psql("SELECT coalesce(shobj_description(oid, 'pg_database'), 'none') FROM pg_database WHERE datname = current_database()")
            #expect(comment.trimmingCharacters(in: .whitespacesAndNewlines) == "none", "the in-progress mark is removed")
            try TestDatabase.with { reference in
                let copy = try Shell.run("/bin/sh", ["-c", #"pg_dump --no-password -d "$1" | psql -X -q -v ON_ERROR_STOP=1 -o /dev/null -d "$2""#, "sh",
                                                     source.name, reference.name],
                                         environment: try source.settings.childEnvironment)
                #expect(copy.status == 0, "\(copy.stderr)")
                #expect(try TestArchives.schemaDump(target) == TestArchives.schemaDump(reference))
            }
            return report
        }
    }

    @Test func sampleDatabaseRestoresExactly() throws {
        try TestDatabase.withSampleData(events: 3000) { source in
            let report = try Self.expectExactRoundTrip(source, chunkSize: 128 * 1024)
            #expect(report.phases.contains { $0.name == "data and index builds" })
            #expect(!report.phases.contains { $0.name == "post-data: foreign keys" }, "the foreign keys between its tables all run in the load queue")
        }
    }

    @Test func manyFeatureSchemaRestoresExactly() throws {
        try TestDatabase.with { source in
            try source.psql(TestArchives.featureSchema)
            _ = try Self.expectExactRoundTrip(source, chunkSize: 4096)
        }
    }

    @Test func postDataSplitsAtPgDumpHeadersWithSettings() throws {
        let script = try DumpScript("""
            \\restrict abc
            SET statement_timeout = 0;
            SELECT pg_catalog.set_config('search_path', '', false);

            --
            -- Name: t t_pkey; Type: CONSTRAINT; Schema: s; Owner: o
            --

            ALTER TABLE ONLY s.t
                ADD CONSTRAINT t_pkey PRIMARY KEY (id);

            SET default_tablespace = fast;

            --
            -- Name: t_idx; Type: INDEX; Schema: s; Owner: o
            --

            CREATE INDEX t_idx ON s."T t" USING btree (a);
            ALTER TABLE s."T t" CLUSTER ON t_idx;

            --
            -- Name: c c_fk; Type: FK CONSTRAINT; Schema: s; Owner: o
            --

            ALTER TABLE ONLY s.c
                ADD CONSTRAINT c_fk FOREIGN KEY (t) REFERENCES s.t(id);
            \\unrestrict abc
            """, section: "post-data")
        #expect(script.entries.map(\.type) == ["CONSTRAINT", "INDEX", "FK CONSTRAINT"])
        #expect(script.entries[0].settings == ["SET statement_timeout = 0", "SELECT pg_catalog.set_config('search_path', '', false)"])
        #expect(script.entries[1].settings.last == "SET default_tablespace = fast")
        #expect(script.entries[1].statements.count == 2)
        #expect(script.entries[1].table?.schema == "s" && script.entries[1].table?.name == "T t")
        #expect(script.entries[0].table?.name == "t")
        #expect(script.entries(in: .foreignKeys).count == 1)
        #expect(script.entries[0].keys == [.column("id")])
        #expect(script.entries[1].keys == [.column("a")])
        #expect(script.entries[2].keys == nil)
        let keyed = try DumpScript("""
            -- Name: i; Type: INDEX; Schema: s; Owner: o
            CREATE INDEX i ON s.t USING btree ("Mixed, Case" DESC NULLS LAST, lower(b), ((c || 'x)')), d text_pattern_ops) WHERE (e > 0);
            -- Name: t u; Type: CONSTRAINT; Schema: s; Owner: o
            ALTER TABLE ONLY s.t ADD CONSTRAINT u UNIQUE NULLS NOT DISTINCT (a, b);
            -- Name: t x; Type: CONSTRAINT; Schema: s; Owner: o
            ALTER TABLE ONLY s.t ADD CONSTRAINT x EXCLUDE USING gist (r WITH &&);
            """, section: "post-data")
        #expect(keyed.entries.map(\.keys) == [[.column("Mixed, Case"), .expression, .expression, .column("d")],
                                               [.column("a"), .column("b")], [.column("r")]])
        #expect(throws: ToolError.self) { try DumpScript("\\connect other\nSELECT 1;", section: "pre-data") }
    }

    @Test func aNonEmptyTargetIsRefusedUntouchedAndCleanReplacesIt() throws {
        try TestDatabase.withMigrated { source in
            try source.psql("INSERT INTO users (email) SELECT 'u' || i || '@example.com' FROM generate_series(1, 300) i")
            let directory = try TestArchives.temporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let backup = try TestArchives.backup(source, directory: directory)
            try TestDatabase.with { target in
                try target.psql("CREATE TABLE keep_me (id int); INSERT INTO keep_me VALUES (42)")
                let refused = try CLI.run(["restore", backup.file, "--target-url", target.url])
                #expect(refused.status == 1 && refused.stderr.contains("already holds 1 object") && refused.stderr.contains("--clean"), "\(refused)")
                // The README's code for it (was "failed"): scripts match on the code.
                let json = try CLI.run(["restore", backup.file, "--target-url", target.url, "--json"])
                #expect(json.status == 1 && json.stdout.contains(#""code" : "database_exists""#), "\(json)")
                let unconfirmed = try CLI.run(["restore", backup.file, "--target-url", target.url, "--clean"])
                #expect(unconfirmed.status == 1 && unconfirmed.stderr.contains("not confirmed"), "\(unconfirmed)")
                #expect(try target.psql("SELECT id FROM keep_me").contains("42"), "untouched")
                let cleaned = try CLI.run(["restore", backup.file, "--target-url", target.url, "--clean", "--yes", "--verify", "--json"])
                #expect(cleaned.status == 0, "\(cleaned)")
                #expect(cleaned.stdout.contains("\"target_action\" : \"recreated\"") || cleaned.stdout.contains("\"targetAction\" : \"recreated\""), "\(cleaned.stdout)")
                #expect(try target.psql("SELECT to_regclass('public.keep_me') IS NULL").contains("t"))
                #expect(try target.psql("SELECT count(*) FROM users").contains("300"))
                #expect(!cleaned.output.contains(target.cluster.password), "no password in output")
            }
        }
    }

    @Test func missingRolesAreListedOrCreatedNoLogin() throws {
        let role = "rgw_gone_\(UUID().uuidString.prefix(6).lowercased())"
        let admin = try Connection(settings: try TestCluster.shared().adminSettings)
        let directory = try TestArchives.temporaryDirectory()
        defer {
            try? FileManager.default.removeItem(atPath: directory)
        }
        var file = ""
        try TestDatabase.with { source in
            try source.psql("CREATE ROLE \(role) NOLOGIN; CREATE TABLE owned (id int); ALTER TABLE owned OWNER TO \(role); INSERT INTO owned VALUES (1)")
            file = try TestArchives.backup(source, directory: directory).file
        }
        try admin.execute("DROP ROLE \(role)")
        defer { _ = try? admin.execute("DROP ROLE IF EXISTS \(role)") }
        try TestDatabase.withUnused { target in
            let missing = try CLI.run(["restore", file, "--target-url", target.url])
            #expect(missing.status == 1 && missing.stderr.contains(role) && missing.stderr.contains("CREATE ROLE \"\(role)\" NOLOGIN"), "\(missing)")
            #expect(try !target.exists, "nothing was created")
            // drill has no --create-missing-roles: its fix names CREATE ROLE only (it named the
            // option, and pasted that was exit 64).
            let drill = try CLI.run(["drill", file, "--scratch-url", target.cluster.url(database: "postgres")])
            #expect(drill.status == 1 && drill.stderr.contains("CREATE ROLE \"\(role)\" NOLOGIN") && !drill.stderr.contains("--create-missing-roles"), "\(drill)")
            // The server is named (roles are the server's; the scratch database was never made), the
            // reason is on stdout too, and the printed psql command creates the role when pasted.
            let needs = drill.stderr.split(separator: "\n").first { $0.contains("needs role") } ?? ""
            #expect(needs.contains("needs role \(role), missing on the server ") && !needs.contains("rgw_drill_"), "\(drill)")
            #expect(drill.stdout.contains("Drill FAILED (it could not run: the archive needs role \(role)"), "\(drill)")
            let pasted = try #require(drill.stderr.firstMatch(of: /: (psql .+?) \(the password in PGPASSWORD\)/).map { String($0.1) }, "\(drill)")
            let byHand = try PrintedCommands.run(pasted, environment: ["PGPASSWORD": target.cluster.password])
            #expect(byHand.status == 0, "\(pasted): \(byHand)")
            #expect(try admin.query("SELECT rolcanlogin::text FROM pg_roles WHERE rolname = $1", [role]).scalar == "false", "created NOLOGIN by the printed command")
            try admin.execute("DROP ROLE \(role)")
            // In --json the statements are the error's fix, not part of its message, and the report keeps them.
            let json = try CLI.run(["drill", file, "--scratch-url", target.cluster.url(database: "postgres"), "--json"])
            let document = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any], "\(json)")
            let error = try #require(document["error"] as? [String: Any], "\(json)")
            #expect((error["fix"] as? String)?.contains("CREATE ROLE \"\(role)\" NOLOGIN") == true, "\(json)")
            #expect((error["message"] as? String).map { $0.contains(role) && !$0.contains("CREATE ROLE") } == true, "\(json)")
            #expect((document["error_fix"] as? String)?.contains("CREATE ROLE") == true, "\(json)")
            let created = try CLI.run(["restore", file, "--target-url", target.url, "--create-missing-roles"])
            #expect(created.status == 0, "\(created)")
            #expect(try admin.query("SELECT rolcanlogin::text FROM pg_roles WHERE rolname = $1", [role]).scalar == "false")
            #expect(try target.psql("SELECT tableowner FROM pg_tables WHERE tablename = 'owned'").contains(role))
            target.drop()
        }
    }

    @Test func aCorruptChunkStopsTheRestoreMarksTheTargetAndFailsTheDrill() throws {
        try TestDatabase.withMigrated { source in
            try source.psql("INSERT INTO users (email) SELECT 'u' || i || '@example.com' FROM generate_series(1, 3000) i")
            let directory = try TestArchives.temporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let backup = try TestArchives.backup(source, directory: directory, chunkSize: 16 * 1024)
            let manifest = try ArchiveReader(path: backup.file).manifest
            let usersIndex = try #require(manifest.tables.firstIndex { $0.name == "users" })
            let member = try #require(manifest.members.last { $0.table == usersIndex })

            // Caught by the archive check: nothing is created.
            try TestArchives.tamper(backup.file, sidecarToo: false) { $0[member.offset + member.length / 2] ^= 0x55 }
            try TestDatabase.withUnused { target in
                let refused = try CLI.run(["restore", backup.file, "--target-url", target.url])
                #expect(refused.status == 2 && refused.stderr.contains("does not verify"), "\(refused)")
                #expect(try !target.exists)
            }

            // Sidecar rewritten to match: found mid-restore.
            try TestArchives.tamper(backup.file, sidecarToo: true) { _ in }
            try TestDatabase.withUnused { target in
                let stopped = try CLI.run(["restore", backup.file, "--target-url", target.url])
                #expect(stopped.status == 2, "\(stopped)")
                #expect(stopped.stderr.contains("member \(member.index)") && stopped.stderr.contains("public.users") && stopped.stderr.contains("marked FAILED"), "\(stopped)")
                let comment = try target.psql("SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = current_database()")
                #expect(comment.contains("FAILED restore"), "\(comment)")
            }
            let drill = try CLI.run(["drill", backup.file, "--json", "--database-url", source.url])
            #expect(drill.status == 2, "\(drill)")
            let report = try CLI.decode(DrillReport.self, drill.stdout)
            #expect(report.checks.contains { $0.name == "restore" && !$0.ok && $0.detail.contains("member \(member.index)") })
            #expect(!report.scratchDatabase.isEmpty)
            #expect(try !TestDatabase.named(report.scratchDatabase).exists, "the scratch database is dropped")
        }
    }

    @Test func anArchiveOfANewerFormatIsRefused() throws {
        try TestDatabase.with { source in
            try source.psql("CREATE TABLE t (id int); INSERT INTO t VALUES (1)")
            let directory = try TestArchives.temporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let backup = try TestArchives.backup(source, directory: directory)
            let reader = try ArchiveReader(path: backup.file)
            var json = String(decoding: try reader.manifest.line(), as: UTF8.self)
            json = json.replacingOccurrences(of: "\"format_version\":\(ArchiveManifest.currentFormatVersion)", with: "\"format_version\":99")
            // A newer format may change anything else, e.g. add a member kind this tool does not know:
            // still "newer format" (exit 1), not "corrupt" (exit 2).
                .replacingOccurrences(of: "\"kind\":\"header\"", with: "\"kind\":\"frames-v2\"")
            #expect(json.contains("\"kind\":\"frames-v2\"") && json.contains("\"format_version\":99"))
            let manifestMember = try GzipMemberCompressor().compress(Array(json.utf8))
            let offset = reader.trailer.manifestOffset
            try TestArchives.tamper(backup.file, sidecarToo: true) { data in
                data = data.prefix(offset) + Data(manifestMember)
                    + Data(ArchiveTrailer(manifestOffset: offset, manifestLength: manifestMember.count).member())
            }
            try TestDatabase.withUnused { target in
                let refused = try CLI.run(["restore", backup.file, "--target-url", target.url])
                #expect(refused.status == 1 && refused.stderr.contains("format v99"), "\(refused)")
                let verify = try CLI.run(["verify", backup.file])
                #expect(verify.status == 1 && verify.stderr.contains("format v99"), "\(verify)")
                #expect(try !target.exists)
            }
        }
    }

    @Test func drillPassesAndATamperedAuditChainFailsNamingTheIndex() throws {
        try TestDatabase.withSampleData(events: 400) { source in
            let directory = try TestArchives.temporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: directory) }
            _ = try TestArchives.backup(source, directory: directory)
            let metrics = directory + "/drill.prom"
            let passed = try CLI.run(["drill", "--latest", "--dir", directory, "--database-url", source.url, "--metrics-file", metrics])
            #expect(passed.status == 0, "\(passed)")
            for check in ["archive", "restore", "rows and fingerprints", "sequences", "constraints and indexes", "audit chain", "migrations"] {
                #expect(passed.stdout.contains("PASS  \(check):"), "\(check): \(passed.stdout)")
            }
            #expect(passed.stdout.contains("RTO") && passed.stdout.contains("backup age at drill") && !passed.stdout.contains("RPO"))
            #expect(try String(contentsOfFile: metrics, encoding: .utf8).contains("rgw_drill_last_success_timestamp_seconds{"))
            #expect(try CLI.run(["list", "--dir", directory]).stdout.contains("drilled"))

            // A link broken in the database before the next backup.
            try source.psql("""
                ALTER TABLE audit.audit_event DISABLE TRIGGER audit_event_no_update;
                UPDATE audit.audit_event SET previous_hash = '\\x00' WHERE chain_index = 123;
                ALTER TABLE audit.audit_event ENABLE TRIGGER audit_event_no_update;
                """)
            Thread.sleep(forTimeInterval: 1.1)  // a new archive name
            _ = try TestArchives.backup(source, directory: directory)
            let failed = try CLI.run(["drill", "--latest", "--dir", directory, "--database-url", source.url, "--metrics-file", metrics])
            #expect(failed.status == 2, "\(failed)")
            #expect(failed.stdout.contains("FAIL  audit chain: chain_index 123"), "\(failed.stdout)")
            #expect(failed.stdout.contains("PASS  rows and fingerprints"), "the archive itself is faithful")
            #expect(try String(contentsOfFile: metrics, encoding: .utf8).contains("rgw_drill_checks_failed{database=\"\(source.name)\",dir=\"\(directory)\"} 1"))
            let lines = try String(contentsOfFile: directory + "/drills.jsonl", encoding: .utf8).split(separator: "\n")
            #expect(lines.count == 2 && lines[1].contains("\"ok\":false"))
        }
    }
}
