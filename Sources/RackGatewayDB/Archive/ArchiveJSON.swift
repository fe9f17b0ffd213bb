/// The JSON an archive and its `.summary.json` carry is untrusted input: before a decoder builds
/// anything from it, a scan checks its syntax (saying where it breaks, by byte offset, line and
/// column) and how much it holds (values and nesting), so a small file cannot make the decoder
/// build a structure of millions of values. Decoding errors are told as plain text naming the field.
enum ArchiveJSON {
    /// Nesting deeper than this is no manifest or summary of ours (they nest four levels).
    static let maximumDepth = 16

    /// Why `bytes` is not JSON text of at most `maximumValues` values, or nil when it is.
    static func problem(_ bytes: ArraySlice<UInt8>, maximumValues: Int) -> String? {
        var scanner = Scanner(bytes: bytes, maximumValues: maximumValues)
        do {
            scanner.skipSpace()
            try scanner.value(depth: 0)
            scanner.skipSpace()
            guard scanner.position == bytes.endIndex else { throw Scanner.Failure.expected("the end of the text") }
            return nil
        } catch let failure as Scanner.Failure {
            let offset = scanner.position - bytes.startIndex
            let before = bytes[bytes.startIndex..<scanner.position]
            let line = before.reduce(1) { $0 + ($1 == 0x0A ? 1 : 0) }
            let column = offset - (before.lastIndex(of: 0x0A).map { $0 - bytes.startIndex + 1 } ?? 0) + 1
            return "\(failure.text) at byte \(offset) (line \(line), column \(column))"
        } catch {
            return "\(error)"
        }
    }

    /// A recursive-descent scan (RFC 8259) that builds nothing.
    struct Scanner {
        enum Failure: Error {
            case expected(String)
            case tooMany(Int)
            case tooDeep
            var text: String {
                switch self {
                case .expected(let what): "invalid JSON: expected \(what)"
                case .tooMany(let limit): "more than \(limit) JSON values (more than a file of this size holds)"
                case .tooDeep: "JSON nested deeper than \(ArchiveJSON.maximumDepth) levels"
                }
            }
        }

        let bytes: ArraySlice<UInt8>
        let maximumValues: Int
        var position: Int
        var values = 0

        init(bytes: ArraySlice<UInt8>, maximumValues: Int) {
            self.bytes = bytes
            self.maximumValues = maximumValues
            position = bytes.startIndex
        }

        var current: UInt8? { position < bytes.endIndex ? bytes[position] : nil }

        mutating func skipSpace() {
            while let byte = current, byte == 0x20 || byte == 0x09 || byte == 0x0A || byte == 0x0D { position += 1 }
        }

        mutating func expect(_ byte: UInt8, _ what: String) throws {
            guard current == byte else { throw Failure.expected(what) }
            position += 1
        }

        mutating func value(depth: Int) throws {
            values += 1
            guard values <= maximumValues else { throw Failure.tooMany(maximumValues) }
            guard depth <= ArchiveJSON.maximumDepth else { throw Failure.tooDeep }
            switch current ?? 0 {
            case UInt8(ascii: "{"):
                position += 1
                skipSpace()
                if current == UInt8(ascii: "}") { position += 1; return }
                while true {
                    skipSpace()
                    guard current == UInt8(ascii: "\"") else { throw Failure.expected("a key in double quotes") }
                    try string()
                    skipSpace()
                    try expect(UInt8(ascii: ":"), "':' after a key")
                    skipSpace()
                    try value(depth: depth + 1)
                    skipSpace()
                    if current == UInt8(ascii: ",") { position += 1; continue }
                    try expect(UInt8(ascii: "}"), "',' or '}' in an object")
                    return
                }
            case UInt8(ascii: "["):
                position += 1
                skipSpace()
                if current == UInt8(ascii: "]") { position += 1; return }
                while true {
                    skipSpace()
                    try value(depth: depth + 1)
                    skipSpace()
                    if current == UInt8(ascii: ",") { position += 1; continue }
                    try expect(UInt8(ascii: "]"), "',' or ']' in a list")
                    return
                }
            case UInt8(ascii: "\""):
                try string()
            case UInt8(ascii: "t"): try literal("true")
            case UInt8(ascii: "f"): try literal("false")
            case UInt8(ascii: "n"): try literal("null")
            case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
                try number()
            default:
                throw Failure.expected("a value")
            }
        }

