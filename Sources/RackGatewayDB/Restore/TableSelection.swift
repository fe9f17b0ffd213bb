import Foundation

/// The part of an archive's schema that `restore --table` creates: from pg_dump's pre-data and
/// post-data entries, those of the selected tables (the table, its columns' defaults, its owned and
/// identity sequences, primary key, unique, check and exclusion constraints, indexes, comments), foreign
/// keys only between selected tables, and triggers and rules (`withTriggers`), grants, ownership,
/// policies and row security (`withPrivileges`) only when asked. What belongs to a selected table and
/// is left out is listed in `leftOut`, to be reported.
public struct TableSelection: Sendable {
    /// A relation by schema and name.
    public struct Name: Hashable, Sendable, Comparable {
        public var schema: String
        public var name: String
        public init(_ schema: String, _ name: String) {
            self.schema = schema
            self.name = name
        }
        public var qualified: String { "\(schema).\(name)" }
        public static func < (a: Name, b: Name) -> Bool { (a.schema, a.name) < (b.schema, b.name) }
    }

    public let tables: Set<Name>
    /// The selected tables' sequences (owned by a column, or an identity column's).
    public private(set) var sequences: Set<Name> = []
    public private(set) var preData: [DumpScript.Entry] = []
    /// Post-data entries in the order they run: indexes and constraints, foreign keys, the rest.
    public private(set) var postData: [DumpScript.Entry] = []
    /// Labels of the selected tables' entries that are not created, with why.
    public private(set) var leftOut: [String] = []
    /// Selected tables that inherit from a table not selected (`INHERITS (...)`): created alone they
    /// would become that table's children (in the live database, rows of the live parent).
    public private(set) var unselectedParents: [(table: Name, parent: Name)] = []

    public init(tables: Set<Name>, preData: DumpScript, postData: DumpScript, withTriggers: Bool, withPrivileges: Bool) {
        self.tables = tables
        let entries = preData.entries + postData.entries
        // Sequences first: an owned sequence's entries come before its OWNED BY in pre-data.
        for entry in entries {
            if entry.type == "SEQUENCE OWNED BY", let schema = entry.schema, let text = entry.statements.first?.text,
               let owner = Self.ownedBy(text), tables.contains(owner) {
                sequences.insert(Name(schema, entry.name))
            } else if entry.type == "SEQUENCE", let schema = entry.schema, entry.statements.first?.text.hasPrefix("ALTER TABLE ") == true,
                      let table = entry.table, tables.contains(Name(table.schema, table.name)) {
                sequences.insert(Name(schema, entry.name))
            }
        }
        // The selected tables' indexes, for the comments on them (`INDEX name`, which names no table).
        var indexes: Set<Name> = []
        for entry in postData.entries where entry.type == "INDEX" {
            guard let schema = entry.schema, owningTable(entry) != nil else { continue }
            indexes.insert(Name(schema, entry.name))
        }
        for (section, list) in [(0, preData.entries), (1, postData.entries)] {
            for var entry in list {
                guard let verdict = verdict(entry, indexes: indexes, withTriggers: withTriggers, withPrivileges: withPrivileges) else { continue }
                switch verdict {
                case .create:
                    if !withPrivileges {
                        // Ownership is the source's roles': the restoring role owns what it creates.
                        entry.statements.removeAll { Self.isOwnership($0.text) }
                        if entry.statements.isEmpty { continue }
                    }
                    if section == 0 { self.preData.append(entry) } else { self.postData.append(entry) }
                case .leftOut(let why):
                    leftOut.append("\(entry.label) (\(why))")
                }
            }
        }
        for entry in self.preData where entry.type == "TABLE" {
            guard let schema = entry.schema, let text = entry.statements.first?.text else { continue }
            for parent in Self.inherited(text) where !tables.contains(parent) {
                unselectedParents.append((Name(schema, entry.name), parent))
            }
        }
        // Indexes and constraints before foreign keys before the rest, each in the archive's order.
        let order: (DumpScript.Entry) -> Int = { entry in
            switch entry.phase {
            case .indexes, .attachments: 0
            case .foreignKeys: 1
            default: 2
            }
        }
        self.postData = self.postData.enumerated().sorted { (order($0.element), $0.offset) < (order($1.element), $1.offset) }.map(\.element)
    }

    enum Verdict {
        case create
        case leftOut(String)
    }

