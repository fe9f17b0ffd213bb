import Foundation

/// Quoting for SQL text built by this tool. Values always go through parameters; only
/// identifiers read from the catalog are spliced into statements, and always through here.
public enum SQL {
    /// `quote_ident` rules: always double-quoted, embedded quotes doubled.
    ///
    /// - Important: the only way an identifier may enter SQL text.
    public static func identifier(_ name: String) -> String {
        "\"" + name.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }

    /// `"schema"."name"`.
    public static func qualified(_ schema: String, _ name: String) -> String {
        identifier(schema) + "." + identifier(name)
    }

    /// A string literal (`'it''s'`), for the rare statement that takes no parameters (COPY, SET).
    ///
    /// - Important: standard_conforming_strings must be on (the default since 9.1).
    public static func literal(_ value: String) -> String {
        "'" + value.replacingOccurrences(of: "'", with: "''") + "'"
    }
}
