-- The directory as the HTTP routes serve it: invitations, text search, group depth, and the
-- one place the last-admin and escalation rules read from.

CREATE EXTENSION IF NOT EXISTS pg_trgm;

ALTER TABLE users.users
    ADD COLUMN invited_by uuid,
    ADD COLUMN invited_at timestamptz,
    ADD COLUMN deactivated_at timestamptz,
    ADD CONSTRAINT users_phone_length CHECK (char_length(phone) <= 40),
    ADD CONSTRAINT users_job_title_length CHECK (char_length(job_title) <= 200),
    ADD CONSTRAINT users_department_length CHECK (char_length(department) <= 200),
    ADD CONSTRAINT users_bio_length CHECK (char_length(bio) <= 5000),
    ADD CONSTRAINT users_avatar_length CHECK (char_length(avatar_url) <= 2048);

-- `?q=` matches any part of a name or the address; trigram indexes keep that an index scan.
CREATE INDEX users_search_idx ON users.users
    USING gin ((lower(first_name || ' ' || last_name || ' ' || coalesce(email, ''))) gin_trgm_ops);
CREATE INDEX users_status_name_idx ON users.users (status, lower(last_name), lower(first_name), id);

-- Keyset order of the role and group lists.
CREATE INDEX roles_list_idx ON users.roles (lower(name), id);
CREATE INDEX groups_list_idx ON users.groups (lower(name), id);
CREATE INDEX permissions_list_idx ON users.permissions (module, name);

-- System settings are the Admin's business: the Editor keeps no settings grant.
DELETE FROM users.role_permissions rp
USING users.roles r, users.permissions p
WHERE rp.role_id = r.id AND rp.permission_id = p.id
  AND r.name = 'Editor' AND r.is_system AND p.name = 'settings.view';
