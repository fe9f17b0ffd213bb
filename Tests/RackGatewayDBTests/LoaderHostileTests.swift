import Foundation
import RGWCompression
import RGWPostgres
import Testing
import TestSupport
@testable import RackGatewayDB

/// Crafted archives against a real server (issue 28, items 5 to 8): each is an archive of ours
/// rewritten with every checksum a reader checks recomputed and its `.sha256` sidecar rewritten
/// (`LoaderCrafting`), so that opening and the restore's preflight (structure and SHA-256) pass it
/// and only the loader can refuse it (those whose structure is wrong are refused on opening, before
/// any target is created). Each restore must exit 2 naming the member, leave its target
/// marked FAILED (which `check` reports), and run nothing of the crafted content.
@Suite("the loader refuses crafted archives")
struct LoaderHostileTests {
    /// A source database with public.t (135 rows, an index), a sequence at 3 and a large object,
    /// backed up; `body` gets the archive and its manifest.
    static func withArchive(codec: MemberCodec = .gzip, setup: String = "", _ body: (String, ArchiveManifest) throws -> Void) throws {
        try TestDatabase.with { source in
            try source.psql("""
                CREATE TABLE t (id int PRIMARY KEY, label text);
                INSERT INTO t SELECT i, 'row ' || i FROM generate_series(1, 135) i;
                CREATE INDEX t_label ON t (label);
                CREATE SEQUENCE s;
                SELECT nextval('s'), nextval('s'), nextval('s');
                SELECT lo_from_bytea(0, 'hello large object');
                \(setup)
                """)
            let directory = try TestArchives.temporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let backup = try TestArchives.backup(source, directory: directory, codec: codec)
            try body(backup.file, try ArchiveReader(path: backup.file).manifest)
        }
    }

