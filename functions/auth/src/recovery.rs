//! Passwords: forgotten (a mailed single-use link), reset with that link, and changed by a
//! signed-in user. A reset ends every session; a change ends every other session.
//!
//! An invitation link (mailed by the worker when an admin creates a user) is a reset link
//! with a longer life: following it sets the first password of an identity that has none.

use std::time::{Duration, Instant};

use axum::{extract::State, http::StatusCode, response::IntoResponse};
use lectern_shared::{
    ApiError, ApiResult,
    events::Envelope,
    extract::{ClientInfo, Json},
    tokens,
    validate::{Email, Validator},
};
use serde::Deserialize;
use serde_json::json;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::{
    accounts::Accepted,
    guard::Caller,
    passwords::{self, NewPassword, Verdict},
    sessions::{pad_response, revoke_all},
    state::{AppState, EVENT_SOURCE},
    throttle::Limit,
};

pub const RESET_TTL: Duration = Duration::from_secs(30 * 60);
/// Reset mails per account per hour; more requests are accepted but send nothing.
const RESETS_PER_HOUR: u32 = 5;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ForgotPasswordRequest {
    pub email: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetPasswordRequest {
    /// The token from the reset link or from the invitation link.
    pub token: String,
    pub new_password: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangePasswordRequest {
    pub current_password: String,
    pub new_password: String,
}

/// Mails a password-reset link if the address belongs to an active account.
#[utoipa::path(
    post, path = "/api/v1/auth/forgot-password", tag = "auth",
    request_body = ForgotPasswordRequest,
    responses((status = 202, description = "Accepted; the same answer whether or not the address has an account", body = Accepted))
)]
pub async fn forgot_password(
    State(state): State<AppState>,
    client: ClientInfo,
    Json(body): Json<ForgotPasswordRequest>,
) -> ApiResult<impl IntoResponse> {
    let started = Instant::now();
    let email = Email::parse(&body.email).map_err(|m| ApiError::validation("email", m))?;
    let accepted = (
        StatusCode::ACCEPTED,
        Json(Accepted {
            message: "If that address has an account, a reset link is on its way.".into(),
        }),
    );
    let limit = Limit::account(
        "reset",
        email.as_str(),
        RESETS_PER_HOUR,
        Duration::from_secs(3600),
    );
    if state
        .throttle
        .check(std::slice::from_ref(&limit))
        .await
        .is_err()
    {
        // Over the limit: say nothing different, send nothing.
        pad_response(started, state.config.min_response_time).await;
        return Ok(accepted);
    }
    state.throttle.hit(std::slice::from_ref(&limit)).await?;

    let mut db = state.pool.get().await?;
    let tx = db.transaction().await?;
    let user = tx
        .query_opt(
            "SELECT id FROM auth.users WHERE email = $1 AND status = 'ACTIVE'",
            &[&email.as_str()],
        )
        .await?;
    if let Some(user) = user {
        let user_id: Uuid = user.get(0);
        let token = tokens::generate();
        tx.execute(
            "INSERT INTO auth.password_reset_tokens (id, user_id, token_hash, expires_at)
             VALUES ($1, $2, $3, now() + make_interval(secs => $4))",
            &[
                &Uuid::now_v7(),
                &user_id,
                &tokens::hash(&token),
                &RESET_TTL.as_secs_f64(),
            ],
        )
        .await?;
        let event = Envelope::new(
            EVENT_SOURCE,
            "auth.password_reset_requested",
            Some(user_id),
            json!({ "user_id": user_id, "ip_address": client.ip }),
        );
        state.outbox.commit(tx, &[event]).await?;
        state.mailer.send_reset(email.as_str(), &token).await;
    }
    pad_response(started, state.config.min_response_time).await;
    Ok(accepted)
}

