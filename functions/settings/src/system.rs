//! System settings (`/api/v1/settings/system*`): application-wide configuration by key, each
//! optionally typed, versioned for optimistic concurrency, and audited — every create and
//! update writes a `system_setting_changes` row in the same transaction, and publishes
//! `setting.created` / `setting.updated` through the outbox.

use axum::{
    extract::State,
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::IntoResponse,
};
use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use lectern_shared::{
    ApiError, ApiResult,
    authz::{Action, Module},
    error::unique_violation,
    events::Envelope,
    extract::{AuthUser, IfMatch, Json, List, PageQuery, Path, Query, encode_cursor, nullable},
    validate::{Validator, short_text},
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio_postgres::Row;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::{
    preferences::{LanguageTag, Theme, TimeZoneName},
    state::{AppState, EVENT_SOURCE},
};

/// The keys this service itself reads: the defaults of users' preferences.
pub const DEFAULT_THEME: &str = "default_theme";
pub const DEFAULT_LANGUAGE: &str = "default_language";
pub const DEFAULT_TIMEZONE: &str = "default_timezone";

const MAX_DESCRIPTION: usize = 500;

/// A setting's key: lower snake_case words, dotted for namespaces (`site_name`,
/// `features.comments`), 1 to 100 characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettingKey(String);

impl SettingKey {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let well_formed = (1..=100).contains(&raw.len())
            && raw.split('.').all(|segment| {
                segment.starts_with(|c: char| c.is_ascii_lowercase())
                    && segment
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
            });
        if well_formed {
            Ok(Self(raw.to_string()))
        } else {
            Err("must be 1 to 100 characters of lower snake_case words, dotted for namespaces (like site_name or features.comments)".into())
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The JSON type a setting declares for its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ValueType {
    String,
    Number,
    Integer,
    Boolean,
    Object,
    Array,
}

impl ValueType {
    pub const ALL: [ValueType; 6] = [
        ValueType::String,
        ValueType::Number,
        ValueType::Integer,
        ValueType::Boolean,
        ValueType::Object,
        ValueType::Array,
    ];

    pub fn parse(raw: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|t| t.as_str() == raw)
            .ok_or_else(|| "must be one of string, number, integer, boolean, object, array".into())
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ValueType::String => "string",
            ValueType::Number => "number",
            ValueType::Integer => "integer",
            ValueType::Boolean => "boolean",
            ValueType::Object => "object",
            ValueType::Array => "array",
        }
    }

    /// Whether `value` is of this type; an integer is a number without a fraction.
    pub fn check(self, value: &Value) -> Result<(), String> {
        let matches = match self {
            ValueType::String => value.is_string(),
            ValueType::Number => value.is_number(),
            ValueType::Integer => value.is_i64() || value.is_u64(),
            ValueType::Boolean => value.is_boolean(),
            ValueType::Object => value.is_object(),
            ValueType::Array => value.is_array(),
        };
        if matches {
            Ok(())
        } else {
            Err(format!(
                "must be a JSON {} (this setting's value_type)",
                self.as_str()
            ))
        }
    }
}

/// A value any setting may hold: anything but `null` (a setting that is off is `false`).
fn present_value(value: &Value) -> Result<(), String> {
    if value.is_null() {
        Err("is required and must not be null".into())
    } else {
        Ok(())
    }
}

/// The settings this service reads must hold what it can use; answers the value to store
/// (the canonical spelling of a language tag or time zone).
async fn check_known_key(
    db: &impl GenericClient,
    key: &SettingKey,
    value: Value,
) -> ApiResult<Result<Value, String>> {
    let text = || {
        value
            .as_str()
            .ok_or_else(|| "must be a JSON string".to_string())
    };
    Ok(match key.as_str() {
        DEFAULT_THEME => text().and_then(|t| Theme::parse(t).map(|t| json!(t.as_str()))),
        DEFAULT_LANGUAGE => text().and_then(|t| LanguageTag::parse(t).map(|l| json!(l.as_str()))),
        DEFAULT_TIMEZONE => match text().and_then(TimeZoneName::parse) {
            Ok(zone) => zone.resolve(db).await?.map(|z| json!(z.as_str())),
            Err(message) => Err(message),
        },
        _ => Ok(value),
    })
}

/// One system setting.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SystemSetting {
    pub id: Uuid,
    pub key: String,
    /// Any JSON value but `null`.
    pub value: Value,
    /// When set, every write must match it.
    pub value_type: Option<ValueType>,
    pub description: Option<String>,
    /// The user who last changed it; `null` for a seeded value nobody has changed.
    pub updated_by: Option<Uuid>,
    #[serde(serialize_with = "lectern_shared::timestamp::serialize")]
    pub created_at: DateTime<Utc>,
    #[serde(serialize_with = "lectern_shared::timestamp::serialize")]
    pub updated_at: DateTime<Utc>,
    /// Sent as the `ETag`; send it back in `If-Match` to update only what you read.
    pub version: i32,
}

