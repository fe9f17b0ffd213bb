import Foundation
import RGWCompression
import RGWPostgres

/// `diff`: an archive against a live database or against a second archive, per table by row count
/// and fingerprint (the archive's recorded ones; the database's computed the way `backup` computes
/// them, so the rows are hashed as they stream and nothing of them is kept). With `rows`, the
/// tables that differ are read again and their rows compared: keyed by primary key (read from the
/// database), as multisets of rows without one (and between two archives, whose manifests record
/// no keys). Memory: 16 bytes per archive row of a table (sorted in place) for at most
/// `Options.rowsPerPartition` rows at a time (a bigger table is matched in partitions of its key
/// hashes), the differing rows' key hashes, then at most `Options.changedBytesPerRound` of the
/// changed rows' archive text at a time (more changed rows take more rounds); the rows shown are
/// handed to the sink one at a time, not held.
public struct ArchiveDiff {
    /// The other side of the comparison.
    public enum Other {
        case database(ConnectionSettings)
        case archive(ArchiveReader)
    }

    public struct Options: Sendable {
        /// `SCHEMA.NAME` (or a name one table of the archive has); empty: every table.
        public var tables: [String] = []
        public var rows = false
        /// Row changes of each kind handed to `sink` per table; nil: all of them.
        public var limit: Int? = nil
        public var jobs = 1
        /// The audit history check (`AuditHistoryCheck`) of the audit log: against a database, or
        /// between two archives.
        public var auditHistory = true
        /// With `rows`: the archive's side of changed rows kept at a time (COPY text); more changed
        /// rows than fit are shown in further rounds, each reading both sides again.
        var changedBytesPerRound = 4 << 20
        /// With `rows`: the archive's rows held at a time (16 bytes each, 4 MiB); a bigger table is
        /// matched in partitions of its key hashes, each reading both sides again.
        var rowsPerPartition = 1 << 18
        public init() {}
    }

    /// One table's verdict.
    public struct TableResult: Codable, Sendable, Equatable {
        public enum Status: String, Codable, Sendable {
            case equal
            case different
            case columnsDiffer = "columns_differ"
            case onlyInArchive = "only_in_archive"
            case onlyInOther = "only_in_other"
        }
        public var table: String
        public var status: Status
        public var archiveRows: Int?
        public var otherRows: Int?
        public var archiveFingerprint: String?
        public var otherFingerprint: String?
        /// With `rows`: the primary key the rows were matched by (empty: as multisets).
        public var keyColumns: [String]?
        public var added: Int?
        public var removed: Int?
        public var changed: Int?
        public var columnsInArchive: [String]?
        public var columnsInOther: [String]?
        /// With `rows`: the table's columns in order (the rows' values are keyed by them).
        public var columns: [String]?

        // Spelled out: a key strategy would also rename the columns in `RowChange`'s values.
        enum CodingKeys: String, CodingKey {
            case table, status, added, removed, changed, columns
            case archiveRows = "archive_rows", otherRows = "other_rows", archiveFingerprint = "archive_fingerprint"
            case otherFingerprint = "other_fingerprint", keyColumns = "key_columns"
            case columnsInArchive = "columns_in_archive", columnsInOther = "columns_in_other"
        }
    }

    /// One row that differs: its values (COPY text decoded; nil is NULL) by column.
    public struct RowChange: Codable, Sendable, Equatable {
        public enum Kind: String, Codable, Sendable { case added, removed, changed }
        public var table: String
        public var change: Kind
        /// The primary key's values (absent for tables compared as multisets).
        public var key: [String: String?]?
        /// The archive's row (removed, changed).
        public var before: [String: String?]?
        /// The other side's row (added, changed).
        public var after: [String: String?]?
    }

    public enum Event {
        case table(TableResult)
        case row(RowChange)
        case tableEnd(TableResult)
        /// Before the tables: the audit history check, when the archive's audit log was compared.
        case auditHistory(AuditHistoryCheck.Result)
    }

