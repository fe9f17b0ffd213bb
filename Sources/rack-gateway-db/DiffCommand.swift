import ArgumentParser
import Foundation
import RGWPostgres
import RackGatewayDB

struct DiffCommand: ToolCommand {
    var outputOptions: OutputOptions { global.output }

    static let configuration = CommandConfiguration(
        commandName: "diff",
        abstract: "Compare an archive with a database (or with a second archive): per table, rows in each and whether they are equal.",
        discussion: """
            Tables are compared by row count and fingerprint: the archive's recorded ones, the database's \
            computed as backup computes them (the rows are hashed as they stream; nothing of them is kept or \
            printed). With --rows, the tables that differ are read again and their rows added, removed and \
            changed are shown, matched by the database's primary key (tables without one, and tables of two \
            archives, as multisets of rows: added and removed only), at most --limit of each per table; --json \
            lists them all. First, the audit log (the table with chain_index, previous_hash and event_hash) \
            is checked as history: its events up to the archive's last chain_index must be the database's \
            (with --against: the older archive's must be the newer one's), less the ranges recorded prunes \
            removed; the first that differs is named by its chain_index, and gaps in the archive's own chain \
            that no prune explains are named too. Its verdict is the first line (JSON: audit_history_held). \
            The database is only read. Exit 0 when the compared data is equal, 2 when it differs (an audit \
            log with events appended since differs too: read audit_history_held), 1 on error.
            """)

    @Argument(help: ArgumentHelp(DirectoryOptions.archiveArgumentHelp))
    var archive: String

    @Option(help: ArgumentHelp("Compare with this second archive instead of a database (no database is read); its audit history is checked too: the older archive's events must be in the newer one as they were.", valueName: "archive"))
    var against: String?

    @Option(name: .customLong("table"), help: ArgumentHelp("Compare only this table (repeatable; default: every table).", valueName: "schema.name"))
    var tables: [String] = []

    @Flag(help: "For the tables that differ, show the rows added, removed and changed.")
    var rows = false

    @Option(help: ArgumentHelp("With --rows, print at most this many rows of each kind per table (default: 20; --json lists them all).", valueName: "n"))
    var limit: Int?

    @OptionGroup var global: GlobalOptions
    @OptionGroup var directoryOptions: DirectoryOptions
    @OptionGroup var keyOptions: ReadKeyOptions
    @OptionGroup var jobsOption: JobsOption

    func validate() throws {
        if against != nil && global.databaseURL != nil {
            throw ValidationError("--against and --database-url exclude each other (diff compares the archive with one of them)")
        }
        if let limit {
            if !rows { throw ValidationError("--limit applies only with --rows") }
            if limit < 1 { throw ValidationError("--limit must be at least 1") }
        }
        if limit != nil && global.json { throw ValidationError("--limit does not apply with --json (it lists every row)") }
        if against != nil && jobsOption.jobs != nil { throw ValidationError("--jobs does not apply with --against (no database is read)") }
    }

    func run(_ context: RunContext) throws {
        let keys = try keyOptions.keys()
        let location = try directoryOptions.location(of: archive, keys: keys, clock: context.clock)
        let reader = try location.reader()
        let other: ArchiveDiff.Other
        let otherName: String
        if let against {
            let second = try directoryOptions.location(of: against, keys: keys, clock: context.clock).reader()
            other = .archive(second)
            otherName = second.path
        } else {
            let settings = try global.connectionSettings(context)
            other = .database(settings)
            otherName = settings.description
        }
        var options = ArchiveDiff.Options()
        options.tables = tables
        options.rows = rows
        options.limit = global.json ? nil : (limit ?? 20)
        options.jobs = against == nil ? try jobsOption.resolved() : 1
        let diff = ArchiveDiff(archive: reader, other: other, options: options)
        let side = against == nil ? "the database" : "the other archive"
        let equal: Bool
        if global.json {
            equal = try runJSON(diff, archive: reader.path, other: otherName)
        } else {
            equal = try runText(diff, side: side)
        }
        if !equal {
            if global.json { throw ExitCode(2) }
            throw Self.difference(history: history, rows: rows, json: false)
        }
    }

