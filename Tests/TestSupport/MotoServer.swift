import Foundation
import RGWHTTP
import RackGatewayDB

/// moto's S3 server on loopback, started once for the test process (`moto_server` from the
/// `moto[server]` Python package, which scripts/setup installs). Missing is a failure, never a skip.
public final class MotoServer: Sendable {
    public let endpoint: String
    let pid: Int32

    private init(endpoint: String, pid: Int32) {
        self.endpoint = endpoint
        self.pid = pid
    }

    private static let started: Result<MotoServer, Error> = Result { try start() }
    public static func shared() throws -> MotoServer { try started.get() }

    /// Credentials and region moto accepts, for the AWS CLI and the tool.
    public static let awsEnvironment = ["AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1"]

    nonisolated(unsafe) private static var stopAtExit: Int32 = 0

    private static func start() throws -> MotoServer {
        // `python3 -m moto.server` works wherever pip put the package, on PATH or not.
        let port = try TestCluster.freePort()
        let log = NSTemporaryDirectory() + "/rgw-moto-\(port).log"
        let output = try Shell.runChecked("/bin/sh", ["-c", #"python3 -m moto.server -H 127.0.0.1 -p "$1" >"$2" 2>&1 </dev/null & echo $!"#, "sh", String(port), log])
        guard let pid = Int32(output.trimmingCharacters(in: .whitespacesAndNewlines)) else { throw ToolError(.failed, "could not start moto_server") }
        stopAtExit = pid
        atexit { if MotoServer.stopAtExit > 0 { kill(MotoServer.stopAtExit, SIGTERM) } }
        let endpoint = "http://127.0.0.1:\(port)"
        for _ in 0..<300 {
            if let response = try? HTTPClient.perform(HTTPRequest(method: "GET", url: endpoint + "/moto-api/", timeoutSeconds: 2)), response.status > 0 {
                return MotoServer(endpoint: endpoint, pid: pid)
            }
            Thread.sleep(forTimeInterval: 0.1)
        }
        let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        throw ToolError(.failed, "moto's server did not answer on \(endpoint) within 30 s: \(text.suffix(1000))",
                        fix: "Run scripts/setup (pip install 'moto[server]').")
    }

    /// A client for a new, empty bucket.
    public func freshBucket() throws -> S3Client {
        let name = "rgw-\(UUID().uuidString.prefix(8).lowercased())"
        let client = S3Client(endpoint: endpoint, region: "us-east-1", bucket: name, accessKey: "test", secretKey: "test", pathStyle: true, clock: SystemClock())
        try client.createBucket()
        return client
    }
}