    let archive: ArchiveReader
    let other: Other
    let options: Options

    public init(archive: ArchiveReader, other: Other, options: Options) {
        self.archive = archive
        self.other = other
        self.options = options
    }

    /// Compares and hands each table's result to `sink` (with `rows`, for a table that differs, with
    /// the counts of its rows added, removed and changed, and then those rows), then `.tableEnd`;
    /// true when every compared table is equal.
    public func run(sink: (Event) throws -> Void) throws -> Bool {
        let manifest = archive.manifest
        let selected = try selectedTables(manifest)
        var results: [TableResult] = []
        var session: LiveSession?
        if case .database(let settings) = other { session = try LiveSession(settings) }
        defer { session?.close() }
        switch other {
        case .archive(let second):
            let theirs = Dictionary(second.manifest.tables.map { ($0.qualifiedName, $0) }, uniquingKeysWith: { a, _ in a })
            for table in selected {
                guard let their = theirs[table.qualifiedName] else {
                    results.append(TableResult(table: table.qualifiedName, status: .onlyInArchive, archiveRows: table.rows, archiveFingerprint: table.fingerprint))
                    continue
                }
                results.append(Self.compare(table, columns: their.columns, rows: their.rows, fingerprint: their.fingerprint))
            }
            if options.tables.isEmpty {
                let ours = Set(manifest.tables.map(\.qualifiedName))
                for their in second.manifest.tables where !ours.contains(their.qualifiedName) {
                    results.append(TableResult(table: their.qualifiedName, status: .onlyInOther, otherRows: their.rows, otherFingerprint: their.fingerprint))
                }
            }
        case .database:
            results = try compareWithDatabase(selected, session: session!)
        }
        results.sort { $0.table < $1.table }
        let tables = Dictionary(manifest.tables.map { ($0.qualifiedName, $0) }, uniquingKeysWith: { a, _ in a })
        var equal = true
        // The audit history first: whether it held is the first thing said (a script reads one field).
        if options.auditHistory, let history = try auditHistory(manifest, results: results, session: session) {
            try sink(.auditHistory(history))
            if !history.ok { equal = false }
        }
        for var result in results {
            if options.rows, result.status == .different, let table = tables[result.table] {
                // Its `.table` event comes with the counts of added, removed and changed rows.
                try compareRows(table, result: &result, session: session, sink: sink)
            } else {
                try sink(.table(result))
            }
            try sink(.tableEnd(result))
            if result.status != .equal { equal = false }
        }
        return equal
    }

    /// The audit history check of the archive's audit log, when it was compared (equal or different,
    /// same columns): against the database, or between the two archives (the older one's events in
    /// the newer one). Equal by fingerprint, only the chain is looked at for gaps: the database's
    /// `chain_index` values (its rows are the archive's), or the archive's own between two archives.
    func auditHistory(_ manifest: ArchiveManifest, results: [TableResult], session: LiveSession?) throws -> AuditHistoryCheck.Result? {
        guard let audit = AuditHistoryCheck.auditTable(manifest), let compared = results.first(where: { $0.table == audit.qualifiedName }),
              [.equal, .different].contains(compared.status) else { return nil }
        switch other {
        case .database:
            return try AuditHistoryCheck.check(self, table: audit, connection: session!.connection, equal: compared.status == .equal)
        case .archive(let second):
            return try AuditHistoryCheck.check(self, table: audit, second: second, equal: compared.status == .equal)
        }
    }

    /// Whether `first` was taken before `second` (by the manifests' times; the first when the same).
    static func isOlder(_ first: ArchiveManifest, than second: ArchiveManifest) -> Bool {
        let formatter = ISO8601DateFormatter.withFractions
        if let a = formatter.date(from: first.createdAt), let b = formatter.date(from: second.createdAt) { return a <= b }
        return first.createdAt <= second.createdAt
    }

