import Foundation
import Testing
import TestSupport
@testable import RackGatewayDB

/// Where the database comes from, as the built binary reports it: a password not percent-encoded
/// in any of the URL options and variables, and no database configured at all.
@Suite("database URLs on the command line")
struct DatabaseURLTests {
    /// A password as RDS generates them: every piece between its special characters is text found
    /// nowhere else, so finding none of them in the output proves nothing of it was shown.
    static let password = "Kx7@Vq3#Jz5/Wm8?Ty9"
    static let pieces = ["Kx7", "Vq3", "Jz5", "Wm8", "Ty9"]

    /// Every place a URL is read, each given the password as it is (not percent-encoded): refused
    /// with exit 64 before any connection, the fix saying how to encode, no piece of it in stdout or
    /// stderr, under --json too.
    @Test func anUnencodedPasswordIsRefusedWhereverAURLIsGiven() throws {
        try TestDatabase.with { database in
            let role = "rgw_rds_\(database.name.suffix(6))"
            try database.psql("CREATE ROLE \(role) LOGIN PASSWORD '\(Self.password)'")
            defer { _ = try? database.psql("DROP ROLE \(role)") }
            let cluster = database.cluster
            // The shape: user:password@host:port/db with nothing encoded.
            let raw = "postgres://\(role):\(Self.password)@\(cluster.host):\(cluster.port)/\(database.name)"
            let archive = try TestArchives.temporaryDirectory() + "/none.sql.gz"
            let runs: [(String, [String], [String: String])] = [
                ("--database-url", ["check", "--database-url", raw], [:]),
                ("RGW_DATABASE_URL", ["check"], ["RGW_DATABASE_URL": raw]),
                ("DATABASE_URL", ["status"], ["DATABASE_URL": raw]),
                ("RGW_DATABASE_URL", ["backup", "--json", "--dir", try TestArchives.temporaryDirectory()], ["RGW_DATABASE_URL": raw]),
                ("--target-url", ["restore", archive, "--target-url", raw], ["RGW_DATABASE_URL": database.url]),
                ("--scratch-url", ["drill", archive, "--scratch-url", raw], ["RGW_DATABASE_URL": database.url]),
            ]
            for (source, arguments, environment) in runs {
                let result = try CLI.run(arguments, environment: environment)
                #expect(result.status == 64, "\(arguments): \(result)")
                #expect(result.output.contains("invalid database URL"), "\(result)")
                #expect(result.output.contains("(from \(source))"), "\(result)")
                #expect(result.output.contains("@ as %40, # as %23, / as %2F, ? as %3F, : as %3A"), "\(result)")
                for piece in Self.pieces { #expect(!result.output.contains(piece), "\(piece) shown: \(result)") }
                #expect(!result.output.contains("Checking") && !result.output.contains("could not translate"), "\(result)")
            }
            // The fix as the message gives it: the same password percent-encoded connects.
            let encoded = cluster.url(database: database.name, user: role, password: Self.password)
            #expect(encoded.contains("Kx7%40Vq3%23Jz5%2FWm8%3FTy9"))
            let fixed = try CLI.run(["check", "--json"], environment: ["RGW_DATABASE_URL": encoded])
            let report = try JSONSerialization.jsonObject(with: Data(fixed.stdout.utf8)) as? [String: Any]
            let items = report?["items"] as? [[String: Any]] ?? []
            #expect(items.first { $0["name"] as? String == "connection" }?["status"] as? String == "ok", "\(fixed)")
            for piece in Self.pieces { #expect(!fixed.output.contains(piece), "\(piece) shown: \(fixed)") }
        }
    }

    /// No --database-url, RGW_DATABASE_URL, DATABASE_URL or PG* variable naming a server (a crontab
    /// that sourced its env file without exporting it): said so, exit 64, never a local socket.
    @Test func noDatabaseConfiguredIsSaidForEveryCommandThatNeedsOne() throws {
        let directory = try TestArchives.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        for arguments in [["check"], ["status"], ["migrate"], ["backup", "--dir", directory], ["restore", directory + "/x.sql.gz"],
                          ["drill", directory + "/x.sql.gz"], ["maint", "size"]] {
            let result = try CLI.run(arguments, environment: ["PGSSLMODE": "require"])
            #expect(result.status == 64, "\(arguments): \(result)")
            #expect(result.stderr.hasPrefix("rack-gateway-db: error: no database is configured: none of --database-url, RGW_DATABASE_URL, DATABASE_URL"), "\(result)")
            #expect(result.stderr.contains("PGSSLMODE alone does not say which server"), "\(result)")
            #expect(result.stderr.contains("set -a; . /etc/rack-gateway-db.env; set +a"), "\(result)")
            #expect(!result.output.contains("local socket") && !result.output.contains("Checking"), "\(result)")
        }
        let json = try CLI.run(["check", "--json"])
        let document = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: [String: Any]]
        #expect(document?["error"]?["code"] as? String == "usage", "\(json)")
        #expect((document?["error"]?["fix"] as? String)?.contains("RGW_DATABASE_URL=postgres://") == true, "\(json)")
    }

    /// libpq's own variables alone still choose the database (the documented last resort).
    @Test func pgVariablesAloneStillConnect() throws {
        let cluster = try TestCluster.shared()
        let result = try CLI.run(["check", "--json"], environment: [
            "PGHOST": cluster.host, "PGPORT": String(cluster.port), "PGUSER": cluster.superuser,
            "PGPASSWORD": cluster.password, "PGDATABASE": "postgres",
        ])
        let report = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any]
        let items = report?["items"] as? [[String: Any]] ?? []
        #expect(items.first { $0["name"] as? String == "connection" }?["status"] as? String == "ok", "\(result)")
        #expect(!result.output.contains(cluster.password))
    }
}
