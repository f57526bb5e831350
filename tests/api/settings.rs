//! The settings service: system settings (typed, versioned, audited) and users' preferences
//! (defaults without a write, partial updates, validation, who may see whose), and the worker
//! that erases a deleted user's settings.
//!
//! Callers with exactly the permissions a test needs get a token signed with the stack's own
//! key, as the auth service would sign one for a user whose roles grant those permissions.

use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use axum::{
    body::Body,
    http::{Method, Request, StatusCode},
};
use chrono::Utc;
use lectern_shared::{
    authz::{Action, Flags, Grants, Module},
    events::Envelope,
    jwt::Claims,
};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{Reply, TestApp};

const SETTINGS_QUEUE: &str = "SettingsQueue";

/// A token for `user_id` granting exactly `grants`.
fn token_for(app: &TestApp, user_id: Uuid, grants: &[(Module, &[Action])]) -> String {
    let mut perms = Grants::default();
    for (module, actions) in grants {
        perms.grant(*module, Flags::of(actions));
    }
    let now = Utc::now().timestamp();
    app.signing_key().sign(&Claims {
        iss: "http://lectern.test".into(),
        aud: "lectern-api".into(),
        sub: user_id,
        sid: Uuid::now_v7(),
        iat: now,
        exp: now + 600,
        jti: Uuid::now_v7(),
        email_verified: true,
        perms,
        roles: Vec::new(),
        groups: Vec::new(),
    })
}

/// A user the settings service knows (its worker saw `user.created`), and their token.
async fn known_user(app: &TestApp, grants: &[(Module, &[Action])]) -> (Uuid, String) {
    let id = Uuid::now_v7();
    app.stack
        .settings_worker
        .apply(&user_event("lectern.auth", "user.created", id))
        .await
        .unwrap();
    (id, token_for(app, id, grants))
}

const SETTINGS_ADMIN: &[(Module, &[Action])] = &[(
    Module::Settings,
    &[Action::View, Action::Create, Action::Edit],
)];
const USERS_ADMIN: &[(Module, &[Action])] = &[(Module::Users, &[Action::View, Action::Edit])];

fn user_event(source: &str, kind: &str, user_id: Uuid) -> Envelope {
    Envelope::new(source, kind, None, json!({ "user_id": user_id }))
}

async fn get(app: &TestApp, path: &str, token: &str) -> Reply {
    app.get(path, Some(token)).await
}

async fn put(app: &TestApp, path: &str, body: Value, token: &str) -> Reply {
    app.call(Method::PUT, path, Some(body), Some(token)).await
}

async fn post(app: &TestApp, path: &str, body: Value, token: &str) -> Reply {
    app.call(Method::POST, path, Some(body), Some(token)).await
}

async fn put_if_match(app: &TestApp, path: &str, body: Value, token: &str, etag: &str) -> Reply {
    let request = Request::builder()
        .method(Method::PUT)
        .uri(path)
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/json")
        .header("if-match", etag)
        .body(Body::from(body.to_string()))
        .unwrap();
    app.send_raw(request, [10, 0, 0, 1]).await
}

async fn count(app: &TestApp, sql: &str, id: Uuid) -> i64 {
    app.db().await.query_one(sql, &[&id]).await.unwrap().get(0)
}

async fn settings_rows(app: &TestApp, user_id: Uuid) -> i64 {
    count(
        app,
        "SELECT count(*) FROM settings.user_settings WHERE user_id = $1",
        user_id,
    )
    .await
}

#[track_caller]
fn assert_ok(reply: &Reply) {
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
}

#[track_caller]
fn assert_invalid(reply: &Reply, fields: &[&str]) {
    reply.assert_problem(422);
    assert_eq!(reply.error_fields(), fields, "{}", reply.text);
}

// ------------------------------------------------------------------------ user settings

