import RGWCompression
/// The order of an archive's members (format v1, docs/archive-format.md): header, pre-data, the
/// data members of every table, the large objects, the sequences, post-data; then the manifest and
/// the trailer, which `ArchiveWriter.finish` appends. Format v2 adds the statistics member after post-data. A psql reading the file as one script
/// (`gunzip -c | psql`, `zstd -dc | psql`) runs them in this order, which is what makes the file a valid restore.
public enum ArchiveLayout {
    public typealias Kind = ArchiveManifest.MemberKind

    /// Recorded members in file order; data and large-object members may repeat.
    public static let order: [Kind] = [.header, .preData, .data, .largeObjects, .sequences, .postData, .statistics]
    static let repeatable: Set<Kind> = [.data, .largeObjects]

    /// Why `text` is not a statistics member as the backup writes it (`ArchiveStatistics.parse`), or nil.
    public static func statisticsProblem(_ text: String) -> String? {
        if case .failure(let problem) = ArchiveStatistics.parse(text) { return problem.description }
        return nil
    }

    /// Whether a member of kind `next` may come after one of kind `previous` (nil: the first member).
    public static func mayFollow(_ previous: Kind?, with next: Kind) -> Bool {
        guard let previous else { return next == .header }
        let from = order.firstIndex(of: previous)!, to = order.firstIndex(of: next)!
        if from == to { return repeatable.contains(next) }
        // Kinds after pre-data that may be absent (a database without rows or large objects).
        return to > from && order[(from + 1)..<to].allSatisfy { repeatable.contains($0) }
    }

    /// The sequences member's text: one `setval` per sequence, with the value and `is_called` the
    /// snapshot saw.
    public static func sequencesText(_ sequences: [ArchiveManifest.Sequence]) -> String {
        var text = "\n-- Sequences\n"
        for sequence in sequences {
            text += "SELECT pg_catalog.setval(\(SQL.literal(SQL.qualified(sequence.schema, sequence.name)))"
                + ", \(sequence.value), \(sequence.isCalled));\n"
        }
        return text
    }

    /// Why `text` is not a header member as the backup writes it, or nil: the archive's first line,
    /// then only `--` comment lines and blank lines, ending with a newline, so that psql running the
    /// file runs nothing of it (psql ends a comment at a carriage return too, so that splits lines).
    public static func headerProblem(_ text: String) -> String? {
        guard text.hasPrefix(ArchiveHeader.firstLinePrefix) else {
            return "the header does not start with \"\(ArchiveHeader.firstLinePrefix.trimmingCharacters(in: .whitespaces))\""
        }
        guard text.utf8.last == UInt8(ascii: "\n") else { return "the header does not end with a newline" }
        for (number, line) in text.utf8.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).enumerated() {
            for part in line.split(separator: UInt8(ascii: "\r"), omittingEmptySubsequences: false) where !part.isEmpty && !part.starts(with: "--".utf8) {
                return "line \(number + 1) of the header is not a comment (\(String(decoding: part.prefix(60), as: UTF8.self))): a header holds only -- lines"
            }
        }
        return nil
    }

    /// Why `text` is not the sequences member the manifest's sequences make (`sequencesText`), or
    /// nil: the tool sets the sequences from the manifest and psql runs the member, so the two must
    /// be the same; and every value must be a number (the member splices it into a statement).
    public static func sequencesProblem(_ text: String, manifest: ArchiveManifest) -> String? {
        for sequence in manifest.sequences where !isInteger(sequence.value) {
            return "the manifest's sequence \(sequence.schema).\(sequence.name) has value \"\(sequence.value.prefix(40))\", not a bigint"
        }
        guard text == sequencesText(manifest.sequences) else {
            return "the sequences member's statements differ from the manifest's \(manifest.sequences.count) sequences"
        }
        return nil
    }
}

/// The header member: comment lines saying what the file is, where it came from and how to
/// restore it with stock tools (roles to create first, the database's own properties to set after).
public struct ArchiveHeader: Sendable {
    /// How every archive's first line starts (followed by the format version).
    public static let firstLinePrefix = "-- rack-gateway-db archive format "

