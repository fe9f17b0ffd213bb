import Foundation
import RGWHTTP
import RackGatewayDB

/// `Tests/Fixtures/s3-fault-proxy` on loopback in front of moto: injects failures into chosen S3
/// requests, records what passed (which access key signed, whether a session token came), and
/// plays the ECS and EC2 instance-metadata credential endpoints. One per test that needs faults.
public final class FaultProxy {
    public let endpoint: String
    let pid: Int32

    public struct Rule: Encodable {
        public var method: String?
        public var query: String?
        public var skip = 0
        public var times = 1
        public var action: String
        public init(method: String? = nil, query: String? = nil, skip: Int = 0, times: Int = 1, action: String) {
            self.method = method
            self.query = query
            self.skip = skip
            self.times = times
            self.action = action
        }
    }

    public struct Request: Decodable {
        public var method: String
        public var path: String
        public var query: String
        public var action: String?
        public var keyId: String?
        public var token: Bool
        /// The length of the response body it was sent (0 for a fault or a HEAD).
        public var bytes: Int
    }

    static var script: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fixtures/s3-fault-proxy").path
    }

    public init(upstream: String) throws {
        let port = try TestCluster.freePort()
        let log = NSTemporaryDirectory() + "/rgw-fault-proxy-\(port).log"
        let output = try Shell.runChecked("/bin/sh", ["-c", #"python3 "$1" "$2" "$3" >"$4" 2>&1 </dev/null & echo $!"#, "sh", Self.script, String(port), upstream, log])
        guard let pid = Int32(output.trimmingCharacters(in: .whitespacesAndNewlines)) else { throw ToolError(.failed, "could not start the fault proxy") }
        self.pid = pid
        endpoint = "http://127.0.0.1:\(port)"
        for _ in 0..<100 {
            if let response = try? HTTPClient.perform(HTTPRequest(method: "GET", url: endpoint + "/_log", timeoutSeconds: 2)), response.status == 200 { return }
            Thread.sleep(forTimeInterval: 0.1)
        }
        kill(pid, SIGTERM)
        throw ToolError(.failed, "the fault proxy did not answer: \((try? String(contentsOfFile: log, encoding: .utf8)) ?? "")")
    }

    deinit { kill(pid, SIGTERM) }

    public func set(_ rules: [Rule]) throws {
        let body = try JSONEncoder().encode(rules)
        _ = try HTTPClient.perform(HTTPRequest(method: "POST", url: endpoint + "/_faults", body: [UInt8](body)))
    }

    public func requests() throws -> [Request] {
        let response = try HTTPClient.perform(HTTPRequest(method: "GET", url: endpoint + "/_log"))
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        return try decoder.decode([Request].self, from: Data(response.body))
    }

    public func clearLog() throws {
        _ = try HTTPClient.perform(HTTPRequest(method: "DELETE", url: endpoint + "/_log"))
    }

    /// A client for `bucket` through the proxy, retrying quickly.
    public func client(bucket: String) -> S3Client {
        var client = S3Client(endpoint: endpoint, region: "us-east-1", bucket: bucket, accessKey: "test", secretKey: "test", pathStyle: true, clock: SystemClock())
        client.firstBackoff = 0.05
        return client
    }
}
