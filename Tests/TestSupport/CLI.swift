import Foundation
import RackGatewayDB

/// Runs the built `rack-gateway-db` binary the way a user would, with a clean environment: no
/// `RGW_*`, `DATABASE_URL` or `PG*` variables leak in from the machine running the tests.
public enum CLI {
    public struct Result: Sendable, CustomStringConvertible {
        public var status: Int32
        public var stdout: String
        public var stderr: String
        public var output: String { stdout + stderr }
        public var description: String { "exit \(status)\nstdout:\n\(stdout)\nstderr:\n\(stderr)" }
    }

    /// The binary next to the test bundle (SwiftPM builds both into the same directory).
    public static var executable: String {
        let bundle = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        return bundle.appendingPathComponent("rack-gateway-db").path
    }

    public static func baseEnvironment() -> [String: String] {
        ProcessInfo.processInfo.environment.filter { key, _ in
            !(key.hasPrefix("RGW_") || key.hasPrefix("PG") || key == "DATABASE_URL" || key.hasPrefix("RESET_RACK") || key.hasPrefix("AWS_")
              || key == "DEV_MODE" || key.hasPrefix("DISABLE_DATABASE"))
        }
    }

    /// A `--json` report (snake_case keys, as every report and log the tool writes). A failed run's
    /// report carries its failure as an `error` object (code, message, fix, exit_status); it is read
    /// as its message, the string the logs (drills.jsonl, restores.jsonl) keep in `error`.
    public static func decode<T: Decodable>(_ type: T.Type, _ text: String) throws -> T {
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        var data = Data(text.utf8)
        if var object = try? JSONSerialization.jsonObject(with: data) as? [String: Any], let error = object["error"] as? [String: Any] {
            object["error"] = error["message"]
            data = try JSONSerialization.data(withJSONObject: object)
        }
        return try decoder.decode(type, from: data)
    }

    @discardableResult
    public static func run(_ arguments: [String], environment: [String: String] = [:], stdin: [UInt8]? = nil) throws -> Result {
        let output = try ChildProcess(executable: executable, arguments: arguments,
                                      environment: baseEnvironment().merging(environment) { _, new in new },
                                      inheritEnvironment: false).run(stdin: stdin)
        return Result(status: output.status, stdout: output.stdout, stderr: output.stderr)
    }
}

/// The built binary running in the background, as a person's terminal would have it: its output
/// read while it runs, so a test can wait for a step and send it a signal there.
public final class RunningCLI: @unchecked Sendable {
    public let process = Process()
    let directory: String
    var stdoutPath: String { directory + "/stdout" }
    var stderrPath: String { directory + "/stderr" }

    public init(_ arguments: [String], environment: [String: String] = [:]) throws {
        directory = try TestArchives.temporaryDirectory()
        FileManager.default.createFile(atPath: directory + "/stdout", contents: nil)
        FileManager.default.createFile(atPath: directory + "/stderr", contents: nil)
        process.executableURL = URL(fileURLWithPath: CLI.executable)
        process.arguments = arguments
        process.environment = CLI.baseEnvironment().merging(environment) { _, new in new }
        process.standardInput = FileHandle(forReadingAtPath: "/dev/null")
        process.standardOutput = FileHandle(forWritingAtPath: stdoutPath)
        process.standardError = FileHandle(forWritingAtPath: stderrPath)
        try process.run()
    }

    deinit {
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        try? FileManager.default.removeItem(atPath: directory)
    }

    public var pid: Int32 { process.processIdentifier }
    public var stderr: String { (try? String(contentsOfFile: stderrPath, encoding: .utf8)) ?? "" }

    /// Wait until stderr contains `text` (true), or the process ends or `seconds` pass (false).
    @discardableResult
    public func waitFor(_ text: String, seconds: Double = 60) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if stderr.contains(text) { return true }
            if !process.isRunning { return stderr.contains(text) }
            Thread.sleep(forTimeInterval: 0.02)
        }
        return false
    }

    public func signal(_ number: Int32) { kill(process.processIdentifier, number) }

    /// Wait for the end (SIGKILL after `seconds`); its exit status and output.
    public func finish(seconds: Double = 120) -> CLI.Result {
        let deadline = Date().addingTimeInterval(seconds)
        while process.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.02) }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
        let status = process.terminationReason == .uncaughtSignal ? 128 + process.terminationStatus : process.terminationStatus
        return CLI.Result(status: status, stdout: (try? String(contentsOfFile: stdoutPath, encoding: .utf8)) ?? "", stderr: stderr)
    }
}
