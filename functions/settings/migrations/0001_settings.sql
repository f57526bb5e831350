-- System settings: application-wide configuration, one row per key. A key may declare the
-- JSON type of its value; once declared, every write must match it (checked by the service
-- with a field error, and here so no other writer can break it).
CREATE TABLE settings.system_settings (
    id          uuid PRIMARY KEY,
    -- Byte order ("C"): the list is sorted by key, and its keyset cursor compares keys.
    key         text COLLATE "C" NOT NULL CONSTRAINT system_settings_key_key UNIQUE
                CONSTRAINT system_settings_key_format
                CHECK (char_length(key) BETWEEN 1 AND 100
                       AND key ~ '^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$'),
    value       jsonb NOT NULL CONSTRAINT system_settings_value_not_null CHECK (value <> 'null'::jsonb),
    value_type  text CONSTRAINT system_settings_value_type_check
                CHECK (value_type IN ('string', 'number', 'integer', 'boolean', 'object', 'array')),
    description text CONSTRAINT system_settings_description_length CHECK (char_length(description) <= 500),
    updated_by  uuid,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    version     integer NOT NULL DEFAULT 1,
    -- CASE, not AND/OR: only a number may reach the numeric cast.
    CONSTRAINT system_settings_value_matches_type CHECK (
        CASE
            WHEN value_type IS NULL THEN true
            WHEN value_type <> 'integer' THEN jsonb_typeof(value) = value_type
            WHEN jsonb_typeof(value) <> 'number' THEN false
            ELSE (value #>> '{}')::numeric % 1 = 0
        END
    )
);

-- The audit trail: every create and update, written in the same transaction as the change.
-- `setting_id` is a plain id (no foreign key), so the trail outlives nothing it describes
-- and reads on its own.
CREATE TABLE settings.system_setting_changes (
    id         uuid PRIMARY KEY,
    setting_id uuid NOT NULL,
    key        text NOT NULL,
    old_value  jsonb,
    new_value  jsonb NOT NULL,
    changed_by uuid,
    changed_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX system_setting_changes_history_idx
    ON settings.system_setting_changes (setting_id, changed_at DESC, id DESC);

INSERT INTO settings.system_settings (id, key, value, value_type, description) VALUES
    (gen_random_uuid(), 'site_name', '"Lectern"', 'string', 'The name the platform shows itself under.'),
    (gen_random_uuid(), 'default_language', '"en"', 'string', 'BCP 47 language tag of users who have not chosen one.'),
    (gen_random_uuid(), 'default_timezone', '"UTC"', 'string', 'IANA time zone of users who have not chosen one.'),
    (gen_random_uuid(), 'default_theme', '"system"', 'string', 'Theme of users who have not chosen one: light, dark or system.'),
    (gen_random_uuid(), 'registration_open', 'true', 'boolean', 'Whether anyone may sign up, or only invited users.'),
    (gen_random_uuid(), 'features', '{}', 'object', 'Feature flags by name.'),
    (gen_random_uuid(), 'max_upload_mb', '50', 'integer', 'The largest media upload accepted, in MiB.');

-- Per-user preferences. The row appears on the user's first save; a user without one, and
-- a NULL column, follow the defaults (the default_* system settings), so a user who never
-- chose a language gets the site's current default, not the one of the day they first saved.
CREATE TABLE settings.user_settings (
    id            uuid PRIMARY KEY,
    user_id       uuid NOT NULL CONSTRAINT user_settings_user_key UNIQUE,
    theme         text CONSTRAINT user_settings_theme_check CHECK (theme IN ('light', 'dark', 'system')),
    language      text CONSTRAINT user_settings_language_length CHECK (char_length(language) BETWEEN 2 AND 35),
    timezone      text CONSTRAINT user_settings_timezone_length CHECK (char_length(timezone) BETWEEN 1 AND 64),
    date_format   text CONSTRAINT user_settings_date_format_check
                  CHECK (date_format IN ('YYYY-MM-DD', 'DD/MM/YYYY', 'MM/DD/YYYY', 'DD.MM.YYYY', 'D MMM YYYY', 'MMM D, YYYY')),
    -- The service limits the compact serialisation to 16 KiB; jsonb's text form spaces it
    -- out by at most half again, so this bound never rejects what the service accepted.
    settings_json jsonb NOT NULL DEFAULT '{}'::jsonb CONSTRAINT user_settings_json_object
                  CHECK (jsonb_typeof(settings_json) = 'object' AND octet_length(settings_json::text) <= 32768),
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);

-- The accounts this service knows exist, kept by its worker from user.created / user.invited /
-- user.deleted: no foreign key crosses schemas.
CREATE TABLE settings.known_users (
    user_id    uuid PRIMARY KEY,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- Accounts deleted for good. Their settings are erased and stay erased: a late or replayed
-- user.created does not bring the account back, and a still-valid access token of the deleted
-- account cannot write new personal data.
CREATE TABLE settings.erased_users (
    user_id   uuid PRIMARY KEY,
    erased_at timestamptz NOT NULL DEFAULT now()
);
