/// One schema migration file: `YYYYMMDDHHMMSS_name.sql`.
public struct Migration: Sendable, Equatable {
    /// The 14-digit timestamp that orders migrations.
    public var version: String
    /// The part of the file name after the version, without `.sql`.
    public var name: String
    public var sql: String

    public init(version: String, name: String, sql: String) {
        self.version = version
        self.name = name
        self.sql = sql
    }

    public var fileName: String { "\(version)_\(name).sql" }

    /// Parse a file name into version and name; nil when it does not follow the pattern.
    public static func parseFileName(_ fileName: String) -> (version: String, name: String)? {
        guard fileName.hasSuffix(".sql") else { return nil }
        let stem = fileName.dropLast(4)
        guard let underscore = stem.firstIndex(of: "_") else { return nil }
        let version = stem[..<underscore]
        let name = stem[stem.index(after: underscore)...]
        guard version.count == 14, version.allSatisfy(\.isASCIIDigit), !name.isEmpty,
              name.allSatisfy({ $0.isASCIIDigit || ("a"..."z").contains($0) || $0 == "_" })
        else { return nil }
        return (String(version), String(name))
    }
}

extension Character {
    var isASCIIDigit: Bool { ("0"..."9").contains(self) }
}
