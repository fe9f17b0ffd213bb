import Foundation
import Testing
import RGWCompression
import RGWPostgres
import RackGatewayDB
import TestSupport

/// Issue 28: archives are untrusted input. Each test crafts archives from a real small one with
/// every checksum recomputed (`CraftedArchive`), so the change reaches the parser, puts the crafted
/// file beside the intact archive, and runs the built binary as a user would: a clear exit 2
/// naming the crafted file, never a crash (a signal), the intact archive still listed, and memory
/// bounded by what the file really holds.
@Suite struct HostileArchiveTests {
    /// A directory holding one intact archive of a small database (two tables, a sequence, a large
    /// object), the database, and the name a crafted archive gets there (newer than the intact one).
    struct Scene {
        var database: TestDatabase
        var directory: String
        var intact: String
        var intactName: String { URL(fileURLWithPath: intact).lastPathComponent }
        var craftedName = "rack_gateway_backup_20991231T000000Z.sql.gz"
        var crafted: String { directory + "/" + craftedName }
    }

    func withScene(_ body: (Scene) throws -> Void) throws {
        try TestDatabase.with { database in
            _ = try database.psql("""
                CREATE TABLE t (id int PRIMARY KEY, note text);
                INSERT INTO t SELECT g, 'row ' || g FROM generate_series(1, 300) g;
                CREATE TABLE u (id serial PRIMARY KEY, t_id int REFERENCES t);
                INSERT INTO u (t_id) SELECT g FROM generate_series(1, 50) g;
                SELECT lo_from_bytea(0, '\\x68656c6c6f');
                """)
            let directory = try TestArchives.temporaryDirectory()
            _ = try TestArchives.backup(database, directory: directory)
            let name = try #require(try FileManager.default.contentsOfDirectory(atPath: directory).first { $0.hasSuffix(".sql.gz") })
            try body(Scene(database: database, directory: directory, intact: directory + "/" + name))
        }
    }

    /// The crafted file at `scene.crafted` is refused by `verify` (exit 2, named), and `list`,
    /// `prune --dry-run` and `check --max-backup-age` on the directory neither crash nor lose the
    /// intact archive. Returns verify's result for further checks.
    @discardableResult
    func expectRefusedEverywhere(_ scene: Scene, _ what: String, sourceLocation: SourceLocation = #_sourceLocation) throws -> CLI.Result {
        let verify = try CLI.run(["verify", scene.crafted])
        #expect(verify.status == 2, "\(what): verify \(verify)", sourceLocation: sourceLocation)
        #expect(verify.stderr.contains(scene.craftedName), "\(what): verify names the file: \(verify)", sourceLocation: sourceLocation)
        let list = try CLI.run(["list", "--dir", scene.directory])
        #expect(list.status < 128, "\(what): list \(list)", sourceLocation: sourceLocation)
        #expect(list.stdout.contains(scene.intactName) && list.stdout.contains(scene.craftedName), "\(what): list \(list)", sourceLocation: sourceLocation)
        let craftedLine = list.stdout.split(separator: "\n").first { $0.contains(scene.craftedName) } ?? ""
        #expect(!craftedLine.contains("verified"), "\(what): \(craftedLine)", sourceLocation: sourceLocation)
        let prune = try CLI.run(["prune", "--dir", scene.directory, "--keep-last", "1", "--dry-run"])
        #expect(prune.status < 128, "\(what): prune \(prune)", sourceLocation: sourceLocation)
        let check = try CLI.run(["check", "--database-url", scene.database.url, "--dir", scene.directory, "--max-backup-age", "26h"])
        #expect(check.status < 128, "\(what): check \(check)", sourceLocation: sourceLocation)
        #expect(FileManager.default.fileExists(atPath: scene.intact), sourceLocation: sourceLocation)
        return verify
    }

