-- The append-only, hash-chained audit log.
--
-- Every event carries chain_index (0, 1, 2, ...), the previous event's hash and its own hash:
--   event_hash = sha256(previous_hash || chain_index || the event's fields)  (core sha256(), no pgcrypto)
-- Rows are appended only through audit.append_event (SECURITY DEFINER, serialised by an
-- advisory lock); triggers reject UPDATE, DELETE and TRUNCATE.

DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'audit_owner') THEN
        BEGIN
            CREATE ROLE audit_owner NOLOGIN;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN
            NULL;  -- created meanwhile by a migration of another database of this server
        END;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'audit_writer') THEN
        BEGIN
            CREATE ROLE audit_writer NOLOGIN;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN
            NULL;  -- created meanwhile by a migration of another database of this server
        END;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'audit_reader') THEN
        BEGIN
            CREATE ROLE audit_reader NOLOGIN;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN
            NULL;  -- created meanwhile by a migration of another database of this server
        END;
    END IF;
    -- A migrating role that is not a superuser needs to be able to SET ROLE audit_owner to hand it
    -- objects. Since PostgreSQL 16 the role that created audit_owner holds only ADMIN OPTION on it
    -- (membership without SET), so the test is the SET privilege there, and the grant says so.
    IF NOT (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user) THEN
        IF current_setting('server_version_num')::int >= 160000 THEN
            IF NOT pg_has_role(current_user, 'audit_owner', 'SET') THEN
                EXECUTE format('GRANT audit_owner TO %I WITH INHERIT TRUE, SET TRUE', current_user);
            END IF;
        ELSIF NOT pg_has_role(current_user, 'audit_owner', 'MEMBER') THEN
            EXECUTE format('GRANT audit_owner TO %I', current_user);
        END IF;
    END IF;
END
$$;

CREATE SCHEMA audit AUTHORIZATION audit_owner;
REVOKE ALL ON SCHEMA audit FROM PUBLIC;
GRANT USAGE ON SCHEMA audit TO audit_writer, audit_reader;

CREATE TABLE audit.audit_event (
    id bigserial PRIMARY KEY,
    "timestamp" timestamptz NOT NULL DEFAULT now(),
    chain_index bigint NOT NULL CONSTRAINT audit_event_chain_index_nonnegative CHECK (chain_index >= 0),
    previous_hash bytea,
    event_hash bytea NOT NULL,
    checkpoint_id text,
    checkpoint_hash bytea,
    user_email text,
    user_name text,
    api_token_id bigint,
    api_token_name text,
    action_type text NOT NULL,
    action text NOT NULL,
    command text,
    resource text,
    resource_type text,
    details jsonb NOT NULL DEFAULT '{}'::jsonb,
    request_id text,
    ip_address inet,
    user_agent text,
    status text NOT NULL,
    rbac_decision text,
    http_status integer,
    response_time_ms integer,
    event_count integer NOT NULL DEFAULT 1,
    deploy_approval_request_id bigint,
    CONSTRAINT audit_event_chain_index_key UNIQUE (chain_index),
    CONSTRAINT audit_event_genesis_has_no_previous CHECK ((chain_index = 0) = (previous_hash IS NULL))
);
ALTER TABLE audit.audit_event OWNER TO audit_owner;
ALTER SEQUENCE audit.audit_event_id_seq OWNER TO audit_owner;

CREATE INDEX audit_event_timestamp_idx ON audit.audit_event ("timestamp");
CREATE INDEX audit_event_user_email_timestamp_idx ON audit.audit_event (user_email, "timestamp");
CREATE INDEX audit_event_action_type_idx ON audit.audit_event (action_type);
CREATE INDEX audit_event_request_id_idx ON audit.audit_event (request_id);

CREATE SEQUENCE audit.audit_event_chain_index_seq MINVALUE 0 START WITH 0;
ALTER SEQUENCE audit.audit_event_chain_index_seq OWNER TO audit_owner;
ALTER SEQUENCE audit.audit_event_chain_index_seq OWNED BY audit.audit_event.chain_index;

-- Row-level security: readers see every event; nobody else sees any through the table.
ALTER TABLE audit.audit_event ENABLE ROW LEVEL SECURITY;
CREATE POLICY audit_event_read ON audit.audit_event FOR SELECT TO audit_reader USING (true);
REVOKE ALL ON audit.audit_event FROM PUBLIC;
GRANT SELECT ON audit.audit_event TO audit_reader;

CREATE FUNCTION audit.reject_modification() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit.audit_event is append-only: % is not allowed', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;
ALTER FUNCTION audit.reject_modification() OWNER TO audit_owner;

CREATE TRIGGER audit_event_no_update BEFORE UPDATE ON audit.audit_event
    FOR EACH ROW EXECUTE FUNCTION audit.reject_modification();
CREATE TRIGGER audit_event_no_delete BEFORE DELETE ON audit.audit_event
    FOR EACH ROW EXECUTE FUNCTION audit.reject_modification();
CREATE TRIGGER audit_event_no_truncate BEFORE TRUNCATE ON audit.audit_event
    FOR EACH STATEMENT EXECUTE FUNCTION audit.reject_modification();

