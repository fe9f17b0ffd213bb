import Foundation
import Logging

/// The one writer of stderr while a progress bar may be on it: a line written here first clears the
/// bar, then the bar is drawn again below it, so a log line, a warning or a prompt never lands in the
/// middle of a bar (issue 20). Without a terminal on stderr it writes lines as they come.
public final class TerminalOutput: @unchecked Sendable {
    public static let shared = TerminalOutput()

    /// stderr is a terminal that can redraw a line (where the bar is drawn and log lines are for a
    /// person); `TERM=dumb` cannot, and gets what a pipe gets.
    public let isTTY: Bool
    private let lock = NSLock()
    /// The bar on the screen now, if any.
    private var bar: String?
    /// While a prompt waits for an answer the bar is not redrawn.
    private var paused = false

    init() { isTTY = isatty(2) == 1 && ProcessInfo.processInfo.environment["TERM"] != "dumb" }

    /// write(2), errors ignored: after SIGHUP the terminal is gone, and a run that is still undoing
    /// its work must not die of a failed write (FileHandle's write traps on one).
    private func write(_ text: String) {
        var bytes = Array(text.utf8)[...]
        while !bytes.isEmpty {
            let written = bytes.withUnsafeBytes { Glibc.write(2, $0.baseAddress, $0.count) }
            if written < 0 && errno == EINTR { continue }
            guard written > 0 else { return }
            bytes = bytes.dropFirst(written)
        }
    }

    /// The terminal's width in columns (80 when it does not say).
    public static var columns: Int {
        var size = winsize()
        guard ioctl(2, UInt(TIOCGWINSZ), &size) == 0, size.ws_col > 0 else { return 80 }
        return Int(size.ws_col)
    }

    /// Draw `text` as the bar, in place, cut to the terminal's width (a wrapped line could not be
    /// redrawn in place).
    public func showBar(_ text: String) {
        lock.withLock {
            guard !paused else { return }
            let fitted = String(text.prefix(max(10, Self.columns - 1)))
            write("\r\u{1B}[K" + fitted)
            bar = fitted
        }
    }

    /// Take the bar off the screen.
    public func clearBar() { lock.withLock { eraseBar() } }

    /// The bar off the screen; the lock is held.
    private func eraseBar() {
        if bar != nil { write("\r\u{1B}[K") }
        bar = nil
    }

    /// One line (a newline is added), above the bar.
    public func writeLine(_ line: String) {
        lock.withLock {
            if let bar {
                write("\r\u{1B}[K" + line + "\n" + bar)
            } else {
                write(line + "\n")
            }
        }
    }

    /// `body` (a question on the terminal) with the bar off the screen and not redrawn meanwhile.
    public func withBarHidden<R>(_ body: () throws -> R) rethrows -> R {
        lock.withLock {
            eraseBar()
            paused = true
        }
        defer { lock.withLock { paused = false } }
        return try body()
    }
}

/// Log lines for a person at a terminal: `warning: message (key=value ...)`, through
/// `TerminalOutput` so they never cut into the progress bar. Cron and CI (no terminal) keep
/// swift-log's `StreamLogHandler` with its timestamps.
public struct TerminalLogHandler: LogHandler {
    public var logLevel: Logger.Level = .warning
    public var metadata: Logger.Metadata = [:]
    public var metadataProvider: Logger.MetadataProvider?

    public init() {}

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(level: Logger.Level, message: Logger.Message, metadata explicit: Logger.Metadata?, source: String,
                    file: String, function: String, line: UInt) {
        var all = metadata
        if let provided = metadataProvider?.get() { all.merge(provided) { $1 } }
        if let explicit { all.merge(explicit) { $1 } }
        let details = all.isEmpty ? "" : " (" + all.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ") + ")"
        TerminalOutput.shared.writeLine("\(level): \(message)\(details)")
    }
}
