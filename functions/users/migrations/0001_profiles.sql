-- Profiles: the public face of an account. `id` is the auth service's user id; the row is
-- created by the users worker when `user.created` arrives.
CREATE TABLE users.users (
    id          uuid PRIMARY KEY,
    first_name  text NOT NULL CHECK (char_length(first_name) BETWEEN 1 AND 100),
    last_name   text NOT NULL CHECK (char_length(last_name) BETWEEN 1 AND 100),
    avatar_url  text,
    phone       text,
    job_title   text,
    department  text,
    bio         text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX users_name_idx ON users.users (lower(last_name), lower(first_name), id);
