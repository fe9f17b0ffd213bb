import Foundation
import RGWPostgres

/// The `convox` CLI as docs/convox.md describes it: always `-a APP` (and `-r RACK` when given), exit
/// codes trusted, stderr only for diagnostics, tables read by header name (cells by the header's
/// column positions, so empty cells do not shift the row).
public struct ConvoxClient: Sendable {
    public var executable: String
    public var app: String
    public var rack: String?
    /// The run the calls belong to: stopping it terminates a call under way.
    public var cancellation: Cancellation?
    /// The run's environment, given to every call (the CLI's own, or a test's).
    public var environment: [String: String]

    public init(app: String, rack: String?, environment: [String: String] = ProcessInfo.processInfo.environment) throws {
        do {
            executable = try ChildProcess.locate("convox", path: environment["PATH"])
        } catch {
            throw ToolError(.failed, "convox is not on PATH", fix: "Install the Convox CLI (https://docs.convox.com/installation/cli) and log in to the rack.")
        }
        self.app = app
        self.rack = rack
        self.environment = environment
    }

    public struct Service: Sendable, Codable {
        public var name: String
        public var count: Int
        public var min: Int?
        public var max: Int?
        /// The rack says autoscaling (KEDA) is configured: the API's `autoscale.enabled`, the
        /// table's AUTOSCALE column.
        public var autoscale = false
        /// v3 reports `min` and `max` for every service (the manifest's scale count: equal for a
        /// static count, whatever `--count` set since); a range, or autoscaling configured, is an
        /// autoscaled service. v2 reports neither.
        public var autoscaled: Bool { autoscale || min != max }
    }

    public struct Process: Sendable, Codable {
        public var id: String
        public var service: String
        public var status: String
    }

    /// The command line as a person would type it (for plans and recovery instructions).
    public func commandLine(_ arguments: [String]) -> String {
        ShellCommand.line(["convox"] + arguments + scope)
    }

    var scope: [String] { ["-a", app] + rackScope }
    /// `-r RACK` when a rack is given (calls not about one app: `apps`, `api get`).
    var rackScope: [String] { rack.map { ["-r", $0] } ?? [] }

    /// One convox call at a time: a clean-up that the signal path's fallback runs (scale back up)
    /// waits for a call still under way on the main thread instead of racing it.
    static let callLock = NSLock()

    /// Run `convox ARGUMENTS -a APP [-r RACK]`; a non-zero exit throws with the CLI's ERROR line.
    @discardableResult
    public func run(_ arguments: [String], scoped: Bool = true) throws -> String {
        // v2 racks wait for a scale only with --wait; v3 always waits and ignores it.
        let wait = arguments.first == "scale" && arguments.contains("--count") ? ["--wait"] : []
        let argv = arguments + wait + (scoped ? scope : [])
        let output = try Self.callLock.withLock {
            var child = ChildProcess(executable: executable, arguments: argv, environment: environment)
            // Out of the terminal's reach: Ctrl-C stops a call through the run's cancellation, which
            // spares the calls that clean up (the scale-up after the swap, the scale back).
            child.ownProcessGroup = true
            child.cancellation = cancellation
            return try child.run()
        }
        guard output.status == 0 else {
            let error = output.stderr.split(separator: "\n").first { $0.hasPrefix("ERROR:") }.map(String.init)
                ?? output.stderr.trimmingCharacters(in: .whitespacesAndNewlines)
            // The call as it was made (`--wait` included): an error about a flag names one it shows.
            throw ToolError(.failed, "`\(ShellCommand.line(["convox"] + argv))` failed (exit \(output.status)): \(error)")
        }
        return output.stdout
    }

    /// The first column of a listing (`convox apps`, `convox racks`), the rack given when listing
    /// apps; nil when the listing itself fails.
    func names(_ arguments: [String]) -> [String]? {
        var child = ChildProcess(executable: executable, arguments: arguments, environment: environment)
        child.cancellation = cancellation
        guard let output = try? child.run(), output.status == 0 else { return nil }
        let lines = output.stdout.split(separator: "\n").dropFirst()
        return lines.compactMap { $0.split(separator: " ").first.map(String.init) }
    }

