import Testing
@testable import RGWPostgres

@Suite("Connection settings (no server)")
struct ConnectionSettingsTests {
    @Test func flagBeatsEnvironment() throws {
        let settings = try ConnectionSettings.resolve(
            databaseURL: "postgres://a@flag-host/db1",
            environment: ["RGW_DATABASE_URL": "postgres://b@rgw-host/db2", "DATABASE_URL": "postgres://c@plain/db3"])
        #expect(settings.source == "--database-url")
        #expect(settings.effectiveValue("host") == "flag-host")
    }

    @Test func rgwVariableBeatsDatabaseURL() throws {
        let settings = try ConnectionSettings.resolve(
            databaseURL: nil,
            environment: ["RGW_DATABASE_URL": "postgres://b@rgw-host/db2", "DATABASE_URL": "postgres://c@plain/db3"])
        #expect(settings.source == "RGW_DATABASE_URL")
        #expect(settings.databaseName == "db2")
    }

    @Test func databaseURLThenLibpqVariables() throws {
        let fromURL = try ConnectionSettings.resolve(databaseURL: "", environment: ["DATABASE_URL": "postgres://c@plain:6543/db3"])
        #expect(fromURL.source == "DATABASE_URL")
        #expect(fromURL.effectiveValue("port") == "6543")
        let fromLibpq = try ConnectionSettings.resolve(databaseURL: nil, environment: [:])
        #expect(fromLibpq.source == "PG* environment variables")
        #expect(fromLibpq.childEnvironment.isEmpty)
    }

    @Test func descriptionAndErrorsNeverShowThePassword() throws {
        let settings = try ConnectionSettings(conninfo: "postgres://alice:s3cr3t-pw@db.example:5433/rgw?sslmode=require")
        #expect(settings.description == "alice@db.example:5433/rgw")
        #expect(!settings.description.contains("s3cr3t-pw"))
        let error = #expect(throws: PostgresError.self) {
            try ConnectionSettings(conninfo: "postgres://alice:s3cr3t-pw@[broken")
        }
        #expect(error?.kind == .malformedConnectionString)
        #expect(error.map { !String(describing: $0).contains("s3cr3t-pw") } == true)
    }

    @Test func childEnvironmentCarriesEverySettingAsPGVariables() throws {
        let settings = try ConnectionSettings(conninfo: "postgres://alice:s3cr3t@db.example:5433/rgw?sslmode=require")
        let environment = settings.childEnvironment
        #expect(environment["PGPASSWORD"] == "s3cr3t")
        #expect(environment["PGHOST"] == "db.example")
        #expect(environment["PGPORT"] == "5433")
        #expect(environment["PGUSER"] == "alice")
        #expect(environment["PGDATABASE"] == "rgw")
        #expect(environment["PGSSLMODE"] == "require")
    }

    @Test func replacingTheDatabaseKeepsTheRest() throws {
        let settings = try ConnectionSettings(conninfo: "postgres://alice:p%27w@db.example:5433/rgw")
        let other = settings.replacingDatabase(with: "scratch db")
        #expect(other.databaseName == "scratch db")
        #expect(other.childEnvironment["PGPASSWORD"] == "p'w")
        #expect(other.effectiveValue("port") == "5433")
    }

    @Test(arguments: [
        ("postgres://u:pw@h/db", "postgres://u:***@h/db"),
        ("host=h password=pw user=u", "host=h password=*** user=u"),
        ("postgres://h/db?password=pw&sslmode=require", "postgres://h/db?password=***&sslmode=require"),
    ])
    func redaction(input: String, expected: String) {
        #expect(ConnectionSettings.redactedConninfo(input) == expected)
    }
}
