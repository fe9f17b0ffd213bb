import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import Testing
import TestSupport
@testable import RackGatewayDB

/// Issue 20: `report` over a fixture history of 60 days with gaps, a suspect archive, a failed drill,
/// a restore and a prune: the numbers, the charts' points against the data, a self-contained HTML.
/// Issue 30: the report is true about pruned days, the period, the RPO; Chromium draws it.
@Suite("evidence report")
struct ReportTests {
    /// Circles of the SVG charts in `text`: series, value, and y (to check the value's position).
    final class Points: NSObject, XMLParserDelegate {
        var circles: [(series: String, date: String, value: Double, cx: Double, cy: Double)] = []
        var charts = 0
        /// The x-axis gridlines' labels.
        var tickLabels: [String] = []
        var inTick = false
        func parser(_ parser: XMLParser, foundCharacters string: String) { if inTick { tickLabels.append(string) } }
        func parser(_ parser: XMLParser, didEndElement name: String, namespaceURI: String?, qualifiedName: String?) { inTick = false }
        func parser(_ parser: XMLParser, didStartElement name: String, namespaceURI: String?, qualifiedName: String?, attributes: [String: String] = [:]) {
            if name == "svg" { charts += 1 }
            inTick = name == "text" && attributes["class"] == "tick-x"
            guard name == "circle", let series = attributes["data-series"], let date = attributes["data-date"],
                  let value = attributes["data-value"].flatMap(Double.init), let cx = attributes["cx"].flatMap(Double.init), let cy = attributes["cy"].flatMap(Double.init) else { return }
            circles.append((series, date, value, cx, cy))
        }

        static func parse(_ svg: String) throws -> Points {
            let points = Points()
            let parser = XMLParser(data: Data(svg.utf8))
            parser.delegate = points
            #expect(parser.parse(), "the SVG parses: \(String(describing: parser.parserError))")
            return points
        }
    }

    static let gaps: Set<Int> = [10, 11, 25, 40]
    static let suspectDay = 30
    /// The week's drill of this day's archive names the archive itself (the others a file not here).
    static let drilledDay = 3

