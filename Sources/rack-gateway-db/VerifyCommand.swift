import ArgumentParser
import Foundation
import RGWPostgres
import RackGatewayDB

struct VerifyCommand: ToolCommand {
    var outputOptions: OutputOptions { output }

    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Check an archive offline: trailer, manifest, every member's CRC32 and size, row counts, fingerprints, the .sha256 sidecar.",
        discussion: """
            No database needed. Exits 2 on any mismatch or corruption, naming the member, its offset and its table. \
            With --latest, the newest archive in --dir is verified, whatever state it is in: when it is corrupt the \
            run exits 2 (no older archive is verified in its place).
            """)

    @Argument(help: "The archive: a path, s3://bucket/prefix/name, or a name as list prints it (the file in the current directory, else the archive in --dir).")
    var archive: String?

    @Flag(help: "Verify the newest archive in --dir (else RGW_BACKUP_DIR, else ./backups).")
    var latest = false

    @OptionGroup var directoryOptions: DirectoryOptions
    @OptionGroup var keyOptions: ReadKeyOptions
    @OptionGroup var output: OutputOptions
    var json: Bool { output.json }

    func validate() throws {
        if latest == (archive != nil) { throw ValidationError("give an archive or --latest (one of them)") }
        try directoryOptions.checkApplies(archive: archive, latest: latest)
    }

    func run(_ context: RunContext) throws {
        do {
            let keys = try keyOptions.keys()
            let location: ArchiveLocation
            if latest {
                // The newest is the news: verified as it is, and a corrupt one fails the run.
                let directory = try directoryOptions.archiveDirectory(keys: keys, clock: context.clock)
                guard let newest = try directory.newestName() else { throw directory.emptyError() }
                location = ArchiveLocation(store: directory.store, name: newest, keys: keys)
                context.logger.info("--latest chose the newest archive", metadata: ["archive": "\(location.path)"])
            } else {
                location = try directoryOptions.location(of: archive ?? "", keys: keys, clock: context.clock)
            }
            let reader: ArchiveReader
            do {
                reader = try location.reader()
            } catch let error as ToolError where [.archiveCorrupt, .mismatch, .formatUnsupported].contains(error.code) {
                // It is there but does not open as an archive: a failed verification, for `list` too.
                try? VerificationLog.recordUnreadable(location.name, store: location.store, at: context.clock.now())
                throw error
            }
            let report = try ArchiveVerifier().verify(reader: reader, logger: context.logger)
            try? VerificationLog.record(report, store: location.store, at: context.clock.now())
            if json {
                try Reporting.printJSON(report)
            } else if report.ok {
                print("OK \(report.file): \(Plural.of(report.members, "member")), \(Plural.of(report.tables, "table")), \(Plural.of(report.rows, "row")), sha256 \(report.sha256) (sidecar \(report.sidecar)), \(String(format: "%.1f", report.durationSeconds)) s")
            } else {
                for problem in report.problems { Reporting.printError(problem) }
            }
            if !report.ok {
                // The archive itself does not read as it was written: corrupt (exit 2, as for restore).
                throw ToolError(.archiveCorrupt, "\(report.file)\(latest ? ", the newest archive," : "") failed verification (\(Plural.of(report.problems.count, "problem")))",
                                fix: "Do not restore it: restore an older archive that verifies (list marks this one VERIFY-FAILED), and find out what damaged it.")
            }
        }
    }
}
