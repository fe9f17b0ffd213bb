/// Stands between a plain-SQL dump and psql, so that no psql meta-command in it can run.
///
/// psql runs a backslash outside quotes and comments as a meta-command anywhere on a line
/// (`SELECT 1; \! id` runs `id` on this host), and reads its input as it comes. So the dump is fed
/// through this scan, in the producer: every chunk is scanned before any of it is handed on, and a
/// refused one throws, which kills psql before it can commit (`--single-transaction`) or read the
/// offending bytes. Memory is bounded: only a meta-command line is held back (at most 1 KiB) until
/// its end is seen.
///
/// It follows psql's lexer (`src/fe_utils/psqlscan.l`, the reference `SQLScript` follows too), byte
/// by byte: single-quoted strings, double-quoted identifiers, dollar-quoted strings with their tags,
/// `--` comments (which end at `\r` as well as `\n`), nested `/* */` comments, parentheses and the
/// `BEGIN ... END` of a SQL-standard routine body (which hold a statement's semicolons), and the
/// data of pg_dump's `COPY ... FROM stdin;`, which psql sends raw to the server up to a line `\.`.
/// Where psql's reading could differ from this one, the script is refused rather than guessed at:
/// - a quoted string is read both with and without backslash escapes (psql picks one by the
///   server's `standard_conforming_strings`, which a statement can change; and `E'...'` or a number
///   before the quote changes it too), and both must end at the same quote;
/// - a backslash right after a byte of 0x80 or more, in a string, before a quote or a backslash (in
///   SJIS, BIG5, GBK and the like that backslash is part of a character);
/// - a semicolon right after such a byte (in JOHAB it is part of a character), a `$` inside a
///   number, or a number glued to `begin`, `case` or `end` in a routine statement (psql versions
///   split those differently): any COPY after one is refused;
/// - a NUL byte (psql drops the rest of its line), a carriage return not followed by a newline
///   outside quotes (psql's string continuation), `:NAME` in capitals (psql substitutes its own
///   variables such as `:DBNAME` and reads their value as script text).
/// COPY data is entered only for pg_dump's form: `COPY table (columns) FROM stdin;` alone on its line,
/// starting a statement at the line's start; any other COPY statement is refused.
///
/// The meta-commands pg_dump writes into a plain dump of one database are let through: `\restrict
/// KEY` and `\unrestrict KEY` (pg_dump 17.6, 16.10, 15.14 and later), alone on their line between
/// statements. `\connect` (pg_dump --create) is refused: the restore loads into its target.
///
/// Given a `restrictKey` (when psql knows `\restrict`), a script whose first line other than blank
/// lines and `--` comments is not its own `\restrict` gets `\restrict KEY` before it, so that psql
/// itself refuses every meta-command too (defense in depth: the scan is the guarantee).
struct PsqlScriptGuard {
    /// What messages call the script (its path).
    let source: String
    /// The key of the `\restrict` to start a script without one with; nil: none.
    let restrictKey: String?
    /// The script's start, held until it shows whether the script has its own `\restrict`.
    private var head: [UInt8]? = []
    static let headLimit = 64 * 1024

    private enum Lex { case initial, string, identifier, dollar, lineComment, blockComment, metaLine, copyData }
    private var lex = Lex.initial
    private var line = 1
    /// No byte of the current line seen yet (in SQL).
    private var atLineStart = true

    // INITIAL: what the previous byte left undecided.
    private var pendingDash = false
    private var pendingSlash = false
    private var pendingCR = false
    private var pendingColon = false
    /// A one-letter word `u` followed by `&`: a `U&'...'` or `U&"..."` prefix, or an identifier.
    private var pendingUAmp = false
    /// `:NAME` being read.
    private var variable: [UInt8]?
    /// `$tag` being read after a `$` (nil: none).
    private var dollarTag: [UInt8]?
    /// The word (identifier or number) being read: its first 16 bytes.
    private var word: [UInt8] = []
    private var wordLength = 0
    private var wordIsNumber = false
    private var inWord = false
    private var previousHigh = false

