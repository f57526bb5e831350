//! Sessions: login, refresh-token rotation, logout, and the caller's list of devices.
//!
//! A session is one signed-in device (a refresh-token family). Each refresh rotates the
//! token; presenting a rotated token again means it was copied, so the whole session is
//! revoked — unless it comes within a short grace window while its successor is still the
//! current token, which is a client racing itself (two tabs refreshing at once), and gets
//! that same successor back.

use std::time::Instant;

use axum::{extract::State, http::StatusCode};
use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use lectern_shared::{
    ApiError, ApiResult,
    authz::Access,
    events::Envelope,
    extract::{ClientInfo, Json, List, PageQuery, Path, encode_cursor},
    jwt::TokenIssuer,
    tokens,
    validate::{Email, Validator},
};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::{
    guard::Caller,
    passwords::{self, Verdict},
    state::{AppState, EVENT_SOURCE},
    throttle::Limit,
};

/// An OAuth 2.0 token response (RFC 6749 §5.1).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TokenResponse {
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: String,
    /// Seconds until the access token expires.
    pub expires_in: i64,
    /// Single use: every refresh answers a new one.
    pub refresh_token: String,
    /// The session (device) these tokens belong to.
    pub session_id: Uuid,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    pub email: String,
    pub password: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    pub refresh_token: String,
}

fn invalid_credentials() -> ApiError {
    ApiError::Unauthorized("The email or password is incorrect.".into())
}

fn invalid_refresh_token() -> ApiError {
    ApiError::Unauthorized("The refresh token is invalid, expired or revoked.".into())
}

/// The stored access summary in column `index`, decoded straight from jsonb (no
/// `serde_json::Value` in between); none yet (a new account, before the users service has
/// computed it) means no permissions.
fn access_of(row: &tokio_postgres::Row, index: usize) -> Access {
    match row.try_get::<_, Option<tokio_postgres::types::Json<Access>>>(index) {
        Ok(stored) => stored.map(|json| json.0).unwrap_or_default(),
        Err(err) => {
            tracing::error!(error = %err, "a stored access summary does not parse; issuing none");
            Access::default()
        }
    }
}

/// The answer of a login or refresh. The caller gets `issuer` from
/// [`Signer::issuer`](crate::state::Signer::issuer) before it writes anything, so that a signing key that cannot be
/// read leaves no session or rotation behind.
fn token_response(
    issuer: &TokenIssuer,
    user_id: Uuid,
    session_id: Uuid,
    verified: bool,
    access: &Access,
    refresh: String,
) -> TokenResponse {
    TokenResponse {
        access_token: issuer.issue(user_id, session_id, verified, access),
        token_type: "Bearer".into(),
        expires_in: issuer.ttl_secs(),
        refresh_token: refresh,
        session_id,
    }
}

fn device_info(client: &ClientInfo) -> serde_json::Value {
    let ua = client.user_agent.as_deref().unwrap_or_default();
    let lower = ua.to_lowercase();
    let device_type = if lower.contains("ipad") || lower.contains("tablet") {
        "tablet"
    } else if lower.contains("mobi") || lower.contains("android") || lower.contains("iphone") {
        "mobile"
    } else if ua.is_empty() {
        "unknown"
    } else if lower.contains("curl") || lower.contains("http") || lower.contains("bot") {
        "client"
    } else {
        "desktop"
    };
    json!({ "user_agent": client.user_agent, "device_type": device_type })
}

/// Opens a session for `user_id`; answers its id and first refresh token.
pub async fn start_session(
    tx: &impl GenericClient,
    state: &AppState,
    user_id: Uuid,
    client: &ClientInfo,
) -> ApiResult<(Uuid, String)> {
    let session_id = Uuid::now_v7();
    let token = tokens::generate();
    let hash = tokens::hash(&token);
    let ttl = state.config.refresh_token_ttl.as_secs_f64();
    tx.execute(
        &tx.prepare_cached(
            "INSERT INTO auth.user_sessions (id, user_id, token_hash, device_info, ip_address, expires_at)
         VALUES ($1, $2, $3, $4, $5, now() + make_interval(secs => $6))",
        )
        .await?,
        &[&session_id, &user_id, &hash, &device_info(client), &client.ip, &ttl],
    )
    .await?;
    tx.execute(
        &tx.prepare_cached(
            "INSERT INTO auth.refresh_tokens (token_hash, session_id) VALUES ($1, $2)",
        )
        .await?,
        &[&hash, &session_id],
    )
    .await?;
    Ok((session_id, token))
}

