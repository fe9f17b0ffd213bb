import Foundation
import Logging

/// The archives in a store, a local directory or an S3 prefix (`<prefix>_<YYYYMMDD>T<HHMMSS>Z.sql.gz`),
/// newest first, with what their trailer and manifest say and whether a `verify` passed on them as
/// they are now.
public struct ArchiveDirectory {
    public struct Entry: Codable, Sendable {
        public var file: String
        public var path: String
        public var time: Date
        public var sizeBytes: Int
        public var tables: Int?
        public var rows: Int?
        /// nil when the trailer and manifest read; otherwise why not.
        public var problem: String?
        /// A `verify` passed on the file as it is now: its recorded version (inode, size and times;
        /// an object's ETag) and SHA-256 are still the file's and its sidecar's.
        public var verified: Bool
        /// The last `verify` of this file (same size) failed: `list` marks it, `--latest` does not take it.
        public var verificationFailed = false
        public var drilled: Bool
        public var hasSidecar: Bool
        /// Why the backup marked it suspect (ShrinkCheck); nil when it is not.
        public var suspect: String?
        /// age-encrypted (`.age`), and signed (a `.minisig` beside it; whether it verifies is for
        /// verify, restore and drill with `--verify-key`).
        public var encrypted = false
        public var signed = false
    }

    public let store: ArchiveStore
    public var directory: String { store.location }
    /// What archives are read with (an identity lets `list` read an encrypted archive itself).
    public var keys = ArchiveKeys()
    /// The run's clock: when a verification done here is recorded, and what "now" is to retention.
    public let clock: RunClock

    public init(store: ArchiveStore, clock: RunClock) {
        self.store = store
        self.clock = clock
    }

    public init(directory: String, clock: RunClock) throws {
        guard FileManager.default.fileExists(atPath: directory) else {
            throw ToolError(.failed, "archive directory \(directory) does not exist", fix: "Give the right --dir (or RGW_BACKUP_DIR).")
        }
        store = LocalStore(directory: directory)
        self.clock = clock
    }

    public func location(of entry: Entry) -> ArchiveLocation { ArchiveLocation(store: store, name: entry.file, keys: keys) }

    public func entries() throws -> [Entry] {
        let objects = try store.list()
        let names = Set(objects.map(\.name))
        let verifications = VerificationLog.load(store: store)
        let drills = DrillLog.passedFiles(store: store)
        var result: [Entry] = []
        for object in objects {
            guard let time = ArchiveName.timestamp(of: object.name) else { continue }
            // A safety backup of `restore --in-place` (the state a restore replaced; older versions
            // wrote it beside the nightlies) is never a backup to list, choose, count or prune.
            guard !ArchiveName.isSafetyBackup(object.name) else { continue }
            var location = ArchiveLocation(store: store, name: object.name, keys: keys)
            // Listing reads the manifest, not the whole file: signatures are checked where archives are used.
            location.keys.verifyKey = nil
            var entry = Entry(file: object.name, path: location.path, time: time, sizeBytes: object.size, tables: nil, rows: nil, problem: nil,
                              verified: false, drilled: drills.contains(object.name), hasSidecar: names.contains(object.name + ".sha256"),
                              encrypted: location.isEncrypted, signed: names.contains(ArchiveName.signature(of: object.name)))
            do {
                let summary = try location.summary(storedSize: object.size)
                entry.tables = summary.tables.count
                entry.rows = summary.totalRows
                entry.suspect = summary.suspect
                if let check = verifications[object.name], check.ok, check.size == object.size, check.version != nil, check.version == object.version,
                   entry.hasSidecar, location.sidecarDigest() == check.sha256 {
                    entry.verified = true
                }
                if let check = verifications[object.name], !check.ok, check.size == object.size { entry.verificationFailed = true }
            } catch {
                entry.problem = String(describing: error).split(separator: "\n").first.map(String.init) ?? "unreadable"
            }
            result.append(entry)
        }
        return result.sorted { $0.time != $1.time ? $0.time > $1.time : $0.file > $1.file }
    }
}

extension ArchiveDirectory {
    /// Why `--latest` did not take the newest archive in the directory.
    public struct NewestProblem: Codable, Sendable, Error {
        public enum Kind: String, Codable, Sendable {
            /// Unreadable, its SHA-256 not its sidecar's, its structure broken, or a recorded `verify` failed.
            case corrupt
            /// `--verify-key` given and it is unsigned, signed by another key or for another name.
            case signature
            /// Written but marked suspect by the backup's shrink check (only restore stops on it).
            case suspect
        }
        public var file: String
        public var path: String
        public var kind: Kind
        public var problems: [String]

