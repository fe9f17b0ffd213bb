import Foundation
import Testing
import TestSupport
@testable import RackGatewayDB

@Suite("samples/generate-sample-data")
struct SampleDataTests {
    static var script: String { TestArchives.sampleDataScript }

    @Test func generatesALinkedAuditChainAndEveryTable() throws {
        try TestDatabase.withMigrated { database in
            let run = try Shell.run(Self.script, ["--events", "1500"], environment: ["RGW_DATABASE_URL": database.url])
            #expect(run.status == 0, "\(run.stderr)")
            #expect(!run.stdout.contains(database.cluster.password) && !run.stderr.contains(database.cluster.password))
            let connection = try database.connect()
            #expect(try connection.query("SELECT count(*) FROM audit.audit_event").scalar == "1500")
            #expect(try connection.query("SELECT count(*) FROM audit.verify_chain(0, 1499)").scalar == "0")
            #expect(try connection.query("SELECT min(chain_index)::text || '-' || max(chain_index) FROM audit.audit_event").scalar == "0-1499")
            #expect(try connection.query("SELECT bool_and(octet_length(event_hash) = 32) FROM audit.audit_event").scalar == "t")
            for table in ["users", "user_sessions", "api_tokens", "mfa_methods", "mfa_backup_codes", "trusted_devices",
                          "settings", "deploy_approval_requests", "rgw_internal_metadata"] {
                #expect(try connection.query("SELECT count(*) > 0 FROM \(table)").scalar == "t", "\(table) is empty")
            }
            // A second run of the same size appends (new users, other token hashes: the same seed
            // again repeated the first run's unique hashes) and keeps the chain linked.
            let again = try Shell.run(Self.script, ["--events", "1500"], environment: ["RGW_DATABASE_URL": database.url])
            #expect(again.status == 0, "\(again.stderr)")
            #expect(try connection.query("SELECT count(*) FROM audit.verify_chain(0, 2999)").scalar == "0")
            #expect(try connection.query("SELECT last_value FROM audit.audit_event_chain_index_seq").scalar == "2999")
        }
    }

    /// As rack-gateway-db: a password not percent-encoded is refused without showing it, and no
    /// database at all is said, never psql's local socket.
    @Test func refusesAnUnencodedPasswordAndSaysWhenNoDatabaseIsConfigured() throws {
        let cluster = try TestCluster.shared()
        let raw = "postgres://u:Kx7@Vq3#Jz5/Wm8@\(cluster.host):\(cluster.port)/postgres"
        let refused = try Shell.run("/usr/bin/env", ["-i", "PATH=/usr/bin:/bin", Self.script, "--database-url", raw])
        #expect(refused.status == 64, "\(refused.stderr)")
        #expect(refused.stderr.contains("@ as %40, # as %23, / as %2F"), "\(refused.stderr)")
        for piece in ["Kx7", "Vq3", "Jz5", "Wm8"] { #expect(!(refused.stdout + refused.stderr).contains(piece), "\(refused.stderr)") }
        let none = try Shell.run("/usr/bin/env", ["-i", "PATH=/usr/bin:/bin", Self.script])
        #expect(none.status == 64, "\(none.stderr)")
        #expect(none.stderr.contains("no database is configured") && !none.stderr.contains("socket"), "\(none.stderr)")
    }
}
