import ArgumentParser
import Foundation
import RackGatewayDB

extension ExtractFormat: ExpressibleByArgument {
    /// `jsonl` (JSON lines, what the output is) is another name for `json`.
    public init?(argument: String) {
        self.init(rawValue: argument == "jsonl" ? "json" : argument)
    }
}

/// `extract ARCHIVE --table SCHEMA.NAME`: one table's rows out of an archive, without a database.
struct ExtractCommand: ToolCommand {
    var outputOptions: OutputOptions { (try? OutputOptions.parse([])) ?? OutputOptions() }

    static let configuration = CommandConfiguration(
        commandName: "extract",
        abstract: "Write one table's rows from an archive as CSV, JSON lines or COPY text, without a database.",
        usage: "rack-gateway-db extract <archive> --table <schema.name> [--format <format>] [--output <file>] [--dir <dir>] [--s3-endpoint <url>] [--identity <file>]",
        discussion: """
            Reads only the archive's manifest and that table's members (ranged reads, also from S3 and of an \
            encrypted archive, which needs --identity), one member in memory at a time. csv is what psql's \
            \\copy TABLE TO FILE CSV HEADER writes; json is one object per line (numbers, booleans, json and \
            arrays as JSON, timestamps and intervals in ISO 8601 as PostgreSQL's to_json writes them, everything \
            else as its text; jsonl is another name for it); copy is COPY text, which \\copy TABLE FROM FILE \
            loads. Values are as the backup wrote them: times in UTC, bytea as \\x hex. Each member's checksum \
            and the table's row count and fingerprint are checked as it is read: a mismatch exits 2, and -o FILE \
            then is not written (it gets its name, mode 0600, only when complete). A reader that closes the \
            output early (| head) ends the extract quietly with status 141, as a filter killed by SIGPIPE; \
            Ctrl-C stops it at once (130, SIGTERM 143), saying what was written.
            """)

    @Argument(help: ArgumentHelp(DirectoryOptions.archiveArgumentHelp))
    var archive: String

    /// An array only to tell a repeated --table (ArgumentParser keeps the last of a single value).
    @Option(help: ArgumentHelp("The table, as SCHEMA.NAME or \"SCHEMA\".\"NAME\" (a bare NAME when only one schema has it); one per extract.", valueName: "schema.name"))
    var table: [String] = []

    @Option(help: ArgumentHelp("The rows' format (jsonl: json).", valueName: "format"))
    var format: ExtractFormat = .csv

    @Option(name: [.short, .customLong("output")], help: ArgumentHelp("Write the rows to this file (mode 0600, written whole or not at all); default: standard output.", valueName: "file"))
    var outputFile: String?

    @OptionGroup var directoryOptions: DirectoryOptions
    @OptionGroup var identityOption: IdentityOption

    func validate() throws {
        try directoryOptions.checkApplies(archive: archive, latest: false)
        guard let name = table.first, !name.isEmpty else { throw ValidationError("--table needs a table name, SCHEMA.NAME") }
        if table.count > 1 {
            throw ValidationError("--table was given \(table.count) times (\(table.joined(separator: ", "))), but extract writes one table; "
                                  + "run it once per table, each with its own -o FILE")
        }
    }

    func run(_ context: RunContext) throws {
        let keys = ArchiveKeys(identities: try identityOption.identities())
        let reader = try directoryOptions.location(of: archive, keys: keys, clock: context.clock).reader()
        let extractor = try TableExtractor(reader: reader, table: table[0], format: format)
        let output = try ExtractOutput(path: outputFile)
        let stopwatch = Stopwatch()
        // A signal (Ctrl-C) exits through the clean-up stack: the unfinished file goes with it.
        let unfinished = output.temporary.map { path in context.cleanups.push("remove the unfinished \(path)") { unlink(path) } }
        let progress = ExtractProgress()
        let rows: Int
        do {
            rows = try extractor.run(progress: progress) { bytes in
                try context.checkStopped()
                try output.write(bytes)
            }
            // Stopped after the last row: a file is not given its name.
            if output.temporary != nil { try context.checkStopped() }
            try output.commit()
        } catch where context.cancellation.signal != nil {
            // Whatever the signal cut short (a write, a read from S3, a reader Ctrl-C ended too):
            // one line saying what went out.
            let table = extractor.table
            let written = output.temporary.map { "\(outputFile ?? $0) was not created (its .partial is removed)" }
                ?? "\(progress.rows) of its \(Plural.of(table.rows, "row")) (\(ProgressDisplay.bytes(progress.bytes))) went to \(outputFile ?? "standard output"), "
                + (progress.rows < table.rows ? "which is incomplete" : "all of them")
            throw ToolError(.interrupted, "\(context.cancellation.description) during the extract of \(table.qualifiedName): \(written)")
        } catch is ExtractOutput.ReaderClosed {
            // `| head` has had enough: no message, and the status a filter killed by SIGPIPE has.
            throw ExitCode(128 + SIGPIPE)
        }
        unfinished?.dismiss()
        context.logger.info("extracted", metadata: ["table": "\(extractor.table.qualifiedName)", "rows": "\(rows)", "format": "\(format.rawValue)",
                                                    "stored_bytes": "\(extractor.storedBytes)", "seconds": "\(String(format: "%.2f", stopwatch.elapsed))"])
        if let outputFile {
            context.output.writeLine("\(Plural.of(rows, "row")) of \(extractor.table.qualifiedName) written to \(outputFile) (\(format.rawValue))")
        }
    }
}
