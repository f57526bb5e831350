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

/// `functions/auth/src/sessions.rs` (`refresh`): the whole refresh in one statement.
pub use lectern_auth::sessions::REFRESH_SQL as AUTH_REFRESH;

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
        assert_in(guard, super::AUTH_CALLER);
    }
}
