import Testing
@testable import RackGatewayDB

/// The scan a plain SQL dump goes through on its way to psql: what pg_dump writes passes unchanged,
/// any way of getting a meta-command past psql's lexer is refused before its bytes are handed on.
@Suite("psql script guard (no server)")
struct PsqlScriptGuardTests {
    /// The script through the guard in chunks of `chunk` bytes; the bytes handed on.
    static func feed(_ script: [UInt8], chunk: Int = 1 << 20) throws -> [UInt8] {
        var scan = PsqlScriptGuard(source: "dump.sql")
        var output: [UInt8] = []
        var start = 0
        while start < script.count {
            let end = min(script.count, start + chunk)
            output += try scan.scan(Array(script[start..<end]))
            start = end
        }
        return output + (try scan.finish())
    }

    static func feed(_ script: String, chunk: Int = 1 << 20) throws -> [UInt8] { try feed(Array(script.utf8), chunk: chunk) }

    /// The refusal's message, or nil when the script passes.
    static func refusal(_ script: String, chunk: Int = 1 << 20) -> String? {
        do {
            _ = try feed(script, chunk: chunk)
            return nil
        } catch let error as ToolError {
            return error.message
        } catch {
            return "\(error)"
        }
    }

    /// What pg_dump 15.18 writes, with the constructs that hide a backslash or a semicolon.
    static let dump = #"""
        --
        -- PostgreSQL database dump
        --

        \restrict dRQlGhzeHuiguOS4vvkat1bxuKXqLZWVZssnVBvlY7PP32FEBHwzeQfdrlqIPHD

        SET statement_timeout = 0;
        SET client_encoding = 'UTF8';
        SET standard_conforming_strings = on;
        SELECT pg_catalog.set_config('search_path', '', false);

        --
        -- Name: f(); Type: FUNCTION; Schema: public; Owner: postgres
        --

        CREATE FUNCTION public.f() RETURNS text
            LANGUAGE plpgsql
            AS $_$ BEGIN RETURN 'it''s \! not a command; $x$ ' || $$\$$; END $_$;

        CREATE FUNCTION public.g() RETURNS integer
            LANGUAGE sql
            BEGIN ATOMIC
             SELECT 1;
             SELECT CASE WHEN true THEN 2 ELSE 3 END;
            END;

        /* a /* nested */ comment \! still a comment */
        CREATE TABLE public."we;ird" (
            a integer DEFAULT 1,
            b text DEFAULT 'C:\d+ é\n'::text CHECK (b ~ '^\w+$'),
            "c""d" integer[],
            e text DEFAULT E'\\x'
        );

        CREATE VIEW public.v AS
         SELECT (t."c""d")[1:2] AS s, t.a::text AS a
           FROM public."we;ird" t;

        COPY public."we;ird" (a, b, "c""d", e) FROM stdin;
        1	x\\y	{1,2}	\N
        \! this is data, not a command
        \N	'unbalanced "quote	\N	$x$
        \.

        COPY public.empty (a) FROM stdin;
        \.

        \unrestrict dRQlGhzeHuiguOS4vvkat1bxuKXqLZWVZssnVBvlY7PP32FEBHwzeQfdrlqIPHD

