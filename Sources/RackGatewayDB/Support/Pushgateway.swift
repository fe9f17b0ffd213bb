import Foundation
import RGWHTTP

/// A Prometheus Pushgateway a run pushes its metrics to (the Prometheus convention for batch jobs):
/// `job=rack_gateway_db`, grouped by `command`, `database` and `dir` (where the run has them: two
/// directories of one database are two groups, or one's push would replace the other's). A POST replaces this group's gauges
/// of the same names and keeps the rest (a failed run leaves the last success's gauges), and the
/// gateway sets the group's `push_time_seconds`, so a job that stopped pushing shows in PromQL.
public struct Pushgateway: Sendable {
    public static let job = "rack_gateway_db"
    /// The labels that make the group (the gateway adds them to every metric it serves); `server`
    /// only drill --existing-url has (databases of one name on many servers).
    public static let groupingLabels: Set<String> = ["database", "dir", "server"]

    public var url: String
    public var timeoutSeconds = 5
    public var attempts = 3
    public var retryDelaySeconds = 1.0

    public init(url: String) { self.url = url }

    /// `URL/metrics/job/rack_gateway_db/command/<command>/database@base64/<name>/dir@base64/<dir>`:
    /// base64 (URL-safe) carries any database name or location, slashes and all.
    public func groupURL(for metrics: RunMetrics) -> String {
        var path = "/metrics/job/\(Self.job)/command/\(metrics.command)"
        for label in Self.groupingLabels.sorted() {
            guard let value = metrics.labels[label] else { continue }
            let encoded = Data(value.utf8).base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            path += "/\(label)@base64/\(encoded.isEmpty ? "=" : encoded)"
        }
        var base = url
        while base.hasSuffix("/") { base.removeLast() }
        return base + path
    }

    /// The URL for messages: without a password in it.
    public var displayURL: String {
        guard let expression = try? NSRegularExpression(pattern: "(://[^:/@?#\\s]*):[^@/?#\\s]*@") else { return url }
        return expression.stringByReplacingMatches(in: url, range: NSRange(url.startIndex..., in: url), withTemplate: "$1:***@")
    }

    /// Push `metrics` with a short timeout, retrying a transport failure or a 5xx answer up to
    /// `attempts` times in all; a 4xx answer is not retried.
    public func push(_ metrics: RunMetrics, clock: RunClock) throws {
        let body = Array(metrics.text(omitting: Self.groupingLabels).utf8)
        let request = HTTPRequest(method: "POST", url: groupURL(for: metrics),
                                  headers: [("Content-Type", "text/plain; version=0.0.4")], body: body, timeoutSeconds: timeoutSeconds)
        var problem = ""
        var made = 0
        for attempt in 1...max(1, attempts) {
            if attempt > 1 { try clock.sleep(retryDelaySeconds) }
            made = attempt
            do {
                let response = try HTTPClient.perform(request)
                if (200..<300).contains(response.status) { return }
                problem = "HTTP \(response.status): " + response.text.trimmingCharacters(in: .whitespacesAndNewlines).prefix(200)
                if response.status < 500 { break }
            } catch let error as HTTPError {
                problem = error.message
            }
        }
        throw ToolError(.failed, "cannot push the \(metrics.command) metrics to the Pushgateway \(displayURL) (\(Plural.of(made, "attempt"))): \(problem)",
                        fix: "Check that the Pushgateway runs and that the URL (--pushgateway or RGW_PUSHGATEWAY_URL) is its base URL, e.g. http://pushgateway:9091.")
    }
}
