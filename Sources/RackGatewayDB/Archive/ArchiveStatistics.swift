import Foundation
import RGWPostgres

/// The statistics member (format v2, docs/archive-format.md section 13): the planner statistics of
/// the source's tables as the backup's snapshot saw them (`pg_class` and `pg_stats`), as the calls
/// of `pg_restore_relation_stats` and `pg_restore_attribute_stats` in pg_dump 18's argument-pair
/// form. Its text is a psql script that imports them into PostgreSQL 18 or newer and does nothing
/// on older servers; `restore` parses it (`parse`: exactly the text `text` makes, arguments and
/// types from a fixed list) and runs the calls itself, checking each result. It holds sampled
/// column values, so it is inside the payload of an encrypted archive like the rows.
public struct ArchiveStatistics: Sendable, Equatable {
    /// Which function a call is.
    public enum Function: String, Sendable, Equatable {
        case relation = "pg_restore_relation_stats", attribute = "pg_restore_attribute_stats"
    }

    /// One argument pair: its name and its value as text (a literal of the argument's type).
    public struct Argument: Sendable, Equatable {
        public var name: String
        public var value: String
        public init(_ name: String, _ value: String) { self.name = name; self.value = value }
    }

    /// One call: the function and its argument pairs, `version`, `schemaname`, `relname` first (and
    /// for an attribute `attname`, `inherited`).
    public struct Call: Sendable, Equatable {
        public var function: Function
        public var arguments: [Argument]
        public init(_ function: Function, _ arguments: [Argument]) { self.function = function; self.arguments = arguments }

        public func value(_ name: String) -> String? { arguments.first { $0.name == name }?.value }
        /// The relation the call names, schema and name.
        public var schema: String { value("schemaname") ?? "" }
        public var table: String { value("relname") ?? "" }
        public var qualifiedName: String { SQL.qualified(schema, table) }

        /// The statement: `SELECT * FROM pg_catalog.<function>('name', 'value'::type, ...);`
        /// (text values without a cast, as pg_dump writes them).
        public var statement: String { "SELECT * FROM " + expression + ";" }

        /// The call itself, `pg_catalog.<function>('name', 'value'::type, ...)`.
        var expression: String {
            let pairs = arguments.map { argument -> String in
                let type = ArchiveStatistics.types[function]?[argument.name] ?? "text"
                return SQL.literal(argument.name) + ", " + SQL.literal(argument.value) + (type == "text" ? "" : "::" + type)
            }
            return "pg_catalog.\(function.rawValue)(" + pairs.joined(separator: ", ") + ")"
        }

        /// What the call is, for a warning: the function, and the column of an attribute's.
        var label: String { function.rawValue + (function == .attribute ? " of column \(value("attname") ?? "?")" : "") }

        /// The same call without `names` (the restore leaves the target's own visibility counts).
        func without(_ names: Set<String>) -> Call { Call(function, arguments.filter { !names.contains($0.name) }) }
    }

    public var calls: [Call]
    public init(calls: [Call]) { self.calls = calls }

    /// The arguments a call may have, with their SQL types, per function (PostgreSQL 18's).
    static let types: [Function: [String: String]] = [
        .relation: ["version": "integer", "schemaname": "text", "relname": "text", "relpages": "integer", "reltuples": "real",
                    "relallvisible": "integer", "relallfrozen": "integer"],
        .attribute: ["version": "integer", "schemaname": "text", "relname": "text", "attname": "text", "inherited": "boolean",
                     "null_frac": "real", "avg_width": "integer", "n_distinct": "real", "most_common_vals": "text",
                     "most_common_freqs": "real[]", "histogram_bounds": "text", "correlation": "real", "most_common_elems": "text",
                     "most_common_elem_freqs": "real[]", "elem_count_histogram": "real[]", "range_length_histogram": "text",
                     "range_empty_frac": "real", "range_bounds_histogram": "text"],
    ]
    /// The arguments every call starts with, in this order.
    static let leading: [Function: [String]] = [.relation: ["version", "schemaname", "relname"],
                                                .attribute: ["version", "schemaname", "relname", "attname", "inherited"]]

