//! Accounts: sign-up, email verification, the caller's own account, and the public keys.
//!
//! Sign-up never tells whether an address is taken: a new address gets a verification mail,
//! a taken one a mail saying so, and the client gets the same 202 either way.

use std::time::{Duration, Instant};

use axum::{
    extract::State,
    http::{HeaderValue, StatusCode, header},
    response::IntoResponse,
};
use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use lectern_shared::{
    ApiError, ApiResult,
    events::Envelope,
    extract::{Json, Path},
    jwt::Jwks,
    tokens,
    validate::{Email, Validator, short_text},
};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::{
    guard::Caller,
    passwords::{self, NewPassword},
    sessions::pad_response,
    state::{AppState, EVENT_SOURCE},
    throttle::Limit,
};

pub const VERIFICATION_TTL: Duration = Duration::from_secs(24 * 3600);

/// An account's status, as the users service sets it (`user.updated`); only an active account
/// signs in, refreshes or uses the auth routes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum AccountStatus {
    Active,
    Inactive,
    Suspended,
}

impl AccountStatus {
    /// As stored in `auth.users.status`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "ACTIVE",
            Self::Inactive => "INACTIVE",
            Self::Suspended => "SUSPENDED",
        }
    }

    pub fn can_sign_in(self) -> bool {
        self == Self::Active
    }
}

/// A request taken in, with nothing said about the account it concerns.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Accepted {
    pub message: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignupRequest {
    pub email: String,
    /// 8 to 128 characters; not one of the most common passwords.
    pub password: String,
    pub first_name: String,
    pub last_name: String,
}

/// Creates a verification token for `user_id` in the caller's transaction.
pub async fn issue_verification(
    tx: &impl GenericClient,
    user_id: Uuid,
    email: &str,
) -> ApiResult<String> {
    let token = tokens::generate();
    tx.execute(
        "INSERT INTO auth.email_verification_tokens (id, user_id, email, token_hash, expires_at)
         VALUES ($1, $2, $3, $4, now() + make_interval(secs => $5))",
        &[
            &Uuid::now_v7(),
            &user_id,
            &email,
            &tokens::hash(&token),
            &VERIFICATION_TTL.as_secs_f64(),
        ],
    )
    .await?;
    Ok(token)
}

/// Creates an account and mails a verification link.
#[utoipa::path(
    post, path = "/api/v1/auth/signup", tag = "auth",
    request_body = SignupRequest,
    responses((status = 202, description = "Accepted; the same answer whether or not the address was taken", body = Accepted))
)]
pub async fn signup(
    State(state): State<AppState>,
    Json(body): Json<SignupRequest>,
) -> ApiResult<impl IntoResponse> {
    let started = Instant::now();
    let mut v = Validator::new();
    let email = v.check("email", Email::parse(&body.email));
    let password = v.check("password", NewPassword::parse(&body.password));
    let first_name = v.check("first_name", short_text(&body.first_name, 100));
    let last_name = v.check("last_name", short_text(&body.last_name, 100));
    v.finish()?;
    let (email, password, first_name, last_name) = (
        email.unwrap(),
        password.unwrap(),
        first_name.unwrap(),
        last_name.unwrap(),
    );

    // Hash before looking the address up, so both outcomes cost the same.
    let plain = password.as_str().to_string();
    let hash = passwords::blocking(move || passwords::hash(&plain)).await??;

    let mut db = state.pool.get().await?;
    let tx = db.transaction().await?;
    let new_id = Uuid::now_v7();
    let inserted = tx
        .query_opt(
            "INSERT INTO auth.users (id, email, password_hash) VALUES ($1, $2, $3)
             ON CONFLICT (email) DO NOTHING RETURNING id",
            &[&new_id, &email.as_str(), &hash],
        )
        .await?;
    let (event, verification) = if inserted.is_some() {
        let token = issue_verification(&tx, new_id, email.as_str()).await?;
        let event = Envelope::new(
            EVENT_SOURCE,
            "user.created",
            Some(new_id),
            json!({ "user_id": new_id, "email": email.as_str(), "first_name": first_name, "last_name": last_name }),
        );
        (event, Some(token))
    } else {
        let existing: Uuid = tx
            .query_one(
                "SELECT id FROM auth.users WHERE email = $1",
                &[&email.as_str()],
            )
            .await?
            .get(0);
        let event = Envelope::new(
            EVENT_SOURCE,
            "auth.signup_existing_email",
            None,
            json!({ "user_id": existing }),
        );
        (event, None)
    };
    state.outbox.commit(tx, &[event]).await?;
    match verification {
        Some(token) => state.mailer.send_verification(email.as_str(), &token).await,
        None => state.mailer.send_account_exists(email.as_str()).await,
    }
    pad_response(started, state.config.min_response_time).await;
    Ok((
        StatusCode::ACCEPTED,
        Json(Accepted {
            message: "Check your inbox to confirm your email address.".into(),
        }),
    ))
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Verified {
    pub email: String,
    pub email_verified: bool,
}

fn invalid_token() -> ApiError {
    ApiError::validation("token", "is invalid, expired or already used")
}

/// Confirms an email address with the token from the verification mail.
#[utoipa::path(
    get, path = "/api/v1/auth/verify-email/{token}", tag = "auth",
    params(("token" = String, Path, description = "The token from the verification link")),
    responses((status = 200, description = "The address is confirmed", body = Verified))
)]
pub async fn verify_email(
    State(state): State<AppState>,
    Path(token): Path<String>,
) -> ApiResult<Json<Verified>> {
    if !tokens::looks_valid(&token) {
        return Err(invalid_token());
    }
    let mut db = state.pool.get().await?;
    let tx = db.transaction().await?;
    let row = tx
        .query_opt(
            "UPDATE auth.email_verification_tokens SET used_at = now()
             WHERE token_hash = $1 AND used_at IS NULL AND expires_at > now()
             RETURNING user_id, email",
            &[&tokens::hash(&token)],
        )
        .await?
        .ok_or_else(invalid_token)?;
    let (user_id, email): (Uuid, String) = (row.get(0), row.get(1));
    // The address may have changed since the mail went out; only the mailed one is confirmed.
    let updated = tx
        .execute(
            "UPDATE auth.users SET email_verified = true, updated_at = now() WHERE id = $1 AND email = $2",
            &[&user_id, &email],
        )
        .await?;
    if updated == 0 {
        return Err(invalid_token());
    }
    let event = Envelope::new(
        EVENT_SOURCE,
        "auth.email_verified",
        Some(user_id),
        json!({ "user_id": user_id, "email": email }),
    );
    state.outbox.commit(tx, &[event]).await?;
    Ok(Json(Verified {
        email,
        email_verified: true,
    }))
}

