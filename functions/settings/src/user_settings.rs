//! Users' preferences (`/api/v1/settings/user`, `/api/v1/users/{id}/settings`): theme,
//! language, time zone, date format and a free-form JSON object for the client's own use.
//!
//! A user has no row until their first save, and a column they never set is NULL: both read
//! as the current defaults (the `default_*` system settings), so reading never writes and a
//! user who never chose follows the site's default when an admin changes it. A PUT changes
//! only the fields it names; `null` puts a field back to the default.

use axum::extract::State;
use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use lectern_shared::{
    ApiError, ApiResult,
    authz::{Action, Module},
    events::Envelope,
    extract::{AuthUser, Json, Path, nullable},
    validate::Validator,
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::{
    preferences::{
        DEFAULT_DATE_FORMAT, DateFormat, LanguageTag, SettingsJson, Theme, TimeZoneName,
    },
    state::{AppState, EVENT_SOURCE},
    system::{DEFAULT_LANGUAGE, DEFAULT_THEME, DEFAULT_TIMEZONE},
};

/// A user's preferences, with the defaults filled in.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct UserSettings {
    /// `null` until the user first saves.
    pub id: Option<Uuid>,
    pub user_id: Uuid,
    /// light, dark or system.
    pub theme: String,
    /// A BCP 47 language tag, like en-GB.
    pub language: String,
    /// An IANA time zone name, like Europe/Berlin.
    pub timezone: String,
    /// One of YYYY-MM-DD, DD/MM/YYYY, MM/DD/YYYY, DD.MM.YYYY, D MMM YYYY, MMM D, YYYY.
    pub date_format: String,
    /// The client's own preferences: a JSON object of at most 16 KiB.
    pub settings_json: Value,
    /// `null` until the user first saves.
    #[serde(serialize_with = "lectern_shared::timestamp::serialize_option")]
    pub created_at: Option<DateTime<Utc>>,
    #[serde(serialize_with = "lectern_shared::timestamp::serialize_option")]
    pub updated_at: Option<DateTime<Utc>>,
}

/// What the defaults are now: the `default_*` system settings, or the platform's own when
/// one is missing or unusable.
#[derive(Debug, Clone)]
pub struct Defaults {
    pub theme: String,
    pub language: String,
    pub timezone: String,
}

impl Defaults {
    pub async fn load(db: &impl GenericClient) -> Result<Self, tokio_postgres::Error> {
        let rows = db
            .query(
                &db.prepare_cached(
                    "SELECT key, value FROM settings.system_settings WHERE key = ANY ($1)",
                )
                .await?,
                &[&[DEFAULT_THEME, DEFAULT_LANGUAGE, DEFAULT_TIMEZONE].as_slice()],
            )
            .await?;
        let text = |key: &str, valid: fn(&str) -> bool, fallback: &str| {
            let stored = rows
                .iter()
                .find(|r| r.get::<_, &str>(0) == key)
                .and_then(|r| r.get::<_, Value>(1).as_str().map(str::to_string));
            match stored {
                Some(value) if valid(&value) => value,
                other => {
                    tracing::warn!(key, stored = ?other, fallback, "a default setting is missing or unusable");
                    fallback.to_string()
                }
            }
        };
        Ok(Self {
            theme: text(DEFAULT_THEME, |v| Theme::parse(v).is_ok(), "system"),
            language: text(DEFAULT_LANGUAGE, |v| LanguageTag::parse(v).is_ok(), "en"),
            timezone: text(DEFAULT_TIMEZONE, |v| TimeZoneName::parse(v).is_ok(), "UTC"),
        })
    }
}

/// Serialises every change to one user's settings with the worker erasing them, so that an
/// erasure cannot interleave with a save and leave personal data behind.
pub async fn lock_user(
    tx: &impl GenericClient,
    user_id: Uuid,
) -> Result<(), tokio_postgres::Error> {
    tx.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended('lectern.settings.user:' || $1::uuid::text, 0))",
        &[&user_id],
    )
    .await?;
    Ok(())
}

/// 403 unless the caller may `action` the target's settings (their own always; another
/// user's with users.view to read, users.edit to write); 404 unless the target is an account
/// this service knows (the caller's own always is, until it is deleted).
async fn authorize(
    db: &impl GenericClient,
    caller: &AuthUser,
    target: Uuid,
    action: Action,
) -> ApiResult<()> {
    let own = caller.id() == target;
    if !own {
        caller.require(Module::Users, action)?;
    }
    let row = db
        .query_one(
            &db.prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM settings.known_users WHERE user_id = $1),
                        EXISTS (SELECT 1 FROM settings.erased_users WHERE user_id = $1)",
            )
            .await?,
            &[&target],
        )
        .await?;
    let (known, erased): (bool, bool) = (row.get(0), row.get(1));
    if erased || !(known || own) {
        return Err(ApiError::NotFound);
    }
    Ok(())
}

