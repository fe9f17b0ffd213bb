import Foundation

/// What the steps of one pipeline run share: whether the point of no return is passed, and the
/// facts the report carries.
public final class PipelineState: @unchecked Sendable {
    private let lock = NSLock()
    private var _pastNoReturn = false
    private var _recovery: [String] = []
    private var _safetyBackup: String?
    private var _previousDatabase: String?
    private var _finalCount: Int?

    public init() {}

    /// From now on the live database is changed: failures no longer undo, they strand.
    public func passNoReturn() { lock.withLock { _pastNoReturn = true } }
    public var pastNoReturn: Bool { lock.withLock { _pastNoReturn } }
    /// Commands that undo the restore, or recover from where it stopped.
    public var recovery: [String] {
        get { lock.withLock { _recovery } }
        set { lock.withLock { _recovery = newValue } }
    }
    public var safetyBackup: String? {
        get { lock.withLock { _safetyBackup } }
        set { lock.withLock { _safetyBackup = newValue } }
    }
    public var previousDatabase: String? {
        get { lock.withLock { _previousDatabase } }
        set { lock.withLock { _previousDatabase = newValue } }
    }
    public var finalCount: Int? {
        get { lock.withLock { _finalCount } }
        set { lock.withLock { _finalCount = newValue } }
    }
}

/// One step of a plan, as a value: what `--dry-run` prints, what the executor runs, and what undoes
/// it when a later step fails (or Ctrl-C comes) before the point of no return.
public struct PlannedStep: Sendable {
    public var name: String
    public var detail: String
    /// The step that changes the live database; it calls `state.passNoReturn()` the moment it does.
    public var pointOfNoReturn = false
    let run: @Sendable (PipelineState) throws -> String
    /// Undo what the step did (safe when it ran only partly); recovery lines for the operator.
    var undo: (@Sendable (PipelineState) -> [String])?
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

    /// `psql` on the server's maintenance database, as a person would paste it.
    var psql: String { serverURL.map { "psql '\($0)'" } ?? "psql -d postgres" }
    var liveURLText: String { liveURL.map { "'\($0)'" } ?? "URL_OF_\(live)" }

    func scaleCommand(_ count: Int) -> String { services.commandLine(["scale", service, "--count", String(count)]) }
    /// The recovery line when the service could not be scaled back.
    var scaleByHand: String { "Scale the service up by hand: \(scaleCommand(count))" }
}

/// The Convox restore pipeline as a list of value steps (docs/design.md, the restore pipeline).
public struct PipelinePlan: Sendable {
    public var steps: [PlannedStep]
    /// What a failure before the point of no return says first.
    var untouched: String
    /// Past the point of no return: what the operator must do, given the failed step's name.
    var stranded: @Sendable (PipelineState, String) -> [String]
    /// What undoes the plan by hand before its point of no return (said when a second Ctrl-C leaves
    /// the undo to the operator).
    var undoByHand: [String] = []

