CREATE TABLE public.deploy_approval_requests (
    id bigserial PRIMARY KEY,
    message text NOT NULL,
    app varchar(255),
    release_id varchar(255),
    status varchar(32) NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'approved', 'rejected', 'expired', 'deployed')),
    process_ids text[] NOT NULL DEFAULT '{}',
    created_by_user_id bigint REFERENCES public.users (id) ON DELETE SET NULL,
    approved_by_user_id bigint REFERENCES public.users (id) ON DELETE SET NULL,
    approved_at timestamptz,
    expires_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- The state machine: pending -> approved | rejected | expired; approved -> deployed | expired; the rest final.
CREATE FUNCTION public.enforce_deploy_approval_transition() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.status IS DISTINCT FROM OLD.status AND NOT (
        (OLD.status = 'pending' AND NEW.status IN ('approved', 'rejected', 'expired'))
        OR (OLD.status = 'approved' AND NEW.status IN ('deployed', 'expired'))) THEN
        RAISE EXCEPTION 'deploy approval request %: % -> % is not allowed', OLD.id, OLD.status, NEW.status;
    END IF;
    NEW.updated_at := now();
    RETURN NEW;
END
$$;
CREATE TRIGGER deploy_approval_requests_transition BEFORE UPDATE ON public.deploy_approval_requests
    FOR EACH ROW EXECUTE FUNCTION public.enforce_deploy_approval_transition();

CREATE TABLE public.slack_integration (
    id bigserial PRIMARY KEY,
    workspace_id varchar(64) NOT NULL UNIQUE,
    workspace_name varchar(255),
    bot_token_encrypted text NOT NULL,
    channel_actions jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
