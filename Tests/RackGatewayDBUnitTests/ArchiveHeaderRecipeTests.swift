import Foundation
import Testing
@testable import RackGatewayDB

/// The header's one-table recipe without a server: the awk command of names with every character a
/// regular expression, awk or the shell treats specially, run by `sh` and awk on blocks of those
/// tables; the header stays comment lines only (a name with a line break is left out) and lists at
/// most `recipeTables` tables.
@Suite("archive header: one-table recipe")
struct ArchiveHeaderRecipeTests {
    static let names = ["plain", "a.b", "x$", "[set]", "(g)|h", "star*+?", "{1,2}", "slash/back\\", "it's", "q\"uote", "^caret", "ünï", "a b"]

    static func header(tables: [(schema: String, name: String, columns: [String])]) -> ArchiveHeader {
        ArchiveHeader(toolVersion: "0.1.0", createdAt: "2026-12-04T00:00:00Z", fileName: "rack_gateway_backup_20261204T000000Z.sql.gz",
                      database: "db", serverVersion: "15.1", serverMajor: 15, pgDumpVersion: "15.1", pgDumpMajor: 15, snapshot: "s",
                      roles: [], properties: DatabaseProperties(settings: [], comment: nil, grants: nil), tables: tables)
    }

    @Test func eachTablesCommandPrintsAllItsBlocksAndNoOthers() throws {
        let tables = Self.names.map { (schema: "public", name: $0, columns: ["id"]) } + [(schema: "public", name: "a.bc", columns: ["id"])]
        // Two blocks per table, interleaved, as an archive's data members are.
        var script = "SET x = 1;\n"
        for round in 0..<2 {
            for table in tables {
                script += DataChunk.copyHeader(schema: table.schema, name: table.name, columns: table.columns) + "\(round)\t\(table.name.count)\n\\.\n"
            }
        }
        let directory = NSTemporaryDirectory() + "rgw-recipe-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        // The header's command reads the archive with gunzip: a gzip file of the script.
        let gzip = Process()
        gzip.executableURL = URL(fileURLWithPath: "/bin/sh")
        gzip.arguments = ["-c", "gzip -c > \"$1\"", "sh", directory + "/rack_gateway_backup_20261204T000000Z.sql.gz"]
        let input = Pipe()
        gzip.standardInput = input
        try gzip.run()
        input.fileHandleForWriting.write(Data(script.utf8))
        try input.fileHandleForWriting.close()
        gzip.waitUntilExit()

        let text = Self.header(tables: tables).text
        #expect(ArchiveLayout.headerProblem(text) == nil, "\(text)")
        let lines = text.split(separator: "\n").map(String.init)
        for table in tables {
            let copyLine = DataChunk.copyHeader(schema: table.schema, name: table.name, columns: table.columns).dropLast()
            let at = try #require(lines.firstIndex(of: "--   " + copyLine), "\(table.name)")
            let command = String(lines[at + 1].dropFirst("--     ".count))
            let run = Process()
            run.executableURL = URL(fileURLWithPath: "/bin/sh")
            run.arguments = ["-c", "cd \"$1\" && " + command, "sh", directory]
            let output = Pipe()
            run.standardOutput = output
            try run.run()
            let printed = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            run.waitUntilExit()
            let expected = (0..<2).map { "\(copyLine)\n\($0)\t\(table.name.count)\n\\.\n" }.joined()
            #expect(run.terminationStatus == 0 && printed == expected, "\(table.name): \(command) printed\n\(printed)")
        }
    }

    @Test func aNameWithALineBreakIsLeftOutAndTheListStopsAt200() {
        let broken = Self.header(tables: [(schema: "public", name: "line\nbreak", columns: ["id"]), (schema: "public", name: "cr\rname", columns: ["id"]),
                                          (schema: "public", name: "fine", columns: ["id"])]).text
        #expect(ArchiveLayout.headerProblem(broken) == nil, "\(broken)")
        #expect(broken.contains(#"COPY "public"."fine""#) && !broken.contains("\"line") && !broken.contains("\"cr"))
        let many = Self.header(tables: (0..<205).map { (schema: "public", name: "t\($0)", columns: ["id"]) }).text
        #expect(ArchiveLayout.headerProblem(many) == nil)
        #expect(many.components(separatedBy: "\n--   COPY ").count - 1 == ArchiveHeader.recipeTables)
        #expect(many.contains("-- (and 5 more tables:"), "\(many.suffix(300))")
        #expect(!Self.header(tables: []).text.contains("One table's rows"), "no tables, no recipe")
    }
}