/// Sets a new password with the token from the reset mail, or the first password with the
/// token from an invitation mail; signs out every device.
#[utoipa::path(
    post, path = "/api/v1/auth/reset-password", tag = "auth",
    request_body = ResetPasswordRequest,
    responses((status = 204, description = "The password is set, the address counts as verified, and every session ended"))
)]
pub async fn reset_password(
    State(state): State<AppState>,
    client: ClientInfo,
    Json(body): Json<ResetPasswordRequest>,
) -> ApiResult<StatusCode> {
    let mut v = Validator::new();
    if !tokens::looks_valid(body.token.trim()) {
        v.add("token", "is invalid, expired or already used");
    }
    let password = v.check("new_password", NewPassword::parse(&body.new_password));
    v.finish()?;
    let password = password.unwrap().as_str().to_string();
    let hash = passwords::blocking(move || passwords::hash(&password)).await??;

    let mut db = state.pool.get().await?;
    let tx = db.transaction().await?;
    let row = tx
        .query_opt(
            "UPDATE auth.password_reset_tokens t SET used_at = now()
             FROM auth.users u
             WHERE t.token_hash = $1 AND t.used_at IS NULL AND t.expires_at > now()
               AND u.id = t.user_id AND u.status = 'ACTIVE'
             RETURNING t.user_id, u.email, t.purpose = 'invitation'",
            &[&tokens::hash(body.token.trim())],
        )
        .await?
        .ok_or_else(|| ApiError::validation("token", "is invalid, expired or already used"))?;
    let (user_id, email, invitation): (Uuid, String, bool) = (row.get(0), row.get(1), row.get(2));
    // The link proves the mailbox, so the address counts as verified from here on.
    tx.execute(
        "UPDATE auth.users SET password_hash = $2, password_changed_at = now(), email_verified = true,
                updated_at = now()
         WHERE id = $1",
        &[&user_id, &hash],
    )
    .await?;
    tx.execute(
        "UPDATE auth.password_reset_tokens SET used_at = now() WHERE user_id = $1 AND used_at IS NULL",
        &[&user_id],
    )
    .await?;
    let sessions = revoke_all(&tx, user_id, None, "password_reset").await?;
    let kind = if invitation {
        "auth.invitation_accepted"
    } else {
        "auth.password_reset"
    };
    let event = Envelope::new(
        EVENT_SOURCE,
        kind,
        Some(user_id),
        json!({ "user_id": user_id, "sessions_revoked": sessions, "ip_address": client.ip }),
    );
    state.outbox.commit(tx, &[event]).await?;
    // Someone who just chose their first password needs no warning that it changed.
    if !invitation {
        state.mailer.send_password_changed(&email).await;
    }
    Ok(StatusCode::NO_CONTENT)
}

/// Changes the caller's password; signs out every other device.
#[utoipa::path(
    post, path = "/api/v1/auth/change-password", tag = "auth",
    request_body = ChangePasswordRequest,
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Changed; other sessions ended, this one kept"),
        (status = 429, description = "Too many wrong current passwords"),
    )
)]
pub async fn change_password(
    State(state): State<AppState>,
    caller: Caller,
    client: ClientInfo,
    Json(body): Json<ChangePasswordRequest>,
) -> ApiResult<StatusCode> {
    let mut v = Validator::new();
    if body.current_password.is_empty() {
        v.add("current_password", "is required");
    }
    let password = v.check("new_password", NewPassword::parse(&body.new_password));
    if body.current_password == body.new_password {
        v.add("new_password", "must differ from the current password");
    }
    v.finish()?;
    let limits = &state.config.login_limits;
    let limit = Limit::account("login", &caller.email, limits.per_account, limits.window);
    state.throttle.check(std::slice::from_ref(&limit)).await?;

    let mut db = state.pool.get().await?;
    let stored: Option<String> = db
        .query_one(
            "SELECT password_hash FROM auth.users WHERE id = $1",
            &[&caller.user_id],
        )
        .await?
        .get(0);
    let current = body.current_password.clone();
    if passwords::blocking(move || passwords::verify(&current, stored.as_deref())).await?
        == Verdict::Invalid
    {
        state.throttle.hit(std::slice::from_ref(&limit)).await?;
        return Err(ApiError::validation("current_password", "is incorrect"));
    }
    let new = password.unwrap().as_str().to_string();
    let hash = passwords::blocking(move || passwords::hash(&new)).await??;
    let tx = db.transaction().await?;
    tx.execute(
        "UPDATE auth.users SET password_hash = $2, password_changed_at = now(), updated_at = now() WHERE id = $1",
        &[&caller.user_id, &hash],
    )
    .await?;
    let sessions = revoke_all(
        &tx,
        caller.user_id,
        Some(caller.session_id),
        "password_changed",
    )
    .await?;
    let event = Envelope::new(
        EVENT_SOURCE,
        "auth.password_changed",
        Some(caller.user_id),
        json!({ "user_id": caller.user_id, "sessions_revoked": sessions, "ip_address": client.ip }),
    );
    state.outbox.commit(tx, &[event]).await?;
    state.mailer.send_password_changed(&caller.email).await;
    Ok(StatusCode::NO_CONTENT)
}
