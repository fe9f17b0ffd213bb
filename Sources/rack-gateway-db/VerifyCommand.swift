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

            With --sample PERCENT, every archive in --dir is re-read in part by ranged reads: its trailer, \
            manifest and schema members, and data chunks making up PERCENT of its data bytes, each checked \
            (CRC32, size, COPY framing; rows and fingerprint of a table whose every chunk was read). The \
            chunks read least recently (verifications.jsonl) come first, at random among equals (--seed N \
            repeats a choice only given the same verifications.jsonl: each run's reads change what comes \
            first), so that runs of --sample P cover every archive in ceil(100/P) runs; list shows when \
            each was last re-read and how much of it since it last changed. A sample that passes is not a \
            verification (list's "verified"); one that fails marks the archive VERIFY-FAILED and exits 2, \
            and so does every later sample of it (its damaged chunks re-read first) until the file changes \
            or a full verify of it passes. \
            An encrypted archive needs --identity: without it its data is not checked and the run exits 64 \
            (2 when an archive failed).

            --metrics-file and --pushgateway report a sample run as verify_sample (its archives failed, \
            standing VERIFY-FAILED ones included, checked and not checked, bytes read; a run that found \
            damage is a failure, for the alert RackGatewayArchiveVerifyFailed) and a verify of one \
            archive as verify; --notify and --webhook say how the run ended, as for backup.
            """)

    @Argument(help: "The archive: a path, s3://bucket/prefix/name, or a name as list prints it (the file in the current directory, else the archive in --dir).")
    var archive: String?

    @Flag(help: "Verify the newest archive in --dir (else RGW_BACKUP_DIR, else ./backups).")
    var latest = false

    // Unconditional: `--sample -5` is its value (refused for its range below), not a missing one.
    @Option(parsing: .unconditional, help: ArgumentHelp("Re-read this share of every archive in --dir (over 0, at most 100): its trailer, manifest and schema members and that much of its data chunks, least recently read first.", valueName: "percent"))
    var sample: String?

    @Option(help: ArgumentHelp("With --sample: the seed of the choice of chunks, which repeats it given the same verifications.jsonl (each run's reads change what comes first; default: a random seed per run, recorded in verifications.jsonl).", valueName: "n"))
    var seed: UInt64?

    @OptionGroup var directoryOptions: DirectoryOptions
    @OptionGroup var keyOptions: ReadKeyOptions
    @OptionGroup var output: OutputOptions
    @OptionGroup var metrics: MetricsOptions
    @OptionGroup var notifications: NotificationOptions
    var notificationOptions: NotificationOptions? { notifications }
    var json: Bool { output.json }

    /// The options that do not go together, refused (exit 64) in the run, so that they read as every
    /// other usage error of a run (`rack-gateway-db: error:` and the fix), not as the parser's `Error:`.
    func checkOptions() throws {
        let help = "verify's options: rack-gateway-db help verify"
        if seed != nil && sample == nil {
            throw ToolError(.usage, "--seed makes --sample's choice repeatable; without --sample it does not apply", fix: "Give --sample PERCENT with --seed, or leave --seed out. \(help)")
        }
        if let sample {
            guard SampleVerifier.parsePercent(sample) != nil else {
                throw ToolError(.usage, "--sample \(sample) is not a percentage over 0 and at most 100", fix: "Give one, e.g. --sample 5 (or 5%). \(help)")
            }
            if archive != nil || latest {
                throw ToolError(.usage, "--sample re-reads every archive in --dir (else RGW_BACKUP_DIR, else ./backups); an archive or --latest does not apply with it",
                                fix: "Give no archive and no --latest with --sample (verify ARCHIVE reads all of one archive). \(help)")
            }
            if keyOptions.verifyKey != nil {
                throw ToolError(.usage, "--verify-key does not apply to --sample: a signature covers the whole file, which a sample does not read",
                                fix: "Leave --verify-key out of --sample (verify ARCHIVE --verify-key checks the signature). \(help)")
            }
            return
        }
        if latest == (archive != nil) {
            throw ToolError(.usage, "give an archive or --latest (one of them), or --sample PERCENT", fix: "Run verify ARCHIVE, verify --latest or verify --sample PERCENT. \(help)")
        }
        do {
            try directoryOptions.checkApplies(archive: archive, latest: latest)
        } catch let error as ValidationError {
            throw ToolError(.usage, error.message, fix: "Give --dir with --latest or a bare archive name, or leave it out. \(help)")
        }
    }

    func run(_ context: RunContext) throws {
        try checkOptions()
        if let sample, let percent = SampleVerifier.parsePercent(sample) {
            // A sample run is its own command in the metrics (rgw_verify_sample_*): the nightly
            // sample and a verify by hand of one archive do not overwrite each other's series.
            try metrics.start("verify_sample", labels: ["dir": directoryOptions.metricsLabel], context: context)
            return try runSample(context, percent: percent)
        }
        do {
            try metrics.start("verify", labels: ["dir": directoryOptions.metricsLabel], context: context)
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
                // The archive's own directory (a path or s3:// location need not be in --dir).
                if let slash = location.path.lastIndex(of: "/") { MetricsRecorder.label("dir", String(location.path[..<slash])) }
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
            MetricsRecorder.record([
                .init("rgw_verify_problems", "Problems the last verify found in its archive (0: it verified).", Double(report.problems.count)),
                .init("rgw_verify_archive_bytes", "Size of the archive the last verify read whole.", Double(report.fileSize)),
            ])
            Notifications.keep(report, summary: report.ok ? "\(report.file) verified" : "\(report.file) failed verification (\(Plural.of(report.problems.count, "problem")))")
            if json {
                try Reporting.printJSON(report)
            } else if report.ok {
                print("OK \(report.file): \(Plural.of(report.members, "member")), \(Plural.of(report.tables, "table")), \(Plural.of(report.rows, "row")), sha256 \(report.sha256) (sidecar \(report.sidecar))\(report.signatureChecked == true ? ", signature checked (--verify-key)" : ""), \(String(format: "%.1f", report.durationSeconds)) s")
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

    /// What `--sample --json` prints: each archive's sample, those not checked, and the totals.
    struct SampleRun: Encodable {
        struct Unchecked: Encodable {
            var file: String
            var reason: String
        }
        var directory: String
        var percent: Double
        var seed: UInt64
        var archives: [SampleVerifier.Report]
        var notChecked: [Unchecked]
        var ok: Int
        var failed: Int
        var bytesRead: Int
        var archiveBytes: Int
        var durationSeconds: Double
    }

    /// `--sample`: every archive in the directory, by ranged reads, one line each.
    func runSample(_ context: RunContext, percent: Double) throws {
        let stopwatch = Stopwatch()
        var keys = try keyOptions.keys()
        // A signature covers the whole file: a sample does not read it (RGW_VERIFY_KEY is for full reads).
        keys.verifyKey = nil
        let directory = try directoryOptions.archiveDirectory(keys: keys, clock: context.clock)
        let store = directory.store
        let sampler = SampleVerifier(percent: percent, seed: seed)
        let lines = VerificationLog.lines(store: store)
        let verdicts = VerificationLog.verdicts(lines)
        let objects = try store.list().filter { ArchiveName.timestamp(of: $0.name) != nil && !ArchiveName.isSafetyBackup($0.name) }
            .sorted { (ArchiveName.timestamp(of: $0.name)!, $0.name) > (ArchiveName.timestamp(of: $1.name)!, $1.name) }
        guard !objects.isEmpty else { throw directory.emptyError() }
        var run = SampleRun(directory: directory.directory, percent: percent, seed: sampler.seed, archives: [], notChecked: [], ok: 0, failed: 0,
                            bytesRead: 0, archiveBytes: 0, durationSeconds: 0)
        var unchecked: [ToolError] = []
        var failures: [String] = []
        for object in objects {
            try context.checkStopped()
            let location = ArchiveLocation(store: store, name: object.name, keys: keys)
            let reader: ArchiveReader
            do {
                reader = try location.reader()
            } catch let error as ToolError where [.archiveCorrupt, .mismatch, .formatUnsupported].contains(error.code) {
                // It is there but does not open as an archive: a failed verification, for `list` too.
                try? VerificationLog.recordUnreadable(object.name, store: store, at: context.clock.now())
                failures.append(object.name)
                run.failed += 1
                if !json { Reporting.printError("FAILED \(location.path): \(error.message)") }
                continue
            } catch let error as ToolError where [.usage, .identityMismatch].contains(error.code) {
                // An encrypted archive without its identity: its data cannot be read here.
                unchecked.append(error)
                run.notChecked.append(.init(file: location.path, reason: error.message))
                if !json { print("NOT CHECKED \(object.name): \(error.message)") }
                continue
            } catch let error as ToolError where error.code == .archiveNotFound {
                context.logger.warning("an archive went away while sampling (prune?)", metadata: ["archive": "\(object.name)"])
                continue
            }
            // An archive whose last verdict failed at this version stays failed until the file changes
            // or a full verify passes: the members failed samples of this version found damaged are
            // re-read first, to say whether the damage is still there.
            let standing = VerificationLog.standingFailure(verdicts, file: object.name, size: object.size, version: object.version)
            let damaged = standing == nil || object.version == nil ? [] : lines.filter { $0.file == object.name && $0.version == object.version && $0.isSample && !$0.ok }
                .reduce(into: Set<Int>()) { $0.formUnion(MemberSet.parse($1.failedMembers ?? "")) }
            var report = try sampler.sample(reader, version: object.version, lines: lines, first: damaged,
                                            logger: context.logger, checkStopped: context.checkStopped)
            try? VerificationLog.recordSample(report, version: object.version, store: store, at: context.clock.now())
            if let standing { (report.verificationFailedAt, report.verificationProblems) = (standing.verifiedAt, standing.problems ?? []) }
            run.archives.append(report)
            run.bytesRead += report.bytesRead
            run.archiveBytes += report.fileSize
            if let standing, report.ok {
                run.failed += 1
                failures.append(object.name)
                Reporting.printError("\(report.file): \(Self.stillFailed(standing, report: report))")
            } else if report.ok {
                run.ok += 1
                if !json {
                    print("OK \(object.name): \(report.dataMembersRead) of \(Plural.of(report.dataMembers, "data chunk")) (\(ProgressDisplay.bytes(report.dataBytesRead)) of \(ProgressDisplay.bytes(report.dataBytes))), "
                          + "\(Plural.of(report.tablesChecked, "whole table")); \(Self.percentText(report.coveredPercent)) re-read since it last changed")
                }
            } else {
                run.failed += 1
                failures.append(object.name)
                for problem in report.problems { Reporting.printError("\(report.file): \(problem)") }
                // The problems are said just above: the standing verdict adds when, not what again.
                if let standing { Reporting.printError("\(report.file): \(Self.stillFailed(standing, report: report, saysProblem: false))") }
            }
        }
        run.durationSeconds = stopwatch.elapsed
        MetricsRecorder.record([
            .init("rgw_verify_sample_failed_archives", "Archives the last verify --sample found damaged or unreadable, or still VERIFY-FAILED from an earlier verdict.", Double(run.failed)),
            .init("rgw_verify_sample_checked_archives", "Archives the last verify --sample read its share of (sound or failed).", Double(run.ok + run.failed)),
            .init("rgw_verify_sample_unchecked_archives", "Archives the last verify --sample could not read (encrypted, no --identity).", Double(run.notChecked.count)),
            .init("rgw_verify_sample_bytes_read", "Bytes the last verify --sample read (ranged reads).", Double(run.bytesRead)),
            .init("rgw_verify_sample_archive_bytes", "Total size of the archives in the directory the last verify --sample read from.", Double(run.archiveBytes)),
        ])
        Notifications.keep(run, summary: "sampled \(Plural.of(objects.count, "archive")) at \(Self.percentText(percent)): \(run.ok) ok, \(run.failed) failed, \(run.notChecked.count) not checked")
        if json {
            try Reporting.printJSON(run)
        } else {
            print("Sampled \(Plural.of(objects.count, "archive")) at \(Self.percentText(percent)) (seed \(sampler.seed)): \(run.ok) ok, \(run.failed) failed, \(run.notChecked.count) not checked; "
                  + "read \(ProgressDisplay.bytes(run.bytesRead)) of \(ProgressDisplay.bytes(run.archiveBytes)) in \(String(format: "%.1f", run.durationSeconds)) s")
        }
        if !failures.isEmpty {
            let stillFailed = run.archives.contains { $0.verificationFailedAt != nil }
            // Each archive's problem was said once, in full, above: the summary names the archives.
            let names = failures.prefix(5).joined(separator: ", ") + (failures.count > 5 ? ", ..." : "")
            // A copy made here by `copy` (copies.jsonl here names its source) is replaced from its source.
            let copied = CopyLog.entries(store: store).filter { $0.isGood && $0.outcome != .forgotten && failures.contains($0.file) }
            let sources = Dictionary(copied.map { ($0.file, $0.source) }) { _, last in last }
            let repairs = failures.compactMap { name in sources[name].map { "rack-gateway-db copy --from \($0) --to \(directory.directory) \(name)" } }
            throw ToolError(.archiveCorrupt, "\(Plural.of(failures.count, "archive")) in \(directory.directory) failed the sample\(stillFailed ? " or \(failures.count == 1 ? "is" : "are") still VERIFY-FAILED" : "") (the problems are above): \(names)",
                            fix: "Do not restore \(failures.count == 1 ? "it" : "them"): list marks \(failures.count == 1 ? "it" : "them") VERIFY-FAILED until the file changes or a full verify of it passes. "
                                + "Run verify on \(failures.count == 1 ? "it" : "each") for every problem"
                                + (repairs.isEmpty ? ", and restore an archive that verifies."
                                   : (repairs.count == failures.count ? "" : "; restore an archive that verifies in place of the others")
                                   + "; replace \(repairs.count == failures.count ? (failures.count == 1 ? "it" : "them") : "the copies") from the archive copied here (copy verifies it there first): \(repairs.joined(separator: "; "))"))
        }
        if let first = unchecked.first {
            throw ToolError(first.code, "\(Plural.of(unchecked.count, "encrypted archive")) in \(directory.directory) could not be sampled: \(first.message)",
                            fix: first.fix ?? "Give --identity FILE (or RGW_AGE_IDENTITY_FILE) with the age secret key of their recipients.")
        }
    }

    /// Why an archive is still VERIFY-FAILED: when its failed verdict ran, what it found, and what
    /// this run's sample of it found.
    static func stillFailed(_ standing: VerificationLog.Entry, report: SampleVerifier.Report, saysProblem: Bool = true) -> String {
        let found = saysProblem ? (standing.problems ?? []).first.map { " found \($0)" } ?? " failed" : " failed"
        let count = MemberSet.parse(report.reReadFirst).count
        let members = "member\(count == 1 ? "" : "s") \(report.reReadFirst)"
        let now = !report.ok
            ? (count == 0 ? "this sample found damage again" : "this run re-read \(members) first and found damage again")
            : count == 0
            ? "this sample (\(report.dataMembersRead) of \(Plural.of(report.dataMembers, "data chunk"))) found nothing more"
            : "this run re-read \(members) and found \(count == 1 ? "it" : "them") sound (a passing re-read of part of it does not clear the mark)"
        return "still VERIFY-FAILED: \(standing.isSample ? "verify --sample" : "verify") on \(EvidenceReport.display(standing.verifiedAt))\(found); \(now)"
    }

    /// `5%`, `12.5%`.
    static func percentText(_ value: Double) -> String {
        value == value.rounded() ? "\(Int(value))%" : String(format: "%.1f%%", value)
    }
}