        """#

    @Test func aPgDumpScriptPassesUnchangedInAnyChunking() throws {
        let bytes = Array(Self.dump.utf8)
        #expect(try Self.feed(bytes) == bytes)
        for chunk in [1, 2, 3, 5, 7, 64] {
            #expect(try Self.feed(bytes, chunk: chunk) == bytes, "chunk \(chunk)")
        }
        // The same with CRLF line ends.
        let crlf = Array(Self.dump.replacingOccurrences(of: "\n", with: "\r\n").utf8)
        #expect(try Self.feed(crlf, chunk: 3) == crlf)
    }

    @Test func aMetaCommandAnywhereOutsideQuotesIsRefused() {
        let cases: [(String, String)] = [
            ("alone on its line", "SELECT 1;\n\\! touch /tmp/x\n"),
            ("after a semicolon on the same line", "SELECT 1; \\! touch /tmp/x\n"),
            ("in the middle of a statement", "SELECT 1 \\! touch /tmp/x\n;\n"),
            ("after a dollar quote with a tag", "SELECT $tag$ x $tag$; \\! id\n"),
            ("after a dollar quote whose body holds another tag", "SELECT $a$ $b$ $a$ \\! id $b$;\n"),
            ("after a nested comment", "/* /* inner */ outer */ \\! id\n"),
            ("after a line comment ended by a bare CR", "SELECT 1; -- note\r\\! id\n"),
            ("CRLF lines", "SELECT 1;\r\n\\! id\r\n"),
            ("output redirection", "\\o /tmp/out\n"),
            ("\\g", "SELECT 1 \\g /tmp/out\n"),
            ("\\i", "\\i /etc/passwd\n"),
            ("\\copy", "\\copy t from program 'id'\n"),
            ("\\set", "\\set ON_ERROR_STOP 0\n"),
            ("\\restrict after a statement", "SELECT 1; \\restrict abc\n"),
            ("\\restrict with more on its line", "\\restrict abc \\! id\n"),
            ("\\unrestrict with a backquoted key", "\\unrestrict `id`\n"),
            ("a line \\. outside COPY data", "SELECT 1;\n\\.\n\\! id\n"),
            ("after COPY data ends", "COPY public.t (a) FROM stdin;\n1\n\\.\n\\! id\n"),
            ("at the end without a newline", "SELECT 1;\n\\! id"),
        ]
        for (what, script) in cases {
            let message = Self.refusal(script)
            #expect(message != nil, "\(what): \(script.debugDescription) passed")
        }
        #expect(Self.refusal("SELECT 1; \\! id\n")?.contains("\\!") == true)
        #expect(Self.refusal("\\connect otherdb\n")?.contains("--create") == true)
        #expect(Self.refusal("SELECT 1;\n\\.\n")?.contains("outside COPY") == true)
    }

    @Test func quotesAndCommentsHideWhatPsqlHidesAndNoMore() {
        // Inside quotes, comments and dollar quotes a backslash is text.
        for script in [
            "SELECT 'a \\! b';\n", "SELECT \"a \\! b\";\n", "SELECT $x$ \\! $y$ $x$;\n", "SELECT $$ ' $$;\n",
            "-- \\! id\nSELECT 1;\n", "/* /* */ \\! id */ SELECT 1;\n", "SELECT E'\\\\';\n", "SELECT 'C:\\d';\n",
            "SELECT 1 AS \"x\"\"\\!\";\n", "SELECT arr[1:2], x::text, :'v', :\"v\", a := 1;\n",
        ] {
            #expect(Self.refusal(script) == nil, "\(script.debugDescription): \(Self.refusal(script) ?? "")")
        }
        // A quote whose end depends on standard_conforming_strings (which a statement can turn off,
        // after which psql reads '\'' as one quote), whichever prefix it has.
        for script in [
            "SET standard_conforming_strings = off;\nSELECT '\\'' \\! id '\n;\n",
            "SELECT E'\\' ; \\! id --';\n",
            "SELECT 1E'\\' \\! id';\n",
            "SELECT B'\\' \\! id';\n",
            "SELECT 'x\\';\n",
        ] {
            #expect(Self.refusal(script)?.contains("standard_conforming_strings") == true, "\(script.debugDescription)")
        }
        // A backslash psql may read as part of a multibyte character (SJIS 0x81 0x5C).
        var sjis = Array("SET client_encoding = 'SJIS';\nSELECT E'".utf8)
        sjis += [0x81, 0x5C, 0x5C] + Array("'; \\! id --';\n".utf8)
        #expect((try? Self.feed(sjis)) == nil)
        // A dollar quote does not open inside an identifier or after a number.
        #expect(Self.refusal("SELECT a$b$ \\! id $b$;\n") != nil)
        #expect(Self.refusal("SELECT 1$b$ \\! id $b$;\n") != nil)
        // A fake COPY inside a string does not make the next lines data.
        #expect(Self.refusal("SELECT '\nCOPY public.t (a) FROM stdin;\n';\n\\! id\n\\.\n") != nil)
        #expect(Self.refusal("/*\nCOPY public.t (a) FROM stdin;\n*/\n\\! id\n\\.\n") != nil)
        // psql's own variables, substituted and read as script text.
        #expect(Self.refusal("SELECT :DBNAME;\n")?.contains(":DBNAME") == true)
        #expect(Self.refusal("SELECT 1 AS x;\nSELECT :USER") != nil)
        // A NUL byte, which psql drops with the rest of its line.
        #expect(Self.refusal("SELECT 'a\u{0}'; \\! id\n") != nil)
    }

    @Test func copyDataOnlyAfterPgDumpsOwnCopyLine() {
        // Data lines are raw, whatever they hold, up to a line \. (also with CRLF).
        #expect(Self.refusal("COPY public.t (a) FROM stdin;\n\\! data\n'\n\\.\nSELECT 1;\n") == nil)
        #expect(Self.refusal("COPY public.t (a) FROM stdin;\r\n\\! data\r\n\\.\r\nSELECT 1;\r\n") == nil)
        #expect(Self.refusal("COPY t FROM stdin;\n\\.x\n \\.\n\\.\n") == nil)
        // Any other COPY is refused before its line reaches psql.
        for script in [
            "copy public.t (a) from stdin;\n\\! id\n\\.\n",
            "COPY public.t (a) FROM stdin; SELECT 1;\n",
            "  COPY public.t (a) FROM stdin;\n",
            "SELECT 1; COPY public.t (a) FROM stdin;\n",
            "/* c */ COPY public.t (a) FROM stdin;\n",
            "COPY public.t (a)\nFROM stdin;\n",
            "COPY public.t (a) FROM PROGRAM 'id';\n",
            "COPY public.t (a) TO '/tmp/x';\n",
            "COPY public.t /* x */ FROM stdin;\n",
            "COPY public.\"t FROM stdin;\" FROM stdout;\n",
        ] {
            #expect(Self.refusal(script)?.contains("COPY") == true, "\(script.debugDescription): \(Self.refusal(script) ?? "passed")")
        }
        // psql holds the semicolons of a routine body (and of one named begin): the COPY inside it
        // is no statement of its own, so its "data" is SQL to scan.
        #expect(Self.refusal("CREATE PROCEDURE begin() LANGUAGE sql BEGIN ATOMIC SELECT 1; END;\nCOPY public.t (a) FROM stdin;\n\\! id\n\\.\n") != nil)
        #expect(Self.refusal("CREATE FUNCTION g() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; END;\nCOPY public.t (a) FROM stdin;\n\\! data\n\\.\n") == nil)
        // Where psql versions split a statement differently, no COPY is trusted after it.
        #expect(Self.refusal("CREATE FUNCTION f() RETURNS int LANGUAGE sql RETURN 1begin;\nCOPY public.t (a) FROM stdin;\n1\n\\.\n")?.contains("COPY") == true)
        var johab = Array("SELECT x".utf8) + [0x84] + Array(";\nCOPY public.t (a) FROM stdin;\n1\n\\.\n".utf8)
        #expect((try? Self.feed(johab)) == nil)
        johab = Array("SELECT x".utf8) + [0x84] + Array(" ;\nCOPY public.t (a) FROM stdin;\n1\n\\.\n".utf8)
        #expect((try? Self.feed(johab)) != nil)
    }

    @Test func aMetaCommandSplitAcrossChunksNeverReachesPsql() throws {
        // `\` as the last byte of the first 1 MiB, `! id` in the next: the first chunk's output stops
        // before the backslash, and the second throws.
        let line = Array("SELECT 1;\n".utf8)
        var first: [UInt8] = []
        while first.count + line.count < (1 << 20) - 1 { first += line }
        first += Array(repeating: 0x20, count: (1 << 20) - 1 - first.count)
        first.append(0x5C)
        #expect(first.count == 1 << 20)
        var scan = PsqlScriptGuard(source: "dump.sql")
        let handedOn = try scan.scan(first)
        #expect(handedOn == Array(first.dropLast()))
        #expect(throws: ToolError.self) { _ = try scan.scan(Array("! touch /tmp/x\n".utf8)) }
        // The same inside COPY data passes: there it is data.
        var data = PsqlScriptGuard(source: "dump.sql")
        let copy = Array("COPY public.t (a) FROM stdin;\n".utf8)
        #expect(try data.scan(copy + Array(repeating: 0x61, count: 10) + [0x0A, 0x5C]) == copy + Array(repeating: 0x61, count: 10) + [0x0A, 0x5C])
        #expect(try data.scan(Array("! x\n\\.\n".utf8)) == Array("! x\n\\.\n".utf8))
    }

    @Test func aScriptWithoutItsOwnRestrictStartsWithOurs() throws {
        func fed(_ script: String, chunk: Int) throws -> String {
            var scan = PsqlScriptGuard(source: "dump.sql", restrictKey: "K3y")
            var output: [UInt8] = []
            let bytes = Array(script.utf8)
            var start = 0
            while start < bytes.count {
                output += try scan.scan(Array(bytes[start..<min(bytes.count, start + chunk)]))
                start += chunk
            }
            return String(decoding: output + (try scan.finish()), as: UTF8.self)
        }
        for chunk in [1, 4, 1 << 20] {
            // pg_dump's own \restrict after its header: the script as it is.
            #expect(try fed(Self.dump, chunk: chunk) == Self.dump)
            // None (an older pg_dump): ours first, then the script unchanged and scanned as ever.
            let older = "--\n-- dump\n--\n\nSET x = 1;\nSELECT 1;\n"
            #expect(try fed(older, chunk: chunk) == "\\restrict K3y\n" + older)
            #expect(try fed("SELECT 1;", chunk: chunk) == "\\restrict K3y\nSELECT 1;")
            #expect(throws: ToolError.self) { try fed("-- x\nSELECT 1; \\! id\n", chunk: chunk) }
        }
        #expect(PsqlScriptGuard.psqlRestricts(version: "15.14") && PsqlScriptGuard.psqlRestricts(version: "18.0")
                && PsqlScriptGuard.psqlRestricts(version: "17.6") && PsqlScriptGuard.psqlRestricts(version: "16.10"))
        #expect(!PsqlScriptGuard.psqlRestricts(version: "15.13") && !PsqlScriptGuard.psqlRestricts(version: "17.5")
                && !PsqlScriptGuard.psqlRestricts(version: "16.9") && !PsqlScriptGuard.psqlRestricts(version: "12.22"))
    }
}
