import Foundation

/// Copies archives with their sidecars from one store to another (`copy`, `backup --copy-to`), and
/// calls a copy copied only once it verified at the destination.
///
/// For each archive: the destination is looked at first. A copy there that `copies.jsonl` recorded
/// as good and whose `ArchiveStore.version` is still the one recorded is trusted unread, unless a
/// verification there failed at that version (`VerificationLog.standingFailure`: bit rot changes no
/// metadata); any other copy there is read and its SHA-256 compared with the source's `.sha256`
/// sidecar: the same, it is skipped; different, it is copied again over it (`replaced`) when it is
/// damaged (it does not match its own `.sha256`) or has no `.sha256` (what a copy cut between the
/// archive and its sidecars leaves), and left alone, a failed copy, when it matches its own
/// `.sha256`: another intact archive of the same name (two sources feeding one prefix). A copy streams the
/// source (`StoreReader.stream`) into the destination's writer (`ArchiveStore.create`: a multipart
/// upload on S3, a `.partial` file renamed locally), hashing the bytes as they pass: a source that
/// does not match its sidecar is refused (`archive_corrupt`) and its writer discarded, so nothing
/// of it is left at the destination. A published copy is read back: its SHA-256 against the
/// sidecar, its trailer and manifest (`ArchiveReader`) when it can be read (plain, or encrypted
/// and an identity given), its minisign signature when there is a `.minisig` and a key to check
/// it. A copy that fails is deleted. The sidecars follow byte for byte, and each outcome is
/// appended to `copies.jsonl` at the destination and, when it accepts writes, at the source.
///
/// Memory stays flat whatever the archive's size: the stream's pieces and the writer's parts (two
/// S3 parts at most) are all that is held. Two runs copying to one destination exclude each other
/// with the destination's lease (`.copy.lock`).
public struct ArchiveCopier {
    /// What became of one archive.
    public struct Result: Codable, Sendable {
        public var file: String
        public var destination: String
        public var outcome: CopyLog.Outcome
        /// Copied over a copy at the destination whose SHA-256 was not the source's (damaged there).
        public var replaced = false
        /// Why the file at the destination was replaced: `damaged` (it did not match its own
        /// `.sha256`), `verify-failed` (the same, and a verification there had marked it
        /// VERIFY-FAILED) or `no-sidecar` (no `.sha256` beside it); nil when nothing was replaced.
        public var replacedBecause: String?
        /// The SHA-256 of another intact archive of the same name at the destination (it matches
        /// its own `.sha256`, not the source's), left there: the copy failed (nil otherwise).
        public var anotherArchive: String?
        /// Skipped on the strength of the destination's `copies.jsonl` (its version unchanged), unread.
        public var trusted = false
        public var sizeBytes: Int
        /// The source's `.sha256` (nil when it has none).
        public var sha256: String?
        /// Bytes read from the source and written to the destination (0 for a skip).
        public var bytesCopied = 0
        public var durationSeconds: Double
        /// What was checked at the destination: `sha256`, `trailer`, `manifest`, `signature`.
        public var checks: [String] = []
        /// What could not be checked, and why (e.g. `manifest: encrypted, no --identity`).
        public var notChecked: [String] = []
        /// The Object Lock retention date at the destination, ISO 8601 UTC.
        public var retainUntil: String?
        /// What went wrong (outcome `failed`), and its code.
        public var problems: [String] = []
        public var code: ToolError.Code?
        /// An encrypted copy kept (its SHA-256 verified) whose trailer and manifest were not checked
        /// because no identity given opens it: the run ends with `identity_mismatch` (nil otherwise).
        public var identityMismatch: Bool?

        /// `file` not copied to `destination` because of `error` (a lease held, a store that cannot be listed).
        public static func failed(_ file: String, destination: String, error: Error) -> Result {
            let tool = ToolError(reporting: error)
            return Result(file: file, destination: destination, outcome: .failed, sizeBytes: 0, durationSeconds: 0,
                          problems: [tool.message], code: tool.code == .failed ? .copyFailed : tool.code)
        }
    }

    /// The results of one run, in the order the archives were taken.
    public struct Report: Codable, Sendable {
        public var source: String
        public var destination: String
        public var archives: [Result]
        public var copied: Int
        public var skipped: Int
        public var failed: Int
        public var bytesCopied: Int
        public var durationSeconds: Double
    }

