import RGWCompression
/// The order of an archive's members (format v1, docs/archive-format.md): header, pre-data, the
/// data members of every table, the large objects, the sequences, post-data; then the manifest and
/// the trailer, which `ArchiveWriter.finish` appends. A psql reading the file as one script
/// (`gunzip -c | psql`, `zstd -dc | psql`) runs them in this order, which is what makes the file a valid restore.
public enum ArchiveLayout {
    public typealias Kind = ArchiveManifest.MemberKind

    /// Recorded members in file order; data and large-object members may repeat.
    public static let order: [Kind] = [.header, .preData, .data, .largeObjects, .sequences, .postData]
    static let repeatable: Set<Kind> = [.data, .largeObjects]

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
        for sequence in manifest.sequences where Int64(sequence.value) == nil || sequence.value.hasPrefix("+") {
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
        \(versionComment)\(propertiesComment)
        """
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
