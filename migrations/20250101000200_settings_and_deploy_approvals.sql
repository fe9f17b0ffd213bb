-- Gateway settings (global and per app) and CI deploy approval requests.

CREATE TABLE public.settings (
    id bigserial PRIMARY KEY,
    app_name text,
    key text NOT NULL,
    value jsonb NOT NULL,
    updated_by_user_id bigint REFERENCES public.users (id) ON DELETE SET NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX settings_global_key ON public.settings (key) WHERE app_name IS NULL;
CREATE UNIQUE INDEX settings_app_key ON public.settings (app_name, key) WHERE app_name IS NOT NULL;

CREATE TABLE public.deploy_approval_requests (
    id bigserial PRIMARY KEY,
    public_id uuid NOT NULL DEFAULT gen_random_uuid(),
    message text NOT NULL,
    app text,
    git_commit_hash text NOT NULL,
    git_branch text,
    pipeline_url text,
    ci_metadata jsonb NOT NULL DEFAULT '{}'::jsonb,
    status text NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'approved', 'rejected', 'expired', 'consumed')),
    created_by_user_id bigint REFERENCES public.users (id) ON DELETE SET NULL,
    created_by_api_token_id bigint REFERENCES public.api_tokens (id) ON DELETE SET NULL,
    target_api_token_id bigint REFERENCES public.api_tokens (id) ON DELETE SET NULL,
    approved_by_user_id bigint REFERENCES public.users (id) ON DELETE SET NULL,
    approved_at timestamptz,
    approval_expires_at timestamptz,
    rejected_by_user_id bigint REFERENCES public.users (id) ON DELETE SET NULL,
    rejected_at timestamptz,
    approval_notes text,
    release_id text,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT deploy_approval_requests_public_id_key UNIQUE (public_id)
);
CREATE INDEX deploy_approval_requests_status_idx ON public.deploy_approval_requests (status, created_at);
CREATE INDEX deploy_approval_requests_commit_idx ON public.deploy_approval_requests (git_commit_hash);
