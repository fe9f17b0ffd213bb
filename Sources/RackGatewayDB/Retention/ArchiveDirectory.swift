import Foundation
import Logging

/// The archives in a directory (`<prefix>_<YYYYMMDD>T<HHMMSS>Z.sql.gz`), newest first, with what
/// their trailer and manifest say and whether a `verify` passed on them as they are now.
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
    }

    public let directory: String

    public init(directory: String) { self.directory = directory }

    public func entries() throws -> [Entry] {
        guard FileManager.default.fileExists(atPath: directory) else {
            throw ToolError(.failed, "archive directory \(directory) does not exist", fix: "Give the right --dir (or RGW_BACKUP_DIR).")
        }
        let names = try FileManager.default.contentsOfDirectory(atPath: directory)
        let verifications = VerificationLog.load(directory: directory)
        let drills = DrillLog.passedFiles(directory: directory)
        var result: [Entry] = []
        for name in names {
            guard let time = ArchiveName.timestamp(of: name) else { continue }
            let path = directory + "/" + name
            let size = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0
            var entry = Entry(file: name, path: path, time: time, sizeBytes: size, tables: nil, rows: nil, problem: nil,
                              verified: false, drilled: drills.contains(name),
                              hasSidecar: FileManager.default.fileExists(atPath: path + ".sha256"))
            do {
                let reader = try ArchiveReader(path: path)
                entry.tables = reader.manifest.tables.count
                entry.rows = reader.manifest.totalRows
                if let check = verifications[name], check.ok, check.size == size, ArchiveName.sidecarDigest(ofArchive: path) == check.sha256 {
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
    public func latestGood(logger: Logger) throws -> (path: String, check: ArchiveVerifier.Report) {
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
            let check = try ArchiveVerifier().preflight(try ArchiveReader(path: entry.path))
            if check.ok { return (entry.path, check) }
            skip(entry.file, check.problems.first ?? "does not verify")
        }
        throw ToolError(.failed, "no archive in \(directory) verifies" + (skipped.isEmpty ? " (there are none)" : ": " + skipped.prefix(3).joined(separator: "; ")),
                        fix: "Give the archive's path, or --dir with the right directory.")
    }
}
