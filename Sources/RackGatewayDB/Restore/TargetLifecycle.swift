import Foundation

/// The life of one restore's target database, owned by the `RestoreRunner` that loads it and
/// observed by whoever needs to act on it (the drill drops a scratch database it created, the
/// pipeline's in-place mode passes its point of no return when the live database is recreated).
///
/// checked (nothing changed yet) → creating (CREATE DATABASE, or DROP and CREATE, sent: whether it
/// took effect is unknown until it answers) → prepared (created, recreated, or found empty; missing roles
/// created) → marked (COMMENT ON DATABASE says INCOMPLETE) → loaded (schema, data, indexes,
/// verified when asked) → finished (the mark removed). Any state after checked can go to failed
/// (marked FAILED, or left unmarked when the role may not comment). What a stopped restore leaves is
/// read from here: `summary` names it and the command that clears it.
public final class TargetLifecycle: @unchecked Sendable {
    public enum State: Int, Sendable, Comparable {
        case checked, creating, prepared, marked, loaded, finished, failed

        public static func < (a: State, b: State) -> Bool { a.rawValue < b.rawValue }
    }

    public let target: RestoreTarget
    private let lock = NSLock()
    private var _state: State = .checked
    /// Whether the target got the INCOMPLETE or FAILED mark (false when the role is not its owner).
    private var _markedInDatabase = false
    /// Whether this restore created (or recreated) the database.
    private var _created = false
    /// Whether it dropped what the database held first (`--clean`): those contents are gone.
    private var _recreated = false
    private var observers: [@Sendable (State) -> Void] = []

    public init(target: RestoreTarget) { self.target = target }

    public var state: State { lock.withLock { _state } }
    public var created: Bool { lock.withLock { _created } }
    public var markedInDatabase: Bool { lock.withLock { _markedInDatabase } }

    /// Be told of every state the target enters from now on.
    public func observe(_ observer: @escaping @Sendable (State) -> Void) { lock.withLock { observers.append(observer) } }

    /// Enter `state`; only forward, and failed from anywhere after checked.
    func move(to state: State, created: Bool? = nil, recreated: Bool? = nil, marked: Bool? = nil) {
        let notify = lock.withLock { () -> [@Sendable (State) -> Void] in
            precondition(state > _state || (state == .failed && _state != .finished), "target \(target.database): \(_state) → \(state)")
            _state = state
            if let created { _created = created }
            if let recreated { _recreated = recreated }
            if let marked { _markedInDatabase = marked }
            return observers
        }
        for observer in notify { observer(state) }
    }

    /// What the target is left as, in one sentence for an error message (nil when nothing changed).
    public var summary: String? {
        let (state, marked, recreated) = lock.withLock { (_state, _markedInDatabase, _recreated) }
        // What --clean dropped is gone whatever happened next: said, so nobody waits for an undo.
        let dropped = recreated ? "; what it held before was dropped (--clean): only a backup brings that back" : ""
        switch state {
        case .checked: return nil
        case .creating: return "database \(target.database) may have been created or dropped (the run stopped while the server did it)"
        case .finished: return "database \(target.database) is restored"
        case .failed:
            return (marked ? "database \(target.database) is left incomplete and marked FAILED (COMMENT ON DATABASE)"
                           : "database \(target.database) is left incomplete (it could not be marked: the role does not own it)") + dropped
        case .prepared, .marked, .loaded:
            return "database \(target.database) is left incomplete" + (marked ? " and marked INCOMPLETE (COMMENT ON DATABASE)" : "") + dropped
        }
    }

    /// The commands that clear a target left incomplete, each on a line of its own, quoted for the
    /// shell, with host, port, user and database (never the password: it comes from PGPASSWORD or
    /// ~/.pgpass), so that each runs as printed.
    /// `again`: false when the archive itself was refused (damaged, or not a dump this tool may
    /// run): restoring it again cannot help, so only the drop is offered. `arguments` go into the
    /// restore command after `--yes` (`RestoreOptions.againArguments`: the keys, --jobs...).
    public func clearing(archive: String, again: Bool = true, arguments: [String] = []) -> String {
        let url = target.settings.urlWithoutPassword
        let server = target.settings.replacingDatabase(with: "postgres").urlWithoutPassword
        let drop = ShellCommand.psql(server, ["DROP DATABASE \(SQL.identifier(target.database)) WITH (FORCE)"])
        guard again else {
            return """
                Do not use \(target.database). Drop it, then restore another archive (`list` shows them):
                  \(drop)
                (The password is left out: give it with PGPASSWORD or ~/.pgpass.)
                """
        }
        return """
            Do not use \(target.database). To restore again over it:
              \(ShellCommand.line(["rack-gateway-db", "restore", archive, "--target-url", url, "--clean", "--yes"] + arguments))
            Or to drop it:
              \(drop)
            (The password is left out: give it with PGPASSWORD or ~/.pgpass.)
            """
    }
}
