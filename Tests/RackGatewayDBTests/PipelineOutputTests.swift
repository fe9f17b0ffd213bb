import Foundation
import Logging
import RGWPostgres
import Testing
import TestSupport
@testable import RackGatewayDB

/// Issue 29: what the on-call engineer sees of the Convox pipeline: each step as it happens (at a
/// terminal and in logs), one message block per failure, printed commands that run as printed, a
/// confirmation that says what is at stake, one final line, and a typo'd app or rack explained.
@Suite("Convox pipeline: what a person sees")
struct PipelineOutputTests {
    /// The environment a person's shell has when pasting a printed command: the password in
    /// PGPASSWORD, the fake convox and the built binary on PATH.
    static func shell(_ rack: FakeRack, _ live: TestDatabase) -> [String: String] {
        rack.environment().merging(["PGPASSWORD": live.cluster.password, "PATH": PrintedCommands.path(before: rack.directory + "/bin")]) { $1 }
    }

    /// What appeared at a pseudo-terminal, and when: the first time each of `markers` was on the
    /// screen (seconds from the start), and the exit's time and status.
    struct Timeline {
        var chunks: [(t: Double, text: String)] = []
        var exit: (t: Double, status: Int)?
        var text: String { chunks.map(\.text).joined() }

        init(_ file: String) throws {
            for line in try String(contentsOfFile: file, encoding: .utf8).split(separator: "\n") {
                let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as! [String: Any]
                let t = object["t"] as! Double
                if let status = object["exit"] as? Int { exit = (t, status) } else { chunks.append((t, object["text"] as! String)) }
            }
        }

        /// When `marker` was first written (nil: never).
        func first(_ marker: String) -> Double? {
            var seen = ""
            for chunk in chunks {
                seen += chunk.text
                if seen.contains(marker) { return chunk.t }
            }
            return nil
        }
    }

    static func atTerminal(_ arguments: [String], columns: Int, environment: [String: String]) throws -> (Timeline, TerminalTests.Screen) {
        let directory = try TestArchives.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let file = directory + "/timeline.jsonl"
        let output = try Shell.run(TerminalTests.ptyRun, [CLI.executable] + arguments,
                                   environment: CLI.baseEnvironment().merging(environment) { $1 }
                                       .merging(["PTY_RUN_TIMELINE": file, "PTY_RUN_COLUMNS": String(columns)]) { $1 })
        return (try Timeline(file), TerminalTests.Screen(output.stdout))
    }

    /// The issue's "done when": the pipeline under a pseudo-terminal, each waiting step made slow
    /// (every convox call 0.5 s, the processes listed for two more polls, a migrate that sleeps, a
    /// load of 60,000 rows on one connection). Each step's start and end line is on the screen while
    /// the process still runs, in order; the wait shows its time against --stop-timeout, and the
    /// load its own bar.
    @Test func eachStepShowsAsItHappensAtATerminal() throws {
        try SignalTests.withLiveDatabase { live, archive in
            let rack = try FakeRack(count: 2)
            defer { rack.remove() }
            let arguments = ["restore", archive, "--convox-app", rack.app, "--yes", "--database-url", live.url, "--jobs", "1",
                             "--migrate-command", "sleep 1"]
            let slow = rack.environment(["FAKE_CONVOX_SLEEP": "0.5", "FAKE_CONVOX_LINGER": "3", "RGW_PIPELINE_POLL_SECONDS": "0.5"])
            let (timeline, screen) = try Self.atTerminal(arguments, columns: 120, environment: slow)
            let exit = try #require(timeline.exit, "\(timeline.text)")
            #expect(exit.status == 0, "\(screen.lines)")
            let markers = ["...     preflight", "OK      preflight", "...     scale down", "OK      scale down", "...     wait for processes",
                           "waiting: ", "OK      wait for processes", "...     terminate sessions", "...     load", "OK      load",
                           "...     migrate", "OK      migrate", "...     swap", "OK      swap", "...     scale up", "OK      scale up", "Restored "]
            let times = markers.map { timeline.first($0) }
            #expect(times.allSatisfy { $0 != nil }, "every step line was written: \(zip(markers, times).filter { $0.1 == nil }.map(\.0)) in \(screen.lines)")
            let found = times.compactMap { $0 }
            #expect(found == found.sorted(), "in order: \(Array(zip(markers, times)))")
            // Written as it happened, not at the end: the wait's end came before the migrate's sleep
            // of 1 s and the slow swap and scale-up calls, so well before the process ended.
            let waited = try #require(timeline.first("OK      wait for processes"))
            #expect(waited < exit.t - 2, "the wait's line at \(waited) s, the end at \(exit.t) s")
            let started = try #require(timeline.first("...     migrate"))
            #expect(started < exit.t - 1.5, "the migrate's start line at \(started) s, the end at \(exit.t) s")
            // The wait's moving field: its time against the timeout, redrawn in place.
            #expect(screen.shown.contains { $0.hasPrefix("waiting: ") && $0.contains(" of 10m00s (--stop-timeout)") }, "\(screen.shown.prefix(20))")
            // The load's own bar, drawn while the load ran (between its start and end lines).
            let load = timeline.text.components(separatedBy: "...     load").last?.components(separatedBy: "OK      load").first ?? ""
            #expect(load.contains("[#") || load.contains("[."), "a bar during the load: \(load.prefix(400))")
            TerminalTests.expectNoBarLeft(screen, "pipeline")
            #expect(screen.lines.last?.hasPrefix("Restored \(live.name) from ") == true, "the final line: \(screen.lines.suffix(3))")

            // At 60 columns the wait's time against its timeout is still in view.
            let (_, narrow) = try Self.atTerminal(arguments, columns: 60, environment: slow)
            #expect(narrow.shown.contains { $0.hasPrefix("waiting: ") && $0.contains(" of 10m00s") && $0.count < 60 }, "\(narrow.shown.prefix(20))")
            TerminalTests.expectNoBarLeft(narrow, "pipeline at 60 columns")
        }
    }