    /// Restore into a new database, then swap names with the live one.
    public static func swap(_ facts: PipelineFacts) -> PipelinePlan {
        let (live, restored, previous) = (facts.live, facts.restoreName, facts.previousName)
        let load = PlannedStep(name: "load", detail: "restore \(facts.archive) into \(restored), verify fingerprints",
                               run: { _ in try facts.database.load(into: restored) },
                               undo: { _ in facts.database.drop(restored) ? ["The incomplete \(restored) was dropped."] : [] })
        var swap = PlannedStep(name: "swap", detail: "ALTER DATABASE \(SQL.identifier(live)) RENAME TO \(SQL.identifier(previous)); ALTER DATABASE \(SQL.identifier(restored)) RENAME TO \(SQL.identifier(live))") { state in
            // Nothing may have come back up meanwhile (a deploy undoes a scale-down).
            let status = try facts.services.appStatus()
            guard status == "running" else { throw ToolError(.failed, "the app is \(status) just before the swap (a deploy?)") }
            let again = try facts.services.processes(service: facts.service)
            guard again.isEmpty else { throw ToolError(.failed, "\(again.count) process(es) of \(facts.service) run again just before the swap (a deploy?)") }
            let terminated = try facts.database.terminateSessions(of: live)
            try facts.database.swap(live: live, restored: restored, previous: previous)
            state.passNoReturn()
            state.previousDatabase = previous
            state.recovery = [
                "To go back: \(facts.scaleCommand(0))",
                "\(facts.psql) -c 'ALTER DATABASE \(SQL.identifier(live)) RENAME TO \(SQL.identifier(restored))' -c 'ALTER DATABASE \(SQL.identifier(previous)) RENAME TO \(SQL.identifier(live))'",
                facts.scaleCommand(facts.count),
                "When satisfied, drop the previous database: \(facts.psql) -c 'DROP DATABASE \(SQL.identifier(previous))'",
            ]
            return "\(live) is the restored copy; the previous database is \(previous); \(terminated)"
        }
        swap.pointOfNoReturn = true
        let steps = stopService(facts) + [load, migrate(facts, restored), swap, scaleUp(facts)]
        var plan = PipelinePlan(steps: steps, untouched: "The live database \(live) is untouched.") { state, _ in
            // The service first: it is down, and that is what hurts now; the way back after it.
            [facts.scaleByHand, "The restore itself finished: \(live) is the restored copy, \(previous) the previous one."] + state.recovery
        }
        plan.undoByHand = ["\(facts.psql) -c 'DROP DATABASE IF EXISTS \(SQL.identifier(restored)) WITH (FORCE)'", facts.scaleCommand(facts.count)]
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
            state.recovery = ["To go back to the state before the restore: rack-gateway-db restore \(state.safetyBackup ?? "SAFETY_BACKUP") --clean --yes --database-url \(facts.liveURLText), with the service at 0"]
            return detail
        }
        load.pointOfNoReturn = true
        let steps = stopService(facts) + [safety, load, migrate(facts, live), scaleUp(facts)]
        var plan = PipelinePlan(steps: steps, untouched: "The live database \(live) is untouched.") { state, failed in
            guard failed != "scale up" else {
                return [facts.scaleByHand, "The restore itself finished: \(live) is the restored copy."] + state.recovery
            }
            return ["The service \(facts.service) stays at 0: \(live) was dropped and its restore did not finish.",
                    "Restore the safety backup: rack-gateway-db restore \(state.safetyBackup ?? "SAFETY_BACKUP") --clean --yes --database-url \(facts.liveURLText)",
                    "Then: \(facts.scaleCommand(facts.count))"]
        }
        plan.undoByHand = [facts.scaleCommand(facts.count)]
        return plan
    }

    /// Scale to 0, wait until no process is listed, end the remaining sessions.
    static func stopService(_ facts: PipelineFacts) -> [PlannedStep] {
        let down = PlannedStep(name: "scale down", detail: facts.scaleCommand(0), run: { _ in
            guard facts.count > 0 else { return "\(facts.service) already at 0; left alone" }
            try facts.services.scale(facts.service, count: 0)
            return "\(facts.service) scaled to 0"
        }, undo: { state in
            guard facts.count > 0 else { return [] }
            return scaleBack(facts, state).reached ? ["\(facts.service) was scaled back to \(facts.count)."] : [facts.scaleByHand]
        })
        let wait = PlannedStep(name: "wait for processes",
                               detail: "wait until `\(facts.services.commandLine(["ps", "-s", facts.service]))` lists no process of \(facts.service)") { _ in
            let deadline = facts.clock.now().addingTimeInterval(facts.stopTimeout)
            var polls = 0
            while true {
                polls += 1
                let running = try facts.services.processes(service: facts.service)
                if running.isEmpty { return "no process of \(facts.service) after \(polls) poll\(polls == 1 ? "" : "s")" }
                guard facts.clock.now() < deadline else {
                    throw ToolError(.failed, "\(running.count) process(es) of \(facts.service) still listed after \(Int(facts.stopTimeout)) s: \(running.map { "\($0.id) (\($0.status))" }.joined(separator: ", "))")
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
