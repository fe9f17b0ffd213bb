import ArgumentParser
import Foundation
import RGWPostgres
import RackGatewayDB

/// Output and the one place that turns errors into exit statuses.
enum Reporting {
    /// Whether a JSON report went to stdout already (then a failure adds no second document).
    nonisolated(unsafe) static var printedJSON = false

    /// A run's report, held until the run's outcome is known (`run`): a failure after it is added
    /// to it as its `error` object, so that every failed run's JSON says its code, message, fix and
    /// exit status in one place.
    nonisolated(unsafe) static var heldJSON: Data?
    /// Whether `run` is under way (and prints the held report when it ends).
    nonisolated(unsafe) static var holdingJSON = false

    static func printJSON<T: Encodable>(_ value: T) throws {
        if holdingJSON {
            heldJSON = try encoder().encode(value)
        } else {
            print(try jsonText(value))
        }
        printedJSON = true
    }

    /// The held report, with `failure` as its `error` object when the run failed (a report that is
    /// not an object gives way to the error document).
    static func printHeldJSON(failure: Error?, status: Int32? = nil) {
        guard let held = heldJSON else { return }
        heldJSON = nil
        guard let failure else { return print(String(decoding: held, as: UTF8.self)) }
        let error = ErrorDocument(failure, status: status).error
        if case .object(var fields)? = try? JSONDecoder().decode(JSONValue.self, from: held),
           let body = try? JSONDecoder().decode(JSONValue.self, from: encoder().encode(error)) {
            fields["error"] = body
            if let text = try? jsonText(JSONValue.object(fields)) { return print(text) }
        }
        try? print(jsonText(ErrorDocument(failure, status: status)))
    }

    /// A JSON report's text (no final newline), pretty and with sorted keys.
    static func jsonText<T: Encodable>(_ value: T) throws -> String {
        String(decoding: try encoder().encode(value), as: UTF8.self)
    }

    /// The encoder of every JSON report.
    static func encoder() -> JSONEncoder {
        let encoder = JSONEncoder()
        // The same keys as drills.jsonl, restores.jsonl and the manifest.
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        // Times as the logs write them (Foundation's default would be seconds since 2001).
        encoder.dateEncodingStrategy = .iso8601
        return encoder
    }

    static func printError(_ text: String) {
        TerminalOutput.shared.writeLine("rack-gateway-db: error: \(text)")
    }

    /// Run a command body; expected errors print one clear message (and under `--json` a JSON error
    /// document on stdout, as restic does, or the command's report with its `error` object) and exit
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

    /// Keep the run's failure as its error document, and under `--json` print it: in the report the
    /// command made (a failed drill or pipeline, a verify that found a mismatch) as its `error`
    /// object, else alone.
    static func reportFailure(_ failure: Error, status: Int32? = nil, json: Bool) {
        failureDocument = ErrorDocument(failure, status: status)
        guard json else { return }
        if heldJSON != nil { return printHeldJSON(failure: failure, status: status) }
        if !printedJSON { try? print(jsonText(ErrorDocument(failure, status: status))) }
    }

    /// `run`'s body: the command, its clean-ups, and its errors as exit statuses.
    static func finish(context: RunContext, signals: SignalHandling, json: Bool, _ body: () throws -> Void) throws {
        var failure: Error?
        holdingJSON = json
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
            reportFailure(error, status: 128 + signal, json: json)
            throw ExitCode(128 + signal)
        }
        if case .failure(let reason) = context.cancellation.reason {
            // The stall watchdog stopped the run: its reason, not the statement or child it cut short.
            let error = (failure as? ToolError).flatMap { $0.code == .interrupted ? $0 : nil } ?? ToolError(.failed, reason)
            printError(String(describing: error))
            reportFailure(error, status: 1, json: json)
            throw ExitCode(1)
        }
        guard let failure else { return printHeldJSON(failure: nil) }
        if let exit = failure as? ExitCode {
            printHeldJSON(failure: nil)
            throw exit
        }
        if let declined = failure as? ToolError, declined.code == .notConfirmed, Confirmation.declined {
            // A person who answered no made no error: one plain line, and the documented status (1).
            TerminalOutput.shared.writeLine(declined.message.prefix(1).uppercased() + declined.message.dropFirst() + ".")
        } else {
            printError(String(describing: ToolError(reporting: failure)))
        }
        reportFailure(failure, json: json)
        throw ExitCode(exitStatus(for: failure))
    }

    /// `body` (choosing, fetching and checking the archive) changes nothing: a signal that stops it
    /// says so, instead of a bare "interrupted by SIGINT".
    static func beforeAnyChange<T>(_ context: RunContext, _ what: String, nothing: String = "nothing was changed", _ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch where context.cancellation.signal != nil {
            throw ToolError(.interrupted, "\(context.cancellation.description) while \(what): \(nothing)")
        }
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

    /// `{"error": {"code", "message", "fix", "exit_status"}}` (and `step` for a pipeline step that
    /// failed); a report a failed run made carries the same object as its `error`.
    struct ErrorDocument: Encodable {
        struct Body: Encodable {
            var code: String
            var message: String
            var fix: String?
            var exitStatus: Int32
            var step: String?

            enum CodingKeys: String, CodingKey { case code, message, fix, exitStatus, step }

            /// `fix` is always there (null when there is nothing to do), for programs that read it.
            func encode(to encoder: Encoder) throws {
                var container = encoder.container(keyedBy: CodingKeys.self)
                try container.encode(code, forKey: .code)
                try container.encode(message, forKey: .message)
                try container.encode(fix, forKey: .fix)
                try container.encode(exitStatus, forKey: .exitStatus)
                try container.encodeIfPresent(step, forKey: .step)
            }
        }
        var error: Body

        init(_ error: Error, status: Int32? = nil) {
            let tool = ToolError(reporting: error)
            let code = code(of: error)
            self.error = Body(code: code.rawValue, message: tool.message, fix: tool.fix ?? Self.defaultFix(code),
                              exitStatus: status ?? Reporting.exitStatus(for: error), step: tool.step)
        }

        /// The fix of a code whose errors carry none of their own.
        static func defaultFix(_ code: ToolError.Code) -> String? {
            switch code {
            case .interrupted: "Run the command again when ready: the message says what this run left, if anything."
            default: nil
            }
        }
    }

    /// Every error as a code: the tool's own, and those of the errors that reach the CLI as they are
    /// (S3's answers, PostgreSQL's, the argument parser's).
    static func code(of error: Error) -> ToolError.Code {
        error is ValidationError ? .usage : ToolError(reporting: error).code
    }

    /// The one place exit statuses come from: the code's category (`ToolError.Code.category` groups
    /// the codes).
    static func exitStatus(for error: Error) -> Int32 {
        switch code(of: error).category {
        case .failed: 1
        case .mismatch: 2
        case .locked: 3
        case .copyFailed: 4
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
