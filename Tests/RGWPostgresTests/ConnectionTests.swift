import Foundation
import Testing
import TestSupport
@testable import RGWPostgres

@Suite("libpq wrapper against a real server")
struct ConnectionTests {
    @Test func parametersAreNeverSpliced() throws {
        try TestDatabase.with { database in
            let connection = try database.connect()
            try connection.execute("CREATE TABLE t (v text)")
            let hostile = "x'); DROP TABLE t; --"
            try connection.query("INSERT INTO t VALUES ($1), ($2)", [hostile, nil])
            let rows = try connection.query("SELECT v FROM t ORDER BY v NULLS LAST").rows
            #expect(rows == [[hostile], [nil]])
        }
    }

    @Test func serverErrorsKeepTheirFields() throws {
        try TestDatabase.with { database in
            let connection = try database.connect()
            let error = #expect(throws: PostgresError.self) {
                try connection.query("SELECT * FROM no_such_table")
            }
            #expect(error?.kind == .server)
            #expect(error?.sqlState == "42P01")
            #expect(error?.position == 15)
            #expect(error?.message == #"relation "no_such_table" does not exist"#)
            // The connection is still usable after an error.
            #expect(try connection.query("SELECT 2").scalar == "2")
        }
    }

    @Test func copyOutStreamsRowsAndCopyInLoadsThem() throws {
        try TestDatabase.with { database in
            let connection = try database.connect()
            try connection.execute("""
                CREATE TABLE src (id int, note text, data bytea);
                INSERT INTO src SELECT g, CASE WHEN g % 3 = 0 THEN NULL ELSE E'tab\\there\\nline ' || g END, '\\x00ff'
                FROM generate_series(1, 5000) g;
                CREATE TABLE dst (LIKE src);
                """)
            var buffer: [UInt8] = []
            var lengths: [Int] = []
            let rows = try connection.copyOut("COPY src TO STDOUT") { stream in
                while let length = try stream.nextRow(appendingTo: &buffer) { lengths.append(length) }
                return stream.rowCount
            }
            #expect(rows == 5000)
            #expect(lengths.reduce(0, +) == buffer.count)
            #expect(buffer.filter { $0 == UInt8(ascii: "\n") }.count == 5000)
            let loaded = try connection.copyIn("COPY dst FROM STDIN") { stream in
                // Split at odd places: COPY data need not arrive row by row.
                var offset = 0
                while offset < buffer.count {
                    let end = min(offset + 1013, buffer.count)
                    try stream.write(buffer[offset..<end])
                    offset = end
                }
            }
            #expect(loaded == 5000)
            let diff = try connection.query("SELECT count(*) FROM (SELECT * FROM src EXCEPT ALL SELECT * FROM dst) d").scalar
            #expect(diff == "0")
        }
    }

    struct ProducerFailed: Error {}

    @Test func aFailingProducerAbortsTheCopy() throws {
        try TestDatabase.with { database in
            let connection = try database.connect()
            try connection.execute("CREATE TABLE dst (id int)")
            #expect(throws: ProducerFailed.self) {
                try connection.copyIn("COPY dst FROM STDIN") { stream in
                    try stream.write("1\n2\n3\n")
                    throw ProducerFailed()
                }
            }
            #expect(try connection.query("SELECT count(*) FROM dst").scalar == "0")
            #expect(try connection.query("SELECT 1").scalar == "1")
        }
    }

    @Test func badCopyDataIsAServerError() throws {
        try TestDatabase.with { database in
            let connection = try database.connect()
            try connection.execute("CREATE TABLE dst (id int)")
            let error = #expect(throws: PostgresError.self) {
                try connection.copyIn("COPY dst FROM STDIN") { try $0.write("1\nnot-a-number\n") }
            }
            #expect(error?.sqlState == "22P02")
            #expect(try connection.query("SELECT count(*) FROM dst").scalar == "0")
        }
    }

    @Test func stoppingACopyOutEarlyLeavesTheConnectionUsable() throws {
        try TestDatabase.with { database in
            let connection = try database.connect()
            var buffer: [UInt8] = []
            let first = try connection.copyOut("COPY (SELECT g FROM generate_series(1, 200000) g) TO STDOUT") { stream in
                _ = try stream.nextRow(appendingTo: &buffer)
                return String(decoding: buffer, as: UTF8.self)
            }
            #expect(first == "1\n")
            #expect(try connection.query("SELECT 42").scalar == "42")
        }
    }

    @Test func wrongPasswordSaysSoWithoutEchoingIt() throws {
        let cluster = try TestCluster.shared()
        let secret = "Wr0ng-Secret-\(UUID().uuidString.prefix(6))"
        let settings = try ConnectionSettings(conninfo: cluster.url(database: "postgres", password: secret))
        let error = #expect(throws: PostgresError.self) { try Connection(settings: settings) }
        let text = error.map { String(describing: $0) } ?? ""
        #expect(error?.kind == .connection)
        #expect(text.contains("password authentication failed"))
        #expect(!text.contains(secret))
    }

    @Test func unreachableHostNamesHostAndPort() throws {
        let settings = try ConnectionSettings(conninfo: "postgres://u:pw@127.0.0.1:1/db?connect_timeout=3")
        let error = #expect(throws: PostgresError.self) { try Connection(settings: settings) }
        let text = error.map { String(describing: $0) } ?? ""
        #expect(text.contains("127.0.0.1:1"))
        #expect(text.contains("check the host and port"))
        #expect(!text.contains("\n"))
    }

    @Test func sessionFacts() throws {
        try TestDatabase.with { database in
            let connection = try database.connect()
            #expect(connection.databaseName == database.name)
            #expect(connection.serverMajorVersion >= 13)
            #expect(connection.usesTLS == false)
            #expect(try connection.query("SHOW application_name").scalar == "rack-gateway-db")
        }
    }
}
