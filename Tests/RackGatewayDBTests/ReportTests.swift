import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import Testing
import TestSupport
@testable import RackGatewayDB

/// Issue 20: `report` over a fixture history of 60 days with gaps, a suspect archive, a failed drill,
/// a restore and a prune: the numbers, the charts' points against the data, a self-contained HTML.
@Suite("evidence report")
struct ReportTests {
    /// Circles of the SVG charts in `text`: series, value, and y (to check the value's position).
    final class Points: NSObject, XMLParserDelegate {
        var circles: [(series: String, date: String, value: Double, cy: Double)] = []
        var charts = 0
        func parser(_ parser: XMLParser, didStartElement name: String, namespaceURI: String?, qualifiedName: String?, attributes: [String: String] = [:]) {
            if name == "svg" { charts += 1 }
            guard name == "circle", let series = attributes["data-series"], let date = attributes["data-date"],
                  let value = attributes["data-value"].flatMap(Double.init), let cy = attributes["cy"].flatMap(Double.init) else { return }
            circles.append((series, date, value, cy))
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

    @Test func aSixtyDayHistoryWithGapsASuspectArchiveAndAFailedDrill() throws {
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
            var expected: [(day: String, size: Int, rows: Int)] = []
            for day in 0..<60 where !Self.gaps.contains(day) {
                let base = calendar.date(byAdding: .day, value: day - 59, to: today)!
                let time = day == 59 ? min(now.addingTimeInterval(-60), base.addingTimeInterval(3 * 3600)) : base.addingTimeInterval(3 * 3600)
                let name = ArchiveName.fileName(prefix: "rack_gateway_backup", date: time)
                let source = day == Self.suspectDay ? suspect : good
                try FileManager.default.copyItem(atPath: source.file, toPath: history + "/" + name)
                try TestArchives.tamper(history + "/" + name, sidecarToo: true) { _ in }
                if day != Self.suspectDay { expected.append((EvidenceReport.day(time), source.sizeBytes, source.rows)) }
            }
            // Drills every week, one failed; a restore; a prune.
            let store = LocalStore(directory: history)
            var rtos: [Double] = []
            for (index, day) in stride(from: 3, through: 59, by: 7).enumerated() {
                let started = calendar.date(byAdding: .day, value: day - 59, to: today)!.addingTimeInterval(5 * 3600)
                guard started < now else { continue }
                let failed = index == 4
                let rto = 20.0 + Double(index) * 1.5
                if !failed { rtos.append(rto) }
                let checks = [DrillCheck(name: "restore", ok: true, detail: "restored"),
                              DrillCheck(name: "audit chain", ok: !failed, detail: failed ? "a gap after event 41" : "linked")]
                let report = DrillReport(archive: "rack_gateway_backup_x.sql.gz", path: "/x", ok: !failed, error: nil,
                                         startedAt: ISO8601DateFormatter().string(from: started), scratchDatabase: "rgw_drill", kept: false,
                                         restoreSeconds: rto, durationSeconds: rto + 3, backupCreatedAt: "", backupAgeSeconds: 7200,
                                         archiveBytes: 1, tables: 12, rows: 1, bytes: 1, checks: checks, restorePhases: [])
                try DrillLog.append(report, store: store)
            }
            var restore = PipelineReport(archive: history + "/x.sql.gz", app: "rgw", service: "gateway", rack: nil, database: "rack_gateway",
                                         mode: "swap", dryRun: false, ok: true, error: nil, rememberedCount: 2, finalCount: 2,
                                         previousDatabase: nil, safetyBackup: nil, steps: [], recovery: [], durationSeconds: 42)
            restore.startedAt = UTCTime.iso8601(now.addingTimeInterval(-3 * 86_400))
            try JSONLines.append(restore, to: "restores.jsonl", in: store)
            try PruneLog.record(policy: RetentionPolicy(daily: 7, weekly: 4, monthly: 12), kept: 55, deleted: ["old.sql.gz"], store: store, at: now)

            // The numbers, from the JSON.
            let json = try CLI.run(["report", "--dir", history, "--since", "90d", "--format", "json"])
            #expect(json.status == 0, "\(json)")
            let report = try CLI.decode(EvidenceReport.self, json.stdout)
            #expect(report.days.count == 60 && report.countedFrom == expected.first?.day)
            #expect(report.summary.daysWithBackup == 55 && report.summary.missedDays == 5, "\(report.summary)")
            #expect(report.summary.suspectArchives == 1 && report.summary.drills == rtos.count + 1 && report.summary.drillsFailed == 1)
            let sorted = rtos.sorted()
            let median = sorted.count % 2 == 1 ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
            #expect(report.summary.medianRtoSeconds == median)
            #expect(report.summary.text == "55 nightly backups in 60 days, 5 missed, 1 suspect; \(rtos.count + 1) drills, 1 failed; median RTO \(String(format: "%.1f", median)) s; 1 restore (1 succeeded)",
                    "\(report.summary.text)")
            let missedDays = Set(report.days.filter(\.missed).map(\.date))
            let gapDays = Set((Self.gaps.union([Self.suspectDay])).map { EvidenceReport.day(calendar.date(byAdding: .day, value: $0 - 59, to: today)!) })
            #expect(missedDays == gapDays)
            #expect(report.retention?.policy == "--keep-daily 7 --keep-weekly 4 --keep-monthly 12" && report.restores.count == 1)

            // The HTML: self-contained, the summary, the callouts, the charts' points are the data.
            let htmlFile = history + "/evidence.html"
            let html = try CLI.run(["report", "--dir", history, "--format", "html", "-o", htmlFile])
            #expect(html.status == 0, "\(html)")
            #expect(try FileManager.default.attributesOfItem(atPath: htmlFile)[.posixPermissions] as? Int == 0o600)
            let page = try String(contentsOfFile: htmlFile, encoding: .utf8)
            for external in ["<script", "<link", "src=", "href=", "url(", "@import", "https:"] {
                #expect(!page.contains(external), "the HTML refers to something outside: \(external)")
            }
            #expect(page.replacingOccurrences(of: "xmlns=\"http://www.w3.org/2000/svg\"", with: "").contains("http:") == false)
            #expect(page.contains(SVGChart.escape(report.summary.text)) && page.contains("Suspect archive") && page.contains("Failed drill"))
            #expect(!page.contains("@example.com"), "no row content")
            var svgs: [String] = []
            var rest = page[...]
            while let open = rest.range(of: "<svg"), let close = rest.range(of: "</svg>", range: open.upperBound..<rest.endIndex) {
                svgs.append(String(rest[open.lowerBound..<close.upperBound]))
                rest = rest[close.upperBound...]
            }
            #expect(svgs.count == 2)
            let sizes = try Points.parse(svgs[0]), rto = try Points.parse(svgs[1])
            let sizePoints = sizes.circles.filter { $0.series == "size" }, rowPoints = sizes.circles.filter { $0.series == "rows" }
            // Every readable archive, suspect included (its drop is what the chart shows).
            #expect(sizePoints.count == 56 && rowPoints.count == 56)
            let suspectDate = report.days[Self.suspectDay].date
            let plain = sizePoints.filter { !$0.date.hasPrefix(suspectDate) }
            #expect(plain.count == expected.count)
            for (point, archive) in zip(plain, expected) {
                #expect(point.date.hasPrefix(archive.day) && abs(point.value - Double(archive.size) / 1e6) < 0.01, "\(point) \(archive)")
            }
            #expect(Set(rowPoints.map(\.value)) == [Double(report.days[0].archives[0].rows ?? 0), Double(report.days[Self.suspectDay].archives[0].rows ?? 0)])
            // Position follows value: the suspect's fewer rows are drawn lower (larger y).
            let suspectRows = try #require(rowPoints.first { $0.date.hasPrefix(report.days[Self.suspectDay].date) })
            #expect(rowPoints.allSatisfy { $0.value == suspectRows.value || $0.cy < suspectRows.cy })
            #expect(rto.circles.map(\.value) == report.drills.map(\.rtoSeconds), "\(rto.circles.map(\.value))")
            let byValue = rto.circles.sorted { $0.value < $1.value }
            #expect(zip(byValue, byValue.dropFirst()).allSatisfy { $0.cy >= $1.cy })

            // Markdown with the charts beside it.
            let out = history + "/out"
            let md = try CLI.run(["report", "--dir", history, "-o", out + "/evidence.md"])
            #expect(md.status == 0 && md.stderr.contains(report.summary.text), "\(md)")
            let text = try String(contentsOfFile: out + "/evidence.md", encoding: .utf8)
            #expect(text.contains("![Archive size and rows](evidence-sizes.svg)") && text.contains("![Drill RTO](evidence-rto.svg)"))
            #expect(text.components(separatedBy: "**MISSED: no good archive**").count - 1 == 5, "every missed day marked")
            for chart in ["evidence-sizes.svg", "evidence-rto.svg"] {
                #expect(try Points.parse(try String(contentsOfFile: out + "/" + chart, encoding: .utf8)).charts == 1)
                #expect(try FileManager.default.attributesOfItem(atPath: out + "/" + chart)[.posixPermissions] as? Int == 0o600)
            }
        }
    }
}
