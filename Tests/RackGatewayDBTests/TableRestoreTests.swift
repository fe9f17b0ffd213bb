import Foundation
import Testing
import TestSupport
@testable import RackGatewayDB

/// `restore ARCHIVE --table ... [--schema ...] [--into-schema NEW]`: the selected tables in one
/// transaction into a database that holds anything else, the copy-back SQL that brings deleted rows
/// back, the refusals (nothing changed), and the bytes read (only the tables' members).
@Suite("restore --table")
struct TableRestoreTests {
    /// The production fixture's tables that reference users: the nine whose rows a user's delete
    /// takes with it (ON DELETE CASCADE, users itself included) and the two whose column it clears
    /// (ON DELETE SET NULL).
    static let cascading = ["public.users", "public.user_sessions", "public.api_tokens", "public.user_resources", "public.mfa_methods",
                            "public.mfa_backup_codes", "public.mfa_attempts", "public.used_totp_steps", "public.trusted_devices"]
    static let settingNull = ["public.settings", "public.deploy_approval_requests"]

    struct DiffReport: Decodable {
        struct Table: Decodable {
            var table: String
            var status: String
            var added: Int?
            var removed: Int?
            var changed: Int?
            var rows: [Row]?
        }
        struct Row: Decodable {
            var change: String
            var key: [String: String?]?
        }
        var equal: Bool
        var tables: [Table]
    }

    struct Report: Decodable {
        struct Table: Decodable {
            var table: String
            var restoredAs: String
            var rows: Int
        }
        var mode: String
        var intoSchema: String?
        var tables: [Table]
        var sequences: [String]
        var leftOut: [String]
        var bytesRead: Int
        var archiveBytes: Int
        var copyBackSql: String?
    }

    static func environment(major: Int) throws -> [String: String] { ["RGW_PG_BIN_DIR": try TestCluster.binDirectory(major: major)] }

    /// Everything in `database` but schema `excluded`, as pg_dump (of PostgreSQL `major`) writes it: the
    /// schema and every row.
    static func dump(_ database: TestDatabase, excluding excluded: String, major: Int) throws -> String {
        let text = try Shell.runChecked(try TestCluster.binDirectory(major: major) + "/pg_dump", ["--no-password", "--exclude-schema", excluded],
                                        environment: try database.settings.childEnvironment)
        return text.split(separator: "\n").filter { !$0.hasPrefix("\\restrict") && !$0.hasPrefix("\\unrestrict") }.joined(separator: "\n")
    }