    /// Issue 30: the period asked for (days before the first record "no record"), a day whose archive
    /// prune deleted is "backed up, removed by retention" (prunes.jsonl, with the archive's verified and
    /// drilled state), MISSED only when no archive was taken, the RPO the largest gap between good
    /// backups, the last successful drill in the summary; the HTML drawn by headless Chromium.
    @Test func aSixtyDayHistoryWithGapsASuspectArchiveAFailedDrillAndPrunes() throws {
        try TestDatabase.withSampleData(events: 500) { source in
            _ = try source.psql("CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t SELECT generate_series(1, 1000)")
            let work = try TestArchives.temporaryDirectory(), history = try TestArchives.temporaryDirectory()
            defer { for path in [work, history] { try? FileManager.default.removeItem(atPath: path) } }
            let good = try TestArchives.backup(source, directory: work)
            _ = try source.psql("DELETE FROM t WHERE id > 10")
            Thread.sleep(forTimeInterval: 1.1)
            let suspect = try TestArchives.backup(source, directory: work)
            #expect(suspect.suspect != nil)

            // Day 0 is 59 days ago, day 59 today; every archive at 03:00 UTC (today: an hour ago at most).
            var calendar = Calendar(identifier: .gregorian)
            calendar.timeZone = TimeZone(identifier: "UTC")!
            let now = Date()
            let today = calendar.startOfDay(for: now)
            func date(_ day: Int) -> Date { calendar.date(byAdding: .day, value: day - 59, to: today)! }
            var expected: [(day: String, size: Int, rows: Int)] = []
            var names: [Int: String] = [:]
            for day in 0..<60 where !Self.gaps.contains(day) {
                let time = day == 59 ? min(now.addingTimeInterval(-60), date(day).addingTimeInterval(3 * 3600)) : date(day).addingTimeInterval(3 * 3600)
                let name = ArchiveName.fileName(prefix: "rack_gateway_backup", date: time)
                names[day] = name
                let source = day == Self.suspectDay ? suspect : good
                try FileManager.default.copyItem(atPath: source.file, toPath: history + "/" + name)
                try TestArchives.tamper(history + "/" + name, sidecarToo: true) { _ in }
                if day != Self.suspectDay { expected.append((EvidenceReport.day(time), source.sizeBytes, source.rows)) }
            }
            // Drills every week, one failed; a restore.
            let store = LocalStore(directory: history)
            var rtos: [Double] = []
            var lastPassed: (started: Date, rto: Double)?
            for (index, day) in stride(from: 3, through: 59, by: 7).enumerated() {
                let started = date(day).addingTimeInterval(5 * 3600)
                guard started < now else { continue }
                let failed = index == 4
                let rto = 20.0 + Double(index) * 1.5
                if !failed { rtos.append(rto); lastPassed = (started, rto) }
                let checks = [DrillCheck(name: "restore", ok: true, detail: "restored"),
                              DrillCheck(name: "audit chain", ok: !failed, detail: failed ? "a gap after event 41" : "linked")]
                let archive = day == Self.drilledDay ? names[day]! : "rack_gateway_backup_x.sql.gz"
                let report = DrillReport(archive: archive, path: "/x", ok: !failed, error: nil,
                                         startedAt: ISO8601DateFormatter().string(from: started), scratchDatabase: "rgw_drill", kept: false,
                                         restoreSeconds: rto, durationSeconds: rto + 3, backupCreatedAt: "", backupAgeSeconds: 7200,
                                         archiveBytes: day == Self.drilledDay ? good.sizeBytes : 1, tables: 12, rows: 1, bytes: 1, checks: checks, restorePhases: [])
                try DrillLog.append(report, store: store)
            }
            var restore = PipelineReport(archive: history + "/x.sql.gz", app: "rgw", service: "gateway", rack: nil, database: "rack_gateway",
                                         mode: "swap", dryRun: false, ok: true, error: nil, rememberedCount: 2, finalCount: 2,
                                         previousDatabase: nil, safetyBackup: nil, steps: [], recovery: [], durationSeconds: 42)
            restore.startedAt = UTCTime.iso8601(now.addingTimeInterval(-3 * 86_400))
            try JSONLines.append(restore, to: "restores.jsonl", in: store)

            // Before any prune: the period asked for, the 31 days before the first archive "no record".
            let before = try CLI.decode(EvidenceReport.self, try CLI.run(["report", "--dir", history, "--since", "90d", "--format", "json"]).stdout)
            #expect(before.days.count == 91 && before.since == EvidenceReport.day(calendar.date(byAdding: .day, value: -90, to: today)!))
            #expect(before.firstRecord == expected.first?.day)
            #expect(before.days.prefix(31).allSatisfy { $0.status == .noRecord } && before.days[31].status == .backedUp, "\(before.days.prefix(32).map(\.status))")
            #expect(before.summary.daysWithBackup == 55 && before.summary.missedDays == 4 && before.summary.noRecordDays == 31, "\(before.summary)")
            #expect(before.days.filter { $0.status == .suspect }.map(\.date) == [EvidenceReport.day(date(Self.suspectDay))])
            let gapDays = Set(Self.gaps.map { EvidenceReport.day(date($0)) })
            #expect(Set(before.days.filter(\.missed).map(\.date)) == gapDays)
            // RPO: the largest gap between good backups is days 9 to 12 (two missed days), 72 hours.
            #expect(before.recovery.largestGapSeconds == 72 * 3600 && before.recovery.largestGapFrom == UTCTime.iso8601(date(9).addingTimeInterval(3 * 3600)),
                    "\(before.recovery)")
            let newestGood = min(now.addingTimeInterval(-60), date(59).addingTimeInterval(3 * 3600))
            #expect(abs((before.recovery.currentGapSeconds ?? -1) - now.timeIntervalSince(newestGood)) < 600)
            #expect(before.toolVersion == RackGatewayDB.toolVersion && before.source?.database == source.name, "\(String(describing: before.source))")
            #expect(before.source?.serverVersion?.isEmpty == false)
            #expect(before.source?.host == URL(string: source.url).map { "\($0.host ?? ""):\($0.port ?? 0)" }, "\(String(describing: before.source))")

            // The charts' points are the data: every readable archive, suspect included (its drop is what the chart shows).
            let sizes = try Points.parse(before.sizeChart.render()), rto = try Points.parse(before.rtoChart.render())
            let sizePoints = sizes.circles.filter { $0.series == "size" }, rowPoints = sizes.circles.filter { $0.series == "rows" }
            #expect(sizePoints.count == 56 && rowPoints.count == 56)
            let suspectDate = EvidenceReport.day(date(Self.suspectDay))
            let plain = sizePoints.filter { !$0.date.hasPrefix(suspectDate) }
            #expect(plain.count == expected.count)
            for (point, archive) in zip(plain, expected) {
                #expect(point.date.hasPrefix(archive.day) && abs(point.value - Double(archive.size) / 1e6) < 0.01, "\(point) \(archive)")
            }
            #expect(Set(rowPoints.map(\.value)) == [Double(good.rows), Double(suspect.rows)])
            // Position follows value: the suspect's fewer rows are drawn lower (larger y).
            let suspectRows = try #require(rowPoints.first { $0.date.hasPrefix(suspectDate) })
            #expect(rowPoints.allSatisfy { $0.value == suspectRows.value || $0.cy < suspectRows.cy })
            #expect(rto.circles.map(\.value) == before.drills.map(\.rtoSeconds), "\(rto.circles.map(\.value))")
            let byValue = rto.circles.sorted { $0.value < $1.value }
            #expect(zip(byValue, byValue.dropFirst()).allSatisfy { $0.cy >= $1.cy })
            // One x-axis: the same day falls at the same x in both charts.
            let sizeX = try #require(sizes.circles.first { $0.date.hasPrefix(EvidenceReport.day(date(Self.drilledDay))) })
            let rtoX = try #require(rto.circles.first { $0.date.hasPrefix(EvidenceReport.day(date(Self.drilledDay))) })
            #expect(abs(sizeX.cx - rtoX.cx) < 20, "03:00 and 05:00 of one day: \(sizeX.cx) and \(rtoX.cx)")
            #expect(sizes.tickLabels == rto.tickLabels && sizes.tickLabels.count >= 6, "\(sizes.tickLabels)")

            // prune under the samples' policy: the drilled archive of day 3 goes, the suspect one stays (evidence).
            let prune = try CLI.run(["prune", "--dir", history, "--keep-daily", "7", "--keep-weekly", "4"])
            #expect(prune.status == 0, "\(prune)")
            #expect(FileManager.default.fileExists(atPath: history + "/" + names[Self.suspectDay]!), "the suspect archive is kept: \(prune.stdout)")
            #expect(!FileManager.default.fileExists(atPath: history + "/" + names[Self.drilledDay]!))
            let log = try #require(PruneLog.latest(store: store))
            let drilled = try #require(log.deletedArchives?.first { $0.file == names[Self.drilledDay]! })
            #expect(drilled.verified && drilled.drilled && drilled.suspect == nil, "\(drilled)")
            #expect(log.deleted.count > 30 && log.keepSuspectDays == 35, "\(log.deleted.count)")

            // After it: no day called missed for it, each pruned day "backed up, removed by retention".
            let json = try CLI.run(["report", "--dir", history, "--since", "90d", "--format", "json"])
            #expect(json.status == 0, "\(json)")
            let report = try CLI.decode(EvidenceReport.self, json.stdout)
            let removedDays = Set(log.deleted.compactMap { ArchiveName.timestamp(of: $0) }.map(EvidenceReport.day))
            #expect(Set(report.days.filter { $0.status == .removedByRetention }.map(\.date)) == removedDays)
            #expect(report.summary.daysWithBackup == 55 && report.summary.daysRemovedByRetention == removedDays.count, "\(report.summary)")
            #expect(Set(report.days.filter(\.missed).map(\.date)) == gapDays && report.summary.noRecordDays == 31)
            let largest = report.recovery.largestGapSeconds ?? -1
            #expect(abs(largest - 72 * 3600) < 0.001, "pruned good backups still count: \(String(format: "%.6f", largest)) \(report.recovery)")
            // The size chart still has every archive taken: those removed by retention as prunes.jsonl recorded them.
            let afterPrune = try Points.parse(report.sizeChart.render())
            #expect(afterPrune.circles.filter { $0.series == "size" }.map(\.value) == sizes.circles.filter { $0.series == "size" }.map(\.value))
            let pruned = try #require(report.days.first { $0.date == EvidenceReport.day(date(Self.drilledDay)) }?.pruned.first)
            #expect(pruned.drilled == true && pruned.verified == true && pruned.removedAt == log.prunedAt)
            #expect(report.summary.suspectArchives == 1 && report.summary.drills == rtos.count + 1 && report.summary.drillsFailed == 1)
            let sorted = rtos.sorted()
            let median = sorted.count % 2 == 1 ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
            #expect(report.summary.medianRtoSeconds == median)
            let last = try #require(lastPassed)
            #expect(report.summary.lastSuccessfulDrill == UTCTime.iso8601(last.started) && report.summary.lastSuccessfulDrillRtoSeconds == last.rto)
            let gapNow = ProgressDisplay.duration(report.recovery.currentGapSeconds ?? -1)
            #expect(report.summary.text == "55 of 91 days backed up (\(removedDays.count) removed by retention since), 4 missed, 1 suspect archive, 31 before the first record; "
                    + "RPO (largest gap between good backups) 72h00m, \(gapNow) since the last good backup; \(rtos.count + 1) drills, 1 failed; "
                    + "last successful drill: \(EvidenceReport.display(last.started)), RTO \(String(format: "%.1f", last.rto)) s; "
                    + "median RTO \(String(format: "%.1f", median)) s; 1 restore (1 succeeded)", "\(report.summary.text)")
            #expect(report.retention?.policy == "--keep-daily 7 --keep-weekly 4 --keep-suspect-days 35" && report.restores.count == 1)