    /// The manifest's tables `options.tables` names (all when it names none), each looked up as
    /// extract and restore look up theirs (`TableExtractor.table(named:in:)`: also quoted, or bare).
    func selectedTables(_ manifest: ArchiveManifest) throws -> [ArchiveManifest.Table] {
        guard !options.tables.isEmpty else { return manifest.tables }
        var chosen: [ArchiveManifest.Table] = []
        for name in options.tables {
            let table = try TableExtractor.table(named: name, in: archive)
            if !chosen.contains(where: { $0.qualifiedName == table.qualifiedName }) { chosen.append(table) }
        }
        return chosen
    }

    static func compare(_ table: ArchiveManifest.Table, columns: [String], rows: Int, fingerprint: String) -> TableResult {
        var result = TableResult(table: table.qualifiedName, status: .equal, archiveRows: table.rows, otherRows: rows,
                                 archiveFingerprint: table.fingerprint, otherFingerprint: fingerprint)
        if columns != table.columns {
            result.status = .columnsDiffer
            result.columnsInArchive = table.columns
            result.columnsInOther = columns
        } else if rows != table.rows || fingerprint != table.fingerprint {
            result.status = .different
        }
        return result
    }

    // MARK: - The database side

    struct LiveTable {
        var schema: String
        var name: String
        var columns: [String]
        var qualifiedName: String { "\(schema).\(name)" }
    }

    /// The tables a backup of the database would dump, with their columns (as `BackupCatalog` reads them).
    static func liveTables(_ connection: Connection) throws -> [String: LiveTable] {
        let catalog = try BackupCatalog.read(connection)
        return Dictionary(catalog.tables.map { ($0.schema + "." + $0.name, LiveTable(schema: $0.schema, name: $0.name, columns: $0.columns)) },
                          uniquingKeysWith: { a, _ in a })
    }

    /// The database side of a comparison: one connection in a REPEATABLE READ, READ ONLY
    /// transaction whose snapshot every other connection joins, so that everything diff reads of the
    /// database (every table's scan, the audit history, the rows of `rows`) is of one moment, as
    /// pg_dump -j reads it.
    final class LiveSession: @unchecked Sendable {
        let settings: ConnectionSettings
        /// The snapshot's exporter (with the dump's session settings), for the catalog and the reads
        /// done on one connection.
        let connection: Connection
        let snapshot: String

        init(_ settings: ConnectionSettings) throws {
            self.settings = settings
            connection = try settings.open(.verify)
            try LiveFingerprint.prepare(connection)
            snapshot = try LiveFingerprint.exportSnapshot(connection)
        }

        /// Another connection, with the dump's session settings, in the snapshot.
        func open() throws -> Connection {
            let connection = try settings.open(.verify)
            try LiveFingerprint.prepare(connection)
            try LiveFingerprint.join(connection, snapshot: snapshot)
            return connection
        }

        func close() { _ = try? connection.execute("COMMIT") }
    }

