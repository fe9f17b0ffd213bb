import Foundation

/// What a run left, for the operator: the state things are in now (one fact a line: the service,
/// the live database, the new or previous database) and the commands to run, each group with what
/// it is for. Printed once, as one block (a failure's) or before the final line (a success's).
public struct PipelineAftermath: Codable, Sendable, Equatable {
    public var facts: [String] = []
    public var commands: [PipelineCommands] = []

    public init(facts: [String] = [], commands: [PipelineCommands] = []) {
        self.facts = facts
        self.commands = commands
    }

    public static func + (a: PipelineAftermath, b: PipelineAftermath) -> PipelineAftermath {
        PipelineAftermath(facts: a.facts + b.facts, commands: a.commands + b.commands)
    }

    /// The block as text: the facts on one line after `Now:`, then `advice` (what a failure's own
    /// error says to do), then each group of commands under what it is for, one command a line,
    /// indented (ready to paste).
    public func lines(advice: String? = nil) -> [String] {
        var lines: [String] = facts.isEmpty ? [] : ["Now: " + facts.joined(separator: " ")]
        if let advice { lines.append(advice) }
        for group in commands {
            lines.append("\(group.purpose):")
            lines += group.commands.map { "  " + $0 }
        }
        return lines
    }
}

/// Commands that do one thing together (go back to the previous database: three commands), in order.
public struct PipelineCommands: Codable, Sendable, Equatable {
    /// What they are for (`To bring gateway back up`).
    public var purpose: String
    /// Each a shell command line, quoted, with host, port, user and database, never the password.
    public var commands: [String]

    public init(_ purpose: String, _ commands: [String]) {
        self.purpose = purpose
        self.commands = commands
    }
}

/// Where the wait for the service's processes is: what is still listed, for how long, of how long.
public struct ProcessWait: Sendable {
    public var service: String
    public var listed: [String]
    public var timeout: Double
    public let stopwatch = Stopwatch()
}

/// What the steps of one pipeline run share: whether the point of no return is passed, and the
/// facts the report carries; each read and written under one lock (`state.safetyBackup`, ...).
@dynamicMemberLookup
public final class PipelineState: @unchecked Sendable {
    public struct Facts: Sendable {
        /// From then on the live database is changed: failures no longer undo, they strand.
        public fileprivate(set) var pastNoReturn = false
        /// What the run left and what to run: the way back after a success, what was undone or is
        /// left to do after a failure.
        public var aftermath = PipelineAftermath()
        public var safetyBackup: String?
        public var previousDatabase: String?
        public var finalCount: Int?
        /// The wait for processes under way (for the progress display).
        public var wait: ProcessWait?
        /// The progress of the load under way (for the progress display's bar).
        public var load: RestoreProgress?
    }

    private let lock = NSLock()
    private var facts = Facts()

    public init() {}

    public subscript<Value>(dynamicMember key: KeyPath<Facts, Value>) -> Value { lock.withLock { facts[keyPath: key] } }

    public subscript<Value>(dynamicMember key: WritableKeyPath<Facts, Value>) -> Value {
        get { lock.withLock { facts[keyPath: key] } }
        set { lock.withLock { facts[keyPath: key] = newValue } }
    }

    /// From now on the live database is changed: failures no longer undo, they strand.
    public func passNoReturn() { lock.withLock { facts.pastNoReturn = true } }
}

/// One step of a plan, as a value: what `--dry-run` prints, what the executor runs, and what undoes
/// it when a later step fails (or Ctrl-C comes) before the point of no return.
public struct PlannedStep: Sendable {
    public var name: String
    public var detail: String
    /// The step that changes the live database; it calls `state.passNoReturn()` the moment it does.
    public var pointOfNoReturn = false
    let run: @Sendable (PipelineState) throws -> String
    /// Undo what the step did (safe when it ran only partly); what that left, for the operator.
    var undo: (@Sendable (PipelineState) -> PipelineAftermath)?
    /// What the operator is told when a run is undone before this step began (the scale-down: the
    /// service was not scaled; the load: no new database was created).
    var notBegun: String?
}

