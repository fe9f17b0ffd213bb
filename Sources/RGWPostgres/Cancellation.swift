import Foundation

/// One run's "stop now": a signal (or the stall watchdog) cancels it once; every piece of work
/// registered with it is stopped at that moment (a running statement cancelled, a child process
/// terminated), and work registered before then refuses to go on. Work begun after it (the clean-ups
/// that undo what the run did) is not touched: it is how a run unwinds and still cleans up.
///
/// The CLI makes one per run (inside its run context) and hands it down with the connection
/// settings; nothing here is process-global.
public final class Cancellation: @unchecked Sendable {
    private let lock = NSLock()
    private var _reason: Reason?
    private var stoppers: [Int: @Sendable () -> Void] = [:]
    private var nextID = 0

    /// Why a run was stopped: a signal's number, or a failure of its own (the stall watchdog).
    public enum Reason: Sendable, Equatable {
        case signal(Int32)
        case failure(String)
    }

    public init() {}

    public var reason: Reason? { lock.withLock { _reason } }
    public var isCancelled: Bool { reason != nil }

    /// The signal that stopped the run, if a signal did.
    public var signal: Int32? {
        if case .signal(let number) = reason { return number }
        return nil
    }

    /// Stop the run: returns false when it was stopped already. Every registered stopper runs once,
    /// on this thread.
    @discardableResult
    public func cancel(_ reason: Reason) -> Bool {
        let running: [@Sendable () -> Void]? = lock.withLock {
            guard _reason == nil else { return nil }
            _reason = reason
            defer { stoppers = [:] }
            return Array(stoppers.values)
        }
        guard let running else { return false }
        for stop in running { stop() }
        return true
    }

    /// Register how to stop a piece of work; nil when the run is cancelled already (the work should
    /// not start). Unregister when the work ends.
    public func register(_ stop: @escaping @Sendable () -> Void) -> Int? {
        lock.withLock {
            guard _reason == nil else { return nil }
            nextID += 1
            stoppers[nextID] = stop
            return nextID
        }
    }

    public func unregister(_ id: Int?) {
        guard let id else { return }
        lock.withLock { _ = stoppers.removeValue(forKey: id) }
    }

    /// What a stopped run's work says when it is asked to go on.
    public var description: String {
        switch reason {
        case .signal(let number): "interrupted by \(Self.signalName(number))"
        case .failure(let text): text
        case nil: "not stopped"
        }
    }

    public static func signalName(_ number: Int32) -> String {
        switch number {
        case SIGINT: "SIGINT (Ctrl-C)"
        case SIGTERM: "SIGTERM"
        case SIGHUP: "SIGHUP (the terminal or SSH session closed)"
        default: "signal \(number)"
        }
    }
}
