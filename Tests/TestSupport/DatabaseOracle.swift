import Foundation
import RGWPostgres
import RackGatewayDB

/// What a restore must reproduce, read with plain SQL: an oracle independent of the tool's own
/// fingerprints (which use the manifest's column lists and the tool's COPY sessions).
public enum DatabaseOracle {
    /// Every user table's rows as text, md5 over the sorted rows (an oracle independent of the
    /// tool's fingerprints), UNLOGGED tables included; with each table's persistence.
    public static func tableDigests(_ database: TestDatabase) throws -> [String: String] {
        let connection = try database.connect()
        let tables = try connection.query("""
            SELECT format('%I.%I', n.nspname, c.relname), c.relpersistence::text FROM pg_catalog.pg_class c
            JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
            WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%'
            ORDER BY 1
            """).rows
        var digests: [String: String] = [:]
        for row in tables {
            let name = row[0]!
            let digest = try connection.query("SELECT count(*)::text || ' ' || coalesce(md5(string_agg(t::text, E'\\n' ORDER BY t::text)), '-') FROM \(name) t").scalar ?? ""
            digests[name] = "\(row[1]!) \(digest)"
        }
        return digests
    }

    /// Every sequence's state (last_value, is_called), for comparing a restore with its source.
    public static func sequenceStates(_ database: TestDatabase) throws -> [String: String] {
        let connection = try database.connect()
        var states: [String: String] = [:]
        for row in try connection.query("SELECT format('%I.%I', schemaname, sequencename) FROM pg_catalog.pg_sequences ORDER BY 1").rows {
            states[row[0]!] = try connection.query("SELECT last_value::text || ' ' || is_called::text FROM \(row[0]!)").scalar
        }
        return states
    }
}
