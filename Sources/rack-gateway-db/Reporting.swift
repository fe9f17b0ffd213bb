import ArgumentParser
import Foundation
import RGWPostgres
import RackGatewayDB

/// Output and the one place that turns errors into exit statuses.
enum Reporting {
    /// Whether a JSON report went to stdout already (then a failure adds no second document).
    nonisolated(unsafe) static var printedJSON = false

    static func printJSON<T: Encodable>(_ value: T) throws {
        print(try jsonText(value))
        printedJSON = true
    }

    /// A JSON report's text (no final newline), pretty and with sorted keys.
    static func jsonText<T: Encodable>(_ value: T) throws -> String {
        let encoder = JSONEncoder()
        // The same keys as drills.jsonl, restores.jsonl and the manifest.
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        // Times as the logs write them (Foundation's default would be seconds since 2001).
        encoder.dateEncodingStrategy = .iso8601
        return String(decoding: try encoder.encode(value), as: UTF8.self)
    }

    static func printError(_ text: String) {
        TerminalOutput.shared.writeLine("rack-gateway-db: error: \(text)")
    }

    /// Run a command body; expected errors print one clear message (and under `--json`, unless the
    /// command printed its report already, a JSON error document on stdout, as restic does) and exit
    /// with their status. Whatever the body left on the clean-up stack runs first. A run stopped
    /// by a signal exits 128 + its number once that is done, whatever its body returned.
    static func run(context: RunContext, signals: SignalHandling, json: Bool, notifications: Notifications? = nil, _ body: () throws -> Void) throws {
        // --notify and --webhook: told at the start and the end, whatever the end is.
        notifications?.started()
        do {
            try finish(context: context, signals: signals, json: json, body)
            notifications?.ended(status: 0)
        } catch let exit as ExitCode {
            notifications?.ended(status: exit.rawValue)
            throw exit
        }
    }

    /// The failure's JSON error document, once the run has one (the webhook sends it).
    nonisolated(unsafe) static var failureDocument: ErrorDocument?

    /// Keep `document` as the run's failure, and print it under `--json` unless a report was printed.
    static func reportFailure(_ document: ErrorDocument, json: Bool) {
        failureDocument = document
        if json && !printedJSON { try? printJSON(document) }
    }

    /// `run`'s body: the command, its clean-ups, and its errors as exit statuses.
    static func finish(context: RunContext, signals: SignalHandling, json: Bool, _ body: () throws -> Void) throws {
        var failure: Error?
        do {
            try body()
        } catch {
            failure = error
        }
        // The run's metrics (--metrics-file, --pushgateway) once it has ended, whatever the outcome.
        defer { MetricsRecorder.publish(failure: failure, context: context) }
        context.cancellation.cleaningUp { context.cleanups.runAll() }
        // The fallback is ending the process already (the run took too long to stop): let it.
        guard signals.finishing() else { while true { sleep(60) } }
        if let signal = context.cancellation.signal {
            let error = failure.map(interrupted) ?? ToolError(.interrupted, "\(context.cancellation.description) after the work was done: nothing was undone")
            printError(String(describing: error))
            reportFailure(ErrorDocument(error, status: 128 + signal), json: json)
            throw ExitCode(128 + signal)
        }
        if case .failure(let reason) = context.cancellation.reason {
            // The stall watchdog stopped the run: its reason, not the statement or child it cut short.
            let error = (failure as? ToolError).flatMap { $0.code == .interrupted ? $0 : nil } ?? ToolError(.failed, reason)
            printError(String(describing: error))
            reportFailure(ErrorDocument(error, status: 1), json: json)
            throw ExitCode(1)
        }
        guard let failure else { return }
        if let exit = failure as? ExitCode { throw exit }
        if let declined = failure as? ToolError, declined.code == .notConfirmed, Confirmation.declined {
            // A person who answered no made no error: one plain line, and the documented status (1).
            TerminalOutput.shared.writeLine(declined.message.prefix(1).uppercased() + declined.message.dropFirst() + ".")
        } else {
            printError(String(describing: failure))
        }
        // A command that printed its report (a failed drill or pipeline) has said it all there.
        reportFailure(ErrorDocument(failure), json: json)
        throw ExitCode(exitStatus(for: failure))
    }

    /// A failure of a run a signal stopped, as the interruption it is: the statement the signal
    /// cancelled or the child it ended is not blamed.
    static func interrupted(_ error: Error) -> Error {
        switch error {
        case let error as ToolError where error.code == .interrupted: return error
        case let error as ToolError: return ToolError(.interrupted, error.message, fix: error.fix)
        case let error as PostgresError: return ToolError(.interrupted, error.message)
        default: return ToolError(.interrupted, String(describing: error))
        }
    }

    /// `{"error": {"code", "message", "fix", "exit_status"}}`.
    struct ErrorDocument: Encodable {
        struct Body: Encodable {
            var code: String
            var message: String
            var fix: String?
            var exitStatus: Int32
        }
        var error: Body

        init(_ error: Error, status: Int32? = nil) {
            let tool = error as? ToolError
            self.error = Body(code: code(of: error).rawValue, message: tool?.message ?? String(describing: error),
                              fix: tool?.fix, exitStatus: status ?? Reporting.exitStatus(for: error))
        }
    }

    /// Every error as a code: the tool's own, and the few others that reach the CLI.
    static func code(of error: Error) -> ToolError.Code {
        switch error {
        case let error as ToolError: error.code
        case let error as PostgresError: error.kind == .malformedConnectionString ? .usage : error.kind == .interrupted ? .interrupted : .failed
        case is ValidationError: .usage
        default: .failed
        }
    }

    /// The one place exit statuses come from: the code's category (`ToolError.Code.category` groups
    /// the codes).
    static func exitStatus(for error: Error) -> Int32 {
        switch code(of: error).category {
        case .failed: 1
        case .mismatch: 2
        case .locked: 3
        case .usage: 64
        }
    }
}

/// A command of the tool: its one `run()` makes the run context (logger, clock, environment, the
/// clean-up stack, the output writer, the cancellation), installs SIGINT, SIGTERM and SIGHUP
/// handling, runs the command's body with it, and reports its errors, the same for every command.
protocol ToolCommand: ParsableCommand {
    var outputOptions: OutputOptions { get }
    /// `--notify` and `--webhook`, on the commands that take them.
    var notificationOptions: NotificationOptions? { get }
    func run(_ context: RunContext) throws
}

extension ToolCommand {
    var notificationOptions: NotificationOptions? { nil }

    func run() throws {
        let context = RunContext(logger: outputOptions.makeLogger())
        let signals = SignalHandling(context: context)
        signals.install()
        let notifications = notificationOptions.flatMap { Notifications($0, command: Self._commandName, output: context.output) }
        try Reporting.run(context: context, signals: signals, json: outputOptions.json, notifications: notifications) { try run(context) }
    }
}
