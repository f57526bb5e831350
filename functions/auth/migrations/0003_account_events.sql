-- What the users service says about identities: admin invitations (an identity with no
-- password yet and a mailed link to set one), status changes and hard deletes.
-- (`users.password_hash` has been nullable since 0001, for exactly these invited identities.)

-- When the users service last changed the status: an older `user.updated` that arrives late
-- never undoes a newer one.
ALTER TABLE auth.users ADD COLUMN status_changed_at timestamptz;

-- An invitation link is a set-password link with a longer life; both go through
-- `POST /auth/reset-password`, and setting the password with either voids the others.
ALTER TABLE auth.password_reset_tokens
    ADD COLUMN purpose text NOT NULL DEFAULT 'reset'
    CONSTRAINT password_reset_tokens_purpose_check CHECK (purpose IN ('reset', 'invitation'));

-- The ids of erased identities and nothing else: events are not ordered, and an invitation
-- that arrives after the deletion must not bring the identity back.
CREATE TABLE auth.erased_users (
    user_id   uuid PRIMARY KEY,
    erased_at timestamptz NOT NULL DEFAULT now()
);
