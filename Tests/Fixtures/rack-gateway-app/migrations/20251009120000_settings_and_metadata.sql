CREATE TABLE public.settings (
    id bigserial PRIMARY KEY,
    app_name varchar(255),
    key varchar(255) NOT NULL,
    value jsonb NOT NULL,
    updated_by_user_id bigint REFERENCES public.users (id) ON DELETE SET NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX settings_app_key_idx ON public.settings (coalesce(app_name, ''), key);

CREATE TABLE public.user_resources (
    id bigserial PRIMARY KEY,
    user_id bigint NOT NULL REFERENCES public.users (id) ON DELETE CASCADE,
    resource_type varchar(64) NOT NULL,
    resource_id varchar(255) NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (user_id, resource_type, resource_id)
);

-- One row: which environment this database belongs to (reset guards read it).
CREATE TABLE public.rgw_internal_metadata (
    id boolean PRIMARY KEY DEFAULT true CHECK (id),
    environment varchar(32) NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);
