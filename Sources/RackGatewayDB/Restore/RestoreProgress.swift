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

    /// One line of text and the fraction of the data loaded.
    public func line() -> (text: String, fraction: Double?) {
        lock.withLock {
            let elapsed = stopwatch.elapsed
            var text = phase
            if phase == "data" {
                text += ": "
                let rate = elapsed > 0 ? Double(bytes) / elapsed : 0
                text += "chunks \(chunksDone)/\(chunksTotal), \(rows) rows, \(ProgressDisplay.bytes(bytes)) of \(ProgressDisplay.bytes(bytesTotal)), \(ProgressDisplay.bytes(Int(rate)))/s"
                if stepsTotal > 0 { text += ", builds \(stepsDone)/\(stepsTotal)" }
            } else if stepsTotal > 0 {
                text += " \(stepsDone)/\(stepsTotal)"
            }
            text += ", \(ProgressDisplay.duration(elapsed)) elapsed"
            let fraction = bytesTotal > 0 ? Double(bytes) / Double(bytesTotal) : nil
            return (text, fraction)
        }
    }
}

/// One timed step of a restore, for reports.
public struct RestorePhase: Codable, Sendable {
    public var name: String
    public var seconds: Double
}
