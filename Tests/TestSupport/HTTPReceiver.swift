import Foundation
import RackGatewayDB

/// `Tests/Fixtures/http-receiver` on a free loopback port: a notification receiver (a monitor's
/// ping endpoint, a chat webhook) that records every request it gets.
public final class HTTPReceiver {
    /// One request as it arrived.
    public struct Request: Decodable, Sendable {
        public var method: String
        public var path: String
        /// The status the receiver answered.
        public var status: Int
        public var contentType: String?
        public var body: String

        /// The body as a JSON object (a webhook's).
        public var json: [String: Any]? { try? JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any] }
    }

    public let port: Int
    let pid: Int32
    let record: String

    /// `failFirst`: the first N requests are answered 500; `status`: every other request's answer;
    /// `hang`: no request is ever answered.
    public init(failFirst: Int = 0, status: Int = 200, hang: Bool = false) throws {
        port = try TestCluster.freePort()
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fixtures/http-receiver").path
        record = NSTemporaryDirectory() + "/rgw-http-receiver-\(port).jsonl"
        try? FileManager.default.removeItem(atPath: record)
        let log = record + ".log"
        let output = try Shell.runChecked("/bin/sh", ["-c", #"python3 "$1" "$2" "$3" --fail-first "$4" --status "$5" --hang "$6" >"$7" 2>&1 </dev/null & echo $!"#,
                                                      "sh", script, String(port), record, String(failFirst), String(status), hang ? "1" : "0", log])
        guard let pid = Int32(output.trimmingCharacters(in: .whitespacesAndNewlines)) else { throw ToolError(.failed, "could not start the HTTP receiver") }
        self.pid = pid
        for _ in 0..<200 {
            if ((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").contains("ready") { return }
            Thread.sleep(forTimeInterval: 0.05)
        }
        throw ToolError(.failed, "the HTTP receiver did not start: " + ((try? String(contentsOfFile: log, encoding: .utf8)) ?? ""))
    }

    deinit {
        kill(pid, SIGKILL)
        try? FileManager.default.removeItem(atPath: record)
        try? FileManager.default.removeItem(atPath: record + ".log")
    }

    /// `http://127.0.0.1:PORT` + `path`.
    public func url(_ path: String) -> String { "http://127.0.0.1:\(port)\(path)" }

    /// Every request so far, in the order they arrived.
    public var requests: [Request] {
        let text = (try? String(contentsOfFile: record, encoding: .utf8)) ?? ""
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        return text.split(separator: "\n").compactMap { try? decoder.decode(Request.self, from: Data($0.utf8)) }
    }
}
