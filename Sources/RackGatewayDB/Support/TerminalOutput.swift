#if canImport(Glibc)
@preconcurrency import Glibc
#endif
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
    private var bar: ProgressLine?
    /// While a prompt waits for an answer the bar is not redrawn.
    private var paused = false
    /// Set once the run is interrupted: no bar is drawn from then on (issue 29: after Ctrl-C the bar
    /// was drawn again below `^C`).
    private var ended = false
    /// The last lines written (`writeLine`): what a notification's body shows of the log.
    private var recent: [String] = []
    /// How many lines `recent` keeps.
    public static let recentLimit = 20

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

    /// The width in columns of stderr's terminal, where the bar is drawn (80 when it does not say),
    /// read anew at each call, so a resized window (SIGWINCH, which is left to its default: ignored)
    /// is seen at the next redraw.
    public static var columns: Int { columns(of: 2) ?? 80 }

    /// The width in columns of the terminal `descriptor` writes to (80 when the terminal does not
    /// say), or nil when it is not a terminal: a table printed on stdout is fitted to stdout's
    /// terminal, whatever stderr is (issue 31: `inspect 2>/dev/null` was fitted to no terminal's
    /// width), and not fitted at all when stdout is a file or a pipe.
    public static func columns(of descriptor: Int32) -> Int? {
        guard isatty(descriptor) == 1 else { return nil }
        var size = winsize()
        guard ioctl(descriptor, UInt(TIOCGWINSZ), &size) == 0, size.ws_col > 0 else { return 80 }
        return Int(size.ws_col)
    }

    /// How wide a bar may be on a terminal of `columns`: two columns are left free, for the `^C`
    /// the terminal echoes after it (a bar that wrapped could not be erased or redrawn in place).
    public static func barWidth(columns: Int) -> Int { columns - 2 }

    /// Draw `line` as the bar, in place, fitted to the terminal's width as it is now.
    public func showBar(_ line: ProgressLine) {
        lock.withLock {
            guard !paused, !ended else { return }
            write("\r\u{1B}[K" + line.render(width: Self.barWidth(columns: Self.columns)))
            bar = line
        }
    }

    /// Take the bar off the screen.
    public func clearBar() { lock.withLock { eraseBar() } }

    /// Take the bar off the screen and draw none again: the run was interrupted, and what it prints
    /// from now on (the signal's message, what it undid) must not be followed by a bar.
    public func endBars() {
        lock.withLock {
            eraseBar()
            ended = true
        }
    }

    /// The bar off the screen; the lock is held.
    private func eraseBar() {
        if bar != nil { write("\r\u{1B}[K") }
        bar = nil
    }

    /// One line (a newline is added), above the bar.
    public func writeLine(_ line: String) {
        // What the command printed on stdout before this line comes before it where both go to one
        // file (cron's mail, `2>&1`): stdout is block-buffered there.
        fflush(stdout)
        lock.withLock {
            recent.append(line)
            if recent.count > Self.recentLimit { recent.removeFirst(recent.count - Self.recentLimit) }
            if let bar {
                // Fitted again: the window may have been resized since it was drawn.
                write("\r\u{1B}[K" + line + "\n" + bar.render(width: Self.barWidth(columns: Self.columns)))
            } else {
                write(line + "\n")
            }
        }
    }

    /// The last lines written, oldest first (at most `recentLimit`).
    public var recentLines: [String] { lock.withLock { recent } }

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

/// The tool's log lines, one label everywhere (issue 29: swift-log's `StreamLogHandler` added the
/// Swift module of the call, `[RackGatewayDB]` or `[rack_gateway_db]`, to each line). For a person
/// at a terminal: `warning: message (key=value ...)`, through `TerminalOutput` so they never cut
/// into the progress bar. Cron and CI (no terminal): `2026-11-24T03:15:00.123Z info
/// rack-gateway-db: message (key=value ...)`, the time in UTC as the reports write it.
public struct ToolLogHandler: LogHandler {
    /// The one label of every logger of the tool.
    public static let label = "rack-gateway-db"

    public var logLevel: Logger.Level = .warning
    public var metadata: Logger.Metadata = [:]
    public var metadataProvider: Logger.MetadataProvider?
    /// Lines for a person at a terminal (no time or label), else timestamped lines for a log.
    public let terminal: Bool

    public init(terminal: Bool = TerminalOutput.shared.isTTY) { self.terminal = terminal }

    /// A logger of the tool, writing its lines as this handler does.
    public static func logger(level: Logger.Level = .info) -> Logger {
        var logger = Logger(label: label) { _ in ToolLogHandler() }
        logger.logLevel = level
        return logger
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(level: Logger.Level, message: Logger.Message, metadata explicit: Logger.Metadata?, source: String,
                    file: String, function: String, line: UInt) {
        TerminalOutput.shared.writeLine(text(level: level, message: message, metadata: explicit))
    }

    /// `key=value`, the value in double quotes (`"` and `\` escaped) when it is empty or holds a
    /// space, a quote, `=` or a parenthesis: each field reads back whole (logfmt's rule).
    public static func field(_ key: String, _ value: String) -> String {
        guard value.isEmpty || value.contains(where: { " \"=()\\\t\n".contains($0) }) else { return "\(key)=\(value)" }
        return "\(key)=\"" + value.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
            .replacingOccurrences(of: "\n", with: "\\n") + "\""
    }

    /// The line for one event, without its newline.
    func text(level: Logger.Level, message: Logger.Message, metadata explicit: Logger.Metadata?, now: Date = Date()) -> String {
        var all = metadata
        if let provided = metadataProvider?.get() { all.merge(provided) { $1 } }
        if let explicit { all.merge(explicit) { $1 } }
        let details = all.isEmpty ? "" : " (" + all.sorted { $0.key < $1.key }.map { Self.field($0.key, "\($0.value)") }.joined(separator: " ") + ")"
        return terminal ? "\(level): \(message)\(details)" : "\(UTCTime.iso8601(now)) \(level) \(Self.label): \(message)\(details)"
    }
}
