import Foundation

/// A fake rack: state file, call log, and a PATH whose first `convox` is the fake.
public struct FakeRack {
    public let directory: String
    /// The app's name, its own per rack: pipelines of tests that run side by side on one server
    /// must not share the app's restore lock.
    public let app: String
    public var state: String { directory + "/state.json" }
    public var log: String { directory + "/calls.log" }

    public init(count: Int) throws {
        directory = try TestArchives.temporaryDirectory()
        app = "rgw" + String(UInt32.random(in: 0..<UInt32.max), radix: 36)
        let fake = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fixtures/fake-convox").path
        try FileManager.default.createDirectory(atPath: directory + "/bin", withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: directory + "/bin/convox", withDestinationPath: fake)
        try #"{"apps": {"\#(app)": {"status": "running", "services": {"gateway": {"count": \#(count)}, "worker": {"count": 1}}}}}"#
            .write(toFile: state, atomically: true, encoding: .utf8)
        FileManager.default.createFile(atPath: log, contents: nil)
    }

    public func environment(_ extra: [String: String] = [:]) -> [String: String] {
        [
            "PATH": directory + "/bin:" + (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"),
            "FAKE_CONVOX_STATE": state, "FAKE_CONVOX_LOG": log, "FAKE_CONVOX_LINGER": "2",
            "RGW_PIPELINE_POLL_SECONDS": "0.05",
        ].merging(extra) { $1 }
    }

    public func count(_ service: String = "gateway") throws -> Int {
        let data = try Data(contentsOf: URL(fileURLWithPath: state))
        let object = try JSONSerialization.jsonObject(with: data) as! [String: Any]
        let services = ((object["apps"] as! [String: Any])[app] as! [String: Any])["services"] as! [String: [String: Any]]
        return services[service]!["count"] as! Int
    }

    /// Set a service's desired count, as someone else's `convox scale` would.
    public func setCount(_ count: Int, _ service: String = "gateway") throws {
        let data = try Data(contentsOf: URL(fileURLWithPath: state))
        var object = try JSONSerialization.jsonObject(with: data) as! [String: Any]
        var apps = object["apps"] as! [String: Any]
        var entry = apps[app] as! [String: Any]
        var services = entry["services"] as! [String: [String: Any]]
        services[service]!["count"] = count
        entry["services"] = services
        apps[app] = entry
        object["apps"] = apps
        try JSONSerialization.data(withJSONObject: object).write(to: URL(fileURLWithPath: state))
    }

    public var calls: [[String]] {
        get throws {
            try String(contentsOfFile: log, encoding: .utf8).split(separator: "\n")
                .map { try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String] }
        }
    }

    public func remove() { try? FileManager.default.removeItem(atPath: directory) }
}
