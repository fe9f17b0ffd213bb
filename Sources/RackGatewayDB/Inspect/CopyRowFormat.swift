import Foundation

/// How `extract` writes a table's rows. The archive holds them in COPY text format (one line a row,
/// tab-separated, `\N` for NULL, backslash escapes); each format is written from that text alone.
public enum ExtractFormat: String, Sendable, CaseIterable {
    /// CSV with a header row, byte for byte as psql's `\copy ... TO FILE CSV HEADER` writes it.
    case csv
    /// One JSON object per line, column name to value (`ColumnType` says how values map).
    case json
    /// The rows as the archive holds them: COPY text, which `\copy TABLE FROM FILE` loads.
    case copy
}

/// What JSON a column's values become, from the column's type as pg_dump wrote it in pre-data.
indirect enum ColumnType: Equatable, Sendable {
    /// smallint, integer, bigint, oid: a JSON number.
    case integer
    /// real, double precision, numeric: a JSON number, its digits as PostgreSQL wrote them (no
    /// rounding); NaN and the infinities, which JSON has no number for, a string.
    case number
    /// boolean: true or false.
    case boolean
    /// json and jsonb: the value itself.
    case json
    /// timestamp: an ISO 8601 string, as PostgreSQL's `to_json` writes it (`2024-01-02T03:04:05.5`;
    /// `infinity`, and ` BC` after a year before 1, as they are).
    case timestamp
    /// timestamptz: the same with its offset, UTC under the backup's settings (`...T03:04:05+00:00`).
    case timestamptz
    /// interval: an ISO 8601 duration, as PostgreSQL writes it under `IntervalStyle=iso_8601`
    /// (`P1Y2M3DT4H5M6.7S`, `P-1DT2H`, `PT0S`).
    case interval
    /// An array of one of these: a JSON array (nested for more dimensions), NULL elements null.
    case array(ColumnType)
    /// Anything else (text, date and time as ISO 8601 already, uuid, bytea as `\x` hex, ranges, ...):
    /// its text as a string.
    case text

    /// The type text pg_dump writes (`integer`, `numeric(10,2)`, `text[]`, `timestamp with time zone`).
    static func of(_ typeText: String) -> ColumnType {
        var type = typeText.trimmingCharacters(in: .whitespaces).lowercased()
        if type.hasPrefix("pg_catalog.") { type.removeFirst("pg_catalog.".count) }
        if type.hasSuffix("[]") {
            var element = type
            while element.hasSuffix("[]") { element.removeLast(2) }
            // box is the one built-in type whose array delimiter is not a comma.
            return element == "box" ? .text : .array(of(element))
        }
        switch type {
        case "smallint", "integer", "bigint", "oid", "int2", "int4", "int8": return .integer
        case "real", "double precision", "float4", "float8": return .number
        case "boolean", "bool": return .boolean
        case "json", "jsonb": return .json
        case "timestamptz": return .timestamptz
        default:
            if type.hasPrefix("numeric") { return .number }
            // With a precision, `timestamp(3) with time zone`; `interval day to second(3)`.
            if type.hasPrefix("timestamp") { return type.hasSuffix(" with time zone") ? .timestamptz : .timestamp }
            if type.hasPrefix("interval") { return .interval }
            return .text
        }
    }
}

/// Converts rows of COPY text into CSV or JSON lines, appending to an output buffer.
struct CopyRowConverter {
    let format: ExtractFormat
    let columns: [String]
    let types: [ColumnType]
    private let jsonKeys: [[UInt8]]
    private var fields: [Range<Int>] = []
    private var scratch: [UInt8] = []

    init(format: ExtractFormat, columns: [String], types: [ColumnType]) {
        self.format = format
        self.columns = columns
        self.types = types
        jsonKeys = columns.map { name in
            var key: [UInt8] = []
            Self.appendJSONString(Array(name.utf8)[...], to: &key)
            key.append(0x3A)
            return key
        }
    }

