import Foundation
import RGWPostgres

/// The audit history check of `diff`: the audit log (the table with the chain columns `chain_index`,
/// `previous_hash` and `event_hash`, as in docs/production-databases.md) is append-only, so its live
/// rows up to the archive's last `chain_index` must be the archive's rows, byte for byte as COPY
/// writes them, except those in ranges `maint audit-prune` recorded. One pass over each side: the
/// archive's (chain_index, row hash) pairs, 16 bytes a row, then the live rows matched against them;
/// the first differing `chain_index` is named.
public struct AuditHistoryCheck {
    public struct Result: Codable, Sendable, Equatable {
        public var table: String
        public var ok: Bool
        /// The archive's last `chain_index` (nil: the archive holds no events).
        public var lastChainIndex: Int64?
        /// Archive events compared (those in pruned ranges included).
        public var events: Int
        /// Archive events absent from the database inside ranges a recorded prune removed.
        public var pruned: Int
        /// The first `chain_index` whose event differs, and how: `changed`, `missing` or `added`.
        public var firstDifference: Int64?
        public var difference: String?
        /// Events that differ, of each kind.
        public var changed: Int
        public var missing: Int
        public var added: Int

        enum CodingKeys: String, CodingKey {
            case table, ok, events, pruned, difference, changed, missing, added
            case lastChainIndex = "last_chain_index", firstDifference = "first_difference"
        }
    }

    static let chainColumns = ["chain_index", "previous_hash", "event_hash"]

    /// The archive's audit log: the table with all the chain columns (`audit.audit_event` first
    /// when more than one has them).
    public static func auditTable(_ manifest: ArchiveManifest) -> ArchiveManifest.Table? {
        let candidates = manifest.tables.filter { table in chainColumns.allSatisfy(table.columns.contains) }
        return candidates.first { $0.qualifiedName == "audit.audit_event" } ?? candidates.first
    }

    /// The `chain_index` ranges recorded prunes removed (both prune logs, where they exist).
    static func prunedRanges(_ connection: Connection) throws -> [ClosedRange<Int64>] {
        var ranges: [ClosedRange<Int64>] = []
        for table in AuditPruneLog.tables {
            guard try connection.query("SELECT to_regclass($1) IS NOT NULL", [table]).scalar == "t" else { continue }
            for row in try connection.query("SELECT first_chain_index::text, last_chain_index::text FROM \(table)").rows {
                if let first = row[0].flatMap({ Int64($0) }), let last = row[1].flatMap({ Int64($0) }), first <= last { ranges.append(first...last) }
            }
        }
        return ranges
    }

    /// `chain_index` of a COPY text line (field `field`); nil when NULL or not a number.
    static func chainIndex(_ row: UnsafeRawBufferPointer, field: Int) -> Int64? {
        let fields = ArchiveDiff.splitFields(row)
        guard field < fields.count else { return nil }
        return Int64(String(decoding: UnsafeRawBufferPointer(rebasing: row[fields[field]]), as: UTF8.self))
    }

    /// Compares the archive's audit events with the database's (`connection`, with the dump's
    /// session settings) through `diff`'s row readers.
    static func check(_ diff: ArchiveDiff, table: ArchiveManifest.Table, connection: Connection) throws -> Result {
        guard let field = table.columns.firstIndex(of: "chain_index") else {
            throw ToolError(.failed, "table \(table.qualifiedName) has no chain_index column")
        }
        var result = Result(table: table.qualifiedName, ok: true, lastChainIndex: nil, events: 0, pruned: 0,
                            firstDifference: nil, difference: nil, changed: 0, missing: 0, added: 0)
        func note(_ index: Int64, _ kind: String) {
            if result.firstDifference == nil || index < result.firstDifference! { (result.firstDifference, result.difference) = (index, kind) }
        }
        var entries: [(index: Int64, row: UInt64)] = []
        entries.reserveCapacity(table.rows)
        try diff.forEachRow(archiveSide: true, table, connection: nil, filter: nil) { row in
            guard let index = chainIndex(row, field: field) else { return }
            entries.append((index, DataChunk.rowHash(row)))
        }
        entries.sort { $0.index < $1.index }
        guard let last = entries.last?.index else { return result }
        result.lastChainIndex = last
        result.events = entries.count
        var matched = ArchiveDiff.BitSet(count: entries.count)
        let list = table.columns.map(SQL.identifier).joined(separator: ", ")
        let statement = "COPY (SELECT \(list) FROM ONLY \(SQL.qualified(table.schema, table.name)) WHERE \(SQL.identifier("chain_index")) <= \(last)) TO STDOUT"
        try connection.copyOut(statement) { stream in
            while try stream.withNextRow({ row in
                guard let index = chainIndex(row, field: field) else { return }
                var low = 0, high = entries.count
                while low < high {
                    let middle = (low + high) / 2
                    if entries[middle].index < index { low = middle + 1 } else { high = middle }
                }
                guard low < entries.count, entries[low].index == index, !matched[low] else {
                    result.added += 1
                    return note(index, "added")
                }
                matched[low] = true
                if entries[low].row != DataChunk.rowHash(row) {
                    result.changed += 1
                    note(index, "changed")
                }
            }) {}
        }
        let pruned = try prunedRanges(connection)
        for (position, entry) in entries.enumerated() where !matched[position] {
            if pruned.contains(where: { $0.contains(entry.index) }) {
                result.pruned += 1
            } else {
                result.missing += 1
                note(entry.index, "missing")
            }
        }
        result.ok = result.firstDifference == nil
        return result
    }
}
