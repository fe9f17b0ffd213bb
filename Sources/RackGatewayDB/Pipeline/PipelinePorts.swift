import Foundation

/// The Convox side of the restore pipeline: `ConvoxClient`, or a stand-in in the unit tests.
public protocol ServiceControl: Sendable {
    /// `apps info`'s status (running, updating, ...).
    func appStatus() throws -> String
    func services() throws -> [ConvoxClient.Service]
    func processes(service: String) throws -> [ConvoxClient.Process]
    func scale(_ service: String, count: Int) throws
    /// The command as a person would type it (plans and recovery instructions).
    func commandLine(_ arguments: [String]) -> String
}

extension ConvoxClient: ServiceControl {
    public func scale(_ service: String, count: Int) throws {
        try run(["scale", service, "--count", String(count)])
    }
}

/// The database side of the restore pipeline: loads, migration, the swap of names.
/// `PostgresPipelineDatabase` is the real one.
public protocol PipelineDatabase: Sendable {
    /// End every other session on `database`; says which.
    func terminateSessions(of database: String) throws -> String
    /// Restore the archive into the new database `name` and verify it; says how long it took.
    func load(into name: String) throws -> String
    /// Back up the live database (before an in-place restore); the archive's path and a summary.
    func safetyBackup() throws -> (file: String, detail: String)
    /// Drop and recreate the live database and restore into it; `dropped` is called the moment the
    /// live database is gone.
    func loadInPlace(dropped: @escaping @Sendable () -> Void) throws -> String
    /// Migrate `database` as preflight planned.
    func migrate(_ database: String) throws -> String
    /// `live` becomes `previous`, `restored` becomes `live`, in one transaction.
    /// - Important: the point of no return of swap mode.
    func swap(live: String, restored: String, previous: String) throws
    /// Drop `database` if it exists; whether it is gone.
    func drop(_ database: String) -> Bool
}