    public let source: ArchiveStore
    public let destination: ArchiveStore
    /// The identities that open an encrypted archive's manifest (none: those checks are not done)
    /// and the key its signature is checked with (none: a `.minisig` is copied unchecked).
    public var keys: ArchiveKeys
    public let context: RunContext
    /// What the progress bar shows.
    public let progress = CopyProgress()
    /// The option that named the destination, for the fixes of a destination that cannot be used
    /// (`--to` for `copy`, `--copy-to` for `backup`).
    public var destinationOption = "--to"
    /// Warnings (a source that refuses writes to its log), once each.
    private let warned = LockedList<String>()

    public init(from source: ArchiveStore, to destination: ArchiveStore, keys: ArchiveKeys = ArchiveKeys(), context: RunContext) {
        self.source = source
        self.destination = destination
        self.keys = keys
        self.context = context
    }

    /// The name of the archive at `location` (a path or an s3:// URL).
    public static func name(of location: String) -> String { location.split(separator: "/").last.map(String.init) ?? location }

    /// The lease two runs copying into one destination take.
    public static let leaseName = ".copy.lock"

    /// The archives `source` holds, published ones only (never `.partial`, never a safety backup),
    /// oldest first.
    public static func archives(in store: ArchiveStore) throws -> [(name: String, time: Date)] {
        try store.list().compactMap { entry in
            guard !ArchiveName.isSafetyBackup(entry.name), let time = ArchiveName.timestamp(of: entry.name) else { return nil }
            return (entry.name, time)
        }.sorted { $0.time != $1.time ? $0.time < $1.time : $0.name < $1.name }
    }

    /// Copy `names` in order under the destination's lease; `each` is told every result as it is
    /// known. A stop (a signal) discards the copy in flight and throws `interrupted` naming what
    /// was copied and what was not; a failure of one archive is its result, and the next one is
    /// tried.
    public func copy(_ names: [String], each: (Result) -> Void = { _ in }) throws -> Report {
        let stopwatch = Stopwatch()
        let started = context.clock.now()
        let lease: StoreLease
        do {
            try Self.checkDirectoryExists(destination)
            lease = try destination.lease(Self.leaseName, holder: "copy from \(source.location), pid \(getpid()) on \(ProcessInfo.processInfo.hostName), since \(UTCTime.iso8601(started))",
                                          at: started)
        } catch let error as ToolError where [.lockHeld, .interrupted, .copyFailed].contains(error.code) {
            if error.code == .copyFailed {
                for name in names { record(.failed(name, destination: destination.location, error: error), destination: false) }
            }
            throw error
        } catch {
            // The destination takes nothing (no such bucket, access denied, a directory that cannot
            // be written): a failed copy (exit 4, as backup --copy-to says it), and each archive's
            // failure recorded at the source, so that list, report and check there name the
            // destination, not only this run's exit status.
            let cause = ToolError(reporting: error)
            let failure = ToolError(.copyFailed, "\(destination.location) cannot be used as a copy destination: \(cause.message)",
                                    fix: "Check \(destinationOption) \(destination.location): "
                                        + (destination.localPath(Self.leaseName) == nil ? "the bucket must exist and take this user's writes" : "the directory must be writable by this user")
                                        + ", then run the copy again.", cause: cause)
            for name in names { record(.failed(name, destination: destination.location, error: failure), destination: false) }
            throw failure
        }
        defer { lease.release() }
        let recorded = CopyLog.latest(store: destination).filter { $0.destination == destination.location }
        let verdicts = VerificationLog.load(store: destination)
        progress.start(total: names.count)
        var results: [Result] = []
        for (index, name) in names.enumerated() {
            progress.next(index: index, file: name)
            do {
                let result = try copyOne(name, recorded: recorded, verdicts: verdicts)
                results.append(result)
                each(result)
            } catch let error as ToolError where error.code == .interrupted {
                let done = results.filter { $0.outcome != .failed }.map(\.file)
                let left = names[index...].map { $0 }
                throw ToolError(.interrupted, error.message + ": the unfinished copy of \(name) was discarded at \(destination.location); "
                                + (done.isEmpty ? "nothing was copied" : "at the destination: \(done.joined(separator: ", "))")
                                + "; not copied: \(left.joined(separator: ", "))",
                                fix: "Run the same copy again: what is at the destination is skipped, the rest copied.")
            }
        }
        return Report(source: source.location, destination: destination.location, archives: results,
                      copied: results.filter { $0.outcome == .copied }.count, skipped: results.filter { $0.outcome == .skipped }.count,
                      failed: results.filter { $0.outcome == .failed }.count,
                      bytesCopied: results.filter { $0.outcome == .copied }.map(\.bytesCopied).reduce(0, +),
                      durationSeconds: stopwatch.elapsed)
    }