    /// Without a terminal the same steps are timestamped log lines as they happen (no bar, no
    /// terminal controls), and stdout has the result.
    @Test func withoutATerminalTheStepsAreTimestampedLogLines() throws {
        try PipelineTests.withLiveDatabase { live, archive in
            let rack = try FakeRack(count: 2)
            defer { rack.remove() }
            let result = try CLI.run(["restore", archive, "--convox-app", rack.app, "--yes", "--database-url", live.url], environment: rack.environment())
            #expect(result.status == 0, "\(result)")
            for step in ["preflight", "scale down", "wait for processes", "load", "swap", "scale up"] {
                let started = result.stderr.split(separator: "\n").first { $0.contains("pipeline step started (\(ToolLogHandler.field("step", step)))") }
                let done = result.stderr.split(separator: "\n").first { $0.contains("pipeline step done (") && $0.hasSuffix(" \(ToolLogHandler.field("step", step)))") }
                #expect(started?.firstMatch(of: /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d/) != nil && done?.contains("seconds=") == true, "\(step): \(result.stderr)")
            }
            #expect(!result.output.contains("\u{1B}["), "no terminal controls in a pipe")
            #expect(result.stdout.split(separator: "\n").last?.hasPrefix("Restored \(live.name) from ") == true, "\(result.stdout)")
        }
    }

