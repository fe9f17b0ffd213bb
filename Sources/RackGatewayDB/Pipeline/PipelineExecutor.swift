import Foundation
import Logging

/// Walks a plan: runs each step in order and records it in the transcript; on a failure, or on
/// Ctrl-C, compensates once along one path: before the point of no return every started step's
/// undo runs, newest first; past it nothing is undone and the plan says what the operator must do.
public final class PipelineExecutor: @unchecked Sendable {
    public let logger: Logger
    public let clock: PipelineClock
    public let state = PipelineState()
    private let lock = NSLock()
    private var steps: [PipelineStep] = []
    private var started: [PlannedStep] = []
    private var compensated = false

    public init(logger: Logger, clock: PipelineClock = SystemClock()) {
        self.logger = logger
        self.clock = clock
    }

    public var transcript: [PipelineStep] { lock.withLock { steps } }

    /// Run `body` as the step `name` and record it (`ok` with its detail, or `failed` with the error).
    public func step<R>(_ name: String, _ body: () throws -> (R, String)) throws -> R {
        let begin = clock.now()
        logger.info("pipeline step started", metadata: ["step": "\(name)"])
        func record(_ outcome: String, _ detail: String) {
            let step = PipelineStep(name: name, startedAt: ISO8601DateFormatter().string(from: begin),
                                    seconds: clock.now().timeIntervalSince(begin), outcome: outcome, detail: detail)
            lock.withLock { steps.append(step) }
        }
        do {
            let (result, detail) = try body()
            record("ok", detail)
            logger.info("pipeline step done", metadata: ["step": "\(name)", "detail": "\(detail)"])
            return result
        } catch {
            record("failed", String(describing: error))
            logger.error("pipeline step failed", metadata: ["step": "\(name)", "error": "\(error)"])
            throw error
        }
    }

    /// `--dry-run`: the plan's steps, recorded as planned, nothing run.
    public func plan(_ plan: PipelinePlan) {
        let now = ISO8601DateFormatter().string(from: clock.now())
        lock.withLock {
            for (index, step) in plan.steps.enumerated() {
                steps.append(PipelineStep(name: "plan \(index + 1)", startedAt: now, seconds: 0, outcome: "planned", detail: step.detail))
            }
        }
    }

    /// Every step in order. A failure compensates (`state.recovery` says what was done and what is
    /// left to do) and is rethrown. Ctrl-C meanwhile compensates the same way before the run exits.
    public func run(_ plan: PipelinePlan) throws {
        Interruption.onInterrupt("pipeline") { [self] in interrupted(plan) }
        defer { Interruption.removeOnInterrupt("pipeline") }
        for planned in plan.steps {
            lock.withLock { started.append(planned) }
            do {
                try step(planned.name) { ((), try planned.run(state)) }
            } catch is HarmlessFailure {
                continue
            } catch {
                if let lines = compensate(plan) { state.recovery = lines }
                throw error
            }
        }
    }

    /// The recovery lines of the one compensation; nil when it has already run.
    func compensate(_ plan: PipelinePlan) -> [String]? {
        let (first, begun) = lock.withLock { () -> (Bool, [PlannedStep]) in
            defer { compensated = true }
            return (!compensated, started)
        }
        guard first else { return nil }
        if state.pastNoReturn { return plan.stranded(state, begun.last?.name ?? "") }
        return [plan.untouched] + begun.reversed().flatMap { $0.undo?(state) ?? [] }
    }

    func interrupted(_ plan: PipelinePlan) {
        let at = lock.withLock { started.last?.name } ?? "the start"
        guard let lines = compensate(plan) else { return }
        logger.error("interrupted", metadata: ["step": "\(at)", "past point of no return": "\(state.pastNoReturn)"])
        let text = "rack-gateway-db: interrupted during \(at)" + (state.pastNoReturn ? ", after the point of no return" : "")
            + (lines.isEmpty ? "" : ":\n  " + lines.joined(separator: "\n  "))
        TerminalOutput.shared.writeLine(text)
    }
}
