import RGWCompression
import Foundation
import RGWPostgres

/// Large objects in an archive. pg_dump leaves them out of `--schema-only`, so the tool writes them
/// itself: their metadata (create, owner, comment, grants) as statements after pg_dump's pre-data,
/// their contents as members of `SELECT pg_catalog.lo_put('OID', OFFSET, '\x...');` lines that psql
/// runs on the stock-tools path and the tool runs in parallel. Contents are read in pieces of
/// `pieceSize` bytes inside the backup's snapshot; the fingerprint is the sum modulo 2^64 of XXH64 of
/// `OID:OFFSET:HEX` of every piece, so an archive and a live database can be compared piece by piece.
public enum LargeObjects {
    public struct Summary: Codable, Sendable, Equatable {
        public var count: Int
        public var bytes: Int
        public var fingerprint: String
        /// md5 over every object's oid, owner, ACL and comment.
        public var metadata: String
    }

    static let pieceSize = 1 << 20
    static let memberSize = 8 << 20

    /// md5 over the metadata (oid, owner, ACL, comment) of every large object, and their count.
    static func metadataDigest(_ connection: Connection) throws -> (count: Int, digest: String) {
        let row = try connection.query("""
            SELECT count(*)::text, coalesce(md5(string_agg(m.oid::text || ':' || pg_catalog.pg_get_userbyid(m.lomowner) || ':'
                       || coalesce(m.lomacl::text, '') || ':' || coalesce(pg_catalog.obj_description(m.oid, 'pg_largeobject'), ''),
                       E'\\n' ORDER BY m.oid)), '')
            FROM pg_catalog.pg_largeobject_metadata m
            """).rows[0]
        return (Int(row[0] ?? "0") ?? 0, row[1] ?? "")
    }

    /// The statements that recreate every large object's metadata, as pg_dump writes them.
    static func metadataStatements(_ connection: Connection) throws -> String {
        let rows = try connection.query("""
            SELECT m.oid::text, pg_catalog.pg_get_userbyid(m.lomowner), pg_catalog.obj_description(m.oid, 'pg_largeobject'),
                   (m.lomacl IS NOT NULL)::text,
                   (SELECT string_agg(coalesce(nullif(a.grantee, 0)::regrole::text, 'PUBLIC') || ' ' || a.privilege_type || ' ' || a.is_grantable::text, ',' ORDER BY 1)
                    FROM pg_catalog.aclexplode(m.lomacl) a)
            FROM pg_catalog.pg_largeobject_metadata m ORDER BY m.oid
            """).rows
        guard !rows.isEmpty else { return "" }
        var text = "\n--\n-- Large objects (\(rows.count)): metadata by rack-gateway-db; contents in the large-object members\n--\n\n"
        for row in rows {
            let oid = row[0]!
            text += "SELECT pg_catalog.lo_create('\(oid)');\n"
            text += "ALTER LARGE OBJECT \(oid) OWNER TO \(SQL.identifier(row[1]!));\n"
            if let comment = row[2] { text += "COMMENT ON LARGE OBJECT \(oid) IS \(SQL.literal(comment));\n" }
            if row[3] == "true" {
                text += "REVOKE ALL ON LARGE OBJECT \(oid) FROM \(SQL.identifier(row[1]!));\n"
                for grant in (row[4] ?? "").split(separator: ",") {
                    let parts = grant.split(separator: " ")
                    guard parts.count == 3 else { continue }
                    // regrole::text is already quoted where it needs to be.
                    text += "GRANT \(parts[1]) ON LARGE OBJECT \(oid) TO \(parts[0])\(parts[2] == "true" ? " WITH GRANT OPTION" : "");\n"
                }
            }
        }
        return text
    }

    /// A piece's share of the fingerprint.
    static func pieceHash(oid: Substring, offset: Substring, hex: UnsafeRawBufferPointer) -> UInt64 {
        var bytes = Array("\(oid):\(offset):".utf8)
        bytes.append(contentsOf: hex)
        return XXH64.hash(bytes)
    }

    /// Every piece of every large object, read in order: `body(oid, offset, hex)`.
    static func forEachPiece(_ connection: Connection, _ body: (String, Int, Substring) throws -> Void) throws {
        let oids = try connection.query("SELECT oid::text FROM pg_catalog.pg_largeobject_metadata ORDER BY oid").rows.map { $0[0]! }
        for oid in oids {
            var offset = 0
            while true {
                let value = try connection.query("SELECT pg_catalog.lo_get($1::oid, $2::bigint, $3::int)::text", [oid, String(offset), String(pieceSize)]).scalar ?? ""
                let hex = value.hasPrefix("\\x") ? value.dropFirst(2) : Substring(value)
                if !hex.isEmpty { try body(oid, offset, hex) }
                guard hex.utf8.count == pieceSize * 2 else { break }
                offset += pieceSize
            }
        }
    }

    /// Every large object's count, bytes, contents fingerprint and metadata digest, reading each piece
    /// once; `each` sees every piece as it is read (the backup writes it into a member).
    static func summary(_ connection: Connection, each: (String, Int, Substring) throws -> Void = { _, _, _ in }) throws -> Summary {
        let (count, metadata) = try metadataDigest(connection)
        var bytes = 0
        var sum: UInt64 = 0
        if count > 0 {
            try forEachPiece(connection) { oid, offset, hex in
                try each(oid, offset, hex)
                bytes += hex.utf8.count / 2
                sum &+= Array(hex.utf8).withUnsafeBytes { pieceHash(oid: Substring(oid), offset: Substring(String(offset)), hex: $0) }
            }
        }
        return Summary(count: count, bytes: bytes, fingerprint: ArchiveManifest.fingerprintText(sum), metadata: metadata)
    }