    /// Every selected table the database holds with the archive's columns is read over `jobs`
    /// connections in `session`'s snapshot, a big one split into block ranges so that every
    /// connection shares it (`LiveFingerprint.pieces`, as verify and drill read); its rows are
    /// hashed as they stream in, only sums and counts kept.
    func compareWithDatabase(_ selected: [ArchiveManifest.Table], session: LiveSession) throws -> [TableResult] {
        let connection = session.connection
        let manifest = archive.manifest
        let live = try Self.liveTables(connection)
        let conditions = try LiveFingerprint.conditions(manifest, connection: connection)
        let indexes = Dictionary(manifest.tables.enumerated().map { ($1.qualifiedName, $0) }, uniquingKeysWith: { a, _ in a })
        var results: [TableResult] = []
        // Manifest index → its result's position.
        var scans: [Int: Int] = [:]
        for table in selected {
            guard let own = live[table.qualifiedName] else {
                results.append(TableResult(table: table.qualifiedName, status: .onlyInArchive, archiveRows: table.rows, archiveFingerprint: table.fingerprint))
                continue
            }
            if own.columns != table.columns {
                var result = Self.compare(table, columns: own.columns, rows: -1, fingerprint: "")
                result.otherRows = nil
                result.otherFingerprint = nil
                results.append(result)
                continue
            }
            if let index = indexes[table.qualifiedName] { scans[index] = results.count }
            results.append(TableResult(table: table.qualifiedName, status: .equal, archiveRows: table.rows, archiveFingerprint: table.fingerprint))
        }
        let jobs = max(1, options.jobs)
        let blocks = try LiveFingerprint.blocks(manifest, connection: connection, only: Set(scans.keys))
        let pieces = LiveFingerprint.pieces(manifest, blocks: blocks, parts: jobs * 2).filter { scans[$0.table] != nil }
        let totals = TableTotals(tables: manifest.tables.count)
        try LiveFingerprint.scan(pieces, of: manifest, conditions: conditions, jobs: jobs, totals: totals, connect: session.open)
        for (index, slot) in scans {
            let (rows, sum) = totals.total(index)
            let table = manifest.tables[index]
            results[slot] = Self.compare(table, columns: table.columns, rows: rows, fingerprint: ArchiveManifest.fingerprintText(sum))
        }
        if options.tables.isEmpty {
            let ours = Set(manifest.tables.map(\.qualifiedName))
            for (name, table) in live where !ours.contains(name) {
                let count = try connection.query("SELECT count(*)::text FROM ONLY \(SQL.qualified(table.schema, table.name))").scalar.flatMap { Int($0) }
                results.append(TableResult(table: name, status: .onlyInOther, otherRows: count))
            }
        }
        return results
    }

    /// The primary key's columns of a live table (in key order), or empty when it has none.
    static func primaryKey(_ connection: Connection, schema: String, name: String) throws -> [String] {
        try connection.query("""
            SELECT a.attname FROM pg_catalog.pg_index i
            CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, position)
            JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
            WHERE i.indrelid = to_regclass($1) AND i.indisprimary
            ORDER BY k.position
            """, [SQL.qualified(schema, name)]).rows.compactMap { $0[0] }
    }

    // MARK: - Rows

    /// Each row of `statement` (a COPY ... TO STDOUT) handed to `body`; the first error `body`
    /// throws ends the read and is thrown once the stream is done.
    static func copyRows(_ connection: Connection, _ statement: String, _ body: (UnsafeRawBufferPointer) throws -> Void) throws {
        try connection.copyOut(statement) { stream in
            var failure: Error?
            while try stream.withNextRow({ row in
                guard failure == nil else { return }
                do { try body(row) } catch { failure = error }
            }) {}
            if let failure { throw failure }
        }
    }

