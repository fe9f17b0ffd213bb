import Foundation
import RackGatewayDB

/// Runs helper programs for the tests (initdb, pg_ctl, psql, pg_dump).
public enum Shell {
    @discardableResult
    public static func run(asPostgres: Bool = false, _ executable: String, _ arguments: [String],
                           environment: [String: String] = [:], stdin: [UInt8]? = nil) throws -> ChildProcess.Output {
        if asPostgres {
            return try ChildProcess(executable: "/usr/sbin/runuser", arguments: ["-u", "postgres", "--", executable] + arguments,
                                    environment: environment).run(stdin: stdin)
        }
        return try ChildProcess(executable: executable, arguments: arguments, environment: environment).run(stdin: stdin)
    }

    /// Run with stdout and stderr appended to `logFile` instead of pipes: for programs such as
    /// `pg_ctl start` whose children (the postmaster) outlive them and would hold a pipe open.
    public static func runLogged(asPostgres: Bool = false, _ executable: String, _ arguments: [String], logFile: String) throws {
        let output = try run(asPostgres: asPostgres, "/bin/sh", ["-c", #"log=$1; shift; exec "$@" >>"$log" 2>&1 </dev/null"#, "sh", logFile, executable] + arguments)
        guard output.status == 0 else {
            let log = (try? String(contentsOfFile: logFile, encoding: .utf8)) ?? ""
            throw ToolError(.failed, "\(executable) \(arguments.last ?? "") exited \(output.status): \(log.suffix(3000))")
        }
    }

    /// Run and return stdout; a non-zero exit throws with stderr.
    @discardableResult
    public static func runChecked(asPostgres: Bool = false, _ executable: String, _ arguments: [String],
                                  environment: [String: String] = [:], stdin: [UInt8]? = nil) throws -> String {
        let output = try run(asPostgres: asPostgres, executable, arguments, environment: environment, stdin: stdin)
        guard output.status == 0 else {
            throw ToolError(.failed, "\(executable) \(arguments.prefix(3).joined(separator: " ")) exited \(output.status): \(output.stderr)\(output.stdout.suffix(2000))")
        }
        return output.stdout
    }
}
