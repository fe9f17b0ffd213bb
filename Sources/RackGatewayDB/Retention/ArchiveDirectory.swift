import Foundation

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

    /// `name_20261124T031500Z.sql.gz` → its UTC time.
    public static func timestamp(of fileName: String) -> Date? {
        guard fileName.hasSuffix(".sql.gz") else { return nil }
        let stem = fileName.dropLast(".sql.gz".count)
        guard let underscore = stem.lastIndex(of: "_") else { return nil }
        let stamp = String(stem[stem.index(after: underscore)...])
        guard stamp.count == 16 else { return nil }
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyyMMdd'T'HHmmss'Z'"
        return formatter.date(from: stamp)
    }

    public func entries() throws -> [Entry] {
        guard FileManager.default.fileExists(atPath: directory) else {
            throw ToolError(.failed, "archive directory \(directory) does not exist", fix: "Give the right --dir (or RGW_BACKUP_DIR).")
        }
        let names = try FileManager.default.contentsOfDirectory(atPath: directory)
        let verifications = VerificationLog.load(directory: directory)
        let drills = DrillLog.passedFiles(directory: directory)
        var result: [Entry] = []
        for name in names {
            guard let time = Self.timestamp(of: name) else { continue }
            let path = directory + "/" + name
            let size = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0
            var entry = Entry(file: name, path: path, time: time, sizeBytes: size, tables: nil, rows: nil, problem: nil,
                              verified: false, drilled: drills.contains(name),
                              hasSidecar: FileManager.default.fileExists(atPath: path + ".sha256"))
            do {
                let reader = try ArchiveReader(path: path)
                entry.tables = reader.manifest.tables.count
                entry.rows = reader.manifest.totalRows
                if let check = verifications[name], check.ok, check.size == size, Self.sidecarDigest(path) == check.sha256 {
                    entry.verified = true
                }
            } catch {
                entry.problem = String(describing: error).split(separator: "\n").first.map(String.init) ?? "unreadable"
            }
            result.append(entry)
        }
        return result.sorted { $0.time != $1.time ? $0.time > $1.time : $0.file > $1.file }
    }

    static func sidecarDigest(_ path: String) -> String? {
        guard let text = try? String(contentsOfFile: path + ".sha256", encoding: .utf8) else { return nil }
        return text.split(separator: " ").first.map { String($0).lowercased() }
    }
}

/// `drills.jsonl` (written by `drill`): which archives a restore drill passed on.
public enum DrillLog {
    public static let fileName = "drills.jsonl"

    public static func passedFiles(directory: String) -> Set<String> {
        guard let text = try? String(contentsOfFile: directory + "/" + fileName, encoding: .utf8) else { return [] }
        var passed = Set<String>()
        for line in text.split(separator: "\n") {
            guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                  let file = object["archive"] as? String ?? object["file"] as? String,
                  object["ok"] as? Bool == true else { continue }
            passed.insert(URL(fileURLWithPath: file).lastPathComponent)
        }
        return passed
    }
}
