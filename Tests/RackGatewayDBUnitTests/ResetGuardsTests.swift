import Testing
@testable import RackGatewayDB

@Suite("reset-db guards (no server)")
struct ResetGuardsTests {
    static let confirmed = ["RESET_RACK_GATEWAY_DATABASE": "DELETE_ALL_DATA"]

    @Test(arguments: [nil, "", "delete_all_data", "DELETE_ALL_DATA ", "DELETE-ALL-DATA", "yes"] as [String?])
    func confirmationMustBeExact(value: String?) {
        var environment: [String: String] = ["DEV_MODE": "true", "DISABLE_DATABASE_ENVIRONMENT_CHECK": "1"]
        environment["RESET_RACK_GATEWAY_DATABASE"] = value
        let refusal = ResetGuards(environment: environment).refusal(metadataEnvironment: "development")
        #expect(refusal?.message.contains("RESET_RACK_GATEWAY_DATABASE") == true)
    }

    @Test func developmentDatabaseIsAllowed() {
        #expect(ResetGuards(environment: Self.confirmed).refusal(metadataEnvironment: "development") == nil)
    }

    @Test func productionNeedsTheCheckDisabled() {
        let refusal = ResetGuards(environment: Self.confirmed).refusal(metadataEnvironment: "production")
        #expect(refusal?.message.contains("'production'") == true)
        #expect(refusal?.fix?.contains("DISABLE_DATABASE_ENVIRONMENT_CHECK=1") == true)
        var disabled = Self.confirmed
        disabled["DISABLE_DATABASE_ENVIRONMENT_CHECK"] = "true"  // only "1" counts
        #expect(ResetGuards(environment: disabled).refusal(metadataEnvironment: "production") != nil)
        disabled["DISABLE_DATABASE_ENVIRONMENT_CHECK"] = "1"
        #expect(ResetGuards(environment: disabled).refusal(metadataEnvironment: "production") == nil)
    }

    @Test func freshDatabaseNeedsDevMode() {
        let refusal = ResetGuards(environment: Self.confirmed).refusal(metadataEnvironment: nil)
        #expect(refusal?.fix?.contains("DEV_MODE=true") == true)
        var devMode = Self.confirmed
        devMode["DEV_MODE"] = "1"  // only "true" counts
        #expect(ResetGuards(environment: devMode).refusal(metadataEnvironment: nil) != nil)
        devMode["DEV_MODE"] = "true"
        #expect(ResetGuards(environment: devMode).refusal(metadataEnvironment: nil) == nil)
    }
}
