import Foundation

/// Elapsed time on the monotonic clock, for durations and timings: a wall-clock jump (NTP, a VM
/// resumed) must not stretch, shorten or turn negative what a run measures. What a run records as
/// the time something happened comes from the run's `RunClock` instead.
public struct Stopwatch: Sendable {
    private let started: ContinuousClock.Instant

    /// Started now.
    public init() { started = .now }

    /// Seconds since it started.
    public var elapsed: Double { Self.seconds(started.duration(to: .now)) }

    static func seconds(_ duration: Duration) -> Double {
        let (seconds, attoseconds) = duration.components
        return Double(seconds) + Double(attoseconds) / 1e18
    }
}

/// A time limit on the monotonic clock (timeouts, waits): a wall-clock jump neither fires nor
/// stalls it.
public struct Deadline: Sendable {
    private let instant: ContinuousClock.Instant

    /// `seconds` from now.
    public init(after seconds: Double) { instant = ContinuousClock.now.advanced(by: .seconds(max(0, seconds))) }

    public var hasPassed: Bool { ContinuousClock.now >= instant }

    /// Seconds left; 0 once it has passed.
    public var remaining: Double { max(0, Stopwatch.seconds(ContinuousClock.now.duration(to: instant))) }
}
