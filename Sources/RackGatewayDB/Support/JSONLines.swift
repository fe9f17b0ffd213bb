import Foundation

/// Append-only JSON Lines files in the archive directory (`verifications.jsonl`, `drills.jsonl`):
/// one object per line, snake_case keys, appended with O_APPEND so concurrent runs never interleave
/// inside a line, created mode 0600.
public enum JSONLines {
    public static func append<T: Encodable>(_ value: T, to path: String) throws {
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        var line = [UInt8](try encoder.encode(value))
        line.append(0x0A)
        let fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            throw ToolError(.failed, "cannot open \(path): \(String(cString: strerror(errno)))")
        }
        defer { close(fd) }
        if let code = ArchiveFileWriter.writeFully(fd, line[...]) {
            throw ToolError(.failed, "cannot append to \(path): \(String(cString: strerror(code)))")
        }
    }

    /// The lines of `path` that decode as `T` (others are skipped); empty when the file is missing.
    public static func read<T: Decodable>(_ type: T.Type, from path: String) -> [T] {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return [] }
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        return text.split(separator: "\n").compactMap { try? decoder.decode(T.self, from: Data($0.utf8)) }
    }
}