    /// Every row of `table` on one side, as COPY text lines (with their newline) in `body`.
    func forEachRow(archiveSide: Bool, _ table: ArchiveManifest.Table, connection: Connection?, filter: String?,
                    _ body: (UnsafeRawBufferPointer) throws -> Void) throws {
        if !archiveSide, let connection {
            try Self.copyRows(connection, DataChunk.copyOutStatement(schema: table.schema, name: table.name, columns: table.columns, filter: filter), body)
            return
        }
        let reader: ArchiveReader
        let source: ArchiveManifest.Table
        if archiveSide {
            (reader, source) = (archive, table)
        } else if case .archive(let second) = other, let their = second.manifest.tables.first(where: { $0.qualifiedName == table.qualifiedName }) {
            (reader, source) = (second, their)
        } else {
            return
        }
        let members = source.chunks.compactMap { index in reader.manifest.members.first { $0.index == index } }.sorted { $0.offset < $1.offset }
        let decompressor = try MemberDecompressor(codec: reader.codec)
        let header = Array(DataChunk.copyHeader(schema: source.schema, name: source.name, columns: source.columns).utf8)
        // One text buffer for every member (not a fresh one each).
        var text: [UInt8] = []
        // forEachMember returns when the read has ended: the closure does not outlive this call.
        try withoutActuallyEscaping(body) { body in try reader.forEachMember(members) { member, bytes in
            try decompressor.decompress(bytes[...], uncompressedSize: member.size, into: &text)
            guard text.count >= header.count + DataChunk.terminator.count, Array(text[0..<header.count]) == header else {
                throw ToolError(.archiveCorrupt, "\(reader.path): member \(member.index) of table \(source.qualifiedName) does not start with its COPY line",
                                fix: "Run rack-gateway-db verify on it; use an archive that verifies.")
            }
            try text.withUnsafeBytes { raw in
                let base = raw.baseAddress!
                var start = header.count
                let end = raw.count - DataChunk.terminator.count
                while start < end {
                    guard let hit = memchr(base + start, 0x0A, end - start) else { break }
                    let lineEnd = base.distance(to: UnsafeRawPointer(hit))
                    try body(UnsafeRawBufferPointer(start: base + start, count: lineEnd + 1 - start))
                    start = lineEnd + 1
                }
            }
            return true
        } }
    }