    /// A failure is one block on stderr: what failed, the state now, what to run, each once; the
    /// same in `--json`'s fields. Before: a wrong password was said twice (the step line and the
    /// error), and recovery lines twice (stdout, then `Recovery:` on stderr).
    @Test func aFailureIsOneMessageBlock() throws {
        try PipelineTests.withLiveDatabase { live, archive in
            let rack = try FakeRack(count: 3)
            defer { rack.remove() }
            let wrong = live.cluster.url(database: live.name, password: "wrong-password")
            let denied = try CLI.run(["restore", archive, "--convox-app", rack.app, "--yes", "--database-url", wrong], environment: rack.environment())
            #expect(denied.status == 1, "\(denied)")
            #expect(denied.output.components(separatedBy: "password authentication failed").count == 2, "the error once: \(denied)")
            #expect(denied.stderr.contains("error: the restore pipeline stopped at preflight: "), "\(denied)")
            #expect(denied.stderr.contains("\nNow: Nothing was changed: gateway was not scaled, the live database \(live.name) is untouched, no new database was created."), "\(denied)")
            #expect(denied.stdout.isEmpty && !denied.output.contains("Recovery"), "\(denied)")

            // Past the swap: the service is down. Each fact once, and the commands under what they are for.
            let stranded = try CLI.run(["restore", archive, "--convox-app", rack.app, "--yes", "--database-url", live.url],
                                       environment: rack.environment(["FAKE_CONVOX_FAIL_SCALE_TO": "3"]))
            #expect(stranded.status == 1 && stranded.stdout.isEmpty, "\(stranded)")
            for fact in ["stopped at scale up: ", "Now: gateway is at 0, not back at 3.", "The restore itself finished", "To bring gateway back up:\n  convox scale gateway --count 3 -a \(rack.app)\n",
                         "To go back to the previous database:\n  convox scale gateway --count 0", "When satisfied, drop the previous database:\n  psql "] {
                #expect(stranded.stderr.components(separatedBy: fact).count == 2, "once: \(fact) in \(stranded.stderr)")
            }
            #expect(!stranded.stderr.contains("scale refused by the rack (injected)\n") || stranded.stderr.components(separatedBy: "scale refused by the rack").count == 2, "\(stranded)")

            // --json: the same in fields.
            try rack.setCount(3)
            let json = try CLI.run(["restore", archive, "--convox-app", rack.app, "--yes", "--database-url", wrong, "--json"], environment: rack.environment())
            let report = try CLI.decode(PipelineReport.self, json.stdout)
            #expect(report.failedStep == "preflight" && report.error?.contains("password authentication failed") == true, "\(json)")
            #expect(report.now == ["Nothing was changed: gateway was not scaled, the live database \(live.name) is untouched, no new database was created."])
            #expect(report.commands == [], "\(json)")
            Self.dropPrevious(live)
        }
    }

    static func dropPrevious(_ live: TestDatabase) {
        SignalTests.dropAll(like: live.name + "\\_%", on: live)
    }