    /// What a difference is reported as: not a failure of the run, but exit 2 with its code; a
    /// changed audit history first, by its first differing chain_index (or the gaps in the archive's
    /// own chain); otherwise whether the history held is said with the data's difference. What to do next depends on
    /// what the run showed: after `--rows` the rows are shown already; in JSON nothing is "above".
    static func difference(history: AuditHistoryCheck.Result?, rows: Bool, json: Bool) -> ToolError {
        if let history, !history.ok {
            if history.unrelated {
                return ToolError(.mismatch, "the audit histories of \(history.table) are not one history: " + history.changedDetail,
                                 fix: "Compare archives (or an archive and a database) of the same database: the manifests' source database says which it is (inspect ARCHIVE).")
            }
            if let first = history.firstDifference {
                return ToolError(.mismatch, "the audit history of \(history.table) was changed: the event at chain_index \(first) is \(history.difference ?? "different") against \(history.olderArchive.map { "the older archive \($0)" } ?? "the archive")",
                                 fix: "Find out who changed it (an append-only log changes only with its triggers disabled); the archive holds the event as it was.")
            }
            return ToolError(.mismatch, "the audit history of \(history.table) has gaps in the archive's own chain that no recorded prune explains: chain_index \(history.gapList)",
                             fix: "Those events were deleted before the backup was taken: look for an older archive that has them, and find out who deleted them.")
        }
        let held = history.map { "; the audit history held (\($0.heldDetail))" } ?? ""
        let marked = json ? "the tables whose status is not \"equal\"" : "the tables marked DIFFERENT, MISSING or EXTRA above"
        let restore = "put back what should not have changed: restore ARCHIVE --table SCHEMA.NAME --into-schema NEW --target-url URL restores a table beside the live one, with the SQL that copies its missing rows back (README: Getting one table back)."
        return ToolError(.mismatch, "the compared data differs (\(marked))\(held)",
                         fix: !rows ? "See what changed with --rows (and --json for every row); " + restore
                             : json ? "The rows that differ are listed in \"rows\"; " + restore
                             : "The rows that differ are listed above (--json lists every one); " + restore)
    }

    /// The audit history check's result (set while the diff runs).
    private var history: AuditHistoryCheck.Result? { HistoryBox.shared.value }

    /// One JSON document, written as the tables come (the rows of a big difference are not held).
    func runJSON(_ diff: ArchiveDiff, archive: String, other: String) throws -> Bool {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        func text<T: Encodable>(_ value: T) throws -> String { String(decoding: try encoder.encode(value), as: UTF8.self) }
        var first = true
        var firstRow = true
        var differing = 0
        let out = FileHandle.standardOutput
        // A reader that stops early (`| head`) is an error of the run, not a crash.
        func write(_ string: String) throws {
            do {
                try out.write(contentsOf: Data(string.utf8))
            } catch {
                let code = ((error as NSError).userInfo[NSUnderlyingErrorKey] as? NSError)?.code
                throw ToolError(.failed, "cannot write to standard output: \(code.map { String(cString: strerror(Int32($0))) } ?? "\(error)")",
                                fix: "The reader of the output stopped before the end of the JSON document; write it to a file (> FILE) to keep it whole.")
            }
        }
        // Written with the first event (the audit history's, when checked, comes first): a failure
        // before it prints only its error document. `audit_history_held` is the one field to read.
        let head = "{\"archive\":\(try text(archive)),\"other\":\(try text(other)),\"kind\":\(try text(against == nil ? "database" : "archive")),"
        var started = false
        func start(_ history: AuditHistoryCheck.Result?) throws {
            try write(head + "\"audit_history_held\":\(history.map { String($0.ok) } ?? "null"),"
                  + (try history.map { "\"audit_history\":" + (try text($0)) + "," } ?? "") + "\"tables\":[")
            started = true
        }
        let equal = try diff.run { event in
            if case .auditHistory(let result) = event {
                HistoryBox.shared.value = result
                return try start(result)
            }
            if !started { try start(nil) }
            switch event {
            case .table(let result):
                if result.status != .equal { differing += 1 }
                var body = try text(result)
                body.removeLast()
                try write((first ? "" : ",") + body + (result.added != nil ? ",\"rows\":[" : ""))
                first = false
                firstRow = true
            case .row(let change):
                try write((firstRow ? "" : ",") + (try text(change)))
                firstRow = false
            case .tableEnd(let result):
                try write(result.added != nil ? "]}" : "}")
            case .auditHistory:
                break
            }
        }
        if !started { try start(nil) }
        var tail = "],\"equal\":\(equal),\"different_tables\":\(differing)"
        if !equal {
            // As every report of a run that exits non-zero: its `error` object.
            tail += ",\"error\":" + String(decoding: try Reporting.encoder().encode(Reporting.ErrorDocument(Self.difference(history: history, rows: rows, json: true)).error), as: UTF8.self)
        }
        try write(tail + "}\n")
        return equal
    }