        mutating func literal(_ word: String) throws {
            for byte in word.utf8 { try expect(byte, "'\(word)'") }
        }

        mutating func digits() throws {
            guard let byte = current, (0x30...0x39).contains(byte) else { throw Failure.expected("a digit") }
            while let byte = current, (0x30...0x39).contains(byte) { position += 1 }
        }

        mutating func number() throws {
            if current == UInt8(ascii: "-") { position += 1 }
            if current == UInt8(ascii: "0") { position += 1 } else { try digits() }
            if current == UInt8(ascii: ".") { position += 1; try digits() }
            if current == UInt8(ascii: "e") || current == UInt8(ascii: "E") {
                position += 1
                if current == UInt8(ascii: "+") || current == UInt8(ascii: "-") { position += 1 }
                try digits()
            }
        }

        mutating func string() throws {
            position += 1
            while let byte = current {
                switch byte {
                case UInt8(ascii: "\""):
                    position += 1
                    return
                case UInt8(ascii: "\\"):
                    position += 1
                    guard let escaped = current else { break }
                    if escaped == UInt8(ascii: "u") {
                        position += 1
                        for _ in 0..<4 {
                            guard let hex = current, (0x30...0x39).contains(hex) || (0x41...0x46).contains(hex) || (0x61...0x66).contains(hex) else {
                                throw Failure.expected("four hex digits after \\u")
                            }
                            position += 1
                        }
                    } else {
                        guard Array("\"\\/bfnrt".utf8).contains(escaped) else { throw Failure.expected("an escape (\\\", \\\\, \\/, \\b, \\f, \\n, \\r, \\t or \\u)") }
                        position += 1
                    }
                case 0..<0x20:
                    throw Failure.expected("no control character inside a string")
                default:
                    position += 1
                }
            }
            throw Failure.expected("'\"' to end a string")
        }
    }

    /// A decoding error as plain text: which field (snake_case, as in the file) and what it should
    /// be; no Swift type or decoder internals.
    static func describe(_ error: Error) -> String {
        guard let error = error as? DecodingError else { return "\(error)" }
        func field(_ path: [CodingKey]) -> String {
            var text = ""
            for key in path {
                if let index = key.intValue { text += "[\(index)]" } else { text += (text.isEmpty ? "" : ".") + snakeCase(key.stringValue) }
            }
            return text.isEmpty ? "the top level" : "field \(text)"
        }
        switch error {
        case .typeMismatch(let type, let context):
            return "\(field(context.codingPath)): expected \(describe(type))"
        case .valueNotFound(let type, let context):
            return "\(field(context.codingPath)): expected \(describe(type)), found null"
        case .keyNotFound(let key, let context):
            return "\(field(context.codingPath + [key])) is missing"
        case .dataCorrupted(let context):
            return "\(field(context.codingPath)): not a valid value"
        @unknown default:
            return "not valid"
        }
    }

    static func describe(_ type: Any.Type) -> String {
        switch String(describing: type) {
        case "Int", "Int64": "a whole number"
        case "UInt32": "a whole number from 0 to 4294967295"
        case "String": "a string"
        case "Bool": "true or false"
        case let name where name.hasPrefix("Array"): "a list"
        case let name where name.hasPrefix("Dictionary"): "an object"
        default: "an object"
        }
    }

    static func snakeCase(_ key: String) -> String {
        var text = ""
        for character in key {
            if character.isUppercase { text += "_" + character.lowercased() } else { text.append(character) }
        }
        return text
    }
}
