import Foundation

/// What one run of a command measured, in Prometheus terms: its gauges and their one label set
/// (`database`, and `dir` where the command has an archive directory). The same value is written to
/// `--metrics-file` (`PrometheusFile`) and pushed to `--pushgateway` (`Pushgateway`).
public struct RunMetrics: Sendable, Equatable {
    /// How the run ended, as the metrics tell it.
    public enum Outcome: String, Sendable {
        case success
        /// A backup written but marked SUSPECT: no success (`last_success` stays), no failure to run.
        case suspect
        case failure
    }

    /// The command, the metric names' prefix: `rgw_<command>_...`.
    public var command: String
    public var labels: [String: String]
    public var gauges: [PrometheusFile.Gauge]

    public init(command: String, labels: [String: String] = [:], gauges: [PrometheusFile.Gauge] = []) {
        self.command = command
        self.labels = labels
        self.gauges = gauges
    }

    /// Add or replace a gauge (one value per name).
    public mutating func set(_ gauge: PrometheusFile.Gauge) {
        gauges.removeAll { $0.name == gauge.name }
        gauges.append(gauge)
    }

    /// These metrics with the outcome's timestamp: `rgw_<command>_last_success_timestamp_seconds`
    /// or `..._last_failure_timestamp_seconds` at `time`; a suspect outcome adds neither.
    public func finished(_ outcome: Outcome, at time: Date) -> RunMetrics {
        var metrics = self
        switch outcome {
        case .success:
            metrics.set(.init("rgw_\(command)_last_success_timestamp_seconds", "Unix time of the last successful \(command).", time.timeIntervalSince1970))
        case .failure:
            metrics.set(.init("rgw_\(command)_last_failure_timestamp_seconds", "Unix time of the last failed \(command).", time.timeIntervalSince1970))
        case .suspect:
            break
        }
        return metrics
    }

    /// The text-format block of each gauge by name (HELP, TYPE and the sample), its labels but
    /// `omitting` (the Pushgateway's grouping labels, which it adds itself).
    public func blocks(omitting: Set<String> = []) -> [(name: String, text: String)] {
        let labelText = labels.filter { !omitting.contains($0.key) }.sorted { $0.key < $1.key }
            .map { "\($0.key)=\"\(Self.escaped($0.value))\"" }
            .joined(separator: ",")
        return gauges.map { gauge in
            (gauge.name, "# HELP \(gauge.name) \(gauge.help)\n# TYPE \(gauge.name) gauge\n"
                + "\(gauge.name)\(labelText.isEmpty ? "" : "{\(labelText)}") \(Self.format(gauge.value))")
        }
    }

    /// The whole text-format exposition, ending in a newline.
    public func text(omitting: Set<String> = []) -> String {
        blocks(omitting: omitting).map(\.text).joined(separator: "\n") + "\n"
    }

    static func escaped(_ value: String) -> String {
        value.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
            .replacingOccurrences(of: "\n", with: "\\n")
    }

    static func format(_ value: Double) -> String {
        value == value.rounded() && abs(value) < 1e15 ? String(Int64(value)) : String(value)
    }
}

/// A Prometheus text-format file for the node exporter's textfile collector, rewritten atomically
/// (mode 0644: metrics hold no secret, and the collector runs as its own user). A run replaces
/// the gauges it measured and keeps every other sample of the old file: after a failure the last
/// success's gauges stay, and backup, drill and check may share one file.
public struct PrometheusFile {
    public var path: String

    public init(path: String) { self.path = path }

    public struct Gauge: Sendable, Equatable {
        public var name: String
        public var help: String
        public var value: Double
        public init(_ name: String, _ help: String, _ value: Double) {
            self.name = name
            self.help = help
            self.value = value
        }
    }

    /// Replace the metrics' samples, keep every other sample of the old file: a sample is replaced
    /// only by one of the same name and the same label set (another database's, another
    /// directory's, stay beside it).
    public func update(_ metrics: RunMetrics) throws {
        // Per name: its HELP and TYPE lines, and its samples by `name{labels}`, in the file's order.
        var comments: [String: [String]] = [:]
        var samples: [String: [(series: String, line: String)]] = [:]
        var order: [String] = []
        var known: Set<String> = []
        func add(_ line: Substring) {
            let name: String
            let comment = line.hasPrefix("# HELP ") || line.hasPrefix("# TYPE ")
            if comment {
                name = String(line.dropFirst(7).prefix { $0 != " " })
            } else {
                name = String(line.prefix { $0 != "{" && $0 != " " })
            }
            if known.insert(name).inserted { order.append(name) }
            if comment {
                if !(comments[name] ?? []).contains(where: { $0.prefix(7) == line.prefix(7) }) { comments[name, default: []].append(String(line)) }
            } else {
                let series = Self.series(line)
                samples[name, default: []].removeAll { $0.series == series }
                samples[name, default: []].append((series, String(line)))
            }
        }
        if let old = try? String(contentsOfFile: path, encoding: .utf8) {
            for line in old.split(separator: "\n") { add(line) }
        }
        for block in metrics.blocks() {
            comments[block.name] = nil
            for line in block.text.split(separator: "\n") { add(line) }
        }
        let text = order.map { ((comments[$0] ?? []) + (samples[$0] ?? []).map(\.line)).joined(separator: "\n") }.joined(separator: "\n") + "\n"
        let url = URL(fileURLWithPath: path)
        try LocalFile.writeAtomically(directory: url.deletingLastPathComponent().path, name: url.lastPathComponent,
                                      contents: Array(text.utf8), mode: 0o644)
    }

    /// A sample line's series, `name{labels}`: all of it but the value.
    static func series(_ line: Substring) -> String {
        guard let space = line.lastIndex(of: " ") else { return String(line) }
        return String(line[..<space])
    }
}
