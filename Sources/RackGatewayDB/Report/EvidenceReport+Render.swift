import Foundation

/// Line charts as SVG, self-contained (no script, no font or style from elsewhere): one or two
/// series over time, the second on its own axis at the right. Every point is a `<circle>` with
/// `data-series`, `data-date` and `data-value`, so the chart can be checked against the data.
public struct SVGChart {
    public struct Series {
        public var name: String
        public var unit: String
        public var color: String
        public var points: [(date: Date, value: Double)]
    }

    public var title: String
    public var series: [Series]
    /// The end of the time the chart covers: the day an empty chart's axis shows.
    public var until: Date
    let width = 720.0, height = 260.0, left = 70.0, right = 70.0, top = 36.0, bottom = 40.0

    static func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }

    static func number(_ value: Double) -> String {
        value == value.rounded() && abs(value) < 1e15 ? String(Int(value)) : String(format: abs(value) >= 100 ? "%.0f" : "%.2f", value)
    }

    public func render() -> String {
        let dates = series.flatMap { $0.points.map(\.date) }
        let first = dates.min() ?? until, last = dates.max() ?? first
        let span = max(1, last.timeIntervalSince(first))
        let plotWidth = width - left - right, plotHeight = height - top - bottom
        func x(_ date: Date) -> Double { left + date.timeIntervalSince(first) / span * plotWidth }
        var svg = #"<svg xmlns="http://www.w3.org/2000/svg" width="\#(Int(width))" height="\#(Int(height))" viewBox="0 0 \#(Int(width)) \#(Int(height))" role="img" font-family="sans-serif" font-size="11">"#
        svg += "<title>\(Self.escape(title))</title>"
        svg += #"<rect x="0" y="0" width="\#(Int(width))" height="\#(Int(height))" fill="white"/>"#
        svg += #"<text x="\#(Int(left))" y="18" font-size="13" font-weight="bold">\#(Self.escape(title))</text>"#
        svg += #"<line x1="\#(left)" y1="\#(top + plotHeight)" x2="\#(left + plotWidth)" y2="\#(top + plotHeight)" stroke="dimgray"/>"#
        svg += #"<text x="\#(left)" y="\#(height - 12)">\#(EvidenceReport.day(first))</text>"#
        svg += #"<text x="\#(left + plotWidth)" y="\#(height - 12)" text-anchor="end">\#(EvidenceReport.day(last))</text>"#
        for (index, line) in series.enumerated() {
            // A round top: 1.1 times the largest value, to two significant digits.
            let raw = max(line.points.map(\.value).max() ?? 0, 0) * 1.1
            let magnitude = raw > 0 ? pow(10, floor(log10(raw)) - 1) : 1
            let maximum = (raw / magnitude).rounded(.up) * magnitude
            let scale = maximum > 0 ? maximum : 1
            func y(_ value: Double) -> Double { top + plotHeight - value / scale * plotHeight }
            let axisX = index == 0 ? left : left + plotWidth
            let anchor = index == 0 ? "end" : "start", offset = index == 0 ? -6.0 : 6.0
            svg += #"<line x1="\#(axisX)" y1="\#(top)" x2="\#(axisX)" y2="\#(top + plotHeight)" stroke="\#(line.color)"/>"#
            // The top value above its axis: at the right edge for the second series, so it is not cut off.
            let labelX = index == 0 ? axisX + offset : width - 4
            svg += #"<text x="\#(labelX)" y="\#(top - 6)" text-anchor="end" fill="\#(line.color)">\#(Self.number(maximum)) \#(Self.escape(line.unit))</text>"#
            svg += #"<text x="\#(axisX + offset)" y="\#(top + plotHeight)" text-anchor="\#(anchor)" fill="\#(line.color)">0</text>"#
            svg += #"<text x="\#(left + plotWidth / 2 + (index == 0 ? -10.0 : 10.0))" y="18" text-anchor="\#(index == 0 ? "end" : "start")" fill="\#(line.color)">\#(Self.escape(line.name))</text>"#
            let path = line.points.map { String(format: "%.1f,%.1f", x($0.date), y($0.value)) }.joined(separator: " ")
            if line.points.count > 1 { svg += #"<polyline fill="none" stroke="\#(line.color)" stroke-width="1.5" points="\#(path)"/>"# }
            for point in line.points {
                svg += #"<circle cx="\#(String(format: "%.1f", x(point.date)))" cy="\#(String(format: "%.1f", y(point.value)))" r="2.5" fill="\#(line.color)" data-series="\#(Self.escape(line.name))" data-date="\#(UTCTime.iso8601(point.date))" data-value="\#(Self.number(point.value))"/>"#
            }
        }
        return svg + "</svg>\n"
    }
}

