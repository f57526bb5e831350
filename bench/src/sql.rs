//! The SQL the raw loops run: the very statements the handlers run, copied here so the loops
//! need no router. The tests below fail when a handler's statement changes, so the copies
//! cannot drift from the code they stand beside.

/// `functions/auth/src/guard.rs`: the live-session check behind every authenticated auth route
/// (`GET /auth/me`).
pub const AUTH_CALLER: &str =
    "SELECT u.email, u.email_verified, u.status, u.last_login, u.created_at
                     FROM auth.user_sessions s JOIN auth.users u ON u.id = s.user_id
                     WHERE s.id = $1 AND s.user_id = $2 AND s.revoked_at IS NULL
                       AND s.expires_at > now() AND u.status = 'ACTIVE'";

/// `functions/auth/src/sessions.rs` (`refresh`): the token, its session and account, locked.
pub const REFRESH_LOOKUP: &str = "SELECT rt.session_id, rt.rotated_at IS NOT NULL,
                        COALESCE(now() - rt.rotated_at <= make_interval(secs => $2), false),
                        rt.successor_hash = s.token_hash, rt.successor_sealed,
                        s.user_id, s.revoked_at IS NULL AND s.expires_at > now() AND u.status = 'ACTIVE',
                        u.email_verified, a.access
                 FROM auth.refresh_tokens rt
                 JOIN auth.user_sessions s ON s.id = rt.session_id
                 JOIN auth.users u ON u.id = s.user_id
                 LEFT JOIN auth.user_access a ON a.user_id = u.id
                 WHERE rt.token_hash = $1
                 FOR UPDATE OF s, rt";

/// `refresh`: the presented token is rotated ...
pub const REFRESH_ROTATE: &str =
    "UPDATE auth.refresh_tokens SET rotated_at = now(), successor_hash = $2, successor_sealed = $3
             WHERE token_hash = $1";

/// ... its successor stored ...
pub const REFRESH_INSERT: &str =
    "INSERT INTO auth.refresh_tokens (token_hash, session_id) VALUES ($1, $2)";

/// ... and the session moved on to it.
pub const REFRESH_SESSION: &str = "UPDATE auth.user_sessions
             SET token_hash = $2, last_used_at = now(), ip_address = COALESCE($3, ip_address),
                 expires_at = now() + make_interval(secs => $4)
             WHERE id = $1";

/// `functions/users/src/access.rs` (`effective`): a user's effective permissions with their
/// provenance, in one statement.
pub use lectern_users::access::EFFECTIVE_SQL as USERS_EFFECTIVE;

#[cfg(test)]
mod tests {
    fn squash(s: &str) -> String {
        s.split_whitespace().collect::<Vec<_>>().join(" ")
    }

    #[track_caller]
    fn assert_in(source: &str, sql: &str) {
        assert!(
            squash(source).contains(&squash(sql)),
            "the handler's SQL changed; copy it again into bench/src/sql.rs:\n{sql}"
        );
    }

    #[test]
    fn the_copied_statements_are_still_the_handlers_statements() {
        let guard = include_str!("../../functions/auth/src/guard.rs");
        let sessions = include_str!("../../functions/auth/src/sessions.rs");
        assert_in(guard, super::AUTH_CALLER);
        for sql in [
            super::REFRESH_LOOKUP,
            super::REFRESH_ROTATE,
            super::REFRESH_INSERT,
            super::REFRESH_SESSION,
        ] {
            assert_in(sessions, sql);
        }
    }
}
