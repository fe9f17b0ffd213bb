import RGWPostgres
import Testing
import TestSupport
@testable import RackGatewayDB

@Suite("audit log schema against a real server")
struct AuditSchemaTests {
    @Test func appendBuildsAVerifiableChainAndRejectsChanges() throws {
        try TestDatabase.withMigrated { database in
            let connection = try database.connect()
            for index in 0..<20 {
                let chainIndex = try connection.query(
                    "SELECT audit.append_event('auth', 'login', 'success', $1, p_details => $2::jsonb)",
                    ["user\(index)@example.com", #"{"n": \#(index)}"#]).scalar
                #expect(chainIndex == String(index))
            }
            #expect(try connection.query("SELECT count(*) FROM audit.verify_chain(0, 1000)").scalar == "0")
            #expect(try connection.query("SELECT previous_hash IS NULL FROM audit.audit_event WHERE chain_index = 0").scalar == "t")

            let update = #expect(throws: PostgresError.self) {
                try connection.execute("UPDATE audit.audit_event SET status = 'x' WHERE chain_index = 3")
            }
            #expect(update?.message.contains("append-only") == true)
            #expect(throws: PostgresError.self) { try connection.execute("DELETE FROM audit.audit_event") }
            #expect(throws: PostgresError.self) { try connection.execute("TRUNCATE audit.audit_event") }

            // Tamper as the owner would have to: with the trigger disabled.
            try connection.execute("""
                ALTER TABLE audit.audit_event DISABLE TRIGGER audit_event_no_update;
                UPDATE audit.audit_event SET previous_hash = '\\x00' WHERE chain_index = 7;
                ALTER TABLE audit.audit_event ENABLE TRIGGER audit_event_no_update;
                """)
            let broken = try connection.query("SELECT chain_index, problem FROM audit.verify_chain(0, 1000)").rows
            #expect(broken == [["7", "previous_hash does not match the prior event_hash"]])
        }
    }

    @Test func aRolledBackAppendLeavesNoGap() throws {
        try TestDatabase.withMigrated { database in
            let connection = try database.connect()
            try connection.execute("SELECT audit.append_event('a', 'b', 'ok')")
            try connection.execute("BEGIN; SELECT audit.append_event('a', 'b', 'ok'); ROLLBACK;")
            #expect(try connection.query("SELECT audit.append_event('a', 'b', 'ok')").scalar == "1")
            #expect(try connection.query("SELECT count(*) FROM audit.verify_chain(0, 10)").scalar == "0")
        }
    }

    @Test func readersSeeEventsWritersOnlyAppend() throws {
        try TestDatabase.withMigrated { database in
            let connection = try database.connect()
            try connection.execute("SELECT audit.append_event('a', 'b', 'ok')")
            try connection.execute("SET ROLE audit_reader")
            #expect(try connection.query("SELECT count(*) FROM audit.audit_event").scalar == "1")
            try connection.execute("RESET ROLE; SET ROLE audit_writer")
            #expect(try connection.query("SELECT audit.append_event('a', 'b', 'ok')").scalar == "1")
            #expect(throws: PostgresError.self) { try connection.query("SELECT count(*) FROM audit.audit_event") }
        }
    }
}