/// The columns [`SystemSetting::from_row`] reads, in its order.
macro_rules! setting_columns {
    () => {
        "id, key, value, value_type, description, updated_by, created_at, updated_at, version"
    };
}

impl SystemSetting {
    fn from_row(row: &Row) -> Self {
        Self {
            id: row.get(0),
            key: row.get(1),
            value: row.get(2),
            value_type: row
                .get::<_, Option<String>>(3)
                .and_then(|t| ValueType::parse(&t).ok()),
            description: row.get(4),
            updated_by: row.get(5),
            created_at: row.get(6),
            updated_at: row.get(7),
            version: row.get(8),
        }
    }

    fn etag(&self) -> HeaderValue {
        HeaderValue::from_str(&format!("\"{}\"", self.version)).expect("a number is a header value")
    }

    fn location(&self) -> HeaderValue {
        HeaderValue::from_str(&format!("/api/v1/settings/system/{}", self.key))
            .expect("a key is a header value")
    }
}

fn with_etag(setting: SystemSetting) -> impl IntoResponse {
    let mut headers = HeaderMap::new();
    headers.insert(header::ETAG, setting.etag());
    (headers, Json(setting))
}

#[derive(Debug, Serialize, Deserialize)]
struct KeyCursor {
    key: String,
}

/// Lists every system setting, by key.
#[utoipa::path(
    get, path = "/api/v1/settings/system", tag = "settings",
    params(PageQuery),
    security(("bearer" = [])),
    responses((status = 200, description = "The settings, ordered by key (needs settings.view)", body = List<SystemSetting>))
)]
pub async fn list_system_settings(
    State(state): State<AppState>,
    caller: AuthUser,
    Query(query): Query<PageQuery>,
) -> ApiResult<Json<List<SystemSetting>>> {
    caller.require(Module::Settings, Action::View)?;
    let page = query.parse::<KeyCursor>()?;
    let after = page.after.map(|c| c.key);
    let db = state.pool.get().await?;
    let rows = db
        .query(
            &db.prepare_cached(concat!(
                "SELECT ",
                setting_columns!(),
                " FROM settings.system_settings
                 WHERE $1::text IS NULL OR key > $1
                 ORDER BY key
                 LIMIT $2"
            ))
            .await?,
            &[&after, &(page.limit + 1)],
        )
        .await?;
    let mut data: Vec<SystemSetting> = rows.iter().map(SystemSetting::from_row).collect();
    let next_cursor = if data.len() as i64 > page.limit {
        data.truncate(page.limit as usize);
        data.last()
            .map(|s| encode_cursor(&KeyCursor { key: s.key.clone() }))
    } else {
        None
    };
    Ok(Json(List { data, next_cursor }))
}

/// A key in a path: one that cannot exist is simply not found.
fn path_key(raw: &str) -> ApiResult<SettingKey> {
    SettingKey::parse(raw).map_err(|_| ApiError::NotFound)
}

