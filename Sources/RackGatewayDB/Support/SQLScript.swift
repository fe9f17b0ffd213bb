/// Splits SQL script text (migrations, pg_dump output) into statements and psql meta-commands.
///
/// Understands what can hide a semicolon: single-quoted strings (with `''` and, for `E'...'`,
/// backslash escapes), double-quoted identifiers, dollar-quoted bodies (`$fn$ ... $fn$`),
/// `--` line comments and nested `/* */` comments. A line starting with a backslash where a
/// statement would start is a psql meta-command (`\connect`, `\restrict KEY`).
public struct SQLScript: Sendable {
    public enum Piece: Sendable, Equatable {
        /// A statement without its terminating semicolon; `line` is where its first token is.
        case statement(text: String, line: Int)
        /// A psql meta-command line such as `\restrict abc`, without the newline.
        case metaCommand(text: String, line: Int)
    }

    public var pieces: [Piece]

    public init(_ text: String) {
        pieces = Self.split(Array(text.unicodeScalars))
    }

    public var statements: [(text: String, line: Int)] {
        pieces.compactMap { if case .statement(let text, let line) = $0 { return (text, line) } else { return nil } }
    }

    static func split(_ s: [Unicode.Scalar]) -> [Piece] {
        var pieces: [Piece] = []
        var index = 0
        var line = 1
        var start: Int? = nil          // first significant scalar of the current statement
        var startLine = 1
        var previousIsWordCharacter = false

        func flush(upTo end: Int) {
            if let begin = start {
                var scalars = String.UnicodeScalarView()
                scalars.append(contentsOf: s[begin..<end])
                let text = String(scalars).trimmingTrailingWhitespace()
                if !text.isEmpty { pieces.append(.statement(text: text, line: startLine)) }
            }
            start = nil
        }

        while index < s.count {
            let c = s[index]
            let next: Unicode.Scalar? = index + 1 < s.count ? s[index + 1] : nil

            // Meta-command: a backslash as the first significant character of a statement.
            if start == nil && c == "\\" {
                var end = index
                while end < s.count && s[end] != "\n" { end += 1 }
                var scalars = String.UnicodeScalarView()
                scalars.append(contentsOf: s[index..<end])
                pieces.append(.metaCommand(text: String(scalars).trimmingTrailingWhitespace(), line: line))
                index = end
                continue
            }
            if c == "-" && next == "-" {
                while index < s.count && s[index] != "\n" { index += 1 }
                continue
            }
            if c == "/" && next == "*" {
                var depth = 0
                while index < s.count {
                    if s[index] == "/" && index + 1 < s.count && s[index + 1] == "*" { depth += 1; index += 2; continue }
                    if s[index] == "*" && index + 1 < s.count && s[index + 1] == "/" {
                        depth -= 1; index += 2
                        if depth == 0 { break }
                        continue
                    }
                    if s[index] == "\n" { line += 1 }
                    index += 1
                }
                continue
            }
            if c == "\n" { line += 1; index += 1; previousIsWordCharacter = false; continue }
            if c.properties.isWhitespace { index += 1; previousIsWordCharacter = false; continue }
            if start == nil { start = index; startLine = line }

            switch c {
            case ";":
                flush(upTo: index)
                index += 1
                previousIsWordCharacter = false
                continue
            case "'":
                let escapes = index > 0 && (s[index - 1] == "E" || s[index - 1] == "e")
                    && (index < 2 || !isWordCharacter(s[index - 2]))
                index += 1
                while index < s.count {
                    let d = s[index]
                    if d == "\n" { line += 1 }
                    if escapes && d == "\\" { index += 2; continue }
                    if d == "'" {
                        if index + 1 < s.count && s[index + 1] == "'" { index += 2; continue }
                        break
                    }
                    index += 1
                }
                index += 1
            case "\"":
                index += 1
                while index < s.count {
                    if s[index] == "\n" { line += 1 }
                    if s[index] == "\"" {
                        if index + 1 < s.count && s[index + 1] == "\"" { index += 2; continue }
                        break
                    }
                    index += 1
                }
                index += 1
            case "$" where !previousIsWordCharacter:
                // $tag$ or $$; a positional parameter ($1) is not a quote.
                var end = index + 1
                while end < s.count && isWordCharacter(s[end]) && !(end == index + 1 && ("0"..."9").contains(s[end])) { end += 1 }
                guard end < s.count && s[end] == "$" else { index += 1; break }
                let tag = Array(s[index...end])
                index = end + 1
                while index < s.count {
                    if s[index] == "$" && index + tag.count <= s.count && Array(s[index..<index + tag.count]) == tag {
                        index += tag.count
                        break
                    }
                    if s[index] == "\n" { line += 1 }
                    index += 1
                }
            default:
                index += 1
            }
            previousIsWordCharacter = isWordCharacter(c)
        }
        flush(upTo: s.count)
        return pieces
    }

    static func isWordCharacter(_ c: Unicode.Scalar) -> Bool {
        c == "_" || c.properties.isAlphabetic || ("0"..."9").contains(c)
    }
}

extension String {
    func trimmingTrailingWhitespace() -> String {
        var scalars = unicodeScalars
        while let last = scalars.last, last.properties.isWhitespace { scalars.removeLast() }
        return String(scalars)
    }
}