    /// The psql variable the member's guard sets.
    static let guardVariable = "rgw_import_statistics"
    static let prologue = """

        -- Planner statistics of the source's tables at backup time. PostgreSQL 18 and newer import them in
        -- place of ANALYZE; older servers skip them (run ANALYZE there after a restore with stock tools).
        SELECT pg_catalog.current_setting('server_version_num')::integer >= 180000 AS \(guardVariable) \\gset
        \\if :\(guardVariable)

        """
    static let epilogue = "\\endif\n"

    /// The member's text: the guard, one statement per line (a value may hold line breaks), the end
    /// of the guard.
    public var text: String {
        Self.prologue + calls.map { $0.statement + "\n" }.joined() + Self.epilogue
    }

    /// The calls of a member's `text`, or why it is not exactly what `text` makes of them: a
    /// statement of another shape, an argument not in the function's list, the leading arguments
    /// out of order, a version or number that is not one, a statement not written byte for byte as
    /// `Call.statement` writes it. One statement at a time (a member of hundreds of tables is
    /// megabytes of text: no second copy of it is made).
    public static func parse(_ text: String) -> Result<ArchiveStatistics, StatisticsProblem> {
        func problem(_ why: String) -> Result<ArchiveStatistics, StatisticsProblem> { .failure(StatisticsProblem(description: why)) }
        guard text.hasPrefix(prologue), text.hasSuffix(epilogue) else {
            return problem("the statistics member does not start with its psql guard or does not end with \\endif")
        }
        var scanner = Scanner(Array(text.utf8), from: prologue.utf8.count, to: text.utf8.count - epilogue.utf8.count)
        var calls: [Call] = []
        while !scanner.atEnd {
            let start = scanner.position
            guard let call = scanner.call() else {
                return problem("statement \(calls.count + 1) of the statistics member is not a pg_restore_relation_stats or pg_restore_attribute_stats call as the backup writes it")
            }
            let names = call.arguments.map(\.name)
            let allowed = types[call.function]!
            guard Set(names).count == names.count, names.allSatisfy({ allowed[$0] != nil }),
                  Array(names.prefix(leading[call.function]!.count)) == leading[call.function]! else {
                return problem("statement \(calls.count + 1) of the statistics member has the arguments \(names.prefix(20)), not those of \(call.function.rawValue)")
            }
            for argument in call.arguments {
                let type = allowed[argument.name]!
                if (type == "integer" && Int32(argument.value) == nil) || (type == "real" && Double(argument.value) == nil)
                    || (type == "boolean" && argument.value != "true" && argument.value != "false") {
                    return problem("statement \(calls.count + 1) of the statistics member gives \(argument.name) the value \"\(argument.value.prefix(40))\", not a \(type)")
                }
            }
            guard scanner.bytes[start..<scanner.position].elementsEqual((call.statement + "\n").utf8) else {
                return problem("statement \(calls.count + 1) of the statistics member differs from the text the backup writes")
            }
            calls.append(call)
        }
        return .success(ArchiveStatistics(calls: calls))
    }

    /// Why a statistics member is refused.
    public struct StatisticsProblem: Error, CustomStringConvertible, Sendable { public var description: String }

    /// The calls per table, by qualified name, in the member's order.
    public var byTable: [String: [Call]] { Dictionary(grouping: calls, by: \.qualifiedName) }

    /// Reads a member's statements back: `SELECT * FROM pg_catalog.f('name', 'value'[::type], ...);\n`.
    struct Scanner {
        let bytes: [UInt8]
        var position: Int
        /// The end of what is scanned (the statements, before the guard's end).
        let end: Int
        init(_ bytes: [UInt8], from start: Int, to end: Int) { self.bytes = bytes; position = start; self.end = end }
        var atEnd: Bool { position >= end }

        mutating func take(_ text: String) -> Bool {
            let expected = text.utf8
            guard end - position >= expected.count, bytes[position..<(position + expected.count)].elementsEqual(expected) else { return false }
            position += expected.count
            return true
        }