    /// Finding 2: numbers taken at their word in the manifest crashed every command on the
    /// directory (SIGILL on overflow, a negative count to an allocation); now the open refuses them.
    @Test(arguments: ["member-offset-near-max", "member-length-near-max", "negative-size", "size-300MB", "table-rows-near-max",
                      "table-bytes-negative", "chunk-out-of-range", "member-table-out-of-range", "sequence-value-sql", "members-overlap"])
    func manifestNumbersAreCheckedWhenTheArchiveIsOpened(_ mutation: String) throws {
        try withScene { scene in
            var archive = try CraftedArchive(path: scene.intact)
            let data = try #require(archive.firstIndex(of: "data"))
            switch mutation {
            case "member-offset-near-max": archive.members[data]["offset"] = Int.max - 10
            case "member-length-near-max": archive.members[data]["length"] = Int.max - 10
            case "negative-size": archive.members[data]["size"] = -5
            case "size-300MB": archive.members[data]["size"] = 300_000_000
            case "table-rows-near-max":
                archive.tables[0]["rows"] = Int.max - 1
                archive.tables[0]["bytes"] = Int.max
            case "table-bytes-negative": archive.tables[0]["bytes"] = -1
            case "chunk-out-of-range": archive.tables[0]["chunks"] = [9_999_999]
            case "member-table-out-of-range": archive.members[data]["table"] = 99
            case "sequence-value-sql":
                var sequences = try #require(archive.manifest["sequences"] as? [[String: Any]])
                sequences[0]["value"] = "1); DROP TABLE t; --"
                archive.manifest["sequences"] = sequences
            case "members-overlap": archive.members[data]["offset"] = (archive.members[data]["offset"] as! Int) - 1
            default: Issue.record("unknown mutation \(mutation)")
            }
            try archive.write(to: scene.crafted)
            let verify = try expectRefusedEverywhere(scene, mutation)
            #expect(verify.stderr.contains("the manifest does not describe the file"), "\(mutation): \(verify)")
        }
    }