        public var code: ToolError.Code {
            switch kind {
            case .corrupt: .archiveCorrupt
            case .signature: .signatureInvalid
            case .suspect: .suspectBackup
            }
        }

        /// "the newest archive in DIR, FILE, does not verify: ..." (or is SUSPECT: ...).
        public func describe(in directory: String) -> String {
            let what = kind == .suspect ? "is marked SUSPECT by its backup" : (kind == .signature ? "fails its signature check" : "does not verify")
            return "the newest archive in \(directory), \(path), \(what): " + problems.prefix(3).joined(separator: "; ")
        }
    }

    /// What `--latest` found: the newest archive, why it was not taken (nil when it was), and the
    /// archive taken (the newest good one) with its archive check; nil when none verifies.
    public struct Latest {
        public var newest: Entry
        public var newestProblem: NewestProblem?
        public var chosen: Chosen?
    }

    /// The archive `--latest` took, opened and checked: what the restore or drill reads (never
    /// opened again by name, so never fetched or hashed twice).
    public struct Chosen {
        public var reader: ArchiveReader
        public var check: ArchiveVerifier.Report
        public var archive: ArchiveLocation { reader.archive }
    }

    /// `--latest`: the newest archive is the news. It is checked as the restore checks an archive
    /// (structure and SHA-256 against its sidecar, the signature under `--verify-key`), and a recorded
    /// failed `verify` counts; when it fails (or, unless `acceptSuspectNewest`, is SUSPECT) the
    /// result says so, and `chosen` is the newest good archive (readable, not suspect, passing the
    /// check). An encrypted archive this identity cannot open is not called corrupt: no identity is a
    /// usage error, another recipient's archive as the newest stops with `identity_mismatch`.
    /// The listing reads each archive's trailer and manifest by ranges; the candidates, newest
    /// first, are then opened and checked one at a time until one is good, and that opening (its
    /// spool, its digest) is the reader handed to the restore or drill: the archive chosen is
    /// fetched once. An older archive the listing already found unreadable, suspect or failing its
    /// last verify is passed over without being read; any other one examined is read whole once
    /// (its signature, its SHA-256 against the sidecar), the newest always (it is the news).
    public func latest(acceptSuspectNewest: Bool, logger: Logger) throws -> Latest {
        let all = try entries()
        guard let newest = all.first else {
            throw ToolError(.failed, "no archive in \(directory) (there are none)", fix: "Give the archive's path, or --dir with the right directory.")
        }
        var result = Latest(newest: newest, newestProblem: nil, chosen: nil)

        /// The archive check of one entry: its report, or why it is not good.
        func examine(_ entry: Entry, isNewest: Bool) throws -> Result<Chosen, NewestProblem> {
            func bad(_ kind: NewestProblem.Kind, _ problems: [String]) -> Result<Chosen, NewestProblem> {
                .failure(NewestProblem(file: entry.file, path: entry.path, kind: kind, problems: problems.isEmpty ? ["does not verify"] : problems))
            }
            if !isNewest {
                if let problem = entry.problem { return bad(.corrupt, [problem]) }
                if let suspect = entry.suspect { return bad(.suspect, [suspect]) }
                if entry.verificationFailed { return bad(.corrupt, ["its last full verify failed (verifications.jsonl); run verify on it for the details"]) }
            }
            let archive = location(of: entry)
            let reader: ArchiveReader
            do {
                reader = try archive.reader()
            } catch let error as ToolError where error.code == .usage || (isNewest && error.code == .formatUnsupported) {
                throw error
            } catch let error as ToolError where error.code == .identityMismatch {
                guard isNewest else { return bad(.corrupt, [error.message]) }
                throw ToolError(.identityMismatch, "the newest archive in \(directory), \(entry.path), is encrypted to recipients no identity given opens: \(error.message)",
                                fix: "Give the identity it was encrypted to (--identity or RGW_AGE_IDENTITY_FILE); an older archive is not taken in its place.")
            } catch let error as ToolError where error.code == .signatureInvalid {
                return bad(.signature, [error.message])
            } catch {
                return bad(.corrupt, [entry.problem ?? (error as? ToolError)?.message ?? String(describing: error)])
            }
            if let problem = entry.problem { return bad(.corrupt, [problem]) }
            let check: ArchiveVerifier.Report
            do {
                check = try ArchiveVerifier().preflight(reader)
            } catch let error as ToolError where error.code != .usage {
                return bad(error.code == .signatureInvalid ? .signature : .corrupt, [error.message])
            }
            guard check.ok else {
                // Recorded in verifications.jsonl, so `list` marks it VERIFY-FAILED.
                try? VerificationLog.record(check, store: store, at: clock.now())
                return bad(.corrupt, check.problems)
            }
            if entry.verificationFailed {
                return bad(.corrupt, ["its last full verify failed (verifications.jsonl) though its SHA-256 matches its sidecar; run verify on it for the details"])
            }
            if let suspect = entry.suspect, !(isNewest && acceptSuspectNewest) { return bad(.suspect, [suspect]) }
            return .success(Chosen(reader: reader, check: check))
        }

        for entry in all {
            switch try examine(entry, isNewest: entry.file == newest.file) {
            case .success(let chosen):
                result.chosen = chosen
                return result
            case .failure(let problem):
                if entry.file == newest.file {
                    result.newestProblem = problem
                    logger.error("the newest archive is not good", metadata: ["archive": "\(problem.path)", "kind": "\(problem.kind.rawValue)",
                                                                           "problem": "\(problem.problems.first ?? "")"])
                } else {
                    logger.warning("skipping an archive that is not good", metadata: ["archive": "\(entry.file)", "problem": "\(problem.problems.first ?? "")"])
                }
            }
        }
        return result
    }

