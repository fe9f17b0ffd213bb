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
        /// `diff --against`: the older archive's file name, whose events are checked in the newer one.
        public var olderArchive: String? = nil
        /// Ranges of chain_index missing inside the (older) archive's own chain that no recorded prune
        /// explains (at most 20 listed), and the events they hold in all.
        public var archiveGaps: [Gap] = []
        public var archiveGapEvents = 0
        /// Events found the same on both sides.
        public var equal = 0
        /// `drill --existing-url` of a database older than the archive: the archive's events past
        /// the database's last chain_index (not looked for, not missing).
        public var beyondDatabase = 0
        /// Where the two sides come from when that differs (`the archive is of database X, ...`).
        public var sources: String? = nil

        enum CodingKeys: String, CodingKey {
            case table, ok, events, pruned, difference, changed, missing, added, equal
            case lastChainIndex = "last_chain_index", firstDifference = "first_difference"
            case olderArchive = "older_archive", archiveGaps = "archive_gaps", archiveGapEvents = "archive_gap_events"
            case beyondDatabase = "beyond_database", sources
        }

        /// Not one history: events on both sides, none of them the same (an archive of another
        /// database, not a rewrite of this one).
        public var unrelated: Bool { equal == 0 && changed > 0 }
    }

    /// chain_index `first` to `last`, both included.
    public struct Gap: Codable, Sendable, Equatable {
        public var first: Int64
        public var last: Int64
        public var description: String { first == last ? "\(first)" : "\(first)-\(last)" }
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
    /// session settings) through `diff`'s row readers; `equal` when the table's fingerprints already
    /// matched (the rows are then not compared again, only the chain is looked at for gaps).
    /// `upTo`: the database is older than the archive (a snapshot taken before it): its events are
    /// compared up to this chain_index, the archive's later ones counted in `beyondDatabase`.
    static func check(_ diff: ArchiveDiff, table: ArchiveManifest.Table, connection: Connection, equal: Bool = false, upTo: Int64? = nil) throws -> Result {
        let list = table.columns.map(SQL.identifier).joined(separator: ", ")
        let archived = try archivePrunedRanges(diff.archive)
        if equal, upTo == nil, let result = try liveChain(table: table, connection: connection, pruned: { archived + (try prunedRanges(connection)) }) {
            return result
        }
        var result = try compare(table: table, older: { body in try diff.forEachRow(archiveSide: true, table, connection: nil, filter: nil, body) },
                           newer: equal ? nil : { last, body in
                               let statement = "COPY (SELECT \(list) FROM ONLY \(SQL.qualified(table.schema, table.name)) WHERE \(SQL.identifier("chain_index")) <= \(min(last, upTo ?? last))) TO STDOUT"
                               try ArchiveDiff.copyRows(connection, statement, body)
                           },
                           pruned: { archived + (try prunedRanges(connection)) }, upTo: upTo)
        if result.unrelated {
            let name = try connection.query("SELECT current_database()").scalar ?? "?"
            result.sources = "the archive is of database \(source(diff.archive.manifest))" + (name == diff.archive.manifest.database ? "" : ", not of \(name)")
        }
        return result
    }

    /// The check of a table equal by row count and fingerprint: its rows in the database are the
    /// archive's, so the archive's own chain is the database's `chain_index` values, whose gaps the
    /// server finds from the column's index (one aggregate when a unique index on it shows the
    /// values contiguous) instead of the archive's every row being read and parsed. Nil when the
    /// column is not an integer (then the archive is read).
    static func liveChain(table: ArchiveManifest.Table, connection: Connection, pruned: () throws -> [ClosedRange<Int64>]) throws -> Result? {
        let relation = SQL.qualified(table.schema, table.name)
        let column = SQL.identifier("chain_index")
        let shape = try connection.query("""
            SELECT a.atttypid IN ('int2'::pg_catalog.regtype, 'int4'::pg_catalog.regtype, 'int8'::pg_catalog.regtype),
                   EXISTS (SELECT 1 FROM pg_catalog.pg_index i WHERE i.indrelid = a.attrelid AND i.indisunique AND i.indisvalid
                           AND i.indnkeyatts = 1 AND i.indkey[0] = a.attnum AND i.indpred IS NULL)
            FROM pg_catalog.pg_attribute a WHERE a.attrelid = to_regclass($1) AND a.attname = 'chain_index' AND NOT a.attisdropped
            """, [relation]).rows.first
        guard let shape, shape[0] == "t" else { return nil }
        var result = Result(table: table.qualifiedName, ok: true, lastChainIndex: nil, events: 0, pruned: 0,
                            firstDifference: nil, difference: nil, changed: 0, missing: 0, added: 0)
        let totals = try connection.query("SELECT count(\(column))::text, min(\(column))::text, max(\(column))::text FROM ONLY \(relation)").rows[0]
        guard let events = totals[0].flatMap({ Int($0) }), events > 0, let low = totals[1].flatMap({ Int64($0) }), let high = totals[2].flatMap({ Int64($0) }) else {
            return result
        }
        (result.events, result.lastChainIndex) = (events, high)
        var gaps: [ClosedRange<Int64>] = []
        if shape[1] == "t" && Int64(events) == high - low + 1 {
            // Unique and as many as the range holds: contiguous from the lowest.
            if low > 0 { gaps = [0...(low - 1)] }
        } else {
            gaps = try connection.query("""
                SELECT (coalesce(previous, -1) + 1)::text, (\(column) - 1)::text
                FROM (SELECT \(column), lag(\(column)) OVER (ORDER BY \(column)) AS previous FROM ONLY \(relation) WHERE \(column) IS NOT NULL) s
                WHERE \(column) > coalesce(previous, -1) + 1
                """).rows.compactMap { row in
                    guard let first = row[0].flatMap({ Int64($0) }), let last = row[1].flatMap({ Int64($0) }), first <= last else { return nil }
                    return first...last
                }
        }
        let ranges = try pruned()
        for gap in gaps { noteGap(gap, pruned: ranges, in: &result) }
        result.ok = result.archiveGaps.isEmpty
        return result
    }

    /// Adds the part of `gap` (chain_index missing from the archive's chain) that no range of
    /// `pruned` explains to `result`'s gaps.
    static func noteGap(_ gap: ClosedRange<Int64>, pruned: [ClosedRange<Int64>], in result: inout Result) {
        for part in uncovered(gap, by: pruned) {
            result.archiveGapEvents += Int(part.upperBound - part.lowerBound + 1)
            if result.archiveGaps.count < 20 { result.archiveGaps.append(Gap(first: part.lowerBound, last: part.upperBound)) }
        }
    }

    /// `diff ARCHIVE --against ARCHIVE2`: the older archive's events (by the manifests' times) up to
    /// its last chain_index must be in the newer one as they were, less the ranges the newer one's
    /// prune log records.
    static func check(_ diff: ArchiveDiff, table: ArchiveManifest.Table, second: ArchiveReader, equal: Bool = false) throws -> Result {
        let firstIsOlder = ArchiveDiff.isOlder(diff.archive.manifest, than: second.manifest)
        let (older, newer) = firstIsOlder ? (diff.archive, second) : (second, diff.archive)
        let ranges = try archivePrunedRanges(older) + archivePrunedRanges(newer)
        guard let field = table.columns.firstIndex(of: "chain_index") else {
            throw ToolError(.failed, "table \(table.qualifiedName) has no chain_index column")
        }
        var result = try compare(table: table, older: { body in try diff.forEachRow(archiveSide: firstIsOlder, table, connection: nil, filter: nil, body) },
                                 newer: equal ? nil : { last, body in
                                     try diff.forEachRow(archiveSide: !firstIsOlder, table, connection: nil, filter: nil) { row in
                                         if let index = chainIndex(row, field: field), index <= last { try body(row) }
                                     }
                                 },
                                 pruned: { ranges })
        result.olderArchive = URL(fileURLWithPath: older.path).lastPathComponent
        let (first, other) = (older.manifest, newer.manifest)
        if first.database != other.database || (first.sourceHost != nil && other.sourceHost != nil && first.sourceHost != other.sourceHost) {
            result.sources = "\(result.olderArchive!) is of database \(source(first)), \(URL(fileURLWithPath: newer.path).lastPathComponent) of \(source(other))"
        }
        return result
    }

    /// A manifest's source database, as `rack_gateway on db.internal:5432`.
    static func source(_ manifest: ArchiveManifest) -> String {
        manifest.database + (manifest.sourceHost.map { " on \($0)" } ?? "")
    }

    /// The pruned ranges an archive's own prune log holds (the table in `AuditPruneLog.tables`).
    static func archivePrunedRanges(_ reader: ArchiveReader) throws -> [ClosedRange<Int64>] {
        let diff = ArchiveDiff(archive: reader, other: .archive(reader), options: ArchiveDiff.Options())
        var ranges: [ClosedRange<Int64>] = []
        for table in reader.manifest.tables where AuditPruneLog.tables.contains(table.qualifiedName) {
            try diff.forEachRow(archiveSide: true, table, connection: nil, filter: nil) { row in
                let values = ArchiveDiff.values(row, columns: table.columns)
                if let first = (values["first_chain_index"] ?? nil).flatMap({ Int64($0) }), let last = (values["last_chain_index"] ?? nil).flatMap({ Int64($0) }), first <= last {
                    ranges.append(first...last)
                }
            }
        }
        return ranges
    }

    /// The ranges of `gap` no range of `covered` explains.
    static func uncovered(_ gap: ClosedRange<Int64>, by covered: [ClosedRange<Int64>]) -> [ClosedRange<Int64>] {
        var left: [ClosedRange<Int64>] = [gap]
        for range in covered {
            left = left.flatMap { part -> [ClosedRange<Int64>] in
                guard part.overlaps(range) else { return [part] }
                var pieces: [ClosedRange<Int64>] = []
                if part.lowerBound < range.lowerBound { pieces.append(part.lowerBound...(range.lowerBound - 1)) }
                if part.upperBound > range.upperBound { pieces.append((range.upperBound + 1)...part.upperBound) }
                return pieces
            }
        }
        return left
    }

    /// The check: the older side's (chain_index, row hash) pairs, its own chain's gaps that no
    /// recorded prune explains, then the newer side's rows up to the older's last chain_index
    /// matched against them (`newer` nil: equal by fingerprint, nothing to match).
    static func compare(table: ArchiveManifest.Table, older: ((UnsafeRawBufferPointer) throws -> Void) throws -> Void,
                        newer: ((Int64, (UnsafeRawBufferPointer) throws -> Void) throws -> Void)?,
                        pruned: () throws -> [ClosedRange<Int64>], upTo: Int64? = nil) throws -> Result {
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
        // Equal by fingerprint: only the chain_index values matter (for gaps), not the rows' hashes.
        let hashRows = newer != nil
        try older { row in
            guard let index = chainIndex(row, field: field) else { return }
            entries.append((index, hashRows ? DataChunk.rowHash(row) : 0))
        }
        entries.sort { $0.index < $1.index }
        guard let last = entries.last?.index else { return result }
        result.lastChainIndex = last
        result.events = entries.count
        let ranges = try pruned()
        // The archive's own chain: contiguous from the genesis event (0), but for recorded prunes.
        var expected: Int64 = 0
        for entry in entries {
            if entry.index > expected { noteGap(expected...(entry.index - 1), pruned: ranges, in: &result) }
            expected = max(expected, entry.index + 1)
        }
        if let newer {
            var matched = ArchiveDiff.BitSet(count: entries.count)
            try newer(last) { row in
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
                } else {
                    result.equal += 1
                }
            }
            for (position, entry) in entries.enumerated() where !matched[position] {
                if let upTo, entry.index > upTo {
                    result.beyondDatabase += 1
                } else if ranges.contains(where: { $0.contains(entry.index) }) {
                    result.pruned += 1
                } else {
                    result.missing += 1
                    note(entry.index, "missing")
                }
            }
        }
        result.ok = result.firstDifference == nil && result.archiveGaps.isEmpty
        return result
    }
}

