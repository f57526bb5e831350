-- What each user may do, as the users service last computed it (roles, groups and their
-- ancestors' roles). Kept in step by `user.access_changed` events; read at login and refresh
-- so access tokens carry it and no service has to call back.
CREATE TABLE auth.user_access (
    user_id     uuid PRIMARY KEY REFERENCES auth.users (id) ON DELETE CASCADE,
    access      jsonb NOT NULL,
    -- When the users service computed it: an older event never overwrites a newer summary.
    computed_at timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now()
);