/// A step that failed without harm (the scale-up's exit was a failure, but the count is right):
/// it stays failed in the transcript and the run goes on.
struct HarmlessFailure: Error, CustomStringConvertible {
    var underlying: Error
    var description: String { "\(underlying) (harmless: the desired state was reached)" }
}

/// The facts a plan is made from, and the parts its steps act through.
public struct PipelineFacts: Sendable {
    public var archive: String
    public var service: String
    public var live: String
    /// Swap mode: the new database, and the name the previous live one gets.
    public var restoreName: String
    public var previousName: String
    /// The service's desired count before the restore.
    public var count: Int
    /// What the migrate step will do (preflight decided it).
    public var migration: String
    public var safetyDirectory: String
    public var stopTimeout: Double
    public var pollInterval: Double
    public var services: ServiceControl
    public var database: PipelineDatabase
    public var clock: RunClock
    /// The server and the live database as password-free URLs, for the commands the plan prints
    /// (the password comes from PGPASSWORD or ~/.pgpass); nil in tests.
    public var serverURL: String? = nil
    public var liveURL: String? = nil
    /// RGW_VERIFY_KEY is set in the run's environment, and so most likely in the shell a printed
    /// command is pasted into: the safety backup is unsigned, so its restore clears the variable.
    public var verifyKeyInEnvironment = false

    /// `psql` on the server's maintenance database running `statements`, as a person would paste it.
    func psql(_ statements: String...) -> String { ShellCommand.psql(serverURL, statements) }

    func scaleCommand(_ count: Int) -> String { services.commandLine(["scale", service, "--count", String(count)]) }
    /// Restore the safety backup over the live database (the service at 0 meanwhile).
    /// The safety backup is this run's own unsigned archive: with RGW_VERIFY_KEY in the environment
    /// the command clears it (`RGW_VERIFY_KEY= ...`), or pasted it would be refused as unsigned.
    func restoreSafetyBackup(_ state: PipelineState) -> String {
        (verifyKeyInEnvironment ? "RGW_VERIFY_KEY= " : "")
            + ShellCommand.line(["rack-gateway-db", "restore", state.safetyBackup ?? "SAFETY_BACKUP", "--clean", "--yes", "--database-url", liveURL ?? "URL_OF_\(live)"])
    }
    /// The commands when the service could not be scaled back.
    var scaleByHand: PipelineCommands { PipelineCommands("To bring \(service) back up", [scaleCommand(count)]) }
    /// The service's state when its scale-back failed.
    func serviceDown(_ state: PipelineState) -> String {
        "\(service) is at \(state.finalCount.map(String.init) ?? "an unknown count"), not back at \(count)."
    }
}

/// The Convox restore pipeline as a list of value steps (docs/design.md, the restore pipeline).
public struct PipelinePlan: Sendable {
    public var steps: [PlannedStep]
    /// What a failure before the point of no return says of the live database.
    var untouched: String
    /// Past the point of no return: what the run left and what the operator must do, given the failed step's name.
    var stranded: @Sendable (PipelineState, String) -> PipelineAftermath
    /// What undoes the plan by hand before its point of no return (said when a second Ctrl-C leaves
    /// the undo to the operator).
    var undoByHand: [(after: String, command: String)] = []

