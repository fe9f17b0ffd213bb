import Foundation
import Logging
import Testing
@testable import RackGatewayDB

/// Issue 29: the progress line fits the terminal, its moving fields (the phase, its n/m count, the
/// elapsed time) last to give way, no field cut in the middle; the builds have a bar of their own.
@Suite("progress line")
struct ProgressLineTests {
    static let widths = [40, 60, 80, 120]

    /// A restore in its load: 67 chunks of 350 MiB, 12 of 50 builds done, as at the issue's 60 columns.
    static func loading(chunks done: Int = 41) -> RestoreProgress {
        let progress = RestoreProgress()
        progress.beginData(chunks: 67, bytes: 367_000_000, builds: 50)
        for _ in 0..<done { progress.chunkDone(rows: 5473, bytes: 5_477_000) }
        for _ in 0..<12 { progress.stepDone() }
        return progress
    }

    /// The rendered line, split into its bar, its label and its fields; each field must be one of
    /// the forms the line was given (a field cut in the middle is none of them).
    static func expectWhole(_ line: ProgressLine, width: Int, sourceLocation: SourceLocation = #_sourceLocation) -> [String] {
        let text = line.render(width: width)
        #expect(text.count <= width, "\(width): \(text.count) characters: \(text)", sourceLocation: sourceLocation)
        var rest = Substring(text)
        // The bar, if drawn: whole, or as its percentage.
        if let fraction = line.fraction, let space = rest.firstIndex(of: " "), !line.label.forms.contains(where: { rest.hasPrefix($0) }) {
            let bar = String(rest[..<space])
            let percent = "\(Int(min(1, fraction) * 100))%"
            #expect(bar == percent || (bar.hasPrefix("[") && bar.hasSuffix("]") && (bar.count == 12 || bar.count == 26)),
                    "\(width): the bar \(bar) in \(text)", sourceLocation: sourceLocation)
            rest = rest[rest.index(after: space)...]
        }
        let label = try? #require(line.label.forms.first { rest.hasPrefix($0) }, "\(width): no whole label in \(text)", sourceLocation: sourceLocation)
        rest = rest.dropFirst(label?.count ?? 0)
        if rest.hasPrefix(", ") || rest.hasPrefix(" ") { rest = rest.drop { $0 == "," || $0 == " " } }
        let pieces = rest.isEmpty ? [] : rest.components(separatedBy: ", ")
        let forms = Set(line.fields.flatMap(\.forms))
        for piece in pieces {
            #expect(forms.contains(piece), "\(width): \"\(piece)\" is no whole field of \(text)", sourceLocation: sourceLocation)
        }
        return pieces
    }

    @Test func theLoadKeepsItsMovingFieldsAtEveryWidth() {
        let line = Self.loading().line()
        #expect(line.text.hasPrefix("data: chunks 41/67, 224393 rows, "), "the log line has every field: \(line.text)")
        for width in Self.widths {
            let pieces = Self.expectWhole(line, width: TerminalOutput.barWidth(columns: width))
            let text = line.render(width: TerminalOutput.barWidth(columns: width))
            #expect(text.contains("data:"), "\(width): the phase: \(text)")
            #expect(pieces.contains { $0.hasSuffix("41/67") }, "\(width): the chunks: \(text)")
            #expect(pieces.contains("builds 12/50"), "\(width): the builds: \(text)")
            #expect(pieces.last.map { $0 == "0s elapsed" || $0 == "0s" } == true, "\(width): the elapsed time last and whole: \(text)")
        }
        // 120 columns: the whole bar and the elapsed time in full (the issue saw `3s elapse`).
        #expect(line.render(width: TerminalOutput.barWidth(columns: 120)).hasPrefix("[##############..........] data: chunks 41/67, "), "\(line.render(width: TerminalOutput.barWidth(columns: 120)))")
        #expect(line.render(width: TerminalOutput.barWidth(columns: 120)).hasSuffix(", builds 12/50, 0s elapsed"), "\(line.render(width: TerminalOutput.barWidth(columns: 120)))")
        // 60 columns: the bar made smaller, the details dropped before any moving field.
        #expect(line.render(width: TerminalOutput.barWidth(columns: 60)) == "[######....] data: chunks 41/67, builds 12/50, 0s elapsed", "\(line.render(width: TerminalOutput.barWidth(columns: 60)))")
    }

    @Test func theBuildsHaveABarOfTheirOwnOnceTheDataIsIn() {
        let progress = Self.loading(chunks: 67)
        let line = progress.line()
        #expect(line.text.hasPrefix("builds 12/50, data loaded (67 chunks), 366691 rows, "), "\(line.text)")
        #expect(line.fraction == 12.0 / 50, "the builds' fraction, not a full data bar: \(String(describing: line.fraction))")
        for width in Self.widths {
            let text = line.render(width: TerminalOutput.barWidth(columns: width))
            _ = Self.expectWhole(line, width: TerminalOutput.barWidth(columns: width))
            #expect(text.contains("builds 12/50") && text.contains("0s"), "\(width): \(text)")
            #expect(!text.contains("100%") && !text.contains("[########################]"), "\(width): \(text)")
        }
        for _ in 12..<50 { progress.stepDone() }
        // Every build done: no builds bar is left standing at 100% of something still running.
        #expect(!progress.line().text.hasPrefix("builds"), "\(progress.line().text)")
    }

    @Test func aPhaseWithACountShowsItsOwnFraction() {
        let progress = RestoreProgress()
        progress.begin(phase: "checks: rows and fingerprints", steps: 12)
        for _ in 0..<3 { progress.stepDone() }
        let line = progress.line()
        #expect(line.fraction == 0.25)
        #expect(line.text == "checks: rows and fingerprints 3/12, 0s elapsed", "\(line.text)")
        for width in Self.widths {
            _ = Self.expectWhole(line, width: TerminalOutput.barWidth(columns: width))
            let text = line.render(width: TerminalOutput.barWidth(columns: width))
            #expect(text.contains("3/12") && text.hasSuffix("0s elapsed") || text.hasSuffix("0s"), "\(width): \(text)")
        }
        #expect(line.render(width: 30) == "25% checks 3/12, 0s elapsed", "\(line.render(width: 30))")
    }

    @Test func theBackupLineKeepsTablesAndTimeAtEveryWidth() {
        let progress = BackupProgress()
        progress.begin(tables: 12, estimatedBytes: 400_000_000)
        progress.add(rows: 300_000, bytesIn: 190_000_000)
        progress.add(bytesOut: 35_000_000)
        for _ in 0..<5 { progress.tableDone(estimated: 10_000_000) }
        let line = progress.line()
        #expect(line.text.hasPrefix("backup: tables 5/12, 300000 rows, 181.2 MiB read, 33.4 MiB written, "), "\(line.text)")
        for width in Self.widths {
            let pieces = Self.expectWhole(line, width: TerminalOutput.barWidth(columns: width))
            let text = line.render(width: TerminalOutput.barWidth(columns: width))
            #expect(text.contains("backup:") && pieces.contains { $0.hasSuffix("5/12") }, "\(width): \(text)")
            #expect(pieces.contains { $0 == "0s elapsed" || $0 == "0s" }, "\(width): \(text)")
        }
    }

    /// Every table in, the archive still going up (the person trial: "ETA 0s" for 100 s of upload):
    /// the line says what the run does, at 60 columns too.
    @Test func theBackupLineSaysItUploadsOnceTheTablesAreIn() {
        let progress = BackupProgress()
        progress.begin(tables: 2, estimatedBytes: 1_000)
        progress.add(rows: 10, bytesIn: 1_000)
        for _ in 0..<2 { progress.tableDone(estimated: 500) }
        #expect(progress.line().text.contains("ETA"), "\(progress.line().text)")
        progress.finishing("uploading the rest of the archive and its sidecars")
        let line = progress.line()
        #expect(!line.text.contains("ETA") && line.text.contains("uploading the rest"), "\(line.text)")
        #expect(line.render(width: TerminalOutput.barWidth(columns: 60)).contains("uploading"), "\(line.render(width: 58))")
    }

    /// Narrower than anything sensible: whole words, never past the width.
    @Test func aVeryNarrowTerminalGetsWholeWords() {
        let line = Self.loading().line()
        for width in [1, 5, 12, 20] {
            let text = line.render(width: width)
            #expect(text.count <= width, "\(width): \(text)")
        }
        #expect(line.render(width: 20) == "61% data: 41/67, 0s", "\(line.render(width: 20))")
    }

    /// Issue 29: one label, whichever module logs (`[RackGatewayDB]` and `[rack_gateway_db]` were
    /// swift-log's source module names).
    @Test func logLinesCarryOneLabel() {
        let handler = ToolLogHandler(terminal: false)
        let date = Date(timeIntervalSince1970: 1_795_000_000)
        let line = handler.text(level: .info, message: "backup written", metadata: ["path": "/b/x.sql.gz", "bytes": "12"], now: date)
        #expect(line == "2026-11-18T11:06:40.000Z info rack-gateway-db: backup written (bytes=12 path=/b/x.sql.gz)", "\(line)")
        #expect(ToolLogHandler(terminal: true).text(level: .warning, message: "slow", metadata: nil) == "warning: slow")
        // A value with a space, a quote or a line break reads back whole (logfmt's quoting).
        let quoted = handler.text(level: .info, message: "step done", metadata: ["step": "scale up", "detail": "a \"b\"\nc", "seconds": "0.5"], now: date)
        #expect(quoted == #"2026-11-18T11:06:40.000Z info rack-gateway-db: step done (detail="a \"b\"\nc" seconds=0.5 step="scale up")"#, "\(quoted)")
    }
}