/// Sends the verification mail again (at most 5 an hour).
#[utoipa::path(
    post, path = "/api/v1/auth/verify-email/resend", tag = "auth",
    security(("bearer" = [])),
    responses(
        (status = 202, description = "A new link is on its way", body = Accepted),
        (status = 409, description = "The address is already confirmed"),
        (status = 429, description = "Too many mails asked for"),
    )
)]
pub async fn resend_verification(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<impl IntoResponse> {
    if caller.email_verified {
        return Err(ApiError::Conflict(
            "The email address is already confirmed.".into(),
        ));
    }
    let limit = Limit::account("verify-resend", &caller.email, 5, Duration::from_secs(3600));
    state.throttle.check(std::slice::from_ref(&limit)).await?;
    state.throttle.hit(std::slice::from_ref(&limit)).await?;
    let mut db = state.pool.get().await?;
    let tx = db.transaction().await?;
    let token = issue_verification(&tx, caller.user_id, &caller.email).await?;
    let event = Envelope::new(
        EVENT_SOURCE,
        "auth.verification_resent",
        Some(caller.user_id),
        json!({ "user_id": caller.user_id }),
    );
    state.outbox.commit(tx, &[event]).await?;
    state.mailer.send_verification(&caller.email, &token).await;
    Ok((
        StatusCode::ACCEPTED,
        Json(Accepted {
            message: "A new confirmation link is on its way.".into(),
        }),
    ))
}

/// The authenticated account.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Me {
    pub id: Uuid,
    pub email: String,
    /// ACTIVE, INACTIVE or SUSPENDED (only ACTIVE accounts can sign in).
    pub status: String,
    pub email_verified: bool,
    #[serde(serialize_with = "lectern_shared::timestamp::serialize_option")]
    pub last_login: Option<DateTime<Utc>>,
    #[serde(serialize_with = "lectern_shared::timestamp::serialize")]
    pub created_at: DateTime<Utc>,
    /// The session of the token making the request.
    pub session_id: Uuid,
}

/// The caller's own account.
#[utoipa::path(
    get, path = "/api/v1/auth/me", tag = "auth",
    security(("bearer" = [])),
    responses((status = 200, description = "The caller", body = Me))
)]
pub async fn me(caller: Caller) -> Json<Me> {
    Json(Me {
        id: caller.user_id,
        email: caller.email,
        status: caller.status,
        email_verified: caller.email_verified,
        last_login: caller.last_login,
        created_at: caller.created_at,
        session_id: caller.session_id,
    })
}

/// The public keys that verify access tokens (RFC 7517), for other services and clients.
#[utoipa::path(
    get, path = "/api/v1/auth/.well-known/jwks.json", tag = "auth",
    responses((status = 200, description = "The JSON Web Key Set", body = Jwks))
)]
pub async fn jwks(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(
            header::CACHE_CONTROL,
            HeaderValue::from_static("public, max-age=300"),
        )],
        Json(state.verifier.jwks()),
    )
}

/// Makes sure an active, verified account exists for `email` (the devstack's first admin);
/// an existing account is left as it is. Answers the account's id.
pub async fn ensure_account(
    state: &AppState,
    email: &str,
    password: &str,
    first_name: &str,
    last_name: &str,
) -> anyhow::Result<Uuid> {
    let email = Email::parse(email).map_err(|m| anyhow::anyhow!("the email {m}"))?;
    let password = NewPassword::parse(password).map_err(|m| anyhow::anyhow!("the password {m}"))?;
    let plain = password.as_str().to_string();
    let hash = passwords::blocking(move || passwords::hash(&plain)).await??;
    let mut db = state.pool.get().await?;
    let tx = db.transaction().await?;
    let id = Uuid::now_v7();
    let inserted = tx
        .query_opt(
            "INSERT INTO auth.users (id, email, password_hash, email_verified) VALUES ($1, $2, $3, true)
             ON CONFLICT (email) DO NOTHING RETURNING id",
            &[&id, &email.as_str(), &hash],
        )
        .await?;
    if inserted.is_none() {
        let row = tx
            .query_one(
                "SELECT id FROM auth.users WHERE email = $1",
                &[&email.as_str()],
            )
            .await?;
        return Ok(row.get(0));
    }
    let event = Envelope::new(
        EVENT_SOURCE,
        "user.created",
        Some(id),
        json!({ "user_id": id, "email": email.as_str(), "first_name": first_name, "last_name": last_name }),
    );
    state.outbox.commit(tx, &[event]).await?;
    Ok(id)
}