/// Revokes every live session of `user_id` except `keep`.
pub async fn revoke_all(
    tx: &impl GenericClient,
    user_id: Uuid,
    keep: Option<Uuid>,
    reason: &str,
) -> ApiResult<u64> {
    Ok(tx
        .execute(
            "UPDATE auth.user_sessions SET revoked_at = now(), revoked_reason = $3
             WHERE user_id = $1 AND revoked_at IS NULL AND ($2::uuid IS NULL OR id <> $2)",
            &[&user_id, &keep, &reason],
        )
        .await?)
}

/// The key sealing a rotated token's successor: derived from the rotated token itself, which
/// only its holder knows (the database keeps a differently derived hash).
fn seal(successor: &[u8; 32], presented: &str) -> Vec<u8> {
    let key = Sha256::new()
        .chain_update(b"lectern.refresh.successor:")
        .chain_update(presented.as_bytes())
        .finalize();
    successor
        .iter()
        .zip(key.iter())
        .map(|(a, b)| a ^ b)
        .collect()
}

fn unseal(sealed: &[u8], presented: &str) -> Option<String> {
    let key = Sha256::new()
        .chain_update(b"lectern.refresh.successor:")
        .chain_update(presented.as_bytes())
        .finalize();
    let bytes: [u8; 32] = sealed
        .iter()
        .zip(key.iter())
        .map(|(a, b)| a ^ b)
        .collect::<Vec<_>>()
        .try_into()
        .ok()?;
    Some(tokens::encode(&bytes))
}

/// Signs in with email and password.
#[utoipa::path(
    post, path = "/api/v1/auth/login", tag = "auth",
    request_body = LoginRequest,
    responses(
        (status = 200, description = "Signed in", body = TokenResponse),
        (status = 401, description = "Wrong email or password (the same answer for an unknown email)"),
        (status = 429, description = "Too many failed attempts for this account or address"),
    )
)]
pub async fn login(
    State(state): State<AppState>,
    client: ClientInfo,
    Json(body): Json<LoginRequest>,
) -> ApiResult<Json<TokenResponse>> {
    let mut v = Validator::new();
    let email = v.check("email", Email::parse(&body.email));
    if body.password.is_empty() {
        v.add("password", "is required");
    }
    v.finish()?;
    let email = email.expect("validated");
    let limits = &state.config.login_limits;
    let account_limit = Limit::account("login", email.as_str(), limits.per_account, limits.window);
    let ip_limit = Limit::ip("login", client.ip, limits.per_ip, limits.window);
    let both = [account_limit, ip_limit];
    // The throttle check (DynamoDB) and the account lookup (PostgreSQL) run side by side; the
    // lookup only reads, and a throttled login answers 429 as before, whatever it found.
    let (counted, lookup) = tokio::join!(state.throttle.check(&both), async {
        let db = state.pool.get().await?;
        let user = db
            .query_opt(
                &db.prepare_cached(
                    "SELECT u.id, u.password_hash, u.status, u.email_verified, a.access
                     FROM auth.users u LEFT JOIN auth.user_access a ON a.user_id = u.id
                     WHERE u.email = $1",
                )
                .await?,
                &[&email.as_str()],
            )
            .await?;
        Ok::<_, ApiError>((db, user))
    });
    let counted = counted?;
    let (mut db, user) = lookup?;
    let stored = user.as_ref().and_then(|u| u.get::<_, Option<String>>(1));
    let password = body.password.clone();
    let verdict =
        passwords::blocking(move || passwords::verify(&password, stored.as_deref())).await?;
    let active_user =
        user.filter(|u| u.get::<_, String>(2) == "ACTIVE" && verdict != Verdict::Invalid);

    let Some(user) = active_user else {
        let reason = if verdict == Verdict::Invalid {
            "invalid_credentials"
        } else {
            "inactive_account"
        };
        state.throttle.hit(&both).await?;
        let event = Envelope::new(
            EVENT_SOURCE,
            "auth.login_failed",
            None,
            json!({ "email": email.as_str(), "reason": reason, "ip_address": client.ip, "user_agent": client.user_agent }),
        );
        // An audit event: the scheduler's sweep publishes it (see `Outbox::commit_for_sweep`).
        state.outbox.record(&db, &event).await?;
        return Err(invalid_credentials());
    };
    let user_id: Uuid = user.get(0);
    let verified: bool = user.get(3);
    let access = access_of(&user, 4);
    let rehash = if verdict == Verdict::ValidNeedsRehash {
        let password = body.password.clone();
        Some(passwords::blocking(move || passwords::hash(&password)).await??)
    } else {
        None
    };

    let issuer = state.signer.issuer().await?;
    let tx = db.transaction().await?;
    let (session_id, refresh) = start_session(&tx, &state, user_id, &client).await?;
    tx.execute(
        &tx.prepare_cached(
            "UPDATE auth.users SET last_login = now(), password_hash = COALESCE($2, password_hash) WHERE id = $1",
        )
        .await?,
        &[&user_id, &rehash],
    )
    .await?;
    let event = Envelope::new(
        EVENT_SOURCE,
        "auth.login_succeeded",
        Some(user_id),
        json!({ "user_id": user_id, "session_id": session_id, "ip_address": client.ip, "user_agent": client.user_agent }),
    );
    // An audit event, left to the scheduler's sweep: a login does not wait on EventBridge.
    state.outbox.commit_for_sweep(tx, &[event]).await?;
    // Most logins follow no failure: there is no counter to clear then.
    let [account_limit, _] = &both;
    if counted.attempts(account_limit) > 0
        && let Err(err) = state.throttle.clear(account_limit).await
    {
        tracing::warn!(error = ?err, "could not clear the failed-login counter");
    }
    Ok(Json(token_response(
        issuer, user_id, session_id, verified, &access, refresh,
    )))
}

