import Dispatch
import Foundation
import Logging
import RGWPostgres

/// What one run of a command works with, made once by the CLI and passed down: its logger, its
/// clock, its environment, the clean-up stack, the output writer, and the cancellation that a
/// signal (or the stall watchdog) triggers. Core code reads time, the environment and "stop now"
/// from here, never from the system's wall clock, the process or a static of its own (durations and
/// timeouts use the monotonic clock: `Stopwatch`, `Deadline`).
public final class RunContext: @unchecked Sendable {
    public let logger: Logger
    public let clock: RunClock
    public let environment: [String: String]
    public let cleanups: CleanupStack
    public let output: TerminalOutput
    public let cancellation: Cancellation

    public init(logger: Logger, environment: [String: String] = ProcessInfo.processInfo.environment,
                clock: RunClock? = nil, output: TerminalOutput = .shared, cancellation: Cancellation = Cancellation()) {
        self.logger = logger
        self.environment = environment
        self.cancellation = cancellation
        self.clock = clock ?? SystemClock(cancellation: cancellation)
        self.cleanups = CleanupStack()
        self.output = output
    }

    /// A context for code that runs outside a command (tests, a runner inside another runner's
    /// clean-up): its own cancellation, which no signal triggers.
    public static func detached(logger: Logger = ToolLogHandler.logger()) -> RunContext { RunContext(logger: logger) }

    /// `settings` whose statements belong to this run (cancelled when it is stopped).
    public func connections(_ settings: ConnectionSettings) -> ConnectionSettings { settings.cancelled(by: cancellation) }

    /// Throw when the run was stopped: a loop that does work between statements calls it.
    public func checkStopped() throws {
        if cancellation.isCancelled { throw interruptedError() }
    }

    /// The error a stopped run unwinds with.
    public func interruptedError(during what: String? = nil) -> ToolError {
        ToolError(.interrupted, cancellation.description + (what.map { " during \($0)" } ?? ""))
    }
}

/// Time, for the run and its waits; a test's clock does not sleep.
public protocol RunClock: Sendable {
    func now() -> Date
    /// Wait `seconds`; a real clock wakes early and throws when the run is stopped.
    func sleep(_ seconds: Double) throws
    /// What stops the run's waits and long transfers early (nil: nothing does).
    var cancellation: Cancellation? { get }
}

extension RunClock {
    public var cancellation: Cancellation? { nil }
}

public struct SystemClock: RunClock {
    public let cancellation: Cancellation?

    public init(cancellation: Cancellation? = nil) { self.cancellation = cancellation }

    public func now() -> Date { Date() }

    public func sleep(_ seconds: Double) throws {
        let until = Deadline(after: seconds)
        while !until.hasPassed {
            if let cancellation, cancellation.isCancelled {
                throw ToolError(.interrupted, cancellation.description)
            }
            Thread.sleep(forTimeInterval: min(0.05, until.remaining))
        }
    }
}

/// What a run must undo if it ends early (an unfinished archive to discard, a scratch database to
/// drop, a service to scale back up), newest first. The code that pushed an entry runs or dismisses
/// it on its own path; the run's end runs what is left. Each entry runs once: a second caller (the
/// signal path's fallback, say) waits for the first to finish instead of skipping it.
public final class CleanupStack: @unchecked Sendable {
    private let lock = NSLock()
    private var entries: [Entry] = []

    public init() {}

    public final class Entry: @unchecked Sendable {
        /// What is left to undo, as it stands when asked (nil: nothing any more).
        private let describe: @Sendable () -> String?
        public var what: String { describe() ?? "" }
        private let action: @Sendable () -> Void
        private let condition = NSCondition()
        private enum State { case pending, running, done }
        private var state = State.pending
        weak var stack: CleanupStack?

        init(_ describe: @escaping @Sendable () -> String?, _ action: @escaping @Sendable () -> Void) {
            self.describe = describe
            self.action = action
        }

        /// Undo now (once); a caller that comes second waits until the first has finished.
        public func run() {
            condition.lock()
            switch state {
            case .pending:
                state = .running
                condition.unlock()
                action()
                condition.lock()
                state = .done
                condition.broadcast()
                condition.unlock()
                stack?.remove(self)
            case .running:
                while state != .done { condition.wait() }
                condition.unlock()
            case .done:
                condition.unlock()
            }
        }

        /// The work finished: nothing to undo.
        public func dismiss() {
            condition.lock()
            if state == .pending { state = .done }
            condition.unlock()
            stack?.remove(self)
        }

        var isPending: Bool { condition.lock(); defer { condition.unlock() }; return state != .done }
        /// Pending with something left to say (an entry whose work another thread has finished
        /// meanwhile says nothing).
        var left: String? { isPending ? describe() : nil }
    }

    /// Register what to undo; run or dismiss the entry when the work ends.
    public func push(_ what: String, _ action: @escaping @Sendable () -> Void) -> Entry {
        push(describing: { what }, action)
    }

    /// An entry whose description is made when it is asked for (what is left changes as it is undone).
    @discardableResult
    public func push(describing describe: @escaping @Sendable () -> String?, _ action: @escaping @Sendable () -> Void) -> Entry {
        let entry = Entry(describe, action)
        entry.stack = self
        lock.withLock { entries.append(entry) }
        return entry
    }

    func remove(_ entry: Entry) { lock.withLock { entries.removeAll { $0 === entry } } }

    /// What is still to be undone, newest first.
    public var pending: [String] { lock.withLock { entries.reversed() }.compactMap(\.left) }

    /// Run every entry left, newest first.
    public func runAll() {
        while let entry = lock.withLock({ entries.last }) {
            entry.run()
            remove(entry)
        }
    }
}
