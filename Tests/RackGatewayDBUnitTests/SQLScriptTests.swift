import Testing
@testable import RackGatewayDB

@Suite("SQL script splitting (no server)")
struct SQLScriptTests {
    @Test func splitsOnTopLevelSemicolonsOnly() {
        let script = SQLScript("""
            -- a comment; with a semicolon
            CREATE TABLE t (a text DEFAULT 'x;y', "we;ird" int);
            /* block; /* nested; */ still comment; */
            INSERT INTO t VALUES (E'it\\'s; fine', 1);
            CREATE FUNCTION f() RETURNS int LANGUAGE plpgsql AS $body$
            BEGIN
                RETURN 1; -- inside
            END
            $body$;
            SELECT $1::int, 'a''b;c'
            """)
        let statements = script.statements
        #expect(statements.count == 4)
        // A block comment before a statement belongs to it, as in psql.
        #expect(statements.map(\.line) == [2, 3, 5, 10])
        #expect(statements[1].text.hasPrefix("/* block;"))
        #expect(statements[0].text == #"CREATE TABLE t (a text DEFAULT 'x;y', "we;ird" int)"#)
        #expect(statements[2].text.hasSuffix("$body$"))
        #expect(statements[3].text == "SELECT $1::int, 'a''b;c'")
    }

    @Test func recognisesPsqlMetaCommands() {
        let script = SQLScript("""
            \\restrict abc123
            SET x = 1;
            \\unrestrict abc123
            """)
        #expect(script.pieces == [
            .metaCommand(text: "\\restrict abc123", line: 1),
            .statement(text: "SET x = 1", line: 2),
            .metaCommand(text: "\\unrestrict abc123", line: 3),
        ])
    }

    @Test func emptyDollarTagAndDollarInIdentifier() {
        let script = SQLScript("DO $$ BEGIN PERFORM 1; END $$; SELECT a$b FROM t;")
        #expect(script.statements.map(\.text) == ["DO $$ BEGIN PERFORM 1; END $$", "SELECT a$b FROM t"])
    }
}

