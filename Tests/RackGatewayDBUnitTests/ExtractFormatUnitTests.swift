import Foundation
import Testing
@testable import RackGatewayDB

/// `extract`'s conversions from COPY text, without a server: CSV quoting as PostgreSQL's
/// `CopyAttributeOutCSV`, COPY escapes, JSON values by column type, pg_dump's column types.
@Suite("extract formats (no server)")
struct ExtractFormatUnitTests {
    static func convert(_ row: String, _ format: ExtractFormat, columns: [String], types: [ColumnType]? = nil) throws -> String {
        var converter = CopyRowConverter(format: format, columns: columns, types: types ?? columns.map { _ in .text })
        var out: [UInt8] = []
        try Array(row.utf8).withUnsafeBufferPointer { try converter.append(row: $0, to: &out) }
        return String(decoding: out, as: UTF8.self)
    }

    @Test func csvQuotesWhatPostgresQuotes() throws {
        let columns = ["a", "b", "c", "d", "e"]
        #expect(try Self.convert("\\N\t\tx\ty,z\tq\"r", .csv, columns: columns) == ",\"\",x,\"y,z\",\"q\"\"r\"\n")
        // COPY text doubles a value's backslash: `\\.` is the value `\.`.
        #expect(try Self.convert(#"a\nb\#ta\rb\#ta\tb\#ta\\b\#t\\."#, .csv, columns: columns) == "\"a\nb\",\"a\rb\",a\tb,a\\b,\\.\n")
        // `\.` alone is quoted only in a one-column table (it would end the data there).
        #expect(try Self.convert("\\\\.", .csv, columns: ["v"]) == "\"\\.\"\n")
        #expect(CopyRowConverter(format: .csv, columns: ["id", "Odd, \"Name\"", ""], types: [.text, .text, .text]).header()
                == Array("id,\"Odd, \"\"Name\"\"\",\"\"\n".utf8))
        #expect(throws: ToolError.self) { try Self.convert("1\t2", .csv, columns: ["a"]) }
    }

    @Test func copyEscapesDecode() throws {
        #expect(CopyRowConverter.unescape(Array("\\N".utf8)) == nil)
        #expect(CopyRowConverter.unescape(Array("\\\\N".utf8)) == Array("\\N".utf8))
        #expect(CopyRowConverter.unescape(Array("\\b\\f\\v\\101\\x41\\q".utf8)) == [0x08, 0x0C, 0x0B, 0x41, 0x41, 0x71])
    }

    @Test func jsonValuesFollowTheColumnTypes() throws {
        let columns = ["i", "f", "n", "b", "j", "a", "m", "t", "bounded"]
        let types: [ColumnType] = [.integer, .number, .number, .boolean, .json, .array(.integer), .array(.text), .text, .array(.integer)]
        let line = try Self.convert(#"-7\#tInfinity\#t0.10\#tf\#t{"k": "v\\n"}\#t{{1,NULL},{3,4}}\#t{"a,b","c\\"d",NULL,"NULL"}\#t\t\#t[0:1]={1,2}"#, .json, columns: columns, types: types)
        #expect(line == #"{"i":-7,"f":"Infinity","n":0.10,"b":false,"j":{"k": "v\n"},"a":[[1,null],[3,4]],"m":["a,b","c\"d",null,"NULL"],"t":"\t","bounded":"[0:1]={1,2}"}"# + "\n")
        let parsed = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
        #expect((parsed?["m"] as? [Any])?[1] as? String == "c\"d")
        #expect(!CopyRowConverter.isJSONNumber(Array("01".utf8)[...]) && !CopyRowConverter.isJSONNumber(Array("1.".utf8)[...])
                && CopyRowConverter.isJSONNumber(Array("-1.5e+300".utf8)[...]))
    }

    @Test func columnTypesComeFromPgDumpsCreateTable() {
        let preData = #"""
            CREATE TABLE public.other (
                id bigint
            );
            CREATE TABLE "My Schema"."Odd ""t""" (
                id integer NOT NULL,
                "Name, odd" character varying(20) DEFAULT 'x'::character varying,
                tags text[] COLLATE pg_catalog."C",
                amount numeric(10,2),
                at timestamp with time zone,
                kind public."Enum Type",
                CONSTRAINT positive CHECK ((id > 0))
            );
            """#
        let types = TableExtractor.columnTypes(preData: preData, schema: "My Schema", name: "Odd \"t\"")
        #expect(types == ["id": "integer", "Name, odd": "character varying(20)", "tags": "text[]", "amount": "numeric(10,2)",
                          "at": "timestamp with time zone", "kind": "public.\"Enum Type\""])
        #expect(ColumnType.of("numeric(10,2)") == .number && ColumnType.of("text[]") == .array(.text) && ColumnType.of("integer[][]") == .array(.integer)
                && ColumnType.of("box[]") == .text && ColumnType.of("jsonb") == .json && ColumnType.of("timestamp with time zone") == .timestamptz && ColumnType.of("uuid") == .text)
    }

    /// Timestamps and intervals as `to_json` writes them under TimeZone UTC and IntervalStyle
    /// iso_8601 (the values PostgreSQL 15 printed for the same inputs).
    @Test func timestampsAndIntervalsBecomeISO8601() {
        func timestamp(_ text: String, zoned: Bool = true) -> String {
            String(decoding: CopyRowConverter.isoTimestamp(Array(text.utf8)[...], zoned: zoned), as: UTF8.self)
        }
        #expect(timestamp("2024-01-02 01:04:05.123+00") == "2024-01-02T01:04:05.123+00:00")
        #expect(timestamp("0044-03-15 10:00:00+00 BC") == "0044-03-15T10:00:00+00:00 BC")
        #expect(timestamp("1900-01-01 00:00:00+05:21:10") == "1900-01-01T00:00:00+05:21:10")
        #expect(timestamp("2024-01-02 03:04:05-03") == "2024-01-02T03:04:05-03:00")
        #expect(timestamp("infinity") == "infinity" && timestamp("-infinity", zoned: false) == "-infinity")
        #expect(timestamp("12345-01-01 00:00:00", zoned: false) == "12345-01-01T00:00:00")
        #expect(timestamp("0044-03-15 10:00:00 BC", zoned: false) == "0044-03-15T10:00:00 BC")
        let intervals = ["1 year 2 mons 3 days 04:05:06.7": "P1Y2M3DT4H5M6.7S", "-1 days +02:00:00": "P-1DT2H", "-1 years -2 mons": "P-1Y-2M",
                         "1 day -00:00:01": "P1DT-1S", "00:00:00": "PT0S", "-00:00:00.000001": "PT-0.000001S", "1 mon -00:00:01": "P1MT-1S",
                         "-1 days -00:00:01": "P-1DT-1S", "100 years 3 mons": "P100Y3M", "00:00:01.5": "PT1.5S", "123:00:10": "PT123H10S"]
        for (text, iso) in intervals {
            #expect(CopyRowConverter.isoInterval(Array(text.utf8)[...]).map { String(decoding: $0, as: UTF8.self) } == iso, "\(text)")
        }
        #expect(CopyRowConverter.isoInterval(Array("P1D".utf8)[...]) == nil && CopyRowConverter.isoInterval(Array("1 fortnight".utf8)[...]) == nil)
        #expect(ColumnType.of("timestamp(3) with time zone") == .timestamptz && ColumnType.of("timestamp without time zone") == .timestamp
                && ColumnType.of("interval day to second(3)") == .interval && ColumnType.of("timestamp with time zone[]") == .array(.timestamptz))
    }
}