    /// The CSV header row (the column names, quoted where CSV needs it); empty for other formats.
    func header() -> [UInt8] {
        guard format == .csv else { return [] }
        var out: [UInt8] = []
        for (index, name) in columns.enumerated() {
            if index > 0 { out.append(0x2C) }
            Self.appendCSV(Array(name.utf8)[...], singleColumn: columns.count == 1, to: &out)
        }
        out.append(0x0A)
        return out
    }

    /// One row: its COPY text line without the newline.
    mutating func append(row: UnsafeBufferPointer<UInt8>, to out: inout [UInt8]) throws {
        if format == .copy {
            out.append(contentsOf: row)
            out.append(0x0A)
            return
        }
        // Fields as ranges of the row: no allocation per row or field.
        fields.removeAll(keepingCapacity: true)
        if !columns.isEmpty, let base = row.baseAddress {
            var start = 0
            while true {
                let end = memchr(base + start, 0x09, row.count - start).map { UnsafeRawPointer(base).distance(to: UnsafeRawPointer($0)) } ?? row.count
                fields.append(start..<end)
                if end == row.count { break }
                start = end + 1
            }
        } else if !columns.isEmpty {
            fields.append(0..<0)
        }
        // A table without columns COPY carries: one empty line a row, and no fields.
        guard fields.count == columns.count else {
            throw ToolError(.archiveCorrupt, "a row has \(fields.count) fields but the table has \(Plural.of(columns.count, "column"))",
                            fix: "Run rack-gateway-db verify on the archive; do not trust its rows.")
        }
        if format == .json { out.append(0x7B) }
        for (index, range) in fields.enumerated() {
            if index > 0 { out.append(0x2C) }
            if format == .json { out.append(contentsOf: jsonKeys[index]) }
            let field = UnsafeBufferPointer(rebasing: row[range])
            if field.count == 2 && field[0] == 0x5C && field[1] == 0x4E {
                if format == .json { out.append(contentsOf: Self.null) }
                continue
            }
            let hasEscape = field.count > 0 && memchr(field.baseAddress!, 0x5C, field.count) != nil
            if hasEscape { Self.unescape(field, into: &scratch) }
            func emit(_ value: UnsafeBufferPointer<UInt8>) {
                if format == .csv { Self.appendCSV(value, singleColumn: columns.count == 1, to: &out) }
                else { Self.appendJSON(value, type: types[index], to: &out) }
            }
            if hasEscape { scratch.withUnsafeBufferPointer { emit($0) } } else { emit(field) }
        }
        if format == .json { out.append(0x7D) }
        out.append(0x0A)
    }

    static let null = Array("null".utf8)

    /// A COPY text field's value: nil for `\N`, else the bytes with its backslash escapes resolved.
    static func unescape(_ field: [UInt8]) -> [UInt8]? {
        if field == [0x5C, 0x4E] { return nil }
        var out: [UInt8] = []
        field.withUnsafeBufferPointer { unescape($0, into: &out) }
        return out
    }

    /// A field's bytes with its backslash escapes resolved into `out` (replaced): `\b \f \n \r \t
    /// \v \\`, octal `\NNN`, hex `\xHH`, and any other character taken literally.
    static func unescape(_ field: UnsafeBufferPointer<UInt8>, into out: inout [UInt8]) {
        out.removeAll(keepingCapacity: true)
        var index = 0
        func octal(_ byte: UInt8) -> UInt8? { byte >= 0x30 && byte <= 0x37 ? byte - 0x30 : nil }
        func hex(_ byte: UInt8) -> UInt8? {
            switch byte {
            case 0x30...0x39: return byte - 0x30
            case 0x61...0x66: return byte - 0x61 + 10
            case 0x41...0x46: return byte - 0x41 + 10
            default: return nil
            }
        }
        while index < field.count {
            let byte = field[index]
            index += 1
            guard byte == 0x5C, index < field.count else { out.append(byte); continue }
            let next = field[index]
            index += 1
            switch next {
            case 0x62: out.append(0x08)
            case 0x66: out.append(0x0C)
            case 0x6E: out.append(0x0A)
            case 0x72: out.append(0x0D)
            case 0x74: out.append(0x09)
            case 0x76: out.append(0x0B)
            case 0x78:
                var value: UInt8 = 0
                var digits = 0
                while digits < 2, index < field.count, let digit = hex(field[index]) { value = value &* 16 &+ digit; index += 1; digits += 1 }
                if digits == 0 { out.append(next) } else { out.append(value) }
            default:
                if var value = octal(next) {
                    var digits = 1
                    while digits < 3, index < field.count, let digit = octal(field[index]) { value = value &* 8 &+ digit; index += 1; digits += 1 }
                    out.append(value)
                } else {
                    out.append(next)
                }
            }
        }
    }

