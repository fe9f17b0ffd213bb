import Foundation

/// Line charts as SVG, self-contained (no script, no font or style from elsewhere): one or two
/// series over time, the second on its own axis at the right. The x-axis is the period given
/// (`from` to `until`), so the report's charts line up one above the other, with a labelled
/// vertical gridline at each day, week or month boundary and labelled horizontal gridlines. Every
/// point is a `<circle>` with `data-series`, `data-date` and `data-value`, so the chart can be
/// checked against the data. A point with a mark (a failed drill, a suspect archive) is drawn larger
/// in the mark's colour, with `data-mark`, and the marks in use are in a legend.
/// The SVG scales to the page (`viewBox`, width 100%, at most its drawn width), and its margins
/// are as wide as its widest axis label, so no label is cut off.
public struct SVGChart {
    public struct Series {
        public var name: String
        public var unit: String
        public var color: String
        public var points: [(date: Date, value: Double)]
        /// Per point (same order), its mark, a key of the chart's `marks`; nil or absent: none.
        public var marks: [String?] = []
    }

    /// A kind of point drawn apart: its legend label and colour.
    public struct Mark {
        public var key: String
        public var label: String
        public var color: String
    }

    public var title: String
    public var series: [Series]
    /// The time the x-axis covers: the report's period.
    public var from: Date
    public var until: Date
    public var marks: [Mark] = []
    /// The margins left and right of the plot; nil: as wide as this chart's labels need. Charts
    /// drawn one above the other get the same (`aligned`), so one time falls at one x in each.
    public var margins: (left: Double, right: Double)? = nil
    let width = 900.0, height = 290.0, top = 52.0, bottom = 44.0
    /// A generous width of one character of the labels (11 px sans-serif), to size the margins.
    static let characterWidth = 7.0
    /// Horizontal gridlines: the value axis in this many steps.
    static let valueSteps = 4