    /// Every command the pipeline prints runs in `sh` as printed, with the password only in
    /// PGPASSWORD: the way back after a swap, dropping the previous database, the scale-up after a
    /// failed one, the safety backup's restore after a failed in-place load.
    @Test func everyPrintedCommandRunsAsPrinted() throws {
        try PipelineTests.withLiveDatabase { live, archive in
            let rack = try FakeRack(count: 3)
            defer { rack.remove() }
            let arguments = ["restore", archive, "--convox-app", rack.app, "--yes", "--database-url", live.url]
            let swapped = try CLI.run(arguments, environment: rack.environment())
            #expect(try swapped.status == 0 && PipelineTests.users(live) == "200", "\(swapped)")
            #expect(!swapped.output.contains(live.cluster.password))
            let back = PrintedCommands.under("To go back to the previous database:", in: swapped.stdout)
            #expect(back.count == 3 && back[1].hasPrefix("psql postgres://postgres@") && back[1].contains(":\(live.cluster.port)/postgres -c "), "\(swapped.stdout)")
            // A session still on the live database (a pod still stopping after `scale`): the way
            // back ends it instead of failing with "is being accessed by other users".
            let held = try Connection(settings: try ConnectionSettings(conninfo: live.url))
            try withExtendedLifetime(held) {
                for command in back {
                    let output = try PrintedCommands.run(command, environment: Self.shell(rack, live))
                    #expect(output.status == 0, "\(command): \(output.stderr)")
                }
            }
            #expect(try PipelineTests.users(live) == "250" && rack.count() == 3, "the way back went back")
            Self.dropPrevious(live)

            let again = try CLI.run(arguments, environment: rack.environment())
            let report = try #require(again.status == 0 ? again.stdout : nil, "\(again)")
            let previous = try #require(report.firstMatch(of: /kept as (\w+)\./).map { String($0.1) }, "\(report)")
            let drop = PrintedCommands.under("When satisfied, drop the previous database:", in: report)
            #expect(drop.count == 1)
            for command in drop {
                let output = try PrintedCommands.run(command, environment: Self.shell(rack, live))
                #expect(output.status == 0, "\(command): \(output.stderr)")
            }
            #expect(try SignalTests.databases(like: previous, on: live).isEmpty, "dropped as printed")

            let failedUp = try CLI.run(arguments, environment: rack.environment(["FAKE_CONVOX_FAIL_SCALE_TO": "3"]))
            let up = PrintedCommands.under("To bring gateway back up:", in: failedUp.stderr)
            #expect(try failedUp.status == 1 && up.count == 1 && rack.count() == 0, "\(failedUp)")
            for command in up { #expect(try PrintedCommands.run(command, environment: Self.shell(rack, live)).status == 0, "\(command)") }
            #expect(try rack.count() == 3)
            Self.dropPrevious(live)
        }
    }

    /// The in-place pipeline's recovery after its load failed past the drop, and a plain restore's
    /// clearing commands (TargetLifecycle.clearing) after a Ctrl-C, run as printed.
    @Test func recoveryAndClearingCommandsRunAsPrinted() throws {
        try PipelineTests.withLiveDatabase { live, archive in
            let rack = try FakeRack(count: 2)
            defer { rack.remove() }
            let directory = URL(fileURLWithPath: archive).deletingLastPathComponent().path
            let broken = directory + "/broken/" + URL(fileURLWithPath: archive).lastPathComponent
            try FileManager.default.createDirectory(atPath: directory + "/broken", withIntermediateDirectories: true)
            try FileManager.default.copyItem(atPath: archive, toPath: broken)
            try FileManager.default.copyItem(atPath: archive + ".sha256", toPath: broken + ".sha256")
            let manifest = try ArchiveReader(path: broken).manifest
            let member = try #require(manifest.members.last { $0.kind == .data })
            try TestArchives.tamper(broken, sidecarToo: true) { $0[member.offset + member.length / 2] ^= 0x5A }
            // Signed as production's are, with RGW_VERIFY_KEY in the environment of the run and of
            // the shell the commands are pasted into: the safety backup is unsigned, so its restore
            // must clear the variable (pasted as printed it was refused, exit 2).
            let keys = try TestKeys.make()
            _ = try Shell.runChecked("minisign", ["-S", "-s", keys.signKey, "-m", broken])
            let keyed = ["RGW_VERIFY_KEY": keys.publicKeyFile]
            let failed = try CLI.run(["restore", broken, "--convox-app", rack.app, "--in-place", "--yes", "--database-url", live.url, "--dir", directory],
                                     environment: rack.environment(keyed))
            #expect(try failed.status == 1 && rack.count() == 0, "\(failed)")
            let recovery = PrintedCommands.under("To restore the safety backup, then bring gateway back up:", in: failed.stderr)
            #expect(recovery.count == 2 && recovery[0].hasPrefix("RGW_VERIFY_KEY= rack-gateway-db restore ") && !recovery[0].contains(live.cluster.password), "\(failed)")
            for command in recovery {
                let output = try PrintedCommands.run(command, environment: Self.shell(rack, live).merging(keyed) { $1 })
                #expect(output.status == 0, "\(command): \(output)")
            }
            #expect(try PipelineTests.users(live) == "250" && rack.count() == 2, "the safety backup is back, and the service")
        }
        try SignalTests.withLiveDatabase { live, archive in
            let target = live.name + "_target"
            let run = try RunningCLI(["restore", archive, "--target-url", live.cluster.url(database: target), "--clean", "--yes"])
            #expect(run.waitFor("restore phase done"), "\(run.stderr)")
            run.signal(SIGINT)
            let result = run.finish()
            #expect(result.status == 130, "\(result)")
            let again = PrintedCommands.under("To restore again over it:", in: result.stderr)
            let drop = PrintedCommands.under("Or to drop it:", in: result.stderr)
            #expect(again.count == 1 && drop.count == 1, "\(result)")
            let environment = ["PGPASSWORD": live.cluster.password, "PATH": PrintedCommands.path()]
            for command in again + drop {
                let output = try PrintedCommands.run(command, environment: environment)
                #expect(output.status == 0, "\(command): \(output)")
            }
            #expect(try SignalTests.databases(like: target, on: live).isEmpty, "dropped as printed")
        }
    }

    /// The confirmation names the archive's time and age and what is lost, and the mode (swap:
    /// the current database kept as NAME, never "over"; in place: backed up first into DIR). A
    /// success ends with one line.
    @Test func theConfirmationSaysWhatIsAtStakeAndASuccessEndsWithOneLine() throws {
        try PipelineTests.withLiveDatabase { live, archive in
            let rack = try FakeRack(count: 2)
            defer { rack.remove() }
            let logger = Logger(label: "test") { _ in SwiftLogNoOpLogHandler() }
            for inPlace in [false, true] {
                var options = PipelineOptions(app: rack.app, jobs: 2, migrations: try MigrationSet.resolve(explicitDirectory: nil, environment: [:]))
                options.inPlace = inPlace
                options.safetyDirectory = "/srv/backups/pre-restore"
                options.environment = rack.environment()
                let pipeline = RestorePipeline(live: try RestoreTarget(settings: try live.settings), options: options, logger: logger)
                var question: String?
                let report = pipeline.run(path: archive) { text in question = text; return false }
                let text = try #require(question, "\(report.error ?? "")")
                #expect(try report.errorCode == .notConfirmed && rack.count() == 2)
                #expect(text.firstMatch(of: /\(taken \d\d:\d\dZ, \d+ seconds ago: writes since then are not in it\)/) != nil, "\(text)")
                #expect(!text.contains(" over "), "\(text)")
                if inPlace {
                    #expect(text.contains("In-place: \(live.name) is backed up first into /srv/backups/pre-restore/, then dropped and restored; once it is dropped nothing is undone"), "\(text)")
                } else {
                    #expect(text.firstMatch(of: /the current database is kept as \w+_pre_restore_\d{8}_\d{6}\./) != nil, "\(text)")
                }
                #expect(text.hasSuffix("service gateway (count 2) is scaled to 0 meanwhile, and to 2 afterwards.\nContinue?"), "\(text)")
            }

            let result = try CLI.run(["restore", archive, "--convox-app", rack.app, "--yes", "--database-url", live.url], environment: rack.environment())
            let name = URL(fileURLWithPath: archive).lastPathComponent
            let last = result.stdout.split(separator: "\n").last.map(String.init) ?? ""
            #expect(last.firstMatch(of: /^Restored \w+ from \S+ \(taken \d\d:\d\dZ, \d+ seconds ago\): gateway scaled back to 2; the previous database is kept as (\w+_pre_restore_\d{8}_\d{6})\.$/) != nil
                    && last.contains(name), "\(result)")
            Self.dropPrevious(live)
        }
    }

