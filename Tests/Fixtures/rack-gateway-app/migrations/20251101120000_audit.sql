-- The append-only, hash-chained audit log in schema audit (owned by audit_owner, which Terraform
-- creates with audit_writer and audit_reader). The tables belong to the role that migrates.
CREATE SCHEMA audit AUTHORIZATION audit_owner;
GRANT USAGE ON SCHEMA audit TO audit_writer, audit_reader;

CREATE SEQUENCE audit.audit_event_chain_index_seq MINVALUE 0 START WITH 0;

CREATE TABLE audit.audit_event (
    id bigserial PRIMARY KEY,
    "timestamp" timestamptz NOT NULL DEFAULT now(),
    chain_index bigint NOT NULL DEFAULT 0 UNIQUE CHECK (chain_index >= 0),
    previous_hash bytea,
    event_hash bytea NOT NULL,
    checkpoint_id varchar(255),
    checkpoint_hash bytea,
    user_email varchar(255),
    user_name varchar(255),
    api_token_id bigint,
    api_token_name varchar(255),
    action_type varchar(64) NOT NULL,
    action varchar(255) NOT NULL,
    command text CHECK (length(command) <= 2000),
    resource varchar(512),
    resource_type varchar(64),
    details text CHECK (length(details) <= 8000),
    request_id varchar(128),
    ip_address inet,
    user_agent text,
    status varchar(32) NOT NULL,
    rbac_decision varchar(32),
    http_status integer,
    response_time_ms integer,
    event_count integer NOT NULL DEFAULT 1,
    deploy_approval_request_id bigint,
    CONSTRAINT audit_event_previous_hash_genesis CHECK ((previous_hash IS NULL) = (chain_index = 0))
);
ALTER TABLE audit.audit_event ALTER COLUMN chain_index SET DEFAULT nextval('audit.audit_event_chain_index_seq');
ALTER SEQUENCE audit.audit_event_chain_index_seq OWNED BY audit.audit_event.chain_index;
CREATE INDEX audit_event_timestamp_idx ON audit.audit_event ("timestamp");
CREATE INDEX audit_event_user_email_idx ON audit.audit_event (user_email);
CREATE INDEX audit_event_action_type_idx ON audit.audit_event (action_type, "timestamp" DESC);

-- A mutable roll-up maintained by a trigger: one row per day, action type and status.
CREATE TABLE audit.audit_event_aggregated (
    day date NOT NULL,
    action_type varchar(64) NOT NULL,
    status varchar(32) NOT NULL,
    event_count bigint NOT NULL DEFAULT 0,
    last_event_id bigint,
    PRIMARY KEY (day, action_type, status)
);

ALTER TABLE audit.audit_event ENABLE ROW LEVEL SECURITY;
CREATE POLICY insert_only ON audit.audit_event FOR INSERT TO audit_writer WITH CHECK (true);
CREATE POLICY ro_read ON audit.audit_event FOR SELECT TO audit_reader USING (true);
REVOKE ALL ON audit.audit_event FROM PUBLIC;
GRANT INSERT ON audit.audit_event TO audit_writer;
GRANT SELECT ON audit.audit_event, audit.audit_event_aggregated TO audit_reader;

CREATE FUNCTION audit.forbid_update_delete() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog
    AS $$
BEGIN
    RAISE EXCEPTION 'audit events are immutable (% refused)', TG_OP USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE TRIGGER t_forbid_update BEFORE UPDATE ON audit.audit_event
    FOR EACH ROW EXECUTE FUNCTION audit.forbid_update_delete();
CREATE TRIGGER t_forbid_delete BEFORE DELETE ON audit.audit_event
    FOR EACH ROW EXECUTE FUNCTION audit.forbid_update_delete();

CREATE FUNCTION audit.aggregate_audit_event() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog
    AS $$
BEGIN
    INSERT INTO audit.audit_event_aggregated AS a (day, action_type, status, event_count, last_event_id)
    VALUES ((NEW."timestamp" AT TIME ZONE 'UTC')::date, NEW.action_type, NEW.status, NEW.event_count, NEW.id)
    ON CONFLICT (day, action_type, status)
    DO UPDATE SET event_count = a.event_count + EXCLUDED.event_count, last_event_id = EXCLUDED.last_event_id;
    RETURN NULL;
END
$$;
CREATE TRIGGER audit_event_aggregation_trigger AFTER INSERT ON audit.audit_event
    FOR EACH ROW EXECUTE FUNCTION audit.aggregate_audit_event();

