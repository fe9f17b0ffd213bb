import Foundation

/// The PostgreSQL client programs this tool runs (`pg_dump`, `psql`, `pg_restore`) and their versions.
public struct PostgresTools: Sendable {
    public struct Tool: Sendable {
        public var path: String
        /// `15.18`, as the program prints it.
        public var version: String
        public var majorVersion: Int
    }

    /// Find `pg_dump` on PATH (or in `$RGW_PG_BIN_DIR`) and read its version.
    public static func pgDump(environment: [String: String] = ProcessInfo.processInfo.environment) -> Result<Tool, ToolError> {
        locate("pg_dump", environment: environment)
    }

    public static func locate(_ name: String, environment: [String: String] = ProcessInfo.processInfo.environment) -> Result<Tool, ToolError> {
        let path: String
        do {
            if let directory = environment["RGW_PG_BIN_DIR"], !directory.isEmpty {
                path = try ChildProcess.locate(name, path: directory)
            } else {
                path = try ChildProcess.locate(name, path: environment["PATH"])
            }
        } catch let error as ToolError {
            return .failure(error)
        } catch {
            return .failure(ToolError(.failed, "\(name) not found: \(error)"))
        }
        do {
            let output = try ChildProcess(executable: path, arguments: ["--version"]).run()
            guard output.status == 0, let version = parseVersion(output.stdout) else {
                return .failure(ToolError(.failed, "\(path) --version did not print a version: \(output.stdout)\(output.stderr)"))
            }
            return .success(Tool(path: path, version: version.text, majorVersion: version.major))
        } catch let error as ToolError {
            return .failure(error)
        } catch {
            return .failure(ToolError(.failed, "cannot run \(path): \(error)"))
        }
    }

    /// `pg_dump (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)` → ("15.18", 15).
    static func parseVersion(_ text: String) -> (text: String, major: Int)? {
        guard let range = text.range(of: "(PostgreSQL) ") else { return nil }
        let version = text[range.upperBound...].prefix { $0.isNumber || $0 == "." }
        guard let major = Int(version.prefix { $0.isNumber }) else { return nil }
        return (String(version), major)
    }
}
