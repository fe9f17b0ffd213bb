import ArgumentParser
import Foundation
import RackGatewayDB

struct CopyCommand: ToolCommand {
    var outputOptions: OutputOptions { output }

    static let configuration = CommandConfiguration(
        commandName: "copy",
        abstract: "Copy archives with their sidecars to a second directory or S3 prefix, and verify each copy there.",
        discussion: """
            Streams each archive (constant memory; a multipart upload on S3, a .partial file renamed locally), \
            refuses a source whose bytes do not match its .sha256, then reads the copy back: its SHA-256, its \
            trailer and manifest (an encrypted archive's only with --identity), its signature (with --verify-key). \
            A copy that does not verify is deleted. An archive already at the destination with the same SHA-256 \
            is skipped, so a copy that was cut resumes. A local --to must exist (it is never made: a disk that \
            is not mounted is no destination). Each outcome is recorded in copies.jsonl at the \
            destination (and at the source when it accepts writes). Exits 1 when --from holds no archive, or \
            --identity opens none of the encrypted archives copied (the copies are kept), 2 when a source archive \
            is damaged (marked VERIFY-FAILED there), 3 when another copy to the same destination is running, 4 \
            (copy_failed) when a copy could not be made or did not verify, or --to cannot be used (no such bucket, \
            no write access). A file at --to that does not match the source's SHA-256 is copied over when it is \
            damaged (it does not match its own .sha256) or has no .sha256, and left alone (a failed copy) when it \
            is another intact archive of the same name; a copy that verify marked VERIFY-FAILED there is always \
            read again.
            """)

    @Option(help: ArgumentHelp("Where the archives are: a directory or s3://bucket/prefix (default: $RGW_BACKUP_DIR).", valueName: "dir"))
    var from: String?

    @Option(help: ArgumentHelp("Where the copies go: a directory or s3://bucket/prefix.", valueName: "dir"))
    var to: String

    @Argument(help: ArgumentHelp("Archives to copy, by name as list prints them (default: every archive at --from).", valueName: "archive"))
    var archives: [String] = []

    @Flag(help: "Copy only the newest archive.")
    var latest = false

    @Flag(help: "Copy nothing: stop tracking --to in --from's copies.jsonl (list, report and check there no longer name it) until a later copy to it.")
    var forget = false

    @Option(help: ArgumentHelp("Copy only the archives of the last DURATION (by the time in their names), e.g. 7d, 12h.", valueName: "duration"))
    var since: String?

    @OptionGroup var upload: S3UploadFlags
    @OptionGroup var keyOptions: ReadKeyOptions
    @OptionGroup var s3: S3Options
    @OptionGroup var output: OutputOptions

    func validate() throws {
        let selections = [!archives.isEmpty, latest, since != nil].filter { $0 }.count
        if selections > 1 { throw ValidationError("give archive names, --latest or --since, not more than one of them") }
        if forget && (selections > 0 || upload.given) {
            throw ValidationError("--forget copies nothing: archive names, --latest, --since, --object-lock-days and --sse do not apply to it")
        }
        if let since { _ = try MaintCommand.duration(since, "--since") }
        for name in archives where !DirectoryOptions.isBareName(name) || name.hasPrefix("s3://") {
            throw ValidationError("\(name): give archives by name as list prints them (they are looked for in --from)")
        }
    }