        /// A string literal with `''` for a quote.
        mutating func literal() -> String? {
            guard take("'") else { return nil }
            var value: [UInt8] = []
            while position < end {
                let byte = bytes[position]
                position += 1
                if byte == UInt8(ascii: "'") {
                    if position < end, bytes[position] == UInt8(ascii: "'") { value.append(byte); position += 1; continue }
                    return String(decoding: value, as: UTF8.self)
                }
                value.append(byte)
            }
            return nil
        }

        /// `::type` (letters and `[]`), or nothing.
        mutating func cast() {
            guard take("::") else { return }
            while position < end, bytes[position] == UInt8(ascii: "[") || bytes[position] == UInt8(ascii: "]")
                    || (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(bytes[position]) { position += 1 }
        }

        mutating func call() -> Call? {
            guard take("SELECT * FROM pg_catalog.") else { return nil }
            let function: Function
            if take(Function.relation.rawValue + "(") { function = .relation } else if take(Function.attribute.rawValue + "(") { function = .attribute } else { return nil }
            var arguments: [Argument] = []
            repeat {
                guard let name = literal(), take(", "), let value = literal() else { return nil }
                cast()
                arguments.append(Argument(name, value))
            } while take(", ")
            guard take(");\n") else { return nil }
            return Call(function, arguments)
        }
    }
}

extension ArchiveStatistics {
    /// The relations whose statistics a backup records and a restore analyzes: tables, partitioned
    /// tables and materialized views outside the system schemas.
    static let relationsSQL = """
        SELECT c.oid, n.nspname, c.relname FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind IN ('r', 'p', 'm') AND \(CatalogSQL.userSchemaFilter)
        """

    /// The statistics of every table as `connection`'s transaction sees them (the backup's
    /// snapshot), as the calls that restore them; `pg_stats` columns a server does not have
    /// (before 17: the range histograms; before 18: `relallfrozen`) are left out. The session's
    /// `extra_float_digits = 3` (DumpSession) makes every real exact.
    static func read(_ connection: Connection) throws -> ArchiveStatistics {
        let version = String(connection.serverVersionNumber)
        let frozen = connection.serverVersionNumber >= 180000 ? "c.relallfrozen::text" : "NULL::text"
        var calls: [Call] = []
        let relations = try connection.query("""
            SELECT r.nspname, r.relname, c.relpages::text, c.reltuples::text, c.relallvisible::text, \(frozen)
            FROM (\(relationsSQL)) r JOIN pg_catalog.pg_class c ON c.oid = r.oid ORDER BY 1, 2
            """).rows
        let columns = ["null_frac", "avg_width", "n_distinct", "most_common_vals", "most_common_freqs", "histogram_bounds", "correlation",
                       "most_common_elems", "most_common_elem_freqs", "elem_count_histogram"]
            + (connection.serverVersionNumber >= 170000 ? ["range_length_histogram", "range_empty_frac", "range_bounds_histogram"] : [])
        let attributes = try connection.query("""
            SELECT s.schemaname::text, s.tablename::text, s.attname::text, s.inherited::text, \(columns.map { "s.\($0)::text" }.joined(separator: ", "))
            FROM pg_catalog.pg_stats s JOIN (\(relationsSQL)) r ON r.nspname = s.schemaname AND r.relname = s.tablename
            JOIN pg_catalog.pg_attribute a ON a.attrelid = r.oid AND a.attname = s.attname
            ORDER BY 1, 2, 4, a.attnum
            """).rows
        var byTable: [String: [Call]] = [:]
        for row in attributes {
            var arguments = [Argument("version", version), Argument("schemaname", row[0]!), Argument("relname", row[1]!),
                             Argument("attname", row[2]!), Argument("inherited", row[3]!)]
            for (index, column) in columns.enumerated() { if let value = row[4 + index] { arguments.append(Argument(column, value)) } }
            byTable[SQL.qualified(row[0]!, row[1]!), default: []].append(Call(.attribute, arguments))
        }
        for row in relations {
            var arguments = [Argument("version", version), Argument("schemaname", row[0]!), Argument("relname", row[1]!),
                             Argument("relpages", row[2]!), Argument("reltuples", row[3]!), Argument("relallvisible", row[4]!)]
            if let frozen = row[5] { arguments.append(Argument("relallfrozen", frozen)) }
            calls.append(Call(.relation, arguments))
            calls += byTable[SQL.qualified(row[0]!, row[1]!)] ?? []
        }
        return ArchiveStatistics(calls: calls)
    }

