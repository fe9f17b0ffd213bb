import Foundation
import RackGatewayDB

/// `Tests/Fixtures/tcp-proxy` in front of the test cluster: a database URL through it can be made
/// to go silent (`freeze`: connections stay open, no byte moves) or be reset (`cut`).
public final class TCPProxy {
    public let port: Int
    let pid: Int32

    public init(upstreamPort: Int) throws {
        port = try TestCluster.freePort()
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fixtures/tcp-proxy").path
        let log = NSTemporaryDirectory() + "/rgw-tcp-proxy-\(port).log"
        let output = try Shell.runChecked("/bin/sh", ["-c", #"python3 "$1" "$2" "$3" >"$4" 2>&1 </dev/null & echo $!"#, "sh", script, String(port), String(upstreamPort), log])
        guard let pid = Int32(output.trimmingCharacters(in: .whitespacesAndNewlines)) else { throw ToolError(.failed, "could not start the TCP proxy") }
        self.pid = pid
        for _ in 0..<100 {
            if ((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").contains("ready") { return }
            Thread.sleep(forTimeInterval: 0.05)
        }
        throw ToolError(.failed, "the TCP proxy did not start")
    }

    deinit { kill(pid, SIGKILL) }

    public func freeze() { kill(pid, SIGUSR1) }
    public func cut() { kill(pid, SIGUSR2) }

    /// `url` (a test cluster URL) going through this proxy.
    public func route(_ url: String, clusterPort: Int) -> String {
        url.replacingOccurrences(of: ":\(clusterPort)/", with: ":\(port)/")
    }
}