    static func archive(in directory: String, suffix: String = ".sql.gz") throws -> String {
        directory + "/" + (try #require(try FileManager.default.contentsOfDirectory(atPath: directory).first { $0.hasSuffix(suffix) }))
    }

    /// The done-when of issue 31's item 2, on the production-shaped fixture: 60 users deleted with
    /// their cascades; `restore --table` of the user tables `--into-schema recovered` into the live
    /// database, touching nothing outside it; the printed copy-back SQL run with psql; every table's
    /// md5 is the source's again, and `diff --rows` names exactly the deleted rows before and none
    /// after. On 15 the nine cascading tables and the two whose column the delete cleared (their
    /// ON DELETE SET NULL repaired, through the triggers of one of them); on 18, smaller, the nine
    /// only: the SQL then says which cleared columns it does not repair.
    @Test(arguments: [15, 18])
    func sixtyDeletedUsersComeBackThroughTheCopyBackSQL(major: Int) throws {
        let env = try Self.environment(major: major)
        let cluster = major == 15 ? try TestCluster.shared() : try TestCluster.version(major)
        let restored = major == 15 ? Self.cascading + Self.settingNull : Self.cascading
        try TestDatabase.with(on: cluster) { live in
            try ProductionFixture.build(live, events: major == 15 ? 1200 : 300)
            let directory = try TestArchives.temporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let backup = try CLI.run(["backup", "--database-url", live.url, "--dir", directory], environment: env)
            #expect(backup.status == 0, "\(backup)")
            let archive = try Self.archive(in: directory)
            let source = try DatabaseOracle.tableDigests(live)
            let sourceSequences = try DatabaseOracle.sequenceStates(live)

            // The 60 users that the most rows point at, and what their delete takes with it.
            let users = try live.psql("""
                SELECT string_agg(id::text, ',') FROM (SELECT u.id FROM users u ORDER BY
                    (SELECT count(*) FROM deploy_approval_requests d WHERE u.id IN (d.created_by_user_id, d.approved_by_user_id))
                  + (SELECT count(*) FROM settings s WHERE s.updated_by_user_id = u.id)
                  + (SELECT count(*) FROM user_sessions s WHERE s.user_id = u.id) DESC, u.id LIMIT 60) chosen
                """).trimmingCharacters(in: .whitespacesAndNewlines)
            #expect(users.split(separator: ",").count == 60)
            var expectedRemoved: [String: Int] = [:]
            for table in Self.cascading {
                let column = table == "public.users" ? "id" : "user_id"
                expectedRemoved[table] = Int(try live.psql("SELECT count(*) FROM \(table) WHERE \(column) IN (\(users))").trimmingCharacters(in: .whitespacesAndNewlines))
            }
            // An attempt of another user with a deleted user's method: its method_id is cleared (SET NULL).
            let attemptsCleared = Int(try live.psql("""
                SELECT count(*) FROM mfa_attempts a JOIN mfa_methods m ON m.id = a.method_id WHERE m.user_id IN (\(users)) AND a.user_id NOT IN (\(users))
                """).trimmingCharacters(in: .whitespacesAndNewlines)) ?? -1
            let cleared = Int(try live.psql("""
                SELECT count(*) FROM deploy_approval_requests WHERE created_by_user_id IN (\(users)) OR approved_by_user_id IN (\(users))
                """).trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0
            #expect(cleared > 0 && (expectedRemoved["public.user_sessions"] ?? 0) > 0, "the delete clears approvals' columns and takes sessions: \(expectedRemoved), \(cleared)")
            try live.psql("DELETE FROM users WHERE id IN (\(users))")

            let restoredArguments = restored.flatMap { ["--table", $0] }
            let before = try CLI.run(["diff", archive, "--database-url", live.url, "--rows", "--json"] + restoredArguments, environment: env)
            #expect(before.status == 2, "\(before)")
            let beforeReport = try CLI.decode(DiffReport.self, before.stdout)
            for table in Self.cascading {
                let verdict = try #require(beforeReport.tables.first { $0.table == table })
                let changed = table == "public.mfa_attempts" ? attemptsCleared : 0
                #expect(verdict.removed == expectedRemoved[table] && verdict.added == 0 && verdict.changed == changed,
                        "\(table): removed \(verdict.removed ?? -1) of \(expectedRemoved[table] ?? -1), added \(verdict.added ?? -1), changed \(verdict.changed ?? -1) of \(changed)")
            }
            let removedUsers = Set(try #require(beforeReport.tables.first { $0.table == "public.users" }).rows?.compactMap { $0.key?["id"] ?? nil } ?? [])
            #expect(removedUsers == Set(users.split(separator: ",").map(String.init)), "diff names exactly the deleted users")
            if major == 15 {
                #expect(beforeReport.tables.first { $0.table == "public.deploy_approval_requests" }?.changed == cleared)
            }

            // Everything outside the new schema, before and after the restore: untouched.
            let outside = try Self.dump(live, excluding: "recovered", major: major)
            let sqlFile = directory + "/copy-back.sql"
            let restore = try CLI.run(["restore", archive, "--into-schema", "recovered", "--target-url", live.url, "--copy-back-sql", sqlFile, "--json"]
                                      + restoredArguments, environment: env)
            #expect(restore.status == 0, "\(restore)")
            #expect(!restore.output.contains(live.cluster.password), "no password in the output")
            let report = try CLI.decode(Report.self, restore.stdout)
            #expect(report.mode == "table" && report.intoSchema == "recovered" && report.tables.count == restored.count)
            #expect(report.tables.first { $0.table == "public.users" }?.restoredAs == "recovered.users")
            #expect(report.sequences.contains("recovered.users_id_seq"))
            #expect(try Self.dump(live, excluding: "recovered", major: major) == outside, "nothing outside schema recovered changed")
            // The restored tables hold the archive's rows, and their sequences its values.
            let digests = try DatabaseOracle.tableDigests(live)
            for table in restored {
                let name = String(table.dropFirst("public.".count))
                #expect(digests["recovered.\(name)"] == source[table], "recovered.\(name)")
            }
            #expect(try DatabaseOracle.sequenceStates(live)["recovered.users_id_seq"] == sourceSequences["public.users_id_seq"])
            #expect(try FileManager.default.attributesOfItem(atPath: sqlFile)[.posixPermissions] as? Int == 0o600)
            #expect(try !String(contentsOfFile: directory + "/restores.jsonl", encoding: .utf8).contains(live.cluster.password))
            // The restore log beside the archive records it as a partial restore.
            let logged = try String(contentsOfFile: directory + "/restores.jsonl", encoding: .utf8).split(separator: "\n").last.map(String.init) ?? ""
            #expect(logged.contains("\"mode\":\"table\"") && logged.contains("\"ok\":true"), "\(logged)")
            let sql = try String(contentsOfFile: sqlFile, encoding: .utf8)
            #expect(sql == report.copyBackSql)
            // Parents first.
            let users_ = try #require(sql.range(of: "INSERT INTO public.users ")), sessions = try #require(sql.range(of: "INSERT INTO public.user_sessions "))
            let methods = try #require(sql.range(of: "INSERT INTO public.mfa_methods ")), attempts = try #require(sql.range(of: "INSERT INTO public.mfa_attempts "))
            #expect(users_.lowerBound < sessions.lowerBound && methods.lowerBound < attempts.lowerBound)
            if major != 15 {
                #expect(sql.contains("-- public.settings (updated_by_user_id) references public.users ON DELETE SET NULL and was not restored"), "\(sql)")
            }

            _ = try Shell.runChecked("psql", ["-X", "-q", "-v", "ON_ERROR_STOP=1", "-f", sqlFile], environment: try live.settings.childEnvironment)
            let after = try DatabaseOracle.tableDigests(live)
            for table in restored { #expect(after[table] == source[table], "\(table) is the source's again") }
            let diff = try CLI.run(["diff", archive, "--database-url", live.url, "--rows"] + restoredArguments, environment: env)
            #expect(diff.status == 0 && diff.stdout.contains("EQUAL"), "\(diff)")
            // The live sequences are not behind the ids copied back.
            let behind = try live.psql("SELECT count(*) FROM users WHERE id > (SELECT last_value FROM users_id_seq)").trimmingCharacters(in: .whitespacesAndNewlines)
            #expect(behind == "0")
        }
    }

    /// Types, functions, a table not restored, identity and generated columns, a trigger, a comment,
    /// an expression index, and a schema and table whose names need quotes.
    static let sideSQL = #"""
        CREATE TYPE public.mood AS ENUM ('ok', 'sad');
        CREATE FUNCTION public.touch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN NEW.note := NEW.note || '!'; RETURN NEW; END $$;
        CREATE TABLE public.parent (id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY, name text UNIQUE NOT NULL, feeling public.mood DEFAULT 'ok',
                                    doubled int GENERATED ALWAYS AS (id * 2) STORED, CHECK (length(name) < 50));
        COMMENT ON TABLE public.parent IS 'the parents';
        CREATE TABLE public.other (id int PRIMARY KEY);
        CREATE TABLE public.child (id bigserial PRIMARY KEY, parent_id int REFERENCES public.parent (id) ON DELETE SET NULL, note text,
                                   other_id int REFERENCES public.other (id));
        CREATE INDEX child_note_idx ON public.child (lower(note));
        CREATE TRIGGER child_touch BEFORE INSERT OR UPDATE ON public.child FOR EACH ROW EXECUTE FUNCTION public.touch();
        INSERT INTO public.other SELECT g FROM generate_series(1, 5) g;
        INSERT INTO public.parent (name, feeling) SELECT 'p' || g, CASE WHEN g % 2 = 0 THEN 'sad' ELSE 'ok' END::public.mood FROM generate_series(1, 40) g;
        INSERT INTO public.child (parent_id, note, other_id) SELECT 1 + g % 40, 'n' || g, 1 + g % 5 FROM generate_series(1, 400) g;
        CREATE SCHEMA "Odd Schema";
        CREATE TABLE "Odd Schema"."Mixed Case" (id serial PRIMARY KEY, "Value" text);
        INSERT INTO "Odd Schema"."Mixed Case" ("Value") SELECT 'v' || g FROM generate_series(1, 30) g;
        """#

    /// `--into-schema NEW` in the database the tables came from: the restored tables and their
    /// sequences are NEW's, everything else (the enum, the trigger's function, public.other) keeps
    /// its schema; identity and generated columns, the SET NULL key and the live trigger in the
    /// copy-back; quoted names rewritten; what exists is refused with nothing changed; options that
    /// do not apply are usage errors.
    @Test func intoSchemaRewritesOnlyTheRestoredNamesAndRefusesWhatExists() throws {
        try TestDatabase.with { live in
            try live.psql(Self.sideSQL)
            let directory = try TestArchives.temporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: directory) }
            _ = try TestArchives.backup(live, directory: directory)
            let archive = try Self.archive(in: directory)
            let source = try DatabaseOracle.tableDigests(live)

            // Options that do not apply, a table the archive does not hold: 64, nothing changed.
            let before = try Self.dump(live, excluding: "nothing", major: 15)
            for (arguments, text) in [(["--into-schema", "side"], "--into-schema goes with --table or --schema"),
                                      (["--table", "public.parent", "--clean"], "--clean (a table restore drops nothing"),
                                      (["--table", "public.parent", "--convox-app", "gateway"], "--convox-app (the pipeline restores a whole database) does not go with --table"),
                                      (["--table", "public.parent", "--jobs", "2"], "--jobs"),
                                      (["--table", "public.parent", "--verify"], "--verify (a table restore checks every table's rows"),
                                      (["--table", "public.parent", "--copy-back-sql", directory + "/x.sql"], "--copy-back-sql goes with --into-schema"),
                                      (["--table", "public.parnet", "--into-schema", "side"], "holds no table public.parnet; the nearest of its 4 tables: public.parent"),
                                      (["--schema", "pub", "--into-schema", "side"], "holds no table in schema pub"),
                                      (["--table", "public.parent", "--into-schema", "public"], "--into-schema public is where public.parent is")] {
                let result = try CLI.run(["restore", archive, "--target-url", live.url] + arguments)
                #expect(result.status == 64 && result.stderr.contains(text), "\(arguments): \(result)")
            }
            let plan = try CLI.run(["restore", archive, "--table", "public.parent", "--table", "public.child", "--into-schema", "side", "--target-url", live.url, "--dry-run"])
            #expect(plan.status == 0 && plan.stdout.contains("public.parent as side.parent: 40 rows") && plan.stdout.contains("would create schema side")
                    && plan.stdout.contains("the target allows it"), "\(plan)")
            #expect(try Self.dump(live, excluding: "nothing", major: 15) == before)

            let restore = try CLI.run(["restore", archive, "--table", "public.parent", "--table", "public.child", "--into-schema", "side", "--target-url", live.url])
            #expect(restore.status == 0, "\(restore)")
            #expect(restore.stdout.contains("--   left out: TRIGGER child child_touch (no --with-triggers)"), "\(restore.stdout)")
            #expect(restore.stdout.contains("--   left out: FK CONSTRAINT child child_other_id_fkey (references public.other, which is not restored)"), "\(restore.stdout)")
            #expect(try DatabaseOracle.tableDigests(live)["side.parent"] == source["public.parent"])
            #expect(try DatabaseOracle.tableDigests(live)["side.child"] == source["public.child"])
            let facts = try live.psql("""
                SELECT (SELECT confrelid::regclass::text FROM pg_constraint WHERE conrelid = 'side.child'::regclass AND contype = 'f'),
                       (SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 'side.parent'::regclass AND attname = 'feeling'),
                       (SELECT pg_get_expr(adbin, adrelid) FROM pg_attrdef WHERE adrelid = 'side.child'::regclass),
                       pg_get_serial_sequence('side.parent', 'id'), obj_description('side.parent'::regclass, 'pg_class'),
                       to_regclass('side.child_note_idx') IS NOT NULL,
                       (SELECT count(*) FROM pg_trigger WHERE tgrelid = 'side.child'::regclass AND NOT tgisinternal)
                """).trimmingCharacters(in: .whitespacesAndNewlines)
            #expect(facts == "side.parent|mood|nextval('side.child_id_seq'::regclass)|side.parent_id_seq|the parents|t|0", "\(facts)")

            // The copy-back, after parents were deleted (their children's parent_id set NULL) and a child
            // was inserted (its trigger fired): identity, generated column, the SET NULL repair.
            try live.psql("INSERT INTO public.child (parent_id, note) VALUES (1, 'late')")
            #expect(try live.psql("SELECT note FROM public.child WHERE note LIKE 'late%'").hasPrefix("late!"), "the trigger fires on the live table")
            try live.psql("DELETE FROM public.child WHERE note LIKE 'late%'")
            try live.psql("DELETE FROM public.parent WHERE id <= 5")
            let sql = String(restore.stdout)
            #expect(sql.contains("INSERT INTO public.parent (id, name, feeling)\n    OVERRIDING SYSTEM VALUE\n    SELECT id, name, feeling FROM ONLY side.parent"), "\(sql)")
            #expect(sql.contains("ALTER TABLE public.child DISABLE TRIGGER child_touch;"))
            let file = directory + "/copy-back.sql"
            try sql.write(toFile: file, atomically: true, encoding: .utf8)
            _ = try Shell.runChecked("psql", ["-X", "-q", "-v", "ON_ERROR_STOP=1", "-f", file], environment: try live.settings.childEnvironment)
            let after = try DatabaseOracle.tableDigests(live)
            #expect(after["public.parent"] == source["public.parent"] && after["public.child"] == source["public.child"])
            #expect(try live.psql("SELECT count(*) FROM pg_trigger WHERE tgname = 'child_touch' AND tgenabled = 'O'").hasPrefix("1"), "enabled again")

            // Quoted names: the schema and table that need quotes, into a schema that needs them too.
            let odd = try CLI.run(["restore", archive, "--schema", "Odd Schema", "--into-schema", "New Odd", "--target-url", live.url])
            #expect(odd.status == 0, "\(odd)")
            #expect(try DatabaseOracle.tableDigests(live)["\"New Odd\".\"Mixed Case\""] == source["\"Odd Schema\".\"Mixed Case\""])
            #expect(try live.psql(#"SELECT pg_get_serial_sequence('"New Odd"."Mixed Case"', 'id')"#).hasPrefix(#""New Odd"."Mixed Case_id_seq""#))

            // NEW not empty; the tables exist where they were: refused, nothing changed.
            let state = try Self.dump(live, excluding: "nothing", major: 15)
            let again = try CLI.run(["restore", archive, "--table", "public.child", "--into-schema", "side", "--target-url", live.url, "--json"])
            #expect(again.status == 1 && again.stdout.contains("\"code\" : \"table_exists\"") && again.stdout.contains("schema side of")
                    && again.stdout.contains("is not empty"), "\(again)")
            let refusedPlan = try CLI.run(["restore", archive, "--table", "public.child", "--into-schema", "side", "--target-url", live.url, "--dry-run"])
            #expect(refusedPlan.status == 1 && refusedPlan.stdout.contains("REFUSED: schema side of"), "\(refusedPlan)")
            let existing = try CLI.run(["restore", archive, "--table", "public.parent", "--table", "public.child", "--target-url", live.url])
            #expect(existing.status == 1 && existing.stderr.contains("public.child, public.child_id_seq, public.parent, public.parent_id_seq already exist")
                    && existing.stderr.contains("--into-schema"), "\(existing)")
            #expect(try Self.dump(live, excluding: "nothing", major: 15) == state)
        }
    }

    /// Where they were, into another database: created in their own schemas (made when missing).
    /// A failure at any point (a trigger's function missing, after the data; a damaged member, in
    /// the data) leaves nothing: one transaction.
    @Test func aFailureAtAnyPointLeavesNothing() throws {
        try TestDatabase.with { source in
            try source.psql(Self.sideSQL)
            let directory = try TestArchives.temporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: directory) }
            _ = try TestArchives.backup(source, directory: directory, chunkSize: 4096)
            let archive = try Self.archive(in: directory)
            let digests = try DatabaseOracle.tableDigests(source)
            try TestDatabase.with { target in
                try target.psql("CREATE TYPE public.mood AS ENUM ('ok', 'sad'); CREATE TABLE public.unrelated (id int); INSERT INTO public.unrelated VALUES (1)")
                let before = try Self.dump(target, excluding: "nothing", major: 15)
                let failed = try CLI.run(["restore", archive, "--table", "public.parent", "--table", "public.child", "--with-triggers", "--target-url", target.url])
                #expect(failed.status == 1 && failed.stderr.contains("post-data TRIGGER child child_touch") && failed.stderr.contains("nothing was restored"), "\(failed)")
                #expect(try Self.dump(target, excluding: "nothing", major: 15) == before, "nothing of the failed restore is left")

                let restored = try CLI.run(["restore", archive, "--table", "public.parent", "--table", "public.child", "--schema", "Odd Schema", "--target-url", target.url])
                #expect(restored.status == 0 && restored.stdout.contains("created schema Odd Schema"), "\(restored)")
                let after = try DatabaseOracle.tableDigests(target)
                for table in ["public.parent", "public.child", "\"Odd Schema\".\"Mixed Case\""] { #expect(after[table] == digests[table], "\(table)") }
                #expect(after["public.unrelated"] != nil && after["public.other"] == nil)
            }
            // A damaged member of the child's, after the parent's rows went in: exit 2, nothing left.
            let manifest = try ArchiveReader(path: archive).manifest
            let child = try #require(manifest.tables.first { $0.name == "child" })
            #expect(child.chunks.count > 1, "the child's rows span members")
            let last = manifest.members[child.chunks.last!]
            try TestArchives.tamper(archive, sidecarToo: true) { data in data[last.offset + last.length / 2] ^= 0x55 }
            try TestDatabase.with { target in
                try target.psql("CREATE TYPE public.mood AS ENUM ('ok', 'sad')")
                let before = try Self.dump(target, excluding: "nothing", major: 15)
                let damaged = try CLI.run(["restore", archive, "--table", "public.parent", "--table", "public.child", "--target-url", target.url])
                #expect(damaged.status == 2 && damaged.stderr.contains("member \(last.index)"), "\(damaged)")
                #expect(try Self.dump(target, excluding: "nothing", major: 15) == before, "nothing of the failed restore is left")
            }
        }
    }

    /// From S3, plain and age-encrypted: only the manifest, the schema members and the table's own
    /// members are fetched (counted at the HTTP layer), a small share of the archive.
    @Test func fromS3AndEncryptedOnlyTheTablesMembersAreFetched() throws {
        let keys = try TestKeys.make()
        defer { try? FileManager.default.removeItem(atPath: keys.directory) }
        let moto = try MotoServer.shared()
        let bucket = try moto.freshBucket().bucket
        let proxy = try FaultProxy(upstream: moto.endpoint)
        try TestDatabase.with { source in
            try source.psql(Self.sideSQL + """
                CREATE TABLE public.big (id int PRIMARY KEY, payload text);
                INSERT INTO public.big SELECT g, md5(g::text) || md5((g * 7)::text) FROM generate_series(1, 60000) g;
                """)
            let digests = try DatabaseOracle.tableDigests(source)
            let environment = MotoServer.awsEnvironment.merging(["AWS_ENDPOINT_URL_S3": proxy.endpoint]) { $1 }
            for encrypted in [false, true] {
                let prefix = encrypted ? "age" : "plain"
                let store = S3Store(client: proxy.client(bucket: bucket), prefix: prefix)
                var options = BackupOptions(store: store, jobs: 2, compressors: 1)
                if encrypted { options.keys.recipients = try KeyFiles.recipients([keys.recipient], file: nil) }
                options.chunkSize = 64 << 10
                _ = try BackupRunner(settings: try source.settings, options: options, logger: .quiet).run()
                let name = try #require(try store.list().first { $0.name.hasSuffix(encrypted ? ".age" : ".sql.gz") }?.name)
                let reader = try ArchiveReader(ArchiveLocation(store: store, name: name, keys: ArchiveKeys(identities: try KeyFiles.identities(keys.identity))))
                let manifest = reader.manifest
                let wanted = manifest.tables.filter { $0.name == "parent" || $0.name == "child" }
                let schema = manifest.members.filter { $0.kind == .preData || $0.kind == .postData }
                let reads = wanted.flatMap(\.chunks).count + schema.count
                let members = wanted.flatMap(\.chunks).map { manifest.members[$0].length }.reduce(0, +) + schema.map(\.length).reduce(0, +)
                // Encrypted: the age header and the 64 KiB chunks around the trailer and manifest, and
                // each ranged read starts and ends in a chunk.
                let opening = ArchiveTrailer.memberLength + reader.trailer.manifestLength + (encrypted ? 4 * 65_552 + 4096 : 0)
                let allowed = opening + members + reads * (encrypted ? 2 * 65_552 : 0)
                try TestDatabase.with { target in
                    try target.psql("CREATE TYPE public.mood AS ENUM ('ok', 'sad')")
                    try proxy.clearLog()
                    let restore = try CLI.run(["restore", "s3://\(bucket)/\(prefix)/\(name)", "--table", "public.parent", "--table", "public.child",
                                               "--into-schema", "recovered", "--target-url", target.url] + (encrypted ? ["--identity", keys.identity] : []),
                                              environment: environment)
                    #expect(restore.status == 0, "\(restore)")
                    let fetched = try proxy.requests().filter { $0.method == "GET" && $0.path == "/\(bucket)/\(prefix)/\(name)" }.map(\.bytes).reduce(0, +)
                    #expect(fetched <= allowed && fetched * 4 < reader.storedSize,
                            "restore --table fetched \(fetched) bytes of an archive of \(reader.storedSize) (the members read: \(members), at most \(allowed))")
                    let after = try DatabaseOracle.tableDigests(target)
                    #expect(after["recovered.parent"] == digests["public.parent"] && after["recovered.child"] == digests["public.child"])
                    print("fetched from S3 (\(prefix), archive \(reader.storedSize) bytes): restore --table of parent and child \(fetched)")
                }
            }
        }
    }
}