/// A refresh in one statement (one round trip, its own transaction). It finds the presented
/// token with its session and account and locks both rows; if the token is unused and the
/// session live, it rotates it: the token records its successor ($3, and $4 sealed with the
/// presented token for the grace window), the successor is stored, and the session moves on
/// to it ($5 the client's address, $6 the session's lifetime in seconds). It answers what it
/// found, and whether it rotated (column 9). A concurrent refresh of the same token waits for
/// the lock and then sees the token rotated, so a token rotates once.
pub const REFRESH_SQL: &str = "WITH found AS (
    SELECT rt.session_id, rt.rotated_at IS NOT NULL AS rotated,
           COALESCE(now() - rt.rotated_at <= make_interval(secs => $2), false) AS in_grace,
           rt.successor_hash = s.token_hash AS successor_is_current, rt.successor_sealed,
           s.user_id, s.revoked_at IS NULL AND s.expires_at > now() AND u.status = 'ACTIVE' AS live,
           u.email_verified, a.access
    FROM auth.refresh_tokens rt
    JOIN auth.user_sessions s ON s.id = rt.session_id
    JOIN auth.users u ON u.id = s.user_id
    LEFT JOIN auth.user_access a ON a.user_id = u.id
    WHERE rt.token_hash = $1
    FOR UPDATE OF s, rt
), rotation AS (
    UPDATE auth.refresh_tokens rt
    SET rotated_at = now(), successor_hash = $3, successor_sealed = $4
    FROM found f
    WHERE rt.token_hash = $1 AND NOT f.rotated AND f.live
    RETURNING rt.session_id
), successor AS (
    INSERT INTO auth.refresh_tokens (token_hash, session_id)
    SELECT $3, session_id FROM rotation
), moved AS (
    UPDATE auth.user_sessions s
    SET token_hash = $3, last_used_at = now(), ip_address = COALESCE($5, s.ip_address),
        expires_at = now() + make_interval(secs => $6)
    FROM rotation r
    WHERE s.id = r.session_id
)
SELECT f.session_id, f.rotated, f.in_grace, f.successor_is_current, f.successor_sealed,
       f.user_id, f.live, f.email_verified, f.access, EXISTS (SELECT 1 FROM rotation)
FROM found f";

