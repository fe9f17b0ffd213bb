import Foundation

/// A Prometheus text-format file for the node exporter's textfile collector, rewritten atomically.
/// On failure only the failure gauge changes; the last success's gauges are kept from the old file.
public struct PrometheusFile {
    public var path: String

    public init(path: String) { self.path = path }

    public struct Gauge {
        public var name: String
        public var help: String
        public var value: Double
        public init(_ name: String, _ help: String, _ value: Double) {
            self.name = name
            self.help = help
            self.value = value
        }
    }

    /// Replace the named gauges (labels: `labels`), keep every other sample of the old file.
    public func update(_ gauges: [Gauge], labels: [String: String]) throws {
        let labelText = labels.sorted { $0.key < $1.key }
            .map { "\($0.key)=\"\($0.value.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\""))\"" }
            .joined(separator: ",")
        var blocks: [String: [String]] = [:]
        var order: [String] = []
        if let old = try? String(contentsOfFile: path, encoding: .utf8) {
            for line in old.split(separator: "\n") {
                let name: String
                if line.hasPrefix("# HELP ") || line.hasPrefix("# TYPE ") {
                    name = String(line.dropFirst(7).prefix { $0 != " " })
                } else {
                    name = String(line.prefix { $0 != "{" && $0 != " " })
                }
                if blocks[name] == nil { order.append(name) }
                blocks[name, default: []].append(String(line))
            }
        }
        for gauge in gauges {
            let value = gauge.value == gauge.value.rounded() && abs(gauge.value) < 1e15 ? String(Int64(gauge.value)) : String(gauge.value)
            if blocks[gauge.name] == nil { order.append(gauge.name) }
            blocks[gauge.name] = ["# HELP \(gauge.name) \(gauge.help)", "# TYPE \(gauge.name) gauge",
                                  "\(gauge.name){\(labelText)} \(value)"]
        }
        let text = order.compactMap { blocks[$0]?.joined(separator: "\n") }.joined(separator: "\n") + "\n"
        let url = URL(fileURLWithPath: path)
        try LocalFile.writeAtomically(directory: url.deletingLastPathComponent().path, name: url.lastPathComponent, contents: Array(text.utf8))
    }
}
