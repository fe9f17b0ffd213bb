import Foundation
import RGWPostgres
import Testing
import TestSupport
@testable import RackGatewayDB

/// `inspect` (what an archive holds, from its manifest) and `extract` (one table's rows as CSV, JSON
/// lines or COPY text), from local, S3 and encrypted archives, against what psql itself writes.
@Suite("inspect and extract")
struct InspectExtractTests {
    /// Values that CSV and JSON must take apart: NULLs, empty strings, quotes, commas, newlines,
    /// carriage returns, tabs, backslashes, `\.`, bytea, arrays, json and jsonb, special floats,
    /// a column name that needs quoting; enough rows for several data members.
    static let zooSQL = #"""
        CREATE TABLE public.zoo (id int PRIMARY KEY, t text, b bytea, a text[], n int[], j jsonb, js json, f float8,
                                 nu numeric, ok boolean, ts timestamptz, "Odd, ""Name""" text);
        INSERT INTO zoo VALUES
         (1, 'plain', '\x00ff', '{a,"b c",NULL,"d\"e"}', '{1,NULL,3}', '{"k": [1, "x\ny"]}', E'{"a":\n 1}', 1.5, 12345678901234567890.123, true, '2024-01-02 03:04:05+00', 'x'),
         (2, NULL, NULL, NULL, NULL, NULL, NULL, 'NaN', 'NaN', false, NULL, ''),
         (3, E'line1\nline2\r\ttab "q" , comma \\ back', '\x', '{}', '{{1,2},{3,4}}', 'null', '"s"', '-Infinity', -0.5, NULL, 'infinity', '\.'),
         (4, '', '\x5c2e', '{"",NULL}', '{}', '[]', '[]', 1e300, 0, true, '1999-12-31 23:59:59.123456+05', 'ünï');
        INSERT INTO zoo (id, t, b, a, j, f, ok) SELECT i, md5(i::text) || E'\n,"' || i, decode(md5(i::text), 'hex'), ARRAY[i::text, NULL],
                        jsonb_build_object('i', i), i / 7.0, i % 2 = 0 FROM generate_series(5, 30000) i;
        CREATE TABLE public.single (v text);
        INSERT INTO single VALUES ('\.'), (''), (NULL), ('a,b'), (E'q"\n');
        CREATE TABLE public.noise (id int, filler text);
        INSERT INTO noise SELECT i, md5(random()::text) || md5(random()::text) FROM generate_series(1, 40000) i;
        """#

    /// psql's own `\copy TABLE TO FILE` with `options`, under the archive's session settings.
    static func psqlCopy(_ database: TestDatabase, table: String, options: String, to file: String) throws {
        var environment = try database.settings.childEnvironment
        environment["PGOPTIONS"] = "-c TimeZone=UTC -c DateStyle=ISO -c IntervalStyle=postgres -c extra_float_digits=3 -c bytea_output=hex"
        _ = try Shell.runChecked("psql", ["-X", "-q", "-v", "ON_ERROR_STOP=1", "-c", "\\copy \(table) TO '\(file)' \(options)"], environment: environment)
    }

    /// A backup with small data members (64 KiB), so that tables have several and interleave; with
    /// the pg_dump of PostgreSQL `major`. One compressor: members are written in the order COPY read
    /// the rows (heap order, as psql's `\copy` reads them too); with more, a table's members may be
    /// written in another order, and `extract` writes the rows in the archive's order.
    static func backup(_ database: TestDatabase, to store: ArchiveStore, major: Int = 15, keys: BackupKeys = BackupKeys()) throws {
        var options = BackupOptions(store: store, jobs: 2, compressors: 1)
        options.keys = keys
        options.chunkSize = 64 << 10
        options.environment = ProcessInfo.processInfo.environment.merging(["RGW_PG_BIN_DIR": try TestCluster.binDirectory(major: major)]) { $1 }
        _ = try BackupRunner(settings: try database.settings, options: options, logger: .quiet).run()
    }

    static func bytes(_ path: String) throws -> [UInt8] { [UInt8](try Data(contentsOf: URL(fileURLWithPath: path))) }

    static func archive(in directory: String, suffix: String = ".sql.gz") throws -> String {
        directory + "/" + (try #require(try FileManager.default.contentsOfDirectory(atPath: directory).first { $0.hasSuffix(suffix) }))
    }

    @Test(arguments: [15, 18])
    func extractWritesCSVAsPsqlCopyDoesJSONLinesAndCOPYText(major: Int) throws {
        let cluster = major == 15 ? try TestCluster.shared() : try TestCluster.version(major)
        try TestDatabase.with(on: cluster) { source in
            _ = try source.psql(Self.zooSQL)
            let directory = try TestArchives.temporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: directory) }
            // Small chunks: the tables' members interleave and each table has several.
            try Self.backup(source, to: LocalStore(directory: directory), major: major)
            let file = try Self.archive(in: directory)
            let manifest = try ArchiveReader(path: file).manifest
            #expect(try #require(manifest.tables.first { $0.name == "zoo" }).chunks.count > 2, "zoo spans several members")

            // inspect on this server version: each table's rows as the server counts them, its version.
            let inspect = try CLI.run(["inspect", file, "--json"])
            #expect(inspect.status == 0, "\(inspect)")
            let shown = try #require(try JSONSerialization.jsonObject(with: Data(inspect.stdout.utf8)) as? [String: Any])
            let shownTables = try #require(shown["tables"] as? [[String: Any]])
            for table in ["zoo", "single"] {
                let counted = try source.psql("SELECT count(*) FROM public.\(table)").trimmingCharacters(in: .whitespacesAndNewlines)
                #expect(shownTables.first { $0["schema"] as? String == "public" && $0["name"] as? String == table }?["rows"] as? Int == Int(counted), "\(major): inspect's rows of \(table)")
            }
            #expect((shown["server_version"] as? String)?.hasPrefix("\(major).") == true, "\(major): inspect names the server version: \(shown["server_version"] ?? "none")")

            for table in ["zoo", "single"] {
                let expected = directory + "/\(table).psql.csv"
                try Self.psqlCopy(source, table: "public.\(table)", options: "CSV HEADER", to: expected)
                let written = directory + "/\(table).csv"
                let extract = try CLI.run(["extract", file, "--table", "public.\(table)", "-o", written])
                #expect(extract.status == 0, "\(extract)")
                #expect(try Self.bytes(written) == Self.bytes(expected), "\(major): CSV of \(table) differs from psql's \\copy ... CSV HEADER")
                #expect(try FileManager.default.attributesOfItem(atPath: written)[.posixPermissions] as? Int == 0o600)
                // The same on standard output.
                let piped = try CLI.run(["extract", file, "--table", "public.\(table)", "--format", "csv"])
                let expectedBytes = try Self.bytes(expected)
                #expect(piped.status == 0 && Array(piped.stdout.utf8) == expectedBytes, "\(major): csv on stdout of \(table)")

                // COPY text: what \copy TABLE TO FILE writes.
                let copyExpected = directory + "/\(table).psql.copy"
                try Self.psqlCopy(source, table: "public.\(table)", options: "", to: copyExpected)
                let copyWritten = directory + "/\(table).copy"
                #expect(try CLI.run(["extract", file, "--table", "public.\(table)", "--format", "copy", "-o", copyWritten]).status == 0)
                #expect(try Self.bytes(copyWritten) == Self.bytes(copyExpected), "\(major): COPY text of \(table)")
            }
            #expect(try FileManager.default.contentsOfDirectory(atPath: directory).filter { $0.hasSuffix(".partial") }.isEmpty)

            // JSON: one object per line, types mapped.
            let json = try CLI.run(["extract", file, "--table", "zoo", "--format", "json"])
            #expect(json.status == 0, "\(json.stderr)")
            let lines = json.stdout.split(separator: "\n", omittingEmptySubsequences: false).dropLast()
            #expect(lines.count == 30000)
            let objects = try lines.prefix(4).map { try #require(try JSONSerialization.jsonObject(with: Data($0.utf8), options: [.fragmentsAllowed]) as? [String: Any]) }
            #expect(objects[0]["id"] as? Int == 1 && objects[0]["ok"] as? Bool == true && objects[0]["f"] as? Double == 1.5)
            #expect(objects[0]["a"] as? [Any?] != nil && (objects[0]["a"] as? [Any])?.count == 4 && (objects[0]["a"] as? [Any])?[3] as? String == "d\"e")
            #expect(((objects[0]["j"] as? [String: Any])?["k"] as? [Any])?.last as? String == "x\ny")
            #expect((objects[0]["js"] as? [String: Any])?["a"] as? Int == 1, "json with a line break stays on its line")
            #expect(objects[0]["b"] as? String == "\\x00ff" && objects[0]["ts"] as? String == "2024-01-02T03:04:05+00:00")
            #expect(objects[1]["t"] is NSNull && objects[1]["f"] as? String == "NaN" && objects[1]["Odd, \"Name\""] as? String == "")
            #expect(objects[2]["t"] as? String == "line1\nline2\r\ttab \"q\" , comma \\ back" && (objects[2]["n"] as? [[Int]]) == [[1, 2], [3, 4]])
            #expect(objects[2]["j"] is NSNull, "jsonb 'null' is JSON's null")
            #expect(objects[2]["js"] as? String == "s" && objects[2]["f"] as? String == "-Infinity")
            #expect(objects[3]["f"] as? Double == 1e300 && objects[3]["Odd, \"Name\""] as? String == "ünï")
        }
    }

    /// The zoo tables backed up into a directory of their own: the database, the directory and the archive's path.
    static func withZooArchive(_ body: (TestDatabase, String, String) throws -> Void) throws {
        try TestDatabase.with { source in
            _ = try source.psql(Self.zooSQL)
            let directory = try TestArchives.temporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: directory) }
            try Self.backup(source, to: LocalStore(directory: directory))
            try body(source, directory, try Self.archive(in: directory))
        }
    }

    @Test func inspectShowsTheManifestAndAMissingTableNamesTheNearest() throws {
        try Self.withZooArchive { source, directory, file in
            let manifest = try ArchiveReader(path: file).manifest
            let result = try CLI.run(["inspect", file, "--json"])
            #expect(result.status == 0, "\(result)")
            let inspection = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
            #expect(inspection["database"] as? String == source.name && inspection["codec"] as? String == "gzip")
            #expect(inspection["encrypted"] as? Bool == false && inspection["signed"] as? Bool == false)
            #expect(inspection["server_version"] as? String == manifest.serverVersion && inspection["created_at"] as? String == manifest.createdAt)
            let tables = try #require(inspection["tables"] as? [[String: Any]])
            let zoo = try #require(tables.first { $0["name"] as? String == "zoo" })
            #expect(zoo["rows"] as? Int == 30000)
            #expect(zoo["fingerprint"] as? String == manifest.tables.first { $0.name == "zoo" }?.fingerprint)
            let stored = manifest.tables.first { $0.name == "zoo" }!.chunks.map { manifest.members[$0].length }.reduce(0, +)
            #expect(zoo["stored_bytes"] as? Int == stored && (zoo["copy_bytes"] as? Int ?? 0) > stored)
            let text = try CLI.run(["inspect", file])
            #expect(text.status == 0 && text.stdout.contains("public.zoo") && text.stdout.contains("30000") && text.stdout.contains("not encrypted"), "\(text)")

            let missing = try CLI.run(["extract", file, "--table", "public.zooo", "-o", directory + "/out.csv"])
            #expect(missing.status == 64 && missing.stderr.contains("holds no table public.zooo") && missing.stderr.contains("public.zoo"), "\(missing)")
            #expect(!FileManager.default.fileExists(atPath: directory + "/out.csv"))
            let json = try CLI.run(["extract", file, "--table", "zoo", "--json"])
            #expect(json.status == 64, "--json does not apply to extract: \(json)")
        }
    }

    @Test func aDamagedMemberFailsTheExtractAndLeavesNoFile() throws {
        try Self.withZooArchive { source, directory, file in
            let manifest = try ArchiveReader(path: file).manifest
            let zoo = try #require(manifest.tables.first { $0.name == "zoo" })
            // A byte in the middle of the table's last member: the rows before it are written first.
            let last = manifest.members[zoo.chunks.last!]
            try TestArchives.tamper(file, sidecarToo: true) { data in data[last.offset + last.length / 2] ^= 0x55 }
            let output = directory + "/zoo.csv"
            let extract = try CLI.run(["extract", file, "--table", "public.zoo", "-o", output])
            #expect(extract.status == 2 && extract.stderr.contains("member \(last.index)"), "\(extract)")
            #expect(!FileManager.default.fileExists(atPath: output) && !FileManager.default.fileExists(atPath: output + ".partial"))
            // The other tables' members are intact and still extract.
            #expect(try CLI.run(["extract", file, "--table", "public.single", "-o", directory + "/single.csv"]).status == 0)
        }
    }

    /// `-o` a named pipe: written into, never replaced (the old code put a regular file where the
    /// pipe, or a device such as /dev/full, was); `-o` a symbolic link: the link stays, the file it
    /// names gets the rows.
    @Test func extractIntoAPipeOrThroughALinkReplacesNeither() throws {
        try Self.withZooArchive { source, directory, file in
            let expected = try CLI.run(["extract", file, "--table", "public.single"])
            #expect(expected.status == 0 && !expected.stdout.isEmpty, "\(expected)")

            let pipe = directory + "/rows.fifo"
            #expect(mkfifo(pipe, 0o600) == 0)
            let reader = try Shell.run("/bin/sh", ["-c", #"timeout 20 cat "$1" > "$1.read" & "$0" extract "$2" --table public.single -o "$1"; status=$?; wait; exit $status"#,
                                                   CLI.executable, pipe, file])
            #expect(reader.status == 0, "\(reader.stderr)")
            var info = stat()
            #expect(lstat(pipe, &info) == 0 && info.st_mode & S_IFMT == S_IFIFO, "the named pipe is still one")
            #expect(try String(contentsOfFile: pipe + ".read", encoding: .utf8) == expected.stdout)

            let target = directory + "/real.csv", link = directory + "/link.csv"
            try "old\n".write(toFile: target, atomically: false, encoding: .utf8)
            try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: target)
            let viaLink = try CLI.run(["extract", file, "--table", "public.single", "-o", link])
            #expect(viaLink.status == 0, "\(viaLink)")
            #expect(lstat(link, &info) == 0 && info.st_mode & S_IFMT == S_IFLNK, "the link is still a link")
            #expect(try String(contentsOfFile: target, encoding: .utf8) == expected.stdout)
        }
    }

    @Test func ctrlCDuringAnExtractLeavesNeitherTheFileNorItsPartial() throws {
        try TestDatabase.with { source in
            // About 60 MB of COPY text: JSON lines of it take seconds, time to be stopped mid-way.
            _ = try source.psql("CREATE TABLE public.big (id int, a text, b text); INSERT INTO big SELECT i, repeat(md5(i::text), 6), repeat(md5((-i)::text), 6) FROM generate_series(1, 150000) i")
            let directory = try TestArchives.temporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: directory) }
            try Self.backup(source, to: LocalStore(directory: directory))
            let file = try Self.archive(in: directory)
            let output = directory + "/big.jsonl"
            let run = try RunningCLI(["extract", file, "--table", "public.big", "--format", "json", "-o", output])
            let deadline = Date().addingTimeInterval(60)
            while !FileManager.default.fileExists(atPath: output + ".partial") && Date() < deadline { Thread.sleep(forTimeInterval: 0.01) }
            #expect(FileManager.default.fileExists(atPath: output + ".partial"), "the extract writes FILE.partial while it runs")
            run.signal(SIGINT)
            let result = run.finish()
            #expect(result.status == 130, "\(result)")
            #expect(!FileManager.default.fileExists(atPath: output) && !FileManager.default.fileExists(atPath: output + ".partial"), "\(result)")
        }
    }

    @Test func fromS3AndEncryptedOnlyTheTablesMembersAreFetched() throws {
        let keys = try TestKeys.make()
        defer { try? FileManager.default.removeItem(atPath: keys.directory) }
        let moto = try MotoServer.shared()
        let bucket = try moto.freshBucket().bucket
        let proxy = try FaultProxy(upstream: moto.endpoint)
        try TestDatabase.with { source in
            _ = try source.psql(Self.zooSQL)
            let local = try TestArchives.temporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: local) }
            let expected = local + "/single.psql.csv"
            try Self.psqlCopy(source, table: "public.single", options: "CSV HEADER", to: expected)
            let environment = MotoServer.awsEnvironment.merging(["AWS_ENDPOINT_URL_S3": proxy.endpoint]) { $1 }
            var requests: [String: [Bool: Int]] = [:]
            for encrypted in [false, true] {
                let prefix = encrypted ? "age" : "plain"
                let store = S3Store(client: proxy.client(bucket: bucket), prefix: prefix)
                var backupKeys = BackupKeys()
                if encrypted { backupKeys.recipients = try KeyFiles.recipients([keys.recipient], file: nil) }
                try Self.backup(source, to: store, keys: backupKeys)
                let name = try #require(try store.list().first { $0.name.hasSuffix(encrypted ? ".age" : ".sql.gz") }?.name)
                let reader = try ArchiveReader(ArchiveLocation(store: store, name: name, keys: ArchiveKeys(identities: try KeyFiles.identities(keys.identity))))
                let url = "s3://\(bucket)/\(prefix)/\(name)"
                let identity = encrypted ? ["--identity", keys.identity] : []
                func fetched(_ arguments: [String]) throws -> (CLI.Result, Int) {
                    try proxy.clearLog()
                    let result = try CLI.run(arguments, environment: environment)
                    let gets = try proxy.requests().filter { $0.method == "GET" && $0.path == "/\(bucket)/\(prefix)/\(name)" }
                    requests[arguments[0], default: [:]][encrypted] = gets.count
                    return (result, gets.map(\.bytes).reduce(0, +))
                }
                // Encrypted: the age header, and whole 64 KiB chunks around the last chunk (opened first),
                // the trailer and the manifest.
                let opening = ArchiveTrailer.memberLength + reader.trailer.manifestLength + (encrypted ? 4 * 65_552 + 4096 : 0)
                let (inspect, inspectBytes) = try fetched(["inspect", url, "--json"] + identity)
                #expect(inspect.status == 0 && inspect.stdout.contains("\"encrypted\" : \(encrypted)"), "\(inspect)")
                #expect(inspectBytes <= opening, "inspect fetched \(inspectBytes) bytes; the trailer and manifest are \(opening)")

                let single = try #require(reader.manifest.tables.first { $0.name == "single" })
                let members = single.chunks.map { reader.manifest.members[$0].length }.reduce(0, +)
                // Each ranged read of an encrypted archive starts and ends in a 64 KiB chunk.
                let allowed = opening + members + single.chunks.count * (encrypted ? 2 * 65_552 : 0)
                let output = local + "/\(prefix).csv"
                let (extract, extractBytes) = try fetched(["extract", url, "--table", "public.single", "-o", output] + identity)
                #expect(extract.status == 0, "\(extract)")
                #expect(try Self.bytes(output) == Self.bytes(expected))
                #expect(extractBytes <= allowed && extractBytes * 4 < reader.storedSize,
                        "extract fetched \(extractBytes) bytes of an archive of \(reader.storedSize) (the table's members: \(members), at most \(allowed))")
                print("fetched from S3 (\(prefix), archive \(reader.storedSize) bytes): inspect \(inspectBytes), extract of public.single \(extractBytes)")
            }
            // Each request is a round trip: an encrypted archive costs one more GET than a plain one
            // (its header); its trailer and manifest come with the last chunks, opened first (it
            // took four more before).
            for (command, counts) in requests {
                #expect(try #require(counts[true]) <= (try #require(counts[false])) + 1, "\(command): GETs of the archive, plain and encrypted: \(counts)")
            }
        }
    }

    /// Ctrl-C or SIGTERM while extract writes to a slow pipe (a terminal, `| less`): the old code
    /// finished the member it was writing (the whole table here, one member), then said the signal
    /// came "after the work was done". Now it stops within a second, exits 130/143 and says how
    /// many rows went out.
    @Test(arguments: [SIGINT, SIGTERM])
    func aSignalStopsAnExtractToAPipePromptly(signal number: Int32) throws {
        try TestDatabase.with { source in
            _ = try source.psql("CREATE TABLE public.big (id int, a text); INSERT INTO big SELECT i, repeat(md5(i::text), 4) FROM generate_series(1, 150000) i")
            let directory = try TestArchives.temporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: directory) }
            var options = BackupOptions(store: LocalStore(directory: directory), jobs: 1, compressors: 1)
            options.chunkSize = 64 << 20
            _ = try BackupRunner(settings: try source.settings, options: options, logger: .quiet).run()
            let file = try Self.archive(in: directory)
            #expect(try ArchiveReader(path: file).manifest.tables.first { $0.name == "big" }?.chunks.count == 1)

            let process = Process()
            process.executableURL = URL(fileURLWithPath: CLI.executable)
            process.arguments = ["extract", file, "--table", "public.big", "--format", "json"]
            process.environment = CLI.baseEnvironment()
            let out = Pipe(), err = Pipe()
            process.standardOutput = out
            process.standardError = err
            process.standardInput = FileHandle(forReadingAtPath: "/dev/null")
            try process.run()
            // A slow reader: 64 KiB every 50 ms, about 1.3 MB/s of some 20 MB of JSON.
            var received = 0
            var signalled: Date?
            while process.isRunning || received == 0 {
                let piece = out.fileHandleForReading.readData(ofLength: 64 << 10)
                if piece.isEmpty { break }
                received += piece.count
                if signalled == nil && received >= 512 << 10 {
                    kill(process.processIdentifier, number)
                    signalled = Date()
                }
                if let signalled, Date().timeIntervalSince(signalled) > 30 { break }
                Thread.sleep(forTimeInterval: 0.05)
            }
            process.waitUntilExit()
            let took = Date().timeIntervalSince(try #require(signalled))
            let stderr = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            #expect(process.terminationStatus == 128 + number, "\(stderr)")
            // The old code was ended by the fallback, 2 s after the signal (SignalHandling.idleGraceSeconds).
            #expect(took < 1.5, "the extract took \(took) s to stop")
            #expect(received < 10 << 20, "\(received) bytes came out after the signal")
            #expect(!stderr.contains("after the work was done"), "\(stderr)")
            let rows = try #require(stderr.firstMatch(of: /extract of public\.big: (\d+) of its 150000 rows \(.*\) went to standard output, which is incomplete/), "\(stderr)")
            #expect(Int(rows.1)! > 0 && Int(rows.1)! < 150000, "\(stderr)")
        }
    }

    /// `extract | head`: the reader closing the pipe is no error (the old code exited 1 with
    /// "Broken pipe"): nothing on stderr, status 141 as cat's under `set -o pipefail`.
    @Test func aReaderThatClosesThePipeEndsTheExtractQuietly() throws {
        try TestDatabase.with { source in
            _ = try source.psql("CREATE TABLE public.big (id int, a text); INSERT INTO big SELECT i, repeat(md5(i::text), 4) FROM generate_series(1, 50000) i")
            let directory = try TestArchives.temporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: directory) }
            try Self.backup(source, to: LocalStore(directory: directory))
            let file = try Self.archive(in: directory)
            for format in ["csv", "json", "copy"] {
                let piped = try Shell.run("/bin/bash", ["-c", #"set -o pipefail; "$0" extract "$1" --table public.big --format "$2" | head -n 3"#, CLI.executable, file, format],
                                          environment: CLI.baseEnvironment())
                #expect(piped.status == 141, "\(format): \(piped.status) \(piped.stderr)")
                #expect(piped.stderr.isEmpty, "\(format): \(piped.stderr)")
                #expect(piped.stdout.split(separator: "\n").count == 3)
            }
        }
    }

    /// Options that the old code took silently: a second --table (it kept the last) is a usage
    /// error naming both; `--format jsonl`, which the README's `-o users.jsonl` suggests, is json.
    @Test func aSecondTableIsRefusedAndJsonlIsJSON() throws {
        try Self.withZooArchive { source, directory, file in
            let twice = try CLI.run(["extract", file, "--table", "public.zoo", "--table", "public.single", "-o", directory + "/two.csv"])
            #expect(twice.status == 64 && twice.stderr.contains("public.zoo") && twice.stderr.contains("public.single") && twice.stderr.contains("once per table"), "\(twice)")
            #expect(!FileManager.default.fileExists(atPath: directory + "/two.csv"))
            let json = try CLI.run(["extract", file, "--table", "public.single", "--format", "json"])
            let jsonl = try CLI.run(["extract", file, "--table", "public.single", "--format", "jsonl"])
            #expect(json.status == 0 && jsonl.status == 0 && jsonl.stdout == json.stdout && !json.stdout.isEmpty, "\(jsonl)")
        }
    }

    /// A table without rows (a header alone in CSV, nothing in the others) and a name with a dot,
    /// quotes and capitals: as inspect lists it, quoted as psql shows it, bare, and with the schema
    /// plain and the name quoted (the old code refused the quoted forms).
    @Test func anEmptyTableAndOneWhoseNameNeedsQuotes() throws {
        try TestDatabase.with { source in
            _ = try source.psql(#"""
                CREATE TABLE public.empty (id int, "Note" text);
                CREATE SCHEMA "My.Schema";
                CREATE TABLE "My.Schema"."Odd ""T"".x" (id int, "V" text);
                INSERT INTO "My.Schema"."Odd ""T"".x" VALUES (1, 'a'), (2, E'b\nc');
                CREATE TABLE public."Mixed" (id int); INSERT INTO public."Mixed" VALUES (7);
                """#)
            let directory = try TestArchives.temporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: directory) }
            try Self.backup(source, to: LocalStore(directory: directory))
            let file = try Self.archive(in: directory)
            for (format, expected) in [("csv", "id,Note\n"), ("json", ""), ("copy", "")] {
                let empty = try CLI.run(["extract", file, "--table", "public.empty", "--format", format, "-o", directory + "/empty." + format])
                #expect(empty.status == 0 && empty.stderr.contains("0 rows of public.empty written to"), "\(empty)")
                #expect(try String(contentsOfFile: directory + "/empty." + format, encoding: .utf8) == expected, "\(format)")
            }
            let expected = "id,V\n1,a\n2,\"b\nc\"\n"
            for name in [#"My.Schema.Odd "T".x"#, #""My.Schema"."Odd ""T"".x""#, #"Odd "T".x"#, #""Odd ""T"".x""#] {
                let odd = try CLI.run(["extract", file, "--table", name])
                #expect(odd.status == 0 && odd.stdout == expected, "\(name): \(odd)")
            }
            for name in ["public.Mixed", #"public."Mixed""#, #""public"."Mixed""#, "Mixed"] {
                let mixed = try CLI.run(["extract", file, "--table", name])
                #expect(mixed.status == 0 && mixed.stdout == "id\n7\n", "\(name): \(mixed)")
            }
            let lower = try CLI.run(["extract", file, "--table", "public.mixed"])
            #expect(lower.status == 64 && lower.stderr.contains("public.Mixed"), "names are case-sensitive, the nearest is offered: \(lower)")
        }
    }

    /// Every type `--format json` maps, against PostgreSQL's own `row_to_json` of the same rows
    /// (TimeZone UTC, IntervalStyle iso_8601): ISO 8601 timestamps and durations, numbers with
    /// all their digits, booleans, arrays, json and jsonb embedded, bytea as `\x` hex. The old code
    /// wrote timestamps and intervals in PostgreSQL's text form.
    @Test(arguments: [
        ("timestamptz", ["'2024-01-02 03:04:05.123+02'", "'0044-03-15 10:00+00 BC'", "'infinity'", "'-infinity'", "'1900-01-01 00:00:00+00'", "'2024-06-30 23:59:59.999999+00'"]),
        ("timestamp(3)", ["'2024-01-02 03:04:05.5'", "'0044-03-15 10:00 BC'", "'-infinity'", "'12345-01-01 00:00'"]),
        ("date", ["'2024-01-02'", "'0044-03-15 BC'", "'infinity'", "'12345-01-01'"]),
        ("time", ["'03:04:05'", "'24:00'", "'23:59:59.999999'"]),
        ("timetz", ["'03:04:05+05:30'", "'00:00-03'", "'12:00+14'"]),
        ("interval", ["'1 year 2 mons 3 days 04:05:06.7'", "'-1 days +02:00:00'", "'-1 year -2 mons'", "'1 day -00:00:01'", "'0'", "'-00:00:00.000001'",
                      "'123:00:00'", "'1 mon -1 sec'", "'7 days'", "'-3 days -04:00:00'", "'178000000 years'"]),
        ("interval[]", [#"'{"1 day",NULL,"-00:00:01"}'"#]),
        ("numeric", ["'12345678901234567890.123456789'", "'NaN'", "'1e-20'", "'-0.5'", "'0'"]),
        ("bigint", ["9007199254740993", "-9223372036854775808", "9223372036854775807"]),
        ("boolean", ["true", "false"]),
        ("timestamptz[]", [#"'{"2024-01-02 03:04:05+00",NULL}'"#, "'{}'", #"'{{"2024-01-02","2024-01-03"},{"2024-01-04","2024-01-05"}}'"#]),
        ("text[]", [#"'{a,"b c",NULL,"d\"e"}'"#]),
        ("jsonb", [#"'{"k": [1, "x"]}'"#, "'null'", #"'"s"'"#, "'[]'", "'12.50'"]),
        ("json", [#"'{"a":  1}'"#, "'[1, 2]'"]),
        ("bytea", [#"'\x00ff'"#, #"'\x'"#]),
        ("tstzrange", ["'[2024-01-02 03:04:05+00,infinity)'", "'empty'"]),
        ("uuid", ["'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'"]),
    ] as [(String, [String])], [15, 18])
    func jsonMatchesPostgresRowToJSON(type: (String, [String]), major: Int) throws {
        let (type, values) = type
        let cluster = major == 15 ? try TestCluster.shared() : try TestCluster.version(major)
        try TestDatabase.with(on: cluster) { source in
            _ = try source.psql("CREATE TABLE public.typed (id serial, v \(type)); INSERT INTO public.typed (v) VALUES (NULL), " + values.map { "(\($0))" }.joined(separator: ", "))
            let directory = try TestArchives.temporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: directory) }
            try Self.backup(source, to: LocalStore(directory: directory), major: major)
            let file = try Self.archive(in: directory)
            let extract = try CLI.run(["extract", file, "--table", "public.typed", "--format", "json"])
            #expect(extract.status == 0, "\(extract)")
            var environment = try source.settings.childEnvironment
            environment["PGOPTIONS"] = "-c TimeZone=UTC -c IntervalStyle=iso_8601"
            let expected = try Shell.runChecked("psql", ["-X", "-A", "-t", "-c", "SELECT row_to_json(r) FROM public.typed r ORDER BY id"], environment: environment)
            #expect(extract.stdout == expected, "\(type) on \(major): extract wrote\n\(extract.stdout)PostgreSQL's row_to_json is\n\(expected)")
            for line in extract.stdout.split(separator: "\n") {
                #expect((try? JSONSerialization.jsonObject(with: Data(line.utf8))) != nil, "\(type): not JSON: \(line)")
            }
        }
    }
}
