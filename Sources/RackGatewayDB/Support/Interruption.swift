import Dispatch
import Foundation

/// Ctrl-C and SIGTERM: run the registered clean-ups (an unfinished archive's writer discards its
/// `.partial` file or multipart upload), then exit 130 (SIGINT) or 143 (SIGTERM), so an interrupted
/// backup never leaves debris under any name a reader would trust. SIGPIPE and SIGXFSZ are ignored so writes fail with an error instead of killing us.
public enum Interruption {
    private static let lock = NSLock()
    nonisolated(unsafe) private static var sources: [DispatchSourceSignal] = []

    public static func install() {
        signal(SIGPIPE, SIG_IGN)
        signal(SIGXFSZ, SIG_IGN)
        for (number, status) in [(SIGINT, Int32(130)), (SIGTERM, Int32(143))] {
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler {
                end(status: status, stopChildren: false, message: "\nrack-gateway-db: interrupted; removed unfinished files")
            }
            source.resume()
            lock.withLock { sources.append(source) }
        }
    }

    /// End the run now as Ctrl-C would (clean-ups run) but as a failure:
    /// `message` on stderr, exit `status`. For the stall watchdog.
    public static func fail(_ message: String, status: Int32 = 1) -> Never {
        // Children too (a hung pg_dump): on Ctrl-C they get the terminal's SIGINT themselves.
        end(status: status, stopChildren: true, message: "rack-gateway-db: error: \(message)")
    }

    /// Clean-ups run (bounded), `message` on stderr, then the process ends
    /// without the exit handlers: other threads are still at work (a COPY, a probe inside libpq), and
    /// library clean-up at exit (OpenSSL's) would pull memory from under them. Output is flushed
    /// first; the kernel closes files and sockets.
    static func end(status: Int32, stopChildren: Bool, message: String) -> Never {
        let (actions, running) = lock.withLock { (cleanups, children) }
        // Process groups of their own (a migrate command) get no terminal SIGINT: always stopped.
        for child in running where stopChildren || child < 0 { kill(child, SIGTERM) }
        let finished = runCleanups(Array(actions.values))
        FileHandle.standardError.write(Data("\(message)\(finished ? "" : Self.unfinishedCleanups)\n".utf8))
        fflush(nil)
        _exit(status)
    }

    /// How long clean-ups (an aborted upload, a dropped scratch database) may take before the run
    /// exits anyway: a server or network that stopped answering must not keep it from ending.
    public static let cleanupSeconds = 20.0

    static let unfinishedCleanups = "\nSome clean-ups did not finish within \(Int(cleanupSeconds)) s (the server or S3 does not answer): look for a leftover rgw_drill_* scratch database or an open multipart upload once it answers again."

    /// Run the clean-ups side by side; whether all ended in time.
    static func runCleanups(_ actions: [@Sendable () -> Void]) -> Bool {
        let group = DispatchGroup()
        for action in actions {
            group.enter()
            Thread {
                action()
                group.leave()
            }.start()
        }
        return group.wait(timeout: .now() + cleanupSeconds) == .success
    }

    nonisolated(unsafe) private static var cleanups: [String: @Sendable () -> Void] = [:]

    /// Run `action` before exiting on Ctrl-C or SIGTERM (a drill drops its scratch database).
    public static func onInterrupt(_ key: String, _ action: @escaping @Sendable () -> Void) { lock.withLock { cleanups[key] = action } }
    public static func removeOnInterrupt(_ key: String) { lock.withLock { _ = cleanups.removeValue(forKey: key) } }

    nonisolated(unsafe) private static var children: Set<pid_t> = []

    /// Child processes running now, stopped by `fail`.
    public static func registerChild(_ pid: pid_t) { lock.withLock { _ = children.insert(pid) } }
    public static func unregisterChild(_ pid: pid_t) { lock.withLock { _ = children.remove(pid) } }

}
