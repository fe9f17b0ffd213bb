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
        return String(decoding: try encoder.encode(value), as: UTF8.self)
    }

    static func printError(_ text: String) {
        TerminalOutput.shared.writeLine("rack-gateway-db: error: \(text)")
    }

    /// Run a command body; expected errors print one clear message (and under `--json`, unless the
    /// command printed its report already, a JSON error document on stdout, as restic does) and exit
    /// with their status.
    static func run(json: Bool = CommandLine.arguments.contains("--json"), _ body: () throws -> Void) throws {
        do {
            try body()
        } catch let exit as ExitCode {
            throw exit
        } catch {
            printError(String(describing: error))
            // A command that printed its report (a failed drill or pipeline) has said it all there.
            if json && !printedJSON { try? printJSON(ErrorDocument(error)) }
            throw ExitCode(exitStatus(for: error))
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

        init(_ error: Error) {
            let tool = error as? ToolError
            self.error = Body(code: code(of: error).rawValue, message: tool?.message ?? String(describing: error),
                              fix: tool?.fix, exitStatus: Reporting.exitStatus(for: error))
        }
    }

    /// Every error as a code: the tool's own, and the few others that reach the CLI.
    static func code(of error: Error) -> ToolError.Code {
        switch error {
        case let error as ToolError: error.code
        case let error as PostgresError: error.kind == .malformedConnectionString ? .usage : .failed
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
