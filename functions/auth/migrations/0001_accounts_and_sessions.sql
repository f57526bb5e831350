-- Identity, sessions and one-time tokens. Emails are stored lower-cased; every secret
-- (refresh, reset, verification token) is stored as its SHA-256 only.

CREATE TABLE auth.users (
    id                  uuid PRIMARY KEY,
    email               text NOT NULL,
    -- NULL for an account created by an admin invitation that has not set a password yet.
    password_hash       text,
    status              text NOT NULL DEFAULT 'ACTIVE'
                        CHECK (status IN ('ACTIVE', 'INACTIVE', 'SUSPENDED')),
    email_verified      boolean NOT NULL DEFAULT false,
    last_login          timestamptz,
    password_changed_at timestamptz,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT users_email_key UNIQUE (email),
    CONSTRAINT users_email_lower CHECK (email = lower(email))
);

-- One row per signed-in device: the refresh-token family. `id` is the `sid` claim of every
-- access token issued in it; `token_hash` is the hash of its current refresh token.
CREATE TABLE auth.user_sessions (
    id             uuid PRIMARY KEY,
    user_id        uuid NOT NULL REFERENCES auth.users (id) ON DELETE CASCADE,
    token_hash     bytea NOT NULL,
    device_info    jsonb NOT NULL DEFAULT '{}'::jsonb,
    ip_address     inet,
    expires_at     timestamptz NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    last_used_at   timestamptz NOT NULL DEFAULT now(),
    revoked_at     timestamptz,
    revoked_reason text CHECK (revoked_reason IN
                   ('logout', 'logout_all', 'revoked', 'refresh_reuse', 'password_reset', 'password_changed', 'account_disabled')),
    CONSTRAINT user_sessions_token_hash_key UNIQUE (token_hash)
);
CREATE INDEX user_sessions_active_idx ON auth.user_sessions (user_id, created_at) WHERE revoked_at IS NULL;

-- Every refresh token a session has had. A rotated token keeps its successor sealed under a
-- key derived from the rotated token itself, so a concurrent refresh within the grace window
-- can be answered with the same successor while the database alone cannot reveal it.
CREATE TABLE auth.refresh_tokens (
    token_hash       bytea PRIMARY KEY,
    session_id       uuid NOT NULL REFERENCES auth.user_sessions (id) ON DELETE CASCADE,
    issued_at        timestamptz NOT NULL DEFAULT now(),
    rotated_at       timestamptz,
    successor_hash   bytea,
    successor_sealed bytea
);
CREATE INDEX refresh_tokens_session_idx ON auth.refresh_tokens (session_id);

CREATE TABLE auth.password_reset_tokens (
    id         uuid PRIMARY KEY,
    user_id    uuid NOT NULL REFERENCES auth.users (id) ON DELETE CASCADE,
    token_hash bytea NOT NULL,
    expires_at timestamptz NOT NULL,
    used_at    timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT password_reset_tokens_token_hash_key UNIQUE (token_hash)
);
CREATE INDEX password_reset_tokens_user_idx ON auth.password_reset_tokens (user_id);

CREATE TABLE auth.email_verification_tokens (
    id         uuid PRIMARY KEY,
    user_id    uuid NOT NULL REFERENCES auth.users (id) ON DELETE CASCADE,
    email      text NOT NULL,
    token_hash bytea NOT NULL,
    expires_at timestamptz NOT NULL,
    used_at    timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT email_verification_tokens_token_hash_key UNIQUE (token_hash)
);
CREATE INDEX email_verification_tokens_user_idx ON auth.email_verification_tokens (user_id);
