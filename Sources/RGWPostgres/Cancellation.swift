import Foundation

/// One run's "stop now": a signal (or the stall watchdog) cancels it once; every piece of work
/// registered with it is stopped at that moment (a running statement cancelled, a child process
/// terminated), work registered before then refuses to go on, and new work is refused. Clean-up
/// work (inside `cleaningUp`: undoing what the run did, a pipeline's steps past its point of no
/// return) is never stopped and never refused: it is how a run unwinds and still cleans up.
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

    private static let cleaningKey = "rack-gateway-db.cleaning-up"

    /// Run `body` as clean-up work on this thread: what it starts (statements, child processes)
    /// is neither refused nor stopped by this cancellation.
    public func cleaningUp<R>(_ body: () throws -> R) rethrows -> R {
        let dictionary = Thread.current.threadDictionary
        let outer = dictionary[Self.cleaningKey]
        dictionary[Self.cleaningKey] = true
        defer { dictionary[Self.cleaningKey] = outer }
        return try body()
    }

    /// Whether this thread is doing clean-up work (inside `cleaningUp`).
    public var isCleaningUp: Bool { Thread.current.threadDictionary[Self.cleaningKey] != nil }

    /// Register a piece of work that starts now: nil (do not register) inside `cleaningUp`; throws
    /// when the run is stopped already, so no new work starts after Ctrl-C.
    public func begin(_ what: String, stop: @escaping @Sendable () -> Void) throws -> Int? {
        guard !isCleaningUp else { return nil }
        guard let id = register(stop) else { throw CancellationError(description: "\(description): \(what) was not started") }
        return id
    }

    public var reason: Reason? { lock.withLock { _reason } }
    public var isCancelled: Bool { reason != nil }

    /// The signal that stopped the run, if a signal did.
    public var signal: Int32? {
        if case .signal(let number) = reason { return number }
        return nil
    }

    /// Stop the run: returns false when it was stopped already. Every registered stopper runs once,
    /// each on a thread of its own and not waited for: a cancel request to a server that stopped
    /// answering blocks, and must not keep the others (or the caller) waiting.
    @discardableResult
    public func cancel(_ reason: Reason) -> Bool {
        let running: [@Sendable () -> Void]? = lock.withLock {
            guard _reason == nil else { return nil }
            _reason = reason
            defer { stoppers = [:] }
            return Array(stoppers.values)
        }
        guard let running else { return false }
        for stop in running { Thread { stop() }.start() }
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

/// Work refused because its run was stopped.
public struct CancellationError: Error, CustomStringConvertible, Sendable {
    public var description: String
}