    /// The table an entry is about, when it is one of the selected tables'.
    func owningTable(_ entry: DumpScript.Entry) -> Name? {
        guard let schema = entry.schema else { return nil }
        switch entry.type {
        case "TABLE":
            return tables.contains(Name(schema, entry.name)) ? Name(schema, entry.name) : nil
        case "SEQUENCE", "SEQUENCE OWNED BY", "SEQUENCE SET":
            guard sequences.contains(Name(schema, entry.name)) else { return nil }
            return Name(schema, entry.name)
        case "TRIGGER", "POLICY", "RULE", "CONSTRAINT", "FK CONSTRAINT":
            // Named `table object` (pg_dump's tag); the table is in the entry's schema.
            let name = entry.table.map { Name($0.schema, $0.name) } ?? Name(schema, entry.name.components(separatedBy: " ").first ?? "")
            return tables.contains(name) ? name : nil
        case "ROW SECURITY":
            return tables.contains(Name(schema, entry.name)) ? Name(schema, entry.name) : nil
        default:
            guard let table = entry.table else { return nil }
            return tables.contains(Name(table.schema, table.name)) ? Name(table.schema, table.name) : nil
        }
    }

    /// Whether `entry` is created, left out (with why), or not the selected tables' at all (nil).
    func verdict(_ entry: DumpScript.Entry, indexes: Set<Name>, withTriggers: Bool, withPrivileges: Bool) -> Verdict? {
        switch entry.type {
        case "COMMENT", "ACL", "SECURITY LABEL":
            guard let object = aboutSelected(entry, indexes: indexes) else { return nil }
            if entry.type == "COMMENT" {
                if object.hasPrefix("TRIGGER ") || object.hasPrefix("RULE ") { return withTriggers ? .create : nil }
                if object.hasPrefix("POLICY ") { return withPrivileges ? .create : nil }
                return .create
            }
            return withPrivileges ? .create : .leftOut("no --with-privileges")
        case "FK CONSTRAINT":
            guard owningTable(entry) != nil else { return nil }
            guard let referenced = DumpScript.referencedTable(entry) else { return .leftOut("its referenced table is not named plainly") }
            return tables.contains(Name(referenced.schema, referenced.name)) ? .create
                : .leftOut("references \(referenced.schema).\(referenced.name), which is not restored")
        case "TRIGGER", "RULE":
            guard owningTable(entry) != nil else { return nil }
            return withTriggers ? .create : .leftOut("no --with-triggers")
        case "TABLE ATTACH":
            // `ALTER TABLE ONLY parent ATTACH PARTITION partition ...`, tagged with the partition's name.
            guard let schema = entry.schema, let parent = entry.table else { return nil }
            let partition = tables.contains(Name(schema, entry.name)), whole = tables.contains(Name(parent.schema, parent.name))
            if partition && whole { return .create }
            return partition || whole ? .leftOut("the partition and its partitioned table are restored together only") : nil
        case "POLICY", "ROW SECURITY":
            guard owningTable(entry) != nil else { return nil }
            return withPrivileges ? .create : .leftOut("no --with-privileges")
        case "TABLE", "SEQUENCE", "SEQUENCE OWNED BY", "DEFAULT", "CONSTRAINT", "CHECK CONSTRAINT", "INDEX", "STATISTICS":
            return owningTable(entry) != nil ? .create : nil
        default:
            return owningTable(entry) != nil ? .leftOut("not restored with a table") : nil
        }
    }

    /// For a COMMENT, ACL or SECURITY LABEL entry on a selected table, column, sequence, or one of
    /// their indexes or constraints (`TABLE t`, `COLUMN t.c`, `SEQUENCE s`, `INDEX i`, `CONSTRAINT c ON
    /// t`, `TRIGGER g ON t`, `POLICY p ON t`): the object as the tag names it; nil otherwise.
    func aboutSelected(_ entry: DumpScript.Entry, indexes: Set<Name>) -> String? {
        guard let schema = entry.schema else { return nil }
        let name = entry.name
        for kind in ["TABLE ", "COLUMN ", "SEQUENCE "] where name.hasPrefix(kind) {
            let parts = DumpScript.identifierParts(name.dropFirst(kind.count))
            guard let first = parts.first else { return nil }
            let set = kind == "SEQUENCE " ? sequences : tables
            return set.contains(Name(schema, first)) ? name : nil
        }
        if name.hasPrefix("INDEX ") {
            let parts = DumpScript.identifierParts(name.dropFirst(6))
            return parts.first.map { indexes.contains(Name(schema, $0)) } == true ? name : nil
        }
        for kind in ["CONSTRAINT ", "TRIGGER ", "POLICY ", "RULE "] where name.hasPrefix(kind) {
            guard let on = name.range(of: " ON ") else { return nil }
            let table = DumpScript.identifierParts(name[on.upperBound...]).first ?? ""
            return tables.contains(Name(schema, table)) ? name : nil
        }
        return nil
    }

