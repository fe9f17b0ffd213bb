import Foundation
import Logging

/// Long work shows a bar on a TTY (stderr, redrawn in place through `TerminalOutput`, so lines
/// written meanwhile appear above it) and a log line every few seconds otherwise (cron, CI). `line`
/// is asked for the current text, which starts with its label, and the fraction done.
public final class ProgressDisplay: @unchecked Sendable {
    private let line: @Sendable () -> (text: String, fraction: Double?)
    private let logger: Logger
    private let interval: Double
    private let isTTY: Bool
    private let lock = NSLock()
    private var stopped = false
    private let done = DispatchSemaphore(value: 0)
    private let finished = DispatchSemaphore(value: 0)

    public init(logger: Logger, enabled: Bool = true, logEvery seconds: Double = 5,
                line: @escaping @Sendable () -> (text: String, fraction: Double?)) {
        self.line = line
        self.logger = logger
        self.isTTY = enabled && TerminalOutput.shared.isTTY
        self.interval = isTTY ? 0.25 : seconds
        guard enabled else { stopped = true; return }
        let thread = Thread { [self] in self.loop() }
        thread.name = "progress"
        thread.start()
    }

    private func loop() {
        while true {
            if done.wait(timeout: .now() + interval) == .success { break }
            let (text, fraction) = line()
            if isTTY {
                let width = 24
                let filled = Int((fraction ?? 0) * Double(width))
                let bar = fraction.map { _ in "[" + String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled) + "] " } ?? ""
                TerminalOutput.shared.showBar(bar + text)
            } else {
                logger.info("\(text)")
            }
        }
        if isTTY { TerminalOutput.shared.clearBar() }
        finished.signal()
    }

    public func stop() {
        let wasStopped = lock.withLock { defer { stopped = true }; return stopped }
        guard !wasStopped else { return }
        done.signal()
        finished.wait()
    }

    public static func bytes(_ count: Int) -> String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB"]
        var value = Double(count)
        var unit = 0
        while value >= 1024 && unit < units.count - 1 { value /= 1024; unit += 1 }
        return unit == 0 ? "\(count) B" : String(format: "%.1f %@", value, units[unit])
    }

    public static func duration(_ seconds: Double) -> String {
        guard seconds.isFinite, seconds >= 0 else { return "?" }
        let total = Int(seconds.rounded())
        return total >= 3600 ? String(format: "%dh%02dm", total / 3600, total % 3600 / 60)
            : total >= 60 ? String(format: "%dm%02ds", total / 60, total % 60) : "\(total)s"
    }
}