    static func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }

    static func number(_ value: Double) -> String {
        value == value.rounded() && abs(value) < 1e15 ? String(Int(value)) : String(format: abs(value) >= 100 ? "%.0f" : "%.2f", value)
    }

    /// The days (UTC midnights) the x-axis labels: every day, every 7th or every 14th day, or the
    /// first of each month, so about 4 to 10 labels fit.
    static func ticks(from: Date, until: Date) -> [Date] {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        let days = until.timeIntervalSince(from) / 86_400
        var result: [Date] = []
        var cursor = calendar.startOfDay(for: from)
        if cursor < from { cursor = calendar.date(byAdding: .day, value: 1, to: cursor)! }
        if days > 120 {
            let month = calendar.dateComponents([.year, .month], from: cursor)
            var first = calendar.date(from: month)!
            if first < cursor { first = calendar.date(byAdding: .month, value: 1, to: first)! }
            let step = days > 400 ? 3 : 1
            cursor = first
            while cursor <= until { result.append(cursor); cursor = calendar.date(byAdding: .month, value: step, to: cursor)! }
            return result
        }
        let step = days <= 10 ? 1 : days <= 70 ? 7 : 14
        while cursor <= until { result.append(cursor); cursor = calendar.date(byAdding: .day, value: step, to: cursor)! }
        return result
    }

    /// The top of a value axis: at least 1.1 times the largest value, `valueSteps` round steps
    /// (1, 2, 2.5 or 5 times a power of ten) of it, so every gridline's label is a round number.
    static func top(of values: [Double]) -> Double {
        let raw = max(values.max() ?? 0, 0) * 1.1 / Double(valueSteps)
        guard raw > 0 else { return 1 }
        let magnitude = pow(10, floor(log10(raw)))
        let step = [1, 2, 2.5, 5, 10].map { $0 * magnitude }.first { $0 >= raw } ?? 10 * magnitude
        return step * Double(valueSteps)
    }

    /// The labels of series `index`'s value axis, bottom to top, and its top value.
    func axisLabels(_ index: Int) -> (labels: [String], scale: Double) {
        let scale = Self.top(of: series[index].points.map(\.value))
        return ((0...Self.valueSteps).map { Self.number(scale * Double($0) / Double(Self.valueSteps)) }, scale)
    }

    /// The margins this chart's labels need.
    public var neededMargins: (left: Double, right: Double) { (margin(0), margin(1)) }

    /// `charts` with the same margins, the widest any of them needs: their x-axes line up.
    public static func aligned(_ charts: [SVGChart]) -> [SVGChart] {
        let left = charts.map(\.neededMargins.left).max() ?? 60, right = charts.map(\.neededMargins.right).max() ?? 60
        return charts.map { chart in
            var chart = chart
            chart.margins = (left, right)
            return chart
        }
    }

    /// The margin beside an axis: room for its widest label (and its unit), at least 60 px.
    func margin(_ index: Int) -> Double {
        guard index < series.count else { return 60 }
        let widest = (axisLabels(index).labels + [series[index].unit]).map(\.count).max() ?? 0
        return max(60, Double(widest) * Self.characterWidth + 16)
    }

    public func render() -> String {
        let span = max(1, until.timeIntervalSince(from))
        let (left, right) = margins ?? neededMargins
        let plotWidth = width - left - right, plotHeight = height - top - bottom
        func x(_ date: Date) -> Double { left + date.timeIntervalSince(from) / span * plotWidth }
        func f(_ value: Double) -> String { String(format: "%.1f", value) }
        var svg = #"<svg xmlns="http://www.w3.org/2000/svg" width="100%" viewBox="0 0 \#(Int(width)) \#(Int(height))" style="max-width:\#(Int(width))px;height:auto" preserveAspectRatio="xMinYMin meet" role="img" font-family="sans-serif" font-size="11">"#
        svg += "<title>\(Self.escape(title))</title>"
        svg += #"<rect x="0" y="0" width="\#(Int(width))" height="\#(Int(height))" fill="white"/>"#
        svg += #"<text x="\#(Int(left))" y="18" font-size="13" font-weight="bold">\#(Self.escape(title))</text>"#
        // Vertical gridlines, each labelled with its day.
        for tick in Self.ticks(from: from, until: until) {
            let position = x(tick)
            svg += #"<line class="grid-x" x1="\#(f(position))" y1="\#(top)" x2="\#(f(position))" y2="\#(top + plotHeight)" stroke="gainsboro"/>"#
            svg += #"<text class="tick-x" x="\#(f(position))" y="\#(f(top + plotHeight + 16))" text-anchor="middle">\#(EvidenceReport.day(tick))</text>"#
        }
        svg += #"<line x1="\#(left)" y1="\#(top + plotHeight)" x2="\#(left + plotWidth)" y2="\#(top + plotHeight)" stroke="dimgray"/>"#
        svg += #"<text x="\#(f(left + plotWidth / 2))" y="\#(f(height - 6))" text-anchor="middle" fill="dimgray">\#(EvidenceReport.day(from)) to \#(EvidenceReport.display(until))</text>"#
        // The legend of the marks in use, on the line under the title.
        let used = Set(series.flatMap(\.marks).compactMap { $0 })
        var legendX = left
        for mark in marks where used.contains(mark.key) {
            svg += #"<circle class="legend" cx="\#(f(legendX + 5))" cy="32" r="5" fill="\#(mark.color)"/>"#
            svg += #"<text class="legend" x="\#(f(legendX + 14))" y="36" fill="\#(mark.color)">\#(Self.escape(mark.label))</text>"#
            legendX += 30 + Double(mark.label.count) * Self.characterWidth
        }
        for (index, line) in series.enumerated() {
            let (labels, scale) = axisLabels(index)
            func y(_ value: Double) -> Double { top + plotHeight - value / scale * plotHeight }
            let axisX = index == 0 ? left : left + plotWidth
            let anchor = index == 0 ? "end" : "start", offset = index == 0 ? -6.0 : 6.0
            svg += #"<line x1="\#(axisX)" y1="\#(top)" x2="\#(axisX)" y2="\#(top + plotHeight)" stroke="\#(line.color)"/>"#
            // Horizontal gridlines (drawn once, for the first series), every step labelled on each series' own axis.
            for step in 0...Self.valueSteps {
                let value = scale * Double(step) / Double(Self.valueSteps), position = y(value)
                if index == 0 && step > 0 {
                    svg += #"<line class="grid-y" x1="\#(left)" y1="\#(f(position))" x2="\#(left + plotWidth)" y2="\#(f(position))" stroke="gainsboro"/>"#
                }
                svg += #"<text class="tick-y" x="\#(axisX + offset)" y="\#(f(position + 4))" text-anchor="\#(anchor)" fill="\#(line.color)">\#(labels[step])</text>"#
            }
            svg += #"<text x="\#(axisX + offset)" y="\#(top - 8)" text-anchor="\#(anchor)" fill="\#(line.color)">\#(Self.escape(line.unit))</text>"#
            svg += #"<text x="\#(left + plotWidth / 2 + (index == 0 ? -10.0 : 10.0))" y="18" text-anchor="\#(index == 0 ? "end" : "start")" fill="\#(line.color)">\#(Self.escape(line.name))</text>"#
            let path = line.points.map { String(format: "%.1f,%.1f", x($0.date), y($0.value)) }.joined(separator: " ")
            if line.points.count > 1 { svg += #"<polyline fill="none" stroke="\#(line.color)" stroke-width="1.5" points="\#(path)"/>"# }
            for (number, point) in line.points.enumerated() {
                let key = number < line.marks.count ? line.marks[number] : nil
                let mark = key.flatMap { key in marks.first { $0.key == key } }
                let attributes = mark.map { #" r="5" fill="\#($0.color)" stroke="\#(line.color)" stroke-width="1.5" data-mark="\#(Self.escape($0.key))""# } ?? #" r="3" fill="\#(line.color)""#
                svg += #"<circle cx="\#(f(x(point.date)))" cy="\#(f(y(point.value)))"\#(attributes) data-series="\#(Self.escape(line.name))" data-date="\#(UTCTime.iso8601(point.date))" data-value="\#(Self.number(point.value))"/>"#
            }
        }
        return svg + "</svg>\n"
    }
}

extension EvidenceReport {
    static let megabyte = 1_000_000.0

    /// Archive size (MB) and rows over time, one point per archive (those removed by retention as
    /// prune recorded them).
    public var sizeChart: SVGChart { SVGChart.aligned([sizeChartAlone, rtoChartAlone])[0] }

    /// Each drill's measured RTO (seconds) over time, failed drills in red; on the size chart's x-axis.
    public var rtoChart: SVGChart { SVGChart.aligned([sizeChartAlone, rtoChartAlone])[1] }

    var sizeChartAlone: SVGChart {
        // The archives present, and those prune deleted as prunes.jsonl recorded them.
        func mark(verifyFailed: Bool, suspect: Bool) -> String? { verifyFailed ? "verify-failed" : suspect ? "suspect" : nil }
        let present = days.flatMap(\.archives).filter { $0.problem == nil }.map { ($0.time, $0.sizeBytes, $0.rows ?? 0, mark(verifyFailed: $0.verifyFailed, suspect: $0.suspect != nil)) }
        let pruned = days.flatMap(\.pruned).filter { $0.problem == nil }.compactMap { archive in
            archive.sizeBytes.map { (archive.time, $0, archive.rows ?? 0, mark(verifyFailed: archive.verifyFailed == true, suspect: archive.suspect != nil)) }
        }
        let points = (present + pruned).compactMap { point in Self.parseTime(point.0).map { ($0, point.1, point.2, point.3) } }.sorted { $0.0 < $1.0 }
        return SVGChart(title: "Archive size and rows", series: [
            .init(name: "size", unit: "MB", color: "#1f6fb4", points: points.map { ($0.0, Double($0.1) / Self.megabyte) }, marks: points.map(\.3)),
            .init(name: "rows", unit: "rows", color: "#c0392b", points: points.map { ($0.0, Double($0.2)) }, marks: points.map(\.3)),
        ], from: sinceDate, until: untilDate, marks: [
            .init(key: "suspect", label: "SUSPECT archive", color: "#f39c12"),
            .init(key: "verify-failed", label: "archive that did not verify", color: "#8e44ad"),
        ])
    }

    var rtoChartAlone: SVGChart {
        let points = drills.filter(\.restored).compactMap { drill in Self.parseTime(drill.startedAt).map { ($0, drill.rtoSeconds, drill.ok) } }
        return SVGChart(title: "Drill RTO (measured restore)", series: [
            .init(name: "RTO", unit: "s", color: "#27864a", points: points.map { ($0.0, $0.1) }, marks: points.map { $0.2 ? nil : "failed" }),
        ], from: sinceDate, until: untilDate, marks: [.init(key: "failed", label: "failed drill", color: "#e31a1c")])
    }

    /// The end of the report's window (`until`, the time it was made).
    var untilDate: Date { Self.parseTime(until) ?? Date(timeIntervalSince1970: 0) }
    /// The start of the report's period (the first day's midnight): where both charts' x-axes start.
    var sinceDate: Date { Self.parseTime(since + "T00:00:00Z") ?? untilDate }

    static func size(_ bytes: Int) -> String { String(format: "%.1f MB", Double(bytes) / megabyte) }

    static func marks(_ archive: Archive) -> String {
        let marks = [archive.problem != nil ? "UNREADABLE" : nil, archive.verifyFailed ? "VERIFY-FAILED" : nil, archive.suspect != nil ? "SUSPECT" : nil, archive.encrypted ? "encrypted" : nil,
                     archive.signed ? "signed" : nil, archive.verified ? "verified" : nil, archive.drilled ? "drilled" : nil].compactMap { $0 }
        // verify --sample's coverage of it since it last changed, and when it last re-read some (not
        // beside VERIFY-FAILED: no reassurance next to a failure that stands).
        let reRead = archive.verifyFailed ? nil : archive.sampledPercent.flatMap { percent in archive.sampledAt.map { "re-read \(String(format: "%g", percent))% (last \(display($0)))" } }
        return (marks + [reRead].compactMap { $0 }).joined(separator: ", ")
    }

    var callouts: [String] {
        var lines: [String] = []
        let missed = days.filter(\.missed).map(\.date)
        if !missed.isEmpty { lines.append("Missed days (no archive taken): " + missed.joined(separator: ", ")) }
        for archive in days.flatMap(\.archives) {
            if let suspect = archive.suspect { lines.append("Suspect archive \(archive.file): \(suspect)") }
            if let problem = archive.problem { lines.append("Unreadable archive \(archive.file): \(problem)") }
            if archive.verifyFailed && archive.problem == nil {
                let when = archive.verifyFailedAt.map { " on \(Self.display($0))" } ?? ""
                let found = (archive.verifyProblems ?? []).isEmpty ? "" : ": " + archive.verifyProblems!.joined(separator: "; ")
                lines.append("Archive \(archive.file) did not verify (its last verify\(when), verifications.jsonl\(found)): not a good backup")
            }
        }
        for archive in days.flatMap(\.archives) {
            for copy in archive.copies ?? [] where !copy.good { lines.append("Archive \(archive.file): \(copy.sentence)") }
        }
        for archive in days.flatMap(\.pruned) where !archive.good {
            let what = archive.problem != nil ? "Unreadable archive" : archive.verifyFailed == true ? "Archive that did not verify" : "Suspect archive"
            lines.append("\(what) \(archive.file), removed by retention on \(Self.display(archive.removedAt))" + ((archive.suspect ?? archive.problem).map { ": \($0)" } ?? ""))
        }
        for drill in drills where !drill.ok {
            let failed = drill.checks.filter { !$0.ok }.map(\.name)
            let of = drill.restored ? drill.archive : "the existing database \(drill.database ?? "?")" + (drill.archive.isEmpty ? "" : " against \(drill.archive)")
            lines.append("Failed drill \(Self.display(drill.startedAt)) of \(of): " + (failed.isEmpty ? drill.error ?? "failed" : failed.joined(separator: ", ")))
        }
        return lines
    }

    var retentionText: String {
        guard let retention else { return "No prune recorded in this directory (prunes.jsonl): no retention policy has been applied by rack-gateway-db prune." }
        let removed = days.flatMap(\.pruned).count
        return "rack-gateway-db prune \(retention.policy); last run \(Self.display(retention.lastPrunedAt)), kept \(retention.kept), deleted \(retention.deleted). "
            + "\(Plural.of(removed, "archive")) of this period removed by retention (prunes.jsonl), each listed on its day."
    }

    /// What the RPO is, how large it was, and the gap now.
    var recoveryText: String {
        var text = "RPO, the data a restore can lose, is the largest gap between consecutive good backups (present or removed by retention): "
        if let gap = recovery.largestGapSeconds, let from = recovery.largestGapFrom, let to = recovery.largestGapTo {
            text += "\(ProgressDisplay.duration(gap)) in this period, from \(Self.display(from)) to \(Self.display(to))."
        } else {
            text += "not measurable in this period (fewer than two good backups)."
        }
        if let gap = recovery.currentGapSeconds, let last = recovery.lastGoodBackup {
            text += " Now: \(ProgressDisplay.duration(gap)) since the last good backup (\(Self.display(last)))"
            text += recovery.overdue ? ": OVERDUE, over 26h (the report does not know the schedule; 26h is the sample alert rules' threshold for nightly backups)." : "."
        } else {
            text += " Now: no good backup at all."
        }
        return text
    }

    /// The copies section (only when copies.jsonl records any): per other location, the period's
    /// archives verified there and the newest copy.
    var copiesText: String {
        let archives = days.flatMap(\.archives).count
        return "Copies, as copies.jsonl in this directory records them (a copy at another location as recorded when it was made): " + (copies ?? []).map { total in
            (total.direction == .to ? "to \(total.location), \(total.verified) of \(Plural.of(archives, "archive")) of this period verified there"
                : "of \(total.location), \(total.verified) of \(Plural.of(archives, "archive")) here verified as its copies")
                + (total.newestArchive.map { " (newest \($0), copied \(total.newestCopiedAt.map(Self.display) ?? "?"))" } ?? "")
                + (total.failed > 0 ? ", \(total.failed) FAILED" : "") + (total.changed > 0 ? ", \(total.changed) CHANGED since" : "")
        }.joined(separator: "; ") + "."
    }

    var sourceText: String {
        guard let source else { return "Source database: unknown (no readable archive in the directory)." }
        return "Source database: " + (source.host.map { "\($0)/" } ?? "") + source.database + (source.serverVersion.map { ", PostgreSQL \($0)" } ?? "")
            + " (the newest archive's manifest, \(source.archive)" + (source.archiveToolVersion.map { ", written by rack-gateway-db \($0)" } ?? "") + ")."
    }

    /// A table both renderings print: cells as text, and a row's class (`missed`, `suspect`, `fail`, `pruned`, `norecord`).
    struct Table {
        var header: [String]
        var rows: [(cells: [String], mark: String?)] = []
    }

    /// Whether copies.jsonl recorded anything: the day table then has a "copies" column.
    var copiesRecorded: Bool { copies != nil }

    /// An archive's "copies" cell: `2 verified: s3://b2/p, /mnt/x`, `FAILED to s3://b2/p`, `copy of
    /// /var/backups/rgw, verified`; `none` when nothing was recorded of it.
    static func copiesCell(_ copies: [ArchiveCopy]?) -> String {
        let copies = copies ?? []
        let to = copies.filter { $0.direction == .to }, good = to.filter(\.good)
        var parts: [String] = good.isEmpty ? [] : ["\(good.count) verified: " + good.map(\.location).joined(separator: ", ")]
        parts += to.filter { $0.state == .failed }.map { "FAILED to \($0.location)" }
        parts += to.filter { $0.state == .changed }.map { "CHANGED since copied to \($0.location)" }
        parts += copies.filter { $0.direction == .from }.map { copy in
            copy.state == .verified ? "copy of \(copy.location), verified" : copy.state == .failed ? "copy from \(copy.location) FAILED" : "copy of \(copy.location), CHANGED since"
        }
        return parts.isEmpty ? "none" : parts.joined(separator: "; ")
    }

    var dayTable: Table {
        var table = Table(header: ["day", "record", "archive", "time", "size", "tables", "rows", "marks"])
        let copyColumn = copiesRecorded
        if copyColumn { table.header.append("copies") }
        let blank = copyColumn ? [""] : []
        var index = 0
        while index < days.count {
            let day = days[index]
            // The days before the first record, as one row.
            if day.status == .noRecord {
                var end = index
                while end + 1 < days.count && days[end + 1].status == .noRecord { end += 1 }
                let span = end == index ? day.date : "\(day.date) to \(days[end].date)"
                table.rows.append(([span, "no record", "before this directory's first record (\(Plural.of(end - index + 1, "day")))", "", "", "", "", ""] + blank, "norecord"))
                index = end + 1
                continue
            }
            for archive in day.archives {
                let record = archive.problem != nil ? "UNREADABLE" : archive.verifyFailed ? "VERIFY-FAILED: did not verify" : archive.suspect != nil ? "SUSPECT" : "backed up"
                table.rows.append(([day.date, record, archive.file, Self.clock(archive.time), Self.size(archive.sizeBytes),
                                    archive.tables.map(String.init) ?? "", archive.rows.map(String.init) ?? "", Self.marks(archive)]
                                    + (copyColumn ? [Self.copiesCell(archive.copies)] : []),
                                   archive.good ? nil : "suspect"))
            }
            for archive in day.pruned {
                let marks = [archive.verifyFailed == true ? "VERIFY-FAILED" : nil, archive.suspect != nil ? "SUSPECT" : nil,
                             archive.verified == true ? "verified" : nil, archive.drilled == true ? "drilled" : nil].compactMap { $0 }.joined(separator: ", ")
                table.rows.append(([day.date, archive.what + ", removed by retention on " + String(archive.removedAt.prefix(10)),
                                    archive.file, Self.clock(archive.time), archive.sizeBytes.map(Self.size) ?? "", archive.tables.map(String.init) ?? "",
                                    archive.rows.map(String.init) ?? "", marks] + blank,
                                   archive.good ? "pruned" : "suspect"))
            }
            if day.status == .missed {
                table.rows.append(([day.date, "MISSED", "no archive taken", "", "", "", "", ""] + blank, "missed"))
            } else if day.status == .pending {
                table.rows.append(([day.date, "none yet", "", "", "", "", "", ""] + blank, nil))
            }
            index += 1
        }
        return table
    }

    /// `03:15 UTC` of an ISO-8601 time.
    static func clock(_ iso: String) -> String { String(display(iso).dropFirst(11)) }

    static func checkTable(_ drill: Drill) -> Table {
        Table(header: ["check", "result", "detail"], rows: drill.checks.map {
            ([$0.name, $0.checked ? ($0.ok ? "PASS" : "FAIL") : "NOT CHECKED", $0.detail], $0.ok ? nil : "fail")
        })
    }

    var restoreTable: Table {
        Table(header: ["started", "archive", "into", "mode", "result", "duration"], rows: restores.map {
            ([$0.startedAt.map(Self.display) ?? "?", $0.archive, $0.app.map { "Convox app \($0)" } ?? $0.target ?? "", $0.mode + ($0.dryRun ? " (dry run)" : ""),
              $0.ok ? "ok" : "FAILED: " + ($0.error ?? ""), String(format: "%.1f s", $0.durationSeconds)], $0.ok ? nil : "fail")
        })
    }

    static func heading(_ drill: Drill) -> String {
        if let newest = drill.newestFailed {
            return "\(display(drill.startedAt)): FAILED, the newest archive \(newest) did not verify; the older \(drill.archive) was drilled in its place"
        }
        if !drill.restored {
            return "\(display(drill.startedAt)): \(drill.ok ? (drill.partial ? "PASSED (partial: no archive)" : "PASSED") : "FAILED"), the existing database \(drill.database ?? "?"), restored elsewhere, "
                + (drill.archive.isEmpty ? "without an archive" : "against \(drill.archive)")
        }
        return "\(display(drill.startedAt)): \(drill.ok ? "PASSED" : "FAILED"), \(drill.archive)" + (drill.suspect != nil ? " (a SUSPECT archive)" : "")
    }

    static func measures(_ drill: Drill) -> String {
        (drill.restored ? "RTO (measured restore) \(String(format: "%.1f", drill.rtoSeconds)) s, backup age at drill \(ProgressDisplay.duration(drill.backupAgeSeconds))"
            : "checked in place, read-only: no restore, no RTO")
            + (drill.newestFailed == nil ? drill.error.map { "; error: \($0)" } ?? "" : "")
            + (drill.suspect.map { ". NOTE: the drilled archive is marked SUSPECT by its backup (the data shrank): \($0)" } ?? "")
    }

    /// What the check table is of: said above it when it is not simply the drill's verdict.
    static func checksCaption(_ drill: Drill) -> String? {
        guard let newest = drill.newestFailed else { return nil }
        return "The newest archive, \(newest), failed verification (\(drill.newestFailedReason ?? "did not verify")): it was not drilled. "
            + "The checks below are of \(drill.archive), an older archive drilled in its place; the drill FAILED whatever they say."
    }

    var header: String {
        "\(directory): \(since) to \(Self.display(until))" + (firstRecord.map { " (first record \($0))" } ?? " (no record)")
            + "; generated \(Self.display(generatedAt)) by rack-gateway-db \(toolVersion) report."
    }

    /// Markdown; `charts` are the file names of the two SVGs beside it, or nil to leave them out.
    public func markdown(charts: (sizes: String, rto: String)?) -> String {
        func cell(_ text: String) -> String { text.replacingOccurrences(of: "|", with: "\\|").replacingOccurrences(of: "\n", with: " ") }
        func render(_ table: Table) -> String {
            var text = "| " + table.header.joined(separator: " | ") + " |\n|" + String(repeating: "---|", count: table.header.count) + "\n"
            for row in table.rows {
                let loud = ["missed", "suspect", "fail"].contains(row.mark ?? "")
                // A failed or changed copy's cell is bold, as the HTML draws it red.
                let copies = table.header.firstIndex(of: "copies")
                let cells = row.cells.map(cell).enumerated().map { column, text in
                    (loud && column == 1 || column == copies && (text.contains("FAILED") || text.contains("CHANGED"))) && !text.isEmpty ? "**\(text)**" : text
                }
                text += "| " + cells.joined(separator: " | ") + " |\n"
            }
            return text
        }
        var md = "# Backup and restore evidence\n\n\(cell(header))\n\n**\(summary.text)**\n\n"
        for line in callouts { md += "- \(cell(line))\n" }
        if !callouts.isEmpty { md += "\n" }
        md += "\(cell(sourceText))\n\n## Recovery point\n\n\(cell(recoveryText))\n\n## Retention\n\n\(cell(retentionText))\n\n"
        if copiesRecorded { md += "## Copies\n\n\(cell(copiesText))\n\n" }
        md += charts.map { "![Archive size and rows](\($0.sizes))\n\n![Drill RTO](\($0.rto))\n\n" } ?? "(Charts: give -o FILE to write them beside the report.)\n\n"
        md += "## Backups per day\n\n" + render(dayTable) + "\n## Drills\n\n"
        if drills.isEmpty { md += "None in this period.\n\n" }
        for drill in drills {
            md += "### \(cell(Self.heading(drill)))\n\n\(cell(Self.measures(drill)))\n\n" + (Self.checksCaption(drill).map { "**\(cell($0))**\n\n" } ?? "") + render(Self.checkTable(drill)) + "\n"
        }
        md += "## Restores\n\n" + (restores.isEmpty ? "None in this period.\n" : render(restoreTable))
        return md
    }

    /// One self-contained HTML file: inline styles and SVG charts, no script, nothing fetched.
    public func html() -> String {
        func e(_ text: String) -> String { SVGChart.escape(text) }
        func render(_ table: Table) -> String {
            var text = "<table><tr>" + table.header.map { "<th>\(e($0))</th>" }.joined() + "</tr>\n"
            // A copies cell that tells of a failed or changed copy is drawn as a failure, whatever its row.
            let copies = table.header.firstIndex(of: "copies")
            func cell(_ column: Int, _ text: String) -> String {
                column == copies && (text.contains("FAILED") || text.contains("CHANGED")) ? "<td class=\"fail\">\(e(text))</td>" : "<td>\(e(text))</td>"
            }
            for row in table.rows { text += "<tr\(row.mark.map { " class=\"\($0)\"" } ?? "")>" + row.cells.enumerated().map { cell($0.offset, $0.element) }.joined() + "</tr>\n" }
            return text + "</table>\n"
        }
        var html = "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Backup and restore evidence: \(e(directory))</title>\n<style>"
        html += "body{font-family:sans-serif;margin:2em;color:#222}table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #bbb;padding:2px 6px;font-size:12px}td:nth-child(1),td:nth-child(4),td:nth-child(5){white-space:nowrap}td:nth-child(2){min-width:11em}td:nth-child(3),td:nth-child(9){overflow-wrap:anywhere}"
        html += "th{background:#eee}.missed{background:#fde2e2;font-weight:bold}.pruned{color:#555}.norecord{color:#888;font-style:italic}.charts svg{display:block;margin:0.5em 0}.suspect,.fail{color:#b00;font-weight:bold}.summary{font-size:1.15em;font-weight:bold}"
        html += "@media print{body{margin:0}}</style></head><body>\n"
        html += "<h1>Backup and restore evidence</h1>\n<p>\(e(header))</p>\n<p class=\"summary\">\(e(summary.text))</p>\n"
        if !callouts.isEmpty { html += "<ul>" + callouts.map { "<li class=\"fail\">\(e($0))</li>" }.joined() + "</ul>\n" }
        html += "<p>\(e(sourceText))</p>\n<h2>Recovery point</h2><p>\(e(recoveryText))</p>\n"
        html += "<h2>Retention</h2><p>\(e(retentionText))</p>\n" + (copiesRecorded ? "<h2>Copies</h2><p>\(e(copiesText))</p>\n" : "") + "<h2>Charts</h2>\n<div class=\"charts\">" + sizeChart.render() + rtoChart.render() + "</div>\n"
        html += "<h2>Backups per day</h2>\n" + render(dayTable) + "<h2>Drills</h2>\n"
        if drills.isEmpty { html += "<p>None in this period.</p>\n" }
        for drill in drills {
            html += "<h3\(drill.ok ? "" : " class=\"fail\"")>\(e(Self.heading(drill)))</h3>\n<p>\(e(Self.measures(drill)))</p>\n"
            html += (Self.checksCaption(drill).map { "<p class=\"fail\">\(e($0))</p>\n" } ?? "") + render(Self.checkTable(drill))
        }
        html += "<h2>Restores</h2>\n" + (restores.isEmpty ? "<p>None in this period.</p>\n" : render(restoreTable))
        return html + "</body></html>\n"
    }
}
