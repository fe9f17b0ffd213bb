import Foundation
import RGWPostgres

/// pg_dump's schema sections, dumped inside the backup's snapshot: pre-data (with the large
/// objects' metadata, which `--schema-only` leaves out) and post-data (with the materialized
/// views' refreshes put in), run on a thread of its own while the data flows.
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
            pending.box.value = Result { Self.insertingRefreshes(refreshes, into: try self.run(section: "post-data")) }
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

    /// The materialized view refreshes go into post-data after everything but the event triggers
    /// (which would fire on them), in the stock-tools path too.
    static func insertingRefreshes(_ refreshes: String, into postData: String) -> String {
        guard !refreshes.isEmpty else { return postData }
        let script = SQLScript(postData)
        guard let header = script.comments.first(where: { $0.text.hasPrefix("-- Name: ") && $0.text.contains("; Type: EVENT TRIGGER;") }) else {
            return postData + "\n" + refreshes
        }
        // Before the header's opening "--" line.
        var lines = postData.split(separator: "\n", omittingEmptySubsequences: false)
        let at = max(0, header.line - 2)
        lines.insert(contentsOf: refreshes.split(separator: "\n", omittingEmptySubsequences: false), at: at)
        return lines.joined(separator: "\n")
    }
}