    /// An app or rack that does not exist: what exists (as convox lists it), that nothing was
    /// changed, and the fix; nothing is scaled.
    @Test func anUnknownAppOrRackSaysWhatExists() throws {
        try PipelineTests.withLiveDatabase { live, archive in
            let rack = try FakeRack(count: 2)
            defer { rack.remove() }
            var state = try String(contentsOfFile: rack.state, encoding: .utf8)
            state = String(state.dropLast()) + #", "racks": ["acme/production", "acme/staging"]}"#
            try state.write(toFile: rack.state, atomically: true, encoding: .utf8)
            let app = try CLI.run(["restore", archive, "--convox-app", rack.app + "x", "--yes", "--database-url", live.url], environment: rack.environment())
            #expect(app.status == 1, "\(app)")
            #expect(app.stderr.contains("app \(rack.app)x does not exist; `convox apps` lists \(rack.app)"), "\(app)")
            #expect(app.stderr.contains("Now: Nothing was changed") && app.stderr.contains("\nPass --convox-app with the app's name"), "\(app)")
            let typo = try CLI.run(["restore", archive, "--convox-app", rack.app, "--rack", "acme/prod", "--yes", "--database-url", live.url], environment: rack.environment())
            #expect(typo.status == 1, "\(typo)")
            #expect(typo.stderr.contains("rack acme/prod is not a rack the convox CLI knows; `convox racks` lists acme/production, acme/staging"), "\(typo)")
            #expect(typo.stderr.contains("Now: Nothing was changed") && typo.stderr.contains("\nPass --rack with the rack's name"), "\(typo)")
            #expect(try rack.calls.allSatisfy { $0.first != "scale" || !$0.contains("--count") } && rack.count() == 2, "nothing scaled")
            let right = try CLI.run(["restore", archive, "--convox-app", rack.app, "--rack", "acme/production", "--dry-run", "--database-url", live.url],
                                    environment: rack.environment())
            #expect(right.status == 0 && right.stdout.contains("-a \(rack.app) -r acme/production"), "\(right)")
        }
    }
}
