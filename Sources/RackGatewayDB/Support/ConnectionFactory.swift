import RGWPostgres

/// What a connection is for; it names the connection in `pg_stat_activity.application_name`, so
/// an operator (and the stall watchdog, by prefix) can tell the tool's sessions apart.
public enum ConnectionPurpose: Sendable, Equatable {
    case backup, backupWorker
    /// The restore's own session; `restoreWorker("data 2")` a loader's.
    case restore, restoreWorker(String), analyze
    case verify, drill, watchdog, check, maint, migrate, status, reset

    /// Every name starts with `rack-gateway-db`; a restore's all start with `rack-gateway-db restore`.
    public var applicationName: String {
        switch self {
        case .backup: "rack-gateway-db backup"
        case .backupWorker: "rack-gateway-db backup worker"
        case .restore: "rack-gateway-db restore"
        case .restoreWorker(let role): "rack-gateway-db restore \(role)"
        case .analyze: "rack-gateway-db restore analyze"
        case .verify: "rack-gateway-db verify"
        case .drill: "rack-gateway-db drill"
        case .watchdog: "rack-gateway-db watchdog"
        case .check: "rack-gateway-db check"
        case .maint: "rack-gateway-db maint"
        case .migrate: "rack-gateway-db migrate"
        case .status: "rack-gateway-db status"
        case .reset: "rack-gateway-db reset-db"
        }
    }
}

/// The one way the tool opens connections: settings plus a purpose.
public struct ConnectionFactory: Sendable {
    public let settings: ConnectionSettings

    public init(settings: ConnectionSettings) { self.settings = settings }

    public func open(_ purpose: ConnectionPurpose) throws -> Connection {
        try Connection(settings: settings, applicationName: purpose.applicationName)
    }
}

extension ConnectionSettings {
    /// Open a connection for `purpose` (through `ConnectionFactory`).
    public func open(_ purpose: ConnectionPurpose) throws -> Connection {
        try ConnectionFactory(settings: self).open(purpose)
    }
}