/// Trades a refresh token for a new access token and a new refresh token.
#[utoipa::path(
    post, path = "/api/v1/auth/refresh", tag = "auth",
    request_body = RefreshRequest,
    responses(
        (status = 200, description = "New tokens; the presented refresh token is now used up", body = TokenResponse),
        (status = 401, description = "Invalid, expired or revoked; a reused token also revokes its session"),
    )
)]
pub async fn refresh(
    State(state): State<AppState>,
    client: ClientInfo,
    Json(body): Json<RefreshRequest>,
) -> ApiResult<Json<TokenResponse>> {
    let presented = body.refresh_token.trim();
    if !tokens::looks_valid(presented) {
        return Err(invalid_refresh_token());
    }
    let hash = tokens::hash(presented);
    // The successor is made up front: the statement stores it only if it rotates.
    let successor: [u8; 32] = rand::random();
    let successor_token = tokens::encode(&successor);
    let successor_hash = tokens::hash(&successor_token);
    let issuer = state.signer.issuer().await?;
    let mut db = state.pool.get().await?;
    let row = db
        .query_opt(
            &db.prepare_cached(REFRESH_SQL).await?,
            &[
                &hash,
                &state.config.refresh_reuse_grace.as_secs_f64(),
                &successor_hash,
                &seal(&successor, presented),
                &client.ip,
                &state.config.refresh_token_ttl.as_secs_f64(),
            ],
        )
        .await?
        .ok_or_else(invalid_refresh_token)?;
    let session_id: Uuid = row.get(0);
    let in_grace: bool = row.get(2);
    let successor_is_current: Option<bool> = row.get(3);
    let sealed: Option<Vec<u8>> = row.get(4);
    let user_id: Uuid = row.get(5);
    let live: bool = row.get(6);
    let verified: bool = row.get(7);
    let access = access_of(&row, 8);
    let rotated_now: bool = row.get(9);
    if rotated_now {
        return Ok(Json(token_response(
            issuer,
            user_id,
            session_id,
            verified,
            &access,
            successor_token,
        )));
    }
    if !live {
        return Err(invalid_refresh_token());
    }
    if in_grace {
        // A concurrent refresh: the same successor, as long as it is still the current token.
        let successor = successor_is_current
            .filter(|current| *current)
            .and(sealed)
            .and_then(|sealed| unseal(&sealed, presented))
            .ok_or_else(invalid_refresh_token)?;
        return Ok(Json(token_response(
            issuer, user_id, session_id, verified, &access, successor,
        )));
    }

    // A rotated token came back after the grace window: someone holds a copy. End the session.
    let tx = db.transaction().await?;
    tx.execute(
        "UPDATE auth.user_sessions SET revoked_at = now(), revoked_reason = 'refresh_reuse' WHERE id = $1",
        &[&session_id],
    )
    .await?;
    let event = Envelope::new(
        EVENT_SOURCE,
        "auth.refresh_token_reused",
        Some(user_id),
        json!({ "user_id": user_id, "session_id": session_id, "ip_address": client.ip, "user_agent": client.user_agent }),
    );
    state.outbox.commit(tx, &[event]).await?;
    Err(invalid_refresh_token())
}

/// Ends the session a refresh token belongs to.
#[utoipa::path(
    post, path = "/api/v1/auth/logout", tag = "auth",
    request_body = RefreshRequest,
    responses(
        (status = 204, description = "The session is over (also when it already was)"),
        (status = 401, description = "The refresh token is not one this service issued"),
    )
)]
pub async fn logout(
    State(state): State<AppState>,
    client: ClientInfo,
    Json(body): Json<RefreshRequest>,
) -> ApiResult<StatusCode> {
    let presented = body.refresh_token.trim();
    if !tokens::looks_valid(presented) {
        return Err(invalid_refresh_token());
    }
    let mut db = state.pool.get().await?;
    let tx = db.transaction().await?;
    let session = tx
        .query_opt(
            "UPDATE auth.user_sessions s SET revoked_at = COALESCE(s.revoked_at, now()),
                    revoked_reason = COALESCE(s.revoked_reason, 'logout')
             FROM auth.refresh_tokens rt
             WHERE rt.token_hash = $1 AND s.id = rt.session_id
             RETURNING s.id, s.user_id",
            &[&tokens::hash(presented)],
        )
        .await?
        .ok_or_else(invalid_refresh_token)?;
    let (session_id, user_id): (Uuid, Uuid) = (session.get(0), session.get(1));
    let event = Envelope::new(
        EVENT_SOURCE,
        "auth.logged_out",
        Some(user_id),
        json!({ "user_id": user_id, "session_id": session_id, "ip_address": client.ip }),
    );
    state.outbox.commit(tx, &[event]).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Ends every session of the caller, this one included.
#[utoipa::path(
    post, path = "/api/v1/auth/logout-all", tag = "auth",
    security(("bearer" = [])),
    responses((status = 204, description = "Every session is over"))
)]
pub async fn logout_all(
    State(state): State<AppState>,
    caller: Caller,
    client: ClientInfo,
) -> ApiResult<StatusCode> {
    let mut db = state.pool.get().await?;
    let tx = db.transaction().await?;
    let count = revoke_all(&tx, caller.user_id, None, "logout_all").await?;
    let event = Envelope::new(
        EVENT_SOURCE,
        "auth.logged_out_all",
        Some(caller.user_id),
        json!({ "user_id": caller.user_id, "sessions": count, "ip_address": client.ip }),
    );
    state.outbox.commit(tx, &[event]).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// One signed-in device.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Session {
    pub id: Uuid,
    /// `user_agent` and `device_type` (desktop, mobile, tablet, client, unknown).
    pub device_info: serde_json::Value,
    pub ip_address: Option<String>,
    #[serde(serialize_with = "lectern_shared::timestamp::serialize")]
    pub created_at: DateTime<Utc>,
    #[serde(serialize_with = "lectern_shared::timestamp::serialize")]
    pub last_used_at: DateTime<Utc>,
    #[serde(serialize_with = "lectern_shared::timestamp::serialize")]
    pub expires_at: DateTime<Utc>,
    /// Whether this is the session of the token making the request.
    pub current: bool,
}

