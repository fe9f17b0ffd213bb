import Foundation
import RGWHTTP

/// Tells someone how a run went (issue 30): healthchecks-style pings (`--notify URL`: `URL/start`
/// when the run starts, `URL` on success, `URL/<exit status>` on failure, the same `rid` run id on
/// both) and JSON webhooks (`--webhook URL`: one POST at the end). Each request has a short timeout
/// and a bounded retry; a request that still fails is a warning (through `warn`) and never an error:
/// the run's result and exit status are its own.
///
/// The URLs are secrets (a healthchecks UUID, a Slack webhook's token): warnings name only their
/// scheme and host. Bodies hold only what the run printed, with any URL password and `password=`
/// value taken out again (`scrubbed`).
public struct Notifier: Sendable {
    public var pings: [String]
    public var webhooks: [String]
    /// One per run: the `rid` of the start and the end ping, so they pair up.
    public let runID: String
    /// Seconds each request may take, all in.
    public var timeoutSeconds = 10
    /// Tries per request (a transport error, 408, 429 or 5xx is tried again).
    public var attempts = 3
    /// Seconds before the second try, doubled before each further one.
    public var retryDelay = 1.0
    /// Where a failure to notify is said.
    public var warn: @Sendable (String) -> Void

    public init(pings: [String], webhooks: [String], runID: String = UUID().uuidString.lowercased(), warn: @escaping @Sendable (String) -> Void) {
        self.pings = pings
        self.webhooks = webhooks
        self.runID = runID
        self.warn = warn
    }

    public var isEmpty: Bool { pings.isEmpty && webhooks.isEmpty }

    /// The start ping of every `--notify` URL.
    public func started(body: String) {
        for ping in pings { send(Self.pingURL(ping, suffix: "start", runID: runID), body: Array(Self.scrubbed(body).utf8), type: "text/plain; charset=utf-8", what: "the start ping") }
    }

    /// The end: the ping of every `--notify` URL (`URL`, or `URL/<status>` when `status` is not 0)
    /// with `pingBody`, and `webhookBody` (a JSON object) to every `--webhook` URL.
    public func finished(status: Int32, pingBody: String, webhookBody: [UInt8]) {
        for ping in pings {
            send(Self.pingURL(ping, suffix: status == 0 ? nil : String(status), runID: runID), body: Array(Self.scrubbed(pingBody).utf8),
                 type: "text/plain; charset=utf-8", what: status == 0 ? "the success ping" : "the failure ping")
        }
        let scrubbedWebhookBody = Array(Self.scrubbed(String(decoding: webhookBody, as: UTF8.self)).utf8)
        for webhook in webhooks { send(webhook, body: scrubbedWebhookBody, type: "application/json", what: "the webhook") }
    }

    /// POST `body` to `url`, tried up to `attempts` times; a warning when it never got a 2xx answer.
    func send(_ url: String, body: [UInt8], type: String, what: String) {
        var problem = ""
        var tried = 0
        for attempt in 1...max(1, attempts) {
            tried = attempt
            if attempt > 1 { Thread.sleep(forTimeInterval: retryDelay * pow(2, Double(attempt - 2))) }
            do {
                let response = try HTTPClient.perform(HTTPRequest(method: "POST", url: url, headers: [(name: "Content-Type", value: type)],
                                                                  body: body, timeoutSeconds: timeoutSeconds))
                if (200..<300).contains(response.status) { return }
                problem = "HTTP \(response.status)"
                guard Self.isTransient(response.status) else { break }
            } catch {
                problem = String(describing: error)
            }
        }
        warn("could not send \(what) to \(Self.shown(url)) (\(problem), \(Plural.of(tried, "attempt"))): the run's result is unchanged")
    }

    /// An answer worth trying again: the receiver is busy or broken for now.
    static func isTransient(_ status: Int) -> Bool { status == 408 || status == 429 || status >= 500 }

    /// `base` with `/suffix` added to its path (before any query; a final `/` of the path is dropped)
    /// and `rid=RUN_ID` to its query: `https://hc-ping.com/UUID/start?rid=...`.
    public static func pingURL(_ base: String, suffix: String?, runID: String) -> String {
        var path = base
        var query = ""
        if let mark = base.firstIndex(of: "?") {
            path = String(base[..<mark])
            query = String(base[base.index(after: mark)...])
        }
        while path.hasSuffix("/") { path.removeLast() }
        if let suffix { path += "/" + suffix }
        return path + "?" + (query.isEmpty ? "" : query + "&") + "rid=" + runID
    }

    /// A notification URL as a warning or error may show it: its scheme and host only (the path
    /// and query of a ping or webhook URL are its secret).
    public static func shown(_ url: String) -> String {
        guard let components = URLComponents(string: url), let scheme = components.scheme, let host = components.host else { return "a URL that does not parse" }
        return "\(scheme)://\(host)\(components.port.map { ":\($0)" } ?? "")/…"
    }

    /// Why `url` is no notification URL, or nil when it is one (http or https, with a host).
    public static func problem(with url: String) -> String? {
        guard let components = URLComponents(string: url) else { return "it does not parse as a URL" }
        guard let scheme = components.scheme?.lowercased() else { return "it does not start with http:// or https://" }
        guard scheme == "http" || scheme == "https" else { return "its scheme is \(scheme):, not http: or https:" }
        guard let host = components.host, !host.isEmpty else { return "it has no host" }
        return nil
    }

    /// `text` with a password in a URL (`scheme://user:PASSWORD@`) and a conninfo `password=VALUE`
    /// replaced by `***`: the tool's output names no secret already, and a notification body that
    /// leaves the machine checks again.
    public static func scrubbed(_ text: String) -> String {
        var text = text
        for (pattern, template) in [(#"(://[^:/@\s]*):[^@\s/]*@"#, "$1:***@"), (#"(?i)(password\s*=\s*)('[^']*'|[^\s&]+)"#, "$1***")] {
            text = text.replacingOccurrences(of: pattern, with: template, options: .regularExpression)
        }
        return text
    }
}