    public var toolVersion: String
    public var createdAt: String
    public var fileName: String
    public var database: String
    public var serverVersion: String
    public var serverMajor: Int
    public var pgDumpVersion: String
    public var pgDumpMajor: Int
    public var snapshot: String
    public var roles: [String]
    public var properties: DatabaseProperties
    public var codec: MemberCodec = .gzip
    /// The tables with data, for the one-table recipe: schema, name and the columns COPY carries.
    public var tables: [(schema: String, name: String, columns: [String])] = []

    /// How many tables the header lists a recipe for (a database of thousands of partitions would
    /// make the header longer than anyone reads).
    static let recipeTables = 200

    var fileDescription: String {
        codec == .gzip ? "A gzip file of gzip members" : "A zstd file of zstd frames"
    }

    public var text: String {
        """
        \(Self.firstLinePrefix)\(ArchiveManifest.currentFormatVersion)
        -- tool: rack-gateway-db \(toolVersion)
        -- created: \(createdAt)
        -- database: \(database)
        -- server: PostgreSQL \(serverVersion)
        -- pg_dump: \(pgDumpVersion)
        -- snapshot: \(snapshot)
        -- \(fileDescription) whose text is a psql script. Restore into an empty database with:
        --   \(stockSource) | psql -v ON_ERROR_STOP=1 --single-transaction "$DATABASE_URL"
        -- Roles it references (create them first, NOLOGIN will do): \(roles.isEmpty ? "none" : roles.joined(separator: ", "))
        \(versionComment)\(propertiesComment)\(tableRecipe)
        """
    }

