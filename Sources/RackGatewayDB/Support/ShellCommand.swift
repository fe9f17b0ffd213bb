import Foundation

/// Commands the tool prints for a person to paste into a POSIX shell (undo and recovery commands,
/// the command that restores another archive): every word quoted so that it runs as printed.
public enum ShellCommand {
    /// `word` as one shell word: unchanged when it holds only characters no shell treats specially,
    /// else in single quotes (a `'` inside as `'\''`).
    public static func quoted(_ word: String) -> String {
        let plain = CharacterSet(charactersIn: "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./:=@,+%")
        if !word.isEmpty && word.unicodeScalars.allSatisfy(plain.contains) { return word }
        return "'" + word.replacingOccurrences(of: "'", with: "'\\''") + "'"
    }

    /// The words as one command line.
    public static func line(_ words: [String]) -> String { words.map(quoted).joined(separator: " ") }

    /// `psql URL -c STATEMENT ...` on `url` (a URL without the password: psql takes it from
    /// PGPASSWORD or ~/.pgpass); with no URL, the server's `postgres` database on psql's defaults.
    public static func psql(_ url: String?, _ statements: [String]) -> String {
        line(["psql"] + (url.map { [$0] } ?? ["-d", "postgres"]) + statements.flatMap { ["-c", $0] })
    }
}