    /// Restore into a new database, then swap names with the live one.
    public static func swap(_ facts: PipelineFacts) -> PipelinePlan {
        let (live, restored, previous) = (facts.live, facts.restoreName, facts.previousName)
        var load = PlannedStep(name: "load", detail: "restore \(facts.archive) into \(restored), verify fingerprints",
                               run: { _ in try facts.database.load(into: restored) },
                               undo: { _ in
                                   facts.database.drop(restored) ? PipelineAftermath(facts: ["The incomplete \(restored) was dropped."])
                                       : PipelineAftermath(facts: ["The incomplete \(restored) could not be dropped."],
                                                           commands: [PipelineCommands("To drop it", [facts.psql("DROP DATABASE IF EXISTS \(SQL.identifier(restored)) WITH (FORCE)")])])
                               })
        load.notBegun = "No new database was created."
        var swap = PlannedStep(name: "swap", detail: "ALTER DATABASE \(SQL.identifier(live)) RENAME TO \(SQL.identifier(previous)); ALTER DATABASE \(SQL.identifier(restored)) RENAME TO \(SQL.identifier(live))") { state in
            // Nothing may have come back up meanwhile (a deploy undoes a scale-down).
            let status = try facts.services.appStatus()
            guard status == "running" else { throw ToolError(.failed, "the app is \(status) just before the swap (a deploy?)") }
            let again = try facts.services.processes(service: facts.service)
            guard again.isEmpty else { throw ToolError(.failed, "\(Plural.of(again.count, "process", plural: "processes")) of \(facts.service) run again just before the swap (a deploy?)") }
            let terminated = try facts.database.terminateSessions(of: live)
            try facts.database.swap(live: live, restored: restored, previous: previous)
            state.passNoReturn()
            state.previousDatabase = previous
            state.aftermath = PipelineAftermath(commands: [
                PipelineCommands("To go back to the previous database", [
                    facts.scaleCommand(0),
                    // One statement string, so one transaction: both renames or neither. Sessions
                    // still on the live database (pods still stopping after `scale`) are ended
                    // first, waiting up to 10 s for each to go, as the tool's own swap does.
                    facts.psql("SELECT count(pg_catalog.pg_terminate_backend(pid, 10000)) FROM pg_catalog.pg_stat_activity "
                               + "WHERE datname = \(SQL.literal(live)) AND pid <> pg_catalog.pg_backend_pid(); "
                               + "ALTER DATABASE \(SQL.identifier(live)) RENAME TO \(SQL.identifier(restored)); "
                               + "ALTER DATABASE \(SQL.identifier(previous)) RENAME TO \(SQL.identifier(live))"),
                    facts.scaleCommand(facts.count),
                ]),
                PipelineCommands("When satisfied, drop the previous database", [facts.psql("DROP DATABASE \(SQL.identifier(previous))")]),
            ])
            return "\(live) is the restored copy; the previous database is \(previous); \(terminated)"
        }
        swap.pointOfNoReturn = true
        let steps = stopService(facts) + [load, migrate(facts, restored), swap, scaleUp(facts)]
        var plan = PipelinePlan(steps: steps, untouched: "The live database \(live) is untouched.") { state, _ in
            // The service first: it is down, and that is what hurts now; the way back after it.
            PipelineAftermath(facts: [facts.serviceDown(state), "The restore itself finished: \(live) is the restored copy, \(previous) the previous one."],
                              commands: [facts.scaleByHand]) + state.aftermath
        }
        plan.undoByHand = [("load", facts.psql("DROP DATABASE IF EXISTS \(SQL.identifier(restored)) WITH (FORCE)")), ("scale down", facts.scaleCommand(facts.count))]
        return plan
    }

    /// A safety backup of the live database, then a --clean restore over it.
    public static func inPlace(_ facts: PipelineFacts) -> PipelinePlan {
        let live = facts.live
        let safety = PlannedStep(name: "safety backup", detail: "back up \(live) into \(facts.safetyDirectory) (the safety backup)") { state in
            let backup = try facts.database.safetyBackup()
            state.safetyBackup = backup.file
            return backup.detail
        }
        var load = PlannedStep(name: "load", detail: "drop and recreate \(live), restore \(facts.archive) into it, verify fingerprints") { state in
            let detail = try facts.database.loadInPlace(dropped: { state.passNoReturn() })
            state.aftermath = PipelineAftermath(commands: [
                PipelineCommands("To go back to the state before the restore (the safety backup)",
                                 [facts.scaleCommand(0), facts.restoreSafetyBackup(state), facts.scaleCommand(facts.count)]),
            ])
            return detail
        }
        load.pointOfNoReturn = true
        let steps = stopService(facts) + [safety, load, migrate(facts, live), scaleUp(facts)]
        var plan = PipelinePlan(steps: steps, untouched: "The live database \(live) is untouched.") { state, failed in
            guard failed != "scale up" else {
                return PipelineAftermath(facts: [facts.serviceDown(state), "The restore itself finished: \(live) is the restored copy."],
                                         commands: [facts.scaleByHand]) + state.aftermath
            }
            return PipelineAftermath(
                facts: ["The service \(facts.service) stays at 0.",
                        failed == "migrate" ? "The live database \(live) holds the restored copy, not migrated (the migrate step failed), and is marked FAILED (COMMENT ON DATABASE) so that check fails on it."
                            : "The live database \(live) was dropped and its restore did not finish.",
                        "The safety backup is \(state.safetyBackup ?? "SAFETY_BACKUP")."],
                commands: [PipelineCommands("To restore the safety backup, then bring \(facts.service) back up",
                                            [facts.restoreSafetyBackup(state), facts.scaleCommand(facts.count)])])
        }
        plan.undoByHand = [("scale down", facts.scaleCommand(facts.count))]
        return plan
    }