/// Reads one system setting.
#[utoipa::path(
    get, path = "/api/v1/settings/system/{key}", tag = "settings",
    params(("key" = String, Path, description = "The setting's key, like site_name")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The setting (needs settings.view); its version is the ETag", body = SystemSetting,
         headers(("ETag" = String))),
        (status = 404, description = "No setting has that key"),
    )
)]
pub async fn get_system_setting(
    State(state): State<AppState>,
    caller: AuthUser,
    Path(key): Path<String>,
) -> ApiResult<impl IntoResponse> {
    caller.require(Module::Settings, Action::View)?;
    let key = path_key(&key)?;
    let db = state.pool.get().await?;
    let row = db
        .query_opt(
            &db.prepare_cached(concat!(
                "SELECT ",
                setting_columns!(),
                " FROM settings.system_settings WHERE key = $1"
            ))
            .await?,
            &[&key.as_str()],
        )
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(with_etag(SystemSetting::from_row(&row)))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateSystemSetting {
    /// The new value; it must match the setting's `value_type` when one is declared.
    pub value: Value,
    /// Absent keeps the description, `null` removes it.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub description: Option<Option<String>>,
}

/// Changes a system setting's value (and optionally its description).
#[utoipa::path(
    put, path = "/api/v1/settings/system/{key}", tag = "settings",
    params(
        ("key" = String, Path, description = "The setting's key"),
        ("If-Match" = Option<String>, Header, description = "The ETag you read; a stale one answers 412"),
    ),
    request_body = UpdateSystemSetting,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Updated (needs settings.edit); audited and published as setting.updated", body = SystemSetting,
         headers(("ETag" = String))),
        (status = 404, description = "No setting has that key"),
        (status = 412, description = "The setting changed since the ETag in If-Match"),
    )
)]
pub async fn update_system_setting(
    State(state): State<AppState>,
    caller: AuthUser,
    Path(key): Path<String>,
    IfMatch(if_match): IfMatch,
    Json(body): Json<UpdateSystemSetting>,
) -> ApiResult<impl IntoResponse> {
    caller.require(Module::Settings, Action::Edit)?;
    let key = path_key(&key)?;
    let mut v = Validator::new();
    v.check("value", present_value(&body.value));
    // None keeps the description, Some(None) removes it, Some(Some(text)) replaces it.
    let description: Option<Option<String>> = v.change("description", body.description, |text| {
        short_text(&text, MAX_DESCRIPTION)
    });
    v.finish()?;

    let mut db = state.pool.get().await?;
    let tx = db.transaction().await?;
    let current = tx
        .query_opt(
            "SELECT id, value, value_type, version FROM settings.system_settings
             WHERE key = $1 FOR UPDATE",
            &[&key.as_str()],
        )
        .await?
        .ok_or(ApiError::NotFound)?;
    let (id, old_value, value_type, version): (Uuid, Value, Option<String>, i32) = (
        current.get(0),
        current.get(1),
        current.get(2),
        current.get(3),
    );
    if if_match.is_some_and(|expected| expected != version) {
        return Err(ApiError::PreconditionFailed);
    }
    if let Some(declared) = value_type.and_then(|t| ValueType::parse(&t).ok()) {
        declared
            .check(&body.value)
            .map_err(|message| ApiError::validation("value", message))?;
    }
    let value = check_known_key(&tx, &key, body.value)
        .await?
        .map_err(|message| ApiError::validation("value", message))?;

    let row = tx
        .query_one(
            concat!(
                "UPDATE settings.system_settings
                 SET value = $2, description = CASE WHEN $3 THEN $4 ELSE description END,
                     updated_by = $5, updated_at = now(), version = version + 1
                 WHERE id = $1
                 RETURNING ",
                setting_columns!()
            ),
            &[
                &id,
                &value,
                &description.is_some(),
                &description.flatten(),
                &caller.id(),
            ],
        )
        .await?;
    let setting = SystemSetting::from_row(&row);
    record_change(&tx, &setting, Some(&old_value), caller.id()).await?;
    let event = Envelope::new(
        EVENT_SOURCE,
        "setting.updated",
        Some(caller.id()),
        json!({
            "setting_id": setting.id, "key": setting.key, "old_value": old_value,
            "new_value": setting.value, "version": setting.version,
        }),
    );
    state.outbox.commit(tx, &[event]).await?;
    Ok(with_etag(setting))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateSystemSetting {
    /// Lower snake_case words, dotted for namespaces: `site_name`, `features.comments`.
    pub key: String,
    pub value: Value,
    /// Declares the value's JSON type for every later write: string, number, integer,
    /// boolean, object or array.
    #[serde(default)]
    pub value_type: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
}

/// Creates a system setting.
#[utoipa::path(
    post, path = "/api/v1/settings/system", tag = "settings",
    request_body = CreateSystemSetting,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Created (needs settings.create); audited and published as setting.created",
         body = SystemSetting, headers(("Location" = String), ("ETag" = String))),
        (status = 409, description = "A setting with that key exists"),
    )
)]
pub async fn create_system_setting(
    State(state): State<AppState>,
    caller: AuthUser,
    Json(body): Json<CreateSystemSetting>,
) -> ApiResult<impl IntoResponse> {
    caller.require(Module::Settings, Action::Create)?;
    let mut v = Validator::new();
    let key = v.check("key", SettingKey::parse(&body.key));
    let value_type = match body.value_type.as_deref() {
        Some(raw) => v.check("value_type", ValueType::parse(raw)),
        None => None,
    };
    if v.check("value", present_value(&body.value)).is_some()
        && let Some(declared) = value_type
    {
        v.check("value", declared.check(&body.value));
    }
    let description = match body.description.as_deref() {
        Some(text) => v.check("description", short_text(text, MAX_DESCRIPTION)),
        None => None,
    };
    v.finish()?;
    let key = key.expect("validated");

    let mut db = state.pool.get().await?;
    let tx = db.transaction().await?;
    let value = check_known_key(&tx, &key, body.value)
        .await?
        .map_err(|message| ApiError::validation("value", message))?;
    let row = tx
        .query_one(
            concat!(
                "INSERT INTO settings.system_settings (id, key, value, value_type, description, updated_by)
                 VALUES ($1, $2, $3, $4, $5, $6)
                 RETURNING ",
                setting_columns!()
            ),
            &[
                &Uuid::now_v7(),
                &key.as_str(),
                &value,
                &value_type.map(ValueType::as_str),
                &description,
                &caller.id(),
            ],
        )
        .await
        .map_err(|err| match unique_violation(&err) {
            Some("system_settings_key_key") => {
                ApiError::Conflict(format!("A setting with the key {} exists.", key.as_str()))
            }
            _ => err.into(),
        })?;
    let setting = SystemSetting::from_row(&row);
    record_change(&tx, &setting, None, caller.id()).await?;
    let event = Envelope::new(
        EVENT_SOURCE,
        "setting.created",
        Some(caller.id()),
        json!({
            "setting_id": setting.id, "key": setting.key, "value": setting.value,
            "value_type": setting.value_type,
        }),
    );
    state.outbox.commit(tx, &[event]).await?;
    let location = setting.location();
    let etag = setting.etag();
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location), (header::ETAG, etag)],
        Json(setting),
    ))
}