    /// The rows of a table that differs: the archive's (key hash, row hash) pairs sorted, the other
    /// side's rows matched against them (per partition of the key hashes), then each side read once
    /// more for the rows to show (more rounds for many changed rows).
    func compareRows(_ table: ArchiveManifest.Table, result: inout TableResult, session: LiveSession?, sink: (Event) throws -> Void) throws {
        var connection: Connection?
        var filter: String?
        var keyColumns: [String] = []
        if let opened = session?.connection {
            connection = opened
            keyColumns = try Self.primaryKey(opened, schema: table.schema, name: table.name)
            if table.filter != nil, let index = archive.manifest.tables.firstIndex(of: table) {
                filter = try LiveFingerprint.conditions(archive.manifest, connection: opened)[index]
            }
        }
        let keyFields = keyColumns.compactMap { table.columns.firstIndex(of: $0) }
        if keyFields.count != keyColumns.count { keyColumns = [] }
        let keyed = !keyColumns.isEmpty
        func hashes(_ row: UnsafeRawBufferPointer) -> (key: UInt64, row: UInt64) {
            let rowHash = DataChunk.rowHash(row)
            return (keyed ? Self.keyHash(row, fields: keyFields) : rowHash, rowHash)
        }

        // Passes 1 and 2 per partition of the key hashes, so that at most `options.rowsPerPartition`
        // archive rows are held at a time: the archive's rows, 16 bytes each, then the other side's
        // rows matched against them. What differs (by key hash) is kept across the partitions.
        var added = KeyList(), changed = KeyList(), removed = KeyList()
        let partitions = max(1, (table.rows + options.rowsPerPartition - 1) / options.rowsPerPartition)
        for partition in 0..<partitions {
            func mine(_ key: UInt64) -> Bool { partitions == 1 || Int(key % UInt64(partitions)) == partition }
            var entries: [Entry] = []
            // The share of one partition, and a little over (the hashes spread it only about evenly).
            let share = table.rows / partitions
            entries.reserveCapacity(partitions == 1 ? table.rows : share + share / 16 + 64)
            try forEachRow(archiveSide: true, table, connection: nil, filter: nil) { row in
                let (key, hash) = hashes(row)
                if mine(key) { entries.append(Entry(key: key, row: hash)) }
            }
            Self.heapSort(&entries) { $0.key }
            var matched = BitSet(count: entries.count)
            try forEachRow(archiveSide: false, table, connection: connection, filter: filter) { row in
                let (key, hash) = hashes(row)
                guard mine(key) else { return }
                var low = 0, high = entries.count
                while low < high {
                    let middle = (low + high) / 2
                    if entries[middle].key < key { low = middle + 1 } else { high = middle }
                }
                var firstFree: Int?
                var index = low
                while index < entries.count, entries[index].key == key {
                    if !matched[index] {
                        if entries[index].row == hash {
                            matched[index] = true
                            return
                        }
                        if firstFree == nil { firstFree = index }
                    }
                    index += 1
                }
                if keyed, let free = firstFree {
                    matched[free] = true
                    changed.append(key)
                } else {
                    added.append(key)
                }
            }
            for (index, entry) in entries.enumerated() where !matched[index] { removed.append(entry.key) }
        }
        added.seal()
        changed.seal()
        removed.seal()
        result.keyColumns = keyColumns
        result.columns = table.columns
        result.added = added.count
        result.removed = removed.count
        result.changed = changed.count
        if result.added == 0 && result.removed == 0 && result.changed == 0 {
            // Same rows, different fingerprints: only a hash collision could do it (a database's
            // reads are all of one snapshot).
            result.status = .equal
        }
        try sink(.table(result))

        let limit = options.limit ?? Int.max
        let name = table.qualifiedName
        var shownRemoved = 0, shownAdded = 0, shownChanged = 0
        // Passes 3 and 4 in rounds: the archive's side of removed rows (shown as they come) and of
        // changed rows (their COPY text kept, about `options.changedBytesPerRound` of it a round),
        // then the other side's added rows and the changed rows' new side. Every round but the
        // first reads both sides again for the changed rows not shown yet.
        var firstRound = true
        repeat {
            var before = LineStore()
            if (firstRound && removed.count > 0) || changed.remaining > 0 {
                try forEachRow(archiveSide: true, table, connection: nil, filter: nil) { row in
                    let (key, _) = hashes(row)
                    if firstRound, removed.take(key) {
                        let rowHash = DataChunk.rowHash(row)
                        // Keyed: the one row of that key; as multisets: a row of that hash.
                        guard keyed || rowHash == key else { return }
                        if shownRemoved < limit {
                            shownRemoved += 1
                            let values = Self.values(row, columns: table.columns)
                            try sink(.row(RowChange(table: name, change: .removed, key: keyed ? Self.key(values, keyColumns) : nil, before: values)))
                        }
                    } else if changed.contains(key), shownChanged + before.count < limit, before.isEmpty || before.bytes < options.changedBytesPerRound {
                        before.add(key, row)
                    }
                }
            }
            before.seal()
            if (firstRound && added.count > 0) || !before.isEmpty {
                try forEachRow(archiveSide: false, table, connection: connection, filter: filter) { row in
                    let (key, _) = hashes(row)
                    if firstRound, shownAdded < limit, added.take(key) {
                        shownAdded += 1
                        let values = Self.values(row, columns: table.columns)
                        try sink(.row(RowChange(table: name, change: .added, key: keyed ? Self.key(values, keyColumns) : nil, after: values)))
                    } else if let old = before.take(key, columns: table.columns), shownChanged < limit {
                        let values = Self.values(row, columns: table.columns)
                        guard values != old else { return }
                        shownChanged += 1
                        try sink(.row(RowChange(table: name, change: .changed, key: Self.key(values, keyColumns), before: old, after: values)))
                    }
                }
            }
            // Every row kept this round is done with (shown, or not found again); none kept: no more.
            if before.isEmpty { break }
            for key in before.keys { _ = changed.take(key) }
            firstRound = false
        } while changed.remaining > 0 && shownChanged < limit
    }

    /// COPY text lines by key hash, packed into 1 MiB blocks (not one allocation per line), found by
    /// a sorted index of 16 bytes a line (`seal` after the last `add`).
    struct LineStore {
        private var blocks: [[UInt8]] = []
        /// Key hash and block << 32 | offset of the line (its length first, 4 bytes; -1: taken).
        private var index: [(key: UInt64, at: Int)] = []
        private(set) var bytes = 0
        var count: Int { index.count }
        var isEmpty: Bool { index.isEmpty }
        var keys: [UInt64] { index.map(\.key) }

