import RGWPostgres

/// Where `maint audit-prune` records what it removed from the front of the audit chain, so a drill can
/// tell a pruned chain from one with missing events.
///
/// The bundled schema has `audit.audit_prune_log` (its migration 20250101000500). The application's
/// schema has no such table, so on its databases the tool keeps the record in a schema of its own,
/// `rack_gateway_db`, created by the first prune. It is an ordinary table of the database: backups
/// carry it and restores bring it back like any other.
enum AuditPruneLog {
    static let bundled = "audit.audit_prune_log"
    static let toolOwned = "rack_gateway_db.audit_prune_log"
    /// Every place a prune may be recorded, for the drill.
    static let tables = [bundled, toolOwned]

    /// The table to record a prune in: the schema's own when it has one, else the tool's (created
    /// here, inside the caller's transaction).
    static func prepare(_ connection: Connection) throws -> String {
        if try connection.query("SELECT to_regclass($1) IS NOT NULL", [bundled]).scalar == "t" { return bundled }
        try connection.execute("""
            CREATE SCHEMA IF NOT EXISTS rack_gateway_db;
            COMMENT ON SCHEMA rack_gateway_db IS 'rack-gateway-db: records of its own (audit prunes); not part of the application schema';
            REVOKE ALL ON SCHEMA rack_gateway_db FROM PUBLIC;
            CREATE TABLE IF NOT EXISTS rack_gateway_db.audit_prune_log (
                id bigserial PRIMARY KEY,
                pruned_at timestamptz NOT NULL DEFAULT now(),
                cutoff timestamptz NOT NULL,
                pruned_count bigint NOT NULL CHECK (pruned_count > 0),
                first_chain_index bigint NOT NULL,
                last_chain_index bigint NOT NULL,
                new_chain_start bigint NOT NULL,
                last_pruned_event_hash bytea NOT NULL,
                pruned_by text NOT NULL DEFAULT current_user,
                CHECK (new_chain_start = last_chain_index + 1)
            );
            REVOKE ALL ON rack_gateway_db.audit_prune_log FROM PUBLIC;
            """)
        return toolOwned
    }

    /// The enabled, user-defined triggers of `audit.audit_event` that fire on DELETE (read from the
    /// catalog: the bundled schema calls its own `audit_event_no_delete`, the application's
    /// `t_forbid_delete`), with the `ALTER TABLE` clause that puts each back as it was.
    static func deleteTriggers(_ connection: Connection) throws -> [(name: String, enable: String)] {
        try connection.query("""
            SELECT tgname, tgenabled::text FROM pg_catalog.pg_trigger
            WHERE tgrelid = 'audit.audit_event'::regclass AND NOT tgisinternal
              AND (tgtype::int & 8) <> 0 AND tgenabled <> 'D'
            ORDER BY tgname
            """).rows.map { row in
            let enable = switch row[1] {
            case "A": "ENABLE ALWAYS TRIGGER"
            case "R": "ENABLE REPLICA TRIGGER"
            default: "ENABLE TRIGGER"
            }
            return (row[0]!, enable)
        }
    }
}
