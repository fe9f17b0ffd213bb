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
            (drills.jsonl). re-read N%: verify --sample has re-read N% of its data since the file last \
            changed (when it last did: below the table, and sampled_at in --json; not shown on a VERIFY-FAILED \
            archive, which stays failed until the file changes or a full verify passes). Where copies.jsonl records copies (copy, backup --copy-to), a COPIES column: at the \
            source, each archive's verified copies and FAILED ones (as recorded when copied); at the destination, \
            copy (still the file verified when it was copied) or copy CHANGED; the locations and the newest copy \
            are said below the table, and --json gives each archive a copies array. A location without archives \
            lists none (exit 0) and says on stderr which locations near it hold some.
            """)

    @OptionGroup var directoryOptions: DirectoryOptions
    @OptionGroup var identityOption: IdentityOption
    @OptionGroup var output: OutputOptions
    var json: Bool { output.json }

    func run(_ context: RunContext) throws {
        do {
            let logger = context.logger
            var directory = try directoryOptions.archiveDirectory(keys: ArchiveKeys(identities: try identityOption.identities()), clock: context.clock)
            directory.readsCopies = true
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

    /// `re-read 40%`: how much of it `verify --sample` has re-read since the file last changed (when
    /// it last did is said below the table); nil when none has, and for a VERIFY-FAILED archive (a
    /// share re-read is no reassurance next to a failure that stands).
    static func reRead(_ entry: ArchiveDirectory.Entry) -> String? {
        guard let percent = entry.sampledPercent, entry.sampledAt != nil, !entry.verificationFailed else { return nil }
        return "re-read \(VerifyCommand.percentText(percent))"
    }

    /// Below the table: when verify --sample last re-read the archives marked `re-read N%` (the
    /// latest and, when they differ, the earliest of their last samples).
    static func reReadLine(_ entries: [ArchiveDirectory.Entry]) -> String? {
        let times = entries.filter { reRead($0) != nil }.compactMap(\.sampledAt).sorted()
        guard let last = times.last, let first = times.first else { return nil }
        return "re-read N%: by verify --sample since the file last changed; last \(EvidenceReport.display(last))"
            + (first == last ? "." : " (the longest ago \(EvidenceReport.display(first))).")
    }

    /// The listing: a header row, then one row per archive, columns padded to their widest value;
    /// what makes an archive unreadable or SUSPECT is said below the table, one line each, so that a
    /// long reason does not widen every row.
    static func table(_ entries: [ArchiveDirectory.Entry]) -> [String] {
        let formatter = ISO8601DateFormatter()
        // The COPIES column only where copies.jsonl records copies (a directory never copied lists as before).
        let withCopies = entries.contains { $0.copies != nil }
        let rows = entries.map { entry -> [String] in
            let marks = [entry.verificationFailed ? "VERIFY-FAILED" : nil, entry.drillFailed ? "DRILL-FAILED" : nil, entry.suspect != nil ? "SUSPECT" : nil,
                         entry.encrypted ? "encrypted" : nil, entry.signed ? "signed" : nil, entry.verified ? "verified" : nil,
                         entry.drilled ? "drilled" : nil, entry.hasSidecar ? nil : "no-sidecar", Self.reRead(entry)]
                .compactMap { $0 }.joined(separator: ",")
            let contents = entry.problem != nil ? "UNREADABLE (below)" : "\(Plural.of(entry.tables ?? 0, "table")), \(Plural.of(entry.rows ?? 0, "row"))"
            return [formatter.string(from: entry.time), ProgressDisplay.bytes(entry.sizeBytes), entry.file, contents, marks.isEmpty ? "-" : marks]
                + (withCopies ? [ArchiveCopy.column(entry.copies ?? [])] : [])
        }
        let header = ["TIME (UTC)", "SIZE", "ARCHIVE", "CONTENTS", "MARKS"] + (withCopies ? ["COPIES"] : [])
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
        let copies = withCopies ? copyLines(entries) : []
        let reRead = reReadLine(entries).map { [$0] } ?? []
        return table + (problems.isEmpty ? [] : [""] + problems) + (copies.isEmpty ? [] : [""] + copies) + (reRead.isEmpty ? [] : [""] + reRead)
    }

    /// Under the table, what copies.jsonl says: per other location, how many archives listed have a
    /// good copy there (or are good copies of it) and the newest; then each copy that failed or is
    /// no longer the one verified, one line each.
    static func copyLines(_ entries: [ArchiveDirectory.Entry]) -> [String] {
        let all = entries.flatMap { entry in (entry.copies ?? []).map { (entry: entry, copy: $0) } }
        var lines: [String] = []
        for direction in [ArchiveCopy.Direction.to, .from] {
            let here = all.filter { $0.copy.direction == direction }
            for location in Array(Set(here.map(\.copy.location))).sorted() {
                let good = here.filter { $0.copy.location == location && $0.copy.good }
                let newest = good.first.map { " (newest \($0.entry.file): \($0.copy.sentence))" } ?? ""
                lines.append(direction == .to
                    ? "Copies to \(location): \(good.count) of \(Plural.of(entries.count, "archive")) listed\(newest)."
                    : "Copies of \(location): \(Plural.of(good.count, "archive")) here verified as copied\(newest).")
            }
        }
        for (entry, copy) in all where !copy.good { lines.append("\(entry.file): \(copy.sentence)") }
        return lines
    }
}