    func run(_ context: RunContext) throws {
        guard let from = optionOrEnvironment(from, "RGW_BACKUP_DIR") else {
            throw ToolError(.usage, "copy needs --from (or RGW_BACKUP_DIR): the directory or s3://bucket/prefix the archives are in")
        }
        let destinationLocation = try StoreLocation.parse(to)
        var isS3 = false
        if case .s3 = destinationLocation { isS3 = true }
        try upload.checkApplies(writesToS3: isS3, where: "--to")
        let source = try s3.store(from, clock: context.clock, mustExist: true)
        let destination = try s3.store(to, upload: upload.upload, clock: context.clock)
        if source.location == destination.location {
            throw ToolError(.usage, "--from and --to are the same place (\(source.location)): a copy goes somewhere else")
        }
        if forget {
            try Self.forget(destination, source: source, json: output.json, context: context)
            return
        }
        let available = try ArchiveCopier.archives(in: source)
        if available.isEmpty {
            // A typo in --from (nighty for nightly) would otherwise copy nothing and succeed forever.
            throw ToolError(.archiveNotFound, "\(source.location) holds no archives: nothing to copy",
                            fix: ArchiveDirectory.hint(beside: ArchiveDirectory.nearby(source)) + "Check --from (or RGW_BACKUP_DIR).")
        }
        var names: [String]
        if !archives.isEmpty {
            let known = Set(available.map(\.name))
            for name in archives where !known.contains(name) {
                throw ArchiveLocation.notFound(name, in: [.init(store: source, label: source.location)],
                                               fix: "Give names as rack-gateway-db list --dir \(source.location) prints them.")
            }
            names = archives
        } else if latest {
            names = available.last.map { [$0.name] } ?? []
        } else if let since {
            let from = context.clock.now().addingTimeInterval(-(try MaintCommand.duration(since, "--since")))
            names = available.filter { $0.time >= from }.map(\.name)
        } else {
            names = available.map(\.name)
        }
        if names.isEmpty && !output.json {
            // Not an error (a --since window without a backup is for check --max-backup-age to flag).
            context.output.writeLine("rack-gateway-db: \(source.location) holds no archive" + (since.map { " of the last \($0)" } ?? "") + ": nothing to copy")
        }
        let copier = ArchiveCopier(from: source, to: destination, keys: try keyOptions.keys(), context: context)
        let progress = copier.progress
        let display = ProgressDisplay(logger: context.logger) { progress.line() }
        let report: ArchiveCopier.Report
        do {
            report = try copier.copy(names) { result in
                guard !output.json else { return }
                TerminalOutput.shared.withBarHidden { print(Self.line(result)) }
            }
            display.stop()
        } catch {
            display.stop()
            throw error
        }
        if output.json {
            try Reporting.printJSON(report)
        } else {
            print(Self.summary(report))
        }
        let damaged = report.archives.filter { $0.outcome == .failed && $0.code == .archiveCorrupt }.map(\.file)
        let fix = damaged.isEmpty ? "Fix what each line says, then run the same copy again: the archives already there are skipped."
            // Copying again cannot mend a damaged source: it is marked VERIFY-FAILED there.
            : "A damaged source archive is not copied again (list --dir \(source.location) marks it VERIFY-FAILED): "
                + damaged.map { "rack-gateway-db verify --dir \(source.location) \($0)" }.joined(separator: "; ")
                + " says what is wrong; restore from an older archive (or another copy of it) if you need its data. "
                + "The other archives are copied by the same command (the damaged ones fail again)."
        if let failure = Self.failure(report.archives, destination: destination.location, fix: fix) {
            throw failure
        }
        let unopened = report.archives.filter { $0.identityMismatch == true }.map(\.file)
        if !unopened.isEmpty {
            let its = unopened.count == 1 ? "its" : "their"
            throw ToolError(.identityMismatch, "no --identity given opens \(unopened.joined(separator: ", ")): copied and \(its) SHA-256 verified at \(destination.location), "
                            + "but \(its) trailer and manifest were not checked",
                            fix: "Check them there with the identity file of one of their recipients: "
                                + unopened.map { "rack-gateway-db verify --dir \(destination.location) \($0) --identity FILE" }.joined(separator: "; ")
                                + " (or copy without --identity: the trailer and manifest of an encrypted archive are then not checked).")
        }
    }