    /// Whether `calls` (one table's) stand in for an ANALYZE of it: a table of the archive with rows
    /// needs a row estimate (`reltuples` at least 0: the source analyzed or vacuumed it) and the
    /// statistics of every column it carries (a column added since the source's last ANALYZE has
    /// none); another relation (a partitioned parent, a materialized view) needs column statistics.
    /// A table they do not stand in for is analyzed.
    static func standsInForAnalyze(_ calls: [Call], table: ArchiveManifest.Table?) -> Bool {
        let columns = Set(calls.filter { $0.function == .attribute && $0.value("inherited") == "false" }.compactMap { $0.value("attname") })
        guard let table else { return calls.contains { $0.function == .attribute } }
        guard table.rows > 0 else { return true }
        guard let estimate = calls.first(where: { $0.function == .relation })?.value("reltuples").flatMap(Double.init), estimate >= 0 else { return false }
        return table.columns.allSatisfy(columns.contains)
    }

    /// The arguments the tool's own import leaves out: the visibility counts describe the source's
    /// visibility map, not the target's. A table loaded frozen (`allVisible`) gets its own page
    /// count as both (every page is all-visible and all-frozen); another keeps the target's, 0
    /// until a VACUUM sets its visibility map (PostgreSQL 18's index builds do not count it).
    static let targetOwned: Set<String> = ["relallvisible", "relallfrozen"]

    /// Import one table's statistics through `connection`: nil when every call returned true,
    /// otherwise why not, on one line (the calls that returned false, or the server's error). The
    /// calls go as one statement (`SELECT ARRAY[call, ...]`): one round trip and one transaction
    /// per table. The values go as parameters (`$n::type`; the argument names come from the fixed
    /// list), so no setting of the session (`standard_conforming_strings`) changes what a value
    /// means. A stopped run (a signal, a stall) or a lost connection is no failed import: it is
    /// thrown, and the run stops as in any other phase.
    static func importTable(_ calls: [Call], _ connection: Connection, allVisible: Bool = false) throws -> String? {
        var values: [String] = []
        let expressions = calls.map { call -> String in
            var pairs = call.without(targetOwned).arguments.map { argument -> String in
                values.append(argument.value)
                return SQL.literal(argument.name) + ", $\(values.count)::" + (types[call.function]?[argument.name] ?? "text")
            }
            if allVisible, call.function == .relation {
                values.append(call.qualifiedName)
                let pages = "(pg_catalog.pg_relation_size($\(values.count)::regclass) / pg_catalog.current_setting('block_size')::bigint)::integer"
                pairs += ["'relallvisible', " + pages, "'relallfrozen', " + pages]
            }
            return "pg_catalog.\(call.function.rawValue)(" + pairs.joined(separator: ", ") + ")"
        }
        let result: String?
        do {
            result = try connection.query("SELECT ARRAY[" + expressions.joined(separator: ", ") + "]::text", values).scalar
        } catch let error as PostgresError where error.kind == .interrupted || error.isConnectionLoss {
            throw error
        } catch let error as PostgresError {
            let reason = error.summary.split(separator: "\n").joined(separator: "; ")
            return "\(calls.count == 1 ? calls[0].label : "its \(calls.count) calls") failed: \(reason)"
        }
        let results = (result ?? "").trimmingCharacters(in: CharacterSet(charactersIn: "{}")).split(separator: ",").map(String.init)
        guard results.count == calls.count else { return "the server answered \(result ?? "null") to \(calls.count) calls" }
        let failed = zip(calls, results).filter { $0.1 != "t" }.map(\.0.label)
        return failed.isEmpty ? nil : failed.prefix(5).joined(separator: ", ") + " returned false"
    }
}
