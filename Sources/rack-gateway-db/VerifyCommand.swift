import ArgumentParser
import Foundation
import RGWPostgres
import RackGatewayDB

struct VerifyCommand: ToolCommand {
    var outputOptions: OutputOptions { output }

    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Check an archive offline: trailer, manifest, every member's CRC32 and size, row counts, fingerprints, the .sha256 sidecar.",
        discussion: "No database needed. Exits 2 on any mismatch or corruption, naming the member, its offset and its table.")

    @Argument(help: "The archive file, or s3://bucket/prefix/name.")
    var archive: String

    @OptionGroup var s3: S3Options
    @OptionGroup var keyOptions: ReadKeyOptions
    @OptionGroup var output: OutputOptions
    var json: Bool { output.json }

    func run(_ context: RunContext) throws {
        do {
            let location = try s3.location(of: archive, keys: try keyOptions.keys(), clock: context.clock)
            let report = try ArchiveVerifier().verify(reader: try location.reader(), logger: context.logger)
            try? VerificationLog.record(report, store: location.store, at: context.clock.now())
            if json {
                try Reporting.printJSON(report)
            } else if report.ok {
                print("OK \(report.file): \(report.members) members, \(report.tables) tables, \(report.rows) rows, sha256 \(report.sha256) (sidecar \(report.sidecar)), \(String(format: "%.1f", report.durationSeconds)) s")
            } else {
                for problem in report.problems { Reporting.printError(problem) }
            }
            if !report.ok {
                throw ToolError(.mismatch, "\(report.file) failed verification (\(report.problems.count) problem\(report.problems.count == 1 ? "" : "s")); do not restore it")
            }
        }
    }
}
