-- Data for every table of the production-shaped schema. psql -v events=N (default 1200) sets how many
-- audit events; the first 200 are older than 400 days, the rest spread over the last 30 days.
\if :{?events}
\else
\set events 1200
\endif
SET client_min_messages = warning;

INSERT INTO public.rgw_internal_metadata (id, environment) VALUES (true, 'production');

INSERT INTO public.users (email, name, roles, suspended, created_at, last_login_at)
SELECT 'user' || i || '@example.com', 'User ' || i,
       CASE WHEN i % 10 = 0 THEN '["admin"]' WHEN i % 3 = 0 THEN '["deployer"]' ELSE '["viewer"]' END::jsonb,
       i % 50 = 0, now() - (i || ' days')::interval, CASE WHEN i % 4 = 0 THEN NULL ELSE now() - (i || ' hours')::interval END
FROM generate_series(1, 300) i;

INSERT INTO public.user_sessions (user_id, token_hash, created_at, expires_at, last_seen_at, ip_address, user_agent, mfa_verified_at, metadata)
SELECT 1 + i % 300, sha256(('session' || i)::bytea), now() - (i || ' minutes')::interval, now() + interval '1 day',
       now() - (i || ' seconds')::interval, ('10.0.' || (i % 250) || '.' || (i % 200 + 1))::inet, 'Mozilla/5.0 (tab	and "quote" ' || i || ')',
       CASE WHEN i % 2 = 0 THEN now() END, jsonb_build_object('device', 'd' || i, 'n', i)
FROM generate_series(1, 1500) i;

INSERT INTO public.api_tokens (token_hash, name, user_id, permissions, expires_at, last_used_at)
SELECT sha256(('token' || i)::bytea), 'ci token ' || i, 1 + i % 300, jsonb_build_array('convox:apps:read', 'convox:deploy:' || i),
       CASE WHEN i % 3 = 0 THEN now() + interval '90 days' END, now() - (i || ' hours')::interval
FROM generate_series(1, 200) i;

INSERT INTO public.cli_login_states (state, code_verifier, login_nonce, expires_at)
SELECT md5('state' || i), repeat(md5('verifier' || i), 2), CASE WHEN i % 2 = 0 THEN md5('nonce' || i) END, now() + interval '10 minutes'
FROM generate_series(1, 50) i;

INSERT INTO public.settings (app_name, key, value, updated_by_user_id)
SELECT CASE WHEN i % 2 = 0 THEN 'app' || i END, 'setting_' || i, jsonb_build_object('enabled', i % 3 = 0, 'list', jsonb_build_array(i, i * 2)), 1 + i
FROM generate_series(1, 20) i;

INSERT INTO public.user_resources (user_id, resource_type, resource_id)
SELECT 1 + i % 300, CASE WHEN i % 2 = 0 THEN 'app' ELSE 'rack' END, 'res-' || i FROM generate_series(1, 300) i;

INSERT INTO public.mfa_methods (user_id, type, label, secret, credential_id, public_key, transports, metadata, confirmed_at)
SELECT 1 + i % 300, CASE WHEN i % 3 = 0 THEN 'webauthn' WHEN i % 3 = 1 THEN 'totp' ELSE 'yubiotp' END, 'key ' || i,
       CASE WHEN i % 3 = 1 THEN 'JBSWY3DPEHPK3PXP' || i END,
       CASE WHEN i % 3 = 0 THEN sha256(('cred' || i)::bytea) END, CASE WHEN i % 3 = 0 THEN decode(md5('pk' || i) || md5('pk2' || i), 'hex') END,
       CASE WHEN i % 3 = 0 THEN '["usb", "nfc"]'::jsonb END, jsonb_build_object('aaguid', md5('a' || i)), now() - (i || ' days')::interval
FROM generate_series(1, 300) i;

INSERT INTO public.mfa_backup_codes (user_id, code_hash, used_at)
SELECT 1 + i % 300, sha256(('code' || i)::bytea), CASE WHEN i % 7 = 0 THEN now() - (i || ' hours')::interval END FROM generate_series(1, 1000) i;

INSERT INTO public.mfa_attempts (user_id, method_id, success, failure_reason, ip_address, user_agent, attempted_at)
SELECT 1 + i % 300, 1 + i % 300, i % 5 <> 0, CASE WHEN i % 5 = 0 THEN 'invalid code' END, ('192.0.2.' || (i % 250 + 1) || '/32')::inet,
       'rack-gateway-cli/1.' || (i % 9), now() - (i || ' minutes')::interval
FROM generate_series(1, 2000) i;

INSERT INTO public.used_totp_steps (user_id, time_step, used_at)
SELECT 1 + i % 300, 58000000 + i, now() - (i || ' seconds')::interval FROM generate_series(1, 1000) i;

INSERT INTO public.trusted_devices (user_id, device_id, token_hash, ip_address, user_agent, expires_at, revoked_at)
SELECT 1 + i % 300, md5('device' || i)::uuid, sha256(('trusted' || i)::bytea), ('2001:db8::' || to_hex(i))::inet, 'Safari ' || i,
       now() + interval '30 days', CASE WHEN i % 9 = 0 THEN now() END
FROM generate_series(1, 200) i;

INSERT INTO public.deploy_approval_requests (message, app, release_id, status, process_ids, exec_commands, created_by_user_id, approved_by_user_id, approved_at)
SELECT 'deploy ' || i || E' with a\nnewline and a \\ backslash', 'app' || (i % 5), 'R' || lpad(i::text, 8, '0'),
       (ARRAY['pending', 'approved', 'rejected', 'deployed', 'expired'])[1 + i % 5],
       ARRAY['web-' || i, 'worker-' || i], jsonb_build_array(jsonb_build_object('cmd', 'rake db:migrate', 'n', i)),
       1 + i % 300, CASE WHEN i % 5 IN (1, 3) THEN 2 + i % 200 END, CASE WHEN i % 5 IN (1, 3) THEN now() END
