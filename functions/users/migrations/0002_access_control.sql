-- Roles, permissions and groups: the authorization model every service uses.
--
-- A permission is one flag on one module (`articles.publish`); a role is a set of them; a
-- user holds roles directly and through every group they belong to, and through every
-- ancestor of those groups.

-- What the users service knows of an account besides the profile, kept in step with the
-- auth service by events.
ALTER TABLE users.users
    ADD COLUMN email  text,
    ADD COLUMN status text NOT NULL DEFAULT 'ACTIVE' CHECK (status IN ('ACTIVE', 'INACTIVE', 'SUSPENDED'));
CREATE UNIQUE INDEX users_email_key ON users.users (email);
CREATE INDEX users_department_idx ON users.users (department);
CREATE INDEX users_created_idx ON users.users (created_at, id);

CREATE TABLE users.roles (
    id          uuid PRIMARY KEY,
    name        text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 100),
    description text,
    is_system   boolean NOT NULL DEFAULT false,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX roles_name_key ON users.roles (lower(name));

CREATE TABLE users.permissions (
    id             uuid PRIMARY KEY,
    module         text NOT NULL CHECK (module IN ('articles', 'categories', 'tags', 'courses', 'lessons',
                   'enrollments', 'workflows', 'tasks', 'comments', 'media', 'notifications', 'analytics',
                   'audit_logs', 'users', 'roles', 'groups', 'settings')),
    name           text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 100),
    description    text,
    view_access    boolean NOT NULL DEFAULT false,
    create_access  boolean NOT NULL DEFAULT false,
    edit_access    boolean NOT NULL DEFAULT false,
    delete_access  boolean NOT NULL DEFAULT false,
    publish_access boolean NOT NULL DEFAULT false,
    manage_access  boolean NOT NULL DEFAULT false,
    CONSTRAINT permissions_name_key UNIQUE (name),
    CONSTRAINT permissions_grant_something CHECK
        (view_access OR create_access OR edit_access OR delete_access OR publish_access OR manage_access)
);
CREATE INDEX permissions_module_idx ON users.permissions (module);

CREATE TABLE users.role_permissions (
    id            uuid PRIMARY KEY,
    role_id       uuid NOT NULL REFERENCES users.roles (id) ON DELETE CASCADE,
    permission_id uuid NOT NULL REFERENCES users.permissions (id) ON DELETE CASCADE,
    created_at    timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT role_permissions_key UNIQUE (role_id, permission_id)
);

CREATE TABLE users.user_roles (
    id          uuid PRIMARY KEY,
    user_id     uuid NOT NULL REFERENCES users.users (id) ON DELETE CASCADE,
    role_id     uuid NOT NULL REFERENCES users.roles (id) ON DELETE CASCADE,
    assigned_by uuid,
    created_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT user_roles_key UNIQUE (user_id, role_id)
);
CREATE INDEX user_roles_role_idx ON users.user_roles (role_id, user_id);

CREATE TABLE users.groups (
    id          uuid PRIMARY KEY,
    name        text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 100),
    description text,
    parent_id   uuid REFERENCES users.groups (id),
    created_by  uuid,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT groups_not_own_parent CHECK (parent_id IS DISTINCT FROM id)
);
-- Sibling groups have distinct names; top-level groups too.
CREATE UNIQUE INDEX groups_name_key ON users.groups (COALESCE(parent_id, '00000000-0000-0000-0000-000000000000'::uuid), lower(name));
CREATE INDEX groups_parent_idx ON users.groups (parent_id);

CREATE TABLE users.user_groups (
    id        uuid PRIMARY KEY,
    user_id   uuid NOT NULL REFERENCES users.users (id) ON DELETE CASCADE,
    group_id  uuid NOT NULL REFERENCES users.groups (id) ON DELETE CASCADE,
    joined_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT user_groups_key UNIQUE (user_id, group_id)
);
CREATE INDEX user_groups_group_idx ON users.user_groups (group_id, user_id);