    /// A non-NULL value as PostgreSQL's COPY ... CSV writes it (`CopyAttributeOutCSV`): quoted when
    /// it is empty (so it differs from NULL), holds a comma, a quote, a newline or a carriage
    /// return, or is `\.` alone in a single-column table; quotes inside doubled.
    static func appendCSV(_ value: UnsafeBufferPointer<UInt8>, singleColumn: Bool, to out: inout [UInt8]) {
        guard let base = value.baseAddress, value.count > 0 else { out.append(contentsOf: [0x22, 0x22]); return }
        let hasQuote = memchr(base, 0x22, value.count) != nil
        let quote = hasQuote || memchr(base, 0x2C, value.count) != nil || memchr(base, 0x0A, value.count) != nil
            || memchr(base, 0x0D, value.count) != nil || (singleColumn && value.count == 2 && value[0] == 0x5C && value[1] == 0x2E)
        guard quote else { out.append(contentsOf: value); return }
        out.append(0x22)
        if hasQuote {
            for byte in value {
                if byte == 0x22 { out.append(0x22) }
                out.append(byte)
            }
        } else {
            out.append(contentsOf: value)
        }
        out.append(0x22)
    }

    static func appendCSV(_ value: ArraySlice<UInt8>, singleColumn: Bool, to out: inout [UInt8]) {
        Array(value).withUnsafeBufferPointer { appendCSV($0, singleColumn: singleColumn, to: &out) }
    }

    static func appendJSON(_ value: UnsafeBufferPointer<UInt8>, type: ColumnType, to out: inout [UInt8]) {
        switch type {
        case .text:
            appendJSONString(value, to: &out)
        case .json where value.count > 0 && memchr(value.baseAddress!, 0x0A, value.count) == nil && memchr(value.baseAddress!, 0x0D, value.count) == nil:
            out.append(contentsOf: value)
        default:
            appendJSON(Array(value)[...], type: type, to: &out)
        }
    }

    static func appendJSON(_ value: ArraySlice<UInt8>, type: ColumnType, to out: inout [UInt8]) {
        switch type {
        case .integer, .number:
            if isJSONNumber(value) { out.append(contentsOf: value) } else { appendJSONString(value, to: &out) }
        case .boolean:
            if value.elementsEqual([0x74]) { out.append(contentsOf: Array("true".utf8)) }
            else if value.elementsEqual([0x66]) { out.append(contentsOf: Array("false".utf8)) }
            else { appendJSONString(value, to: &out) }
        case .json:
            // JSON text holds a raw line break only as whitespace between tokens (a string cannot):
            // a space keeps the object on its line.
            out.append(contentsOf: value.map { $0 == 0x0A || $0 == 0x0D ? 0x20 : $0 })
        case .array(let element):
            var array: [UInt8] = []
            var parser = ArrayLiteral(text: value)
            if parser.appendJSON(element: element, to: &array) { out.append(contentsOf: array) } else { appendJSONString(value, to: &out) }
        case .timestamp, .timestamptz:
            appendJSONString(isoTimestamp(value, zoned: type == .timestamptz)[...], to: &out)
        case .interval:
            appendJSONString((isoInterval(value) ?? Array(value))[...], to: &out)
        case .text:
            appendJSONString(value, to: &out)
        }
    }