FROM generate_series(1, 100) i;

INSERT INTO public.slack_integration (workspace_id, workspace_name, bot_token_encrypted, channel_actions)
VALUES ('T0123', 'Example', 'v1:' || md5('not a real token'), '{"#deploys": ["deploy", "approve"]}');

INSERT INTO public.river_queue (name, metadata, paused_at, updated_at)
VALUES ('default', '{}', NULL, now()), ('audit', '{"x": 1}', NULL, now()), ('slow', '{}', now(), now());

INSERT INTO public.river_job (state, attempt, max_attempts, attempted_at, finalized_at, scheduled_at, priority, args, attempted_by, errors,
                              kind, metadata, queue, tags, unique_key, unique_states)
SELECT s.state, i % 3, 25, now() - (i || ' minutes')::interval,
       CASE WHEN s.state IN ('cancelled', 'completed', 'discarded') THEN now() - (i || ' seconds')::interval END,
       now() + ((i % 7) || ' minutes')::interval, 1 + i % 4, jsonb_build_object('user_id', i, 'email', 'user' || i || '@example.com'),
       CASE WHEN i % 3 > 0 THEN ARRAY['worker-' || (i % 4), 'worker-' || (i % 5)] END,
       CASE WHEN i % 4 = 0 THEN ARRAY[jsonb_build_object('at', now(), 'attempt', 1, 'error', 'boom "' || i || '"'),
                                      jsonb_build_object('at', now(), 'attempt', 2, 'error', E'tab\there')] END,
       (ARRAY['send_email', 'prune_sessions', 'audit_anchor'])[1 + i % 3], jsonb_build_object('trace', md5(i::text)),
       (ARRAY['default', 'audit', 'slow'])[1 + i % 3], ARRAY['t' || (i % 4), 'batch']::varchar(255)[],
       CASE WHEN i % 2 = 0 THEN sha256(('unique' || i)::bytea) END, CASE WHEN i % 2 = 0 THEN B'11110101' END
FROM generate_series(1, 500) i,
     LATERAL (SELECT (ARRAY['available', 'completed', 'retryable', 'running', 'scheduled', 'discarded', 'cancelled', 'pending'])[1 + i % 8]::public.river_job_state AS state) s;

INSERT INTO public.river_leader (elected_at, expires_at, leader_id) VALUES (now(), now() + interval '15 seconds', 'gateway-7f9c');
INSERT INTO public.river_client (id, metadata, updated_at) VALUES ('gateway-7f9c', '{"host": "a"}', now()), ('gateway-2b1d', '{}', now());
INSERT INTO public.river_client_queue (river_client_id, name, max_workers, num_jobs_completed, updated_at)
VALUES ('gateway-7f9c', 'default', 10, 1234, now()), ('gateway-7f9c', 'audit', 2, 56, now()),
       ('gateway-2b1d', 'default', 10, 999, now()), ('gateway-2b1d', 'slow', 1, 0, now());

-- The audit chain, appended the way the application appends: it reads the head, computes the hash
-- (HMAC in Go; a keyed SHA-256 here), and calls audit.append_audit_event.
SELECT set_config('rgw.fixture_events', :'events', false) AS fixture_events \gset
DO $$
DECLARE
    v_total integer := current_setting('rgw.fixture_events')::integer;
    v_previous bytea;
    v_hash bytea;
    v_time timestamptz;
    v_action text;
BEGIN
    FOR i IN 0 .. v_total - 1 LOOP
        SELECT event_hash INTO v_previous FROM audit.get_latest_event();
        v_time := CASE WHEN i < 200 THEN now() - interval '800 days' + i * interval '2 days'
                       ELSE now() - interval '30 days' + (i - 200) * (interval '30 days' / greatest(v_total - 200, 1)) END;
        v_action := (ARRAY['auth.login', 'app.deploy', 'process.exec', 'token.create', 'rbac.deny'])[1 + i % 5];
        v_hash := sha256(convert_to('secret-key' || coalesce(encode(v_previous, 'hex'), '') || i || v_action || v_time::text, 'UTF8'));
        PERFORM audit.append_audit_event(
            v_time, v_previous, v_hash, CASE WHEN i % 100 = 0 THEN 'ckpt-' || i END, CASE WHEN i % 100 = 0 THEN sha256(v_hash) END,
            'user' || (1 + i % 300) || '@example.com', 'User ' || (1 + i % 300), CASE WHEN i % 4 = 0 THEN 1 + i % 200 END,
            CASE WHEN i % 4 = 0 THEN 'ci token ' || (1 + i % 200) END, split_part(v_action, '.', 1), v_action,
            CASE WHEN v_action = 'process.exec' THEN 'bin/rails console -e "puts 1"' END, 'app' || (i % 5), 'app',
            jsonb_build_object('i', i, 'note', E'multi\nline')::text, md5('req' || i), ('198.51.100.' || (i % 250 + 1))::inet,
            'rack-gateway-cli', CASE WHEN i % 11 = 0 THEN 'denied' ELSE 'success' END, CASE WHEN i % 11 = 0 THEN 'deny' ELSE 'allow' END,
            CASE WHEN i % 11 = 0 THEN 403 ELSE 200 END, i % 500, 1 + i % 3, CASE WHEN i % 20 = 0 THEN 1 + i % 100 END);
    END LOOP;
END
$$;