    /// Dump the contents into members (through `emit`, with each member's text) and sum them up;
    /// nil when there are none.
    static func dump(_ connection: Connection, emit: ([UInt8]) throws -> Void) throws -> Summary? {
        var text: [UInt8] = []
        let summary = try summary(connection) { oid, offset, hex in
            text.append(contentsOf: "SELECT pg_catalog.lo_put('\(oid)', \(offset), '\\x\(hex)');\n".utf8)
            if text.count >= memberSize {
                try emit(text)
                text = []
            }
        }
        if !text.isEmpty { try emit(text) }
        return summary.count > 0 ? summary : nil
    }

    /// The pieces of a large-object member: how many, their bytes, and their fingerprint sum. Every
    /// line must be exactly what `dump` writes, `SELECT pg_catalog.lo_put('OID', OFFSET, '\xHEX');`:
    /// OID a decimal oid (1 to 4294967295), OFFSET a decimal multiple of `pieceSize`, HEX lowercase
    /// hex digits of 1 to `pieceSize` bytes, no leading zeros, nothing before or after; anything
    /// else is refused, so that the member's text, run as SQL, can only put these bytes into large objects.
    static func scan(_ text: [UInt8]) -> Result<(pieces: Int, bytes: Int, sum: UInt64), DataChunk.ScanError> {
        let prefix = Array("SELECT pg_catalog.lo_put('".utf8), afterOID = Array("', ".utf8)
        let afterOffset = Array(", '\\x".utf8), end = Array("');\n".utf8)
        var pieces = 0, bytes = 0
        var sum: UInt64 = 0
        return text.withUnsafeBytes { raw in
            var at = 0
            func skip(_ expected: [UInt8]) -> Bool {
                guard raw.count - at >= expected.count, raw[at..<(at + expected.count)].elementsEqual(expected) else { return false }
                at += expected.count
                return true
            }
            /// A decimal number without sign or leading zeros, at most `limit`.
            func number(limit: UInt64) -> (text: UnsafeRawBufferPointer, value: UInt64)? {
                let start = at
                var value: UInt64 = 0
                while at < raw.count, raw[at] >= 0x30, raw[at] <= 0x39, at - start < 20 {
                    value = value &* 10 &+ UInt64(raw[at] - 0x30)
                    at += 1
                }
                let count = at - start
                guard count > 0, count < 20, count == 1 || raw[start] != 0x30, value <= limit else { return nil }
                return (UnsafeRawBufferPointer(rebasing: raw[start..<at]), value)
            }
            while at < raw.count {
                let line = pieces + 1
                func refuse(_ problem: String) -> Result<(pieces: Int, bytes: Int, sum: UInt64), DataChunk.ScanError> {
                    .failure(DataChunk.ScanError("line \(line) is not a lo_put statement as the backup writes it (\(problem))"))
                }
                guard skip(prefix) else { return refuse("it does not start with SELECT pg_catalog.lo_put('") }
                guard let oid = number(limit: UInt64(UInt32.max)), oid.value > 0 else { return refuse("no valid oid") }
                guard skip(afterOID) else { return refuse("no ', after the oid") }
                guard let offset = number(limit: UInt64(Int64.max)), offset.value % UInt64(pieceSize) == 0 else {
                    return refuse("no offset that is a multiple of \(pieceSize)")
                }
                guard skip(afterOffset) else { return refuse("no , '\\x after the offset") }
                let hexStart = at
                while at < raw.count, at - hexStart <= 2 * pieceSize, (0x30...0x39).contains(raw[at]) || (0x61...0x66).contains(raw[at]) { at += 1 }
                let hexCount = at - hexStart
                guard hexCount > 0, hexCount % 2 == 0, hexCount <= 2 * pieceSize else {
                    return refuse("not 1 to \(pieceSize) bytes of lowercase hex")
                }
                guard skip(end) else { return refuse("it does not end with '); and a newline after the hex") }
                pieces += 1
                bytes += hexCount / 2
                sum &+= pieceHash(oid: Substring(decoding: oid.text, as: UTF8.self), offset: Substring(decoding: offset.text, as: UTF8.self),
                                  hex: UnsafeRawBufferPointer(rebasing: raw[hexStart..<(hexStart + hexCount)]))
            }
            guard pieces > 0 else { return .failure(DataChunk.ScanError("the large-object member holds no lo_put statement")) }
            return .success((pieces, bytes, sum))
        }
    }

    /// The same summary of a live database (restore --verify, drill).
    public static func live(_ connection: Connection) throws -> Summary { try summary(connection) }

    /// What differs between a live database's large objects and the recorded ones.
    public static func mismatches(_ live: Summary, recorded: Summary?) -> [String] {
        let expected = recorded ?? Summary(count: 0, bytes: 0, fingerprint: ArchiveManifest.fingerprintText(0), metadata: "")
        var problems: [String] = []
        if live.count != expected.count { problems.append("large objects: \(live.count) but the manifest says \(expected.count)") }
        if live.bytes != expected.bytes { problems.append("large objects: \(live.bytes) bytes but the manifest says \(expected.bytes)") }
        if live.fingerprint != expected.fingerprint && expected.count > 0 { problems.append("large objects: contents fingerprint \(live.fingerprint), the manifest's \(expected.fingerprint)") }
        if live.metadata != expected.metadata && expected.count > 0 { problems.append("large objects: owners, grants or comments differ from the source's") }
        return problems
    }
}