    func runText(_ diff: ArchiveDiff, side: String) throws -> Bool {
        var counts: [ArchiveDiff.RowChange.Kind: Int] = [:]
        var columns: [String] = []
        var total = 0, differing = 0
        let equal = try diff.run { event in
            switch event {
            case .table(let result):
                counts = [:]
                columns = result.columns ?? []
                total += 1
                if result.status != .equal { differing += 1 }
                print(Self.line(result, side: side))
                if result.added != nil {
                    let key = result.keyColumns ?? []
                    print("  " + [("removed", result.removed ?? 0), ("added", result.added ?? 0), ("changed", result.changed ?? 0)]
                        .map { "\($1) \($0)" }.joined(separator: ", ")
                          + (key.isEmpty ? " (rows compared as multisets: no primary key)" : " (by primary key \(key.joined(separator: ", ")))"))
                }
            case .row(let change):
                counts[change.change, default: 0] += 1
                print("  " + Self.line(change, columns: columns))
            case .tableEnd(let result):
                guard result.added != nil else { return }
                for (kind, all) in [(ArchiveDiff.RowChange.Kind.removed, result.removed ?? 0), (.added, result.added ?? 0), (.changed, result.changed ?? 0)] {
                    let shown = counts[kind] ?? 0
                    if all > shown { print("  ... and \(all - shown) more \(kind.rawValue) (--json lists them all)") }
                }
            case .auditHistory(let result):
                print(Self.line(result))
                HistoryBox.shared.value = result
            }
        }
        if equal {
            print("EQUAL: \(side) holds what the archive holds (\(Plural.of(total, "table")) compared)")
        } else if differing == 0, let history, !history.ok {
            print("DIFFERENT: the \(Plural.of(total, "table")) compared are equal, but the audit history of \(history.table) did not hold (the first line)")
        } else {
            print("DIFFERENT: \(Plural.of(differing, "table")) of \(total) differ\(differing == 1 ? "s" : "") between the archive and \(side)")
        }
        return equal
    }

    /// The audit history's line, printed first: `audit history held: ...` or `AUDIT HISTORY CHANGED ...`.
    static func line(_ history: AuditHistoryCheck.Result) -> String {
        history.ok ? "audit history held: " + history.heldDetail
            : "AUDIT HISTORY \(history.unrelated ? "OF ANOTHER DATABASE" : "CHANGED") \(history.table): " + history.changedDetail
    }

    static func line(_ result: ArchiveDiff.TableResult, side: String) -> String {
        let rows = { (count: Int?) in count.map { Plural.of($0, "row") } ?? "?" }
        switch result.status {
        case .equal: return "equal      \(result.table): \(rows(result.archiveRows))"
        case .different: return "DIFFERENT  \(result.table): \(rows(result.archiveRows)) in the archive, \(rows(result.otherRows)) in \(side)"
        case .columnsDiffer:
            return "DIFFERENT  \(result.table): columns (\((result.columnsInArchive ?? []).joined(separator: ", "))) in the archive, (\((result.columnsInOther ?? []).joined(separator: ", "))) in \(side)"
        case .onlyInArchive: return "MISSING    \(result.table): \(rows(result.archiveRows)) in the archive, no such table in \(side)"
        case .onlyInOther: return "EXTRA      \(result.table): \(rows(result.otherRows)) in \(side), not in the archive"
        }
    }

    /// A row that differs, its key first, then its other values in column order.
    static func line(_ change: ArchiveDiff.RowChange, columns: [String]) -> String {
        let keyColumns = columns.filter { change.key?[$0] != nil }
        func show(_ values: [String: String?]?, skip: [String] = []) -> String {
            columns.filter { !skip.contains($0) && values?[$0] != nil }.map { "\($0)=\(quote((values ?? [:])[$0] ?? nil))" }.joined(separator: " ")
        }
        let key = change.key.map { " " + show($0) + ":" } ?? ":"
        switch change.change {
        case .removed: return "- removed\(key) \(show(change.before, skip: keyColumns))"
        case .added: return "+ added\(key) \(show(change.after, skip: keyColumns))"
        case .changed:
            let before = change.before ?? [:], after = change.after ?? [:]
            let changed = columns.filter { (before[$0] ?? nil) != (after[$0] ?? nil) }
            return "~ changed\(key) " + changed.map { "\($0): \(quote(before[$0] ?? nil)) -> \(quote(after[$0] ?? nil))" }.joined(separator: ", ")
        }
    }

    /// A value as psql shows it (a bytea as `\x00ff`, a backslash as one), in double quotes so that
    /// spaces stay visible; only control characters are written as escapes (a newline as `\n`, a
    /// tab as `\t`), to keep a row on one line. NULL as NULL; `--json` has every value exactly.
    static func quote(_ value: String?) -> String {
        guard let value else { return "NULL" }
        var text = "\""
        for scalar in value.unicodeScalars {
            switch scalar {
            case "\n": text += "\\n"
            case "\t": text += "\\t"
            case "\r": text += "\\r"
            case _ where scalar.value < 0x20 || scalar.value == 0x7F: text += String(format: "\\u%04x", scalar.value)
            default: text.unicodeScalars.append(scalar)
            }
        }
        return text + "\""
    }
}

/// The audit history check of the run (one diff per process).
final class HistoryBox: @unchecked Sendable {
    static let shared = HistoryBox()
    var value: AuditHistoryCheck.Result?
}
