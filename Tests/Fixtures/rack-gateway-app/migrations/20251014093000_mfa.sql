CREATE TABLE public.mfa_methods (
    id bigserial PRIMARY KEY,
    user_id bigint NOT NULL REFERENCES public.users (id) ON DELETE CASCADE,
    type varchar(32) NOT NULL CHECK (type IN ('totp', 'webauthn', 'yubiotp')),
    label varchar(255),
    secret text,
    credential_id bytea,
    public_key bytea,
    transports jsonb,
    metadata jsonb NOT NULL DEFAULT '{}'::jsonb,
    confirmed_at timestamptz,
    last_used_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX mfa_methods_credential_id_idx ON public.mfa_methods (credential_id) WHERE credential_id IS NOT NULL;

CREATE TABLE public.mfa_backup_codes (
    id bigserial PRIMARY KEY,
    user_id bigint NOT NULL REFERENCES public.users (id) ON DELETE CASCADE,
    code_hash bytea NOT NULL,
    used_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE public.mfa_attempts (
    id bigserial PRIMARY KEY,
    user_id bigint NOT NULL REFERENCES public.users (id) ON DELETE CASCADE,
    method_id bigint REFERENCES public.mfa_methods (id) ON DELETE SET NULL,
    success boolean NOT NULL,
    failure_reason text,
    ip_address inet,
    user_agent text,
    attempted_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX mfa_attempts_user_time_idx ON public.mfa_attempts (user_id, attempted_at DESC);

-- No surrogate key: one row per user and TOTP time step, so a code cannot be replayed.
CREATE TABLE public.used_totp_steps (
    user_id bigint NOT NULL REFERENCES public.users (id) ON DELETE CASCADE,
    time_step bigint NOT NULL,
    used_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, time_step)
);

CREATE TABLE public.trusted_devices (
    id bigserial PRIMARY KEY,
    user_id bigint NOT NULL REFERENCES public.users (id) ON DELETE CASCADE,
    device_id uuid NOT NULL,
    token_hash bytea NOT NULL UNIQUE,
    ip_address inet,
    user_agent text,
    expires_at timestamptz NOT NULL,
    revoked_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now()
);