    /// How to get one table's rows back with stock tools: every data member of a table is a block
    /// of its COPY line (always quoted: `COPY public.t` matches nothing), its rows and `\.`; the awk
    /// command keeps every block of the table, a psql script that loads its rows. One COPY line and
    /// one command per table, by name; a table whose name holds a line break would end the comment
    /// and is left out.
    var tableRecipe: String {
        let listed = tables.filter { table in !(table.schema + table.name).unicodeScalars.contains { $0 == "\n" || $0 == "\r" } }
            .sorted { ($0.schema, $0.name) < ($1.schema, $1.name) }
        guard !listed.isEmpty else { return "" }
        var lines = [
            "-- One table's rows with stock tools: they are in blocks, one per data member of the table (keep them all),",
            "-- each its COPY line, rows, and the line \\. that ends it. The COPY line always quotes the names, so",
            "-- awk '/^COPY public\\.api_tokens /' matches nothing. Per table, its COPY line and the command that prints",
            "-- every block of it: a psql script that loads the rows into the table of that name (to load them into",
            "-- another, change the name in its COPY lines with sed):",
        ]
        for table in listed.prefix(Self.recipeTables) {
            lines.append("--   " + DataChunk.copyHeader(schema: table.schema, name: table.name, columns: table.columns).dropLast())
            lines.append("--     \(stockSource) | " + Self.awkCommand(schema: table.schema, name: table.name))
        }
        if listed.count > Self.recipeTables {
            lines.append("-- (and \(listed.count - Self.recipeTables) more tables: the same command with the quoted COPY \"schema\".\"name\" of the table)")
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// `awk '/^COPY "s"\."t" /{p=1} p{print} p&&/^\\\.$/{p=0}'` for one table, as one shell word: the
    /// quoted names with the characters an extended regular expression (and awk's `/`) treats
    /// specially escaped, a `'` closed and reopened for the shell.
    static func awkCommand(schema: String, name: String) -> String {
        let special = Set("\\^$.[]|()*+?{}/")
        let pattern = ("COPY " + SQL.qualified(schema, name) + " ").map { special.contains($0) ? "\\\($0)" : String($0) }.joined()
        let program = "/^\(pattern)/{p=1} p{print} p&&/^\\\\\\.$/{p=0}"
        return "awk '" + program.replacingOccurrences(of: "'", with: "'\\''") + "'"
    }

    /// The stock command that prints the script: the decompressor, after `age -d` for an encrypted
    /// archive (whose plaintext this header is).
    var stockSource: String {
        ArchiveName.isEncrypted(fileName) ? "age -d -i KEY.txt \(fileName) | \(codec.stockDecompress)" : "\(codec.stockDecompress) \(fileName)"
    }

    /// Which servers the script loads into with stock tools.
    var versionComment: String {
        var text = "-- Loads into PostgreSQL \(serverMajor) or newer (the server it was dumped from is \(serverMajor)).\n"
        if pgDumpMajor >= 17 {
            text += "-- pg_dump \(pgDumpMajor) writes SET transaction_timeout, which servers before 17 reject; psql into such a server:\n"
            text += "--   \(codec.stockDecompress) FILE | sed '/^SET transaction_timeout = /d' | psql -v ON_ERROR_STOP=1 --single-transaction \"$DATABASE_URL\"\n"
        }
        return text
    }

    /// The database's own properties, for whoever restores with stock tools (the tool applies them
    /// itself when it creates the target).
    var propertiesComment: String {
        guard !properties.isEmpty else { return "" }
        let lines = properties.statements(database: database).map { "--   \($0.split(whereSeparator: \.isNewline).joined(separator: " "));" }
        return (["-- The source database's own properties (pg_dump leaves them out without --create); after a restore",
                 "-- with stock tools, run these against the new database (with its name):"] + lines).joined(separator: "\n") + "\n"
    }
}

extension ArchiveLayout {
    /// The fewest bytes a member of either codec takes (a zstd frame: magic, frame header and one
    /// block header); bounds how many members a file can hold.
    public static let minimumMemberLength = 8

    /// Everything about `manifest`'s numbers and structure that can be checked without reading a
    /// member, for the file it came from (`manifestOffset`: where its manifest member starts;
    /// `codec`: its members' codec): members in the documented order (one header, one pre-data,
    /// one sequences, post-data last), index by index, back to back from offset 0 up to the
    /// manifest, each size within what its bytes can inflate to; data members naming a table and
    /// listed in that table's chunk list (and nothing else listed there); tables' and large
    /// objects' numbers non-negative and within their members' text; the large-object summary
    /// present exactly when there are large-object members; sequence values integers. Every sum is
    /// overflow-checked. Empty when it holds; otherwise at most `limit` problems, the first first.
    /// (The header's and sequences members' text is checked where they are read: `headerProblem`,
    /// `sequencesProblem`.)
    /// `ArchiveReader` refuses an archive that fails it, so every layer receives only a manifest
    /// that passed.
    public static func structuralProblems(_ manifest: ArchiveManifest, manifestOffset: Int, codec: MemberCodec, limit: Int = 20) -> [String] {
        var problems: [String] = []
        func problem(_ text: String) { if problems.count < limit { problems.append(text) } }
        func describe(_ member: ArchiveManifest.Member) -> String { ArchiveVerifier.describe(member, in: manifest) }
        let members = manifest.members
        guard members.count <= max(0, manifestOffset) / minimumMemberLength else {
            return ["the manifest lists \(members.count) members, more than the \(manifestOffset) bytes before it can hold"]
        }
        var expected = 0
        var previous: Kind?
        var sizes = [Int](repeating: 0, count: manifest.tables.count)
        var listed = [[Int]](repeating: [], count: manifest.tables.count)
        var memberRows = [Int?](repeating: 0, count: manifest.tables.count)
        var largeObjectText = 0
        var largeObjectMembers = 0
        for (position, member) in members.enumerated() {
            if member.index != position { problem("manifest lists member \(member.index) in position \(position)") }
            if !mayFollow(previous, with: member.kind) {
                problem(previous.map { "\(describe(member)): a \(member.kind.rawValue) member may not follow a \($0.rawValue) member (the order is \(order.map(\.rawValue).joined(separator: ", ")))" }
                        ?? "member 0 is \(member.kind.rawValue), not the header")
            }
            previous = member.kind
            guard member.offset == expected else {
                problem("\(describe(member)) should start at offset \(expected): the chunk list leaves a gap or overlap there")
                return problems
            }
            let (end, overflow) = member.offset.addingReportingOverflow(member.length)
            guard member.length >= minimumMemberLength, !overflow, end <= manifestOffset else {
                problem("\(describe(member)): its length \(member.length) does not fit between offset \(member.offset) and the manifest at \(manifestOffset)")
                return problems
            }
            expected = end
            if member.size < 0 || member.size > codec.maximumSize(compressedLength: member.length) {
                problem("\(describe(member)): a size of \(member.size) bytes, which its \(member.length) compressed bytes cannot hold")
                continue
            }
            if let rows = member.rows, rows < 0 || rows > member.size {
                problem("\(describe(member)): \(rows) rows, which its \(member.size) bytes of text cannot hold")
            }
            switch member.kind {
            case .data:
                guard let table = member.table, (0..<manifest.tables.count).contains(table) else {
                    problem("\(describe(member)): a data member without a valid table")
                    continue
                }
                listed[table].append(member.index)
                sizes[table] = sizes[table].addingReportingOverflow(member.size).partialValue
                if let rows = member.rows, let sum = memberRows[table] { memberRows[table] = sum + rows } else { memberRows[table] = nil }
            case .largeObjects:
                largeObjectMembers += 1
                largeObjectText += member.size
            default:
                if let table = member.table { problem("\(describe(member)): a \(member.kind.rawValue) member naming table \(table)") }
            }
        }
        if expected != manifestOffset {
            problem("the members end at offset \(expected) but the manifest starts at \(manifestOffset): bytes not covered by the chunk list")
        }
        if let last = members.last?.kind, last != .postData, last != .statistics { problem("the last member is \(last.rawValue), not post-data") }
        if manifest.formatVersion < 2, let member = members.first(where: { $0.kind == .statistics }) {
            problem("\(describe(member)): a statistics member in an archive of format v\(manifest.formatVersion), which has none")
        }
        if members.isEmpty { problem("the manifest lists no members") }
        for (index, table) in manifest.tables.enumerated() {
            let name = "table \(table.qualifiedName)"
            if table.rows < 0 || table.bytes < 0 || table.rows > table.bytes {
                problem("\(name): \(table.rows) rows in \(table.bytes) bytes, which cannot be")
            } else if table.bytes > sizes[index] {
                problem("\(name): \(table.bytes) bytes of rows, more than its data members' \(sizes[index]) bytes of text")
            }
            if table.chunks != listed[index] {
                problem("\(name): chunk list \(table.chunks.prefix(20)) but its data members are \(listed[index].prefix(20))")
            }
            if let rows = memberRows[index], rows != table.rows, !listed[index].isEmpty {
                problem("\(name): \(table.rows) rows but its data members record \(rows)")
            }
        }
        switch (manifest.largeObjects, largeObjectMembers) {
        case (nil, 0): break
        case (nil, _): problem("\(largeObjectMembers) large-object members, but the manifest records no large objects")
        case (let summary?, _):
            if largeObjectMembers == 0, summary.bytes > 0 { problem("the manifest records large objects, but there are no large-object members") }
            // pg_dump's pre-data creates each one: `SELECT pg_catalog.lo_create('OID');` (36 bytes or more).
            let preDataText = manifest.members.filter { $0.kind == .preData }.reduce(0) { $0 &+ max(0, $1.size) }
            if summary.count > preDataText / 32 {
                problem("large objects: \(summary.count) objects, more than the pre-data's \(preDataText) bytes can create")
            }
            if summary.count < 0 || summary.bytes < 0 || summary.bytes > largeObjectText {
                problem("large objects: \(summary.count) objects of \(summary.bytes) bytes, which their members' \(largeObjectText) bytes of text cannot hold")
            }
        }
        for sequence in manifest.sequences where !isInteger(sequence.value) {
            problem("sequence \(sequence.schema).\(sequence.name): value \"\(sequence.value.prefix(40))\" is not an integer")
        }
        return problems
    }

    /// A bigint as `sequencesProblem` takes it (a sequence's value, spliced into `setval`).
    static func isInteger(_ text: String) -> Bool { Int64(text) != nil && !text.hasPrefix("+") }
}
