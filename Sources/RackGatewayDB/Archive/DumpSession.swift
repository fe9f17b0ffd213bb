import RGWPostgres

/// The session settings every dump and verification session pins (docs/design.md section 3).
public enum DumpSession {
    /// The settings that shape the COPY text, and so the fingerprints; recorded in the manifest.
    public static let textSettings: [(String, String)] = [
        ("TimeZone", "UTC"), ("DateStyle", "ISO"), ("IntervalStyle", "postgres"), ("extra_float_digits", "3"),
        ("bytea_output", "hex"), ("client_encoding", "UTF8"), ("row_security", "off"),
    ]
    /// No server-side timeout cuts a long dump short.
    static let timeouts: [(String, String)] = [("statement_timeout", "0"), ("idle_in_transaction_session_timeout", "0")]
    public static var settings: [(String, String)] { textSettings + timeouts }

    public static var manifestSettings: [String: String] {
        Dictionary(uniqueKeysWithValues: textSettings.map { ($0.0, $0.1) })
    }

    public static func apply(to connection: Connection) throws {
        let sql = settings.map { "SET \($0.0) = \(SQL.literal($0.1))" }.joined(separator: "; ")
        try connection.execute(sql)
    }
}