    /// `--forget`: a line in the source's copies.jsonl that retires `destination` there (nothing is
    /// read or written at the destination, which may be gone). Refused when the source never
    /// recorded a copy to it (a typo would retire nothing and say nothing).
    static func forget(_ destination: ArchiveStore, source: ArchiveStore, json: Bool, context: RunContext) throws {
        let tracked = ArchiveCopy.Index(store: source).destinations
        let wanted = ArchiveCopy.normalized(destination.location)
        guard let name = tracked.first(where: { ArchiveCopy.normalized($0) == wanted }) else {
            throw ToolError(.usage, "\(source.location)/\(CopyLog.fileName) records no copy to \(destination.location): nothing to forget",
                            fix: tracked.isEmpty ? "It records no copies at all; check --from." : "The destinations it records: \(tracked.joined(separator: ", ")).")
        }
        try CopyLog.append(CopyLog.forget(destination: name, source: source.location, at: context.clock.now()), store: source)
        if json {
            try Reporting.printJSON(["source": source.location, "forgotten": name])
        } else {
            print("Forgot \(name) in \(source.location)/\(CopyLog.fileName): list, report and check there no longer name it, until a later copy to it.")
        }
    }

    /// The location `text` (a `--to` or `--copy-to`) names, as its store names itself.
    static func locationName(_ text: String) throws -> String {
        switch try StoreLocation.parse(text) {
        case .local(let path): return URL(fileURLWithPath: path).standardizedFileURL.path
        case .s3(let bucket, let prefix): return "s3://\(bucket)" + (prefix.isEmpty ? "" : "/\(prefix)")
        }
    }

    /// One archive's line: `copied   NAME  12.3 MiB in 1.2 s; checked sha256, trailer, manifest`.
    static func line(_ result: ArchiveCopier.Result) -> String {
        let size = ProgressDisplay.bytes(result.sizeBytes)
        let notChecked = result.notChecked.isEmpty ? "" : "; not checked: " + result.notChecked.joined(separator: ", ")
        switch result.outcome {
        case .copied:
            return (result.replaced ? "replaced " : "copied   ") + "\(result.file)  \(size) in \(String(format: "%.1f", result.durationSeconds)) s; "
                + (result.replaced ? Self.replacedReason(result.replacedBecause) + "; " : "")
                + "checked \(result.checks.joined(separator: ", "))\(notChecked)"
        case .skipped:
            return "skipped  \(result.file)  \(size): already there, " + (result.trusted ? "as copies.jsonl recorded it (unchanged since)" : "the same SHA-256 (read again)")
        case .failed, .forgotten:
            return "FAILED   \(result.file)  \(size): \(result.problems.joined(separator: "; "))"
        }
    }

    /// Why a file at the destination was copied over (`ArchiveCopier.Result.replacedBecause`).
    static func replacedReason(_ reason: String?) -> String {
        switch reason {
        case "no-sidecar": return "the file there had no .sha256 (a copy cut before its sidecars)"
        case "verify-failed": return "the copy there was damaged (verify had marked it VERIFY-FAILED; its SHA-256 is not its .sha256's)"
        default: return "the copy there was damaged (its SHA-256 is not its .sha256's)"
        }
    }

    static func summary(_ report: ArchiveCopier.Report) -> String {
        "Copied \(Plural.of(report.copied, "archive")) (\(ProgressDisplay.bytes(report.bytesCopied))) from \(report.source) to \(report.destination) "
            + "in \(String(format: "%.1f", report.durationSeconds)) s; skipped \(report.skipped), failed \(report.failed)."
    }

    /// The error a run with failed copies ends with: `archive_corrupt` or `signature_invalid` (exit
    /// 2) when a source archive is damaged or badly signed, else `copy_failed` (exit 4).
    static func failure(_ results: [ArchiveCopier.Result], destination: String, fix: String) -> ToolError? {
        let failed = results.filter { $0.outcome == .failed }
        guard !failed.isEmpty else { return nil }
        let code = failed.compactMap(\.code).first { $0.category == .mismatch } ?? .copyFailed
        let details = failed.map { "\($0.file): \($0.problems.joined(separator: "; "))" }.joined(separator: "\n  ")
        return ToolError(code, "\(Plural.of(failed.count, "archive")) of \(results.count) not copied to \(destination):\n  \(details)", fix: fix)
    }
}
