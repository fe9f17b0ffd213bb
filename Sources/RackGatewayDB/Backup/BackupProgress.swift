import Foundation

/// Progress counters shared by the pipeline threads and the progress reporter.
public final class BackupProgress: @unchecked Sendable {
    private let lock = NSLock()
    public private(set) var tablesTotal = 0
    public private(set) var tablesDone = 0
    public private(set) var rows = 0
    public private(set) var bytesIn = 0
    public private(set) var bytesOut = 0
    public private(set) var estimatedBytes = 0
    /// Estimated on-disk bytes of finished tables, to turn `estimatedBytes` into a fraction.
    public private(set) var estimatedDone = 0
    /// Runs from the start of the backup, for the elapsed time.
    public let stopwatch = Stopwatch()

    func begin(tables: Int, estimatedBytes: Int) {
        lock.withLock { tablesTotal = tables; self.estimatedBytes = estimatedBytes }
    }

    func add(rows: Int, bytesIn: Int) { lock.withLock { self.rows += rows; self.bytesIn += bytesIn } }
    func add(bytesOut: Int) { lock.withLock { self.bytesOut += bytesOut } }
    func tableDone(estimated: Int) { lock.withLock { tablesDone += 1; estimatedDone += estimated } }
    /// Every table is in; what the run does now (the upload of an archive smaller than a part
    /// happens here, whole), in place of an ETA of 0 s.
    private var finishing: String?
    func finishing(_ what: String) { lock.withLock { finishing = what } }

    public struct Snapshot: Sendable {
        public var tablesTotal, tablesDone, rows, bytesIn, bytesOut: Int
        public var elapsed: Double
        /// 0...1, from the catalog's size estimates.
        public var fraction: Double
    }

    public func snapshot() -> Snapshot {
        lock.withLock {
            // Finished tables' estimated size, or the COPY text read so far against the whole
            // estimate when that says more (one big table would otherwise show nothing done until
            // it ends); the on-disk estimate and COPY text sizes are close for these tables.
            let done = max(estimatedDone, bytesIn)
            let fraction = estimatedBytes > 0 ? min(tablesDone == tablesTotal ? 1 : 0.99, Double(done) / Double(estimatedBytes))
                : (tablesTotal > 0 ? Double(tablesDone) / Double(tablesTotal) : 0)
            return Snapshot(tablesTotal: tablesTotal, tablesDone: tablesDone, rows: rows, bytesIn: bytesIn, bytesOut: bytesOut,
                            elapsed: stopwatch.elapsed, fraction: fraction)
        }
    }

    /// The line for the bar and the log: tables done is the count that moves, then the elapsed
    /// time and the estimate of what is left; the sizes and the rate give way first to a narrow
    /// terminal.
    public func line() -> ProgressLine {
        let p = snapshot()
        let rate = p.elapsed > 0 ? Double(p.bytesIn) / p.elapsed : 0
        let eta = p.fraction > 0.01 ? ProgressDisplay.duration(p.elapsed / p.fraction - p.elapsed) : "?"
        return ProgressLine("backup:", fraction: p.fraction, [
            ProgressLine.Field("tables \(p.tablesDone)/\(p.tablesTotal)", "\(p.tablesDone)/\(p.tablesTotal)", priority: 85),
            ProgressLine.Field("\(p.rows) rows", priority: 10),
            ProgressLine.Field("\(ProgressDisplay.bytes(p.bytesIn)) read", priority: 30),
            ProgressLine.Field("\(ProgressDisplay.bytes(p.bytesOut)) written", priority: 25),
            ProgressLine.Field("\(ProgressDisplay.bytes(Int(rate)))/s", priority: 20),
            ProgressLine.Field("\(ProgressDisplay.duration(p.elapsed)) elapsed", ProgressDisplay.duration(p.elapsed), priority: 90),
            lock.withLock { finishing }.map { ProgressLine.Field($0, String($0.prefix { $0 != " " }), priority: 70) } ?? ProgressLine.Field("ETA \(eta)", priority: 70),
        ])
    }
}
