import Foundation
import Testing
import TestSupport
@testable import RackGatewayDB

/// The archive header's stock-tools recipe for one table (issue 31, item 7): the quoted COPY line
/// and the awk command, run exactly as a real archive's header prints them, with gunzip, awk and
/// psql only; and an archive whose header predates the recipe still verifies and restores.
@Suite("one table with stock tools")
struct OneTableRecipeTests {
    /// A table whose name needs the shell's, the regular expression's and SQL's quoting (a `'`, a
    /// `"`, a `.`, a `$`), one whose name starts like it, and values with quotes, line breaks, tabs
    /// and backslashes; enough rows for several data members.
    static let sql = #"""
        CREATE TABLE public."it's ""odd"".x$" (id int PRIMARY KEY, v text, b bytea, j jsonb);
        INSERT INTO public."it's ""odd"".x$" SELECT i, E'q"uote\nline\\back\tslash ' || md5(i::text) || E'\r\\.', decode(md5(i::text), 'hex'),
                                             jsonb_build_object('k', E'a\nb"' || i) FROM generate_series(1, 3000) i;
        INSERT INTO public."it's ""odd"".x$" VALUES (0, E'\\.', '\x', 'null'), (-1, NULL, NULL, NULL), (-2, '', '\x5c2e', '"\\"');
        CREATE TABLE public."it's ""odd"".x$y" (id int);
        INSERT INTO public."it's ""odd"".x$y" SELECT generate_series(1, 500);
        CREATE TABLE public.api_tokens (id int, token text);
        INSERT INTO public.api_tokens SELECT i, md5(i::text) FROM generate_series(1, 50) i;
        """#

    static let table = #"public."it's ""odd"".x$""#

    @Test(arguments: [15, 18])
    func theHeadersRecipeCutsOutEveryBlockOfOneTable(major: Int) throws {
        let cluster = major == 15 ? try TestCluster.shared() : try TestCluster.version(major)
        try TestDatabase.with(on: cluster) { source in
            _ = try source.psql(Self.sql)
            let directory = try TestArchives.temporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: directory) }
            try InspectExtractTests.backup(source, to: LocalStore(directory: directory), major: major)
            let file = try InspectExtractTests.archive(in: directory)
            let manifest = try ArchiveReader(path: file).manifest
            let odd = try #require(manifest.tables.first { $0.name == "it's \"odd\".x$" })
            #expect(odd.chunks.count > 2, "the table spans several members")

            // The header as the archive holds it: the COPY line and, below it, the command.
            let header = String(decoding: try CraftedArchive(path: file).text(of: 0), as: UTF8.self)
            let lines = header.split(separator: "\n").map(String.init)
            let copyLine = #"COPY "public"."it's ""odd"".x$" ("id", "v", "b", "j") FROM stdin;"#
            let at = try #require(lines.firstIndex(of: "--   " + copyLine), "\(header)")
            let printed = lines[at + 1]
            #expect(printed.hasPrefix("--     gunzip -c \((file as NSString).lastPathComponent) | awk '"), "\(printed)")
            #expect(header.contains("so\n-- awk '/^COPY public\\.api_tokens /' matches nothing"), "\(header)")
            let command = String(printed.dropFirst("--     ".count))

            // Run as printed, in the archive's directory.
            let cut = directory + "/cut.sql"
            let ran = try Shell.run("/bin/sh", ["-c", "cd \"$1\" && \(command) > cut.sql", "sh", directory])
            #expect(ran.status == 0, "\(command): \(ran.stderr)")
            let script = try String(contentsOfFile: cut, encoding: .utf8)
            let scriptLines = script.split(separator: "\n", omittingEmptySubsequences: false).dropLast()
            #expect(scriptLines.filter { $0 == copyLine }.count == odd.chunks.count, "one COPY line per member")
            #expect(scriptLines.filter { $0 == "\\." }.count == odd.chunks.count, "one \\. per member")
            #expect(!scriptLines.contains { $0.hasPrefix("COPY ") && $0 != copyLine }, "no other table's block (not the one named like it)")

            // Its rows are extract --format copy's, byte for byte.
            let extract = try CLI.run(["extract", file, "--table", Self.table, "--format", "copy"])
            #expect(extract.status == 0, "\(extract)")
            let rows = scriptLines.filter { $0 != copyLine && $0 != "\\." }.map { $0 + "\n" }.joined()
            #expect(rows == extract.stdout, "the recipe's rows differ from extract --format copy")
            #expect(extract.stdout.split(separator: "\n").count == odd.rows)

            // psql loads the script into a table of that name; its rows, read back, are the same.
            try TestDatabase.with(on: cluster) { target in
                _ = try target.psql(#"CREATE TABLE public."it's ""odd"".x$" (id int PRIMARY KEY, v text, b bytea, j jsonb)"#)
                _ = try Shell.runChecked("psql", ["-X", "-q", "-v", "ON_ERROR_STOP=1", "-f", cut, target.url])
                let back = directory + "/back.copy"
                try InspectExtractTests.psqlCopy(target, table: #"public."it's ""odd"".x$""#, options: "", to: back)
                #expect(try String(contentsOfFile: back, encoding: .utf8) == extract.stdout, "the rows psql loaded differ from extract --format copy")
            }

            // The habit the header warns about: the unquoted name matches nothing.
            let habit = try Shell.run("/bin/sh", ["-c", #"gunzip -c "$1" | awk '/^COPY public\.api_tokens /' | wc -l"#, "sh", file])
            #expect(habit.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "0")
            let tokens = try #require(lines.firstIndex { $0.hasPrefix(#"--   COPY "public"."api_tokens" "#) })
            let tokensCut = try Shell.run("/bin/sh", ["-c", "cd \"$1\" && \(lines[tokens + 1].dropFirst("--     ".count)) | grep -c -v -e '^COPY ' -e '^\\\\\\.$'", "sh", directory])
            #expect(tokensCut.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "50", "\(tokensCut)")
        }
    }

    /// The header is comments only and nothing reads the recipe: an archive written before it (the
    /// same archive with the recipe's lines taken out of its header) verifies and restores.
    @Test func anArchiveWithoutTheRecipeVerifiesAndRestores() throws {
        try TestDatabase.with { source in
            _ = try source.psql(Self.sql)
            let directory = try TestArchives.temporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: directory) }
            try InspectExtractTests.backup(source, to: LocalStore(directory: directory))
            let file = try InspectExtractTests.archive(in: directory)
            var archive = try CraftedArchive(path: file)
            let header = String(decoding: try archive.text(of: 0), as: UTF8.self)
            let old = try #require(header.range(of: "-- One table's rows with stock tools")).lowerBound
            try archive.setText(of: 0, to: Array(header[..<old].utf8))
            let older = directory + "/older/" + (file as NSString).lastPathComponent
            try FileManager.default.createDirectory(atPath: directory + "/older", withIntermediateDirectories: true)
            try archive.write(to: older)
            #expect(try !String(decoding: CraftedArchive(path: older).text(of: 0), as: UTF8.self).contains("awk"))

            let verify = try CLI.run(["verify", older])
            #expect(verify.status == 0, "\(verify)")
            try TestDatabase.withUnused { target in
                let restore = try CLI.run(["restore", older, "--target-url", target.url, "--verify"])
                #expect(restore.status == 0, "\(restore)")
            }
            let extract = try CLI.run(["extract", older, "--table", "public.api_tokens"])
            #expect(extract.status == 0 && extract.stdout.split(separator: "\n").count == 51, "\(extract)")
        }
    }
}
