import RGWPostgres

/// The tool's PostgreSQL version rules, in one place.
///
/// - Servers: 15 to 18 are supported and tested, as the source of a backup and as the target of a
///   restore or drill.
/// - Clients: `pg_dump` must be at least the server's major version (it refuses older, and the tool
///   checks first); the newest client reads every older server, so one image with the newest client
///   (`RGW_PG_BIN_DIR`) backs up a whole fleet.
/// - Across versions: an archive restores into the same or a newer major version (15 → 18 is the
///   upgrade path). Into an older one it is refused before anything is created, unless
///   `--allow-downgrade` asks to try: what the older server does not understand then fails the restore,
///   which leaves the target marked FAILED.
/// - Session settings a newer `pg_dump` writes that an older target does not know: those in
///   `harmlessSettings` are skipped with a note (pg_dump 17+ writes `SET transaction_timeout = 0`,
///   which only turns a timeout off); any other unknown one is refused, naming it.
public enum PostgresVersions {
    public static let supportedServers = 15...18

    /// Settings a dump sets only to switch a limit off: skipping them on a server without them
    /// changes nothing, since that server has no such limit. With the major version that added them.
    public static let harmlessSettings: [String: Int] = ["transaction_timeout": 17]

    public static func major(ofVersionNumber number: Int) -> Int { number / 10_000 }

    /// Refuses restoring an archive of a newer server into an older one unless `allowDowngrade`.
    public static func checkRestore(archiveServer: Int, targetServer: Int, allowDowngrade: Bool) throws {
        let source = major(ofVersionNumber: archiveServer), target = major(ofVersionNumber: targetServer)
        guard source > target, !allowDowngrade else { return }
        throw ToolError(.downgradeRefused, "the archive is of a PostgreSQL \(source) server and the target runs PostgreSQL \(target): restoring into an older major version is refused; nothing was created",
                        fix: "Restore into a server of version \(source) or newer, or pass --allow-downgrade to try anyway (what \(target) does not support fails the restore, and the target is then marked FAILED).")
    }

    /// What the tool says about the versions for `check`: the server, the client found, and where an
    /// archive made now can be restored.
    public static func describe(serverMajor: Int, clientMajor: Int?) -> String {
        var parts: [String] = []
        if !supportedServers.contains(serverMajor) {
            parts.append("PostgreSQL \(serverMajor) is outside the tested \(supportedServers.lowerBound)-\(supportedServers.upperBound)")
        }
        if let clientMajor {
            parts.append("an archive made now restores into PostgreSQL \(serverMajor) or newer (with --allow-downgrade, older is tried)")
            if clientMajor >= 17 && serverMajor < 17 {
                parts.append("pg_dump \(clientMajor) writes SET transaction_timeout, which the tool skips on servers before 17 (stock path: delete those lines)")
            }
        }
        return parts.joined(separator: "; ")
    }
}

/// Drops the `SET` statements of settings a target server does not know, where that is harmless,
/// and refuses the others by name.
struct SessionSettingFilter {
    let known: Set<String>
    let serverMajor: Int

    init(_ connection: Connection) throws {
        known = Set(try connection.query("SELECT name FROM pg_catalog.pg_settings").rows.compactMap { $0[0] })
        serverMajor = connection.serverMajorVersion
    }

    /// Whether to run `statement`; throws for a setting the server lacks that is not harmless.
    func keep(_ statement: String, section: String, line: Int) throws -> Bool {
        guard let name = DumpScript.settingName(statement), !known.contains(name), !name.contains(".") else { return true }
        if PostgresVersions.harmlessSettings[name] != nil { return false }
        throw ToolError(.failed, "\(section) line \(line) sets \(name), which PostgreSQL \(serverMajor) does not know: the archive was made by a newer pg_dump for a newer server; nothing more was run",
                        fix: "Restore into a newer server, or edit the archive with stock tools (gunzip, remove the SET \(name) lines, psql).")
    }
}
