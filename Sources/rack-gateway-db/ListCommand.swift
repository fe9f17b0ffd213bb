import ArgumentParser
import Foundation
import RackGatewayDB

struct ListCommand: ToolCommand {
    var outputOptions: OutputOptions { output }

    static let configuration = CommandConfiguration(
        commandName: "list",
        abstract: "List the archives in --dir, newest first: time, size, tables, rows, and marks (encrypted, signed, verified, VERIFY-FAILED, drilled, DRILL-FAILED, SUSPECT, re-read N%).",
        discussion: """
            An encrypted archive is listed from its .summary.json; with --identity, from the archive itself. \
            drilled: its last drill read it in full and passed; DRILL-FAILED: its last drill failed a check \
            (drills.jsonl). re-read N% (TIME): verify --sample has re-read N% of its data since the file last \
            changed, last at TIME. A location without archives lists none (exit 0) and says on stderr which locations \
            near it hold some.
            """)

    @OptionGroup var directoryOptions: DirectoryOptions
    @OptionGroup var identityOption: IdentityOption
    @OptionGroup var output: OutputOptions
    var json: Bool { output.json }

    func run(_ context: RunContext) throws {
        do {
            let logger = context.logger
            let directory = try directoryOptions.archiveDirectory(keys: ArchiveKeys(identities: try identityOption.identities()), clock: context.clock)
            let entries = try directory.entries()
            for entry in entries {
                logger.debug("archive", metadata: ["archive.file": "\(entry.file)", "verified": "\(entry.verified)", "drilled": "\(entry.drilled)",
                                                   "drill_failed": "\(entry.drillFailed)", "problem": "\(entry.problem ?? "none")"])
            }
            if entries.isEmpty {
                // Empty is also the state before the first backup (exit 0); archives near it mean a
                // typo in the location, said on stderr where a script's reader of stdout does not trip on it.
                let nearby = ArchiveDirectory.nearby(directory.store)
                if !nearby.isEmpty {
                    context.output.writeLine("rack-gateway-db: note: \(directoryOptions.source.naming(directory.directory)) holds no archives. "
                                             + ArchiveDirectory.hint(beside: nearby) + directoryOptions.source.fix)
                }
            }
            if json {
                try Reporting.printJSON(entries)
                return
            }
            guard !entries.isEmpty else {
                print("No archives in \(directoryOptions.source.naming(directory.directory)).")
                return
            }
            for line in Self.table(entries) { print(line) }
        }
    }

    /// `re-read 40% (2026-12-04 03:15)`: how much of it `verify --sample` has re-read since the file
    /// last changed, and when it last did; nil when none has.
    static func reRead(_ entry: ArchiveDirectory.Entry) -> String? {
        guard let percent = entry.sampledPercent, let at = entry.sampledAt else { return nil }
        let display = EvidenceReport.display(at)
        return "re-read \(VerifyCommand.percentText(percent)) (\(display.hasSuffix(" UTC") ? String(display.dropLast(4)) : display))"
    }

    /// The listing: a header row, then one row per archive, columns padded to their widest value;
    /// what makes an archive unreadable or SUSPECT is said below the table, one line each, so that a
    /// long reason does not widen every row.
    static func table(_ entries: [ArchiveDirectory.Entry]) -> [String] {
        let formatter = ISO8601DateFormatter()
        let rows = entries.map { entry -> [String] in
            let marks = [entry.verificationFailed ? "VERIFY-FAILED" : nil, entry.drillFailed ? "DRILL-FAILED" : nil, entry.suspect != nil ? "SUSPECT" : nil,
                         entry.encrypted ? "encrypted" : nil, entry.signed ? "signed" : nil, entry.verified ? "verified" : nil,
                         entry.drilled ? "drilled" : nil, entry.hasSidecar ? nil : "no-sidecar", Self.reRead(entry)]
                .compactMap { $0 }.joined(separator: ",")
            let contents = entry.problem != nil ? "UNREADABLE (below)" : "\(Plural.of(entry.tables ?? 0, "table")), \(Plural.of(entry.rows ?? 0, "row"))"
            return [formatter.string(from: entry.time), ProgressDisplay.bytes(entry.sizeBytes), entry.file, contents, marks.isEmpty ? "-" : marks]
        }
        let header = ["TIME (UTC)", "SIZE", "ARCHIVE", "CONTENTS", "MARKS"]
        let widths = header.indices.map { column in ([header] + rows).map { $0[column].count }.max() ?? 0 }
        let table = ([header] + rows).map { row in
            row.enumerated().map { column, value in
                column == row.count - 1 ? value : value.padding(toLength: widths[column], withPad: " ", startingAt: 0)
            }.joined(separator: "  ")
        }
        // Below the table too: why an archive is unreadable, and why one is SUSPECT (the alert and
        // the backup's own message send people here for it).
        let problems = entries.compactMap { entry in
            entry.problem.map { "\(entry.file) is unreadable: \($0)" } ?? entry.suspect.map { "\(entry.file) is SUSPECT: \($0)" }
        }
        return table + (problems.isEmpty ? [] : [""] + problems)
    }
}
