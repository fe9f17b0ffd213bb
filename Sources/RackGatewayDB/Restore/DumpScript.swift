/// A `pg_dump` plain-format section (pre-data or post-data) split into pg_dump's own objects.
///
/// pg_dump writes a comment header before each object (`-- Name: t i; Type: INDEX; Schema: s; Owner: o`).
/// The statements under a header form one entry. `SET` statements and `set_config` calls are session
/// state, not entries: each entry records the settings in effect where it starts, so any connection
/// can run it. psql meta-commands (`\restrict KEY`, `\unrestrict KEY`) only concern psql and are
/// dropped; any other meta-command is refused, since this is not psql.
public struct DumpScript: Sendable {
    public struct Entry: Sendable {
        /// pg_dump's object type: `INDEX`, `CONSTRAINT`, `FK CONSTRAINT`, `INDEX ATTACH`, `TRIGGER`, ...
        public var type: String
        public var name: String
        public var statements: [(text: String, line: Int)]
        /// `SET ...` / `SELECT pg_catalog.set_config(...)` statements in effect, in order.
        public var settings: [String]
        /// The line of the entry's `-- Name: ...` header (0: none).
        public var headerLine: Int = 0
        /// The header's `Schema:` (nil for `-`, an object in no schema, or no header).
        public var schema: String? = nil
        public var label: String { "\(type) \(name)" }

        /// The post-data phase the entry runs in: its own type's, or for an entry that belongs to
        /// another object (`owner`) the later of the rest and that object's phase: a comment cannot
        /// run before the object it is on exists, and it runs where that object is created.
        public var phase: Phase {
            guard let owner else { return Phase.of(type) }
            return max(Phase.rest, Phase.of(owner.type))
        }

        /// pg_dump writes what is about another object as entries of their own, named after the
        /// object: `-- Name: EVENT TRIGGER log_ddl; Type: COMMENT`, the same for `SECURITY LABEL` (and
        /// `ACL`). For such an entry, the object's type and name as that object's own entry has them
        /// (`EVENT TRIGGER`, `log_ddl`, unquoted); nil for any other entry, or an object of a type
        /// without a phase of its own.
        public var owner: (type: String, name: String)? {
            guard DumpScript.dependentTypes.contains(type),
                  let kind = Phase.objectTypes.first(where: { name.hasPrefix($0 + " ") }) else { return nil }
            let parts = DumpScript.identifierParts(name.dropFirst(kind.count + 1))
            return (kind, parts.joined(separator: "."))
        }

        /// The table an index or constraint entry builds on, as (schema, name), when its first
        /// statement says (`ALTER TABLE [ONLY] s.t ...`, `CREATE [UNIQUE] INDEX i ON [ONLY] s.t ...`).
        public var table: (schema: String, name: String)? {
            guard let text = statements.first?.text else { return nil }
            var rest = Substring(text)
            if rest.hasPrefix("ALTER TABLE ") {
                rest = rest.dropFirst("ALTER TABLE ".count)
            } else if rest.hasPrefix("CREATE INDEX ") || rest.hasPrefix("CREATE UNIQUE INDEX "), let on = rest.range(of: " ON ") {
                rest = rest[on.upperBound...]
            } else {
                return nil
            }
            if rest.hasPrefix("ONLY ") { rest = rest.dropFirst(5) }
            let parts = DumpScript.identifierParts(rest)
            return parts.count == 2 ? (parts[0], parts[1]) : nil
        }
    }

    /// The table a foreign key entry references: `ALTER TABLE [ONLY] s.t ADD CONSTRAINT c FOREIGN KEY
    /// (cols) REFERENCES s.u(cols) ...`, read past the quoted column list; nil when it does not say so.
    static func referencedTable(_ entry: Entry) -> (schema: String, name: String)? {
        guard entry.type == "FK CONSTRAINT", let text = entry.statements.first?.text,
              let open = text.range(of: " FOREIGN KEY (") else { return nil }
        var index = open.upperBound
        var quoted = false
        while index < text.endIndex {
            let character = text[index]
            if character == "\"" { quoted.toggle() } else if character == ")" && !quoted { break }
            index = text.index(after: index)
        }
        guard index < text.endIndex else { return nil }
        let rest = text[text.index(after: index)...]
        guard rest.hasPrefix(" REFERENCES ") else { return nil }
        let parts = identifierParts(rest.dropFirst(" REFERENCES ".count))
        return parts.count == 2 ? (parts[0], parts[1]) : nil
    }

