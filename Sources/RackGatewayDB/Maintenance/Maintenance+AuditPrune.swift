import Foundation
import Logging
import RGWPostgres

extension Maintenance {
    // MARK: audit-prune

    public struct AuditPrune: Codable, Sendable {
        public var cutoff: String
        public var dryRun: Bool
        public var count: Int
        public var firstChainIndex: Int?
        public var lastChainIndex: Int?
        public var newChainStart: Int?
        public var pruned: Bool
        /// The DELETE triggers disabled for the delete and enabled again (read from the catalog).
        public var triggers: [String] = []
        /// Where the prune was recorded.
        public var recordedIn: String?
    }

    /// The key `audit.append_event` locks: the chain cannot grow while it is pruned.
    static let chainLock = "SELECT pg_catalog.pg_advisory_xact_lock(hashtext('audit.audit_event chain'))"

    /// What a prune before `cutoff` would remove: a prefix of the chain (by chain_index) up to the
    /// first event at or after the cutoff, and never the newest event (the next append links to it).
    func prunePlan(cutoff: String) throws -> (count: Int, first: Int?, last: Int?) {
        let row = try connection.query("""
            WITH bound AS (
                SELECT least(
                    coalesce((SELECT min(chain_index) FROM audit.audit_event WHERE "timestamp" >= $1::timestamptz), 9223372036854775807),
                    (SELECT max(chain_index) FROM audit.audit_event)) AS keep_from
            )
            SELECT count(*)::text, min(chain_index)::text, max(chain_index)::text
            FROM audit.audit_event, bound WHERE chain_index < bound.keep_from
            """, [cutoff]).rows[0]
        return (Int(row[0] ?? "0") ?? 0, row[1].flatMap { Int($0) }, row[2].flatMap { Int($0) })
    }

    /// Delete the audit events older than now − `olderThan` (a prefix of the chain), in one
    /// transaction: the chain lock, the DELETE triggers the catalog names off, the delete, the
    /// triggers on as they were, a row in the prune log (`AuditPruneLog`). `confirm` is asked with
    /// the count before anything changes.
    ///
    /// - Important: deletes audit events for good (the WORM anchors and backups keep what they
    ///   recorded); refuses cutoffs younger than `minimumDays`.
    public func auditPrune(olderThan seconds: Double, minimumDays: Int, dryRun: Bool, confirm: (Int) -> Bool) throws -> AuditPrune {
        guard seconds >= Double(minimumDays) * 86400 else {
            throw ToolError(.failed, "refusing to prune audit events younger than \(minimumDays) days (AUDIT_ANCHOR_RETENTION_DAYS): --older-than is \(String(format: "%.1f", seconds / 86400)) days",
                            fix: "Use --older-than \(minimumDays)d or more; the audit anchors in S3 are kept \(minimumDays) days.")
        }
        let cutoff = try connection.query("SELECT (now() - make_interval(secs => $1::double precision))::text", [String(seconds)]).scalar ?? ""
        let plan = try prunePlan(cutoff: cutoff)
        var report = AuditPrune(cutoff: cutoff, dryRun: dryRun, count: plan.count, firstChainIndex: plan.first,
                                lastChainIndex: plan.last, newChainStart: plan.last.map { $0 + 1 }, pruned: false)
        guard !dryRun, plan.count > 0 else { return report }
        guard confirm(plan.count) else {
            throw ToolError(.notConfirmed, "not confirmed; nothing was pruned", fix: "Pass --yes to prune without asking.")
        }
        try connection.execute("BEGIN")
        do {
            try connection.execute(Self.chainLock)
            // Planned again under the lock: the chain may have grown meanwhile.
            let locked = try prunePlan(cutoff: cutoff)
            guard let first = locked.first, let last = locked.last, locked.count > 0 else {
                try connection.execute("ROLLBACK")
                return report
            }
            // Exactly the triggers that fire on DELETE, off for this transaction's delete and on again
            // in their former state before it commits (ALTER TABLE is transactional).
            let triggers = try AuditPruneLog.deleteTriggers(connection)
            for trigger in triggers {
                try connection.execute("ALTER TABLE audit.audit_event DISABLE TRIGGER \(SQL.identifier(trigger.name))")
            }
            let hash = try connection.query("SELECT encode(event_hash, 'hex') FROM audit.audit_event WHERE chain_index = $1::bigint", [String(last)]).scalar ?? ""
            let deleted = try connection.query("DELETE FROM audit.audit_event WHERE chain_index <= $1::bigint", [String(last)]).affectedRows ?? 0
            for trigger in triggers {
                try connection.execute("ALTER TABLE audit.audit_event \(trigger.enable) \(SQL.identifier(trigger.name))")
            }
            let log = try AuditPruneLog.prepare(connection)
            try connection.query("""
                INSERT INTO \(log) (cutoff, pruned_count, first_chain_index, last_chain_index, new_chain_start, last_pruned_event_hash)
                VALUES ($1::timestamptz, $2::bigint, $3::bigint, $4::bigint, $4::bigint + 1, decode($5, 'hex'))
                """, [cutoff, String(deleted), String(first), String(last), hash])
            try connection.execute("COMMIT")
            report.triggers = triggers.map(\.name)
            report.recordedIn = log
            report.count = deleted
            report.firstChainIndex = first
            report.lastChainIndex = last
            report.newChainStart = last + 1
            report.pruned = true
            return report
        } catch {
            _ = try? connection.execute("ROLLBACK")
            if let error = error as? PostgresError, error.sqlState == "42501" {
                throw ToolError(.failed, "\(connection.userName) may not alter audit.audit_event (\(error.message)); nothing was pruned",
                                fix: "Run audit-prune as the table's owner (audit_owner) or a superuser.")
            }
            throw error
        }
    }
}
