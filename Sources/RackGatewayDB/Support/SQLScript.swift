/// Splits SQL script text (migrations, pg_dump output) into statements and psql meta-commands, where
/// psql splits it (its lexer, `src/fe_utils/psqlscan.l`, is the reference; the tests compare with
/// `psql --single-step`).
///
/// A semicolon ends a statement only outside what can hide one: single-quoted strings (with `''`, and
/// backslash escapes in `E'...'`), double-quoted identifiers, dollar-quoted bodies (`$fn$ ... $fn$`),
/// `--` line comments, nested `/* */` comments, parentheses (a rule's `DO (...; ...)`), and the
/// `BEGIN ... END` of a SQL-standard function body: in a statement that starts `CREATE [OR REPLACE]
/// FUNCTION|PROCEDURE`, outside parentheses, `BEGIN` opens a block, `CASE` inside one opens another,
/// and `END` closes one. A backslash outside those is a psql meta-command (`\connect`, `\restrict
/// KEY`), up to the end of its line.
public struct SQLScript: Sendable {
    public enum Piece: Sendable, Equatable {
        /// A statement without its terminating semicolon; `line` is where its first token is.
        case statement(text: String, line: Int)
        /// A psql meta-command line such as `\restrict abc`, without the newline.
        case metaCommand(text: String, line: Int)
    }

    public var pieces: [Piece]
    /// `--` comment lines that stand between statements (not inside one), with their line numbers:
    /// where pg_dump writes its entry headers.
    public var comments: [(text: String, line: Int)]

    public init(_ text: String) {
        (pieces, comments) = Self.split(Array(text.unicodeScalars))
    }

    public var statements: [(text: String, line: Int)] {
        pieces.compactMap { if case .statement(let text, let line) = $0 { return (text, line) } else { return nil } }
    }

    /// psql's state for one statement: parentheses, and the CREATE FUNCTION/PROCEDURE detection with
    /// its BEGIN/CASE/END depth.
    struct StatementState {
        var parenDepth = 0
        var beginDepth = 0
        var identifierCount = 0
        /// The first letters of the first four identifiers when they are create, function, procedure,
        /// or, replace (psql keeps the same four).
        var identifiers: [Character?] = [nil, nil, nil, nil]

        var endsAtSemicolon: Bool { parenDepth == 0 && beginDepth == 0 }

        mutating func identifier(_ word: String) {
            let lower = word.lowercased()
            if identifierCount == 0 { identifiers = [nil, nil, nil, nil] }
            if ["create", "function", "procedure", "or", "replace"].contains(lower), identifierCount < 4 {
                identifiers[identifierCount] = lower.first
            }
            identifierCount += 1
            let routine = identifiers[0] == "c"
                && (identifiers[1] == "f" || identifiers[1] == "p"
                    || (identifiers[1] == "o" && identifiers[2] == "r" && (identifiers[3] == "f" || identifiers[3] == "p")))
            guard routine, parenDepth == 0 else { return }
            switch lower {
            case "begin": beginDepth += 1
            case "case" where beginDepth >= 1: beginDepth += 1
            case "end" where beginDepth > 0: beginDepth -= 1
            default: break
            }
        }
    }

