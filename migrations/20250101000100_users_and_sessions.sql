-- People, their browser sessions, API tokens, MFA enrolments and trusted devices.

CREATE TABLE public.users (
    id bigserial PRIMARY KEY,
    email text NOT NULL,
    name text NOT NULL DEFAULT '',
    roles text[] NOT NULL DEFAULT ARRAY['viewer']::text[],
    suspended boolean NOT NULL DEFAULT false,
    mfa_enrolled boolean NOT NULL DEFAULT false,
    mfa_enforced_at timestamptz,
    preferred_mfa_method text,
    locked_at timestamptz,
    locked_reason text,
    created_by_user_id bigint REFERENCES public.users (id) ON DELETE SET NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT users_email_lowercase CHECK (email = lower(email))
);
CREATE UNIQUE INDEX users_email_key ON public.users (email);

CREATE TABLE public.trusted_devices (
    id bigserial PRIMARY KEY,
    user_id bigint NOT NULL REFERENCES public.users (id) ON DELETE CASCADE,
    device_id uuid NOT NULL DEFAULT gen_random_uuid(),
    token_hash bytea NOT NULL,
    user_agent text,
    ip_address inet,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    last_used_at timestamptz,
    revoked_at timestamptz,
    CONSTRAINT trusted_devices_token_hash_key UNIQUE (token_hash)
);
CREATE INDEX trusted_devices_user_id_idx ON public.trusted_devices (user_id);

CREATE TABLE public.user_sessions (
    id bigserial PRIMARY KEY,
    user_id bigint NOT NULL REFERENCES public.users (id) ON DELETE CASCADE,
    token_hash bytea NOT NULL,
    channel text NOT NULL DEFAULT 'web' CHECK (channel IN ('web', 'cli')),
    device_name text,
    ip_address inet,
    user_agent text,
    metadata jsonb NOT NULL DEFAULT '{}'::jsonb,
    mfa_verified_at timestamptz,
    trusted_device_id bigint REFERENCES public.trusted_devices (id) ON DELETE SET NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    last_seen_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    revoked_at timestamptz,
    revoked_by_user_id bigint REFERENCES public.users (id) ON DELETE SET NULL,
    CONSTRAINT user_sessions_token_hash_key UNIQUE (token_hash)
);
CREATE INDEX user_sessions_user_id_idx ON public.user_sessions (user_id);
CREATE INDEX user_sessions_created_at_idx ON public.user_sessions (created_at);
CREATE INDEX user_sessions_expires_at_idx ON public.user_sessions (expires_at) WHERE revoked_at IS NULL;

CREATE TABLE public.api_tokens (
    id bigserial PRIMARY KEY,
    public_id uuid NOT NULL DEFAULT gen_random_uuid(),
    token_hash bytea NOT NULL,
    name text NOT NULL,
    user_id bigint NOT NULL REFERENCES public.users (id) ON DELETE CASCADE,
    permissions text[] NOT NULL DEFAULT '{}'::text[],
    created_by_user_id bigint REFERENCES public.users (id) ON DELETE SET NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz,
    last_used_at timestamptz,
    revoked_at timestamptz,
    CONSTRAINT api_tokens_public_id_key UNIQUE (public_id),
    CONSTRAINT api_tokens_token_hash_key UNIQUE (token_hash),
    CONSTRAINT api_tokens_name_per_user UNIQUE (user_id, name)
);

CREATE TABLE public.mfa_methods (
    id bigserial PRIMARY KEY,
    user_id bigint NOT NULL REFERENCES public.users (id) ON DELETE CASCADE,
    type text NOT NULL CHECK (type IN ('totp', 'webauthn', 'yubiotp')),
    label text,
    secret_ciphertext bytea,
    credential_id bytea,
    public_key bytea,
    sign_count bigint NOT NULL DEFAULT 0,
    transports text[],
    confirmed_at timestamptz,
    last_used_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX mfa_methods_user_id_idx ON public.mfa_methods (user_id);
CREATE UNIQUE INDEX mfa_methods_credential_id_key ON public.mfa_methods (credential_id) WHERE credential_id IS NOT NULL;

CREATE TABLE public.mfa_backup_codes (
    id bigserial PRIMARY KEY,
    user_id bigint NOT NULL REFERENCES public.users (id) ON DELETE CASCADE,
    code_hash bytea NOT NULL,
    used_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX mfa_backup_codes_user_id_idx ON public.mfa_backup_codes (user_id);
