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
    }

    public let store: ArchiveStore
    public var directory: String { store.location }

    public init(store: ArchiveStore) { self.store = store }

    public init(directory: String) throws {
        guard FileManager.default.fileExists(atPath: directory) else {
            throw ToolError(.failed, "archive directory \(directory) does not exist", fix: "Give the right --dir (or RGW_BACKUP_DIR).")
        }
        store = LocalStore(directory: directory)
    }

    public func location(of entry: Entry) -> ArchiveLocation { ArchiveLocation(store: store, name: entry.file) }

    public func entries() throws -> [Entry] {
        let objects = try store.list()
        let names = Set(objects.map(\.name))
        let verifications = VerificationLog.load(store: store)
        let drills = DrillLog.passedFiles(store: store)
        var result: [Entry] = []
        for object in objects {
            guard let time = ArchiveName.timestamp(of: object.name) else { continue }
            let location = ArchiveLocation(store: store, name: object.name)
            var entry = Entry(file: object.name, path: location.path, time: time, sizeBytes: object.size, tables: nil, rows: nil, problem: nil,
                              verified: false, drilled: drills.contains(object.name), hasSidecar: names.contains(object.name + ".sha256"))
            do {
                let reader = try location.reader()
                entry.tables = reader.manifest.tables.count
                entry.rows = reader.manifest.totalRows
                entry.suspect = reader.manifest.suspect
                if let check = verifications[object.name], check.ok, check.size == object.size, entry.hasSidecar, reader.sidecarDigest() == check.sha256 {
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
            let check = try ArchiveVerifier().preflight(try archive.reader())
            if check.ok { return (archive, check) }
            skip(entry.file, check.problems.first ?? "does not verify")
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
    public func isGood(_ entry: Entry) -> Bool {
        guard entry.problem == nil, entry.suspect == nil else { return false }
        if entry.verified { return true }
        guard let report = try? ArchiveVerifier().verify(reader: location(of: entry).reader()) else { return false }
        try? VerificationLog.record(report, store: store)
        return report.ok
    }
}