#[derive(Debug, Serialize, Deserialize)]
struct SessionCursor {
    created_at: DateTime<Utc>,
    id: Uuid,
}

/// Lists the caller's live sessions, newest first.
#[utoipa::path(
    get, path = "/api/v1/auth/sessions", tag = "auth",
    params(PageQuery),
    security(("bearer" = [])),
    responses((status = 200, description = "The caller's sessions", body = List<Session>))
)]
pub async fn list_sessions(
    State(state): State<AppState>,
    caller: Caller,
    axum::extract::Query(query): axum::extract::Query<PageQuery>,
) -> ApiResult<Json<List<Session>>> {
    let page = query.parse::<SessionCursor>()?;
    let (after_time, after_id) = page
        .after
        .map(|c| (Some(c.created_at), Some(c.id)))
        .unwrap_or((None, None));
    let db = state.pool.get().await?;
    let rows = db
        .query(
            &db.prepare_cached(
                "SELECT id, device_info, host(ip_address), created_at, last_used_at, expires_at
                 FROM auth.user_sessions
                 WHERE user_id = $1 AND revoked_at IS NULL AND expires_at > now()
                   AND ($2::timestamptz IS NULL OR (created_at, id) < ($2, $3))
                 ORDER BY created_at DESC, id DESC
                 LIMIT $4",
            )
            .await?,
            &[&caller.user_id, &after_time, &after_id, &(page.limit + 1)],
        )
        .await?;
    let mut data: Vec<Session> = rows
        .iter()
        .map(|r| Session {
            id: r.get(0),
            device_info: r.get(1),
            ip_address: r.get(2),
            created_at: r.get(3),
            last_used_at: r.get(4),
            expires_at: r.get(5),
            current: r.get::<_, Uuid>(0) == caller.session_id,
        })
        .collect();
    let next_cursor = if data.len() as i64 > page.limit {
        data.truncate(page.limit as usize);
        data.last().map(|s| {
            encode_cursor(&SessionCursor {
                created_at: s.created_at,
                id: s.id,
            })
        })
    } else {
        None
    };
    Ok(Json(List { data, next_cursor }))
}

/// Signs one of the caller's devices out.
#[utoipa::path(
    delete, path = "/api/v1/auth/sessions/{id}", tag = "auth",
    params(("id" = Uuid, Path, description = "The session id")),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "The session is over"),
        (status = 404, description = "No live session of the caller has that id"),
    )
)]
pub async fn revoke_session(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
) -> ApiResult<StatusCode> {
    let mut db = state.pool.get().await?;
    let tx = db.transaction().await?;
    let revoked = tx
        .execute(
            "UPDATE auth.user_sessions SET revoked_at = now(), revoked_reason = 'revoked'
             WHERE id = $1 AND user_id = $2 AND revoked_at IS NULL",
            &[&id, &caller.user_id],
        )
        .await?;
    if revoked == 0 {
        return Err(ApiError::NotFound);
    }
    let event = Envelope::new(
        EVENT_SOURCE,
        "auth.session_revoked",
        Some(caller.user_id),
        json!({ "user_id": caller.user_id, "session_id": id }),
    );
    state.outbox.commit(tx, &[event]).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Waits until `min` has passed since `started`, so that the paths of an enumeration-safe
/// endpoint cannot be told apart by their timing.
pub async fn pad_response(started: Instant, min: std::time::Duration) {
    let elapsed = started.elapsed();
    if elapsed < min {
        tokio::time::sleep(min - elapsed).await;
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_sealed_successor_opens_only_with_the_presented_token() {
        let successor: [u8; 32] = rand::random();
        let presented = lectern_shared::tokens::generate();
        let sealed = super::seal(&successor, &presented);
        assert_eq!(
            super::unseal(&sealed, &presented).unwrap(),
            lectern_shared::tokens::encode(&successor)
        );
        let other = lectern_shared::tokens::generate();
        assert_ne!(
            super::unseal(&sealed, &other).unwrap(),
            lectern_shared::tokens::encode(&successor)
        );
    }
}
