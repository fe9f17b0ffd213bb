import Foundation
import Synchronization
import Testing
import TestSupport
@testable import RackGatewayDB

/// `--notify` and `--webhook` (issue 30) with the built binary and a real HTTP receiver
/// (`Tests/Fixtures/http-receiver`) that records what arrived: the healthchecks-style pings with
/// one run id, the webhook's JSON, retries, and a receiver that is down (a warning, the exit status
/// unchanged).
@Suite("notifications: --notify and --webhook against a local receiver")
struct NotificationTests {
    /// The `rid` query parameter of a ping's path.
    static func runID(_ path: String) -> String? {
        URLComponents(string: "http://x" + path)?.queryItems?.first { $0.name == "rid" }?.value
    }

    /// The path without its query.
    static func route(_ path: String) -> String { String(path.split(separator: "?", maxSplits: 1)[0]) }

    /// A JSON object without `text`, for comparing a webhook's body with the `--json` report.
    static func withoutText(_ object: [String: Any]) -> NSDictionary {
        var object = object
        object["text"] = nil
        return object as NSDictionary
    }

    @Test func aBackupPingsStartAndSuccessWithOneRunIDAndPostsItsReport() throws {
        try TestDatabase.withMigrated { database in
            try database.psql("INSERT INTO users (email) VALUES ('notify@example.com')")
            let receiver = try HTTPReceiver()
            let directory = try TestArchives.temporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let result = try CLI.run(["backup", "--json", "--dir", directory, "--database-url", database.url,
                                      "--notify", receiver.url("/ping/uuid-1"), "--webhook", receiver.url("/hooks/T000/B000/XXXX")])
            #expect(result.status == 0, "\(result)")
            let requests = receiver.requests
            #expect(requests.map { Self.route($0.path) } == ["/ping/uuid-1/start", "/ping/uuid-1", "/hooks/T000/B000/XXXX"], "\(requests.map(\.path))")
            #expect(requests.allSatisfy { $0.method == "POST" })
            let start = try #require(requests.first), end = requests[1], hook = requests[2]
            let runID = try #require(Self.runID(start.path))
            #expect(Self.runID(end.path) == runID)
            #expect(start.body.contains("rack-gateway-db backup started") && start.body.contains(runID))
            // The success ping: the summary, then the last lines of the log (no terminal: info lines).
            #expect(end.body.hasPrefix("rack-gateway-db backup: backed up "), "\(end.body)")
            #expect(end.body.contains("last log lines:") && end.body.contains("backup written"), "\(end.body)")
            // The webhook: exactly the --json report, plus the one-line summary as `text`.
            #expect(hook.contentType == "application/json")
            let body = try #require(hook.json, "\(hook.body)")
            let report = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
            #expect(Self.withoutText(body) == report as NSDictionary)
            let text = try #require(body["text"] as? String)
            #expect(text.hasPrefix("rack-gateway-db backup: backed up ") && text.contains(report["file"] as! String) && !text.contains("\n"))
            // No password anywhere.
            let password = try #require(try database.settings.effectiveValue("password"))
            #expect(!requests.contains { $0.body.contains(password) })
        }
    }

    @Test func aFailedRunPingsItsExitStatusAndPostsTheErrorDocument() throws {
        let receiver = try HTTPReceiver()
        let directory = try TestArchives.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        // Nothing listens on the port: the backup fails (exit 1). The URLs come from the environment.
        let port = try TestCluster.freePort()
        let result = try CLI.run(["backup", "--json", "--dir", directory, "--database-url", "postgres://backup:pw-Sekrit-4711@127.0.0.1:\(port)/gone"],
                                 environment: ["RGW_NOTIFY_URL": receiver.url("/ping/uuid-2?create=1"), "RGW_WEBHOOK_URL": receiver.url("/hook")])
        #expect(result.status == 1, "\(result)")
        let requests = receiver.requests
        #expect(requests.map { Self.route($0.path) } == ["/ping/uuid-2/start", "/ping/uuid-2/1", "/hook"], "\(requests.map(\.path))")
        // The URL's own query stays, the run id joins it, the same on both pings.
        #expect(requests[0].path.contains("?create=1&rid="))
        #expect(Self.runID(requests[0].path) != nil && Self.runID(requests[0].path) == Self.runID(requests[1].path))
        #expect(requests[1].body.hasPrefix("rack-gateway-db backup FAILED (exit 1): cannot connect to PostgreSQL"), "\(requests[1].body)")
        #expect(requests[1].body.contains("rack-gateway-db: error: cannot connect"), "the log's last lines: \(requests[1].body)")
        let body = try #require(requests[2].json, "\(requests[2].body)")
        let printed = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
        #expect(Self.withoutText(body) == printed as NSDictionary)
        let error = try #require(body["error"] as? [String: Any])
        #expect(error["exit_status"] as? Int == 1)
        #expect((body["text"] as? String)?.hasPrefix("rack-gateway-db backup FAILED (exit 1): ") == true)
        #expect(!requests.contains { $0.body.contains("pw-Sekrit-4711") })
    }