/// The audit row of a create (`old` is `None`) or an update.
async fn record_change(
    tx: &impl GenericClient,
    setting: &SystemSetting,
    old: Option<&Value>,
    changed_by: Uuid,
) -> Result<(), tokio_postgres::Error> {
    tx.execute(
        "INSERT INTO settings.system_setting_changes (id, setting_id, key, old_value, new_value, changed_by, changed_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
        &[
            &Uuid::now_v7(),
            &setting.id,
            &setting.key,
            &old,
            &setting.value,
            &changed_by,
            &setting.updated_at,
        ],
    )
    .await?;
    Ok(())
}

/// One change of a setting's value.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SettingChange {
    pub id: Uuid,
    pub setting_id: Uuid,
    pub key: String,
    /// `null` for the change that created the setting.
    pub old_value: Option<Value>,
    pub new_value: Value,
    pub changed_by: Option<Uuid>,
    #[serde(serialize_with = "lectern_shared::timestamp::serialize")]
    pub changed_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, Deserialize)]
struct ChangeCursor {
    changed_at: DateTime<Utc>,
    id: Uuid,
}

/// The audit trail of one setting, newest first.
#[utoipa::path(
    get, path = "/api/v1/settings/system/{key}/history", tag = "settings",
    params(("key" = String, Path, description = "The setting's key"), PageQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Every create and update of the setting, newest first (needs settings.view)", body = List<SettingChange>),
        (status = 404, description = "No setting has that key"),
    )
)]
pub async fn system_setting_history(
    State(state): State<AppState>,
    caller: AuthUser,
    Path(key): Path<String>,
    Query(query): Query<PageQuery>,
) -> ApiResult<Json<List<SettingChange>>> {
    caller.require(Module::Settings, Action::View)?;
    let key = path_key(&key)?;
    let page = query.parse::<ChangeCursor>()?;
    let (after_time, after_id) = page
        .after
        .map(|c| (Some(c.changed_at), Some(c.id)))
        .unwrap_or((None, None));
    let db = state.pool.get().await?;
    let setting_id: Uuid = db
        .query_opt(
            &db.prepare_cached("SELECT id FROM settings.system_settings WHERE key = $1")
                .await?,
            &[&key.as_str()],
        )
        .await?
        .ok_or(ApiError::NotFound)?
        .get(0);
    let rows = db
        .query(
            &db.prepare_cached(
                "SELECT id, setting_id, key, old_value, new_value, changed_by, changed_at
                 FROM settings.system_setting_changes
                 WHERE setting_id = $1
                   AND ($2::timestamptz IS NULL OR (changed_at, id) < ($2, $3))
                 ORDER BY changed_at DESC, id DESC
                 LIMIT $4",
            )
            .await?,
            &[&setting_id, &after_time, &after_id, &(page.limit + 1)],
        )
        .await?;
    let mut data: Vec<SettingChange> = rows
        .iter()
        .map(|r| SettingChange {
            id: r.get(0),
            setting_id: r.get(1),
            key: r.get(2),
            old_value: r.get(3),
            new_value: r.get(4),
            changed_by: r.get(5),
            changed_at: r.get(6),
        })
        .collect();
    let next_cursor = if data.len() as i64 > page.limit {
        data.truncate(page.limit as usize);
        data.last().map(|c| {
            encode_cursor(&ChangeCursor {
                changed_at: c.changed_at,
                id: c.id,
            })
        })
    } else {
        None
    };
    Ok(Json(List { data, next_cursor }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_dotted_lower_snake_case() {
        for ok in [
            "site_name",
            "features.comments",
            "a",
            "x1.y_2.z",
            &"k".repeat(100),
        ] {
            assert!(SettingKey::parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "Site_name",
            "site-name",
            "1site",
            ".site",
            "site.",
            "a..b",
            "features._x",
            "site name",
            &"k".repeat(101),
        ] {
            assert!(SettingKey::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn values_are_checked_against_their_declared_type() {
        assert!(ValueType::Integer.check(&json!(50)).is_ok());
        assert!(ValueType::Integer.check(&json!(-3)).is_ok());
        assert!(ValueType::Integer.check(&json!(2.5)).is_err());
        assert!(ValueType::Integer.check(&json!("50")).is_err());
        assert!(ValueType::Number.check(&json!(2.5)).is_ok());
        assert!(ValueType::Number.check(&json!(2)).is_ok());
        assert!(ValueType::String.check(&json!("x")).is_ok());
        assert!(ValueType::Boolean.check(&json!("true")).is_err());
        assert!(ValueType::Object.check(&json!({})).is_ok());
        assert!(ValueType::Object.check(&json!([])).is_err());
        assert!(ValueType::Array.check(&json!([])).is_ok());
    }
}
