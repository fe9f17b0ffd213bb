import Foundation
import Logging

extension Logger {
    /// A logger that drops everything, for tests that do not look at logs.
    public static var quiet: Logger { Logger(label: "test") { _ in SwiftLogNoOpLogHandler() } }
}

/// Collects log lines in memory so tests can assert what was logged.
public final class CapturedLogs: @unchecked Sendable {
    private let lock = NSLock()
    private var entries: [(level: Logger.Level, message: String, metadata: Logger.Metadata)] = []

    public init() {}

    public var logger: Logger {
        Logger(label: "test") { _ in CapturingHandler(sink: self) }
    }

    public var messages: [String] { lock.withLock { entries.map(\.message) } }
    public var all: [(level: Logger.Level, message: String, metadata: Logger.Metadata)] { lock.withLock { entries } }

    fileprivate func append(_ level: Logger.Level, _ message: String, _ metadata: Logger.Metadata) {
        lock.withLock { entries.append((level, message, metadata)) }
    }
}

private struct CapturingHandler: LogHandler {
    let sink: CapturedLogs
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .trace

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        sink.append(event.level, event.message.description, metadata.merging(event.metadata ?? [:]) { $1 })
    }
}