    /// The parts of a possibly quoted, dot-separated name at the start of `text`
    /// (`audit.audit_event`, `feat."MixedCase Table"`).
    static func identifierParts(_ text: Substring) -> [String] {
        var parts: [String] = []
        var index = text.startIndex
        while index < text.endIndex {
            var part = ""
            if text[index] == "\"" {
                index = text.index(after: index)
                while index < text.endIndex {
                    if text[index] == "\"" {
                        let next = text.index(after: index)
                        if next < text.endIndex && text[next] == "\"" { part.append("\""); index = text.index(after: next); continue }
                        index = next
                        break
                    }
                    part.append(text[index])
                    index = text.index(after: index)
                }
            } else {
                while index < text.endIndex, !text[index].isWhitespace, text[index] != ".", text[index] != "(" {
                    part.append(text[index])
                    index = text.index(after: index)
                }
            }
            parts.append(part)
            guard index < text.endIndex, text[index] == "." else { break }
            index = text.index(after: index)
        }
        return parts
    }

    /// pg_dump's entry types that are about another object, named `KIND name` after it.
    static let dependentTypes: Set<String> = ["COMMENT", "SECURITY LABEL", "ACL"]

    public var entries: [Entry]

    public init(_ text: String, section: String) throws {
        let script = SQLScript(text)
        // Entry headers are comments between statements: a header-like line inside a string literal
        // (a trigger's WHEN text, a function body) is part of its statement, not a header.
        var headers: [(line: Int, type: String, name: String, schema: String?)] = []
        for (comment, lineNumber) in script.comments {
            guard comment.hasPrefix("-- Name: ") || comment.hasPrefix("-- Data for Name: ") else { continue }
            let fields = comment.drop { $0 != ":" }.dropFirst(2)
            guard let typeRange = fields.range(of: "; Type: ") else { continue }
            let name = String(fields[..<typeRange.lowerBound])
            let type = String(fields[typeRange.upperBound...].prefix { $0 != ";" })
            let schema = fields.range(of: "; Schema: ").map { String(fields[$0.upperBound...].prefix { $0 != ";" }) }
            headers.append((lineNumber, type, name, schema == "-" ? nil : schema))
        }
        var settingsOrder: [String] = []
        var settings: [String: String] = [:]
        var entries: [Entry] = []
        var headerIndex = -1
        var current: Entry?
        for (statement, line) in try Self.statements(script, section: section) {
                if let key = Self.settingName(statement) {
                    if settings[key] == nil { settingsOrder.append(key) }
                    settings[key] = statement
                    continue
                }
                var newIndex = headerIndex
                while newIndex + 1 < headers.count && headers[newIndex + 1].line < line { newIndex += 1 }
                if newIndex != headerIndex || current == nil {
                    if let current { entries.append(current) }
                    headerIndex = newIndex
                    let header = headerIndex >= 0 ? headers[headerIndex] : (line: 0, type: "UNKNOWN", name: "(no header)", schema: nil)
                    current = Entry(type: header.type, name: header.name, statements: [],
                                    settings: settingsOrder.compactMap { settings[$0] }, headerLine: header.line, schema: header.schema)
                }
                current!.statements.append((statement, line))
        }
        if let current { entries.append(current) }
        self.entries = entries
    }

    /// The statements of `text` in order, without the psql meta-commands pg_dump writes
    /// (`\restrict`, `\unrestrict`); any other meta-command is an error.
    public static func statements(_ text: String, section: String) throws -> [(text: String, line: Int)] {
        try statements(SQLScript(text), section: section)
    }

    static func statements(_ script: SQLScript, section: String) throws -> [(text: String, line: Int)] {
        var result: [(text: String, line: Int)] = []
        for piece in script.pieces {
            switch piece {
            case .metaCommand(let command, let line):
                let name = command.prefix { !$0.isWhitespace }
                guard name == "\\restrict" || name == "\\unrestrict" else {
                    throw ToolError(.failed, "\(section) line \(line): psql meta-command \(name) is not supported outside psql",
                                    fix: "Restore this dump with psql instead (gunzip -c FILE | psql -v ON_ERROR_STOP=1).")
                }
            case .statement(let statement, let line):
                result.append((statement, line))
            }
        }
        return result
    }

    /// `SET name = ...` or `SELECT pg_catalog.set_config('name', ...)`: the setting's name.
    static func settingName(_ statement: String) -> String? {
        if statement.hasPrefix("SET ") {
            let rest = statement.dropFirst(4)
            return String(rest.prefix { !$0.isWhitespace && $0 != "=" }).lowercased()
        }
        if statement.hasPrefix("SELECT pg_catalog.set_config('") {
            let rest = statement.dropFirst("SELECT pg_catalog.set_config('".count)
            return String(rest.prefix { $0 != "'" }).lowercased()
        }
        return nil
    }