    /// A local destination must be there already: `copy` never makes it, so that a disk that is not
    /// mounted (its mount point empty, or gone) does not get the "off-site" copy on the root disk.
    static func checkDirectoryExists(_ destination: ArchiveStore) throws {
        guard let path = destination.localPath(leaseName) else { return }
        let directory = (path as NSString).deletingLastPathComponent
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw ToolError(.copyFailed, "the destination directory \(directory) does not exist (is the disk it is on mounted?): nothing was copied there",
                            fix: "Mount the disk it is on, or create the directory (mkdir -p \(directory)), then run the copy again.")
        }
    }

    /// One archive: skipped, copied or failed (recorded in the logs either way).
    func copyOne(_ name: String, recorded: [CopyLog.Entry], verdicts: [String: VerificationLog.Entry]) throws -> Result {
        let stopwatch = Stopwatch()
        var result = Result(file: name, destination: destination.location, outcome: .failed, sizeBytes: 0, durationSeconds: 0)
        do {
            try attempt(name, recorded: recorded, verdicts: verdicts, into: &result)
        } catch let error as ToolError where error.code == .interrupted {
            throw error
        } catch {
            if context.cancellation.isCancelled { throw context.interruptedError(during: "the copy of \(name)") }
            let tool = ToolError(reporting: error)
            result.outcome = .failed
            result.bytesCopied = 0
            result.code = result.code ?? (tool.code == .failed ? .copyFailed : tool.code)
            result.problems.append(tool.message)
        }
        result.durationSeconds = stopwatch.elapsed
        // Another archive's file at the destination is that archive's copy: its entries there stay its own.
        record(result, destination: result.anotherArchive == nil)
        return result
    }

    func attempt(_ name: String, recorded: [CopyLog.Entry], verdicts: [String: VerificationLog.Entry], into result: inout Result) throws {
        let location = ArchiveLocation(store: source, name: name)
        guard let object = try source.open(name) else {
            throw ToolError(.archiveNotFound, "\(location.path) does not exist")
        }
        result.sizeBytes = object.size
        guard let expected = try location.recordedDigest() else {
            result.code = .archiveCorrupt
            throw ToolError(.archiveCorrupt, "\(location.path) has no \(ArchiveName.sidecar(of: name)) beside it: nothing says what its bytes must be, so it is not copied")
        }
        result.sha256 = expected
        let signature = try source.getSidecar(ArchiveName.signature(of: name), limit: ArchiveName.signatureLimit)
        if signature == nil, keys.verifyKey != nil {
            result.code = .signatureInvalid
            throw ToolError(.signatureInvalid, "\(location.path) is not signed (there is no \(name).minisig) and --verify-key requires a signature: not copied")
        }

        // What is at the destination already.
        if let existing = try destination.open(name) {
            let version = try destination.version(name)
            // A file a verification there found damaged at this version is never trusted unread:
            // bit rot changes neither its size nor its version.
            let verifyFailed = VerificationLog.standingFailure(verdicts, file: name, size: existing.size, version: version) != nil
            let trusted = !verifyFailed && version != nil && recorded.contains {
                $0.file == name && $0.isGood && $0.version == version && $0.sha256 == expected && $0.size == existing.size
            }
            var digest: String?
            if !trusted && existing.size == object.size { digest = try hash(existing, phase: "check", blake2b: false).sha256 }
            if trusted || digest == expected {
                try copySidecars(name)
                result.outcome = .skipped
                result.trusted = trusted
                result.checks = trusted ? [] : ["sha256"]
                result.retainUntil = try? destination.retainedUntil(name).map(UTCTime.iso8601)
                return
            }
            // Not the source's archive: damaged, or another archive of the same name? Its own
            // .sha256 says. Without one (a copy cut between the archive and its sidecars leaves
            // that), nothing says what it is meant to be: it is replaced.
            let theirs = try ArchiveLocation(store: destination, name: name).recordedDigest()
            if let theirs, theirs != expected {
                let actual = try digest ?? hash(existing, phase: "check", blake2b: false).sha256
                if actual == theirs {
                    result.anotherArchive = theirs
                    result.code = .copyFailed
                    throw ToolError(.copyFailed, "\(destination.location)/\(name) is another archive of the same name, intact (its SHA-256 \(theirs) matches its own .sha256; "
                                    + "the source's is \(expected)): it is not overwritten. Give each source its own \(destinationOption) prefix, "
                                    + "or delete that archive and its sidecars by hand if it is really unwanted, then run the copy again")
                }
            }
            result.replaced = true
            result.replacedBecause = theirs == nil ? "no-sidecar" : verifyFailed ? "verify-failed" : "damaged"
        }

        // The copy, hashed as it streams.
        let writer = try Self.writer(destination, name: name, size: object.size)
        let unfinished = context.cleanups.push("remove the unfinished copy \(destination.location)/\(name)") { writer.discard() }
        let digest: String
        do {
            let state = StreamState(writer: writer)
            let hashes = StoredDigests.Hashes(blake2b: false)
            progress.phase("copy", total: object.size)
            let cancellation = context.cancellation
            let progress = progress
            do {
                try object.stream(offset: 0, count: object.size) { bytes in
                    guard !cancellation.isCancelled else { return false }
                    hashes.update(bytes)
                    guard state.write(bytes) else { return false }
                    progress.add(bytes.count)
                    return true
                }
            } catch {
                // The reader stopped because the writer failed: the writer's error is the one.
                throw state.error ?? error
            }
            try context.checkStopped()
            if let error = state.error { throw error }
            guard state.count == object.size else {
                throw ToolError(.archiveCorrupt, "\(location.path) ended after \(state.count) of its \(object.size) bytes while it was read")
            }
            digest = hashes.finalize().sha256
            result.bytesCopied = state.count
            if digest != expected {
                result.code = .archiveCorrupt
                recordDamage(name, size: object.size, problem: "its SHA-256 is \(digest), not the \(expected) its .sha256 says (read by copy to \(destination.location))")
                throw ToolError(.archiveCorrupt, "\(location.path) does not match its .sha256 (it says \(expected), the file's SHA-256 is \(digest)): the source archive is damaged, so it is not copied and nothing of it is left at \(destination.location)")
            }
            try writer.publish()
            unfinished.dismiss()
        } catch {
            writer.discard()
            unfinished.dismiss()
            throw error
        }

        // The copy as the destination has it, read back; deleted unless it verifies.
        let unverified = context.cleanups.push("delete the unverified copy \(destination.location)/\(name)") { [destination] in try? destination.delete(name) }
        do {
            try verifyCopy(name, expected: expected, signature: signature, into: &result)
            do {
                try copySidecars(name)
            } catch {
                // An archive without its .sha256 there would read as damaged to the next verify and
                // copy: the copy is not left behind, nor the sidecars it got.
                if let stop = error as? ToolError, stop.code == .interrupted { throw stop }
                for sidecar in ArchiveName.sidecars(of: name) { try? destination.delete(sidecar) }
                let failure = ToolError(reporting: error)
                throw ToolError(.copyFailed, "its sidecars could not be written: \(failure.message)", fix: failure.fix, cause: error)
            }
            unverified.dismiss()
        } catch let error as ToolError where error.code != .interrupted && !error.message.contains("the copy is deleted") {
            unverified.run()
            // The path named in the message is gone now (or, under Object Lock, cannot be): say so.
            let left = (try? destination.open(name)) ?? nil
            let fate = left == nil ? "is deleted"
                : "could not be deleted (\((try? destination.retainedUntil(name)).flatMap { $0 }.map { "Object Lock until " + UTCTime.iso8601($0) } ?? "the destination refused it")): delete it by hand when it can be"
            throw ToolError(error.code, error.message + " (the copy at \(destination.location)/\(name) \(fate))", fix: error.fix, cause: error.cause)
        } catch {
            unverified.run()
            throw error
        }
        result.outcome = .copied
        result.retainUntil = try? destination.retainedUntil(name).map(UTCTime.iso8601)
    }

    /// The multipart part size of a copy to S3 (at most, unless the store's own is smaller): 8 MiB (two parts in memory, a copy's peak RSS
    /// under 64 MB; backup's 16 MiB parts took it to 73 MB on a 2 GB archive), larger for an archive
    /// over 70 GiB so that S3's 10,000 parts hold it.
    static let partSize = 8 << 20

    /// Where `name` (`size` bytes) is written at `destination`.
    static func writer(_ destination: ArchiveStore, name: String, size: Int) throws -> StoreWriter {
        if let path = destination.localPath(name) {
            // Under the destination's lease, a `.partial` of this archive is what a copy killed
            // (kill -9, a power cut) left: no live run can be writing it, so it does not block.
            unlink(path + ".partial")
        }
        guard var store = destination as? S3Store else { return try destination.create(name) }
        let mebibyte = 1 << 20
        store.partSize = max(min(store.partSize, partSize), (size / 9_000 + mebibyte - 1) / mebibyte * mebibyte)
        return try store.create(name)
    }

    /// The destination's copy: its SHA-256, its signature, its trailer and manifest. A problem
    /// throws (`copy_failed`, or `signature_invalid` for a signature that does not verify).
    func verifyCopy(_ name: String, expected: String, signature: [UInt8]?, into result: inout Result) throws {
        let path = "\(destination.location)/\(name)"
        guard let copy = try destination.open(name) else {
            result.code = .copyFailed
            throw ToolError(.copyFailed, "\(path) is not there after it was written")
        }
        let key = signature == nil ? nil : keys.verifyKey
        let digests = try hash(copy, phase: "verify", blake2b: key != nil)
        guard digests.sha256 == expected else {
            result.code = .copyFailed
            throw ToolError(.copyFailed, "\(path) read back has SHA-256 \(digests.sha256), not the \(expected) its source's .sha256 says: the copy is deleted")
        }
        result.checks = ["sha256"]
        if let signature {
            if let key {
                do { try ArchiveSignature.check(signature, blake2b: digests.blake2b!, name: name, path: path, key: key) } catch {
                    result.code = .signatureInvalid
                    throw error
                }
                result.checks.append("signature")
            } else {
                result.notChecked.append("signature: no --verify-key")
            }
        }
        if ArchiveName.isEncrypted(name) && keys.identities.isEmpty {
            result.notChecked += ["trailer: encrypted, no --identity", "manifest: encrypted, no --identity"]
        } else {
            do {
                // The signature was checked above, over the bytes just read.
                _ = try ArchiveReader(ArchiveLocation(store: destination, name: name, keys: ArchiveKeys(identities: keys.identities)))
            } catch let error as ToolError where error.code == .identityMismatch {
                // The copy is byte for byte the source (its SHA-256 checked above): an identity that
                // does not open it is the operator's mistake, not the copy's. Kept, and the run ends
                // with identity_mismatch.
                result.notChecked += ["trailer: no --identity given opens it", "manifest: no --identity given opens it"]
                result.identityMismatch = true
                return
            } catch {
                result.code = .copyFailed
                throw ToolError(.copyFailed, "\(path): its trailer or manifest cannot be read: \(ToolError(reporting: error).message)")
            }
            result.checks += ["trailer", "manifest"]
        }
    }

    /// The source's sidecars at the destination, byte for byte: each written where it differs or is
    /// missing, and one the source does not have (an older copy's) deleted.
    func copySidecars(_ name: String) throws {
        for sidecar in ArchiveName.sidecars(of: name) {
            let limit = sidecar.hasSuffix(".summary.json") ? ArchiveName.summaryLimit : ArchiveName.digestLimit
            let wanted = try source.getSidecar(sidecar, limit: limit)
            let there = try? destination.getSidecar(sidecar, limit: limit)
            if let wanted {
                if there != wanted { try destination.put(sidecar, wanted) }
            } else if there != nil {
                try destination.delete(sidecar)
            }
        }
    }

    /// `object`'s SHA-256 (and BLAKE2b-512) in one streaming read, shown as `phase`; stops when the
    /// run is stopped.
    func hash(_ object: StoreReader, phase: String, blake2b: Bool) throws -> StoredDigests {
        let hashes = StoredDigests.Hashes(blake2b: blake2b)
        progress.phase(phase, total: object.size)
        let cancellation = context.cancellation
        let progress = progress
        try object.stream(offset: 0, count: object.size) { bytes in
            guard !cancellation.isCancelled else { return false }
            hashes.update(bytes)
            progress.add(bytes.count)
            return true
        }
        try context.checkStopped()
        return hashes.finalize()
    }

    /// A destination that could not be opened at all (no credentials, a profile, a region lookup):
    /// `result` (a failure) recorded in `copies.jsonl` at `source`, so that list and check there
    /// name it; a source that refuses the line is a warning.
    public static func recordUnopened(_ result: Result, source: ArchiveStore, context: RunContext) {
        let entry = CopyLog.Entry(file: result.file, source: source.location, destination: result.destination, outcome: .failed,
                                  sha256: result.sha256 ?? "", size: result.sizeBytes, copiedAt: context.clock.now(), checks: [],
                                  version: nil, retainUntil: nil, problems: result.problems.isEmpty ? nil : result.problems)
        do { try CopyLog.append(entry, store: source) } catch {
            context.output.writeLine("rack-gateway-db: warning: cannot record the copy in \(source.location)/\(CopyLog.fileName) (the source): "
                                     + ToolError(reporting: error).message)
        }
    }

    /// The outcome in `copies.jsonl` at the destination and at the source. A store that refuses the
    /// line is a warning (a read-only source is no error), said once per store.
    func record(_ result: Result, destination recordThere: Bool = true) {
        let entry = CopyLog.Entry(file: result.file, source: source.location, destination: destination.location, outcome: result.outcome,
                                  sha256: result.sha256 ?? "", size: result.sizeBytes, copiedAt: context.clock.now(), checks: result.checks,
                                  version: result.outcome == .failed ? nil : (try? destination.version(result.file)) ?? nil,
                                  retainUntil: result.retainUntil.flatMap(EvidenceReport.parseTime),
                                  problems: result.problems.isEmpty ? nil : result.problems)
        for (store, role) in [(destination, "destination"), (source, "source")] where recordThere || role == "source" {
            do { try CopyLog.append(entry, store: store) } catch {
                guard !warned.items.contains(store.location) else { continue }
                warned.add(store.location)
                context.output.writeLine("rack-gateway-db: warning: cannot record the copy in \(store.location)/\(CopyLog.fileName) (the \(role)): "
                                         + "\(ToolError(reporting: error).message)"
                                         + (role != "source" ? "" : recordThere ? "; it is recorded at the destination only" : "; it is recorded nowhere"))
            }
        }
    }

    /// A source archive found damaged while it was copied: a failed verification in its
    /// `verifications.jsonl` (at the file's version now), so that `list` there marks it
    /// VERIFY-FAILED; a source that refuses the line is a warning, as for `copies.jsonl`.
    func recordDamage(_ name: String, size: Int, problem: String) {
        do { try VerificationLog.recordFailure(name, size: size, problems: [problem], store: source, at: context.clock.now()) } catch {
            context.output.writeLine("rack-gateway-db: warning: cannot record the damaged archive in \(source.location)/\(VerificationLog.fileName) (the source): "
                                     + ToolError(reporting: error).message)
        }
    }

    /// The writer side of a stream, whose sink cannot throw: the first error stops it.
    final class StreamState: @unchecked Sendable {
        let writer: StoreWriter
        var count = 0
        var error: Error?
        init(writer: StoreWriter) { self.writer = writer }
        func write(_ bytes: UnsafeRawBufferPointer) -> Bool {
            do {
                try writer.append(Array(bytes)[...])
                count += bytes.count
                return true
            } catch {
                self.error = error
                return false
            }
        }
    }
}

