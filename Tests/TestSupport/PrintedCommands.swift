import Foundation
import RackGatewayDB

/// The commands the tool prints for a person to paste (each on a line of its own, indented, starting
/// with `psql`, `convox` or `rack-gateway-db`, after any `NAME=value` environment assignments), run
/// in `sh` as printed.
public enum PrintedCommands {
    /// The command lines in `text`, in order.
    public static func extract(_ text: String) -> [String] {
        text.split(separator: "\n").compactMap { line in
            let command = line.trimmingCharacters(in: .whitespaces)
            let program = command.replacing(/^([A-Z_][A-Z0-9_]*=\S* )+/, with: "")
            guard line.hasPrefix("  "), ["psql ", "convox ", "rack-gateway-db "].contains(where: { program.hasPrefix($0) }) else { return nil }
            return command
        }
    }

    /// The commands under the heading line `heading` (up to the next line that is not indented).
    public static func under(_ heading: String, in text: String) -> [String] {
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        guard let start = lines.firstIndex(where: { $0.hasSuffix(heading) }) else { return [] }
        return extract(lines[(start + 1)...].prefix { $0.hasPrefix("  ") }.joined(separator: "\n"))
    }

    /// Run `command` with `/bin/sh -c` in a clean environment plus `environment` (PGPASSWORD, a
    /// PATH with the fake convox and the built binary), as a person pastes it.
    public static func run(_ command: String, environment: [String: String]) throws -> ChildProcess.Output {
        try ChildProcess(executable: "/bin/sh", arguments: ["-c", command],
                         environment: CLI.baseEnvironment().merging(environment) { $1 }, inheritEnvironment: false).run()
    }

    /// A PATH with the built `rack-gateway-db` (and `before`, the fake convox's directory) first.
    public static func path(before: String? = nil) -> String {
        let binary = URL(fileURLWithPath: CLI.executable).deletingLastPathComponent().path
        return [before, binary, ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"].compactMap { $0 }.joined(separator: ":")
    }
}