CREATE TABLE users.group_roles (
    id         uuid PRIMARY KEY,
    group_id   uuid NOT NULL REFERENCES users.groups (id) ON DELETE CASCADE,
    role_id    uuid NOT NULL REFERENCES users.roles (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT group_roles_key UNIQUE (group_id, role_id)
);
CREATE INDEX group_roles_role_idx ON users.group_roles (role_id);

CREATE TABLE users.notification_preferences (
    id              uuid PRIMARY KEY,
    user_id         uuid NOT NULL REFERENCES users.users (id) ON DELETE CASCADE,
    email_enabled   boolean NOT NULL DEFAULT true,
    in_app_enabled  boolean NOT NULL DEFAULT true,
    digest          text NOT NULL DEFAULT 'instant' CHECK (digest IN ('instant', 'daily', 'weekly', 'never')),
    -- Per notification type: {"task_assigned": {"email": false, "in_app": true}, ...}
    types           jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT notification_preferences_user_key UNIQUE (user_id)
);

-- One permission per module and flag: `articles.view`, `articles.create`, ...
INSERT INTO users.permissions (id, module, name, description,
    view_access, create_access, edit_access, delete_access, publish_access, manage_access)
SELECT gen_random_uuid(), m, m || '.' || a, initcap(a) || ' ' || replace(m, '_', ' '),
       a = 'view', a = 'create', a = 'edit', a = 'delete', a = 'publish', a = 'manage'
FROM unnest(ARRAY['articles', 'categories', 'tags', 'courses', 'lessons', 'enrollments', 'workflows',
                  'tasks', 'comments', 'media', 'notifications', 'analytics', 'audit_logs', 'users',
                  'roles', 'groups', 'settings']) AS m,
     unnest(ARRAY['view', 'create', 'edit', 'delete', 'publish', 'manage']) AS a;

INSERT INTO users.roles (id, name, description, is_system) VALUES
    (gen_random_uuid(), 'Admin', 'Everything, everywhere.', true),
    (gen_random_uuid(), 'Editor', 'Writes, reviews and publishes articles and courses.', true),
    (gen_random_uuid(), 'Moderator', 'Keeps comments and discussions in order.', true),
    (gen_random_uuid(), 'Viewer', 'Reads published content, comments and enrolls.', true);

-- The system roles' grants, as (role, module, actions).
INSERT INTO users.role_permissions (id, role_id, permission_id)
SELECT gen_random_uuid(), r.id, p.id
FROM (VALUES
    ('Admin', ARRAY['articles', 'categories', 'tags', 'courses', 'lessons', 'enrollments', 'workflows', 'tasks',
                    'comments', 'media', 'notifications', 'analytics', 'audit_logs', 'users', 'roles', 'groups',
                    'settings'], ARRAY['view', 'create', 'edit', 'delete', 'publish', 'manage']),
    ('Editor', ARRAY['articles', 'categories', 'tags', 'courses', 'lessons', 'media', 'comments', 'workflows', 'tasks'],
               ARRAY['view', 'create', 'edit', 'delete', 'publish']),
    ('Editor', ARRAY['enrollments', 'analytics', 'users', 'groups', 'settings'], ARRAY['view']),
    ('Editor', ARRAY['notifications'], ARRAY['view', 'create']),
    ('Moderator', ARRAY['comments'], ARRAY['view', 'create', 'edit', 'delete', 'manage']),
    ('Moderator', ARRAY['articles', 'categories', 'tags', 'courses', 'lessons', 'media', 'users', 'analytics'], ARRAY['view']),
    ('Moderator', ARRAY['workflows', 'tasks'], ARRAY['view', 'edit']),
    ('Moderator', ARRAY['notifications'], ARRAY['view', 'create']),
    ('Viewer', ARRAY['articles', 'categories', 'tags', 'courses', 'lessons', 'media', 'notifications'], ARRAY['view']),
    ('Viewer', ARRAY['comments', 'enrollments'], ARRAY['view', 'create'])
) AS g (role_name, modules, actions)
JOIN users.roles r ON r.name = g.role_name
CROSS JOIN LATERAL unnest(g.modules) AS m
CROSS JOIN LATERAL unnest(g.actions) AS a
JOIN users.permissions p ON p.name = m || '.' || a
ON CONFLICT (role_id, permission_id) DO NOTHING;
