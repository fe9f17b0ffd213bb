import Foundation
import Logging

/// Walks a plan: runs each step in order and records it in the transcript; on a failure, or when
/// the run is stopped (Ctrl-C, SIGTERM, SIGHUP), compensates once along one path, on the thread
/// that ran the steps: before the point of no return every started step's undo runs, newest first;
/// past it nothing is undone, the remaining steps (the scale-up) still run, and the plan says what
/// the operator may do.
public final class PipelineExecutor: @unchecked Sendable {
    public let logger: Logger
    public let context: RunContext
    public var clock: RunClock { context.clock }
    public let state: PipelineState
    private let lock = NSLock()
    private var steps: [PipelineStep] = []
    private var started: [PlannedStep] = []
    private var compensation: PipelineAftermath?
    /// Told of each step as it starts (its name) and as it ends: a person at a terminal sees the
    /// pipeline move, not a blank screen until the end.
    public var onStepStarted: (@Sendable (String) -> Void)?
    public var onStep: (@Sendable (PipelineStep) -> Void)?

    public init(logger: Logger, context: RunContext? = nil, state: PipelineState = PipelineState()) {
        self.logger = logger
        self.state = state
        self.context = context ?? .detached(logger: logger)
    }

    public var transcript: [PipelineStep] { lock.withLock { steps } }

    /// Run `body` as the step `name` and record it (`ok` with its detail, or `failed` with the error).
    public func step<R>(_ name: String, _ body: () throws -> (R, String)) throws -> R {
        let begin = clock.now()
        let stopwatch = Stopwatch()
        logger.info("pipeline step started", metadata: ["step": "\(name)"])
        onStepStarted?(name)
        func record(_ outcome: String, _ detail: String) {
            let step = PipelineStep(name: name, startedAt: ISO8601DateFormatter().string(from: begin),
                                    seconds: stopwatch.elapsed, outcome: outcome, detail: detail)
            lock.withLock { steps.append(step) }
            onStep?(step)
        }
        // Without a terminal these lines are what a person follows, with their times (at a
        // terminal the command draws its own); the error itself is said once, in the run's message.
        let seconds = { String(format: "%.1f", stopwatch.elapsed) }
        do {
            let (result, detail) = try body()
            record("ok", detail)
            logger.info("pipeline step done", metadata: ["step": "\(name)", "seconds": "\(seconds())", "detail": "\(detail)"])
            return result
        } catch {
            let stopped = context.cancellation.isCancelled
            // A stopped step's own error (a cancelled statement, a terminated command) blames nothing.
            record(stopped ? "stopped" : "failed", stopped ? context.cancellation.description : String(describing: error))
            logger.info(stopped ? "pipeline step stopped" : "pipeline step failed", metadata: ["step": "\(name)", "seconds": "\(seconds())"])
            throw error
        }
    }

    /// `--dry-run`: the plan's steps, recorded as planned, nothing run.
    public func plan(_ plan: PipelinePlan) {
        let now = ISO8601DateFormatter().string(from: clock.now())
        lock.withLock {
            for step in plan.steps {
                steps.append(PipelineStep(name: step.name, startedAt: now, seconds: 0, outcome: "planned", detail: step.detail))
            }
        }
    }

    /// Every step in order. A failure compensates (`state.aftermath` says what was done and what is
    /// left to do) and is rethrown; a stopped run compensates the same way and throws an
    /// interruption naming the step and whether the point of no return was passed.
    public func run(_ plan: PipelinePlan) throws {
        // If this thread cannot unwind by itself, the signal path's fallback still undoes.
        // The commands each on a line of their own (indented below the pending clean-up), to paste.
        // Said as it stands when asked: only what the steps begun so far need (no DROP of a
        // database whose load never began).
        let undo = context.cleanups.push(describing: { [self] in
            let begun = Set(lock.withLock { started.map(\.name) })
            let commands = plan.undoByHand.filter { begun.contains($0.after) }.map(\.command)
            return commands.isEmpty ? nil : "undo the restore pipeline's started steps; by hand:" + commands.map { "\n    " + $0 }.joined()
        }) { [self] in
            state.aftermath = context.cancellation.cleaningUp { compensate(plan) }
        }
        defer { undo.dismiss() }
        for planned in plan.steps {
            if context.cancellation.isCancelled && !state.pastNoReturn {
                undo.run()
                throw interrupted(during: lock.withLock { started.last?.name })
            }
            lock.withLock { started.append(planned) }
            do {
                if state.pastNoReturn {
                    // Past the swap a signal does not keep the pipeline from bringing the service
                    // back: these steps are clean-up work, neither refused nor stopped.
                    try context.cancellation.cleaningUp { try step(planned.name) { ((), try planned.run(state)) } }
                } else {
                    try step(planned.name) { ((), try planned.run(state)) }
                }
            } catch is HarmlessFailure {
                continue
            } catch {
                undo.run()
                if context.cancellation.isCancelled { throw interrupted(during: planned.name) }
                throw error
            }
        }
        // Every step ran (a signal past the swap stopped none of them): the restore succeeded, and
        // the run's end says the signal came after the work was done.
    }

    /// What the one compensation left (the same when asked again): past the point of no return
    /// the plan's stranded state; before it every started step undone, newest first, and said in
    /// the order a person reads it: the service, the live database, the new one.
    func compensate(_ plan: PipelinePlan) -> PipelineAftermath {
        if let done = lock.withLock({ compensation }) { return done }
        let begun = lock.withLock { started }
        let result: PipelineAftermath
        if state.pastNoReturn {
            result = plan.stranded(state, begun.last?.name ?? "")
        } else {
            var undone: [String: PipelineAftermath] = [:]
            for step in begun.reversed() {
                guard let undo = step.undo else { continue }
                // On screen while it runs (a v3 scale back takes 15 s and more): "...  undo scale down".
                onStepStarted?("undo \(step.name)")
                undone[step.name] = undo(state)
            }
            let said = plan.steps.map { step in
                begun.contains { $0.name == step.name } ? undone[step.name] ?? PipelineAftermath()
                    : PipelineAftermath(facts: step.notBegun.map { [$0] } ?? [])
            }
            // The scale-down's (the service) first, then the live database, then the rest.
            result = (said.first ?? PipelineAftermath()) + PipelineAftermath(facts: [plan.untouched]) + said.dropFirst().reduce(PipelineAftermath(), +)
        }
        lock.withLock { compensation = result }
        return result
    }

    /// The error of a stopped pipeline: where it stopped (nil: before any step), and what that left.
    func interrupted(during step: String?) -> ToolError {
        let past = state.pastNoReturn
        let place = step.map { " during \($0)" } ?? " before the first step"
        let side = past ? ", after the point of no return (the live database was changed): nothing was undone; what to do is below"
                        : ", before the point of no return: what it had done was undone"
        logger.info("pipeline stopped", metadata: ["step": "\(step ?? "-")", "past point of no return": "\(past)"])
        return ToolError(.interrupted, "\(context.cancellation.description)\(place)\(side)")
    }
}