    /// Finding 2 and item 10: a trailer number near Int.max crashed `list`, `prune`, `check` and
    /// `restore --latest` for the whole directory; a trailer number with a sign was accepted.
    @Test func trailerNumbersAreDigitsWithinTheFile() throws {
        try withScene { scene in
            let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: scene.intact)))
            let intact = try #require(ArchiveTrailer.find(in: bytes.suffix(ArchiveTrailer.memberLength)[...])).trailer
            func padded(_ value: Int, _ width: Int) -> String { String(repeating: "0", count: width - String(value).count) + String(value) }
            let length = padded(intact.manifestLength, 20)
            for (what, offset) in [("offset near Int.max", "09223372036854775800"), ("offset with a sign", "+" + padded(intact.manifestOffset, 19))] {
                try ArchiveCrafting.write(ArchiveCrafting.withTrailerNumbers(bytes, offset: offset, length: length), to: scene.crafted)
                try expectRefusedEverywhere(scene, what)
            }
        }
    }

    /// Item 9: layout violations that `verify` accepted, and after which the tool's restore and
    /// `gunzip | psql` built different databases.
    @Test(arguments: ["data-after-sequences", "second-header", "second-pre-data", "large-objects-relabelled-header", "post-data-not-last"])
    func theDocumentedMemberOrderIsEnforcedWhenOpened(_ mutation: String) throws {
        try withScene { scene in
            var archive = try CraftedArchive(path: scene.intact)
            let sequences = try #require(archive.firstIndex(of: "sequences"))
            switch mutation {
            case "data-after-sequences": archive.move(from: try #require(archive.firstIndex(of: "data")), to: sequences)
            case "second-header": try archive.insert(kind: "header", text: try archive.text(of: 0), at: 1)
            case "second-pre-data": try archive.insert(kind: "pre-data", text: Array("SELECT 1;\n".utf8), at: sequences)
            case "large-objects-relabelled-header": archive.members[try #require(archive.firstIndex(of: "large-objects"))]["kind"] = "header"
            case "post-data-not-last": archive.move(from: archive.members.count - 1, to: sequences)
            default: Issue.record("unknown mutation \(mutation)")
            }
            try archive.write(to: scene.crafted)
            let verify = try expectRefusedEverywhere(scene, mutation)
            #expect(verify.stderr.contains("may not follow") || verify.stderr.contains("not post-data"), "\(mutation): \(verify)")
        }
    }

    /// Item 9: a header that holds a statement and a sequences member that disagrees with the
    /// manifest's sequences pass every checksum; `verify` reads them (`ArchiveLayout.headerProblem`,
    /// `sequencesProblem`, which the loader calls too).
    @Test func verifyReadsTheHeaderAndSequencesMembers() throws {
        try withScene { scene in
            let cases: [(String, (inout CraftedArchive) throws -> Void, String)] = [
                ("header with a statement", { try $0.setText(of: 0, to: try $0.text(of: 0) + Array("DROP TABLE t;\n".utf8)) }, "is not a comment"),
                ("header with a carriage return", { try $0.setText(of: 0, to: try $0.text(of: 0) + Array("-- x\r\\! id\n".utf8)) }, "is not a comment"),
                ("sequences disagree", { archive in
                    let index = archive.firstIndex(of: "sequences")!
                    try archive.setText(of: index, to: try archive.text(of: index) + Array("SELECT pg_catalog.setval('public.u_id_seq', 999, true);\n".utf8))
                }, "the sequences member's statements differ"),
            ]
            for (what, mutate, message) in cases {
                var archive = try CraftedArchive(path: scene.intact)
                try mutate(&archive)
                try archive.write(to: scene.crafted)
                let verify = try CLI.run(["verify", scene.crafted])
                #expect(verify.status == 2 && verify.output.contains(message), "\(what): \(verify)")
                let list = try CLI.run(["list", "--dir", scene.directory])
                #expect(list.status == 0 && list.stdout.contains(scene.intactName), "\(what): \(list)")
            }
            // The intact archive passes the same checks.
            let intact = try CLI.run(["verify", scene.intact])
            #expect(intact.status == 0, "\(intact)")
        }
    }

    /// Item 10: a JSON syntax error says where it is; a wrong type names the field in plain text,
    /// without Swift's decoder internals.
    @Test func manifestErrorsSayWhereAndWhat() throws {
        try withScene { scene in
            let archive = try CraftedArchive(path: scene.intact)
            let json = try archive.manifestJSON()
            try archive.write(to: scene.crafted, manifestJSON: Array(json.dropLast(1)) + Array(",\"x\":}".utf8))
            let syntax = try expectRefusedEverywhere(scene, "syntax error")
            #expect(syntax.stderr.contains("invalid JSON: expected a value at byte \(json.count + 4) (line 1, column \(json.count + 5))"), "\(syntax)")

            // A version below 1 is damage (exit 2), not a newer format (exit 1).
            var version = archive
            version.manifest["format_version"] = 0
            try version.write(to: scene.crafted)
            let zero = try expectRefusedEverywhere(scene, "format_version 0")
            #expect(zero.stderr.contains("format_version is 0"), "\(zero)")

            var typed = archive
            typed.members[1]["size"] = "large"
            try typed.write(to: scene.crafted)
            let type = try expectRefusedEverywhere(scene, "wrong type")
            #expect(type.stderr.contains("field members[1].size: expected a whole number"), "\(type)")
            for word in ["CodingKeys", "DecodingError", "debugDescription", "Swift.", "codingPath"] {
                #expect(!type.output.contains(word), "\(type)")
            }
        }
    }

    /// Finding 4: memory set by what the file claims. A manifest member whose gzip size field claims
    /// 1 GiB (the issue's 446-byte archive), a manifest of a million members, an unknown array of
    /// 16M elements, a 64 MB `.minisig` and a 64 MB `.summary.json`: each refused (exit 2) in less
    /// than 128 MB, measured with wait4.
    @Test func memoryStaysBoundedWhateverTheFileClaims() throws {
        try withScene { scene in
            let limit = 128 << 20
            let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: scene.intact)))
            let trailer = try #require(ArchiveTrailer.find(in: bytes.suffix(ArchiveTrailer.memberLength)[...])).trailer
            // The manifest member's ISIZE (its last 4 bytes) set to 1 GiB.
            var claims = bytes
            let isize = trailer.manifestOffset + trailer.manifestLength - 4
            claims.replaceSubrange(isize..<(isize + 4), with: [0, 0, 0, 0x40])
            try ArchiveCrafting.write(claims, to: scene.crafted)
            for arguments in [["verify", scene.crafted], ["list", "--dir", scene.directory], ["prune", "--dir", scene.directory, "--keep-last", "1", "--dry-run"]] {
                let run = try ArchiveCrafting.runMeasured(arguments)
                #expect(run.signal == nil && run.maxRSS < limit, "manifest claims 1 GiB: \(arguments[0]): \(run)")
                if arguments[0] == "verify" { #expect(run.status == 2, "\(run)") }
            }

            // A million member entries, and an unknown array of 16M elements: small compressed,
            // refused before the text is decompressed or decoded.
            let archive = try CraftedArchive(path: scene.intact)
            let entry = try JSONSerialization.data(withJSONObject: archive.members[1], options: [.sortedKeys])
            let json = try archive.manifestJSON()
            func inserting(_ insert: [UInt8], after marker: String) throws -> [UInt8] {
                let marker = Array(marker.utf8)
                let at = try #require(json.indices.first { json[$0...].starts(with: marker) }) + marker.count
                return Array(json[..<at]) + insert + Array(json[at...])
            }
            let million = try inserting(Array(repeating: Array(entry) + [UInt8(ascii: ",")], count: 1_000_000).flatMap { $0 }, after: "\"members\":[")
            let unknown = try inserting(Array("\"junk\":[".utf8) + Array(repeating: Array("0,".utf8), count: 16 << 20).flatMap { $0 } + Array("0],".utf8), after: "{")
            for (what, text) in [("a million members", million), ("an unknown 16M-element array", unknown)] {
                try archive.write(to: scene.crafted, manifestJSON: text)
                let run = try ArchiveCrafting.runMeasured(["verify", scene.crafted])
                #expect(run.status == 2 && run.maxRSS < limit, "\(what): \(run)")
            }
            try FileManager.default.removeItem(atPath: scene.crafted)

            // Sidecars: a 64 MB .minisig (read with --verify-key) and a 64 MB .summary.json
            // beside an encrypted archive (read by list without the key).
            let keys = try TestKeys.make()
            let big = Data(repeating: UInt8(ascii: "A"), count: 64 << 20)
            try big.write(to: URL(fileURLWithPath: scene.intact + ".minisig"))
            let signed = try ArchiveCrafting.runMeasured(["verify", "--verify-key", keys.publicKey, scene.intact])
            #expect(signed.status == 2 && signed.maxRSS < limit && signed.output.contains("over the 4096 bytes"), "64 MB .minisig: \(signed)")
            try FileManager.default.removeItem(atPath: scene.intact + ".minisig")
            let encrypted = scene.directory + "/rack_gateway_backup_20991231T000000Z.sql.gz.age"
            try Data(bytes).write(to: URL(fileURLWithPath: encrypted))
            try big.write(to: URL(fileURLWithPath: encrypted + ".summary.json"))
            let list = try ArchiveCrafting.runMeasured(["list", "--dir", scene.directory])
            #expect(list.status == 0 && list.maxRSS < limit && list.output.contains("over the 1048576 bytes"), "64 MB .summary.json: \(list)")
        }
    }

    /// Findings 2 and 4: the unauthenticated `.summary.json` of an encrypted archive is checked
    /// like a manifest: negative or absurd rows and bytes are refused (list shows why) instead of
    /// crashing a sum or making the next backup's shrink check mark a good backup SUSPECT.
    @Test func summaryNumbersAreChecked() throws {
        try withScene { scene in
            let encrypted = scene.directory + "/rack_gateway_backup_20991231T000000Z.sql.gz.age"
            try Data(repeating: 0, count: 1000).write(to: URL(fileURLWithPath: encrypted))
            let reader = try ArchiveReader(path: scene.intact)
            for (rows, bytes) in [(-1, 10), (Int.max, Int.max), (1_000_000, 1_000_000_000)] {
                var summary = ArchiveSummary(manifest: reader.manifest, archive: URL(fileURLWithPath: encrypted).lastPathComponent)
                summary.tables[0].rows = rows
                summary.tables[0].bytes = bytes
                summary.tables.append(summary.tables[0])
                try Data(try summary.json()).write(to: URL(fileURLWithPath: encrypted + ".summary.json"))
                let list = try CLI.run(["list", "--dir", scene.directory])
                #expect(list.status == 0 && list.stdout.contains("cannot hold; the summary is damaged"), "rows \(rows), bytes \(bytes): \(list)")
                #expect(list.stdout.contains(scene.intactName), "\(list)")
            }
        }
    }

    /// Item 10: a `.minisig` with CRLF line ends (written on Windows, or by a tool that does) is
    /// read; its signature is checked as any other.
    @Test func aSignatureWithCRLFLineEndsVerifies() throws {
        try withScene { scene in
            let keys = try TestKeys.make()
            _ = try Shell.runChecked("minisign", ["-S", "-s", keys.signKey, "-m", scene.intact, "-t", "made by hand"])
            let signature = try String(contentsOfFile: scene.intact + ".minisig", encoding: .utf8)
            try signature.replacingOccurrences(of: "\n", with: "\r\n").write(toFile: scene.intact + ".minisig", atomically: true, encoding: .utf8)
            let verify = try CLI.run(["verify", "--verify-key", keys.publicKey, scene.intact])
            #expect(verify.status == 0, "\(verify)")
            // Still a real check: another file's signature fails.
            try ArchiveCrafting.write(try [UInt8](Data(contentsOf: URL(fileURLWithPath: scene.intact))) + [0], to: scene.crafted)
            try FileManager.default.copyItem(atPath: scene.intact + ".minisig", toPath: scene.crafted + ".minisig")
            let other = try CLI.run(["verify", "--verify-key", keys.publicKey, scene.crafted])
            #expect(other.status == 2, "\(other)")
        }
    }
}