    // The statement: psql's parenthesis and BEGIN ... END state, whether its query buffer holds
    // anything (a block comment does; whitespace and `--` comments do not), whether it is a COPY.
    private var statement = SQLScript.StatementState()
    private var hasContent = false
    /// A token other than a block comment in the statement (the first word is its command).
    private var hasToken = false
    private var copyStatement = false
    /// The COPY's first word started the line and nothing but identifiers is on the line so far.
    private var copyCanonical = false
    /// The line from its first byte, while it may be pg_dump's COPY line.
    private var copyLine: [UInt8] = []
    private var recordingLine = false
    private var copyLastQuote = -1
    /// The COPY line's semicolon was seen: its newline must follow.
    private var awaitingCopyNewline = false
    private var awaitingCopyLF = false
    /// psql may split statements elsewhere than this scan from here on: no COPY is trusted.
    private var uncertain: String?

    // Strings: the quote's end read with standard_conforming_strings on (no escapes) and off.
    private var onQuote = false
    private var offQuote = false
    private var offEscape = false
    private var escapeAfterHigh = false
    // Identifiers, dollar quotes, comments.
    private var identifierQuote = false
    private var tag: [UInt8] = []
    private var closeActive = false
    private var closeLength = 0
    private var closeMatches = false
    private var commentDepth = 0
    private var commentSlash = false
    private var commentStar = false
    // A meta-command line held back, and whether it started where pg_dump writes them.
    private var meta: [UInt8] = []
    private var metaAtStatementStart = false
    // COPY data: where the current line stands against `\.`.
    private var dataLineStart = true
    private var dataMarker = 0

    static let metaLimit = 1024
    static let copyLineLimit = 256 * 1024
    static let tagLimit = 1024

    init(source: String, restrictKey: String? = nil) {
        self.source = source
        self.restrictKey = restrictKey
        if restrictKey == nil { head = nil }
    }

