import Foundation
import Testing
import TestSupport
@testable import RackGatewayDB

/// The splitter against psql itself: `psql --single-step` shows every statement it would send, each
/// between two banners, and `x` cancels it, so nothing runs.
@Suite("SQL script splitting compared with psql")
struct SQLScriptPsqlTests {
    static let cases: [String] = [
        "CREATE RULE r AS ON DELETE TO t DO ALSO (DELETE FROM a WHERE x = old.x; DELETE FROM b WHERE y = old.y);\nSELECT 1;",
        """
        CREATE FUNCTION f(x int) RETURNS int LANGUAGE sql
        BEGIN ATOMIC
            SELECT x + 1;
            SELECT CASE WHEN x > 0 THEN 1 ELSE 2 END;
        END;
        SELECT 'after';
        """,
        "CREATE OR REPLACE PROCEDURE p() LANGUAGE sql BEGIN ATOMIC INSERT INTO t VALUES (1); INSERT INTO t VALUES (2); END; CALL p();",
        "create or replace function lower_case() returns int language sql begin atomic select 1; end;\nselect 2",
        "SELECT 1 AS begin; SELECT 2 AS \"end\"; CREATE TABLE begin_end (begin int, \"end\" int); BEGIN; COMMIT;",
        "CREATE FUNCTION g(x int) RETURNS int LANGUAGE sql RETURN x + 1; SELECT g(1);",
        """
        CREATE TRIGGER tr BEFORE UPDATE ON t FOR EACH ROW WHEN (NEW.note <> '
        -- Name: fake; Type: INDEX; Schema: public; Owner: o
        ; still the literal') EXECUTE FUNCTION f();
        SELECT 3;
        """,
        "SELECT $a$ ; $b$ ; $b$ $a$, E'it\\'s; fine', U&'d\\0061t;a', 'x''y;z', \"we;ird\", $1, a$b; /* c; /* nested; */ ; */ SELECT 4 ;",
        "DO $$ BEGIN PERFORM 1; END $$; CREATE FUNCTION h() RETURNS int LANGUAGE plpgsql AS $fn$ BEGIN RETURN 1; END $fn$; SELECT 5",
        "CREATE FUNCTION k() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT (SELECT 1); SELECT CASE WHEN true THEN (CASE WHEN false THEN 1 END) END; END; SELECT 6;",
        "SELECT (1\n;\n2); SELECT 7",
    ]

    /// The statements psql sends for `text`, as it echoes them (without the final semicolon).
    static func psqlStatements(_ text: String) throws -> [String] {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("rgw-split-\(UUID().uuidString.prefix(8)).sql").path
        try text.write(toFile: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: file) }
        let database = try TestDatabase.named("postgres")
        let output = try ChildProcess(executable: "psql", arguments: ["-X", "-q", "-s", "-o", "/dev/null", "-f", file],
                                      environment: try database.settings.childEnvironment)
            .run(stdin: Array(String(repeating: "x\n", count: 100).utf8))
        #expect(output.status == 0, "\(output.stderr)")
        var statements: [String] = []
        var current: [Substring]?
        for line in output.stdout.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasPrefix("***(Single step mode: verify command)") {
                current = []
            } else if line.hasPrefix("***(press return to proceed") {
                var statement = (current ?? []).joined(separator: "\n")
                if statement.hasSuffix(";") { statement.removeLast() }
                statements.append(statement.trimmingTrailingWhitespace())
                current = nil
            } else if current != nil {
                current!.append(line)
            }
        }
        return statements
    }

    @Test(arguments: cases)
    func splitsWherePsqlSplits(text: String) throws {
        let expected = try Self.psqlStatements(text)
        #expect(expected.count >= 2, "psql saw the statements: \(expected)")
        #expect(SQLScript(text).statements.map(\.text) == expected)
    }

    @Test func entryHeadersCountOnlyBetweenStatements() throws {
        let postData = """
            --
            -- Name: t tr; Type: TRIGGER; Schema: public; Owner: postgres
            --

            CREATE TRIGGER tr BEFORE UPDATE ON public.t FOR EACH ROW WHEN ((new.note <> '
            -- Name: fake; Type: INDEX; Schema: public; Owner: o
            '::text)) EXECUTE FUNCTION public.f();

            --
            -- Name: t_a_idx; Type: INDEX; Schema: public; Owner: postgres
            --

            CREATE INDEX t_a_idx ON public.t USING btree (a);
            """
        let script = try DumpScript(postData, section: "post-data")
        #expect(script.entries.map(\.label) == ["TRIGGER t tr", "INDEX t_a_idx"])
        #expect(script.entries(in: .indexes).map(\.name) == ["t_a_idx"], "the trigger stays in its phase")
    }
}
