import Foundation
import RGWPostgres

/// Fails a run that has stopped moving instead of letting it hang "in progress" forever: a server
/// that stopped answering, a network path that went silent without a reset, a lock that never comes.
/// Every second it reads `probe` (a counter of work done: bytes, chunks, steps, and for restores
/// what the server's own progress views say); when the value has not changed for `timeout`
/// seconds, the run ends as if interrupted (unfinished files removed, uploads aborted, scratch
/// databases dropped) with exit 1 and a message naming what stalled.
public final class StallWatchdog: @unchecked Sendable {
    let timeout: Double
    let what: String
    let probe: @Sendable () -> Int?
    /// The run to stop when nothing moves.
    let cancellation: Cancellation
    private let lock = NSLock()
    private var stopped = false

    public init(timeout: Double, what: String, cancellation: Cancellation, probe: @escaping @Sendable () -> Int?) {
        self.timeout = timeout
        self.what = what
        self.cancellation = cancellation
        self.probe = probe
    }

    private let threads = DispatchGroup()

    public func start() {
        guard timeout > 0 else { return }
        // The probe runs on a thread of its own: a probe stuck on a silent network must not keep
        // the watchdog from firing (its last answer just stops changing).
        let latest = LatestValue()
        let interval = min(1, timeout / 4)
        spawnThread("stall probe", group: threads) { [self] in
            while !lock.withLock({ stopped }) {
                latest.set(probe())
                pause(interval)
            }
        }
        spawnThread("stall watchdog", group: threads) { [self] in
            var last: Int? = nil
            var lastChange = Stopwatch()
            while !lock.withLock({ stopped }) {
                pause(interval)
                let value = latest.get()
                if let value, value != last {
                    last = value
                    lastChange = Stopwatch()
                } else if lastChange.elapsed >= timeout, !lock.withLock({ stopped }) {
                    cancellation.cancel(.failure("\(what) stalled: nothing moved for \(ProgressDisplay.duration(timeout)) (no data read or written, no server work); it was stopped and cleaned up\nCheck that the database server and the network (and S3) answer, and for locks held by other sessions (rack-gateway-db maint connections); --stall-timeout sets the limit."))
                    return
                }
            }
        }
    }

    /// Sleep up to `seconds`, waking early when stopped.
    private func pause(_ seconds: Double) {
        let until = Deadline(after: seconds)
        while !until.hasPassed && !lock.withLock({ stopped }) { Thread.sleep(forTimeInterval: 0.05) }
    }

    final class LatestValue: @unchecked Sendable {
        private let lock = NSLock()
        private var value: Int?
        func set(_ new: Int?) { lock.withLock { value = new } }
        /// nil until the first answer, and after a probe that failed (which counts as no change).
        func get() -> Int? { lock.withLock { value } }
    }

    /// Stop watching, and wait (a few seconds at most) for a probe under way to end: the process
    /// must not exit while a probe is inside libpq (OpenSSL's exit handlers would pull libcrypto
    /// from under a SCRAM handshake: a crash CI caught).
    public func stop() {
        lock.withLock { stopped = true }
        _ = threads.wait(timeout: .now() + 10)
    }

    /// Work the server is doing for the connections whose application name starts with
    /// `applicationPrefix`: COPY bytes, index build blocks and tuples, ANALYZE blocks, plus one for
    /// each such backend running (not waiting on a lock or on us); nil when the server cannot be asked.
    public final class ServerProbe: @unchecked Sendable {
        let settings: ConnectionSettings
        let applicationPrefix: String
        private var connection: Connection?
        private var ticks = 0
        private let lock = NSLock()

        public init(settings: ConnectionSettings, applicationPrefix: String) {
            self.settings = settings
            self.applicationPrefix = applicationPrefix
        }

        public func value() -> Int? {
            lock.withLock {
                do {
                    if connection == nil { connection = try settings.open(.watchdog) }
                    let row = try connection!.query("""
                        WITH run AS (SELECT pid, state, wait_event_type FROM pg_catalog.pg_stat_activity WHERE application_name LIKE $1 || '%' AND pid <> pg_catalog.pg_backend_pid())
                        SELECT coalesce((SELECT sum(p.bytes_processed) FROM pg_catalog.pg_stat_progress_copy p JOIN run USING (pid)), 0)
                             + coalesce((SELECT sum(p.blocks_done + p.tuples_done) FROM pg_catalog.pg_stat_progress_create_index p JOIN run USING (pid)), 0)
                             + coalesce((SELECT sum(p.sample_blks_scanned) FROM pg_catalog.pg_stat_progress_analyze p JOIN run USING (pid)), 0),
                               (SELECT count(*) FROM run WHERE state = 'active' AND wait_event_type IS DISTINCT FROM 'Lock'
                                                        AND wait_event_type IS DISTINCT FROM 'Client')
                        """, [applicationPrefix]).rows.first
                    if let busy = row?[1].flatMap(Int.init), busy > 0 { ticks += 1 }
                    return (row?[0].flatMap(Int.init) ?? 0) + ticks
                } catch {
                    connection = nil
                    return nil
                }
            }
        }
    }
}
