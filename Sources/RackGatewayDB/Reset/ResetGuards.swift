/// The guards `reset-db` must pass before it destroys anything; pure, so tests check every case.
public struct ResetGuards: Sendable {
    public static let confirmationVariable = "RESET_RACK_GATEWAY_DATABASE"
    public static let confirmationValue = "DELETE_ALL_DATA"
    public static let disableEnvironmentCheckVariable = "DISABLE_DATABASE_ENVIRONMENT_CHECK"
    public static let devModeVariable = "DEV_MODE"

    public var environment: [String: String]

    public init(environment: [String: String]) {
        self.environment = environment
    }

    /// Nil when the reset may go ahead; otherwise the refusal, naming the guard and how to satisfy it.
    ///
    /// - Parameter metadataEnvironment: `rgw_internal_metadata.environment`, or nil when the
    ///   database has no metadata row (a fresh database).
    public func refusal(metadataEnvironment: String?) -> ToolError? {
        let confirmation = environment[Self.confirmationVariable]
        guard confirmation == Self.confirmationValue else {
            let seen = confirmation.map { "is set to '\($0)', not exactly \(Self.confirmationValue)" } ?? "is not set"
            return ToolError(.failed, "reset-db refused: \(Self.confirmationVariable) \(seen); nothing was changed",
                             fix: "To delete all data, run with \(Self.confirmationVariable)=\(Self.confirmationValue).")
        }
        guard let metadataEnvironment else {
            guard environment[Self.devModeVariable] == "true" else {
                return ToolError(.failed, "reset-db refused: the database has no rgw_internal_metadata row, so its environment is unknown; nothing was changed",
                                 fix: "If this is a development database, run with \(Self.devModeVariable)=true as well.")
            }
            return nil
        }
        if metadataEnvironment == "development" { return nil }
        guard environment[Self.disableEnvironmentCheckVariable] == "1" else {
            return ToolError(.failed, "reset-db refused: rgw_internal_metadata.environment is '\(metadataEnvironment)', not 'development'; nothing was changed",
                             fix: "Only if you really mean to wipe this \(metadataEnvironment) database, run with \(Self.disableEnvironmentCheckVariable)=1 as well.")
        }
        return nil
    }
}