extension EvidenceReport {
    static let megabyte = 1_000_000.0

    /// Archive size (MB) and rows over time, one point per archive.
    public var sizeChart: SVGChart {
        let archives = days.flatMap(\.archives).filter { $0.problem == nil }
        let points = archives.compactMap { archive in Self.parseTime(archive.time).map { (archive, $0) } }
        return SVGChart(title: "Archive size and rows", series: [
            .init(name: "size", unit: "MB", color: "#1f6fb4", points: points.map { ($0.1, Double($0.0.sizeBytes) / Self.megabyte) }),
            .init(name: "rows", unit: "rows", color: "#c0392b", points: points.map { ($0.1, Double($0.0.rows ?? 0)) }),
        ], until: untilDate)
    }

    /// Each drill's measured RTO (seconds) over time.
    public var rtoChart: SVGChart {
        SVGChart(title: "Drill RTO (measured restore)", series: [
            .init(name: "RTO", unit: "s", color: "#27864a", points: drills.compactMap { drill in Self.parseTime(drill.startedAt).map { ($0, drill.rtoSeconds) } }),
        ], until: untilDate)
    }

    /// The end of the report's window (`until`, the time it was made).
    var untilDate: Date { Self.parseTime(until) ?? Date(timeIntervalSince1970: 0) }

    static func size(_ bytes: Int) -> String { String(format: "%.1f MB", Double(bytes) / megabyte) }

    static func marks(_ archive: Archive) -> String {
        let marks = [archive.problem != nil ? "UNREADABLE" : nil, archive.suspect != nil ? "SUSPECT" : nil, archive.encrypted ? "encrypted" : nil,
                     archive.signed ? "signed" : nil, archive.verified ? "verified" : nil, archive.drilled ? "drilled" : nil].compactMap { $0 }
        return marks.joined(separator: ", ")
    }

    var callouts: [String] {
        var lines: [String] = []
        let missed = days.filter(\.missed).map(\.date)
        if !missed.isEmpty { lines.append("Missed days (no good archive): " + missed.joined(separator: ", ")) }
        for archive in days.flatMap(\.archives) {
            if let suspect = archive.suspect { lines.append("Suspect archive \(archive.file): \(suspect)") }
            if let problem = archive.problem { lines.append("Unreadable archive \(archive.file): \(problem)") }
        }
        for drill in drills where !drill.ok {
            let failed = drill.checks.filter { !$0.ok }.map(\.name)
            lines.append("Failed drill \(drill.startedAt) of \(drill.archive): " + (failed.isEmpty ? drill.error ?? "failed" : failed.joined(separator: ", ")))
        }
        return lines
    }

    var retentionText: String {
        guard let retention else { return "No prune recorded in this directory (prunes.jsonl): no retention policy has been applied by rack-gateway-db prune." }
        return "rack-gateway-db prune \(retention.policy); last run \(retention.lastPrunedAt), kept \(retention.kept), deleted \(retention.deleted)."
    }

    /// A table both renderings print: cells as text, and a row's class (`missed`, `suspect`, `fail`).
    struct Table {
        var header: [String]
        var rows: [(cells: [String], mark: String?)] = []
    }

    var dayTable: Table {
        var table = Table(header: ["day", "archive", "time", "size", "tables", "rows", "marks"])
        for day in days {
            for archive in day.archives {
                table.rows.append(([day.date, archive.file, String(archive.time.dropFirst(11).prefix(8)), Self.size(archive.sizeBytes),
                                    archive.tables.map(String.init) ?? "", archive.rows.map(String.init) ?? "", Self.marks(archive)],
                                   archive.suspect != nil || archive.problem != nil ? "suspect" : nil))
            }
            if day.missed {
                table.rows.append(([day.date, "MISSED: no good archive", "", "", "", "", ""], "missed"))
            } else if day.archives.isEmpty {
                table.rows.append(([day.date, "none yet", "", "", "", "", ""], nil))
            }
        }
        return table
    }

    static func checkTable(_ drill: Drill) -> Table {
        Table(header: ["check", "result", "detail"], rows: drill.checks.map {
            ([$0.name, $0.checked ? ($0.ok ? "PASS" : "FAIL") : "NOT CHECKED", $0.detail], $0.ok ? nil : "fail")
        })
    }

    var restoreTable: Table {
        Table(header: ["started", "archive", "app", "mode", "result", "duration"], rows: restores.map {
            ([$0.startedAt ?? "?", $0.archive, $0.app, $0.mode + ($0.dryRun ? " (dry run)" : ""), $0.ok ? "ok" : "FAILED: " + ($0.error ?? ""),
              String(format: "%.1f s", $0.durationSeconds)], $0.ok ? nil : "fail")
        })
    }

