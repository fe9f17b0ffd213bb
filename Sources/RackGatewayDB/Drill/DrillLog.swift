import Foundation

/// `drills.jsonl` in the archive directory: one line per drill (its report), which `list` reads to
/// mark the archives a drill passed on.
public enum DrillLog {
    public static let fileName = "drills.jsonl"

    struct Line: Decodable {
        var archive: String
        var ok: Bool
    }

    public static func append(_ report: DrillReport, store: ArchiveStore) throws {
        try JSONLines.append(report, to: fileName, in: store)
    }

    public static func passedFiles(store: ArchiveStore) -> Set<String> {
        Set(JSONLines.read(Line.self, from: fileName, in: store).filter(\.ok).map { URL(fileURLWithPath: $0.archive).lastPathComponent })
    }
}
