import Foundation

/// Append-only JSON Lines logs next to the archives (`verifications.jsonl`, `drills.jsonl`,
/// `restores.jsonl`): one object per line, snake_case keys, appended through the store (O_APPEND
/// locally, a conditional rewrite on S3) so concurrent runs never lose or interleave lines.
public enum JSONLines {
    public static func append<T: Encodable>(_ value: T, to name: String, in store: ArchiveStore) throws {
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        var line = [UInt8](try encoder.encode(value))
        line.append(0x0A)
        try store.appendLine(name, line)
    }

    /// The lines of `name` that decode as `T` (others are skipped); empty when it is missing.
    public static func read<T: Decodable>(_ type: T.Type, from name: String, in store: ArchiveStore) -> [T] {
        guard let bytes = try? store.get(name) else { return [] }
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        return bytes.split(separator: 0x0A).compactMap { try? decoder.decode(T.self, from: Data($0)) }
    }
}