-- The only way the application writes an event: the hashes come from the application (HMAC in Go),
-- the chain index from the sequence; returns the new id.
CREATE FUNCTION audit.append_audit_event(
    p_timestamp timestamptz, p_previous_hash bytea, p_event_hash bytea,
    p_checkpoint_id varchar, p_checkpoint_hash bytea,
    p_user_email varchar, p_user_name varchar, p_api_token_id bigint, p_api_token_name varchar,
    p_action_type varchar, p_action varchar, p_command text, p_resource varchar, p_resource_type varchar,
    p_details text, p_request_id varchar, p_ip_address inet, p_user_agent text, p_status varchar,
    p_rbac_decision varchar, p_http_status integer, p_response_time_ms integer, p_event_count integer,
    p_deploy_approval_request_id bigint
) RETURNS bigint
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog
    AS $$
DECLARE
    v_id bigint;
BEGIN
    INSERT INTO audit.audit_event (
        "timestamp", previous_hash, event_hash, checkpoint_id, checkpoint_hash, user_email, user_name,
        api_token_id, api_token_name, action_type, action, command, resource, resource_type, details,
        request_id, ip_address, user_agent, status, rbac_decision, http_status, response_time_ms,
        event_count, deploy_approval_request_id)
    VALUES (
        p_timestamp, p_previous_hash, p_event_hash, p_checkpoint_id, p_checkpoint_hash, p_user_email, p_user_name,
        p_api_token_id, p_api_token_name, p_action_type, p_action, p_command, p_resource, p_resource_type, p_details,
        p_request_id, p_ip_address, p_user_agent, p_status, p_rbac_decision, p_http_status, p_response_time_ms,
        p_event_count, p_deploy_approval_request_id)
    RETURNING id INTO v_id;
    RETURN v_id;
END
$$;
REVOKE ALL ON FUNCTION audit.append_audit_event(timestamptz, bytea, bytea, varchar, bytea, varchar, varchar, bigint, varchar, varchar, varchar, text, varchar, varchar, text, varchar, inet, text, varchar, varchar, integer, integer, integer, bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION audit.append_audit_event(timestamptz, bytea, bytea, varchar, bytea, varchar, varchar, bigint, varchar, varchar, varchar, text, varchar, varchar, text, varchar, inet, text, varchar, varchar, integer, integer, integer, bigint) TO audit_writer;

CREATE FUNCTION audit.get_latest_event() RETURNS SETOF audit.audit_event
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog
    AS $$ SELECT * FROM audit.audit_event ORDER BY chain_index DESC LIMIT 1 $$;

-- Linkage from the first event of the range on; no row means intact. A chain that starts after 0 is
-- not reported (it checks only from the first event it finds).
CREATE FUNCTION audit.verify_chain(start_index bigint DEFAULT 0, end_index bigint DEFAULT NULL)
    RETURNS TABLE (broken_at_index bigint, event_id bigint, error_message text)
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path = pg_catalog
    AS $$
DECLARE
    v_row record;
    v_prior_index bigint;
    v_prior_hash bytea;
BEGIN
    FOR v_row IN
        SELECT e.id, e.chain_index, e.previous_hash, e.event_hash FROM audit.audit_event e
        WHERE e.chain_index >= start_index AND (end_index IS NULL OR e.chain_index <= end_index)
        ORDER BY e.chain_index
    LOOP
        IF v_prior_index IS NULL THEN
            IF v_row.chain_index = 0 AND v_row.previous_hash IS NOT NULL THEN
                RETURN QUERY SELECT v_row.chain_index, v_row.id, 'genesis event has a previous hash'::text;
                RETURN;
            END IF;
        ELSIF v_row.chain_index <> v_prior_index + 1 THEN
            RETURN QUERY SELECT v_row.chain_index, v_row.id, format('missing events between %s and %s', v_prior_index, v_row.chain_index);
            RETURN;
        ELSIF v_row.previous_hash IS DISTINCT FROM v_prior_hash THEN
            RETURN QUERY SELECT v_row.chain_index, v_row.id, 'previous hash does not match'::text;
            RETURN;
        END IF;
        v_prior_index := v_row.chain_index;
        v_prior_hash := v_row.event_hash;
    END LOOP;
END
$$;
GRANT EXECUTE ON FUNCTION audit.verify_chain(bigint, bigint) TO audit_reader;

CREATE FUNCTION audit.reset_for_tests() RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog
    AS $$
BEGIN
    TRUNCATE audit.audit_event, audit.audit_event_aggregated;
    PERFORM setval('audit.audit_event_chain_index_seq', 0, false);
END
$$;
REVOKE ALL ON FUNCTION audit.reset_for_tests() FROM PUBLIC;