    /// Scale to 0, wait until no process is listed, end the remaining sessions.
    static func stopService(_ facts: PipelineFacts) -> [PlannedStep] {
        var down = PlannedStep(name: "scale down", detail: facts.scaleCommand(0), run: { _ in
            guard facts.count > 0 else { return "\(facts.service) already at 0; left alone" }
            try facts.services.scale(facts.service, count: 0)
            return "\(facts.service) scaled to 0"
        }, undo: { state in
            guard facts.count > 0 else { return PipelineAftermath(facts: ["\(facts.service) was at 0 and left alone."]) }
            return scaleBack(facts, state).reached ? PipelineAftermath(facts: ["\(facts.service) was scaled back to \(facts.count)."])
                : PipelineAftermath(facts: [facts.serviceDown(state)], commands: [facts.scaleByHand])
        })
        down.notBegun = "\(facts.service) was not scaled."
        let wait = PlannedStep(name: "wait for processes",
                               detail: "wait until `\(facts.services.commandLine(["ps", "-s", facts.service]))` lists no process of \(facts.service) (at most \(Int(facts.stopTimeout)) s)") { state in
            let deadline = facts.clock.now().addingTimeInterval(facts.stopTimeout)
            var polls = 0
            var wait = ProcessWait(service: facts.service, listed: [], timeout: facts.stopTimeout)
            defer { state.wait = nil }
            while true {
                polls += 1
                let running = try facts.services.processes(service: facts.service)
                if running.isEmpty { return "no process of \(facts.service) after \(Plural.of(polls, "poll"))" }
                wait.listed = running.map { "\($0.id) (\($0.status))" }
                state.wait = wait
                guard facts.clock.now() < deadline else {
                    throw ToolError(.failed, "\(Plural.of(running.count, "process", plural: "processes")) of \(facts.service) still listed after \(Int(facts.stopTimeout)) s: \(wait.listed.joined(separator: ", "))",
                                    fix: "See why they do not stop (\(facts.services.commandLine(["ps", "-s", facts.service]))), or give them longer with --stop-timeout SECONDS.")
                }
                try facts.clock.sleep(facts.pollInterval)
            }
        }
        let terminate = PlannedStep(name: "terminate sessions", detail: "terminate the remaining sessions on \(facts.live)") { _ in
            try facts.database.terminateSessions(of: facts.live)
        }
        return [down, wait, terminate]
    }

    static func migrate(_ facts: PipelineFacts, _ database: String) -> PlannedStep {
        PlannedStep(name: "migrate", detail: facts.migration) { _ in try facts.database.migrate(database) }
    }

    static func scaleUp(_ facts: PipelineFacts) -> PlannedStep {
        PlannedStep(name: "scale up", detail: facts.scaleCommand(facts.count)) { state in
            guard facts.count > 0 else {
                state.finalCount = 0
                return "\(facts.service) left at 0, as it was"
            }
            let outcome = scaleBack(facts, state)
            if let error = outcome.error { throw outcome.reached ? HarmlessFailure(underlying: error) : error }
            return "\(facts.service) scaled back to \(facts.count)"
        }
    }

    /// Scale back to the remembered count; after a failed exit, read the count again (the exit may
    /// have failed after setting it). Whether the count is right, and the exit's error if any.
    static func scaleBack(_ facts: PipelineFacts, _ state: PipelineState) -> (reached: Bool, error: Error?) {
        do {
            try facts.services.scale(facts.service, count: facts.count)
            state.finalCount = facts.count
            return (true, nil)
        } catch {
            let now = try? facts.services.services().first { $0.name == facts.service }?.count
            state.finalCount = now
            return (now == facts.count, error)
        }
    }
}
