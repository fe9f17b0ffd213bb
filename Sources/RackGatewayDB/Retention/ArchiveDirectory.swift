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
        /// When that failed verify ran and what it found (`verifications.jsonl`; no problems in
        /// older logs), for `list --json` and the report.
        public var verificationFailedAt: String?
        public var verificationProblems: [String]?
        /// Its last drill (of the file as it is now, same size) read it in full and passed every check.
        public var drilled: Bool
        /// Its last drill (of the file as it is now) failed a check: `list` marks it `DRILL-FAILED`.
        public var drillFailed = false
        public var hasSidecar: Bool
        /// Why the backup marked it suspect (ShrinkCheck); nil when it is not.
        public var suspect: String?
        /// age-encrypted (`.age`), and signed (a `.minisig` beside it; whether it verifies is for
        /// verify, restore and drill with `--verify-key`).
        public var encrypted = false
        public var signed = false
        /// Its last `verify --sample` of the file as it is now (its version unchanged): when it ran,
        /// and the share (0 to 100) of the data members' bytes re-read at this version by it and the
        /// samples before it (`verifications.jsonl`); nil when none ran since the file last changed.
        public var sampledAt: String?
        public var sampledPercent: Double?
        /// What `copies.jsonl` here records of its copies (ArchiveCopy); nil when the log has none.
        public var copies: [ArchiveCopy]?

        /// Known from the listing not to be a good archive, without reading it: unreadable, marked
        /// SUSPECT by its backup, or its last `verify` failed (`list`'s UNREADABLE, SUSPECT and
        /// VERIFY-FAILED). `--latest`, `check`, `prune` and `report` pass over such an archive alike.
        public var listedNotGood: Bool { problem != nil || suspect != nil || verificationFailed }
    }

    public let store: ArchiveStore
    public var directory: String { store.location }
    /// Where the location came from (`--dir`, `RGW_BACKUP_DIR`, the default), for messages.
    public var source = LocationSource.option
    /// What archives are read with (an identity lets `list` read an encrypted archive itself).
    public var keys = ArchiveKeys()
    /// The run's clock: when a verification done here is recorded, and what "now" is to retention.
    public let clock: RunClock
    /// Whether a verification done here goes into `verifications.jsonl` (not for `prune --dry-run`,
    /// which writes nothing into the directory).
    public var recordsVerifications = true
    /// Whether `entries` reads `copies.jsonl` into each entry's `copies` (list, report, check): at a
    /// copy's source that reads each copied archive's sidecar, which restore, drill and prune do not
    /// need to pay for.
    public var readsCopies = false

    public init(store: ArchiveStore, clock: RunClock) {
        self.store = store
        self.clock = clock
    }

    public init(directory: String, source: LocationSource = .option, clock: RunClock) throws {
        store = LocalStore(directory: directory)
        guard FileManager.default.fileExists(atPath: directory) else {
            throw ToolError(.archiveNotFound, "archive directory \(source.naming(directory)) does not exist",
                            fix: Self.hint(beside: Self.nearby(store)) + source.fix)
        }
        self.source = source
        self.clock = clock
    }

    public func location(of entry: Entry) -> ArchiveLocation { ArchiveLocation(store: store, name: entry.file, keys: keys) }

    /// The newest archive's name, from the listing alone (as `entries` orders them: by the time in
    /// the name, then by name; safety backups are not archives); nil when there is none.
    public func newestName() throws -> String? {
        var newest: (name: String, time: Date)?
        for object in try store.list() where !ArchiveName.isSafetyBackup(object.name) {
            guard let time = ArchiveName.timestamp(of: object.name) else { continue }
            if let current = newest, current.time > time || (current.time == time && current.name > object.name) { continue }
            newest = (object.name, time)
        }
        return newest?.name
    }

    public func entries() throws -> [Entry] {
        let objects = try store.list()
        let names = Set(objects.map(\.name))
        let lines = VerificationLog.lines(store: store)
        let verifications = VerificationLog.verdicts(lines), samples = VerificationLog.latestSamples(lines)
        let drills = DrillLog.lastVerdicts(store: store)
        let copies = readsCopies ? ArchiveCopy.Index(store: store) : nil
        var result: [Entry] = []
        for object in objects {
            guard let time = ArchiveName.timestamp(of: object.name) else { continue }
            // A safety backup of `restore --in-place` (the state a restore replaced; older versions
            // wrote it beside the nightlies) is never a backup to list, choose, count or prune.
            guard !ArchiveName.isSafetyBackup(object.name) else { continue }
            var location = ArchiveLocation(store: store, name: object.name, keys: keys)
            // Listing reads the manifest, not the whole file: signatures are checked where archives are used.
            location.keys.verifyKey = nil
            // A drill of an earlier file of the same name (another size) says nothing of this one.
            let drill = drills[object.name].flatMap { $0.size == nil || $0.size == object.size ? $0 : nil }
            var entry = Entry(file: object.name, path: location.path, time: time, sizeBytes: object.size, tables: nil, rows: nil, problem: nil,
                              verified: false, drilled: drill?.passed == true, hasSidecar: names.contains(object.name + ".sha256"),
                              encrypted: location.isEncrypted, signed: names.contains(ArchiveName.signature(of: object.name)))
            entry.drillFailed = drill?.passed == false
            if let sample = samples[object.name], sample.version != nil, sample.version == object.version {
                (entry.sampledAt, entry.sampledPercent) = (sample.verifiedAt, sample.coveredPercent)
            }
            entry.copies = copies?.copies(of: object) { location.sidecarDigest() }
            // A failed verify of this file (as large as it is now, and the same file when both versions
            // are known: one written over it since, e.g. by `copy` replacing a damaged copy, is not the
            // file that failed) marks it, readable or not.
            if let check = VerificationLog.standingFailure(verifications, file: object.name, size: object.size, version: object.version) {
                entry.verificationFailed = true
                (entry.verificationFailedAt, entry.verificationProblems) = (check.verifiedAt, check.problems)
            }
            do {
                let summary = try location.summary(storedSize: object.size)
                entry.tables = summary.tables.count
                entry.rows = summary.totalRows
                entry.suspect = summary.suspect
                if let check = verifications[object.name], check.ok, check.size == object.size, check.version != nil, check.version == object.version,
                   entry.hasSidecar, location.sidecarDigest() == check.sha256 {
                    entry.verified = true
                }
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
        /// A signature sound but made by another key than `--verify-key`'s: that key's id.
        public var signedBy: String?
        /// The id of the key `--verify-key` gave, beside `signedBy`.
        public var keyGiven: String?

        /// Signed by another key than the one given: both key ids.
        public var wrongKey: ArchiveSignature.WrongKey? {
            guard let signedBy, let keyGiven else { return nil }
            return ArchiveSignature.WrongKey(signedBy: signedBy, given: keyGiven)
        }

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
        /// Every archive passed over, newest first (the newest's problem included).
        public var passedOver: [NewestProblem] = []

        /// When no archive is good and every one whose signature was checked is signed by one and
        /// the same other key than `--verify-key`'s: that key (the key given is then the likely
        /// problem, not the archives).
        public var foreignKey: ArchiveSignature.WrongKey? {
            guard chosen == nil, let newest = newestProblem, let signedBy = newest.signedBy, let given = newest.keyGiven else { return nil }
            let checked = passedOver.filter { $0.kind == .signature }
            guard checked.allSatisfy({ $0.signedBy == signedBy }) else { return nil }
            return ArchiveSignature.WrongKey(signedBy: signedBy, given: given)
        }

        /// How many archives `foreignKey` signed among those checked.
        public var foreignlySigned: Int { passedOver.filter { $0.kind == .signature && $0.signedBy != nil }.count }
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
    /// Only a verdict about an archive passes it over (corrupt, badly signed, suspect; an older one
    /// this tool or identity cannot read). A failure of this host or of the store while reading it
    /// (no room for the spool in $TMPDIR, S3 unreachable, access denied) says nothing of the
    /// archive: it is thrown as it is, and the run stops before anything changes.
    public func latest(acceptSuspectNewest: Bool, logger: Logger) throws -> Latest {
        let all = try entries()
        guard let newest = all.first else { throw emptyError() }
        var result = Latest(newest: newest, newestProblem: nil, chosen: nil)

        /// The archive check of one entry: its report, or why it is not good.
        func examine(_ entry: Entry, isNewest: Bool) throws -> Result<Chosen, NewestProblem> {
            func bad(_ kind: NewestProblem.Kind, _ problems: [String]) -> Result<Chosen, NewestProblem> {
                .failure(NewestProblem(file: entry.file, path: entry.path, kind: kind, problems: problems.isEmpty ? ["does not verify"] : problems))
            }
            if !isNewest {
                if let problem = entry.problem { return bad(.corrupt, [problem]) }
                if let suspect = entry.suspect { return bad(.suspect, [suspect]) }
                if entry.verificationFailed { return bad(.corrupt, ["its last verify failed (verifications.jsonl); run verify on it for the details"]) }
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
                var problem = NewestProblem(file: entry.file, path: entry.path, kind: .signature, problems: [error.message])
                if let wrong = error.cause as? ArchiveSignature.WrongKey { (problem.signedBy, problem.keyGiven) = (wrong.signedBy, wrong.given) }
                return .failure(problem)
            } catch where Self.isHostFailure(error) {
                throw error
            } catch {
                return bad(.corrupt, [entry.problem ?? (error as? ToolError)?.message ?? String(describing: error)])
            }
            if let problem = entry.problem { return bad(.corrupt, [problem]) }
            let check: ArchiveVerifier.Report
            do {
                check = try ArchiveVerifier().preflight(reader, logger: logger)
            } catch let error as ToolError where error.code != .usage && !Self.isHostFailure(error) {
                return bad(error.code == .signatureInvalid ? .signature : .corrupt, [error.message])
            }
            guard check.ok else {
                // Recorded in verifications.jsonl, so `list` marks it VERIFY-FAILED.
                record(check)
                return bad(.corrupt, check.problems)
            }
            if entry.verificationFailed {
                return bad(.corrupt, ["its last verify failed (verifications.jsonl) though its SHA-256 matches its sidecar; run verify on it for the details"])
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
                result.passedOver.append(problem)
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

    /// Whether `error`, met opening or checking an archive, is a failure of this host, the store
    /// or the run (no room for the spool in $TMPDIR, S3 unreachable or refusing, a signal), which
    /// says nothing of the archive; anything else met reading it is a verdict about it.
    public static func isHostFailure(_ error: Error) -> Bool {
        if error is S3Client.Failure { return true }
        guard let error = error as? ToolError else { return false }
        if error.cause is SpooledObject.HostProblem || error.cause is S3Client.TransportFailure || error.cause is S3Client.Failure { return true }
        return [.interrupted, .accessDenied, .credentialsMissing, .bucketNotFound].contains(error.code)
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

    /// Readable, not marked suspect by `backup`, its last `verify` not failed, and verified: by an earlier `verify` of the file as
    /// it is now, else by a full verify run here (and recorded in `verifications.jsonl`).
    /// An encrypted archive without its identity (the backup host) cannot be verified here: good
    /// then means its summary reads and the file's SHA-256 matches its sidecar, as written.
    public func isGood(_ entry: Entry) -> Bool { goodness(entry) != .notGood }

    public func goodness(_ entry: Entry) -> Goodness {
        guard !entry.listedNotGood else { return .notGood }
        if entry.verified { return .recorded }
        let location = location(of: entry)
        if location.isEncrypted && keys.identities.isEmpty {
            guard let recorded = location.sidecarDigest(), let digest = try? location.storedSHA256() else { return .notGood }
            return digest == recorded ? .checkedNow : .notGood
        }
        guard let report = try? ArchiveVerifier().verify(reader: location.reader()) else { return .notGood }
        record(report)
        return report.ok ? .checkedNow : .notGood
    }

    /// An archive whose earlier `verify` is trusted (`entry.verified`: the verified SHA-256 is its
    /// sidecar's), read again as it is now: its SHA-256 must still be its sidecar's (what `prune`
    /// does before it relies on an archive to delete others). A mismatch is recorded as a failed
    /// verification, so `list` marks it.
    /// A verification done here, into `verifications.jsonl` (unless `recordsVerifications` is off).
    private func record(_ report: ArchiveVerifier.Report) {
        if recordsVerifications { try? VerificationLog.record(report, store: store, at: clock.now()) }
    }

    public func confirm(_ entry: Entry) -> Bool {
        let location = location(of: entry)
        let digest: String
        do { digest = try location.storedSHA256() } catch { return false }
        let sidecar = location.sidecarDigest()
        if entry.verified, digest == sidecar { return true }
        let problem = "its SHA-256 is now \(digest), but its sidecar and its verification say \(sidecar ?? "nothing"): the file changed since it was verified"
        let report = ArchiveVerifier.Report(file: entry.path, ok: false, problems: [problem], members: 0, tables: entry.tables ?? 0, rows: entry.rows ?? 0,
                                            bytes: 0, fileSize: entry.sizeBytes, sha256: digest, sidecar: "mismatch", durationSeconds: 0)
        record(report)
        return false
    }
}

/// Where an archive location came from, so that a message names it as it was given: a directory
/// from `RGW_BACKUP_DIR` is not reported as `--dir`.
public enum LocationSource: String, Sendable {
    case option = "--dir"
    case environment = "RGW_BACKUP_DIR"
    /// Neither given: `./backups`.
    case builtIn = "default"

    /// `/var/backups/rgw (from RGW_BACKUP_DIR)`.
    public func naming(_ location: String) -> String {
        switch self {
        case .option: "\(location) (from --dir)"
        case .environment: "\(location) (from RGW_BACKUP_DIR)"
        case .builtIn: "\(location) (the default: no --dir given, RGW_BACKUP_DIR not set)"
        }
    }

    /// How to point at the right place.
    public var fix: String {
        switch self {
        case .option: "Give --dir the directory or s3://bucket/prefix that holds the archives."
        case .environment: "Set RGW_BACKUP_DIR to the directory or s3://bucket/prefix that holds the archives (or give --dir, which overrides it)."
        case .builtIn: "Give --dir (or set RGW_BACKUP_DIR) to the directory or s3://bucket/prefix that holds the archives."
        }
    }
}

/// A location beside (or under) one that holds no archives, which does hold some: what a typo in
/// `--dir` (`nighty` for `nightly`) or a missing prefix most likely meant.
public struct NearbyLocation: Sendable, Equatable, CustomStringConvertible {
    public var location: String
    public var archives: Int
    /// The archives' names without their time and suffix (`rack_gateway_backup`).
    public var stems: [String]

    public var description: String {
        "\(location) (\(Plural.of(archives, "archive")): \(stems.prefix(3).map { $0 + "_*" }.joined(separator: ", ")))"
    }

    /// The location's archives among `names` (safety backups are not backups); nil when none.
    init?(location: String, names: [String]) {
        let archives = names.filter { ArchiveName.timestamp(of: $0) != nil && !ArchiveName.isSafetyBackup($0) }
        guard !archives.isEmpty else { return nil }
        self.location = location
        self.archives = archives.count
        stems = Array(Set(archives.map { name in
            let stem = ArchiveName.stem(name)
            return stem.lastIndex(of: "_").map { String(stem[..<$0]) } ?? stem
        })).sorted()
    }
}

extension ArchiveDirectory {
    /// At most this many nearby locations are looked into and named.
    static let nearbyLimit = 5

    /// The locations beside `store`'s (its siblings, nearest name first), under it, and its parent,
    /// that hold archives. Only asked when `store` holds none, so its cost (a listing of the parent,
    /// of the location, and of each candidate: a dozen S3 requests at most) is paid on that error
    /// path only; what cannot be listed is left out.
    public static func nearby(_ store: ArchiveStore) -> [NearbyLocation] {
        switch store {
        case let local as LocalStore: nearbyDirectories(local.directory)
        case let s3 as S3Store: nearbyPrefixes(s3)
        default: []
        }
    }

    static func nearbyDirectories(_ directory: String) -> [NearbyLocation] {
        let url = URL(fileURLWithPath: directory).standardizedFileURL
        let parent = url.deletingLastPathComponent()
        let files = FileManager.default
        func names(_ directory: URL) -> [String] { (try? files.contentsOfDirectory(atPath: directory.path)) ?? [] }
        /// The subdirectories of `directory` (nearest to `name` first when given), at most 200 looked at.
        func subdirectories(_ directory: URL, nearestTo name: String? = nil) -> [URL] {
            let visible = names(directory).filter { !$0.hasPrefix(".") }
            return (name.map { ArchiveLocation.nearest(to: $0, among: visible) } ?? visible.sorted()).prefix(200).compactMap { name in
                var isDirectory: ObjCBool = false
                let child = directory.appendingPathComponent(name)
                return files.fileExists(atPath: child.path, isDirectory: &isDirectory) && isDirectory.boolValue ? child : nil
            }
        }
        let siblings = subdirectories(parent, nearestTo: url.lastPathComponent)
        var found: [NearbyLocation] = []
        for candidate in siblings + subdirectories(url) + [parent] where found.count < nearbyLimit && candidate.path != url.path {
            if let nearby = NearbyLocation(location: candidate.path, names: names(candidate)) { found.append(nearby) }
        }
        return found
    }

    static func nearbyPrefixes(_ store: S3Store) -> [NearbyLocation] {
        let client = store.client
        func location(_ prefix: String) -> String {
            let trimmed = prefix.hasSuffix("/") ? String(prefix.dropLast()) : prefix
            return "s3://\(client.bucket)" + (trimmed.isEmpty ? "" : "/\(trimmed)")
        }
        func lastComponent(_ prefix: String) -> String {
            String(prefix.split(separator: "/").last ?? "")
        }
        let own = store.prefix.isEmpty ? "" : store.prefix + "/"
        var siblings: [String] = [], parent: [String] = []
        if !own.isEmpty {
            let parentPrefix = store.prefix.lastIndex(of: "/").map { String(store.prefix[...$0]) } ?? ""
            if let level = try? client.listLevel(prefix: parentPrefix) {
                let byName = Dictionary(level.prefixes.filter { $0 != own }.map { (lastComponent($0), $0) }, uniquingKeysWith: { first, _ in first })
                siblings = ArchiveLocation.nearest(to: lastComponent(own), among: Array(byName.keys)).compactMap { byName[$0] }
                parent = [parentPrefix]
            }
        }
        let children = (try? client.listLevel(prefix: own))?.prefixes ?? []
        let candidates = Array(siblings.prefix(nearbyLimit)) + Array(children.prefix(nearbyLimit)) + parent
        var found: [NearbyLocation] = []
        for prefix in candidates where found.count < nearbyLimit {
            guard let level = try? client.listLevel(prefix: prefix) else { continue }
            let names = level.objects.map { String($0.dropFirst(prefix.count)) }
            if let nearby = NearbyLocation(location: location(prefix), names: names) { found.append(nearby) }
        }
        return found
    }

    /// "Archives are beside it: ..." for a fix line, or "" when none are.
    public static func hint(beside nearby: [NearbyLocation]) -> String {
        nearby.isEmpty ? "" : "Archives near it: " + nearby.map(\.description).joined(separator: "; ") + ". "
    }

    /// `--latest` (and `list` on stderr) in a location without archives: where it looked, where it
    /// got that location, and the locations near it that hold archives.
    public func emptyError() -> ToolError {
        ToolError(.archiveNotFound, "no archive in \(source.naming(directory)): it holds none", fix: Self.hint(beside: Self.nearby(store)) + source.fix)
    }
}