    @Test func aCheckThatFindsNoFreshBackupPingsExit2AndADrillReportsItsVerdict() throws {
        try TestDatabase.withMigrated { database in
            let receiver = try HTTPReceiver()
            let directory = try TestArchives.temporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: directory) }
            // No archive at all: the backup age check fails alone (exit 2), and the ping says 2.
            let check = try CLI.run(["check", "--database-url", database.url, "--dir", directory, "--max-backup-age", "26h",
                                     "--notify", receiver.url("/check")])
            #expect(check.status == 2, "\(check)")
            #expect(receiver.requests.map { Self.route($0.path) } == ["/check/start", "/check/2"])
            // The summary line says what is wrong, not only which item failed (a ping's first line).
            let summary = receiver.requests.last?.body.split(separator: "\n").first.map(String.init) ?? ""
            #expect(summary.contains("check failed: backups: no good archive in \(directory)"), "\(summary)")

            // A drill that passes: its success ping and its report, in text mode too (no --json).
            _ = try TestArchives.backup(database, directory: directory)
            let drill = try CLI.run(["drill", "--latest", "--dir", directory, "--database-url", database.url,
                                     "--notify", receiver.url("/drill"), "--webhook", receiver.url("/drill-hook")])
            #expect(drill.status == 0, "\(drill)")
            let requests = Array(receiver.requests.dropFirst(2))
            #expect(requests.map { Self.route($0.path) } == ["/drill/start", "/drill", "/drill-hook"])
            let body = try #require(requests.last?.json)
            #expect(body["ok"] as? Bool == true)
            #expect((body["checks"] as? [Any])?.isEmpty == false)
            #expect((body["text"] as? String)?.contains("PASSED") == true, "\(body)")
        }
    }

    @Test func aDeadReceiverIsAWarningAndNeverTheExitStatus() throws {
        let directory = try TestArchives.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let dead = "http://127.0.0.1:\(try TestCluster.freePort())"
        let prune = try CLI.run(["prune", "--json", "--dir", directory, "--keep-last", "1",
                                 "--notify", dead + "/ping/secret-uuid", "--webhook", dead + "/services/T1/B1/secret-token"])
        #expect(prune.status == 0, "\(prune)")
        // The report on stdout is untouched; stderr warns once per request, naming the host only.
        #expect((try? JSONSerialization.jsonObject(with: Data(prune.stdout.utf8))) != nil, "\(prune.stdout)")
        for what in ["the start ping", "the success ping", "the webhook"] {
            #expect(prune.stderr.contains("warning: could not send \(what) to \(dead)/… ("), "\(prune.stderr)")
        }
        #expect(prune.stderr.contains("3 attempts"))
        #expect(!prune.stderr.contains("secret"))

        // A failing run keeps its own status (64 here: no database configured), dead receiver or not.
        let backup = try CLI.run(["backup", "--dir", directory, "--notify", dead + "/ping"])
        #expect(backup.status == 64, "\(backup)")
        #expect(backup.stderr.contains("warning: could not send the failure ping"))
    }

    @Test func aReceiverDownForAMomentGetsTheRetryAnd4xxIsNotRetried() throws {
        let directory = try TestArchives.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        // The first two requests get 500: the start ping's third try arrives, nobody is warned.
        let flaky = try HTTPReceiver(failFirst: 2)
        let prune = try CLI.run(["prune", "--dir", directory, "--keep-last", "1", "--notify", flaky.url("/p")])
        #expect(prune.status == 0, "\(prune)")
        #expect(flaky.requests.map { "\(Self.route($0.path)) \($0.status)" } == ["/p/start 500", "/p/start 500", "/p/start 200", "/p 200"])
        #expect(Set(flaky.requests.map { Self.runID($0.path) }).count == 1)
        #expect(!prune.stderr.contains("warning"), "\(prune.stderr)")

        // 404 (an unknown check): a client error, asked once, then a warning.
        let missing = try HTTPReceiver(status: 404)
        let again = try CLI.run(["prune", "--dir", directory, "--keep-last", "1", "--notify", missing.url("/p")])
        #expect(again.status == 0, "\(again)")
        #expect(missing.requests.map { Self.route($0.path) } == ["/p/start", "/p"])
        #expect(again.stderr.contains("warning: could not send the start ping to \(missing.url(""))/… (HTTP 404, 1 attempt)"), "\(again.stderr)")
    }

    @Test func aURLThatIsNotHTTPIsAUsageErrorThatDoesNotShowIt() throws {
        let option = try CLI.run(["restore", "--latest", "--notify", "ftp://example.com/secret-path", "--dir", "/nonexistent"])
        #expect(option.status == 64, "\(option)")
        #expect(option.stderr.contains("--notify takes an http:// or https:// URL"), "\(option.stderr)")
        #expect(!option.stderr.contains("secret-path"))
        // A command without notifications does not take the option.
        #expect(try CLI.run(["list", "--notify", "http://127.0.0.1/x"]).status == 64)
    }

    /// A malformed URL in the environment (a webhook pasted without its https://) is a warning at the
    /// start and the end, never a refusal: the nightly jobs that share the variable still run, and
    /// the well-formed ping still reports them. `--notify ""` turns RGW_NOTIFY_URL off.
    @Test func aMalformedURLInTheEnvironmentIsAWarningAndTheBackupStillRuns() throws {
        try TestDatabase.withMigrated { database in
            let receiver = try HTTPReceiver()
            let directory = try TestArchives.temporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let environment = ["RGW_WEBHOOK_URL": "hooks.slack.com/services/T000/secret-path", "RGW_NOTIFY_URL": receiver.url("/ping/uuid-env")]
            let result = try CLI.run(["backup", "--dir", directory, "--database-url", database.url], environment: environment)
            #expect(result.status == 0, "\(result)")
            #expect(try FileManager.default.contentsOfDirectory(atPath: directory).contains { $0.hasSuffix(".sql.gz") })
            let warnings = result.stderr.components(separatedBy: "warning: RGW_WEBHOOK_URL holds a value that is not an http:// or https:// URL").count - 1
            #expect(warnings == 2, "said at the start and at the end: \(result.stderr)")
            #expect(result.stderr.contains("(it does not start with http:// or https://)"), "\(result.stderr)")
            #expect(!result.stderr.contains("secret-path") && !result.stdout.contains("secret-path"))
            let requests = receiver.requests
            #expect(requests.map { Self.route($0.path) } == ["/ping/uuid-env/start", "/ping/uuid-env"], "\(requests.map(\.path))")
            #expect(requests.last?.body.contains("RGW_WEBHOOK_URL holds a value") == true, "the end ping's log lines carry the warning")
            #expect(!requests.contains { $0.body.contains("secret-path") })

            let off = try CLI.run(["backup", "--dir", directory, "--prefix", "off", "--database-url", database.url, "--notify", ""], environment: environment)
            #expect(off.status == 0, "\(off)")
            #expect(receiver.requests.count == 2, "--notify \"\" sends nothing: \(receiver.requests.map(\.path))")
        }
    }

    /// A receiver that takes the request and never answers holds the run up for the timeout of each
    /// try and the pauses between them, no longer; then a warning.
    @Test func aStalledReceiverCostsTheTimeoutAndNoMore() throws {
        let stalled = try HTTPReceiver(hang: true)
        let warnings = Mutex<[String]>([])
        var notifier = Notifier(pings: [stalled.url("/p")], webhooks: []) { line in warnings.withLock { $0.append(line) } }
        notifier.timeoutSeconds = 1
        notifier.retryDelay = 0.2
        let clock = ContinuousClock()
        let took = clock.measure { notifier.started(body: "started") }
        #expect(took < .seconds(6), "\(took)")
        #expect(took >= .seconds(3), "three tries of 1 s each: \(took)")
        #expect(stalled.requests.count == 3)
        let said = warnings.withLock { $0 }
        #expect(said.count == 1 && said[0].contains("could not send the start ping to \(stalled.url(""))/…") && said[0].contains("3 attempts"), "\(said)")
    }

    @Test func pingURLsAndScrubbing() {
        #expect(Notifier.pingURL("https://hc-ping.com/abc/", suffix: "start", runID: "r1") == "https://hc-ping.com/abc/start?rid=r1")
        #expect(Notifier.pingURL("https://kuma.example/api/push/T?status=up", suffix: "1", runID: "r1") == "https://kuma.example/api/push/T/1?status=up&rid=r1")
        #expect(Notifier.pingURL("https://hc-ping.com/abc", suffix: nil, runID: "r1") == "https://hc-ping.com/abc?rid=r1")
        #expect(Notifier.pingURL("https://hc-ping.com/abc/", suffix: nil, runID: "r1") == "https://hc-ping.com/abc?rid=r1")
        #expect(Notifier.shown("https://hooks.slack.com/services/T/B/token") == "https://hooks.slack.com/…")
        #expect(Notifier.scrubbed("at postgres://app:hunter2@db:5432/x and host=db password='a b' user=x")
                == "at postgres://app:***@db:5432/x and host=db password=*** user=x")
    }
}