-- The hash of one event, from its link to the previous event and its own fields.
CREATE FUNCTION audit.compute_event_hash(
    p_previous_hash bytea, p_chain_index bigint, p_timestamp timestamptz,
    p_user_email text, p_action_type text, p_action text, p_resource text,
    p_details jsonb, p_status text
) RETURNS bytea
    LANGUAGE sql IMMUTABLE
    SET search_path = pg_catalog, public
    AS $$
        SELECT pg_catalog.sha256(
            coalesce(p_previous_hash, ''::bytea)
            || convert_to(concat_ws(E'\x1f', p_chain_index::text,
                   to_char(p_timestamp AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
                   coalesce(p_user_email, ''), p_action_type, p_action, coalesce(p_resource, ''),
                   p_details::text, p_status), 'UTF8'))
    $$;
ALTER FUNCTION audit.compute_event_hash(bytea, bigint, timestamptz, text, text, text, text, jsonb, text) OWNER TO audit_owner;

-- Append one event: takes the chain lock, links to the last event, returns the new chain_index.
CREATE FUNCTION audit.append_event(
    p_action_type text, p_action text, p_status text,
    p_user_email text DEFAULT NULL, p_user_name text DEFAULT NULL,
    p_resource text DEFAULT NULL, p_resource_type text DEFAULT NULL,
    p_details jsonb DEFAULT '{}'::jsonb, p_command text DEFAULT NULL,
    p_request_id text DEFAULT NULL, p_ip_address inet DEFAULT NULL, p_user_agent text DEFAULT NULL,
    p_api_token_id bigint DEFAULT NULL, p_api_token_name text DEFAULT NULL,
    p_rbac_decision text DEFAULT NULL, p_http_status integer DEFAULT NULL,
    p_response_time_ms integer DEFAULT NULL, p_event_count integer DEFAULT 1,
    p_deploy_approval_request_id bigint DEFAULT NULL
) RETURNS bigint
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, public
    AS $$
DECLARE
    v_last_index bigint;
    v_last_hash bytea;
    v_index bigint;
    v_previous bytea;
    v_now timestamptz := clock_timestamp();
BEGIN
    -- One appender at a time, so every event links to the one before it.
    PERFORM pg_advisory_xact_lock(hashtext('audit.audit_event chain'));
    SELECT chain_index, event_hash INTO v_last_index, v_last_hash
        FROM audit.audit_event ORDER BY chain_index DESC LIMIT 1;
    v_index := nextval('audit.audit_event_chain_index_seq');
    IF v_last_index IS NOT NULL AND v_index <> v_last_index + 1 THEN
        -- A rolled-back append consumed a value: keep the chain gap-free.
        v_index := v_last_index + 1;
        PERFORM setval('audit.audit_event_chain_index_seq', v_index, true);
    END IF;
    v_previous := CASE WHEN v_index = 0 THEN NULL ELSE v_last_hash END;
    INSERT INTO audit.audit_event (
        "timestamp", chain_index, previous_hash, event_hash, user_email, user_name, api_token_id,
        api_token_name, action_type, action, command, resource, resource_type, details, request_id,
        ip_address, user_agent, status, rbac_decision, http_status, response_time_ms, event_count,
        deploy_approval_request_id)
    VALUES (
        v_now, v_index, v_previous,
        audit.compute_event_hash(v_previous, v_index, v_now, p_user_email, p_action_type, p_action,
                                 p_resource, p_details, p_status),
        p_user_email, p_user_name, p_api_token_id, p_api_token_name, p_action_type, p_action, p_command,
        p_resource, p_resource_type, p_details, p_request_id, p_ip_address, p_user_agent, p_status,
        p_rbac_decision, p_http_status, p_response_time_ms, p_event_count, p_deploy_approval_request_id);
    RETURN v_index;
END
$$;
ALTER FUNCTION audit.append_event(text, text, text, text, text, text, text, jsonb, text, text, inet, text, bigint, text, text, integer, integer, integer, bigint) OWNER TO audit_owner;
REVOKE ALL ON FUNCTION audit.append_event(text, text, text, text, text, text, text, jsonb, text, text, inet, text, bigint, text, text, integer, integer, integer, bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION audit.append_event(text, text, text, text, text, text, text, jsonb, text, text, inet, text, bigint, text, text, integer, integer, integer, bigint) TO audit_writer;

-- The first broken link between chain_index p_start and p_end (inclusive), or no row.
-- A link is broken when the genesis event has a previous hash, an event's previous_hash is not
-- the prior event's event_hash, or a chain_index is missing.
CREATE FUNCTION audit.verify_chain(p_start bigint, p_end bigint)
    RETURNS TABLE (chain_index bigint, problem text)
    LANGUAGE sql STABLE
    SET search_path = pg_catalog
    AS $$
        WITH ordered AS (
            SELECT e.chain_index, e.previous_hash, e.event_hash,
                   lag(e.chain_index) OVER w AS prior_index,
                   lag(e.event_hash) OVER w AS prior_hash
            FROM audit.audit_event e
            WHERE e.chain_index BETWEEN greatest(p_start - 1, 0) AND p_end
            WINDOW w AS (ORDER BY e.chain_index)
        )
        SELECT o.chain_index,
               CASE
                   WHEN o.chain_index = 0 AND o.previous_hash IS NOT NULL THEN 'genesis event has a previous_hash'
                   WHEN o.prior_index IS NOT NULL AND o.chain_index <> o.prior_index + 1
                       THEN format('gap: chain_index %s follows %s', o.chain_index, o.prior_index)
                   ELSE 'previous_hash does not match the prior event_hash'
               END
        FROM ordered o
        WHERE o.chain_index >= p_start
          AND ((o.chain_index = 0 AND o.previous_hash IS NOT NULL)
               OR (o.prior_index IS NOT NULL AND o.chain_index <> o.prior_index + 1)
               OR (o.prior_index IS NOT NULL AND o.previous_hash IS DISTINCT FROM o.prior_hash))
        ORDER BY o.chain_index
        LIMIT 1
    $$;
ALTER FUNCTION audit.verify_chain(bigint, bigint) OWNER TO audit_owner;
GRANT EXECUTE ON FUNCTION audit.verify_chain(bigint, bigint) TO audit_reader;
