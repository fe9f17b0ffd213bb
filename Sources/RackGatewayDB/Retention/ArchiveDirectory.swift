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
        public var verified: Bool
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

    public init(store: ArchiveStore) { self.store = store }

    public init(directory: String) throws {
        guard FileManager.default.fileExists(atPath: directory) else {
            throw ToolError(.failed, "archive directory \(directory) does not exist", fix: "Give the right --dir (or RGW_BACKUP_DIR).")
        }
        store = LocalStore(directory: directory)
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
            var location = ArchiveLocation(store: store, name: object.name, keys: keys)
            // Listing reads the manifest, not the whole file: signatures are checked where archives are used.
            location.keys.verifyKey = nil
            var entry = Entry(file: object.name, path: location.path, time: time, sizeBytes: object.size, tables: nil, rows: nil, problem: nil,
                              verified: false, drilled: drills.contains(object.name), hasSidecar: names.contains(object.name + ".sha256"),
                              encrypted: location.isEncrypted, signed: names.contains(ArchiveName.signature(of: object.name)))
            do {
                let summary = try location.summary()
                entry.tables = summary.tables.count
                entry.rows = summary.totalRows
                entry.suspect = summary.suspect
                if let check = verifications[object.name], check.ok, check.size == object.size, entry.hasSidecar, location.sidecarDigest() == check.sha256 {
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
    /// `--latest`: the newest archive that passes the restore's archive check (structure and
    /// SHA-256 against its sidecar), with that check's report. Newer ones that fail are logged.
    public func latestGood(logger: Logger) throws -> (archive: ArchiveLocation, check: ArchiveVerifier.Report) {
        var skipped: [String] = []
        func skip(_ file: String, _ problem: String) {
            logger.warning("skipping an archive that does not verify", metadata: ["archive": "\(file)", "problem": "\(problem)"])
            skipped.append("\(file): \(problem)")
        }
        for entry in try entries() {
            if let problem = entry.problem {
                skip(entry.file, problem)
                continue
            }
            let archive = location(of: entry)
            // An archive that will not open with these keys (unsigned under --verify-key, encrypted
            // to someone else) is skipped like one that does not verify.
            do {
                let check = try ArchiveVerifier().preflight(try archive.reader())
                if check.ok { return (archive, check) }
                skip(entry.file, check.problems.first ?? "does not verify")
            } catch let error as ToolError where error.code != .usage {
                skip(entry.file, error.message)
            }
        }
        throw ToolError(.failed, "no archive in \(directory) verifies" + (skipped.isEmpty ? " (there are none)" : ": " + skipped.prefix(3).joined(separator: "; ")),
                        fix: "Give the archive's path, or --dir with the right directory.")
    }

    /// The newest good archive (readable, not suspect, verified — by an earlier `verify`, else now,
    /// recorded), for `check --max-backup-age` and monitors; nil when there is none.
    public func newestGood() throws -> Entry? {
        try entries().first(where: isGood)
    }

    /// Readable, not marked suspect by `backup`, and verified: by an earlier `verify` of the file as
    /// it is now, else by a full verify run here (and recorded in `verifications.jsonl`).
    /// An encrypted archive without its identity (the backup host) cannot be verified here: good
    /// then means its summary reads and the file's SHA-256 matches its sidecar, as written.
    public func isGood(_ entry: Entry) -> Bool {
        guard entry.problem == nil, entry.suspect == nil else { return false }
        if entry.verified { return true }
        let location = location(of: entry)
        if location.isEncrypted && keys.identities.isEmpty {
            guard let recorded = location.sidecarDigest(), let digest = try? location.storedSHA256() else { return false }
            return digest == recorded
        }
        guard let report = try? ArchiveVerifier().verify(reader: location.reader()) else { return false }
        try? VerificationLog.record(report, store: store)
        return report.ok
    }
}
