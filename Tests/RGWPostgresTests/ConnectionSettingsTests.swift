import Testing
@testable import RGWPostgres

@Suite("Connection settings (no server)")
struct ConnectionSettingsTests {
    /// `drill --existing-url`'s sessions: read-only from their start, after the options the URL gave,
    /// also for a child (PGOPTIONS, and the options in a password-less URL).
    @Test func readOnlyKeepsTheGivenOptionsAndReachesChildren() throws {
        let settings = try ConnectionSettings(conninfo: "postgres://u:s3cret@db.example:5433/app?options=-c%20search_path%3Dx&sslmode=require").readOnly()
        #expect(settings.effectiveValue("options") == "-c search_path=x -c default_transaction_read_only=on")
        #expect(settings.childEnvironment["PGOPTIONS"] == "-c search_path=x -c default_transaction_read_only=on")
        #expect(settings.effectiveValue("sslmode") == "require" && settings.databaseName == "app" && settings.explicitPassword == "s3cret")
        let url = settings.urlWithoutPassword
        #expect(url.contains("default_transaction_read_only%3Don") && !url.contains("s3cret"), "\(url)")
        #expect(try ConnectionSettings(conninfo: "postgres://u@h/d").readOnly().effectiveValue("options") == "-c default_transaction_read_only=on")
    }

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
        let fromLibpq = try ConnectionSettings.resolve(databaseURL: nil, environment: ["PGHOST": "db.example"])
        #expect(fromLibpq.source == "PG* environment variables")
        #expect(fromLibpq.childEnvironment.isEmpty)
    }

    /// Nothing says which database: never libpq's local socket as the login user.
    @Test(arguments: [
        [:],
        ["RGW_DATABASE_URL": "", "DATABASE_URL": ""],
        ["PGSSLMODE": "require", "PGPASSWORD": "not-where"],
    ])
    func noDatabaseConfiguredSaysSo(environment: [String: String]) throws {
        let error = #expect(throws: PostgresError.self) {
            try ConnectionSettings.resolve(databaseURL: nil, environment: environment)
        }
        #expect(error?.kind == .notConfigured)
        let text = error.map(String.init(describing:)) ?? ""
        #expect(text.hasPrefix("no database is configured: none of --database-url, RGW_DATABASE_URL, DATABASE_URL, PGHOST"), "\(text)")
        #expect(text.contains("set -a; . /etc/rack-gateway-db.env; set +a"), "\(text)")
        #expect(!text.contains("local socket") && !text.contains("not-where"), "\(text)")
        if environment["RGW_DATABASE_URL"] != nil { #expect(text.contains("(RGW_DATABASE_URL, DATABASE_URL are empty)"), "\(text)") }
        if environment["PGSSLMODE"] != nil { #expect(text.contains("PGPASSWORD, PGSSLMODE alone do not say which server"), "\(text)") }
    }

    @Test(arguments: ["PGHOST", "PGHOSTADDR", "PGPORT", "PGDATABASE", "PGUSER", "PGSERVICE"])
    func anyLocatingPGVariableIsAConfiguration(name: String) throws {
        let settings = try ConnectionSettings.resolve(databaseURL: nil, environment: [name: "x"])
        #expect(settings.source == "PG* environment variables")
    }

    /// Passwords as RDS generates them, not percent-encoded: refused, naming the source and how to
    /// encode, quoting no piece of the URL before its host (every piece of the password is unique
    /// text, so finding none anywhere in the message proves it).
    @Test(arguments: [
        "postgres://u:Kx7@Vq3#Jz5@db.example:5432/rack_gateway",          // @ and # (the issue's shape)
        "postgres://postgres:Kx7@Vq3#Jz5/Wm8@127.0.0.1:56433/rack_gateway", // libpq read host "Vq3#Jz5", db "Wm8@..."
        "postgres://u:Kx7/Vq3@db.example:5432/rack_gateway",              // libpq read host "u", port "Kx7"
        "postgres://u:Kx7?Vq3@db.example:5432/rack_gateway",              // libpq took it; any other parser reads a query
        "postgres://u:Kx7#Vq3@db.example:5432/rack_gateway",              // the same with a fragment
        "postgres://u:Kx7%Vq3@db.example:5432/rack_gateway",              // libpq quoted the whole password
        "postgresql://u@Kx7:Vq3@db.example/rack_gateway",                 // an @ in the user name
        "postgres://u:Kx7@Vq3@db.example/rack_gateway?sslmode=require",
    ])
    func unencodedPasswordCharactersAreRefusedWithoutQuotingThePassword(url: String) throws {
        let error = #expect(throws: PostgresError.self) {
            try ConnectionSettings.resolve(databaseURL: nil, environment: ["RGW_DATABASE_URL": url])
        }
        #expect(error?.kind == .malformedConnectionString)
        let text = error.map(String.init(describing:)) ?? ""
        #expect(text.contains("(from RGW_DATABASE_URL)"), "\(text)")
        for encoding in ["@ as %40", "# as %23", "/ as %2F", "? as %3F", ": as %3A"] {
            #expect(text.contains(encoding), "\(text)")
        }
        for piece in ["Kx7", "Vq3", "Jz5", "Wm8", "db.example", "56433"] {
            #expect(!text.contains(piece), "\(piece) in: \(text)")
        }
    }

    /// What the refusal's fix says works: the same password percent-encoded, or a URL libpq and
    /// every other parser read alike.
    @Test(arguments: [
        ("postgres://u:Kx7%40Vq3%23Jz5%2FWm8%3FTy9%3A%25@db.example:5432/rack_gateway", "Kx7@Vq3#Jz5/Wm8?Ty9:%"),
        ("postgres://u:pa:ss@db.example/rack_gateway", "pa:ss"),
        ("postgres://u:pw@db.example/rack_gateway?application_name=me@host&sslrootcert=/etc/ssl/ca.pem", "pw"),
        ("postgres://u:pw@[::1]:5432,db.example:5433/rack_gateway", "pw"),
    ])
    func wellEncodedURLsAreAccepted(url: String, password: String) throws {
        let settings = try ConnectionSettings(conninfo: url)
        #expect(settings.explicitPassword == password)
        #expect(settings.databaseName == "rack_gateway")
    }

    @Test func userOnlyURLsAndUnixSocketsAreAccepted() throws {
        #expect(try ConnectionSettings(conninfo: "postgres:///rack_gateway?host=/var/run/postgresql").databaseName == "rack_gateway")
        #expect(try ConnectionSettings(conninfo: "postgres://rgw@db.example/rack_gateway").effectiveValue("user") == "rgw")
    }

    /// libpq's own complaints quote pieces of the string; a piece that is or may be part of a
    /// password is hidden, the rest shown.
    @Test func libpqMessagesHideWhatMayBePartOfThePassword() throws {
        let keyValue = #expect(throws: PostgresError.self) {
            try ConnectionSettings(conninfo: "host=db.example password=Kx7 Vq3 dbname=rgw")
        }
        let keyValueText = keyValue.map(String.init(describing:)) ?? ""
        #expect(!keyValueText.contains("Vq3") && !keyValueText.contains("Kx7"), "\(keyValueText)")
        #expect(keyValueText.contains("not shown"), "\(keyValueText)")
        let query = #expect(throws: PostgresError.self) {
            try ConnectionSettings(conninfo: "postgres://u:Kx7@db.example/rgw?sslmod=require")
        }
        let queryText = query.map(String.init(describing:)) ?? ""
        #expect(queryText.contains("\"sslmod\""), "a typo outside the password is named: \(queryText)")
        #expect(!queryText.contains("Kx7"), "\(queryText)")
        #expect(ConnectionSettings.shown("Kx7", of: "postgres://u:Kx7@h:Kx7/db") == "(a value not shown: it may be part of the password)")
        #expect(ConnectionSettings.shown("5432x", of: "postgres://u:pw@h:5432x/db") == "\"5432x\"")
        // libpq's syntax is named as it is: `missing "=" after "/rgw"`.
        #expect(ConnectionSettings.hidingSecrets(#"missing "=" after "/rgw" in connection info string"#, of: "/rgw")
                == #"missing "=" after "/rgw" in connection info string"#)
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