        /// A line for `key` (were two lines added for one key hash, a collision, one is found).
        mutating func add(_ key: UInt64, _ line: UnsafeRawBufferPointer) {
            let size = 4 + line.count
            if blocks.isEmpty || blocks[blocks.count - 1].count + size > blocks[blocks.count - 1].capacity {
                var block: [UInt8] = []
                block.reserveCapacity(max(1 << 20, size))
                blocks.append(block)
            }
            let last = blocks.count - 1
            index.append((key, last << 32 | blocks[last].count))
            withUnsafeBytes(of: UInt32(line.count).littleEndian) { blocks[last].append(contentsOf: $0) }
            blocks[last].append(contentsOf: line)
            bytes += size
        }

        mutating func seal() { ArchiveDiff.heapSort(&index) { $0.key } }

        /// The line of `key` decoded into values by column (`ArchiveDiff.values`), once: a
        /// second call for the same key returns nil (the line stays in its block until the end).
        mutating func take(_ key: UInt64, columns: [String]) -> [String: String?]? {
            var low = 0, high = index.count
            while low < high {
                let middle = (low + high) / 2
                if index[middle].key < key { low = middle + 1 } else { high = middle }
            }
            guard low < index.count, index[low].key == key, index[low].at >= 0 else { return nil }
            let packed = index[low].at
            index[low].at = -1
            let block = packed >> 32, offset = packed & 0xFFFF_FFFF
            return blocks[block].withUnsafeBytes { raw in
                let length = Int(UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: offset, as: UInt32.self)))
                return ArchiveDiff.values(UnsafeRawBufferPointer(rebasing: raw[(offset + 4)..<(offset + 4 + length)]), columns: columns)
            }
        }
    }

    /// Key hashes of the rows that differ (repeats allowed: rows compared as multisets), 8 bytes and
    /// a bit each: appended, sorted once (`seal`), then each taken at most once.
    struct KeyList {
        private var keys: [UInt64] = []
        private var taken = BitSet(count: 0)
        private(set) var remaining = 0
        var count: Int { keys.count }

        mutating func append(_ key: UInt64) { keys.append(key) }

        mutating func seal() {
            ArchiveDiff.heapSort(&keys) { $0 }
            taken = BitSet(count: keys.count)
            remaining = keys.count
        }

        private func untaken(_ key: UInt64) -> Int? {
            var low = 0, high = keys.count
            while low < high {
                let middle = (low + high) / 2
                if keys[middle] < key { low = middle + 1 } else { high = middle }
            }
            while low < keys.count, keys[low] == key {
                if !taken[low] { return low }
                low += 1
            }
            return nil
        }

        func contains(_ key: UInt64) -> Bool { untaken(key) != nil }

        /// Takes one of `key`'s entries; false when none is left.
        mutating func take(_ key: UInt64) -> Bool {
            guard let index = untaken(key) else { return false }
            taken[index] = true
            remaining -= 1
            return true
        }
    }

    /// Sorts by `key` in place (heapsort: no scratch, where the standard sort's would be up to half
    /// as much again; the order of equal keys does not matter here).
    static func heapSort<T>(_ items: inout [T], by key: (T) -> UInt64) {
        items.withUnsafeMutableBufferPointer { buffer in
            let count = buffer.count
            guard count > 1 else { return }
            func siftDown(_ start: Int, _ end: Int) {
                var root = start
                while true {
                    var child = 2 * root + 1
                    guard child < end else { return }
                    if child + 1 < end, key(buffer[child]) < key(buffer[child + 1]) { child += 1 }
                    guard key(buffer[root]) < key(buffer[child]) else { return }
                    buffer.swapAt(root, child)
                    root = child
                }
            }
            for start in stride(from: count / 2 - 1, through: 0, by: -1) { siftDown(start, count) }
            for end in stride(from: count - 1, to: 0, by: -1) {
                buffer.swapAt(0, end)
                siftDown(0, end)
            }
        }
    }

    struct Entry {
        var key: UInt64
        var row: UInt64
    }

    /// One bit per archive row: matched by a row of the other side.
    struct BitSet {
        private var words: [UInt64]
        init(count: Int) { words = [UInt64](repeating: 0, count: (count + 63) / 64) }
        subscript(index: Int) -> Bool {
            get { words[index >> 6] & (1 << UInt64(index & 63)) != 0 }
            set {
                if newValue { words[index >> 6] |= 1 << UInt64(index & 63) } else { words[index >> 6] &= ~(1 << UInt64(index & 63)) }
            }
        }
    }

    /// XXH64 of the key's fields of a COPY text line (their text as COPY writes it, tab-separated).
    static func keyHash(_ row: UnsafeRawBufferPointer, fields: [Int]) -> UInt64 {
        // One key column (the usual primary key): its bytes hashed where they lie, nothing allocated.
        if fields.count == 1, let range = field(row, fields[0]) { return XXH64.hash(UnsafeRawBufferPointer(rebasing: row[range])) }
        let all = splitFields(row)
        var bytes: [UInt8] = []
        for (position, field) in fields.enumerated() where field < all.count {
            if position > 0 { bytes.append(0x09) }
            bytes.append(contentsOf: UnsafeRawBufferPointer(rebasing: row[all[field]]))
        }
        return bytes.withUnsafeBytes { XXH64.hash($0) }
    }

    /// The byte range of field `number` of a COPY text line (newline excluded), or nil when the line
    /// has fewer fields.
    static func field(_ row: UnsafeRawBufferPointer, _ number: Int) -> Range<Int>? {
        guard let base = row.baseAddress else { return nil }
        var end = row.count
        if end > 0, row[end - 1] == 0x0A { end -= 1 }
        var start = 0
        for _ in 0..<number {
            guard let hit = memchr(base + start, 0x09, end - start) else { return nil }
            start = base.distance(to: UnsafeRawPointer(hit)) + 1
        }
        let stop = memchr(base + start, 0x09, end - start).map { base.distance(to: UnsafeRawPointer($0)) } ?? end
        return start..<stop
    }

    /// The byte ranges of a COPY text line's fields (newline excluded); a value's own tabs are
    /// written as `\t`, so every tab separates two fields.
    static func splitFields(_ row: UnsafeRawBufferPointer) -> [Range<Int>] {
        var end = row.count
        if end > 0, row[end - 1] == 0x0A { end -= 1 }
        var ranges: [Range<Int>] = []
        var start = 0
        for index in 0..<end where row[index] == 0x09 {
            ranges.append(start..<index)
            start = index + 1
        }
        ranges.append(start..<end)
        return ranges
    }

    /// A COPY text line as column → value (escapes decoded; `\N` is nil).
    static func values(_ row: UnsafeRawBufferPointer, columns: [String]) -> [String: String?] {
        var values: [String: String?] = [:]
        for (index, range) in splitFields(row).enumerated() where index < columns.count {
            values[columns[index]] = decode(Array(UnsafeRawBufferPointer(rebasing: row[range])))
        }
        return values
    }

    static func key(_ values: [String: String?], _ columns: [String]) -> [String: String?] {
        var key: [String: String?] = [:]
        for column in columns { key[column] = values[column] ?? nil }
        return key
    }

    /// One field of COPY text: `\N` is NULL; backslash escapes resolved as extract resolves them
    /// (`CopyRowConverter.unescape`, the one decoder of COPY text).
    static func decode(_ field: [UInt8]) -> String? {
        CopyRowConverter.unescape(field).map { String(decoding: $0, as: UTF8.self) }
    }
}