    /// The newest good archive (readable, not suspect, verified — by an earlier `verify`, else now,
    /// recorded), for `check --max-backup-age` and monitors; nil when there is none.
    public func newestGood() throws -> Entry? {
        try entries().first(where: isGood)
    }

    /// How an archive was found good (or not).
    public enum Goodness: Sendable, Equatable {
        case notGood
        /// Checked here, now: a full verify, or (encrypted, no identity) its SHA-256 against its sidecar.
        case checkedNow
        /// By an earlier `verify` of the file as it is now (its version unchanged), not read here.
        case recorded
    }

    /// Readable, not marked suspect by `backup`, and verified: by an earlier `verify` of the file as
    /// it is now, else by a full verify run here (and recorded in `verifications.jsonl`).
    /// An encrypted archive without its identity (the backup host) cannot be verified here: good
    /// then means its summary reads and the file's SHA-256 matches its sidecar, as written.
    public func isGood(_ entry: Entry) -> Bool { goodness(entry) != .notGood }

    public func goodness(_ entry: Entry) -> Goodness {
        guard entry.problem == nil, entry.suspect == nil else { return .notGood }
        if entry.verified { return .recorded }
        let location = location(of: entry)
        if location.isEncrypted && keys.identities.isEmpty {
            guard let recorded = location.sidecarDigest(), let digest = try? location.storedSHA256() else { return .notGood }
            return digest == recorded ? .checkedNow : .notGood
        }
        guard let report = try? ArchiveVerifier().verify(reader: location.reader()) else { return .notGood }
        try? VerificationLog.record(report, store: store, at: clock.now())
        return report.ok ? .checkedNow : .notGood
    }

    /// An archive whose earlier `verify` is trusted (`entry.verified`: the verified SHA-256 is its
    /// sidecar's), read again as it is now: its SHA-256 must still be its sidecar's (what `prune`
    /// does before it relies on an archive to delete others). A mismatch is recorded as a failed
    /// verification, so `list` marks it.
    public func confirm(_ entry: Entry) -> Bool {
        let location = location(of: entry)
        let digest: String
        do { digest = try location.storedSHA256() } catch { return false }
        let sidecar = location.sidecarDigest()
        if entry.verified, digest == sidecar { return true }
        let problem = "its SHA-256 is now \(digest), but its sidecar and its verification say \(sidecar ?? "nothing"): the file changed since it was verified"
        let report = ArchiveVerifier.Report(file: entry.path, ok: false, problems: [problem], members: 0, tables: entry.tables ?? 0, rows: entry.rows ?? 0,
                                            bytes: 0, fileSize: entry.sizeBytes, sha256: digest, sidecar: "mismatch", durationSeconds: 0)
        try? VerificationLog.record(report, store: store, at: clock.now())
        return false
    }
}