    /// A call's failure said better when the app or the rack does not exist: what exists (as
    /// `convox apps` and `convox racks` list them) and the fix (the pipeline says nothing was changed).
    func explained(_ error: Error) -> Error {
        guard let error = error as? ToolError else { return error }
        let text = error.message
        func listed(_ names: [String]?, _ what: String) -> String {
            guard let names else { return "" }
            return names.isEmpty ? "; `\(what)` lists none" : "; `\(what)` lists " + names.joined(separator: ", ")
        }
        if text.contains("app not found") {
            let apps = names(["apps"] + rackScope)
            let where_ = rack.map { " on rack \($0)" } ?? ""
            return ToolError(.failed, "app \(app) does not exist\(where_)\(listed(apps, ShellCommand.line(["convox", "apps"] + rackScope)))",
                             fix: "Pass --convox-app with the app's name as `convox apps` lists it\(rack == nil ? " (and --rack if it is on another rack)" : " (or the --rack it runs on)").", cause: error)
        }
        if let rack, text.contains("could not find rack") || text.contains("no current rack") {
            let racks = names(["racks"])
            if let racks, racks.contains(rack) {
                return ToolError(.failed, "rack \(rack) is listed by `convox racks` but could not be reached (\(text))",
                                 fix: "Check the network and the login (convox login), then run again.", cause: error)
            }
            return ToolError(.failed, "rack \(rack) is not a rack the convox CLI knows\(listed(racks, "convox racks"))",
                             fix: "Pass --rack with the rack's name as `convox racks` lists it (a Console rack as ORG/NAME), or log in to the Console that has it (convox login).", cause: error)
        }
        return error
    }

    /// `apps info`: the app's status (running, updating, ...).
    public func appStatus() throws -> String {
        let text: String
        do { text = try run(["apps", "info"]) } catch { throw explained(error) }
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: true)
            if parts.first == "Status", parts.count == 2 { return parts[1].trimmingCharacters(in: .whitespaces) }
        }
        throw ToolError(.failed, "`\(commandLine(["apps", "info"]))` printed no Status line")
    }

    /// The services with their desired counts: `api get /apps/APP/services` (JSON), else the
    /// `scale` table read by header name.
    public func services() throws -> [Service] {
        var child = ChildProcess(executable: executable, arguments: ["api", "get", "/apps/\(app)/services"] + rackScope, environment: environment)
        child.cancellation = cancellation
        if let text = try? child.run(),
           text.status == 0, let data = text.stdout.data(using: .utf8),
           let list = try? JSONSerialization.jsonObject(with: data) as? [[String: Any]] {
            return list.compactMap { object in
                guard let name = object["name"] as? String else { return nil }
                return Service(name: name, count: object["count"] as? Int ?? 0, min: object["min"] as? Int, max: object["max"] as? Int,
                               autoscale: (object["autoscale"] as? [String: Any])?["enabled"] as? Bool ?? false)
            }
        }
        return try Self.table(try run(["scale"])).compactMap { row in
            guard let name = row["SERVICE"], let count = row["DESIRED"].flatMap({ Int($0) }) else { return nil }
            return Service(name: name, count: count, min: row["MIN"].flatMap { Int($0) }, max: row["MAX"].flatMap { Int($0) },
                           autoscale: ["yes", "true", "on", "enabled"].contains(row["AUTOSCALE"]?.lowercased() ?? ""))
        }
    }

    public func processes(service: String) throws -> [Process] {
        Self.processes(in: try run(["ps", "-s", service]), service: service)
    }

    /// The rows of `convox ps` that are `service`'s: its SERVICE cell by header name, or, where a
    /// row does not line up under its header, the service's name as one of the row's words. A row
    /// that cannot be read is counted, never taken for "no process" (the wait for the service to
    /// stop fails safe).
    static func processes(in text: String, service: String) -> [Process] {
        let lines = text.split(separator: "\n", omittingEmptySubsequences: true).dropFirst()
        return zip(table(text), lines).compactMap { row, line in
            let words = line.split(whereSeparator: \.isWhitespace).map(String.init)
            guard row["SERVICE"] == service || words.contains(service) else { return nil }
            let aligned = row["SERVICE"] == service
            return Process(id: (aligned ? row["ID"] : nil) ?? words.first ?? "?", service: service,
                           status: (aligned ? row["STATUS"] : nil) ?? words.first { Self.statuses.contains($0) } ?? "unknown")
        }
    }

    /// The statuses `convox ps` shows (docs/convox.md).
    static let statuses: Set = ["running", "pending", "starting", "unhealthy", "crashed", "complete", "failed", "unknown"]

    /// Rows of a CLI table by header name; each cell spans from its header's column to the next one's.
    static func table(_ text: String) -> [[String: String]] {
        let lines = text.split(separator: "\n", omittingEmptySubsequences: true).map(String.init)
        guard let header = lines.first else { return [] }
        var columns: [(name: String, start: Int)] = []
        var index = 0
        let characters = Array(header)
        while index < characters.count {
            if characters[index] != " " && (index == 0 || characters[index - 1] == " ") {
                var end = index
                while end < characters.count && characters[end] != " " { end += 1 }
                columns.append((String(characters[index..<end]), index))
                index = end
            } else {
                index += 1
            }
        }
        return lines.dropFirst().map { line in
            let chars = Array(line)
            var row: [String: String] = [:]
            for (position, column) in columns.enumerated() {
                let start = min(column.start, chars.count)
                let end = position + 1 < columns.count ? min(columns[position + 1].start, chars.count) : chars.count
                let cell = String(chars[start..<max(start, end)]).trimmingCharacters(in: .whitespaces)
                if !cell.isEmpty { row[column.name] = cell }
            }
            return row
        }
    }
}
