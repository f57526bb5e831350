//! The caller of an auth route: a valid access token whose session is still live.
//!
//! Other services trust an access token until it expires; the auth service itself also checks
//! the session, so that logout, revocation and a password reset end access to these routes at
//! once.

use axum::{extract::FromRequestParts, http::request::Parts};
use chrono::{DateTime, Utc};
use lectern_shared::{ApiError, extract::AuthUser};
use uuid::Uuid;

use crate::state::AppState;

#[derive(Debug, Clone)]
pub struct Caller {
    pub user_id: Uuid,
    pub session_id: Uuid,
    pub email: String,
    pub email_verified: bool,
    pub status: String,
    pub last_login: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let user = AuthUser::from_request_parts(parts, state).await?;
        let db = state.pool.get().await?;
        let row = db
            .query_opt(
                &db.prepare_cached(
                    "SELECT u.email, u.email_verified, u.status, u.last_login, u.created_at
                     FROM auth.user_sessions s JOIN auth.users u ON u.id = s.user_id
                     WHERE s.id = $1 AND s.user_id = $2 AND s.revoked_at IS NULL
                       AND s.expires_at > now() AND u.status = 'ACTIVE'",
                )
                .await?,
                &[&user.session_id(), &user.id()],
            )
            .await?
            .ok_or_else(|| {
                ApiError::Unauthorized("The session has ended; sign in again.".into())
            })?;
        Ok(Self {
            user_id: user.id(),
            session_id: user.session_id(),
            email: row.get(0),
            email_verified: row.get(1),
            status: row.get(2),
            last_login: row.get(3),
            created_at: row.get(4),
        })
    }
}