    /// The parents a `CREATE TABLE ... INHERITS (s.p, ...)` names (a quoted name holding `,` or `)`
    /// aside).
    static func inherited(_ text: String) -> [Name] {
        guard let range = text.range(of: "\nINHERITS (") else { return [] }
        return text[range.upperBound...].prefix { $0 != ")" }.split(separator: ",").compactMap { item in
            let parts = DumpScript.identifierParts(item.drop { $0 == " " })
            return parts.count == 2 ? Name(parts[0], parts[1]) : nil
        }
    }

    /// `ALTER SEQUENCE s.q OWNED BY s.t.c;`: the table (s, t).
    static func ownedBy(_ text: String) -> Name? {
        guard let range = text.range(of: " OWNED BY ") else { return nil }
        let parts = DumpScript.identifierParts(text[range.upperBound...])
        return parts.count == 3 ? Name(parts[0], parts[1]) : nil
    }

    /// `ALTER TABLE|SEQUENCE|... x OWNER TO role;`
    static func isOwnership(_ text: String) -> Bool {
        text.hasPrefix("ALTER ") && text.range(of: #" OWNER TO [^ ]+;?$"#, options: .regularExpression) != nil
    }
}

/// Rewrites the qualified names of the restored relations (`public.users`, `"Odd"."Name"`, also inside
/// `nextval('public.users_id_seq'::regclass)`) to schema `target`; every other name, qualified as
/// pg_dump writes them, keeps its schema, so types, functions and tables not restored are still the
/// originals.
public struct SchemaRewriter: Sendable {
    let target: String
    /// Schema spellings (bare and quoted) → the relation spellings to move.
    let moves: [(schema: [String], names: Set<String>)]

    public init(relations: Set<TableSelection.Name>, into target: String) {
        self.target = target
        var bySchema: [String: Set<String>] = [:]
        for relation in relations { bySchema[relation.schema, default: []].formUnion(Self.spellings(relation.name)) }
        moves = bySchema.sorted { $0.key < $1.key }.map { (Self.spellings($0.key), $0.value) }
    }

    /// How pg_dump may write `name`: quoted always works; bare when it is a plain lower-case identifier.
    static func spellings(_ name: String) -> [String] {
        let quoted = "\"" + name.replacingOccurrences(of: "\"", with: "\"\"") + "\""
        return isPlain(name) ? [name, quoted] : [quoted]
    }

    static func isPlain(_ name: String) -> Bool {
        guard let first = name.unicodeScalars.first, first == "_" || ("a"..."z").contains(first) else { return false }
        return name.unicodeScalars.allSatisfy { $0 == "_" || $0 == "$" || ("a"..."z").contains($0) || ("0"..."9").contains($0) }
    }

    static func isIdentifierCharacter(_ byte: UInt8) -> Bool {
        byte == UInt8(ascii: "_") || byte == UInt8(ascii: "$") || (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z"))
            || (byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z")) || (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")) || byte >= 0x80
    }

    public func rewrite(_ text: String) -> String {
        let bytes = Array(text.utf8)
        let replacement = Array(SQL.identifier(target).utf8)
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count + 64)
        var index = 0
        func matches(_ word: String, at position: Int) -> Bool {
            let word = Array(word.utf8)
            return position + word.count <= bytes.count && Array(bytes[position..<position + word.count]) == word
        }
        scan: while index < bytes.count {
            let previous = index > 0 ? bytes[index - 1] : 0
            if !Self.isIdentifierCharacter(previous) && previous != UInt8(ascii: "\"") && previous != UInt8(ascii: ".") {
                for move in moves {
                    for schema in move.schema where matches(schema, at: index) {
                        let dot = index + schema.utf8.count
                        guard dot < bytes.count, bytes[dot] == UInt8(ascii: ".") else { continue }
                        for name in move.names where matches(name, at: dot + 1) {
                            let end = dot + 1 + name.utf8.count
                            if end < bytes.count && (Self.isIdentifierCharacter(bytes[end]) || (bytes[end] == UInt8(ascii: "\"") && !name.hasSuffix("\""))) { continue }
                            out += replacement
                            out += bytes[dot..<end]
                            index = end
                            continue scan
                        }
                    }
                }
            }
            out.append(bytes[index])
            index += 1
        }
        return String(decoding: out, as: UTF8.self)
    }
}
