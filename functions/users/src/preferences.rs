//! `/api/v1/users/{id}/notifications/preferences`: how a user wants to hear about things.
//! Everyone starts from the defaults without a row being written.

use std::collections::BTreeMap;

use axum::extract::State;
use chrono::{DateTime, Utc};
use lectern_shared::{
    ApiError, ApiResult,
    authz::Action,
    extract::{AuthUser, Json, Path},
    validate::Validator,
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::{
    profiles::{ensure_self_or, load_profile},
    state::AppState,
};

/// The channels one notification type may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Channels {
    pub email: bool,
    pub in_app: bool,
}

/// A user's notification preferences.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Preferences {
    pub user_id: Uuid,
    /// Mail at all.
    pub email_enabled: bool,
    /// In-app notifications at all.
    pub in_app_enabled: bool,
    /// `instant`, `daily`, `weekly` or `never`: how mail is bundled.
    pub digest: String,
    /// Per notification type (`task_assigned`, `comment_reply`, …), overriding the switches
    /// above for that type.
    pub types: BTreeMap<String, Channels>,
    /// `null` while the defaults apply.
    #[serde(serialize_with = "lectern_shared::timestamp::serialize_option")]
    pub updated_at: Option<DateTime<Utc>>,
}

/// Only the fields present change.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PreferencesUpdate {
    pub email_enabled: Option<bool>,
    pub in_app_enabled: Option<bool>,
    pub digest: Option<String>,
    /// Replaces the per-type overrides as a whole.
    pub types: Option<BTreeMap<String, Channels>>,
}

const DIGESTS: [&str; 4] = ["instant", "daily", "weekly", "never"];

fn defaults(user_id: Uuid) -> Preferences {
    Preferences {
        user_id,
        email_enabled: true,
        in_app_enabled: true,
        digest: "instant".into(),
        types: BTreeMap::new(),
        updated_at: None,
    }
}

fn from_row(user_id: Uuid, row: &tokio_postgres::Row) -> ApiResult<Preferences> {
    let types: serde_json::Value = row.get(3);
    Ok(Preferences {
        user_id,
        email_enabled: row.get(0),
        in_app_enabled: row.get(1),
        digest: row.get(2),
        types: serde_json::from_value(types).map_err(ApiError::internal)?,
        updated_at: row.get(4),
    })
}

/// A user's notification preferences (one's own, or anyone's with users.view).
#[utoipa::path(
    get, path = "/api/v1/users/{id}/notifications/preferences", tag = "users",
    params(("id" = Uuid, Path, description = "The user id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The preferences, or the defaults", body = Preferences),
        (status = 404, description = "No such user"),
    )
)]
pub async fn get_preferences(
    State(state): State<AppState>,
    caller: AuthUser,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<Preferences>> {
    ensure_self_or(&caller, id, Action::View)?;
    let db = state.pool.get().await?;
    let row = db
        .query_opt(
            &db.prepare_cached(
                "SELECT p.email_enabled, p.in_app_enabled, p.digest, p.types, p.updated_at, u.id
                 FROM users.users u LEFT JOIN users.notification_preferences p ON p.user_id = u.id
                 WHERE u.id = $1",
            )
            .await?,
            &[&id],
        )
        .await?
        .ok_or(ApiError::NotFound)?;
    if row.get::<_, Option<bool>>(0).is_none() {
        return Ok(Json(defaults(id)));
    }
    Ok(Json(from_row(id, &row)?))
}

/// Updates a user's notification preferences (one's own, or anyone's with users.edit).
#[utoipa::path(
    put, path = "/api/v1/users/{id}/notifications/preferences", tag = "users",
    params(("id" = Uuid, Path, description = "The user id")),
    request_body = PreferencesUpdate,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The preferences now", body = Preferences),
        (status = 404, description = "No such user"),
    )
)]
pub async fn put_preferences(
    State(state): State<AppState>,
    caller: AuthUser,
    Path(id): Path<Uuid>,
    Json(body): Json<PreferencesUpdate>,
) -> ApiResult<Json<Preferences>> {
    ensure_self_or(&caller, id, Action::Edit)?;
    let mut v = Validator::new();
    let digest = body.digest.as_deref().map(str::trim);
    if let Some(d) = digest
        && !DIGESTS.contains(&d)
    {
        v.add("digest", "must be one of instant, daily, weekly, never");
    }
    if let Some(types) = &body.types {
        if types.len() > 100 {
            v.add("types", "must hold at most 100 notification types");
        }
        for name in types.keys() {
            let valid = (1..=64).contains(&name.len())
                && name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '.');
            if !valid {
                v.add(
                    &format!("types.{name}"),
                    "notification types are lower_snake_case names of at most 64 characters",
                );
            }
        }
    }
    v.finish()?;
    let types = body
        .types
        .as_ref()
        .map(|t| serde_json::to_value(t).expect("preferences serialise"));
    let mut db = state.pool.get().await?;
    let tx = db.transaction().await?;
    load_profile(&tx, id).await?;
    let row = tx
        .query_one(
            "INSERT INTO users.notification_preferences (id, user_id, email_enabled, in_app_enabled, digest, types)
             VALUES ($1, $2, COALESCE($3, true), COALESCE($4, true), COALESCE($5, 'instant'), COALESCE($6, '{}'::jsonb))
             ON CONFLICT (user_id) DO UPDATE SET
                 email_enabled = COALESCE($3, notification_preferences.email_enabled),
                 in_app_enabled = COALESCE($4, notification_preferences.in_app_enabled),
                 digest = COALESCE($5, notification_preferences.digest),
                 types = COALESCE($6, notification_preferences.types),
                 updated_at = now()
             RETURNING email_enabled, in_app_enabled, digest, types, updated_at",
            &[
                &Uuid::now_v7(),
                &id,
                &body.email_enabled,
                &body.in_app_enabled,
                &digest,
                &types,
            ],
        )
        .await?;
    let preferences = from_row(id, &row)?;
    let event = lectern_shared::events::Envelope::new(
        crate::state::EVENT_SOURCE,
        "notification_preferences.updated",
        Some(caller.id()),
        &preferences,
    );
    state.outbox.commit(tx, &[event]).await?;
    Ok(Json(preferences))
}
