import ArgumentParser
import Foundation
import RackGatewayDB

struct ReportCommand: ToolCommand {
    /// report has no --json or -v of its own (its --format says what it prints): the defaults.
    var outputOptions: OutputOptions { (try? OutputOptions.parse([])) ?? OutputOptions() }

    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Write the backup and restore evidence of --dir for an auditor: backups per day, drills, restores, retention, charts.",
        discussion: """
            Reads the archives (their manifests, or the summaries of encrypted ones), verifications.jsonl, \
            drills.jsonl, restores.jsonl, prunes.jsonl and copies.jsonl (when it records copies: a copies column \
            per archive, its verified copies and where, a FAILED copy called out, and a Copies section). Lists every day of the period asked for: backed up \
            (its archives, sizes and rows), backed up and removed by retention on a date (prunes.jsonl), \
            SUSPECT, MISSED (no archive taken) or no record (before the directory's first record). The RPO is \
            the largest gap between consecutive good backups in the period, and the gap now; each drill shows \
            its checks, its measured RTO and the backup's age at the drill; then the restores done (plain and \
            pipeline), the retention policy prune last applied, the tool's version, the source database, and \
            a summary line with the last successful drill. html is one self-contained file with two inline SVG \
            charts on one time axis (archive size and rows; drill RTO); md writes the charts as SVG files beside \
            -o FILE; json is the data. Nothing in it reveals a password, a key or row content. Files are \
            written mode 0600.
            """)

    enum Format: String, ExpressibleByArgument, CaseIterable { case md, html, json }

    @OptionGroup var directoryOptions: DirectoryOptions

    @Option(help: ArgumentHelp("The period, back from now: 90d, 12h, ...", valueName: "duration"))
    var since = "90d"

    @Option(help: "md, html or json.")
    var format: Format = .md

    @Option(name: [.short, .customLong("output")], help: ArgumentHelp("Write the report here (md: the charts beside it, FILE's name with -sizes.svg and -rto.svg); default: standard output.", valueName: "file"))
    var output: String?

    @OptionGroup var identityOption: IdentityOption

    func validate() throws { _ = try MaintCommand.duration(since, "--since") }

    func run(_ context: RunContext) throws {
        do {
            var directory = try directoryOptions.archiveDirectory(keys: ArchiveKeys(identities: try identityOption.identities()), clock: context.clock)
            directory.readsCopies = true
            let report = try EvidenceReport.make(directory: directory, seconds: try MaintCommand.duration(since, "--since"), now: context.clock.now())
            var files: [(path: String, text: String)] = []
            switch format {
            case .json:
                files.append((output ?? "-", try Reporting.jsonText(report) + "\n"))
            case .html:
                files.append((output ?? "-", report.html()))
            case .md:
                if let output {
                    let url = URL(fileURLWithPath: output)
                    let stem = url.deletingPathExtension().lastPathComponent
                    let charts = (sizes: stem + "-sizes.svg", rto: stem + "-rto.svg")
                    let folder = url.deletingLastPathComponent()
                    files.append((output, report.markdown(charts: charts)))
                    files.append((folder.appendingPathComponent(charts.sizes).path, report.sizeChart.render()))
                    files.append((folder.appendingPathComponent(charts.rto).path, report.rtoChart.render()))
                } else {
                    files.append(("-", report.markdown(charts: nil)))
                }
            }
            for file in files {
                if file.path == "-" {
                    print(file.text, terminator: "")
                    continue
                }
                let url = URL(fileURLWithPath: file.path).standardizedFileURL
                try LocalStore(directory: url.deletingLastPathComponent().path).put(url.lastPathComponent, Array(file.text.utf8))
            }
            if output != nil { TerminalOutput.shared.writeLine(report.summary.text + " (written to " + files.map(\.path).joined(separator: ", ") + ")") }
        }
    }
}