    /// The order post-data runs in: index and primary/unique/exclusion constraint builds in
    /// parallel, then partition index attachments, then foreign keys (in parallel), then the rest
    /// (triggers, rules, policies, row security, comments) in order, the materialized view refreshes
    /// (in dependency order, after every index),
    /// and the database's event triggers last, after every statement of the restore's own: they
    /// would fire on (or forbid) its DDL. An entry about another object (a comment, a security
    /// label) runs in that object's phase when it is later than the rest (`Entry.phase`): an event
    /// trigger's comment and label are created with it, last.
    public enum Phase: Int, CaseIterable, Comparable, Sendable {
        case indexes, attachments, foreignKeys, rest, refreshes, eventTriggers

        public static func < (a: Phase, b: Phase) -> Bool { a.rawValue < b.rawValue }

        /// The entry types with a phase of their own, longest first (for matching `KIND name`).
        static let objectTypes = ["MATERIALIZED VIEW DATA", "EVENT TRIGGER", "FK CONSTRAINT", "INDEX ATTACH", "CONSTRAINT", "INDEX"]

        public var parallel: Bool { self == .indexes || self == .foreignKeys }

        public var label: String {
            switch self {
            case .indexes: "indexes and constraints"
            case .attachments: "partition index attachments"
            case .foreignKeys: "foreign keys"
            case .rest: "triggers, policies and the rest"
            case .refreshes: "materialized view refreshes"
            case .eventTriggers: "event triggers"
            }
        }

        static func of(_ type: String) -> Phase {
            switch type {
            case "INDEX", "CONSTRAINT": .indexes
            case "INDEX ATTACH": .attachments
            case "FK CONSTRAINT": .foreignKeys
            case "EVENT TRIGGER": .eventTriggers
            case "MATERIALIZED VIEW DATA": .refreshes
            default: .rest
            }
        }
    }

    /// The entries of `phase` in order, except that an entry about another object of the phase
    /// that stands before that object's entry (an archive written so) runs right after it.
    public func entries(in phase: Phase) -> [Entry] {
        Self.ownersFirst(entries.filter { $0.phase == phase })
    }

    static func ownersFirst(_ entries: [Entry]) -> [Entry] {
        func key(_ type: String, _ name: String) -> String { "\(type)\u{0}\(name)" }
        let objects = Set(entries.filter { $0.owner == nil }.map { key($0.type, $0.name) })
        var seen: Set<String> = []
        var waiting: [String: [Entry]] = [:]
        var result: [Entry] = []
        for entry in entries {
            if let owner = entry.owner.map({ key($0.type, $0.name) }), objects.contains(owner), !seen.contains(owner) {
                waiting[owner, default: []].append(entry)
                continue
            }
            result.append(entry)
            guard entry.owner == nil else { continue }
            let own = key(entry.type, entry.name)
            seen.insert(own)
            result += waiting.removeValue(forKey: own) ?? []
        }
        return result
    }
}

extension DumpScript.Entry {
    /// A key of an index or of a primary key, unique or exclusion constraint.
    public enum Key: Equatable, Sendable {
        case column(String)
        case expression
    }

    /// The keys an index or constraint entry sorts on, read from its first statement's key list
    /// (`... USING btree (a, lower(b))`, `ADD CONSTRAINT c PRIMARY KEY (id)`); nil when it has none.
    public var keys: [Key]? {
        guard let text = statements.first?.text else { return nil }
        let start: String.Index
        if type == "INDEX", let using = text.range(of: " USING ") {
            guard let open = text[using.upperBound...].firstIndex(of: "(") else { return nil }
            start = open
        } else if type == "CONSTRAINT", let kind = text.range(of: #" (PRIMARY KEY|UNIQUE( NULLS NOT DISTINCT)?|EXCLUDE USING \w+) \("#, options: .regularExpression) {
            start = text.index(before: kind.upperBound)
        } else {
            return nil
        }
        // Split the parenthesised list at its top-level commas, minding quotes and nesting.
        var items: [Substring] = []
        var depth = 0, inQuotes = false, itemStart = text.index(after: start)
        var index = itemStart
        scan: while index < text.endIndex {
            let character = text[index]
            if character == "\"" || character == "'" {
                inQuotes.toggle()
            } else if !inQuotes {
                switch character {
                case "(": depth += 1
                case ")" where depth == 0:
                    items.append(text[itemStart..<index])
                    break scan
                case ")": depth -= 1
                case "," where depth == 0:
                    items.append(text[itemStart..<index])
                    itemStart = text.index(after: index)
                default: break
                }
            }
            index = text.index(after: index)
        }
        return items.map { item in
            let item = item.drop { $0.isWhitespace }
            let name = DumpScript.identifierParts(item).first ?? ""
            // A bare (or quoted) column name is followed by nothing, an operator class, an ordering
            // or WITH for exclusion constraints; anything else is an expression.
            let quoted = item.hasPrefix("\"")
            guard !name.isEmpty, quoted || !(item.dropFirst(name.count).first.map { $0 == "(" || $0 == "." } ?? false) else {
                return .expression
            }
            return .column(name)
        }
    }
}