    static func split(_ s: [Unicode.Scalar]) -> ([Piece], [(text: String, line: Int)]) {
        var pieces: [Piece] = []
        var comments: [(text: String, line: Int)] = []
        var index = 0
        var line = 1
        var start: Int? = nil          // first significant scalar of the current statement
        var startLine = 1
        var hasToken = false           // more than comments since `start`
        var state = StatementState()

        func text(_ range: Range<Int>) -> String {
            var scalars = String.UnicodeScalarView()
            scalars.append(contentsOf: s[range])
            return String(scalars)
        }
        func flush(upTo end: Int) {
            // A statement of comments alone is sent by psql and does nothing: not kept.
            if let begin = start, hasToken {
                let statement = text(begin..<end).trimmingTrailingWhitespace()
                if !statement.isEmpty { pieces.append(.statement(text: statement, line: startLine)) }
            }
            start = nil
            hasToken = false
            state = StatementState()
        }
        /// Past a quoted run that ends at `close` (doubled, it stands for itself), counting newlines.
        func skipQuoted(from open: Int, close: Unicode.Scalar, backslashEscapes: Bool) -> Int {
            var position = open + 1
            while position < s.count {
                let d = s[position]
                if d == "\n" { line += 1 }
                if backslashEscapes && d == "\\" {
                    if position + 1 < s.count && s[position + 1] == "\n" { line += 1 }
                    position += 2
                    continue
                }
                if d == close {
                    if position + 1 < s.count && s[position + 1] == close { position += 2; continue }
                    return position + 1
                }
                position += 1
            }
            return position
        }

        while index < s.count {
            let c = s[index]
            let next: Unicode.Scalar? = index + 1 < s.count ? s[index + 1] : nil

            if c == "\\" {
                // psql: a backslash outside quotes starts a meta-command (\; and \: stand for themselves).
                if start != nil && (next == ";" || next == ":") { index += 2; continue }
                flush(upTo: index)
                var end = index
                while end < s.count && s[end] != "\n" { end += 1 }
                pieces.append(.metaCommand(text: text(index..<end).trimmingTrailingWhitespace(), line: line))
                index = end
                continue
            }
            if c == "-" && next == "-" {
                let begin = index
                while index < s.count && s[index] != "\n" { index += 1 }
                if start == nil { comments.append((text(begin..<index), line)) }
                continue
            }
            if c == "/" && next == "*" {
                // psql keeps a block comment in the statement, also before its first token.
                if start == nil { start = index; startLine = line }
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
            if c == "\n" { line += 1; index += 1; continue }
            if c.properties.isWhitespace { index += 1; continue }
            if start == nil { start = index; startLine = line }
            hasToken = true

            switch c {
            case ";":
                if state.endsAtSemicolon {
                    flush(upTo: index)
                }
                index += 1
            case "(":
                state.parenDepth += 1
                index += 1
            case ")":
                if state.parenDepth > 0 { state.parenDepth -= 1 }
                index += 1
            case "'":
                index = skipQuoted(from: index, close: "'", backslashEscapes: false)
            case "\"":
                index = skipQuoted(from: index, close: "\"", backslashEscapes: false)
            case "$":
                // $tag$ or $$ opens a dollar quote; $1 is a parameter.
                var end = index + 1
                while end < s.count && isIdentifierStart(s[end]) || (end > index + 1 && end < s.count && ("0"..."9").contains(s[end])) { end += 1 }
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
            case _ where ("0"..."9").contains(c):
                // A number (with any letters glued to it: 1e5, 0x1F) is no identifier.
                while index < s.count && isWordCharacter(s[index]) { index += 1 }
            case _ where isIdentifierStart(c):
                var end = index + 1
                while end < s.count && (isWordCharacter(s[end]) || s[end] == "$") { end += 1 }
                let word = text(index..<end)
                let after: Unicode.Scalar? = end < s.count ? s[end] : nil
                let lower = word.lowercased()
                if after == "'" && ["e", "b", "x", "n"].contains(lower) {
                    // E'...' (backslash escapes), B'...', X'...', N'...': a string, not an identifier.
                    index = skipQuoted(from: end, close: "'", backslashEscapes: lower == "e")
                } else if lower == "u", after == "&", end + 1 < s.count, s[end + 1] == "'" || s[end + 1] == "\"" {
                    index = skipQuoted(from: end + 1, close: s[end + 1], backslashEscapes: false)
                } else {
                    state.identifier(word)
                    index = end
                }
            default:
                index += 1
            }
        }
        flush(upTo: s.count)
        return (pieces, comments)
    }

    static func isIdentifierStart(_ c: Unicode.Scalar) -> Bool {
        c == "_" || ("a"..."z").contains(c) || ("A"..."Z").contains(c) || c.value >= 0x80
    }

    static func isWordCharacter(_ c: Unicode.Scalar) -> Bool {
        isIdentifierStart(c) || ("0"..."9").contains(c)
    }
}

extension String {
    func trimmingTrailingWhitespace() -> String {
        var scalars = unicodeScalars
        while let last = scalars.last, last.properties.isWhitespace { scalars.removeLast() }
        return String(scalars)
    }
}
