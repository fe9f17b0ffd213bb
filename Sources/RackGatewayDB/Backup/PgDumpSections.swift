import Foundation
import RGWPostgres

/// pg_dump's schema sections, dumped inside the backup's snapshot: pre-data (with the large
/// objects' metadata, which `--schema-only` leaves out) and post-data (with the materialized
/// views' refreshes put in and the event triggers last), run on a thread of its own while the data flows.
struct PgDumpSections {
    let pgDump: PostgresTools.Tool
    let settings: ConnectionSettings
    let snapshot: String

    func preData(_ coordinator: Connection) throws -> String {
        try run(section: "pre-data") + (try LargeObjects.metadataStatements(coordinator))
    }

    /// Post-data, started now; `wait` on the result.
    func startPostData(refreshes: String) -> PendingPostData {
        let pending = PendingPostData()
        spawnThread("pg_dump post-data", group: pending.group) {
            pending.box.value = Result { try Self.arranging(try self.run(section: "post-data"), refreshes: refreshes) }
        }
        return pending
    }

    final class PendingPostData: @unchecked Sendable {
        let box = ResultBox<String>()
        let group = DispatchGroup()
        func wait() throws -> String {
            group.wait()
            return try box.value!.get()
        }
    }

    func run(section: String) throws -> String {
        var child = ChildProcess(executable: pgDump.path, arguments: [
            "--schema-only", "--section=\(section)", "--snapshot=\(snapshot)", "--no-password",
        ], environment: settings.childEnvironment)
        child.cancellation = settings.cancellation
        let output = try child.run()
        guard output.status == 0 else {
            let message = ConnectionSettings.redact(output.stderr.trimmingCharacters(in: .whitespacesAndNewlines),
                                                    secret: settings.effectiveValue("password") ?? "")
            throw ToolError(.failed, "pg_dump --section=\(section) failed (exit \(output.status)): \(message)")
        }
        return output.stdout
    }

    /// Post-data as the archive holds it: pg_dump's, with the materialized view refreshes after
    /// everything but the event triggers (which would fire on them), and the event triggers last
    /// with everything that belongs to them (comments, security labels: `DumpScript.Entry.phase`),
    /// each after its trigger, so that the stock-tools path (`gunzip -c | psql`) runs them in the
    /// order the tool's restore does. pg_dump writes them so already (then only the refreshes go
    /// in, before the first of them); entries of theirs that stand elsewhere are moved there.
    static func arranging(_ postData: String, refreshes: String) throws -> String {
        let script = try DumpScript(postData, section: "post-data")
        let last = script.entries(in: .eventTriggers)
        guard let first = script.entries.firstIndex(where: { $0.phase == .eventTriggers }) else {
            return refreshes.isEmpty ? postData : postData + "\n" + refreshes
        }
        var lines = postData.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        let parsed = SQLScript(postData)
        let tail = parsed.comments.last { $0.text.hasPrefix("-- PostgreSQL database dump complete") }
        // The first line (0-based) of an entry's text: its header's opening "--" line.
        func opening(_ entry: DumpScript.Entry) -> Int {
            let header = entry.headerLine - 1
            return header > 0 && lines[header - 1] == "--" ? header - 1 : max(0, header)
        }
        if script.entries[first...].map(\.label) == last.map(\.label) {
            guard !refreshes.isEmpty else { return postData }
            lines.insert(contentsOf: refreshes.split(separator: "\n", omittingEmptySubsequences: false).map(String.init), at: opening(script.entries[first]))
            return lines.joined(separator: "\n")
        }
        // Where an entry's text ends: before the next statement, meta-command or comment after
        // its last statement (the next entry's settings and header, the closing comment).
        let boundaries = (parsed.pieces.map { piece -> Int in
            switch piece { case .statement(_, let line), .metaCommand(_, let line): line }
        } + parsed.comments.map(\.line)).sorted()
        func range(_ entry: DumpScript.Entry) -> Range<Int> {
            let lastStatement = entry.statements.last!
            let end = lastStatement.line + lastStatement.text.count { $0 == "\n" }
            let upTo = (boundaries.first { $0 > end } ?? lines.count + 1) - 1
            return opening(entry)..<min(upTo, lines.count)
        }
        var moved: [String] = refreshes.isEmpty ? [] : [refreshes]
        var settings: [String]? = nil
        for entry in last {
            if entry.settings != settings {
                moved.append(entry.settings.map { $0 + ";" }.joined(separator: "\n") + "\n")
                settings = entry.settings
            }
            moved.append(lines[range(entry)].joined(separator: "\n"))
        }
        let removed = last.map(range).sorted { $0.lowerBound > $1.lowerBound }
        for cut in removed { lines.removeSubrange(cut) }
        var at = lines.count
        if let tail, let index = lines.lastIndex(of: tail.text) {
            at = index > 0 && lines[index - 1] == "--" ? index - 1 : index
        }
        lines.insert(contentsOf: moved.joined(separator: "\n").split(separator: "\n", omittingEmptySubsequences: false).map(String.init) + [""], at: at)
        return lines.joined(separator: "\n")
    }
}
