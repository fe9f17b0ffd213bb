import ArgumentParser
import Foundation
import RGWPostgres
import RackGatewayDB

/// `--metrics-file` and `--pushgateway`: where the run's metrics go, for backup, drill, prune,
/// check, restore and verify. The command records what it measured (`MetricsRecorder`); `Reporting.run`
/// writes and pushes it once the run has ended, whatever the outcome.
struct MetricsOptions: ParsableArguments {
    @Option(name: .customLong("metrics-file"), help: ArgumentHelp("Write the run's metrics here in Prometheus text format, for node_exporter's textfile collector (atomically, mode 0644, in every outcome; other metrics in the file are kept).", valueName: "path"))
    var metricsFile: String?

    @Option(name: .customLong("pushgateway"), help: ArgumentHelp("Push the run's metrics to this Prometheus Pushgateway (job rack_gateway_db, grouped by command, database and directory; repeatable; default: $RGW_PUSHGATEWAY_URL). A failed push is a warning.", valueName: "url"))
    var pushgateway: [String] = []

    static let environmentVariable = "RGW_PUSHGATEWAY_URL"

    /// Whether an option asked for metrics (an environment default alone does not).
    var given: Bool { metricsFile != nil || !pushgateway.isEmpty }

    /// The gateways: the options, else RGW_PUSHGATEWAY_URL.
    func gateways(environment: [String: String]) -> [Pushgateway] {
        let urls = pushgateway.isEmpty ? [environment[Self.environmentVariable]].compactMap { $0 }.filter { !$0.isEmpty } : pushgateway
        return urls.map(Pushgateway.init(url:))
    }

    func validate() throws {
        for url in pushgateway where !(url.hasPrefix("http://") || url.hasPrefix("https://")) {
            throw ValidationError("--pushgateway is the gateway's base URL, http://HOST:PORT (e.g. http://pushgateway:9091)")
        }
    }

    /// Start recording the run's metrics as `command` with `labels` (`database`, and `dir` where the
    /// command has an archive directory): from here on the run's end writes and pushes them,
    /// whatever the outcome. A metrics file whose directory does not exist is refused now.
    func start(_ command: String, labels: [String: String], context: RunContext) throws {
        let gateways = gateways(environment: context.environment)
        guard metricsFile != nil || !gateways.isEmpty else { return }
        if let metricsFile {
            let directory = URL(fileURLWithPath: metricsFile).deletingLastPathComponent().path
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory.boolValue else {
                throw ToolError(.usage, "--metrics-file \(metricsFile): the directory \(directory) does not exist",
                                fix: "Create it (node_exporter reads the directory its --collector.textfile.directory names), or give a path in an existing directory.")
            }
        }
        MetricsRecorder.current = MetricsRecorder(metrics: RunMetrics(command: command, labels: labels), file: metricsFile, gateways: gateways)
    }
}

extension DirectoryOptions {
    /// The `dir` label: the local directory's absolute path, or the s3:// location.
    var metricsLabel: String { isS3 ? chosen : (try? directory) ?? chosen }
}

/// The run's metrics as the command measures them, published when the run has ended
/// (`publish`). Without `--metrics-file` or a Pushgateway nothing is recorded and the calls do nothing.
final class MetricsRecorder: @unchecked Sendable {
    nonisolated(unsafe) static var current: MetricsRecorder?

    var metrics: RunMetrics
    let file: String?
    let gateways: [Pushgateway]
    /// A success that checked less than the command's full run (drill --existing-url without an
    /// archive): published without `last_success`, so it cannot clear an earlier failure's alarm.
    var partial = false

    init(metrics: RunMetrics, file: String?, gateways: [Pushgateway]) {
        self.metrics = metrics
        self.file = file
        self.gateways = gateways
    }

    /// Set a label once it is known (the database, after the connection settings are read).
    static func label(_ name: String, _ value: String) {
        current?.metrics.labels[name] = value
    }

    /// Record measured gauges (written in every outcome, with the outcome's timestamp).
    static func record(_ gauges: [PrometheusFile.Gauge]) {
        for gauge in gauges { current?.metrics.set(gauge) }
    }

    /// How the run ended for its metrics: a SUSPECT backup is no success; a signal or the stall
    /// watchdog stopping the run is a failure, whatever the body returned.
    static func outcome(failure: Error?, context: RunContext) -> RunMetrics.Outcome {
        if context.cancellation.signal != nil { return .failure }
        if case .failure = context.cancellation.reason { return .failure }
        switch failure {
        case nil: return .success
        case let exit as ExitCode: return exit.rawValue == 0 ? .success : .failure
        case let error as ToolError where error.code == .suspectBackup: return .suspect
        // `backup --copy-to`: the backup itself is written and verified (a success, so that
        // RackGatewayBackupFailed does not say there is no backup); the copy's failure is
        // `rgw_backup_copies_failed` and its own alert, RackGatewayBackupCopyFailed.
        case let error as ToolError where error.code == .copyFailed: return .success
        default: return .failure
        }
    }

    /// Write the metrics file and push to each gateway, with the outcome's timestamp. A problem
    /// is a warning: it never changes the run's result or exit status.
    static func publish(failure: Error?, context: RunContext) {
        guard let recorder = current else { return }
        current = nil
        var ended = outcome(failure: failure, context: context)
        if ended == .success && recorder.partial { ended = .suspect }
        let metrics = recorder.metrics.finished(ended, at: context.clock.now())
        if let file = recorder.file {
            do {
                try PrometheusFile(path: file).update(metrics)
            } catch {
                context.output.writeLine("rack-gateway-db: warning: the metrics file \(file) was not written: \(error)")
            }
        }
        for gateway in recorder.gateways {
            do {
                try gateway.push(metrics, clock: context.clock)
            } catch let error as ToolError {
                context.output.writeLine("rack-gateway-db: warning: \(error.message)" + (error.fix.map { " (\($0))" } ?? ""))
            } catch {
                context.output.writeLine("rack-gateway-db: warning: the metrics were not pushed to \(gateway.displayURL): \(error)")
            }
        }
    }
}