/// Item 10: a source database with `default_transaction_read_only = on` (a property the restore
/// gives the new target) restored with exit 0 but stayed marked INCOMPLETE: the mark's removal ran
/// in a session the property had made read-only.
@Suite struct ReadOnlySourceRestoreTests {
    @Test func aReadOnlyDefaultDoesNotLeaveTheTargetMarked() throws {
        try TestDatabase.with { source in
            _ = try source.psql("""
                CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t SELECT generate_series(1, 10);
                ALTER DATABASE \(SQL.identifier(source.name)) SET default_transaction_read_only = on;
                """)
            let directory = try TestArchives.temporaryDirectory()
            _ = try TestArchives.backup(source, directory: directory)
            let file = try #require(try FileManager.default.contentsOfDirectory(atPath: directory).first { $0.hasSuffix(".sql.gz") })
            try TestDatabase.withUnused { target in
                let restore = try CLI.run(["restore", directory + "/" + file, "--target-url", target.url, "--verify"])
                #expect(restore.status == 0, "\(restore)")
                #expect(!restore.output.contains("could not be removed"), "\(restore)")
                let admin = try Connection(settings: try target.cluster.adminSettings)
                let row = try admin.query("""
                    SELECT coalesce(shobj_description(d.oid, 'pg_database'), '<none>'),
                           (SELECT array_to_string(setconfig, ',') FROM pg_db_role_setting s WHERE s.setdatabase = d.oid AND s.setrole = 0)
                    FROM pg_database d WHERE d.datname = \(SQL.literal(target.name))
                    """)
                #expect(row.rows.first?[0] == "<none>", "the target's comment: \(row.rows)")
                #expect(row.rows.first?[1] == "default_transaction_read_only=on", "the property is applied: \(row.rows)")
            }
        }
    }
}
