import Foundation
import RGWCompression

/// The text of one data member: `COPY "s"."t" ("c", ...) FROM stdin;`, rows, `\.`.
enum DataChunk {
    static func copyHeader(schema: String, name: String, columns: [String]) -> String {
        copy(schema, name, columns, "FROM stdin;\n")
    }

    /// The statement that loads a chunk's rows (its header without `;` and newline).
    static func copyInStatement(schema: String, name: String, columns: [String]) -> String {
        copy(schema, name, columns, "FROM STDIN")
    }

    /// The statement that reads a table's rows as the archive holds them; with `blocks`, only the
    /// rows stored in that range of the table's blocks (a TID range scan; the same COPY text).
    /// With `filter` (an extension configuration table's condition, `WHERE ...` or empty), only the
    /// rows pg_dump would dump: the user's, not the extension's own.
    static func copyOutStatement(schema: String, name: String, columns: [String], blocks: Range<Int>? = nil, filter: String? = nil) -> String {
        if let filter {
            let list = columns.map(SQL.identifier).joined(separator: ", ")
            return "COPY (SELECT \(list) FROM ONLY \(SQL.qualified(schema, name)) \(filter)) TO STDOUT"
        }
        guard let blocks else { return copy(schema, name, columns, "TO STDOUT") }
        var condition = "ctid >= '(\(blocks.lowerBound),0)'::pg_catalog.tid"
        if blocks.upperBound != Int.max { condition += " AND ctid < '(\(blocks.upperBound),0)'::pg_catalog.tid" }
        let list = columns.map(SQL.identifier).joined(separator: ", ")
        return "COPY (SELECT \(list) FROM ONLY \(SQL.qualified(schema, name)) WHERE \(condition)) TO STDOUT"
    }

    /// A table with no column COPY can carry (none at all, all dropped, only generated ones) still has
    /// rows: `COPY "s"."t" FROM stdin;` with one empty line each, as pg_dump writes it.
    private static func copy(_ schema: String, _ name: String, _ columns: [String], _ direction: String) -> String {
        guard !columns.isEmpty else { return "COPY \(SQL.qualified(schema, name)) \(direction)" }
        return "COPY \(SQL.qualified(schema, name)) (\(columns.map(SQL.identifier).joined(separator: ", "))) \(direction)"
    }

    /// A row's share of its table's fingerprint: XXH64 (seed 0) of the row's COPY text line, given
    /// with its newline as libpq hands it over.
    @inline(__always)
    static func rowHash(_ rowWithNewline: UnsafeRawBufferPointer) -> UInt64 {
        XXH64.hash(UnsafeRawBufferPointer(rebasing: rowWithNewline.dropLast()))
    }

    static let terminator: [UInt8] = Array("\\.\n".utf8)

    /// Count the rows and sum their XXH64 (each line without its newline). A line that starts with
    /// `\.` is refused: it is COPY's end-of-data marker, which ends the load there (the server takes
    /// none of the rows after it); pg's text COPY never writes it as a row (a value's backslash is
    /// doubled).
    static func scan(_ text: [UInt8], expectedHeader: String) -> Result<(Int, UInt64), ScanError> {
        let header = Array(expectedHeader.utf8)
        guard text.count >= header.count + terminator.count, Array(text[0..<header.count]) == header else {
            return .failure(ScanError("does not start with \(expectedHeader.dropLast())"))
        }
        guard Array(text.suffix(terminator.count)) == terminator else {
            return .failure(ScanError("does not end with the COPY terminator \\."))
        }
        return text.withUnsafeBytes { raw -> Result<(Int, UInt64), ScanError> in
            let base = raw.baseAddress!
            var start = header.count
            let end = raw.count - terminator.count
            var count = 0
            var sum: UInt64 = 0
            while start < end {
                guard let hit = memchr(base + start, 0x0A, end - start) else {
                    return .failure(ScanError("the last row has no newline"))
                }
                let lineEnd = base.distance(to: UnsafeRawPointer(hit))
                if lineEnd - start >= 2 && raw[start] == 0x5C && raw[start + 1] == 0x2E {
                    return .failure(ScanError("row \(count + 1) is the COPY end-of-data marker \\. (the server would stop loading there; pg_dump never writes it as a row)"))
                }
                sum &+= rowHash(UnsafeRawBufferPointer(start: base + start, count: lineEnd + 1 - start))
                count += 1
                start = lineEnd + 1
            }
            return .success((count, sum))
        }
    }

    struct ScanError: Error, CustomStringConvertible {
        var description: String
        init(_ text: String) { description = text }
    }
}
