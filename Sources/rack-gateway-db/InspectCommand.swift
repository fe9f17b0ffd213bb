import ArgumentParser
import Foundation
import RackGatewayDB

/// `inspect ARCHIVE`: what an archive holds, from its manifest alone.
struct InspectCommand: ToolCommand {
    var outputOptions: OutputOptions { output }

    static let configuration = CommandConfiguration(
        commandName: "inspect",
        abstract: "Show what an archive holds without restoring it: time, source, versions, codec, encryption, and per table rows, bytes and fingerprint.",
        discussion: """
            Reads only the trailer and the manifest (ranged reads, also from S3 and of an encrypted archive, \
            which needs --identity), so it takes the same time for any size of archive. It checks the manifest's \
            structure, not the members: rack-gateway-db verify reads them all. "signed" means a .minisig lies \
            beside the archive; --verify-key checks it first, which reads the whole file.
            """)

    @Argument(help: "The archive: a path, s3://bucket/prefix/name, or a name as list prints it (the file in the current directory, else the archive in --dir).")
    var archive: String

    @OptionGroup var directoryOptions: DirectoryOptions
    @OptionGroup var keyOptions: ReadKeyOptions
    @OptionGroup var output: OutputOptions

    func validate() throws {
        try directoryOptions.checkApplies(archive: archive, latest: false)
    }

    func run(_ context: RunContext) throws {
        let keys = try keyOptions.keys()
        let reader = try directoryOptions.location(of: archive, keys: keys, clock: context.clock).reader()
        let inspection = ArchiveInspection(reader)
        if output.json {
            try Reporting.printJSON(inspection)
            return
        }
        // On a terminal, the table fits stdout's width (columns left out from the right, said below it).
        for line in Self.text(inspection, width: TerminalOutput.columns(of: 1)) { print(line) }
    }

    /// The report as lines: the archive's facts, then a table of its tables; within `width` when
    /// given, by leaving out the fingerprint, then the stored bytes (`--json` has them all).
    static func text(_ inspection: ArchiveInspection, width: Int? = nil) -> [String] {
        var lines: [String] = []
        func fact(_ label: String, _ value: String) { lines.append(label.padding(toLength: 15, withPad: " ", startingAt: 0) + value) }
        fact("archive", inspection.archive)
        fact("created", "\(inspection.createdAt) (completed \(inspection.completedAt))")
        fact("source", "database \(inspection.database)" + (inspection.sourceHost.map { " on \($0)" } ?? ""))
        fact("server", "PostgreSQL \(inspection.serverVersion), pg_dump \(inspection.pgDumpVersion), written by rack-gateway-db \(inspection.toolVersion)")
        fact("format", "version \(inspection.formatVersion)" + (inspection.plannerStatistics
            ? ", with the source's planner statistics (imported by a restore into PostgreSQL 18 or newer)" : ", without planner statistics")
            + (inspection.formatVersion > 1 ? "; releases that read only version 1 refuse it" : ""))
        fact("stored", "\(ProgressDisplay.bytes(inspection.fileBytes)), \(inspection.codec), \(inspection.encrypted ? "encrypted (age)" : "not encrypted"), \(inspection.signatureChecked ? "signed (signature checked with --verify-key)" : inspection.signed ? "signed (.minisig beside it, not checked: --verify-key checks it)" : "not signed")")
        if let suspect = inspection.suspect { fact("SUSPECT", suspect) }
        let migrations = inspection.schemaMigrations
        fact("migrations", migrations.isEmpty ? "none recorded" : "\(Plural.of(migrations.count, "applied migration")), the last \(migrations.max() ?? "")")
        fact("roles", inspection.roles.isEmpty ? "none" : inspection.roles.joined(separator: ", "))
        if let objects = inspection.largeObjects {
            fact("large objects", "\(Plural.of(objects.count, "object")), \(ProgressDisplay.bytes(objects.bytes)), fingerprint \(objects.fingerprint)")
        } else {
            fact("large objects", "none")
        }
        fact("sequences", "\(inspection.sequences)")
        fact("tables", "\(Plural.of(inspection.tables.count, "table")), \(Plural.of(inspection.totalRows, "row")), \(ProgressDisplay.bytes(inspection.totalCopyBytes)) of COPY text")
        guard !inspection.tables.isEmpty else { return lines }
        lines.append("")
        let header = ["TABLE", "ROWS", "COPY TEXT", "STORED", "FINGERPRINT"]
        let rows = inspection.tables.map { table in
            ["\(table.schema).\(table.name)" + (table.filter.map { $0.isEmpty ? " (extension table)" : " (extension table, \($0))" } ?? ""),
             "\(table.rows)", ProgressDisplay.bytes(table.copyBytes), ProgressDisplay.bytes(table.storedBytes), table.fingerprint]
        }
        let widths = header.indices.map { column in ([header] + rows).map { $0[column].count }.max() ?? 0 }
        var shown = header.count
        while let width, shown > 3, widths.prefix(shown).reduce(0, +) + 2 * (shown - 1) > width { shown -= 1 }
        for row in [header] + rows {
            lines.append(row.prefix(shown).enumerated().map { column, cell in
                // Names left, numbers right; the fingerprint last, unpadded.
                column == 0 ? cell.padding(toLength: widths[0], withPad: " ", startingAt: 0)
                    : column == header.count - 1 ? cell : String(repeating: " ", count: widths[column] - cell.count) + cell
            }.joined(separator: "  "))
        }
        if shown < header.count {
            lines.append("(\(header[shown...].joined(separator: " and ")) left out to fit the terminal; --json has every column)")
        }
        return lines
    }
}