    static func heading(_ drill: Drill) -> String { "\(drill.startedAt): \(drill.ok ? "PASSED" : "FAILED"), \(drill.archive)" }

    static func measures(_ drill: Drill) -> String {
        "RTO \(String(format: "%.1f", drill.rtoSeconds)) s, RPO \(ProgressDisplay.duration(drill.rpoSeconds))" + (drill.error.map { "; error: \($0)" } ?? "")
    }

    var header: String { "\(directory): \(since) to \(until) (backups counted from \(countedFrom)); generated \(generatedAt) by rack-gateway-db report." }

    /// Markdown; `charts` are the file names of the two SVGs beside it, or nil to leave them out.
    public func markdown(charts: (sizes: String, rto: String)?) -> String {
        func cell(_ text: String) -> String { text.replacingOccurrences(of: "|", with: "\\|").replacingOccurrences(of: "\n", with: " ") }
        func render(_ table: Table) -> String {
            var text = "| " + table.header.joined(separator: " | ") + " |\n|" + String(repeating: "---|", count: table.header.count) + "\n"
            for row in table.rows {
                let cells = row.cells.map(cell).enumerated().map { row.mark != nil && $0.offset == 1 && !$0.element.isEmpty ? "**\($0.element)**" : $0.element }
                text += "| " + cells.joined(separator: " | ") + " |\n"
            }
            return text
        }
        var md = "# Backup and restore evidence\n\n\(cell(header))\n\n**\(summary.text)**\n\n"
        for line in callouts { md += "- \(cell(line))\n" }
        if !callouts.isEmpty { md += "\n" }
        md += "## Retention\n\n\(retentionText)\n\n"
        md += charts.map { "![Archive size and rows](\($0.sizes))\n\n![Drill RTO](\($0.rto))\n\n" } ?? "(Charts: give -o FILE to write them beside the report.)\n\n"
        md += "## Backups per day\n\n" + render(dayTable) + "\n## Drills\n\n"
        if drills.isEmpty { md += "None in this period.\n\n" }
        for drill in drills { md += "### \(cell(Self.heading(drill)))\n\n\(cell(Self.measures(drill)))\n\n" + render(Self.checkTable(drill)) + "\n" }
        md += "## Restores\n\n" + (restores.isEmpty ? "None in this period.\n" : render(restoreTable))
        return md
    }

    /// One self-contained HTML file: inline styles and SVG charts, no script, nothing fetched.
    public func html() -> String {
        func e(_ text: String) -> String { SVGChart.escape(text) }
        func render(_ table: Table) -> String {
            var text = "<table><tr>" + table.header.map { "<th>\(e($0))</th>" }.joined() + "</tr>\n"
            for row in table.rows { text += "<tr\(row.mark.map { " class=\"\($0)\"" } ?? "")>" + row.cells.map { "<td>\(e($0))</td>" }.joined() + "</tr>\n" }
            return text + "</table>\n"
        }
        var html = "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Backup and restore evidence: \(e(directory))</title>\n<style>"
        html += "body{font-family:sans-serif;margin:2em;color:#222}table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #bbb;padding:2px 6px;font-size:12px}"
        html += "th{background:#eee}.missed{background:#fde2e2;font-weight:bold}.suspect,.fail{color:#b00;font-weight:bold}.summary{font-size:1.15em;font-weight:bold}"
        html += "@media print{body{margin:0}svg{max-width:100%}}</style></head><body>\n"
        html += "<h1>Backup and restore evidence</h1>\n<p>\(e(header))</p>\n<p class=\"summary\">\(e(summary.text))</p>\n"
        if !callouts.isEmpty { html += "<ul>" + callouts.map { "<li class=\"fail\">\(e($0))</li>" }.joined() + "</ul>\n" }
        html += "<h2>Retention</h2><p>\(e(retentionText))</p>\n<h2>Charts</h2>\n" + sizeChart.render() + rtoChart.render()
        html += "<h2>Backups per day</h2>\n" + render(dayTable) + "<h2>Drills</h2>\n"
        if drills.isEmpty { html += "<p>None in this period.</p>\n" }
        for drill in drills {
            html += "<h3\(drill.ok ? "" : " class=\"fail\"")>\(e(Self.heading(drill)))</h3>\n<p>\(e(Self.measures(drill)))</p>\n" + render(Self.checkTable(drill))
        }
        html += "<h2>Restores</h2>\n" + (restores.isEmpty ? "<p>None in this period.</p>\n" : render(restoreTable))
        return html + "</body></html>\n"
    }
}
