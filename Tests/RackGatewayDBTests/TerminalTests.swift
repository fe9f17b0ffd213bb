import Foundation
import Testing
import TestSupport
@testable import RackGatewayDB

/// Issue 20: at a terminal the progress bar and the summary, no info log lines, and nothing written
/// into the middle of a bar. The commands run under a pseudo-terminal (Tests/Fixtures/pty-run) and
/// their bytes are replayed through a screen model of the three controls the tool uses.
@Suite("terminal output")
struct TerminalTests {
    struct Screen {
        /// Lines that ended with a newline, as they stay on the screen.
        var lines: [String] = []
        /// Every state a line had before it was erased or committed (what a person saw flash by).
        var shown: [String] = []
        var current: [Character] = []
        var cursor = 0

        init(_ bytes: String) {
            var iterator = Array(bytes).makeIterator()
            while let char = iterator.next() {
                switch char {
                case "\r": cursor = 0
                case "\n", "\r\n":
                    lines.append(String(current))
                    current = []
                    cursor = 0
                case "\u{1B}":
                    // CSI K (erase to the end of the line) is the only sequence the tool writes.
                    var sequence = ""
                    while let next = iterator.next() {
                        sequence.append(next)
                        if next.isLetter { break }
                    }
                    if sequence == "[K" {
                        if !current.isEmpty { shown.append(String(current)) }
                        current.removeSubrange(min(cursor, current.count)...)
                    }
                default:
                    if cursor < current.count { current[cursor] = char } else { current.append(char) }
                    cursor += 1
                }
            }
            if !current.isEmpty { lines.append(String(current)) }
        }
    }