    /// A random key for `\restrict`, of letters and digits as pg_dump's.
    static func randomKey() -> String {
        let characters = Array("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
        return String((0..<40).map { _ in characters.randomElement()! })
    }

    /// Whether psql `version` (`15.18`) knows `\restrict`: 18 and later, 17.6, 16.10, 15.14, 14.19, 13.22.
    static func psqlRestricts(version: String) -> Bool {
        let parts = version.split(separator: ".").map { Int($0) ?? 0 }
        guard let major = parts.first else { return false }
        let minor = parts.count > 1 ? parts[1] : 0
        let first = [17: 6, 16: 10, 15: 14, 14: 19, 13: 22]
        if major >= 18 { return true }
        return first[major].map { minor >= $0 } ?? false
    }

    /// The bytes of `input` that may go to psql now (a meta-command line is held back until its end
    /// shows it is one pg_dump writes); throws on anything refused, before any of `input` is handed on.
    mutating func scan(_ input: [UInt8]) throws -> [UInt8] {
        guard var held = head else { return try scanned(input) }
        held += input
        guard let hasOwn = Self.startsWithRestrict(held, complete: false) else {
            if held.count <= Self.headLimit {
                head = held
                return []
            }
            return try start(held, own: false)
        }
        return try start(held, own: hasOwn)
    }

    /// The held start scanned, after our `\restrict` unless the script has its own.
    private mutating func start(_ held: [UInt8], own: Bool) throws -> [UInt8] {
        head = nil
        let scannedHead = try scanned(held)
        guard !own, let restrictKey else { return scannedHead }
        return Array("\\restrict \(restrictKey)\n".utf8) + scannedHead
    }

    /// Whether the first line of `text` other than blank lines and `--` comments is a `\restrict`;
    /// nil when `text` ends before that line does (and is not `complete`).
    static func startsWithRestrict(_ text: [UInt8], complete: Bool) -> Bool? {
        var start = 0
        while start < text.count {
            guard let end = text[start...].firstIndex(of: 0x0A) else { break }
            let line = text[start..<end].drop { $0 == 0x20 || $0 == 0x09 || $0 == 0x0D }
            if !line.isEmpty && !line.starts(with: [0x2D, 0x2D]) { return line.starts(with: Array("\\restrict ".utf8)) }
            start = end + 1
        }
        return complete ? text[start...].starts(with: Array("\\restrict ".utf8)) : nil
    }

    private mutating func scanned(_ input: [UInt8]) throws -> [UInt8] {
        var output: [UInt8] = []
        output.reserveCapacity(input.count)
        try input.withUnsafeBufferPointer { bytes in
            var index = 0
            while index < bytes.count {
                if lex == .copyData && dataMarker == -1 {
                    // The rest of a data line that cannot be `\.`: handed on up to its newline at once.
                    var end = index
                    while end < bytes.count && bytes[end] != 0x0A && bytes[end] != 0 { end += 1 }
                    output.append(contentsOf: bytes[index..<end])
                    index = end
                    if index == bytes.count { break }
                }
                try step(bytes[index], into: &output)
                index += 1
            }
        }
        return output
    }

    /// At the end of the script: what is still held back, checked.
    mutating func finish() throws -> [UInt8] {
        var output: [UInt8] = []
        if let held = head { output = try start(held, own: Self.startsWithRestrict(held, complete: true) ?? false) }
        if lex == .metaLine { try endMeta(into: &output) }
        if lex == .initial, variable != nil { try initialByte(0x0A, into: &output); output.removeLast() }
        if awaitingCopyNewline || awaitingCopyLF {
            throw refusal("the COPY statement ends the file without its data", fix: nil)
        }
        return output
    }

    private mutating func step(_ byte: UInt8, into output: inout [UInt8]) throws {
        if byte == 0 {
            throw refusal("a NUL byte, which psql would drop with the rest of its line: this is not a pg_dump script", fix: nil)
        }
        switch lex {
        case .copyData:
            output.append(byte)
            copyDataByte(byte)
            return
        case .metaLine:
            if byte == 0x0A {
                try endMeta(into: &output)
                output.append(byte)
                newLine()
            } else {
                meta.append(byte)
                if meta.count > Self.metaLimit { try endMeta(into: &output) }
            }
            return
        default:
            break
        }
        if awaitingCopyNewline || awaitingCopyLF {
            try copyNewline(byte)
            output.append(byte)
            if byte == 0x0A { newLine(); lex = .copyData; dataLineStart = true; dataMarker = 0 }
            return
        }
        if recordingLine && copyLine.count <= Self.copyLineLimit { copyLine.append(byte) }
        switch lex {
        case .string:
            if try stringByte(byte) { break }
            lex = .initial
            try initialByte(byte, into: &output)
            return
        case .identifier:
            if identifierQuote {
                identifierQuote = false
                if byte != 0x22 {
                    lex = .initial
                    try initialByte(byte, into: &output)
                    return
                }
            } else if byte == 0x22 {
                identifierQuote = true
                if copyStatement { copyLastQuote = copyLine.count - 1 }
            }
        case .dollar:
            dollarByte(byte)
        case .lineComment:
            if byte == 0x0A || byte == 0x0D {
                lex = .initial
                try initialByte(byte, into: &output)
                return
            }
        case .blockComment:
            blockCommentByte(byte)
        case .initial:
            try initialByte(byte, into: &output)
            return
        case .metaLine, .copyData:
            break
        }
        if byte == 0x0A { newLine() } else { atLineStart = false }
        output.append(byte)
    }

    /// One byte in psql's INITIAL state (and what a previous byte left pending); the byte goes to
    /// `output` unless it starts a meta-command line.
    private mutating func initialByte(_ byte: UInt8, into output: inout [UInt8]) throws {
        if pendingCR {
            pendingCR = false
            if byte != 0x0A {
                throw refusal("a carriage return not followed by a newline outside quotes (psql would read a string continued across it): this is not a pg_dump script", fix: nil)
            }
        }
        if let variable {
            if Self.isVariableCharacter(byte) {
                if variable.count < 64 { self.variable!.append(byte) }
                emit(byte, into: &output)
                return
            }
            self.variable = nil
            if variable.allSatisfy({ (0x41...0x5A).contains($0) || (0x30...0x39).contains($0) || $0 == 0x5F }) {
                throw refusal("\":\(String(decoding: variable, as: UTF8.self))\" outside quotes, where psql substitutes its variable of that name and reads its value as script text: this is not a pg_dump script", fix: nil)
            }
        }
        if pendingColon {
            pendingColon = false
            if byte == 0x3A { emit(byte, into: &output); return }  // `::`
            if (0x41...0x5A).contains(byte) {
                variable = [byte]
                emit(byte, into: &output)
                return
            }
        }
        if pendingDash {
            pendingDash = false
            if byte == 0x2D {
                lex = .lineComment
                emit(byte, into: &output)
                return
            }
            markToken()
        }
        if pendingSlash {
            pendingSlash = false
            if byte == 0x2A {
                lex = .blockComment
                commentDepth = 1
                commentSlash = false
                commentStar = false
                hasContent = true
                copyCanonical = false
                emit(byte, into: &output)
                return
            }
            markToken()
        }
        if let collected = dollarTag {
            if byte == 0x24 {
                // `$tag$`: a dollar quote opens.
                dollarTag = nil
                tag = collected
                closeActive = false
                lex = .dollar
                noteNonIdentifier()
                emit(byte, into: &output)
                return
            }
            if collected.isEmpty ? Self.isDollarTagStart(byte) : Self.isDollarTagCharacter(byte) {
                dollarTag!.append(byte)
                if collected.count >= Self.tagLimit {
                    throw refusal("a dollar-quote tag longer than \(Self.tagLimit) bytes: this is not a pg_dump script", fix: nil)
                }
                emit(byte, into: &output)
                return
            }
            // Not a tag: the `$` stood alone and what followed it is a word (psql rescans it).
            dollarTag = nil
            if collected.isEmpty && (0x30...0x39).contains(byte) {
                // `$1`: a parameter, read as a number.
                startWord(byte, number: true)
                emit(byte, into: &output)
                return
            }
            for character in collected { wordByte(character) }
        }
        if pendingUAmp {
            pendingUAmp = false
            if byte != 0x27 && byte != 0x22 { countIdentifier([0x75]) }
        }
        if inWord {
            if Self.isWordCharacter(byte) {
                wordByte(byte)
                emit(byte, into: &output)
                return
            }
            if byte == 0x24 {
                if wordIsNumber {
                    throw refusal("a \"$\" inside a number, which psql versions read differently: this is not a pg_dump script", fix: nil)
                }
                wordByte(byte)
                emit(byte, into: &output)
                return
            }
            endWord(before: byte)
        }
        previousHigh = false
        switch byte {
        case 0x0A:
            if copyStatement {
                throw refusal("a COPY statement that is not pg_dump's `COPY table (columns) FROM stdin;` alone on its line; nothing of the dump was run", fix: nil)
            }
        case 0x0D:
            pendingCR = true
        case 0x20, 0x09, 0x0C:
            break
        case 0x5C:
            // A backslash: a meta-command, to the end of the line.
            metaAtStatementStart = atLineStart && !hasContent && statement.endsAtSemicolon
            meta = [byte]
            lex = .metaLine
            atLineStart = false
            return
        case 0x2D:
            pendingDash = true
        case 0x2F:
            pendingSlash = true
        case 0x3A:
            pendingColon = true
            markToken()
        case 0x27:
            lex = .string
            onQuote = false
            offQuote = false
            offEscape = false
            noteNonIdentifier()
        case 0x22:
            lex = .identifier
            identifierQuote = false
            markToken()
            if copyStatement { copyLastQuote = copyLine.count - 1 }
        case 0x24:
            dollarTag = []
            markToken()
        case 0x28:
            statement.parenDepth += 1
            markToken()
        case 0x29:
            if statement.parenDepth > 0 { statement.parenDepth -= 1 }
            markToken()
        case 0x3B:
            markToken()
            if statement.endsAtSemicolon { try endStatement() }
        default:
            if Self.isWordStart(byte) || (0x30...0x39).contains(byte) {
                let first = !hasContent
                startWord(byte, number: (0x30...0x39).contains(byte))
                if first && !wordIsNumber && wordStartedLine {
                    copyLine = [byte]
                    copyLastQuote = -1
                    recordingLine = true
                }
            } else {
                markToken()
            }
        }
        emit(byte, into: &output)
    }

    private mutating func emit(_ byte: UInt8, into output: inout [UInt8]) {
        output.append(byte)
        if byte == 0x0A { newLine() } else { atLineStart = false }
    }

    private mutating func newLine() {
        line += 1
        atLineStart = true
    }

    private mutating func startWord(_ byte: UInt8, number: Bool) {
        let first = !hasToken
        commentBefore = hasContent
        hasContent = true
        hasToken = true
        inWord = true
        wordIsNumber = number
        word = [byte]
        wordLength = 1
        wordStartedStatement = first
        wordStartedLine = atLineStart
        previousHigh = byte >= 0x80
    }

    private var wordStartedStatement = false
    /// A block comment stands before the statement's first word.
    private var commentBefore = false
    private var wordStartedLine = false

    private mutating func wordByte(_ byte: UInt8) {
        if !inWord { startWord(byte, number: false); return }
        if word.count < 16 { word.append(byte) }
        wordLength += 1
        previousHigh = byte >= 0x80
    }

    /// The word ends before `next`: an identifier counts for psql's routine-body tracking unless it
    /// is a string's prefix (`E'`, `B'`, `X'`, `N'`, `U&'`); a COPY starting the statement is noted.
    private mutating func endWord(before next: UInt8) {
        inWord = false
        if next == 0x3B && previousHigh {
            uncertain = uncertain ?? "line \(line): a semicolon right after a byte of 0x80 or more (part of a character in some encodings)"
        }
        let lower = word.map { (0x41...0x5A).contains($0) ? $0 + 0x20 : $0 }
        if wordIsNumber {
            let text = String(decoding: lower, as: UTF8.self)
            if isRoutine && (text.contains("begin") || text.contains("case") || text.contains("end")) {
                uncertain = uncertain ?? "line \(line): a number glued to a word in a routine statement, which psql versions split differently"
            }
            return
        }
        if wordLength == 1 && next == 0x27 && [0x65, 0x62, 0x78, 0x6E].contains(lower[0]) { return }
        if wordLength == 1 && next == 0x26 && lower[0] == 0x75 { pendingUAmp = true; return }
        if wordStartedStatement && wordLength == 4 && lower == Array("copy".utf8) {
            copyStatement = true
            copyCanonical = recordingLine && !commentBefore && word == Array("COPY".utf8)
        }
        if !copyStatement {
            recordingLine = false
            copyLine = []
        }
        countIdentifier(wordLength > 16 ? Array("-long-".utf8) : lower)
    }

    private mutating func countIdentifier(_ lower: [UInt8]) {
        statement.identifier(String(decoding: lower, as: UTF8.self))
    }

    /// CREATE [OR REPLACE] FUNCTION|PROCEDURE, as psql tells it from the statement's first identifiers.
    private var isRoutine: Bool {
        let ids = statement.identifiers
        return ids[0] == "c" && (ids[1] == "f" || ids[1] == "p" || (ids[1] == "o" && ids[2] == "r" && (ids[3] == "f" || ids[3] == "p")))
    }

    /// A token: the statement is no longer empty for psql.
    private mutating func markToken() {
        hasContent = true
        hasToken = true
    }

    /// A token other than a word (a string, a comment kept in the buffer, a dollar quote): the
    /// statement holds something, and a COPY line holding it is not pg_dump's.
    private mutating func noteNonIdentifier() {
        hasContent = true
        hasToken = true
        copyCanonical = false
    }

    /// A semicolon that ends the statement for psql: a COPY must be pg_dump's, its newline next.
    private mutating func endStatement() throws {
        if copyStatement {
            let suffix = Array(" FROM stdin;".utf8)
            let canonical = copyCanonical && uncertain == nil && copyLine.count <= Self.copyLineLimit
                && copyLine.starts(with: Array("COPY ".utf8)) && copyLine.count > suffix.count + 5
                && Array(copyLine.suffix(suffix.count)) == suffix && copyLastQuote < copyLine.count - suffix.count
            guard canonical else {
                throw refusal("a COPY statement that is not pg_dump's `COPY table (columns) FROM stdin;` alone on its line"
                              + (uncertain.map { " (\($0) before it)" } ?? "") + ": this is not a pg_dump script", fix: nil)
            }
            awaitingCopyNewline = true
        }
        statement = SQLScript.StatementState()
        hasContent = false
        hasToken = false
        copyStatement = false
        copyCanonical = false
        copyLine = []
        recordingLine = false
    }

    /// What follows pg_dump's COPY line's semicolon: its newline (`\r\n` too), then the data.
    private mutating func copyNewline(_ byte: UInt8) throws {
        if awaitingCopyLF {
            guard byte == 0x0A else { throw refusal("a COPY line that does not end at its semicolon: this is not a pg_dump script", fix: nil) }
            awaitingCopyLF = false
            awaitingCopyNewline = false
            return
        }
        switch byte {
        case 0x0A: awaitingCopyNewline = false
        case 0x0D: awaitingCopyLF = true
        default: throw refusal("a COPY line that does not end at its semicolon: this is not a pg_dump script", fix: nil)
        }
    }

    /// A byte of a single-quoted string, read both ways; false when the string ended before it.
    private mutating func stringByte(_ byte: UInt8) throws -> Bool {
        var onEnded = false
        if onQuote {
            onQuote = false
            if byte != 0x27 { onEnded = true }
        } else if byte == 0x27 {
            onQuote = true
        }
        var offEnded = false
        if offEscape {
            offEscape = false
            if escapeAfterHigh && (byte == 0x27 || byte == 0x5C) {
                throw refusal("a backslash after a byte of 0x80 or more before a quote or backslash in a string literal, which some client encodings read as one character: this is not a pg_dump script", fix: nil)
            }
        } else if offQuote {
            offQuote = false
            if byte != 0x27 { offEnded = true }
        } else if byte == 0x5C {
            offEscape = true
            escapeAfterHigh = previousHigh
        } else if byte == 0x27 {
            offQuote = true
        }
        previousHigh = byte >= 0x80
        if onEnded != offEnded {
            throw refusal("a string literal whose end depends on standard_conforming_strings (a backslash before a quote), which psql could read either way: this is not a pg_dump script", fix: nil)
        }
        return !onEnded
    }

    /// A byte inside a dollar quote: it ends at its own tag.
    private mutating func dollarByte(_ byte: UInt8) {
        if byte == 0x24 {
            if closeActive && closeMatches && closeLength == tag.count {
                lex = .initial
                return
            }
            closeActive = true
            closeLength = 0
            closeMatches = true
            return
        }
        guard closeActive else { return }
        if closeLength == 0 ? Self.isDollarTagStart(byte) : Self.isDollarTagCharacter(byte) {
            closeLength += 1
            closeMatches = closeMatches && closeLength <= tag.count && tag[closeLength - 1] == byte
        } else {
            closeActive = false
        }
    }

    /// A byte inside a `/* */` comment, which nests.
    private mutating func blockCommentByte(_ byte: UInt8) {
        if commentSlash && byte == 0x2A {
            commentDepth += 1
            commentSlash = false
            commentStar = false
            return
        }
        if commentStar && byte == 0x2F {
            commentDepth -= 1
            commentStar = false
            commentSlash = false
            if commentDepth == 0 { lex = .initial }
            return
        }
        commentSlash = byte == 0x2F
        commentStar = byte == 0x2A
    }

    /// COPY data: raw lines up to a line `\.` (`\.\r\n` too), as psql reads them.
    private mutating func copyDataByte(_ byte: UInt8) {
        if byte == 0x0A {
            line += 1
            if dataMarker == 2 || dataMarker == 3 {
                lex = .initial
                atLineStart = true
            }
            dataLineStart = true
            dataMarker = 0
            return
        }
        if dataLineStart {
            dataLineStart = false
            dataMarker = byte == 0x5C ? 1 : -1
            return
        }
        switch (dataMarker, byte) {
        case (1, 0x2E): dataMarker = 2
        case (2, 0x0D): dataMarker = 3
        default: dataMarker = -1
        }
    }

    /// The held meta-command line is complete: let it through when pg_dump writes it, else refuse.
    private mutating func endMeta(into output: inout [UInt8]) throws {
        lex = .initial
        var text = meta
        if text.last == 0x0D { text.removeLast() }
        let name = String(decoding: text.dropFirst().prefix { $0 != 0x20 && $0 != 0x09 && $0 != 0x5C }.prefix(32), as: UTF8.self)
        let command = "\\" + name
        if metaAtStatementStart && meta.count <= Self.metaLimit && (name == "restrict" || name == "unrestrict") {
            let argument = text.dropFirst(1 + name.utf8.count)
            let key = argument.drop { $0 == 0x20 || $0 == 0x09 }
            let keyBytes = key.prefix { Self.isKeyCharacter($0) }
            let rest = key.dropFirst(keyBytes.count)
            if key.count < argument.count && !keyBytes.isEmpty && rest.allSatisfy({ $0 == 0x20 || $0 == 0x09 }) {
                output += meta
                meta = []
                return
            }
        }
        switch name {
        case "connect", "c":
            throw refusal("psql meta-command \(command), which pg_dump --create writes to switch to the database it creates; the restore loads into its target database instead",
                          fix: "Make the dump without --create (or delete its CREATE DATABASE and \\connect lines), then restore it again.")
        case ".":
            throw refusal("a line \\. outside COPY data: this is not a pg_dump script", fix: nil)
        case "restrict", "unrestrict":
            throw refusal("psql meta-command \(command) where pg_dump does not write it (alone on its line, between statements, with a key of letters and digits): this is not a pg_dump script", fix: nil)
        default:
            throw refusal("psql meta-command \(command), which pg_dump does not write (psql would run it on this host): this is not a pg_dump script", fix: nil)
        }
    }

    private func refusal(_ what: String, fix: String?) -> ToolError {
        ToolError(.failed, "\(source) line \(line): \(what); the dump was refused before psql could run it, and nothing of it was committed",
                  fix: fix ?? "Restore only a plain pg_dump file (pg_dump -Fp, not --create), or check where this file came from.", cause: Refused())
    }

    /// The cause of a refusal: the file itself is what is wrong, so restoring it again is no way out.
    public struct Refused: Error, Sendable {}

    static func isWordStart(_ byte: UInt8) -> Bool {
        byte == 0x5F || (0x41...0x5A).contains(byte) || (0x61...0x7A).contains(byte) || byte >= 0x80
    }

    static func isWordCharacter(_ byte: UInt8) -> Bool { isWordStart(byte) || (0x30...0x39).contains(byte) }

    static func isVariableCharacter(_ byte: UInt8) -> Bool { isWordCharacter(byte) }

    static func isDollarTagStart(_ byte: UInt8) -> Bool { isWordStart(byte) }

    static func isDollarTagCharacter(_ byte: UInt8) -> Bool { isWordCharacter(byte) }

    static func isKeyCharacter(_ byte: UInt8) -> Bool {
        (0x30...0x39).contains(byte) || (0x41...0x5A).contains(byte) || (0x61...0x7A).contains(byte)
    }
}