extension AuditHistoryCheck.Result {
    /// The gaps of the archive's own chain, as `101-105, 200 (6 events)`.
    public var gapList: String {
        archiveGaps.map(\.description).joined(separator: ", ") + (archiveGaps.count < 20 ? "" : ", ...") + " (\(Plural.of(archiveGapEvents, "event")))"
    }

    public var prunedNote: String { pruned > 0 ? " (\(Plural.of(pruned, "event")) in recorded prunes not looked for)" : "" }

    /// What held: the events checked, and against what (diff's and the drill's line).
    public var heldDetail: String {
        guard let last = lastChainIndex else { return "\(table): the archive holds no events" }
        if let olderArchive {
            return "\(table): the \(Plural.of(events, "event")) of \(olderArchive) (the older archive) up to chain_index \(last) are in the newer archive as they were" + prunedNote
        }
        return "\(table): the \(Plural.of(events, "event")) up to chain_index \(last) are as archived" + prunedNote
    }

    /// What changed: the first differing chain_index and the counts, the gaps of the archive's own chain.
    public var changedDetail: String { changedDetail(upTo: nil) }

    /// `changedDetail`, naming what was compared: with `upTo` (a database older than the archive,
    /// compared up to its own last chain_index), that index, not the archive's last.
    public func changedDetail(upTo: Int64?) -> String {
        var problems: [String] = []
        if unrelated {
            // Not a rewrite: no event is the same from the first one on.
            return "not one history: \(sources.map { $0 + "; " } ?? "")their events do not match from the first one (chain_index \(firstDifference ?? 0): "
                + "\(Plural.of(changed, "event")) differ, none is the same): the two are of different databases, not one changed"
        }
        if let first = firstDifference {
            let counts = [("changed", changed), ("missing", missing), ("added", added)].filter { $0.1 > 0 }.map { "\($0.1) \($0.0)" }
            let against = olderArchive.map { "the older archive \($0)" } ?? "the archive"
            let compared = upTo.flatMap { last in lastChainIndex.map { last < $0 } == true
                ? "events up to chain_index \(last), this database's last (the archive's go to \(lastChainIndex!))," : nil } ?? "events up to chain_index \(lastChainIndex ?? -1)"
            problems.append("the event at chain_index \(first) is \(difference ?? "different") "
                            + "(\(compared) against \(against): \(counts.joined(separator: ", ")))")
        }
        if !archiveGaps.isEmpty {
            problems.append("the \(olderArchive.map { "older archive \($0)" } ?? "archive")'s own chain has gaps no recorded prune explains: chain_index \(gapList)")
        }
        return problems.joined(separator: "; ") + prunedNote
    }
}