fn view(user_id: Uuid, row: Option<&tokio_postgres::Row>, defaults: Defaults) -> UserSettings {
    let Some(row) = row else {
        return UserSettings {
            id: None,
            user_id,
            theme: defaults.theme,
            language: defaults.language,
            timezone: defaults.timezone,
            date_format: DEFAULT_DATE_FORMAT.into(),
            settings_json: json!({}),
            created_at: None,
            updated_at: None,
        };
    };
    UserSettings {
        id: Some(row.get(0)),
        user_id,
        theme: row.get::<_, Option<String>>(1).unwrap_or(defaults.theme),
        language: row.get::<_, Option<String>>(2).unwrap_or(defaults.language),
        timezone: row.get::<_, Option<String>>(3).unwrap_or(defaults.timezone),
        date_format: row
            .get::<_, Option<String>>(4)
            .unwrap_or_else(|| DEFAULT_DATE_FORMAT.into()),
        settings_json: row.get(5),
        created_at: Some(row.get(6)),
        updated_at: Some(row.get(7)),
    }
}

async fn read(state: &AppState, caller: &AuthUser, user_id: Uuid) -> ApiResult<UserSettings> {
    let db = state.pool.get().await?;
    authorize(&db, caller, user_id, Action::View).await?;
    let row = db
        .query_opt(
            &db.prepare_cached(
                "SELECT id, theme, language, timezone, date_format, settings_json, created_at, updated_at
                 FROM settings.user_settings WHERE user_id = $1",
            )
            .await?,
            &[&user_id],
        )
        .await?;
    Ok(view(user_id, row.as_ref(), Defaults::load(&db).await?))
}

/// A partial update: an absent field stays as it is, `null` puts it back to the default.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateUserSettings {
    /// light, dark or system.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub theme: Option<Option<String>>,
    /// A BCP 47 language tag (en, en-GB, zh-Hant-TW); stored in its canonical case.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub language: Option<Option<String>>,
    /// An IANA time zone name (Europe/Berlin, UTC).
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub timezone: Option<Option<String>>,
    /// One of YYYY-MM-DD, DD/MM/YYYY, MM/DD/YYYY, DD.MM.YYYY, D MMM YYYY, MMM D, YYYY.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub date_format: Option<Option<String>>,
    /// A JSON object of at most 16 KiB; replaces the stored one whole (`null` empties it).
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<Object>)]
    pub settings_json: Option<Option<Value>>,
}

/// One field of a partial update, parsed: `None` leaves it, `Some(None)` resets it.
type Change<T> = Option<Option<T>>;

/// Parses one present field with `parse`, recording its error under `field`.
fn parse_change<T, P>(
    v: &mut Validator,
    field: &str,
    raw: Option<Option<P>>,
    parse: impl FnOnce(P) -> Result<T, String>,
) -> Change<T> {
    v.change(field, raw, parse)
}

