import Foundation

/// Silent bad backups: a backup that comes out much smaller than the previous good one (a truncated
/// table, a wrong database, a dump of an emptied schema) is written all the same — nothing is thrown
/// away — but marked suspect in its manifest, so `backup` exits 2, `list` shows it and `prune` never
/// counts it among the archives it keeps.
public struct ShrinkCheck: Sendable {
    /// How much a table's rows or the total data may fall before the archive is suspect (0.5: by half).
    public var maxShrink: Double
    /// Tables with fewer rows than this in the previous archive are not compared (a 3-row table
    /// losing two rows is normal life, not a bad backup).
    public static let minimumRows = 100

    /// `--max-shrink`'s default: by half.
    public static let defaultMaxShrink = 0.5

    public init(maxShrink: Double) { self.maxShrink = maxShrink }

    /// Whether a table's rows fell by more than the rule allows (tables of fewer than
    /// `minimumRows` are not judged).
    public func fell(from old: Int, to new: Int) -> Bool {
        old >= Self.minimumRows && Double(new) < Double(old) * (1 - maxShrink)
    }

    /// The newest archive in `store` with this prefix and database that reads and is not suspect
    /// itself: what a new backup is compared with. An encrypted one is read through its summary
    /// (the backup host has no identity).
    public static func previousGood(in store: ArchiveStore, prefix: String, database: String) -> (name: String, summary: ArchiveSummary)? {
        guard let objects = try? store.list()
            .filter({ $0.name.hasPrefix(prefix + "_") && ArchiveName.timestamp(of: $0.name) != nil })
            .sorted(by: { ArchiveName.stem($0.name) > ArchiveName.stem($1.name) }) else { return nil }
        for object in objects {
            guard let summary = try? ArchiveLocation(store: store, name: object.name).summary(storedSize: object.size),
                  summary.suspect == nil, summary.database == database else { continue }
            return (object.name, summary)
        }
        return nil
    }

    /// Why `tables` look like a bad backup next to `previous`; empty when they do not.
    public func problems(tables: [ArchiveManifest.Table], previous: ArchiveSummary) -> [String] {
        var problems: [String] = []
        let current = Dictionary(tables.map { ($0.qualifiedName, $0) }, uniquingKeysWith: { first, _ in first })
        let floor = 1 - maxShrink
        for old in previous.tables where old.rows >= Self.minimumRows {
            guard let new = current[old.qualifiedName] else {
                problems.append("table \(old.qualifiedName) vanished (it had \(old.rows) rows)")
                continue
            }
            if fell(from: old.rows, to: new.rows) {
                problems.append("table \(old.qualifiedName) fell from \(old.rows) to \(new.rows) rows (\(Self.percent(new.rows, old.rows)))")
            }
        }
        let oldTotal = previous.totalBytes, newTotal = tables.reduce(0) { $0 + $1.bytes }
        if oldTotal > 0, Double(newTotal) < Double(oldTotal) * floor {
            problems.append("the data fell from \(oldTotal) to \(newTotal) bytes of COPY text (\(Self.percent(newTotal, oldTotal)))")
        }
        return problems
    }

    static func percent(_ new: Int, _ old: Int) -> String {
        String(format: "%+.0f%%", (Double(new) / Double(old) - 1) * 100)
    }

    /// `--max-shrink`: a percentage from 0 to 100, with or without `%` (`50%`); 100% turns the check off.
    public static func parse(_ text: String) -> Double? {
        let digits = text.hasSuffix("%") ? String(text.dropLast()) : text
        guard let value = Double(digits), (0...100).contains(value) else { return nil }
        return value / 100
    }
}
