import Foundation
import Logging
import RGWPostgres

/// `--migrate-command CMD`: the application's own migrate (`rack-gateway-api migrate`, `convox run
/// admin ...`), run through `/bin/sh -c` against one database.
///
/// The child gets `DATABASE_URL` and `RGW_DATABASE_URL` naming that database without a password, and
/// the password in `PGPASSWORD`: never in its argv. It runs in a process group of its own, ended after
/// `timeout` seconds (and by the stall watchdog or Ctrl-C).
public struct ApplicationMigrateCommand: Sendable {
    public var command: String
    public var timeout: Double

    public init(command: String, timeout: Double = 1800) {
        self.command = command
        self.timeout = timeout
    }

    public struct Outcome: Sendable {
        public var ok: Bool
        public var status: Int32
        public var seconds: Double
        /// The command's output (stdout then stderr), at most its last 4000 characters.
        public var output: String
        public var timedOut: Bool

        /// For a report line: what happened and the output's tail.
        public var summary: String {
            let what = timedOut ? "timed out after \(String(format: "%.0f", seconds)) s and was stopped"
                : (status == 0 ? "exited 0 in \(String(format: "%.1f", seconds)) s"
                   : status == 127 ? "exited 127 (command not found)" : "exited \(status)")
            let tail = output.split(separator: "\n").suffix(6).joined(separator: " | ")
            return tail.isEmpty ? what : "\(what); output: \(tail)"
        }
    }

    /// The child's environment for `target`: this process's, with the database variables replaced.
    public func environment(for target: ConnectionSettings, base: [String: String]) -> [String: String] {
        var environment = base.filter { key, _ in !key.hasPrefix("PG") }
        environment["DATABASE_URL"] = target.urlWithoutPassword
        environment["RGW_DATABASE_URL"] = target.urlWithoutPassword
        if let password = target.explicitPassword ?? base["PGPASSWORD"] { environment["PGPASSWORD"] = password }
        for (key, value) in base where ["PGSSLMODE", "PGSSLROOTCERT", "PGPASSFILE", "PGCONNECT_TIMEOUT"].contains(key) {
            environment[key] = value
        }
        return environment
    }

    /// Run it; a non-zero exit, a timeout or a command that cannot start is an outcome that is not ok.
    public func run(target: ConnectionSettings, base: [String: String] = ProcessInfo.processInfo.environment, logger: Logger) -> Outcome {
        let stopwatch = Stopwatch()
        logger.info("running the application's migrate command", metadata: ["database": "\(target.description)"])
        var child = ChildProcess(executable: "/bin/sh", arguments: ["-c", command],
                                 environment: environment(for: target, base: base), inheritEnvironment: false)
        child.timeout = timeout
        child.ownProcessGroup = true
        child.cancellation = target.cancellation
        let seconds = { stopwatch.elapsed }
        do {
            let output = try child.run()
            var text = output.stdout + output.stderr
            if let password = target.explicitPassword, !password.isEmpty {
                text = text.replacingOccurrences(of: password, with: "***")
            }
            if text.count > 4000 { text = "..." + text.suffix(4000) }
            return Outcome(ok: output.status == 0 && !output.timedOut, status: output.status, seconds: seconds(),
                           output: text.trimmingCharacters(in: .whitespacesAndNewlines), timedOut: output.timedOut)
        } catch {
            return Outcome(ok: false, status: -1, seconds: seconds(), output: String(describing: error), timedOut: false)
        }
    }
}
