import ArgumentParser
import Foundation
import RackGatewayDB

extension ExtractFormat: ExpressibleByArgument {}

/// `extract ARCHIVE --table SCHEMA.NAME`: one table's rows out of an archive, without a database.
struct ExtractCommand: ToolCommand {
    var outputOptions: OutputOptions { (try? OutputOptions.parse([])) ?? OutputOptions() }

    static let configuration = CommandConfiguration(
        commandName: "extract",
        abstract: "Write one table's rows from an archive as CSV, JSON lines or COPY text, without a database.",
        discussion: """
            Reads only the archive's manifest and that table's members (ranged reads, also from S3 and of an \
            encrypted archive, which needs --identity), one member in memory at a time. csv is what psql's \
            \\copy TABLE TO FILE CSV HEADER writes; json is one object per line (numbers, booleans, json and \
            arrays as JSON, everything else as its text); copy is COPY text, which \\copy TABLE FROM FILE loads. \
            Values are as the backup wrote them: times in UTC and ISO form, bytea as \\x hex. Each member's \
            checksum and the table's row count and fingerprint are checked as it is read: a mismatch exits 2, \
            and -o FILE then is not written (it gets its name, mode 0600, only when complete).
            """)

    @Argument(help: ArgumentHelp(DirectoryOptions.archiveArgumentHelp))
    var archive: String

    @Option(help: ArgumentHelp("The table, as SCHEMA.NAME (a bare NAME when only one schema has it).", valueName: "schema.name"))
    var table: String

    @Option(help: ArgumentHelp("The rows' format.", valueName: "format"))
    var format: ExtractFormat = .csv

    @Option(name: [.short, .customLong("output")], help: ArgumentHelp("Write the rows to this file (mode 0600, written whole or not at all); default: standard output.", valueName: "file"))
    var outputFile: String?

    @OptionGroup var directoryOptions: DirectoryOptions
    @OptionGroup var identityOption: IdentityOption

    func validate() throws {
        try directoryOptions.checkApplies(archive: archive, latest: false)
        if table.isEmpty { throw ValidationError("--table needs a table name, SCHEMA.NAME") }
    }

    func run(_ context: RunContext) throws {
        let keys = ArchiveKeys(identities: try identityOption.identities())
        let reader = try directoryOptions.location(of: archive, keys: keys, clock: context.clock).reader()
        let extractor = try TableExtractor(reader: reader, table: table, format: format)
        let output = try ExtractOutput(path: outputFile)
        let stopwatch = Stopwatch()
        // A signal (Ctrl-C) exits through the clean-up stack: the unfinished file goes with it.
        let unfinished = output.temporary.map { path in context.cleanups.push("remove the unfinished \(path)") { unlink(path) } }
        let rows = try extractor.run { bytes in
            try context.checkStopped()
            try output.write(bytes)
        }
        try output.commit()
        unfinished?.dismiss()
        context.logger.info("extracted", metadata: ["table": "\(extractor.table.qualifiedName)", "rows": "\(rows)", "format": "\(format.rawValue)",
                                                    "stored_bytes": "\(extractor.storedBytes)", "seconds": "\(String(format: "%.2f", stopwatch.elapsed))"])
        if let outputFile {
            context.output.writeLine("\(Plural.of(rows, "row")) of \(extractor.table.qualifiedName) written to \(outputFile) (\(format.rawValue))")
        }
    }
}
