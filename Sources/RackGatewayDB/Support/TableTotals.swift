import Foundation

/// Per-table row counts and fingerprint sums added up by several threads; with `expect`, says when
/// a table's last expected piece is in.
final class TableTotals: @unchecked Sendable {
    private let lock = NSLock()
    private var rows: [Int]
    private var sums: [UInt64]
    private var remaining: [Int]

    init(tables: Int) {
        rows = Array(repeating: 0, count: tables)
        sums = Array(repeating: 0, count: tables)
        remaining = Array(repeating: 0, count: tables)
    }

    func expect(table: Int) { lock.withLock { remaining[table] += 1 } }

    /// Add a piece; true when it was the table's last expected one.
    @discardableResult
    func add(table: Int, rows count: Int, sum: UInt64) -> Bool {
        lock.withLock {
            rows[table] += count
            sums[table] &+= sum
            remaining[table] -= 1
            return remaining[table] == 0
        }
    }

    func total(_ table: Int) -> (rows: Int, sum: UInt64) { lock.withLock { (rows[table], sums[table]) } }

    /// One line per table of `manifest` whose totals differ from it; `place` says where the totals
    /// come from ("loaded from the archive", "in the database").
    func mismatches(against manifest: ArchiveManifest, place: String, only: Int? = nil) -> [String] {
        manifest.tables.enumerated().compactMap { index, table in
            if let only, only != index { return nil }
            let (rows, sum) = total(index)
            let fingerprint = ArchiveManifest.fingerprintText(sum)
            guard rows != table.rows || fingerprint != table.fingerprint else { return nil }
            return "table \(table.qualifiedName): \(rows) rows with fingerprint \(fingerprint) \(place), the manifest says \(table.rows) rows with \(table.fingerprint)"
        }
    }
}