/// What a copy run is doing, for its progress line: which archive of how many, the phase (check,
/// copy, verify) and its bytes.
public final class CopyProgress: @unchecked Sendable {
    private let lock = NSLock()
    private var index = 0
    private var total = 0
    private var file = ""
    private var phase = "copy"
    private var done = 0
    private var size = 0
    private let stopwatch = Stopwatch()
    private var phaseStarted = Stopwatch()

    public init() {}

    func start(total: Int) { lock.withLock { self.total = total } }
    func next(index: Int, file: String) { lock.withLock { (self.index, self.file, done, size) = (index, file, 0, 0) } }
    func phase(_ phase: String, total: Int) { lock.withLock { (self.phase, done, size, phaseStarted) = (phase, 0, total, Stopwatch()) } }
    func add(_ count: Int) { lock.withLock { done += count } }

    /// `copy 2/5 [####....] name, 1.2 GiB/2.0 GiB, 95.3 MiB/s, 1m02s`.
    public func line() -> ProgressLine {
        lock.withLock {
            let rate = phaseStarted.elapsed > 0.5 ? ", " + ProgressDisplay.bytes(Int(Double(done) / phaseStarted.elapsed)) + "/s" : ""
            return ProgressLine("\(phase) \(index + 1)/\(total)", fraction: size > 0 ? Double(done) / Double(size) : nil, [
                .init(file, priority: 10),
                .init("\(ProgressDisplay.bytes(done))/\(ProgressDisplay.bytes(size))" + rate, ProgressDisplay.bytes(done), priority: 30),
                .init(ProgressDisplay.duration(stopwatch.elapsed), priority: ProgressLine.movingPriority),
            ])
        }
    }
}