#[tokio::test]
async fn reading_your_settings_before_saving_answers_the_defaults_and_writes_nothing() {
    let app = TestApp::spawn().await;
    let (id, token) = known_user(&app, &[]).await;

    let reply = get(&app, "/api/v1/settings/user", &token).await;

    assert_ok(&reply);
    assert_eq!(
        reply.body,
        json!({
            "id": null, "user_id": id, "theme": "system", "language": "en", "timezone": "UTC",
            "date_format": "YYYY-MM-DD", "settings_json": {}, "created_at": null, "updated_at": null,
        })
    );
    assert_eq!(settings_rows(&app, id).await, 0, "a read stores nothing");
    let outbox: i64 = app
        .db()
        .await
        .query_one("SELECT count(*) FROM settings.outbox", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(outbox, 0);
}

#[tokio::test]
async fn a_user_unknown_to_the_worker_still_reads_and_saves_their_own_settings() {
    let app = TestApp::spawn().await;
    let id = Uuid::now_v7();
    let token = token_for(&app, id, &[]);

    let read = get(&app, &format!("/api/v1/users/{id}/settings"), &token).await;
    let saved = put(
        &app,
        "/api/v1/settings/user",
        json!({ "theme": "light" }),
        &token,
    )
    .await;

    assert_ok(&read);
    assert_ok(&saved);
    assert_eq!(saved.body["theme"], "light");
}

#[tokio::test]
async fn a_partial_put_changes_only_the_fields_it_names() {
    let app = TestApp::spawn().await;
    let (id, token) = known_user(&app, &[]).await;

    let first = put(
        &app,
        "/api/v1/settings/user",
        json!({ "theme": "dark", "settings_json": { "sidebar": "collapsed" } }),
        &token,
    )
    .await;
    let second = put(
        &app,
        "/api/v1/settings/user",
        json!({ "language": "EN-gb", "date_format": "DD/MM/YYYY" }),
        &token,
    )
    .await;

    assert_ok(&first);
    assert_ok(&second);
    let body = &second.body;
    assert_eq!(body["user_id"], json!(id));
    assert_eq!(body["theme"], "dark", "an absent field is unchanged");
    assert_eq!(body["language"], "en-GB", "stored in canonical case");
    assert_eq!(body["timezone"], "UTC");
    assert_eq!(body["date_format"], "DD/MM/YYYY");
    assert_eq!(body["settings_json"], json!({ "sidebar": "collapsed" }));
    assert_eq!(body["id"], first.body["id"]);
    assert!(body["created_at"].is_string() && body["updated_at"].is_string());
    assert_eq!(get(&app, "/api/v1/settings/user", &token).await.body, *body);
    let row = app
        .db()
        .await
        .query_one(
            "SELECT theme, language, timezone, date_format FROM settings.user_settings WHERE user_id = $1",
            &[&id],
        )
        .await
        .unwrap();
    let stored: (
        Option<String>,
        Option<String>,
        Option<String>,
        Option<String>,
    ) = (row.get(0), row.get(1), row.get(2), row.get(3));
    assert_eq!(
        stored,
        (
            Some("dark".into()),
            Some("en-GB".into()),
            None,
            Some("DD/MM/YYYY".into())
        ),
        "a field never set follows the default"
    );
    let event: Value = app
        .db()
        .await
        .query_one(
            "SELECT data FROM settings.outbox WHERE type = 'user_settings.updated' ORDER BY occurred_at DESC LIMIT 1",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        event,
        json!({ "user_id": id, "changed": ["language", "date_format"] })
    );
}

#[tokio::test]
async fn null_puts_a_field_back_to_the_default() {
    let app = TestApp::spawn().await;
    let (_, token) = known_user(&app, &[]).await;
    put(
        &app,
        "/api/v1/settings/user",
        json!({ "theme": "dark", "timezone": "Asia/Tokyo", "settings_json": { "a": 1 } }),
        &token,
    )
    .await;

    let reply = put(
        &app,
        "/api/v1/settings/user",
        json!({ "theme": null, "settings_json": null }),
        &token,
    )
    .await;

    assert_ok(&reply);
    assert_eq!(reply.body["theme"], "system");
    assert_eq!(reply.body["timezone"], "Asia/Tokyo");
    assert_eq!(reply.body["settings_json"], json!({}));
}

#[tokio::test]
async fn the_defaults_are_the_system_settings_of_the_moment() {
    let app = TestApp::spawn().await;
    let (_, admin) = known_user(&app, SETTINGS_ADMIN).await;
    let (_, token) = known_user(&app, &[]).await;
    assert_ok(
        &put(
            &app,
            "/api/v1/settings/user",
            json!({ "theme": "light" }),
            &token,
        )
        .await,
    );

    for (key, value) in [
        ("default_theme", json!("dark")),
        ("default_language", json!("de-de")),
        ("default_timezone", json!("europe/berlin")),
    ] {
        let reply = put(
            &app,
            &format!("/api/v1/settings/system/{key}"),
            json!({ "value": value }),
            &admin,
        )
        .await;
        assert_ok(&reply);
    }
    let reply = get(&app, "/api/v1/settings/user", &token).await;

    assert_ok(&reply);
    assert_eq!(reply.body["theme"], "light", "the user's own choice stays");
    assert_eq!(reply.body["language"], "de-DE");
    assert_eq!(reply.body["timezone"], "Europe/Berlin");
}

#[tokio::test]
async fn a_time_zone_is_stored_as_the_iana_database_spells_it() {
    let app = TestApp::spawn().await;
    let (_, token) = known_user(&app, &[]).await;

    let reply = put(
        &app,
        "/api/v1/settings/user",
        json!({ "timezone": "america/argentina/buenos_aires", "language": "zh-hant-tw" }),
        &token,
    )
    .await;

    assert_ok(&reply);
    assert_eq!(reply.body["timezone"], "America/Argentina/Buenos_Aires");
    assert_eq!(reply.body["language"], "zh-Hant-TW");
}

#[tokio::test]
async fn every_invalid_preference_is_named_and_nothing_is_saved() {
    let app = TestApp::spawn().await;
    let (id, token) = known_user(&app, &[]).await;

    let all_wrong = put(
        &app,
        "/api/v1/settings/user",
        json!({
            "theme": "purple", "language": "english!", "timezone": "Mars/Phobos",
            "date_format": "yyyy/mm/dd", "settings_json": [1, 2],
        }),
        &token,
    )
    .await;

    assert_invalid(
        &all_wrong,
        &[
            "theme",
            "language",
            "date_format",
            "settings_json",
            "timezone",
        ],
    );
    for (body, field) in [
        (json!({ "theme": "Dark" }), "theme"),
        (json!({ "theme": 1 }), "theme"),
        (json!({ "timezone": "Mars/Phobos" }), "timezone"),
        (json!({ "timezone": "../../etc/passwd" }), "timezone"),
        (json!({ "timezone": "posix/Europe/Berlin" }), "timezone"),
        (json!({ "language": "english!" }), "language"),
        (json!({ "language": "en_GB" }), "language"),
        (json!({ "language": "de-1996-1996" }), "language"),
        (json!({ "date_format": "DD-MM-YYYY" }), "date_format"),
        (json!({ "settings_json": "dark mode" }), "settings_json"),
        (
            json!({ "settings_json": { "blob": "x".repeat(16 * 1024) } }),
            "settings_json",
        ),
        (json!({ "user_id": Uuid::now_v7() }), "user_id"),
        (json!({ "id": Uuid::now_v7() }), "id"),
        (
            json!({ "created_at": "2020-01-01T00:00:00Z" }),
            "created_at",
        ),
    ] {
        let reply = put(&app, "/api/v1/settings/user", body.clone(), &token).await;
        assert_invalid(&reply, &[field]);
        let other = put(&app, &format!("/api/v1/users/{id}/settings"), body, &token).await;
        assert_invalid(&other, &[field]);
    }
    assert_eq!(settings_rows(&app, id).await, 0);
}

#[tokio::test]
async fn settings_json_up_to_16_kib_is_kept_as_sent() {
    let app = TestApp::spawn().await;
    let (_, token) = known_user(&app, &[]).await;
    // {"blob":"xxx…"} is 11 bytes around the string.
    let settings = json!({ "blob": "x".repeat(16 * 1024 - 11) });

    let reply = put(
        &app,
        "/api/v1/settings/user",
        json!({ "settings_json": settings }),
        &token,
    )
    .await;

    assert_ok(&reply);
    assert_eq!(reply.body["settings_json"], settings);
}

#[tokio::test]
async fn another_users_settings_need_users_view_to_read_and_users_edit_to_change() {
    let app = TestApp::spawn().await;
    let (ada, _) = known_user(&app, &[]).await;
    let path = format!("/api/v1/users/{ada}/settings");
    let (_, nobody) = known_user(&app, &[]).await;
    let (_, viewer) = known_user(&app, &[(Module::Users, &[Action::View])]).await;
    let (_, editor) = known_user(&app, &[(Module::Users, &[Action::Edit])]).await;
    let (_, settings_admin) = known_user(&app, SETTINGS_ADMIN).await;

    for token in [&nobody, &editor, &settings_admin] {
        get(&app, &path, token).await.assert_problem(403);
    }
    for token in [&nobody, &viewer, &settings_admin] {
        put(&app, &path, json!({ "theme": "dark" }), token)
            .await
            .assert_problem(403);
    }
    assert_eq!(settings_rows(&app, ada).await, 0);

    let changed = put(&app, &path, json!({ "theme": "dark" }), &editor).await;
    let read = get(&app, &path, &viewer).await;

    assert_ok(&changed);
    assert_ok(&read);
    assert_eq!(read.body["user_id"], json!(ada));
    assert_eq!(read.body["theme"], "dark");
}

#[tokio::test]
async fn your_own_settings_are_yours_at_either_address() {
    let app = TestApp::spawn().await;
    let (id, token) = known_user(&app, &[]).await;
    let path = format!("/api/v1/users/{id}/settings");

    let saved = put(&app, &path, json!({ "date_format": "MMM D, YYYY" }), &token).await;

    assert_ok(&saved);
    let own = get(&app, "/api/v1/settings/user", &token).await;
    assert_eq!(own.body["date_format"], "MMM D, YYYY");
    assert_eq!(get(&app, &path, &token).await.body, own.body);
}

#[tokio::test]
async fn a_user_the_service_does_not_know_is_not_found_even_for_an_admin() {
    let app = TestApp::spawn().await;
    let (_, admin) = known_user(&app, USERS_ADMIN).await;
    let stranger = Uuid::now_v7();
    let path = format!("/api/v1/users/{stranger}/settings");

    get(&app, &path, &admin).await.assert_problem(404);
    put(&app, &path, json!({ "theme": "dark" }), &admin)
        .await
        .assert_problem(404);
    let malformed = get(&app, "/api/v1/users/not-a-uuid/settings", &admin).await;

    assert_invalid(&malformed, &["id"]);
    assert_eq!(settings_rows(&app, stranger).await, 0);
}

#[tokio::test]
async fn every_settings_route_needs_an_access_token() {
    let app = TestApp::spawn().await;
    let id = Uuid::now_v7();
    for (method, path, body) in [
        (Method::GET, "/api/v1/settings/system".to_string(), None),
        (
            Method::POST,
            "/api/v1/settings/system".to_string(),
            Some(json!({ "key": "x", "value": 1 })),
        ),
        (
            Method::GET,
            "/api/v1/settings/system/site_name".to_string(),
            None,
        ),
        (
            Method::PUT,
            "/api/v1/settings/system/site_name".to_string(),
            Some(json!({ "value": "x" })),
        ),
        (
            Method::GET,
            "/api/v1/settings/system/site_name/history".to_string(),
            None,
        ),
        (Method::GET, "/api/v1/settings/user".to_string(), None),
        (
            Method::PUT,
            "/api/v1/settings/user".to_string(),
            Some(json!({ "theme": "dark" })),
        ),
        (Method::GET, format!("/api/v1/users/{id}/settings"), None),
        (
            Method::PUT,
            format!("/api/v1/users/{id}/settings"),
            Some(json!({ "theme": "dark" })),
        ),
    ] {
        let reply = app.call(method.clone(), &path, body, None).await;
        reply.assert_problem(401);
        assert_eq!(
            reply.header("www-authenticate"),
            Some("Bearer"),
            "{method} {path}"
        );
        let forged = app
            .call(method.clone(), &path, None, Some("not.a.token"))
            .await;
        forged.assert_problem(401);
    }
}

// ------------------------------------------------------------------------ system settings

#[tokio::test]
async fn the_seeded_system_settings_are_listed_by_key_page_by_page() {
    let app = TestApp::spawn().await;
    let (_, token) = known_user(&app, &[(Module::Settings, &[Action::View])]).await;

    let mut keys = Vec::new();
    let mut path = "/api/v1/settings/system?limit=3".to_string();
    let mut pages = 0;
    loop {
        let reply = get(&app, &path, &token).await;
        assert_ok(&reply);
        pages += 1;
        for setting in reply.body["data"].as_array().unwrap() {
            keys.push(setting["key"].as_str().unwrap().to_string());
        }
        match reply.body["next_cursor"].as_str() {
            Some(cursor) => path = format!("/api/v1/settings/system?limit=3&cursor={cursor}"),
            None => break,
        }
    }

    assert_eq!(
        keys,
        [
            "default_language",
            "default_theme",
            "default_timezone",
            "features",
            "max_upload_mb",
            "registration_open",
            "site_name",
        ]
    );
    assert_eq!(pages, 3);
    let all = get(&app, "/api/v1/settings/system", &token).await;
    let max_upload = &all.body["data"][4];
    assert_eq!(max_upload["value"], 50);
    assert_eq!(max_upload["value_type"], "integer");
    assert_eq!(max_upload["version"], 1);
    assert_invalid(
        &get(&app, "/api/v1/settings/system?limit=0", &token).await,
        &["limit"],
    );
    assert_invalid(
        &get(&app, "/api/v1/settings/system?cursor=nonsense", &token).await,
        &["cursor"],
    );
}

#[tokio::test]
async fn a_system_setting_is_read_with_its_version_as_the_etag() {
    let app = TestApp::spawn().await;
    let (_, token) = known_user(&app, &[(Module::Settings, &[Action::View])]).await;

    let reply = get(&app, "/api/v1/settings/system/site_name", &token).await;

    assert_ok(&reply);
    assert_eq!(reply.header("etag"), Some("\"1\""));
    assert_eq!(reply.body["key"], "site_name");
    assert_eq!(reply.body["value"], "Lectern");
    assert_eq!(reply.body["value_type"], "string");
    assert!(reply.body["updated_by"].is_null());
    get(&app, "/api/v1/settings/system/no_such_key", &token)
        .await
        .assert_problem(404);
    get(&app, "/api/v1/settings/system/Not%20A%20Key", &token)
        .await
        .assert_problem(404);
}

#[tokio::test]
async fn creating_a_system_setting_answers_201_with_its_location_and_audits_it() {
    let app = TestApp::spawn().await;
    let (admin_id, admin) = known_user(&app, SETTINGS_ADMIN).await;

    let reply = post(
        &app,
        "/api/v1/settings/system",
        json!({
            "key": "features.comments", "value": true, "value_type": "boolean",
            "description": "Readers may comment on articles.",
        }),
        &admin,
    )
    .await;

    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
    assert_eq!(
        reply.header("location"),
        Some("/api/v1/settings/system/features.comments")
    );
    assert_eq!(reply.header("etag"), Some("\"1\""));
    assert_eq!(reply.body["value"], true);
    assert_eq!(reply.body["value_type"], "boolean");
    assert_eq!(reply.body["updated_by"], json!(admin_id));
    let read = get(&app, reply.header("location").unwrap(), &admin).await;
    assert_eq!(read.body, reply.body);
    let history = get(
        &app,
        "/api/v1/settings/system/features.comments/history",
        &admin,
    )
    .await;
    assert_ok(&history);
    let changes = history.body["data"].as_array().unwrap();
    assert_eq!(changes.len(), 1);
    assert_eq!(changes[0]["old_value"], Value::Null);
    assert_eq!(changes[0]["new_value"], true);
    assert_eq!(changes[0]["changed_by"], json!(admin_id));
    assert_eq!(changes[0]["setting_id"], reply.body["id"]);
    let event: (String, Value, Option<Uuid>) = {
        let row = app
            .db()
            .await
            .query_one(
                "SELECT source, data, actor_id FROM settings.outbox WHERE type = 'setting.created'",
                &[],
            )
            .await
            .unwrap();
        (row.get(0), row.get(1), row.get(2))
    };
    assert_eq!(event.0, "lectern.settings");
    assert_eq!(event.1["key"], "features.comments");
    assert_eq!(event.1["value"], true);
    assert_eq!(event.2, Some(admin_id));
}

#[tokio::test]
async fn an_untyped_setting_takes_any_value_but_null() {
    let app = TestApp::spawn().await;
    let (_, admin) = known_user(&app, SETTINGS_ADMIN).await;
    let created = post(
        &app,
        "/api/v1/settings/system",
        json!({ "key": "homepage.hero", "value": { "title": "Welcome" } }),
        &admin,
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    assert!(created.body["value_type"].is_null());

    let changed = put(
        &app,
        "/api/v1/settings/system/homepage.hero",
        json!({ "value": ["any", "shape"] }),
        &admin,
    )
    .await;
    let nulled = put(
        &app,
        "/api/v1/settings/system/homepage.hero",
        json!({ "value": null }),
        &admin,
    )
    .await;

    assert_ok(&changed);
    assert_eq!(changed.body["value"], json!(["any", "shape"]));
    assert_invalid(&nulled, &["value"]);
}

#[tokio::test]
async fn a_key_that_exists_cannot_be_created_again() {
    let app = TestApp::spawn().await;
    let (_, admin) = known_user(&app, SETTINGS_ADMIN).await;

    let reply = post(
        &app,
        "/api/v1/settings/system",
        json!({ "key": "site_name", "value": "Another" }),
        &admin,
    )
    .await;

    reply.assert_problem(409);
    let site_name = get(&app, "/api/v1/settings/system/site_name", &admin).await;
    assert_eq!(site_name.body["value"], "Lectern");
}

#[tokio::test]
async fn creating_a_system_setting_names_every_invalid_field() {
    let app = TestApp::spawn().await;
    let (_, admin) = known_user(&app, SETTINGS_ADMIN).await;

    for (body, fields) in [
        (json!({ "key": "Site Name", "value": 1 }), vec!["key"]),
        (json!({ "key": "a..b", "value": 1 }), vec!["key"]),
        (json!({ "key": "k".repeat(101), "value": 1 }), vec!["key"]),
        (
            json!({ "key": "x", "value": 1, "value_type": "date" }),
            vec!["value_type"],
        ),
        (
            json!({ "key": "x", "value": "50", "value_type": "integer" }),
            vec!["value"],
        ),
        (
            json!({ "key": "x", "value": 2.5, "value_type": "integer" }),
            vec!["value"],
        ),
        (json!({ "key": "x", "value": null }), vec!["value"]),
        (json!({ "key": "x" }), vec!["value"]),
        (
            json!({ "key": "x", "value": 1, "description": " " }),
            vec!["description"],
        ),
        (
            json!({ "key": "BAD", "value": null, "value_type": "text" }),
            vec!["key", "value_type", "value"],
        ),
        (
            json!({ "key": "x", "value": 1, "id": Uuid::now_v7() }),
            vec!["id"],
        ),
        (
            json!({ "key": "x", "value": 1, "version": 7 }),
            vec!["version"],
        ),
        (
            json!({ "key": "default_theme_x", "value": 1, "updated_by": Uuid::now_v7() }),
            vec!["updated_by"],
        ),
    ] {
        let reply = post(&app, "/api/v1/settings/system", body.clone(), &admin).await;
        assert_invalid(&reply, &fields);
    }
    let created: i64 = app
        .db()
        .await
        .query_one(
            "SELECT count(*) FROM settings.system_settings WHERE key NOT IN
             ('site_name', 'default_language', 'default_timezone', 'default_theme',
              'registration_open', 'features', 'max_upload_mb')",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(created, 0);
}

#[tokio::test]
async fn an_update_must_match_the_declared_type() {
    let app = TestApp::spawn().await;
    let (_, admin) = known_user(&app, SETTINGS_ADMIN).await;

    for (key, value) in [
        ("max_upload_mb", json!("100")),
        ("max_upload_mb", json!(2.5)),
        ("registration_open", json!("yes")),
        ("features", json!([])),
        ("site_name", json!(42)),
    ] {
        let reply = put(
            &app,
            &format!("/api/v1/settings/system/{key}"),
            json!({ "value": value }),
            &admin,
        )
        .await;
        assert_invalid(&reply, &["value"]);
    }
    let reply = put(
        &app,
        "/api/v1/settings/system/max_upload_mb",
        json!({ "value": 100, "description": "Raised for video." }),
        &admin,
    )
    .await;

    assert_ok(&reply);
    assert_eq!(reply.body["value"], 100);
    assert_eq!(reply.body["version"], 2);
    assert_eq!(reply.body["description"], "Raised for video.");
    assert_eq!(reply.header("etag"), Some("\"2\""));
    let cleared = put(
        &app,
        "/api/v1/settings/system/max_upload_mb",
        json!({ "value": 100, "description": null }),
        &admin,
    )
    .await;
    assert!(cleared.body["description"].is_null());
    let kept = put(
        &app,
        "/api/v1/settings/system/site_name",
        json!({ "value": "Lectern Academy" }),
        &admin,
    )
    .await;
    assert_eq!(
        kept.body["description"],
        "The name the platform shows itself under."
    );
    put(
        &app,
        "/api/v1/settings/system/no_such_key",
        json!({ "value": 1 }),
        &admin,
    )
    .await
    .assert_problem(404);
}

#[tokio::test]
async fn the_default_settings_must_hold_values_the_service_can_use() {
    let app = TestApp::spawn().await;
    let (_, admin) = known_user(&app, SETTINGS_ADMIN).await;

    for (key, value) in [
        ("default_theme", json!("purple")),
        ("default_language", json!("english!")),
        ("default_timezone", json!("Mars/Phobos")),
    ] {
        let reply = put(
            &app,
            &format!("/api/v1/settings/system/{key}"),
            json!({ "value": value }),
            &admin,
        )
        .await;
        assert_invalid(&reply, &["value"]);
    }
    let language = put(
        &app,
        "/api/v1/settings/system/default_language",
        json!({ "value": "pt-br" }),
        &admin,
    )
    .await;
    assert_eq!(language.body["value"], "pt-BR");
}

#[tokio::test]
async fn a_stale_if_match_is_refused_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let (_, admin) = known_user(&app, SETTINGS_ADMIN).await;
    let path = "/api/v1/settings/system/site_name";

    let first = put_if_match(&app, path, json!({ "value": "First" }), &admin, "\"1\"").await;
    let stale = put_if_match(&app, path, json!({ "value": "Second" }), &admin, "\"1\"").await;
    let weak = put_if_match(&app, path, json!({ "value": "Third" }), &admin, "W/\"2\"").await;
    let garbage = put_if_match(&app, path, json!({ "value": "Fourth" }), &admin, "soon").await;

    assert_ok(&first);
    assert_eq!(first.header("etag"), Some("\"2\""));
    stale.assert_problem(412);
    assert_ok(&weak);
    assert_eq!(weak.body["version"], 3);
    garbage.assert_problem(400);
    let now = get(&app, path, &admin).await;
    assert_eq!(now.body["value"], "Third");
    let changes: i64 = app
        .db()
        .await
        .query_one(
            "SELECT count(*) FROM settings.system_setting_changes WHERE key = 'site_name'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(changes, 2, "the refused updates left no audit rows");
}

#[tokio::test]
async fn every_update_is_audited_and_published_with_the_old_and_new_value() {
    let app = TestApp::spawn().await;
    let (admin_id, admin) = known_user(&app, SETTINGS_ADMIN).await;
    let path = "/api/v1/settings/system/max_upload_mb";
    for value in [64, 128] {
        assert_ok(&put(&app, path, json!({ "value": value }), &admin).await);
    }

    let first_page = get(&app, &format!("{path}/history?limit=1"), &admin).await;
    let cursor = first_page.body["next_cursor"].as_str().unwrap().to_string();
    let second_page = get(
        &app,
        &format!("{path}/history?limit=1&cursor={cursor}"),
        &admin,
    )
    .await;

    assert_ok(&first_page);
    assert_eq!(first_page.body["data"][0]["old_value"], 64);
    assert_eq!(first_page.body["data"][0]["new_value"], 128);
    assert_eq!(first_page.body["data"][0]["changed_by"], json!(admin_id));
    assert_eq!(first_page.body["data"][0]["key"], "max_upload_mb");
    assert_eq!(second_page.body["data"][0]["old_value"], 50);
    assert_eq!(second_page.body["data"][0]["new_value"], 64);
    assert!(second_page.body["next_cursor"].is_null());
    let events: Vec<Value> = app
        .db()
        .await
        .query(
            "SELECT data FROM settings.outbox WHERE type = 'setting.updated' ORDER BY occurred_at",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(events.len(), 2);
    assert_eq!(events[1]["key"], "max_upload_mb");
    assert_eq!(events[1]["old_value"], 64);
    assert_eq!(events[1]["new_value"], 128);
    assert_eq!(events[1]["version"], 3);
    get(&app, "/api/v1/settings/system/nothing_here/history", &admin)
        .await
        .assert_problem(404);
}

#[tokio::test]
async fn system_settings_need_the_settings_permissions() {
    let app = TestApp::spawn().await;
    let (_, nobody) = known_user(&app, &[]).await;
    let (_, users_admin) = known_user(&app, USERS_ADMIN).await;
    let (_, reader) = known_user(&app, &[(Module::Settings, &[Action::View])]).await;

    for token in [&nobody, &users_admin] {
        for path in [
            "/api/v1/settings/system",
            "/api/v1/settings/system/site_name",
            "/api/v1/settings/system/site_name/history",
        ] {
            get(&app, path, token).await.assert_problem(403);
        }
    }
    for token in [&nobody, &users_admin, &reader] {
        put(
            &app,
            "/api/v1/settings/system/site_name",
            json!({ "value": "Mine now" }),
            token,
        )
        .await
        .assert_problem(403);
        post(
            &app,
            "/api/v1/settings/system",
            json!({ "key": "mine", "value": true }),
            token,
        )
        .await
        .assert_problem(403);
    }
    assert_ok(&get(&app, "/api/v1/settings/system/site_name", &reader).await);
    let site_name = get(&app, "/api/v1/settings/system/site_name", &reader).await;
    assert_eq!(site_name.body["value"], "Lectern");
}

#[tokio::test]
async fn an_admin_signed_in_for_real_manages_system_settings() {
    let app = TestApp::spawn().await;
    let admin = app.admin("root").await;
    let viewer = app.viewer("reader").await;

    let changed = put(
        &app,
        "/api/v1/settings/system/registration_open",
        json!({ "value": false }),
        &admin.access_token,
    )
    .await;
    let refused = get(
        &app,
        "/api/v1/settings/system/registration_open",
        &viewer.access_token,
    )
    .await;

    assert_ok(&changed);
    assert_eq!(changed.body["value"], false);
    refused.assert_problem(403);
}

// ------------------------------------------------------------------------ the worker

#[tokio::test]
async fn a_signup_reaches_the_settings_worker_through_the_bus() {
    let app = TestApp::spawn().await;
    let email = app.email("grace");
    assert_eq!(app.signup(&email).await.status, StatusCode::ACCEPTED);
    let id = app.user_id(&email).await;

    let delivered = app.drain_queue(SETTINGS_QUEUE).await;

    assert_eq!(
        delivered, 1,
        "exactly user.created reaches the settings queue"
    );
    assert_eq!(
        count(
            &app,
            "SELECT count(*) FROM settings.known_users WHERE user_id = $1",
            id
        )
        .await,
        1
    );
    let (_, admin) = known_user(&app, USERS_ADMIN).await;
    assert_ok(&get(&app, &format!("/api/v1/users/{id}/settings"), &admin).await);
}

#[tokio::test]
async fn an_invited_user_is_known_to_the_settings_service() {
    let app = TestApp::spawn().await;
    let (_, admin) = known_user(&app, USERS_ADMIN).await;
    let id = Uuid::now_v7();
    let path = format!("/api/v1/users/{id}/settings");
    get(&app, &path, &admin).await.assert_problem(404);

    app.stack
        .settings_worker
        .apply(&user_event("lectern.users", "user.invited", id))
        .await
        .unwrap();

    let saved = put(&app, &path, json!({ "language": "fr-CA" }), &admin).await;
    assert_ok(&saved);
    assert_eq!(saved.body["language"], "fr-CA");
}

#[tokio::test]
async fn user_deleted_erases_the_users_settings_for_good() {
    let app = TestApp::spawn().await;
    let (id, token) = known_user(&app, &[]).await;
    let (_, admin) = known_user(&app, USERS_ADMIN).await;
    assert_ok(
        &put(
            &app,
            "/api/v1/settings/user",
            json!({ "theme": "dark", "settings_json": { "nickname": "ada" } }),
            &token,
        )
        .await,
    );
    let deleted = user_event("lectern.users", "user.deleted", id);

    app.stack.settings_worker.apply(&deleted).await.unwrap();

    assert_eq!(settings_rows(&app, id).await, 0);
    assert_eq!(
        count(
            &app,
            "SELECT count(*) FROM settings.known_users WHERE user_id = $1",
            id
        )
        .await,
        0
    );
    let path = format!("/api/v1/users/{id}/settings");
    get(&app, &path, &admin).await.assert_problem(404);
    // The deleted account's access token lives on for a few minutes: it writes nothing back.
    put(
        &app,
        "/api/v1/settings/user",
        json!({ "theme": "light" }),
        &token,
    )
    .await
    .assert_problem(404);
    get(&app, "/api/v1/settings/user", &token)
        .await
        .assert_problem(404);
    assert_eq!(settings_rows(&app, id).await, 0);
    // A late or replayed user.created does not bring the account back.
    app.stack
        .settings_worker
        .apply(&user_event("lectern.auth", "user.created", id))
        .await
        .unwrap();
    get(&app, &path, &admin).await.assert_problem(404);
}

#[tokio::test]
async fn the_settings_worker_applies_each_event_once() {
    let app = TestApp::spawn().await;
    let id = Uuid::now_v7();
    let created = user_event("lectern.auth", "user.created", id);
    let deleted = user_event("lectern.users", "user.deleted", id);

    for event in [&created, &created, &deleted, &deleted] {
        app.stack.settings_worker.apply(event).await.unwrap();
    }

    let processed: i64 = app
        .db()
        .await
        .query_one(
            "SELECT count(*) FROM settings.processed_events WHERE event_id = ANY ($1)",
            &[&vec![created.id, deleted.id]],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(processed, 2);
    assert_eq!(
        count(
            &app,
            "SELECT count(*) FROM settings.erased_users WHERE user_id = $1",
            id
        )
        .await,
        1
    );
    assert_eq!(
        count(
            &app,
            "SELECT count(*) FROM settings.known_users WHERE user_id = $1",
            id
        )
        .await,
        0
    );
}

#[tokio::test]
async fn a_message_the_worker_cannot_read_is_reported_as_failed_alone() {
    let app = TestApp::spawn().await;
    let id = Uuid::now_v7();
    let good = user_event("lectern.auth", "user.created", id);
    let body = json!({
        "version": "0", "id": Uuid::new_v4(), "detail-type": good.type_, "source": good.source,
        "account": "000000000000", "time": good.occurred_at, "region": "us-east-1", "resources": [],
        "detail": good,
    })
    .to_string();
    let without_user = user_event("lectern.users", "user.deleted", id);
    let without_user = Envelope {
        data: json!({ "id": id }),
        ..without_user
    };
    let bad_body = json!({ "detail-type": "user.deleted", "detail": without_user }).to_string();
    let mut event = SqsEvent::default();
    for (message_id, body) in [("good", body), ("bad", bad_body), ("junk", "{".to_string())] {
        let mut record = SqsMessage::default();
        record.message_id = Some(message_id.into());
        record.body = Some(body);
        event.records.push(record);
    }

    let response = app.stack.settings_worker.handle_batch(event).await;

    let failed: Vec<&str> = response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.as_str())
        .collect();
    assert_eq!(failed, ["bad", "junk"]);
    assert_eq!(
        count(
            &app,
            "SELECT count(*) FROM settings.known_users WHERE user_id = $1",
            id
        )
        .await,
        1
    );
}
