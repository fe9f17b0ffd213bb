-- What `rack-gateway-db maint audit-prune` removed from the front of the audit chain. Pruning always
-- removes a prefix (by chain_index), so the chain then starts at new_chain_start, whose event's
-- previous_hash is last_pruned_event_hash: a drill checks that link instead of the genesis event.
CREATE TABLE audit.audit_prune_log (
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
ALTER TABLE audit.audit_prune_log OWNER TO audit_owner;
ALTER SEQUENCE audit.audit_prune_log_id_seq OWNER TO audit_owner;
REVOKE ALL ON audit.audit_prune_log FROM PUBLIC;
GRANT SELECT ON audit.audit_prune_log TO audit_reader;