    /// A timestamp as the backup wrote it (DateStyle ISO: `2024-01-02 03:04:05.5`, with `+00` for
    /// timestamptz) as `to_json` writes it: `T` between date and time, the offset as `+hh:mm`.
    static func isoTimestamp(_ value: ArraySlice<UInt8>, zoned: Bool) -> [UInt8] {
        var text = Array(value)
        // infinity, -infinity: no date part.
        guard let space = text.firstIndex(of: 0x20), space > 0, text[space - 1] >= 0x30, text[space - 1] <= 0x39 else { return text }
        text[space] = 0x54
        guard zoned else { return text }
        // The offset: after the time's last digit, up to " BC" or the end.
        let end = text.lastIndex(of: 0x20).map { $0 > space ? $0 : text.count } ?? text.count
        guard let sign = text[space..<end].lastIndex(where: { $0 == 0x2B || $0 == 0x2D }) else { return text }
        if !text[sign..<end].contains(0x3A) { text.insert(contentsOf: Array(":00".utf8), at: end) }
        return text
    }

    /// An interval as the backup wrote it (IntervalStyle postgres: `1 year 2 mons -3 days
    /// +04:05:06.7`) as an ISO 8601 duration, the way PostgreSQL's `EncodeInterval` writes one
    /// under `iso_8601`; nil when it is not in that form.
    static func isoInterval(_ value: ArraySlice<UInt8>) -> [UInt8]? {
        let words = String(decoding: value, as: UTF8.self).split(separator: " ")
        var dateParts: [(Int, Character)] = []
        var time: (negative: Bool, hours: Int, minutes: Int, seconds: Substring)?
        var index = 0
        while index < words.count {
            let word = words[index]
            if word.contains(":") {
                guard index == words.count - 1 else { return nil }
                let negative = word.hasPrefix("-")
                let parts = word.drop { $0 == "-" || $0 == "+" }.split(separator: ":", omittingEmptySubsequences: false)
                guard parts.count == 3, let hours = Int(parts[0]), let minutes = Int(parts[1]), Double(parts[2]) != nil else { return nil }
                time = (negative, hours, minutes, parts[2])
                index += 1
                continue
            }
            guard index + 1 < words.count, let number = Int(word.hasPrefix("+") ? word.dropFirst() : word) else { return nil }
            switch words[index + 1] {
            case "year", "years": dateParts.append((number, "Y"))
            case "mon", "mons": dateParts.append((number, "M"))
            case "day", "days": dateParts.append((number, "D"))
            default: return nil
            }
            index += 2
        }
        var out = "P"
        for (number, unit) in dateParts where number != 0 { out += "\(number)\(unit)" }
        if let time {
            // Seconds without their leading zero padding, the fraction as written (no trailing zeros).
            var seconds = String(time.seconds.drop { $0 == "0" })
            if seconds.isEmpty || seconds.hasPrefix(".") { seconds = "0" + seconds }
            let secondsZero = Double(seconds) == 0
            if time.hours != 0 || time.minutes != 0 || !secondsZero {
                let sign = time.negative ? "-" : ""
                out += "T"
                if time.hours != 0 { out += "\(sign)\(time.hours)H" }
                if time.minutes != 0 { out += "\(sign)\(time.minutes)M" }
                if !secondsZero { out += "\(sign)\(seconds)S" }
            }
        }
        return Array((out == "P" ? "PT0S" : out).utf8)
    }

    /// JSON's number syntax: `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`.
    static func isJSONNumber(_ value: ArraySlice<UInt8>) -> Bool {
        var index = value.startIndex
        func digits() -> Int {
            let start = index
            while index < value.endIndex, value[index] >= 0x30, value[index] <= 0x39 { index += 1 }
            return index - start
        }
        if index < value.endIndex, value[index] == 0x2D { index += 1 }
        let start = index
        let whole = digits()
        guard whole > 0, whole == 1 || value[start] != 0x30 else { return false }
        if index < value.endIndex, value[index] == 0x2E {
            index += 1
            guard digits() > 0 else { return false }
        }
        if index < value.endIndex, value[index] == 0x65 || value[index] == 0x45 {
            index += 1
            if index < value.endIndex, value[index] == 0x2B || value[index] == 0x2D { index += 1 }
            guard digits() > 0 else { return false }
        }
        return index == value.endIndex
    }