    static var ptyRun: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Fixtures/pty-run").path
    }

    static func atTerminal(_ arguments: [String], environment: [String: String] = [:]) throws -> (status: Int32, screen: Screen, raw: String) {
        let output = try Shell.run(ptyRun, [CLI.executable] + arguments, environment: CLI.baseEnvironment().merging(environment) { $1 })
        return (output.status, Screen(output.stdout), output.stdout)
    }

    /// A line that holds a bar (its `[###...]`) is never left on the screen, and no log line carries one.
    static func expectNoBarLeft(_ screen: Screen, _ what: String, sourceLocation: SourceLocation = #_sourceLocation) {
        for line in screen.lines {
            #expect(!(line.contains("[#") || line.contains("[.")), "\(what): a bar left in a line: \(line)", sourceLocation: sourceLocation)
            #expect(!line.contains(" info rack-gateway-db: "), "\(what): an info log line at a terminal: \(line)", sourceLocation: sourceLocation)
        }
    }

    @Test func backupRestoreAndDrillShowABarAndTheirSummaryAndNoLogLines() throws {
        try TestDatabase.withSampleData(events: 60000) { source in
            let directory = try TestArchives.temporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let backup = try Self.atTerminal(["backup", "--database-url", source.url, "--dir", directory, "--jobs", "1"])
            #expect(backup.status == 0, "\(backup.screen.lines)")
            Self.expectNoBarLeft(backup.screen, "backup")
            #expect(backup.screen.lines.first?.hasPrefix("Backed up ") == true, "the summary first: \(backup.screen.lines)")
            #expect(backup.screen.lines.count == 3 && backup.screen.lines[2].hasPrefix("  sha256 "), "\(backup.screen.lines)")
            #expect(backup.screen.shown.contains { $0.contains("] backup: tables ") }, "a labelled bar was drawn: \(backup.screen.shown.prefix(3))")
            let archive = try #require(try FileManager.default.contentsOfDirectory(atPath: directory).first { $0.hasSuffix(".sql.gz") })

            try TestDatabase.withUnused { target in
                let restore = try Self.atTerminal(["restore", directory + "/" + archive, "--target-url", target.url, "--jobs", "2"])
                #expect(restore.status == 0, "\(restore.screen.lines)")
                Self.expectNoBarLeft(restore.screen, "restore")
                #expect(restore.screen.lines.first?.hasPrefix("Restored ") == true, "\(restore.screen.lines)")
                #expect(restore.screen.lines.count == 4 && restore.screen.lines.last?.hasPrefix("  planner statistics: ") == true, "\(restore.screen.lines)")
            }

            let drill = try Self.atTerminal(["drill", directory + "/" + archive, "--database-url", source.url, "--jobs", "2"])
            #expect(drill.status == 0, "\(drill.screen.lines)")
            Self.expectNoBarLeft(drill.screen, "drill")
            #expect(drill.screen.lines.first?.hasPrefix("Drill of ") == true, "\(drill.screen.lines)")
            #expect(drill.screen.lines.last?.hasPrefix("Drill PASSED") == true, "\(drill.screen.lines)")
            // Every check once (not also as a log line), and every bar with a label.
            let checks = drill.screen.lines.filter { $0.hasPrefix("  PASS ") }
            #expect(checks.count >= 5 && Set(checks).count == checks.count, "\(drill.screen.lines)")
            #expect(!drill.screen.shown.contains { $0.contains(": ,") || $0.hasPrefix(",") }, "a bar without its label: \(drill.screen.shown)")

            // -v: debug lines, each a whole line above the bar; the summary still intact.
            let verbose = try Self.atTerminal(["drill", directory + "/" + archive, "--database-url", source.url, "--jobs", "2", "-v"])
            #expect(verbose.status == 0)
            Self.expectNoBarLeft(verbose.screen, "drill -v")
            let logged = verbose.screen.lines.filter { $0.hasPrefix("debug: ") || $0.hasPrefix("info: ") }
            #expect(logged.count > 5, "\(verbose.screen.lines.prefix(10))")
            #expect(verbose.screen.lines.last?.hasPrefix("Drill PASSED") == true)
        }
    }

    /// Issue 29: at 60 columns the restore's bar keeps its moving fields (the builds, the elapsed
    /// time) and never wraps; a drill's Ctrl-C, typed at the terminal, draws no bar after the
    /// interruption's message, and the drill says what became of its scratch database.
    @Test func atSixtyColumnsTheBarKeepsItsMovingFieldsAndCtrlCEndsIt() throws {
        try TestDatabase.withSampleData(events: 60000) { source in
            let directory = try TestArchives.temporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let backup = try CLI.run(["backup", "--database-url", source.url, "--dir", directory])
            #expect(backup.status == 0, "\(backup)")
            let archive = try #require(try FileManager.default.contentsOfDirectory(atPath: directory).first { $0.hasSuffix(".sql.gz") })
            let narrow = ["PTY_RUN_COLUMNS": "60", "COLUMNS": "60"]

            try TestDatabase.withUnused { target in
                let restore = try Self.atTerminal(["restore", directory + "/" + archive, "--target-url", target.url, "--jobs", "2"], environment: narrow)
                #expect(restore.status == 0, "\(restore.screen.lines)")
                Self.expectNoBarLeft(restore.screen, "restore")
                let bars = restore.screen.shown.filter { !$0.hasPrefix("^C") }
                #expect(bars.allSatisfy { $0.count <= 58 }, "a bar wider than 60 columns less two: \(bars.filter { $0.count > 58 })")
                let loading = bars.filter { $0.contains("data: ") }
                #expect(!loading.isEmpty, "the load was drawn: \(bars)")
                for bar in loading {
                    #expect(bar.contains(", builds ") && bar.hasSuffix(" elapsed"), "the builds and the elapsed time at 60 columns: \(bar)")
                }
            }

            let drill = try Self.atTerminal(["drill", directory + "/" + archive, "--database-url", source.url, "--jobs", "2"],
                                            environment: narrow.merging(["PTY_RUN_INTERRUPT_AFTER": "data: "]) { $1 })
            let raw = drill.raw
            #expect(drill.status == 130, "\(drill.screen.lines)")
            let message = try #require(raw.range(of: "SIGINT (Ctrl-C) received"), "\(drill.screen.lines)")
            let after = raw[message.upperBound...]
            #expect(!after.contains(" elapsed") && !after.contains("[#") && !after.contains("[."), "a bar drawn after the interruption: \(after)")
            Self.expectNoBarLeft(drill.screen, "drill")
            let scratch = try #require(drill.screen.lines.joined(separator: "\n").firstMatch(of: /in scratch database (rgw_drill_\S+)/).map { String($0.1) })
            #expect(drill.screen.lines.contains { $0.hasPrefix("Drill STOPPED") && $0.hasSuffix("scratch database \(scratch) dropped.") }, "\(drill.screen.lines)")
            #expect(try source.psql("SELECT count(*) FROM pg_database WHERE datname = '\(scratch)'").trimmingCharacters(in: .whitespacesAndNewlines) == "0",
                    "the scratch database is gone")
        }
    }

    /// Issue 29: every log line carries one label, whichever module wrote it (swift-log's stream
    /// handler added `[RackGatewayDB]` or `[rack_gateway_db]`, the Swift module of the call).
    @Test func logLinesCarryOneLabel() throws {
        try TestDatabase.withSampleData(events: 1000) { source in
            let directory = try TestArchives.temporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: directory) }
            #expect(try CLI.run(["backup", "--database-url", source.url, "--dir", directory]).status == 0)
            try TestDatabase.withUnused { target in
                // `--latest chose an archive` is logged by the command, the restore's phases by the core.
                let restore = try CLI.run(["restore", "--latest", "--dir", directory, "--target-url", target.url])
                #expect(restore.status == 0, "\(restore)")
                let lines = restore.stderr.split(separator: "\n").map(String.init)
                #expect(lines.contains { $0.contains(" info rack-gateway-db: --latest chose an archive") }, "\(lines)")
                #expect(lines.contains { $0.contains(" info rack-gateway-db: restore phase done") }, "\(lines)")
                for line in lines {
                    #expect(line.firstMatch(of: #/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (trace|debug|info|notice|warning|error|critical) rack-gateway-db: /#) != nil,
                            "one format and one label: \(line)")
                    #expect(!line.contains("[RackGatewayDB]") && !line.contains("[rack_gateway_db]"), "\(line)")
                }
            }
        }
    }

    @Test func aDumbTerminalGetsWhatAPipeGets() throws {
        try TestDatabase.withSampleData(events: 1000) { source in
            let directory = try TestArchives.temporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let backup = try Self.atTerminal(["backup", "--database-url", source.url, "--dir", directory], environment: ["TERM": "dumb"])
            #expect(backup.status == 0 && backup.screen.shown.isEmpty, "nothing redrawn in place: \(backup.screen.shown)")
            #expect(backup.screen.lines.contains { $0.contains(" info rack-gateway-db: ") && $0.contains("backup written") }, "\(backup.screen.lines)")
        }
    }

    @Test func withoutATerminalNothingChanges() throws {
        try TestDatabase.withSampleData(events: 1000) { source in
            let directory = try TestArchives.temporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let backup = try CLI.run(["backup", "--database-url", source.url, "--dir", directory])
            #expect(backup.status == 0 && backup.stderr.contains(" info rack-gateway-db: ") && backup.stderr.contains("backup written"), "\(backup)")
            #expect(!backup.stderr.contains("\u{1B}["), "no terminal controls in a pipe")
        }
    }

    /// Issue 31: a table on stdout is fitted to stdout's terminal, whatever stderr is: `inspect
    /// 2>/dev/null` at 40 columns fits its table to them (it was fitted to stderr's width, 80 when
    /// stderr is no terminal, and wrapped); piped, it is not fitted, though stderr is a 40-column
    /// terminal. (The table is 55 columns wide.)
    @Test func inspectFitsStdoutsTerminalNotStderrs() throws {
        try InspectExtractTests.withZooArchive { _, _, file in
            let environment = CLI.baseEnvironment().merging(["PTY_RUN_COLUMNS": "40"]) { $1 }
            let fitted = try Shell.run(Self.ptyRun, ["/bin/sh", "-c", #"exec "$0" inspect "$1" 2>/dev/null"#, CLI.executable, file], environment: environment)
            let lines = Screen(fitted.stdout).lines
            #expect(fitted.status == 0 && lines.contains { $0.hasPrefix("TABLE ") }, "\(fitted)")
            let table = lines.drop { !$0.hasPrefix("TABLE ") }
            #expect(table.count == 5 && table.prefix(4).allSatisfy { $0.count <= 40 }, "wider than the terminal: \(table)")
            #expect(lines.contains { $0.contains("left out to fit the terminal") }, "\(lines)")
            let piped = try Shell.run(Self.ptyRun, ["/bin/sh", "-c", #""$0" inspect "$1" | cat"#, CLI.executable, file], environment: environment)
            let all = Screen(piped.stdout).lines
            #expect(piped.status == 0 && all.contains { $0.hasPrefix("TABLE ") && $0.hasSuffix("FINGERPRINT") }, "every column into a pipe: \(all)")
            #expect(!all.contains { $0.contains("left out") }, "\(all)")
        }
    }

    /// Issue 31: Ctrl-C at the terminal reaches extract and the reader of its pipe alike. Whether
    /// the reader stops reading and lives on (it ignores SIGINT) or the Ctrl-C ends it, extract says
    /// how many rows went out, exit 130 (it said only "interrupted by SIGINT (Ctrl-C)", from the
    /// signal fallback, while its write waited on the reader).
    @Test func ctrlCDuringAnExtractIntoAPipeSaysHowManyRowsWentOut() throws {
        try InspectExtractTests.withZooArchive { _, directory, file in
            let readers = [
                "lives": "import signal, sys, time\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nsys.stdin.buffer.read(65536)\nprint('READY', flush=True)\ntime.sleep(5)\n",
                "dies": "import sys, time\ntry:\n    sys.stdin.buffer.read(65536)\n    print('READY', flush=True)\n    while sys.stdin.buffer.read1(4096):\n        time.sleep(0.01)\nexcept KeyboardInterrupt:\n    sys.exit(130)\n",
            ]
            for (kind, script) in readers.sorted(by: { $0.key < $1.key }) {
                let path = directory + "/reader-\(kind).py"
                try script.write(toFile: path, atomically: true, encoding: .utf8)
                let environment = CLI.baseEnvironment().merging(["PTY_RUN_INTERRUPT_AFTER": "READY"]) { $1 }
                let run = try Shell.run(Self.ptyRun, ["/bin/bash", "-c", #"trap : INT; "$0" extract "$1" --table public.zoo | python3 "$2"; echo "statuses=${PIPESTATUS[*]}""#,
                                                      CLI.executable, file, path], environment: environment)
                let text = Screen(run.stdout).lines.joined(separator: "\n")
                #expect(text.contains("error: interrupted by SIGINT (Ctrl-C) during the extract of public.zoo: ") && text.contains(" of its 30000 rows (")
                        && text.contains(") went to standard output, which is incomplete"), "\(kind): \(text)")
                #expect(text.contains("statuses=130 "), "\(kind): \(text)")
            }
        }
    }
}
