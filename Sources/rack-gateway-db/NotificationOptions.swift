import ArgumentParser
import Foundation
import RackGatewayDB

/// `--notify URL` and `--webhook URL` (issue 30), for backup, drill, prune, check, restore and verify: who
/// is told how the run went. Each is repeatable; without the option, `RGW_NOTIFY_URL` and
/// `RGW_WEBHOOK_URL` (one URL, or several separated by spaces) are the default.
struct NotificationOptions: ParsableArguments {
    @Option(name: .customLong("notify"), help: ArgumentHelp("Ping URL/start when the run starts, URL when it succeeds and URL/<exit status> when it fails (healthchecks.io's convention; one run id on both), the summary and the last log lines as the body; repeatable (default: $RGW_NOTIFY_URL).", valueName: "url"))
    var notify: [String] = []

    @Option(name: .customLong("webhook"), help: ArgumentHelp("POST the --json report (or error document) with a one-line \"text\" summary (a Slack or Teams incoming webhook shows it) to URL at the end; repeatable (default: $RGW_WEBHOOK_URL).", valueName: "url"))
    var webhook: [String] = []

    var environment: [String: String] { ProcessInfo.processInfo.environment }

    /// The `--notify` URLs, else those of `RGW_NOTIFY_URL` that are URLs (an empty `--notify ""`
    /// turns the variable off).
    var pings: [String] { Self.chosen(notify, environment["RGW_NOTIFY_URL"]) }
    /// The `--webhook` URLs, else those of `RGW_WEBHOOK_URL` that are URLs (`--webhook ""`: none).
    var webhooks: [String] { Self.chosen(webhook, environment["RGW_WEBHOOK_URL"]) }

    static func split(_ value: String?) -> [String] { (value ?? "").split(whereSeparator: \.isWhitespace).map(String.init) }

    /// The options' URLs when any is given (empty ones left out), else the variable's that parse.
    static func chosen(_ given: [String], _ variable: String?) -> [String] {
        given.isEmpty ? split(variable).filter { Notifier.problem(with: $0) == nil } : given.filter { !$0.isEmpty }
    }

    /// What is wrong with the environment's URLs: a warning at the run's start and end, never a
    /// refusal. A nightly job whose RGW_WEBHOOK_URL was pasted without its https:// still backs up
    /// (a usage error there would stop every job that shares the variable, and tell no one).
    var environmentProblems: [String] {
        var problems: [String] = []
        for (given, variable) in [(notify, "RGW_NOTIFY_URL"), (webhook, "RGW_WEBHOOK_URL")] where given.isEmpty {
            for url in Self.split(environment[variable]) {
                // The URL itself is a secret: the warning names what is wrong with it, not the URL.
                if let problem = Notifier.problem(with: url) {
                    problems.append("\(variable) holds a value that is not an http:// or https:// URL (\(problem)): nothing is sent there; "
                                    + "set it to the URL the monitor or chat service shows")
                }
            }
        }
        return problems
    }

    func validate() throws {
        for (urls, option) in [(notify, "--notify"), (webhook, "--webhook")] {
            for url in urls where !url.isEmpty {
                // The URL itself is a secret: the message names what is wrong with it, not the URL.
                if let problem = Notifier.problem(with: url) {
                    throw ValidationError("\(option) takes an http:// or https:// URL, and \(problem); give the URL the monitor or chat service shows (or \(option) \"\" for none)")
                }
            }
        }
    }
}

/// The notifications of one run: the start ping before the command's body, the end ping and the
/// webhooks once `Reporting.run` knows its exit status. The command hands over its report and
/// summary with `keep`; a failure's JSON document is `Reporting.failureDocument`.
final class Notifications: @unchecked Sendable {
    let notifier: Notifier
    let command: String

    /// The run's report as `--json` prints it, and its one-line summary, when the command kept one.
    nonisolated(unsafe) static var report: (json: String, summary: String)?

    /// Keep `report` (encoded as `--json` prints it) and `summary` (one line) for the end's
    /// notifications; a command calls it once its report is made, with or without `--json`.
    static func keep<T: Encodable>(_ value: T, summary: String) {
        guard let json = try? Reporting.jsonText(value) else { return }
        report = (json, summary)
    }

    /// What is wrong with the environment's URLs, said at the start and again at the end (where a
    /// log's last lines are read).
    let problems: [String]
    let output: TerminalOutput

    /// Nil when no URL is configured and none is malformed.
    init?(_ options: NotificationOptions, command: String, output: TerminalOutput) {
        let notifier = Notifier(pings: options.pings, webhooks: options.webhooks) { output.writeLine("rack-gateway-db: warning: \($0)") }
        problems = options.environmentProblems
        guard !notifier.isEmpty || !problems.isEmpty else { return nil }
        self.notifier = notifier
        self.command = command
        self.output = output
    }

    func warnAboutProblems() {
        for problem in problems { output.writeLine("rack-gateway-db: warning: \(problem)") }
    }

    func started() {
        warnAboutProblems()
        notifier.started(body: "rack-gateway-db \(command) started (version \(ToolVersion.current), run id \(notifier.runID))\n")
    }

    /// The run ended with `status`: the end ping and the webhooks.
    func ended(status: Int32) {
        warnAboutProblems()
        let text = summary(status: status)
        // At most `recentLimit` lines of at most 1000 characters: a ping's body stays small.
        let tail = TerminalOutput.shared.recentLines.filter { !$0.isEmpty }.map { $0.count > 1000 ? $0.prefix(1000) + "…" : $0 }
        let pingBody = text + "\nrun id \(notifier.runID)\n" + (tail.isEmpty ? "" : "\nlast log lines:\n" + tail.joined(separator: "\n") + "\n")
        notifier.finished(status: status, pingBody: pingBody, webhookBody: webhookBody(status: status, text: text))
    }

    /// `rack-gateway-db backup: Backed up ...` or `rack-gateway-db backup FAILED (exit 1): ...`.
    func summary(status: Int32) -> String {
        if status == 0 { return "rack-gateway-db \(command): " + (Self.report?.summary ?? "succeeded") }
        let message = Reporting.failureDocument?.error.message.split(separator: "\n").first.map(String.init) ?? "see the log"
        // A backup that ended copy_failed wrote and verified its archive: only a copy failed.
        if command == "backup" && Reporting.failureDocument?.error.code == ToolError.Code.copyFailed.rawValue {
            return "rack-gateway-db backup done, copy FAILED (exit \(status)): \(message)"
        }
        return "rack-gateway-db \(command) FAILED (exit \(status)): \(message)"
    }

    /// What `--json` printed (the report, else the error document) with `text`, and on a failure
    /// the error document's `error` object (code, message, fix, exit_status), as `--json` prints it.
    func webhookBody(status: Int32, text: String) -> [UInt8] {
        var object: [String: Any] = [:]
        if let report = Self.report, let decoded = try? JSONSerialization.jsonObject(with: Data(report.json.utf8)) as? [String: Any] {
            object = decoded
        }
        if status != 0 {
            let document = Reporting.failureDocument ?? Reporting.ErrorDocument(ToolError(.failed, "exit status \(status)"), status: status)
            if let text = try? Reporting.jsonText(document), let decoded = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] {
                object.merge(decoded) { _, new in new }
            }
        }
        object["text"] = text
        return (try? [UInt8](JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes]))) ?? Array(((try? Reporting.jsonText(["text": text])) ?? "{}").utf8)
    }
}