    /// A JSON string: `"` and `\` escaped, control characters as `\n`, `\t`, ... or `\u00XX`;
    /// runs of bytes that need no escape copied whole.
    static func appendJSONString(_ value: UnsafeBufferPointer<UInt8>, to out: inout [UInt8]) {
        out.append(0x22)
        var plain = 0
        for (index, byte) in value.enumerated() where byte < 0x20 || byte == 0x22 || byte == 0x5C {
            if plain < index { out.append(contentsOf: UnsafeBufferPointer(rebasing: value[plain..<index])) }
            plain = index + 1
            switch byte {
            case 0x22: out.append(contentsOf: [0x5C, 0x22])
            case 0x5C: out.append(contentsOf: [0x5C, 0x5C])
            case 0x0A: out.append(contentsOf: [0x5C, 0x6E])
            case 0x0D: out.append(contentsOf: [0x5C, 0x72])
            case 0x09: out.append(contentsOf: [0x5C, 0x74])
            case 0x08: out.append(contentsOf: [0x5C, 0x62])
            case 0x0C: out.append(contentsOf: [0x5C, 0x66])
            default: out.append(contentsOf: [0x5C, 0x75, 0x30, 0x30, hexDigits[Int(byte >> 4)], hexDigits[Int(byte & 15)]])
            }
        }
        if plain < value.count { out.append(contentsOf: UnsafeBufferPointer(rebasing: value[plain...])) }
        out.append(0x22)
    }

    static let hexDigits = Array("0123456789abcdef".utf8)

    static func appendJSONString(_ value: ArraySlice<UInt8>, to out: inout [UInt8]) {
        Array(value).withUnsafeBufferPointer { appendJSONString($0, to: &out) }
    }
}

/// PostgreSQL's text form of an array (`{1,2,NULL}`, `{"a b","c\"d"}`, `{{1,2},{3,4}}`) read into a
/// JSON array. One with explicit bounds (`[0:1]={...}`) or anything it does not parse stays a string.
struct ArrayLiteral {
    let text: ArraySlice<UInt8>
    var index: Int

    init(text: ArraySlice<UInt8>) {
        self.text = text
        index = text.startIndex
    }

    mutating func appendJSON(element: ColumnType, to out: inout [UInt8]) -> Bool {
        guard parse(element: element, to: &out) else { return false }
        return index == text.endIndex
    }

    private mutating func parse(element: ColumnType, to out: inout [UInt8]) -> Bool {
        guard index < text.endIndex, text[index] == 0x7B else { return false }
        index += 1
        out.append(0x5B)
        if index < text.endIndex, text[index] == 0x7D { index += 1; out.append(0x5D); return true }
        while index < text.endIndex {
            if text[index] == 0x7B {
                guard parse(element: element, to: &out) else { return false }
            } else if text[index] == 0x22 {
                index += 1
                var value: [UInt8] = []
                while index < text.endIndex, text[index] != 0x22 {
                    if text[index] == 0x5C { index += 1; guard index < text.endIndex else { return false } }
                    value.append(text[index])
                    index += 1
                }
                guard index < text.endIndex else { return false }
                index += 1
                CopyRowConverter.appendJSON(value[...], type: element, to: &out)
            } else {
                let start = index
                while index < text.endIndex, text[index] != 0x2C, text[index] != 0x7D { index += 1 }
                let value = text[start..<index]
                guard !value.isEmpty else { return false }
                if value.elementsEqual(Array("NULL".utf8)) { out.append(contentsOf: CopyRowConverter.null) }
                else { CopyRowConverter.appendJSON(value, type: element, to: &out) }
            }
            guard index < text.endIndex else { return false }
            if text[index] == 0x2C { out.append(0x2C); index += 1; continue }
            if text[index] == 0x7D { index += 1; out.append(0x5D); return true }
            return false
        }
        return false
    }
}