async fn write(
    state: &AppState,
    caller: &AuthUser,
    user_id: Uuid,
    body: UpdateUserSettings,
) -> ApiResult<UserSettings> {
    let mut db = state.pool.get().await?;
    authorize(&db, caller, user_id, Action::Edit).await?;

    let mut v = Validator::new();
    let theme = parse_change(&mut v, "theme", body.theme, |t| Theme::parse(&t));
    let language = parse_change(&mut v, "language", body.language, |l| {
        LanguageTag::parse(&l)
    });
    let timezone = parse_change(&mut v, "timezone", body.timezone, |z| {
        TimeZoneName::parse(&z)
    });
    let date_format = parse_change(&mut v, "date_format", body.date_format, |f| {
        DateFormat::parse(&f)
    });
    let settings_json = parse_change(
        &mut v,
        "settings_json",
        body.settings_json,
        SettingsJson::parse,
    );
    // Only a name that passed the syntactic check is looked up in the catalogue.
    let timezone = match timezone {
        Some(Some(zone)) => match zone.resolve(&db).await? {
            Ok(zone) => Some(Some(zone)),
            Err(message) => {
                v.add("timezone", message);
                None
            }
        },
        other => other,
    };
    v.finish()?;

    let changed: Vec<&str> = [
        ("theme", theme.is_some()),
        ("language", language.is_some()),
        ("timezone", timezone.is_some()),
        ("date_format", date_format.is_some()),
        ("settings_json", settings_json.is_some()),
    ]
    .into_iter()
    .filter_map(|(field, present)| present.then_some(field))
    .collect();

    let tx = db.transaction().await?;
    lock_user(&tx, user_id).await?;
    // Checked again under the lock: the account may have been erased since.
    authorize(&tx, caller, user_id, Action::Edit).await?;
    let row = tx
        .query_one(
            "INSERT INTO settings.user_settings (id, user_id, theme, language, timezone, date_format, settings_json)
             VALUES ($1, $2, $4, $6, $8, $10, COALESCE($12, '{}'::jsonb))
             ON CONFLICT (user_id) DO UPDATE SET
                 theme = CASE WHEN $3 THEN EXCLUDED.theme ELSE user_settings.theme END,
                 language = CASE WHEN $5 THEN EXCLUDED.language ELSE user_settings.language END,
                 timezone = CASE WHEN $7 THEN EXCLUDED.timezone ELSE user_settings.timezone END,
                 date_format = CASE WHEN $9 THEN EXCLUDED.date_format ELSE user_settings.date_format END,
                 settings_json = CASE WHEN $11 THEN EXCLUDED.settings_json ELSE user_settings.settings_json END,
                 updated_at = now()
             RETURNING id, theme, language, timezone, date_format, settings_json, created_at, updated_at",
            &[
                &Uuid::now_v7(),
                &user_id,
                &theme.is_some(),
                &theme.flatten().map(Theme::as_str),
                &language.is_some(),
                &language.as_ref().and_then(|l| l.as_ref().map(LanguageTag::as_str)),
                &timezone.is_some(),
                &timezone.as_ref().and_then(|z| z.as_ref().map(TimeZoneName::as_str)),
                &date_format.is_some(),
                &date_format.flatten().map(DateFormat::as_str),
                &settings_json.is_some(),
                &settings_json.flatten().map(SettingsJson::into_value),
            ],
        )
        .await?;
    let settings = view(user_id, Some(&row), Defaults::load(&tx).await?);
    let event = Envelope::new(
        EVENT_SOURCE,
        "user_settings.updated",
        Some(caller.id()),
        json!({ "user_id": user_id, "changed": changed }),
    );
    state.outbox.commit(tx, &[event]).await?;
    Ok(settings)
}

/// The caller's own settings; the defaults when they never saved any (nothing is written).
#[utoipa::path(
    get, path = "/api/v1/settings/user", tag = "settings",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The caller's settings, defaults filled in", body = UserSettings),
        (status = 404, description = "The caller's account has been deleted"),
    )
)]
pub async fn get_own_settings(
    State(state): State<AppState>,
    caller: AuthUser,
) -> ApiResult<Json<UserSettings>> {
    Ok(Json(read(&state, &caller, caller.id()).await?))
}

/// Changes the caller's own settings: only the fields sent.
#[utoipa::path(
    put, path = "/api/v1/settings/user", tag = "settings",
    request_body = UpdateUserSettings,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The caller's settings after the change", body = UserSettings),
        (status = 404, description = "The caller's account has been deleted"),
    )
)]
pub async fn put_own_settings(
    State(state): State<AppState>,
    caller: AuthUser,
    Json(body): Json<UpdateUserSettings>,
) -> ApiResult<Json<UserSettings>> {
    Ok(Json(write(&state, &caller, caller.id(), body).await?))
}

/// A user's settings: the caller's own, or anyone's with users.view.
#[utoipa::path(
    get, path = "/api/v1/users/{id}/settings", tag = "settings",
    params(("id" = Uuid, Path, description = "The user id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The user's settings, defaults filled in", body = UserSettings),
        (status = 404, description = "No such user"),
    )
)]
pub async fn get_user_settings(
    State(state): State<AppState>,
    caller: AuthUser,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<UserSettings>> {
    Ok(Json(read(&state, &caller, id).await?))
}

/// Changes a user's settings: the caller's own, or anyone's with users.edit.
#[utoipa::path(
    put, path = "/api/v1/users/{id}/settings", tag = "settings",
    params(("id" = Uuid, Path, description = "The user id")),
    request_body = UpdateUserSettings,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The user's settings after the change", body = UserSettings),
        (status = 404, description = "No such user"),
    )
)]
pub async fn put_user_settings(
    State(state): State<AppState>,
    caller: AuthUser,
    Path(id): Path<Uuid>,
    Json(body): Json<UpdateUserSettings>,
) -> ApiResult<Json<UserSettings>> {
    Ok(Json(write(&state, &caller, id, body).await?))
}
