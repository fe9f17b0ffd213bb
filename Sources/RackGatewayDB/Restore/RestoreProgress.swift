import Foundation

/// Progress counters of a restore, shared by the loader threads and the progress display.
public final class RestoreProgress: @unchecked Sendable {
    private let lock = NSLock()
    public private(set) var phase = "starting"
    public private(set) var chunksTotal = 0
    public private(set) var chunksDone = 0
    public private(set) var rows = 0
    public private(set) var bytes = 0
    public private(set) var bytesTotal = 0
    public private(set) var stepsTotal = 0
    public private(set) var stepsDone = 0
    /// Runs from the start of the restore, for the elapsed time and the rate.
    public let stopwatch = Stopwatch()

    public init() {}

    func begin(phase: String, steps: Int = 0) { lock.withLock { self.phase = phase; stepsTotal = steps; stepsDone = 0 } }
    /// The load: `chunks` data chunks and `builds` index and constraint builds, side by side.
    func beginData(chunks: Int, bytes: Int, builds: Int = 0) {
        lock.withLock { phase = "data"; chunksTotal = chunks; bytesTotal = bytes; stepsTotal = builds; stepsDone = 0 }
    }
    func chunkDone(rows: Int, bytes: Int) { lock.withLock { chunksDone += 1; self.rows += rows; self.bytes += bytes } }
    func stepDone() { lock.withLock { stepsDone += 1 } }

    /// A number that grows with any work done (for the stall watchdog).
    public func workDone() -> Int {
        lock.withLock { bytes + rows + chunksDone + stepsDone + phase.hashValue & 0xffff }
    }

    /// The line for the bar and the log. The load shows its chunks against the data's size; once
    /// every chunk is in and index and constraint builds still run, the builds have a bar of their
    /// own (a full data bar would say the restore is done). Any other phase with a count shows that
    /// count as its bar. The phase, its count and the elapsed time are the last to give way to a
    /// narrow terminal.
    public func line() -> ProgressLine {
        lock.withLock {
            let elapsed = stopwatch.elapsed
            let clock = ProgressLine.Field("\(ProgressDisplay.duration(elapsed)) elapsed", ProgressDisplay.duration(elapsed), priority: 90)
            let builds = ProgressLine.Field("builds \(stepsDone)/\(stepsTotal)", priority: 80)
            let rows = ProgressLine.Field("\(rows) rows", priority: 10)
            guard phase == "data" else {
                // The count is part of the label: it is what moves.
                let count = stepsTotal > 0 ? " \(stepsDone)/\(stepsTotal)" : ""
                let short = phase.firstIndex(of: ":").map { String(phase[..<$0]) + count }
                return ProgressLine(phase + count, short: short, fraction: stepsTotal > 0 ? Double(stepsDone) / Double(stepsTotal) : nil, [clock])
            }
            if chunksDone == chunksTotal && stepsTotal > 0 && stepsDone < stepsTotal {
                return ProgressLine("builds \(stepsDone)/\(stepsTotal)", fraction: Double(stepsDone) / Double(stepsTotal), [
                    ProgressLine.Field("data loaded (\(chunksTotal) chunks)", "data loaded", priority: 30),
                    rows, clock,
                ])
            }
            let rate = elapsed > 0 ? Double(bytes) / elapsed : 0
            var fields = [
                ProgressLine.Field("chunks \(chunksDone)/\(chunksTotal)", "\(chunksDone)/\(chunksTotal)", priority: 85),
                rows,
                ProgressLine.Field("\(ProgressDisplay.bytes(bytes)) of \(ProgressDisplay.bytes(bytesTotal))", ProgressDisplay.bytes(bytes), priority: 30),
                ProgressLine.Field("\(ProgressDisplay.bytes(Int(rate)))/s", priority: 20),
            ]
            if stepsTotal > 0 { fields.append(builds) }
            return ProgressLine("data:", fraction: bytesTotal > 0 ? Double(bytes) / Double(bytesTotal) : nil, fields + [clock])
        }
    }
}

/// One timed step of a restore, for reports.
public struct RestorePhase: Codable, Sendable {
    public var name: String
    public var seconds: Double
}