    /// `restore FILE` into a new database: exit 2 with every text of `mentions` in its message, and
    /// the target left marked FAILED, which `check` refuses; then `body` looks at the target.
    static func expectRefused(_ file: String, mentioning mentions: [String], _ body: (TestDatabase) throws -> Void = { _ in }) throws {
        try TestDatabase.withUnused { target in
            let restore = try CLI.run(["restore", file, "--target-url", target.url])
            #expect(restore.status == 2, "\(restore)")
            for text in mentions + ["marked FAILED"] { #expect(restore.stderr.contains(text), "\(text): \(restore)") }
            let comment = try target.psql("SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = current_database()")
            #expect(comment.contains("FAILED restore"), "\(comment)")
            let check = try CLI.run(["check", "--database-url", target.url])
            #expect(check.status != 0 && check.output.contains("restore mark"), "\(check)")
            try body(target)
        }
    }

    /// `restore FILE` refused when it opens the archive (`ArchiveLayout.structuralProblems`): exit 2
    /// with every text of `mentions`, before any target is created.
    static func expectRefusedOnOpening(_ file: String, mentioning mentions: [String]) throws {
        try TestDatabase.withUnused { target in
            let restore = try CLI.run(["restore", file, "--target-url", target.url])
            #expect(restore.status == 2, "\(restore)")
            for text in mentions + ["the manifest does not describe the file"] { #expect(restore.stderr.contains(text), "\(text): \(restore)") }
            let admin = try Connection(settings: try target.cluster.adminSettings)
            let exists = try admin.query("SELECT count(*) FROM pg_database WHERE datname = \(SQL.literal(target.name))")
            #expect(exists.rows.first?[0] == "0", "no target created")
        }
    }

    static func expectVerifyRefuses(_ file: String, mentioning text: String) throws {
        let verify = try CLI.run(["verify", file])
        #expect(verify.status == 2 && verify.output.contains(text), "\(verify)")
    }

    static func tableExists(_ name: String, in target: TestDatabase) throws -> Bool {
        try target.psql("SELECT count(*) FROM pg_class WHERE relname = '\(name)'").trimmingCharacters(in: .whitespacesAndNewlines) == "1"
    }

    static func index(of kind: ArchiveManifest.MemberKind, in manifest: ArchiveManifest) throws -> Int {
        try #require(manifest.members.firstIndex { $0.kind == kind })
    }

    // MARK: item 5: every member compared with the manifest before it is sent

    /// An emptied post-data member with its size recomputed and the manifest's CRC32 left: the
    /// restore used to build no index and exit 0.
    @Test(arguments: [MemberCodec.gzip, .zstd]) func anEmptiedPostDataMemberFailsTheManifestsCRC32(codec: MemberCodec) throws {
        try Self.withArchive(codec: codec) { file, manifest in
            let postData = try Self.index(of: .postData, in: manifest)
            try LoaderCrafting.rebuild(file, staleCRC: [postData]) { _, texts in texts[postData] = Array("\n".utf8) }
            try Self.expectRefused(file, mentioning: ["member \(postData) (post-data)", "CRC32"])
            try Self.expectVerifyRefuses(file, mentioning: "CRC32")
        }
    }

    /// A large-object member relabelled `header` (a second header, out of order): every large object
    /// used to come back empty, exit 0.
    @Test func aLargeObjectMemberRelabelledHeaderIsRefused() throws {
        try Self.withArchive { file, manifest in
            let largeObjects = try Self.index(of: .largeObjects, in: manifest)
            try LoaderCrafting.rebuild(file) { manifest, _ in manifest.members[largeObjects].kind = .header }
            try Self.expectRefusedOnOpening(file, mentioning: ["member \(largeObjects) (header)", "may not follow"])
            try Self.expectVerifyRefuses(file, mentioning: "large objects")
        }
    }

    /// A header member with a statement in it: psql runs it, the loader used never to read the header.
    @Test func aHeaderWithAStatementIsRefused() throws {
        try Self.withArchive { file, manifest in
            let header = try Self.index(of: .header, in: manifest)
            try LoaderCrafting.rebuild(file) { _, texts in texts[header] += Array("CREATE TABLE header_table (id int);\n".utf8) }
            try Self.expectRefused(file, mentioning: ["header", "is not a comment"]) { target in
                let exists = try Self.tableExists("header_table", in: target)
                #expect(!exists)
            }
        }
    }

    /// A sequences member that sets another value than the manifest's: psql and the tool's restore
    /// would leave different sequences.
    @Test func aSequencesMemberThatDisagreesWithTheManifestIsRefused() throws {
        try Self.withArchive { file, manifest in
            let sequences = try Self.index(of: .sequences, in: manifest)
            try LoaderCrafting.rebuild(file) { _, texts in
                texts[sequences] = try LoaderCrafting.replacing("\"s\"', 3, true);", with: "\"s\"', 999, true);", in: texts[sequences])
            }
            try Self.expectRefused(file, mentioning: ["sequences member", "differ from the manifest"])
        }
    }

    /// A table's chunk list that does not name its data members.
    @Test func aChunkListThatDisagreesWithTheDataMembersIsRefused() throws {
        try Self.withArchive { file, manifest in
            let table = try #require(manifest.tables.firstIndex { $0.name == "t" })
            try LoaderCrafting.rebuild(file) { manifest, _ in manifest.tables[table].chunks = [] }
            try Self.expectRefusedOnOpening(file, mentioning: ["table public.t", "chunk list"])
            try Self.expectVerifyRefuses(file, mentioning: "chunk list")
        }
    }

    // MARK: item 6: a `\.` row, and the server's COPY count

    /// A `\.` line after row 46 of 135, the member's and table's rows, bytes and fingerprint
    /// recomputed with it as a row: the server stopped there and the restore used to exit 0 with 46 rows.
    @Test func aCopyEndMarkerInsideADataMemberIsRefused() throws {
        try Self.withArchive { file, manifest in
            let table = try #require(manifest.tables.firstIndex { $0.name == "t" })
            let member = try #require(manifest.members.firstIndex { $0.table == table })
            try LoaderCrafting.rebuild(file) { manifest, texts in
                texts[member] = try LoaderCrafting.replacing("\n47\trow 47\n", with: "\n\\.\n47\trow 47\n", in: texts[member])
                manifest.members[member].rows! += 1
                manifest.tables[table].rows += 1
                manifest.tables[table].bytes += 3
                let marker = Array("\\.".utf8)
                let sum = UInt64(manifest.tables[table].fingerprint, radix: 16)! &+ marker.withUnsafeBytes { XXH64.hash($0) }
                manifest.tables[table].fingerprint = ArchiveManifest.fingerprintText(sum)
            }
            try Self.expectRefused(file, mentioning: ["member \(member) (data)", "public.t", "end-of-data marker"]) { target in
                let exists = try Self.tableExists("t_label", in: target)
                #expect(!exists, "no post-data ran")
            }
            try Self.expectVerifyRefuses(file, mentioning: "end-of-data marker")
        }
    }

    /// A crafted pre-data whose trigger drops every other row: the chunk's rows are all sent, the
    /// server's `COPY n` says how many it took, and the two must agree.
    @Test func theServersCopyCountMustMatchTheChunksRows() throws {
        try Self.withArchive { file, manifest in
            let preData = try Self.index(of: .preData, in: manifest)
            let member = try #require(manifest.members.firstIndex { $0.kind == .data && manifest.tables[$0.table!].name == "t" })
            try LoaderCrafting.rebuild(file) { _, texts in
                texts[preData] += Array("""

                    CREATE FUNCTION public.swallow() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN IF NEW.id % 2 = 0 THEN RETURN NULL; END IF; RETURN NEW; END $$;
                    CREATE TRIGGER swallow BEFORE INSERT ON public.t FOR EACH ROW EXECUTE FUNCTION public.swallow();

                    """.utf8)
            }
            try Self.expectRefused(file, mentioning: ["the server loaded 68 rows of member \(member) (data)", "which holds 135"])
        }
    }

    // MARK: item 7: large-object lines validated before any of them runs

    /// A large-object line that ends its `lo_put` and creates a table, with the manifest's large-object
    /// bytes and fingerprint recomputed the way the old scan counted it: the table used to be created.
    @Test func aLargeObjectMemberThatWouldRunSQLRunsNothing() throws {
        try Self.withArchive { file, manifest in
            let largeObjects = try Self.index(of: .largeObjects, in: manifest)
            try LoaderCrafting.rebuild(file) { manifest, texts in
                let line = String(decoding: texts[largeObjects], as: UTF8.self).split(separator: "\n")[0]
                let oid = try #require(line.split(separator: "'").dropFirst().first)
                var hex = "00'); CREATE TABLE lo_table (id int); SELECT ('"
                if hex.utf8.count % 2 == 1 { hex = hex.replacingOccurrences(of: "('", with: "(' ") }
                texts[largeObjects] += Array("SELECT pg_catalog.lo_put('\(oid)', 0, '\\x\(hex)');\n".utf8)
                let recorded = try #require(manifest.largeObjects)
                let piece = Array(hex.utf8).withUnsafeBytes { LargeObjects.pieceHash(oid: oid, offset: "0", hex: $0) }
                manifest.largeObjects!.bytes = recorded.bytes + hex.utf8.count / 2
                manifest.largeObjects!.fingerprint = ArchiveManifest.fingerprintText(UInt64(recorded.fingerprint, radix: 16)! &+ piece)
            }
            try Self.expectRefused(file, mentioning: ["member \(largeObjects) (large-objects)", "line 2 is not a lo_put statement"]) { target in
                let exists = try Self.tableExists("lo_table", in: target)
                #expect(!exists, "nothing of the member ran")
            }
            try Self.expectVerifyRefuses(file, mentioning: "not a lo_put statement")
        }
    }

    /// The large-object grammar: exactly the line the backup writes, nothing near it.
    @Test func largeObjectLinesAreOnlyTheFormTheBackupWrites() throws {
        func scan(_ text: String) -> String? {
            switch LargeObjects.scan(Array(text.utf8)) {
            case .success: nil
            case .failure(let error): error.description
            }
        }
        let good = "SELECT pg_catalog.lo_put('16385', 0, '\\x00ff');\nSELECT pg_catalog.lo_put('16385', 1048576, '\\x0a');\n"
        #expect(scan(good) == nil)
        let pieces = try LargeObjects.scan(Array(good.utf8)).get()
        #expect(pieces.pieces == 2 && pieces.bytes == 3)
        for bad in ["", "SELECT pg_catalog.lo_put('+16385', 0, '\\x00');\n", "SELECT pg_catalog.lo_put('016385', 0, '\\x00');\n",
                    "SELECT pg_catalog.lo_put('4294967296', 0, '\\x00');\n", "SELECT pg_catalog.lo_put('0', 0, '\\x00');\n",
                    "SELECT pg_catalog.lo_put('16385', 7, '\\x00');\n", "SELECT pg_catalog.lo_put('16385', -0, '\\x00');\n",
                    "SELECT pg_catalog.lo_put('16385', 0, '\\x00FF');\n", "SELECT pg_catalog.lo_put('16385', 0, '\\x0');\n",
                    "SELECT pg_catalog.lo_put('16385', 0, '\\x');\n", "SELECT pg_catalog.lo_put('16385', 0, '\\x00');",
                    "SELECT pg_catalog.lo_put('16385', 0, '\\x00'); \n", "select pg_catalog.lo_put('16385', 0, '\\x00');\n",
                    "SELECT pg_catalog.lo_put('16385', 0, '\\x00');\nCREATE TABLE x ();\n",
                    "SELECT pg_catalog.lo_put('16385', 0, '\\x00'); CREATE TABLE x (); SELECT ('');\n"] {
            #expect(scan(bad) != nil, "\(bad)")
        }
    }

    // MARK: item 8: manifest text never spliced into SQL

    /// A grant whose privilege carries a statement: it used to run on the new database; now the
    /// manifest is refused when it is read, before the target is touched.
    @Test func aDatabasePrivilegeOutsideTheAllowListIsRefused() throws {
        try Self.withArchive(setup: "DO $$ BEGIN EXECUTE format('REVOKE TEMPORARY ON DATABASE %I FROM PUBLIC', current_database()); END $$;") { file, manifest in
            #expect(manifest.databaseProperties?.grants?.map(\.privilege) == ["CONNECT"])
            let injected = "CONNECT ON DATABASE postgres TO PUBLIC; CREATE TABLE grant_table (id int); GRANT CONNECT"
            try LoaderCrafting.rebuild(file, manifestLine: { line in
                #expect(line.contains("\"privilege\":\"CONNECT\""))
                return line.replacingOccurrences(of: "\"privilege\":\"CONNECT\"", with: "\"privilege\":\"\(injected)\"")
            }) { _, _ in }
            try TestDatabase.withUnused { target in
                let restore = try CLI.run(["restore", file, "--target-url", target.url])
                #expect(restore.status == 2 && restore.stderr.contains("database privilege \"CONNECT ON DATABASE postgres"), "\(restore)")
                if try target.exists {
                    let created = try Self.tableExists("grant_table", in: target)
                    #expect(!created, "the privilege's statement ran")
                }
                #expect(try !target.exists, "refused before the target is created")
            }
            try Self.expectVerifyRefuses(file, mentioning: "database privilege")
        }
    }

    /// An extension configuration table's filter that calls a function: `restore --verify` used to
    /// run it (a large object appeared per row read); now only the database's own condition runs.
    @Test func aConfigurationTableFilterThatIsNotTheExtensionsIsNotRun() throws {
        try TestDatabase.with { source in
            try FeatureZooTests.installTestExtension(source)
            try source.psql("CREATE EXTENSION rgw_zoo_ext; INSERT INTO zoo_ext_config VALUES (10, 'mine', true);")
            let directory = try TestArchives.temporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let file = try TestArchives.backup(source, directory: directory).file
            try LoaderCrafting.rebuild(file) { manifest, _ in
                let table = try #require(manifest.tables.firstIndex { $0.name == "zoo_ext_config" })
                #expect(manifest.tables[table].filter == "WHERE user_defined")
                manifest.tables[table].filter = "WHERE user_defined OR pg_catalog.lo_create(0) IS NULL"
            }
            try TestDatabase.withUnused { target in
                let restore = try CLI.run(["restore", file, "--target-url", target.url, "--verify"])
                #expect(restore.status == 2 && restore.stderr.contains("public.zoo_ext_config: the manifest's filter"), "\(restore)")
                let created = try target.psql("SELECT count(*) FROM pg_largeobject_metadata").trimmingCharacters(in: .whitespacesAndNewlines)
                #expect(created == "0", "the filter ran")
            }
        }
    }

    @Test func databaseGrantsTakeOnlyPrivilegeKeywords() throws {
        for privilege in ["CREATE", "CONNECT", "TEMPORARY", "TEMP", "ALL", "ALL PRIVILEGES"] {
            #expect(throws: Never.self) { try DatabaseProperties.Grant(grantee: nil, privilege: privilege, grantable: false) }
        }
        for privilege in ["", "connect; DROP TABLE t", "SELECT", "CONNECT ON DATABASE x TO PUBLIC; CREATE TABLE y ()"] {
            #expect(throws: ToolError.self) { try DatabaseProperties.Grant(grantee: nil, privilege: privilege, grantable: false) }
        }
        let properties = DatabaseProperties(settings: [.init(role: "r\"x", name: "search_path", value: "a, \"b'c\"")], comment: "it's",
                                            grants: [try .init(grantee: "g\"h", privilege: "CONNECT", grantable: true)])
        #expect(properties.statements(database: "d") == [
            "ALTER ROLE \"r\"\"x\" IN DATABASE \"d\" SET \"search_path\" TO 'a', 'b''c'",
            "COMMENT ON DATABASE \"d\" IS 'it''s'",
            "REVOKE ALL ON DATABASE \"d\" FROM PUBLIC",
            "GRANT CONNECT ON DATABASE \"d\" TO \"g\"\"h\" WITH GRANT OPTION",
        ])
    }
}
