import Dispatch
#if canImport(Glibc)
@preconcurrency import Glibc
#endif
import Foundation
import RGWPostgres

/// SIGINT (Ctrl-C), SIGTERM and SIGHUP (a closed terminal or SSH session) for one run, the same in
/// every command. The first signal stops the run's work (its running statements are cancelled,
/// its child processes terminated) and lets the command unwind on its own thread, which undoes
/// what it did (the clean-up stack, a pipeline's compensation, a restore target's mark) and exits
/// 128 + the signal's number once that is done. A second signal exits at once, printing what is
/// left undone. SIGPIPE and SIGXFSZ are ignored, so writes fail with an error instead of killing us.
public final class SignalHandling: @unchecked Sendable {
    public let context: RunContext
    private let lock = NSLock()
    private var sources: [DispatchSourceSignal] = []
    /// The signal that stopped the run, once one has.
    private var first: Int32?
    /// Set once the process is on its way out (the command's own end, or the fallback below).
    private var exiting = false

    /// How long a stopped run may take to unwind before its clean-ups are run from here and the
    /// process exits: its thread may be inside something that cannot be cancelled (a silent network).
    public static let graceSeconds = 30.0
    /// The same after the stall watchdog stopped the run.
    public static let stalledGraceSeconds = 10.0
    /// The same when nothing is left to undo (the run was waiting at a y/N question, say).
    public static let idleGraceSeconds = 2.0
    /// How long the fallback's clean-ups may take (a server that stopped answering must not keep
    /// the run from ending).
    public static let cleanupSeconds = 20.0

    public init(context: RunContext) { self.context = context }

    public func install() {
        signal(SIGPIPE, SIG_IGN)
        signal(SIGXFSZ, SIG_IGN)
        for number in [SIGINT, SIGTERM, SIGHUP] {
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { [self] in received(number) }
            source.resume()
            lock.withLock { sources.append(source) }
        }
        // A stall (the watchdog cancels the run) gets the same fallback as a signal.
        _ = context.cancellation.register { [self] in
            context.output.endBars()
            armFallback()
        }
    }

    func received(_ number: Int32) {
        let earlier = lock.withLock { () -> Int32? in
            defer { if first == nil { first = number } }
            return first
        }
        if earlier == nil {
            // No bar from here on: it would be drawn again below the message (and below `^C`).
            context.output.endBars()
            context.output.writeLine("\nrack-gateway-db: \(Cancellation.signalName(number)) received: stopping; undoing what this run can still undo (anything it cannot undo is said below); "
                                     + (number == SIGINT ? "a second Ctrl-C" : "a second signal") + " exits at once without that")
            context.cancellation.cancel(.signal(number))
            return
        }
        // A closed terminal or SSH session delivers SIGHUP more than once (the shell's and the
        // kernel's): only a person's second Ctrl-C or a second SIGTERM means "exit now".
        guard number != SIGHUP else { return }
        let left = context.cleanups.pending
        context.output.writeLine("rack-gateway-db: second signal: exiting now" + (left.isEmpty ? "" : "; left undone:\n  " + left.joined(separator: "\n  ")))
        exitNow(128 + number)
    }

    /// Unless the run ends by itself first, run what is left of its clean-ups from here and exit.
    private func armFallback() {
        // A stall is already a run that does not move: it gets less time to unwind than a signal.
        let stalled = context.cancellation.signal == nil
        let grace = context.cleanups.pending.isEmpty ? Self.idleGraceSeconds : stalled ? Self.stalledGraceSeconds : Self.graceSeconds
        DispatchQueue.global().asyncAfter(deadline: .now() + grace) { [self] in
            guard lock.withLock({ () -> Bool in
                defer { exiting = true }
                return !exiting
            }) else { return }
            let left = context.cleanups.pending
            if !left.isEmpty {
                context.output.writeLine("rack-gateway-db: the run did not stop within \(Int(grace)) s; undoing from here: " + left.joined(separator: "; "))
            }
            let group = DispatchGroup()
            group.enter()
            Thread { [context] in
                context.cancellation.cleaningUp { context.cleanups.runAll() }
                group.leave()
            }.start()
            let finished = group.wait(timeout: .now() + Self.cleanupSeconds) == .success
            let still = context.cleanups.pending
            let reason = context.cancellation.description
            // Nothing registered to undo (a download, a wait): say so, not only the signal's name.
            context.output.writeLine("rack-gateway-db: error: \(reason)" + (left.isEmpty ? "; it had nothing to undo" : "")
                                     + (finished ? "" : "\nThese clean-ups did not finish within \(Int(Self.cleanupSeconds)) s (the server or S3 does not answer): " + still.joined(separator: "; ")))
            exitNow(context.cancellation.signal.map { 128 + $0 } ?? 1)
        }
    }

    /// The command's own end: from now on the fallback leaves the exit to it. False when the
    /// fallback is already ending the process (the caller then waits for that).
    public func finishing() -> Bool {
        lock.withLock {
            defer { exiting = true }
            return !exiting
        }
    }

    /// End the process without the exit handlers: other threads may still be inside libpq or
    /// OpenSSL, whose clean-up at exit would pull memory from under them. Output is flushed first:
    /// stdout and stderr only, never `fflush(NULL)`, which waits for stdin's lock, held by a read
    /// blocked at a y/N question (Ctrl-C there then waited for Enter).
    private func exitNow(_ status: Int32) -> Never {
        fflush(stdout)
        fflush(stderr)
        _exit(status)
    }
}