            // The HTML: self-contained, the summary, the callouts, one date format.
            let htmlFile = history + "/evidence.html"
            let html = try CLI.run(["report", "--dir", history, "--format", "html", "-o", htmlFile])
            #expect(html.status == 0, "\(html)")
            #expect(try FileManager.default.attributesOfItem(atPath: htmlFile)[.posixPermissions] as? Int == 0o600)
            let page = try String(contentsOfFile: htmlFile, encoding: .utf8)
            for external in ["<script", "<link", "src=", "href=", "url(", "@import", "https:"] {
                #expect(!page.contains(external), "the HTML refers to something outside: \(external)")
            }
            #expect(page.replacingOccurrences(of: "xmlns=\"http://www.w3.org/2000/svg\"", with: "").contains("http:") == false)
            // The summary around the current gap, whose minutes move on between the JSON run and this
            // one (minutes apart on a loaded machine: CI saw it).
            let around = report.summary.text.components(separatedBy: gapNow + " since the last good backup")
            #expect(around.count == 2 && around.allSatisfy { page.contains(SVGChart.escape($0)) }, "\(around)")
            #expect(page.contains("Suspect archive") && page.contains("Failed drill"))
            #expect(page.contains("backed up, removed by retention on " + String(log.prunedAt.prefix(10))) && page.contains("backup age at drill"))
            #expect(page.contains("rack-gateway-db \(RackGatewayDB.toolVersion)") && page.contains("Source database: \(before.source?.host ?? "?")/\(source.name), PostgreSQL"))
            #expect(!page.contains("RPO (backup age)") && !page.contains("@example.com"), "no row content")
            // One date format: no ISO-8601 timestamp (with its T and milliseconds) outside the charts' data attributes.
            let text = page.replacingOccurrences(of: #"data-date="[^"]*""#, with: "", options: .regularExpression)
            #expect(text.range(of: #"\d{4}-\d\d-\d\dT\d\d:\d\d"#, options: .regularExpression) == nil)

            // The failed drill drawn apart (red, in the legend); the suspect archive marked on the size chart.
            let rtoSVG = report.rtoChart.render(), sizeSVG = report.sizeChart.render()
            #expect(rtoSVG.components(separatedBy: "data-mark=\"failed\"").count - 1 == 1 && rtoSVG.contains(">failed drill</text>"), "\(rtoSVG)")
            #expect(sizeSVG.components(separatedBy: "data-mark=\"suspect\"").count - 1 == 2 && sizeSVG.contains(">SUSPECT archive</text>"))
            // Scaled to the page: no fixed pixel width.
            #expect(sizeSVG.contains(#"width="100%""#) && sizeSVG.contains("max-width:900px") && !sizeSVG.contains(#"<svg xmlns="http://www.w3.org/2000/svg" width="900""#))

            // Drawn by headless Chromium in a 900 and a 1200 px window: no console message, both charts'
            // colours on the screenshot, the right-hand axis labels inside the window.
            for width in [900, 1200] {
                let screenshot = try Self.screenshot(htmlFile, name: "evidence-report-\(width)", width: width)
                print("ReportTests: the report's screenshot at \(width) px is \(screenshot.path)")
                #expect(screenshot.console.isEmpty, "console: \(screenshot.console)")
                let colors = try Self.colors(in: screenshot.path, ["#1f6fb4", "#c0392b", "#27864a", "#e31a1c", "#f39c12"])
                for color in ["#1f6fb4", "#c0392b", "#27864a"] {
                    let box = try #require(colors[color])
                    #expect(box.count > 50, "\(color) drawn at \(width) px: \(box)")
                    #expect(box.width > 400, "\(color) across the chart at \(width) px: \(box)")
                }
                // One above the other, the size chart first, both on one x-span.
                let sizeBox = try #require(colors["#1f6fb4"]), rtoBox = try #require(colors["#27864a"]), rowsBox = try #require(colors["#c0392b"])
                #expect(sizeBox.y1 < rtoBox.y0, "\(sizeBox) \(rtoBox)")
                // The rows axis's labels (the rightmost of its colour) end inside the page's margin, not cut at the window's edge.
                #expect(rowsBox.x1 < width - 20 && rowsBox.x1 > width / 2, "rows labels at \(width) px: \(rowsBox)")
                // The failed drill's red point and its legend in the RTO chart; the suspect archive's mark in the size chart.
                let failedBox = try #require(colors["#e31a1c"]), suspectBox = try #require(colors["#f39c12"])
                #expect(failedBox.count > 20 && failedBox.y0 > sizeBox.y1, "failed drill at \(width) px: \(failedBox)")
                #expect(suspectBox.count > 20 && suspectBox.y1 < rtoBox.y0, "suspect mark at \(width) px: \(suspectBox)")
            }

            // Markdown with the charts beside it.
            let out = history + "/out"
            let md = try CLI.run(["report", "--dir", history, "-o", out + "/evidence.md"])
            // The summary (the gap now, in minutes, may have moved on since the JSON report).
            let halves = report.summary.text.components(separatedBy: gapNow + " since the last good backup")
            #expect(md.status == 0 && halves.count == 2 && md.stderr.contains(halves[0]) && md.stderr.contains(" since the last good backup" + halves[1]), "\(md)")
            let markdown = try String(contentsOfFile: out + "/evidence.md", encoding: .utf8)
            #expect(markdown.contains("![Archive size and rows](evidence-sizes.svg)") && markdown.contains("![Drill RTO](evidence-rto.svg)"))
            #expect(markdown.components(separatedBy: "| **MISSED** | no archive taken |").count - 1 == 4, "every missed day marked")
            for chart in ["evidence-sizes.svg", "evidence-rto.svg"] {
                #expect(try Points.parse(try String(contentsOfFile: out + "/" + chart, encoding: .utf8)).charts == 1)
                #expect(try FileManager.default.attributesOfItem(atPath: out + "/" + chart)[.posixPermissions] as? Int == 0o600)
            }
        }
    }

    /// Where the tests keep what a person looks at afterwards: `RGW_TEST_ARTEFACTS`, else
    /// `rgw-test-artefacts` in the temporary directory; one folder per suite.
    static var artefacts: String {
        let root = ProcessInfo.processInfo.environment["RGW_TEST_ARTEFACTS"] ?? FileManager.default.temporaryDirectory.appendingPathComponent("rgw-test-artefacts").path
        return root + "/ReportTests"
    }

    /// `file` drawn by headless Chromium (Debian's `chromium`) into a PNG kept under `artefacts`,
    /// and the console messages it logged (the report has no script: there should be none).
    static func screenshot(_ file: String, name: String, width: Int = 1100) throws -> (path: String, console: [String]) {
        try FileManager.default.createDirectory(atPath: artefacts, withIntermediateDirectories: true)
        let png = artefacts + "/\(name).png"
        try? FileManager.default.removeItem(atPath: png)
        let profile = try TestArchives.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: profile) }
        let output = try Shell.run("/usr/bin/timeout", ["120", "chromium", "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                                                        "--user-data-dir=" + profile, "--enable-logging=stderr", "--v=0",
                                                        "--window-size=\(width),2600", "--screenshot=" + png, "file://" + file])
        #expect(output.status == 0, "chromium: \(output.stderr.suffix(2000))")
        #expect(FileManager.default.fileExists(atPath: png), "chromium wrote no screenshot: \(output.stderr.suffix(2000))")
        let console = output.stderr.split(separator: "\n").filter { $0.contains(":CONSOLE") }.map(String.init)
        return (png, console)
    }

    struct Box: CustomStringConvertible {
        var count: Int, x0: Int, y0: Int, x1: Int, y1: Int
        var width: Int { x1 - x0 }
        var description: String { "\(count) px in [\(x0),\(y0)]-[\(x1),\(y1)]" }
    }

    /// The pixels of each colour in a PNG (Tests/Fixtures/png-colors).
    static func colors(in png: String, _ colors: [String]) throws -> [String: Box] {
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Fixtures/png-colors").path
        let output = try Shell.runChecked(script, [png] + colors)
        struct Found: Decodable { struct Color: Decodable { var count: Int; var box: [Int]? }; var colors: [String: Color] }
        let found = try JSONDecoder().decode(Found.self, from: Data(output.utf8))
        return found.colors.mapValues { color in
            let box = color.box ?? [0, 0, 0, 0]
            return Box(count: color.count, x0: box[0], y0: box[1], x1: box[2], y1: box[3])
        }
    }
}
