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

    /// A `--json` report (snake_case keys, as every report and log the tool writes).
    public static func decode<T: Decodable>(_ type: T.Type, _ text: String) throws -> T {
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        return try decoder.decode(type, from: Data(text.utf8))
    }

    @discardableResult
    public static func run(_ arguments: [String], environment: [String: String] = [:], stdin: [UInt8]? = nil) throws -> Result {
        let output = try ChildProcess(executable: executable, arguments: arguments,
                                      environment: baseEnvironment().merging(environment) { _, new in new },
                                      inheritEnvironment: false).run(stdin: stdin)
        return Result(status: output.status, stdout: output.stdout, stderr: output.stderr)
    }
}
