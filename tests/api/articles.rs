//! Articles over HTTP: the editorial status table and who may make each move, authors versus
//! editors versus readers on every article route, `If-Match`, the version history and
//! restore, typed blocks and their validation, sanitizing, scheduled publishing under
//! overlapping scheduler runs, SEO settings, tags and slugs.
//!
//! Users get their access the way an operator gives it: system roles (`Editor`, `Admin`), or
//! a custom role created with `POST /roles` and assigned with `PUT /users/{id}/roles`.

use std::time::Duration;

use axum::{
    body::Body,
    http::{Method, Request, StatusCode},
};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::{
    helpers::{Reply, Session, TestApp},
    roles::{created_id, id_named},
};

const ARTICLES: &str = "/api/v1/articles";

/// Every status, and the order an article first goes through them.
const STATUSES: [&str; 5] = [
    "draft",
    "pending_review",
    "approved",
    "published",
    "archived",
];

/// The moves the publishing module's table allows; every other (from, to) is 409.
const ALLOWED: [(&str, &str); 8] = [
    ("draft", "pending_review"),
    ("pending_review", "approved"),
    ("pending_review", "draft"),
    ("approved", "published"),
    ("approved", "draft"),
    ("published", "archived"),
    ("published", "draft"),
    ("archived", "draft"),
];

// ------------------------------------------------------------------------------ helpers

/// Any request, with an optional token, body and `If-Match`.
async fn send(
    app: &TestApp,
    method: Method,
    path: &str,
    body: Option<Value>,
    token: Option<&str>,
    if_match: Option<&str>,
) -> Reply {
    let mut builder = Request::builder()
        .method(method)
        .uri(path)
        .header("user-agent", "lectern-tests/1.0");
    if let Some(token) = token {
        builder = builder.header("authorization", format!("Bearer {token}"));
    }
    if let Some(etag) = if_match {
        builder = builder.header("if-match", etag);
    }
    let request = match body {
        Some(body) => builder
            .header("content-type", "application/json")
            .body(Body::from(body.to_string())),
        None => builder.body(Body::empty()),
    }
    .unwrap();
    app.send_raw(request, [10, 0, 0, 1]).await
}

fn article_path(id: &str) -> String {
    format!("{ARTICLES}/{id}")
}

/// Creates an article as `token` and answers it, after checking it was created.
async fn create(app: &TestApp, token: &str, body: Value) -> Value {
    let reply = app.post_as(ARTICLES, body, token).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
    reply.body
}

/// Creates an article titled `title` as `token` and answers its id.
async fn new_article(app: &TestApp, token: &str, title: &str) -> String {
    id_of(&create(app, token, json!({ "title": title })).await)
}

fn id_of(article: &Value) -> String {
    article["id"].as_str().expect("an id").to_string()
}

async fn get_article(app: &TestApp, id: &str, token: Option<&str>) -> Reply {
    app.get(&article_path(id), token).await
}

/// The article as `token` sees it, after checking it is visible.
async fn article(app: &TestApp, id: &str, token: &str) -> Value {
    let reply = get_article(app, id, Some(token)).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    reply.body
}

async fn version_of(app: &TestApp, id: &str, token: &str) -> i64 {
    article(app, id, token).await["version"].as_i64().unwrap()
}

async fn set_status(app: &TestApp, id: &str, status: &str, token: &str) -> Reply {
    app.put(
        &format!("{ARTICLES}/{id}/status"),
        json!({ "status": status }),
        token,
    )
    .await
}

async fn publish(app: &TestApp, id: &str, token: &str) -> Reply {
    send(
        app,
        Method::POST,
        &format!("{ARTICLES}/{id}/publish"),
        None,
        Some(token),
        None,
    )
    .await
}

async fn schedule(app: &TestApp, id: &str, at: Value, token: &str) -> Reply {
    app.post_as(
        &format!("{ARTICLES}/{id}/schedule"),
        json!({ "scheduled_publish_at": at }),
        token,
    )
    .await
}

/// Moves a new draft along draft → pending_review → approved → published → archived until it
/// is `target`, checking every step.
async fn drive(app: &TestApp, id: &str, target: &str, token: &str) {
    let steps = STATUSES
        .iter()
        .position(|s| *s == target)
        .expect("a known status");
    for status in &STATUSES[1..=steps] {
        let reply = set_status(app, id, status, token).await;
        assert_eq!(
            reply.status,
            StatusCode::OK,
            "moving to {status}: {}",
            reply.text
        );
        assert_eq!(reply.body["status"], *status);
    }
}

/// A custom role holding exactly `permissions`, created by `admin` with `POST /roles`.
async fn custom_role(app: &TestApp, admin: &Session, name: &str, permissions: &[&str]) -> Uuid {
    let mut ids = Vec::new();
    for permission in permissions {
        ids.push(id_named(app, "permissions", permission).await);
    }
    created_id(
        &app.post_as(
            "/api/v1/roles",
            json!({ "name": name, "permission_ids": ids }),
            &admin.access_token,
        )
        .await,
    )
    .parse()
    .unwrap()
}

/// A signed-up user holding the Viewer role and `role`, with a token that carries both.
async fn holder(app: &TestApp, admin: &Session, name: &str, role: Uuid) -> Session {
    let session = app.viewer(name).await;
    let user_id = app.user_id(&session.email).await;
    let viewer_role = id_named(app, "roles", "Viewer").await;
    let assigned = app
        .put(
            &format!("/api/v1/users/{user_id}/roles"),
            json!({ "role_ids": [viewer_role, role] }),
            &admin.access_token,
        )
        .await;
    assert_eq!(assigned.status, StatusCode::OK, "{}", assigned.text);
    app.settle().await;
    app.refresh(&session).await
}

/// An author: a Viewer who also holds a role with articles.create only.
async fn new_author(app: &TestApp, admin: &Session, name: &str) -> Session {
    let role = custom_role(app, admin, &format!("Author {name}"), &["articles.create"]).await;
    holder(app, admin, name, role).await
}

/// Event types in the content outbox, oldest first.
async fn content_events(app: &TestApp) -> Vec<String> {
    app.db()
        .await
        .query(
            "SELECT type FROM content.outbox ORDER BY occurred_at, id",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

/// The data of every `kind` event the content outbox holds about article `id`.
async fn events_about(app: &TestApp, kind: &str, id: &str) -> Vec<Value> {
    app.db()
        .await
        .query(
            "SELECT data FROM content.outbox
             WHERE type = $1 AND (data->>'article_id' = $2 OR data->'article'->>'article_id' = $2)
             ORDER BY occurred_at, id",
            &[&kind, &id],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

#[track_caller]
fn assert_status(reply: &Reply, status: StatusCode) {
    assert_eq!(reply.status, status, "{}", reply.text);
}

#[track_caller]
fn assert_invalid(reply: &Reply, fields: &[&str]) {
    reply.assert_problem(422);
    assert_eq!(reply.error_fields(), fields, "{}", reply.text);
}

#[track_caller]
fn assert_etag(reply: &Reply, version: i64) {
    assert_eq!(
        reply.header("etag"),
        Some(format!("\"{version}\"").as_str()),
        "{}",
        reply.text
    );
}

fn block_contents(blocks: &Value) -> Vec<String> {
    blocks
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["content"].as_str().unwrap().to_string())
        .collect()
}

fn block_ids(blocks: &Value) -> Vec<String> {
    blocks
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["id"].as_str().unwrap().to_string())
        .collect()
}

fn sort_orders(blocks: &Value) -> Vec<i64> {
    blocks
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["sort_order"].as_i64().unwrap())
        .collect()
}

fn paragraph(text: &str) -> Value {
    json!({ "block_type": "paragraph", "content": text })
}

/// A time `seconds` from now, to the millisecond (what PostgreSQL keeps exactly).
fn in_seconds(seconds: i64) -> DateTime<Utc> {
    let at = Utc::now() + chrono::Duration::seconds(seconds);
    DateTime::from_timestamp_millis(at.timestamp_millis()).unwrap()
}

fn time_of(value: &Value) -> DateTime<Utc> {
    value
        .as_str()
        .unwrap_or_else(|| panic!("{value} is not a time"))
        .parse()
        .unwrap()
}

// ------------------------------------------------------------------ the status workflow

#[tokio::test]
async fn every_status_move_answers_200_when_the_table_allows_it_and_409_otherwise() {
    let app = TestApp::spawn().await;
    let admin = app.admin("ada").await;
    let token = admin.access_token.as_str();

    let mut mismatches = Vec::new();
    let mut published_ids = Vec::new();
    for from in STATUSES {
        for to in STATUSES {
            let id = new_article(&app, token, &format!("From {from} to {to}")).await;
            drive(&app, &id, from, token).await;
            let before = version_of(&app, &id, token).await;
            let allowed = ALLOWED.contains(&(from, to));

            let reply = set_status(&app, &id, to, token).await;

            let expected = if allowed {
                StatusCode::OK
            } else {
                StatusCode::CONFLICT
            };
            let after = article(&app, &id, token).await;
            if reply.status != expected {
                mismatches.push(format!(
                    "{from} → {to}: expected {expected}, got {} {}",
                    reply.status, reply.text
                ));
            } else if allowed {
                if reply.body["status"] != to || reply.body["version"] != before + 1 {
                    mismatches.push(format!(
                        "{from} → {to}: answered status {} version {} (expected {to}, {})",
                        reply.body["status"],
                        reply.body["version"],
                        before + 1
                    ));
                }
                if to == "published" {
                    published_ids.push(id.clone());
                }
            } else if reply.body["status"] != 409
                || after["status"] != from
                || after["version"] != before
            {
                mismatches.push(format!(
                    "{from} → {to}: the refusal is not a 409 problem or changed the article: {} / now {} v{}",
                    reply.text, after["status"], after["version"]
                ));
            }
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} of 25 moves answered wrongly:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
    // A status that does not exist is not a move at all.
    let id = new_article(&app, token, "Going nowhere").await;
    let unknown = set_status(&app, &id, "deleted", token).await;
    assert_invalid(&unknown, &["status"]);
    assert_eq!(version_of(&app, &id, token).await, 1);

    // Every move emitted its event, with the article and the move.
    app.settle().await;
    let events = content_events(&app).await;
    for kind in [
        "article.created",
        "article.submitted",
        "article.approved",
        "article.rejected",
        "article.published",
        "article.unpublished",
        "article.archived",
        "article.unarchived",
    ] {
        assert!(events.iter().any(|e| e == kind), "no {kind} in {events:?}");
    }
    for id in &published_ids {
        let published = events_about(&app, "article.published", id).await;
        assert_eq!(published.len(), 1, "{published:?}");
        assert_eq!(published[0]["from"], "approved");
        assert_eq!(published[0]["to"], "published");
        assert_eq!(published[0]["article"]["status"], "published");
    }
}

#[tokio::test]
async fn publish_answers_200_from_approved_with_published_at_and_409_from_draft() {
    let app = TestApp::spawn().await;
    let admin = app.admin("ada").await;
    let token = admin.access_token.as_str();
    let draft = new_article(&app, token, "Still a draft").await;
    let approved = new_article(&app, token, "Ready to go").await;
    drive(&app, &approved, "approved", token).await;
    assert!(article(&app, &approved, token).await["published_at"].is_null());

    let refused = publish(&app, &draft, token).await;
    let published = publish(&app, &approved, token).await;

    refused.assert_problem(409);
    assert_eq!(article(&app, &draft, token).await["status"], "draft");
    assert_status(&published, StatusCode::OK);
    assert_eq!(published.body["status"], "published");
    let at = time_of(&published.body["published_at"]);
    assert!(
        (Utc::now() - at).num_seconds().abs() < 60,
        "published_at is now: {at}"
    );
    assert_etag(&published, published.body["version"].as_i64().unwrap());
    // A note goes into the version's summary.
    let noted = new_article(&app, token, "With a note").await;
    drive(&app, &noted, "approved", token).await;
    let with_note = app
        .post_as(
            &format!("{ARTICLES}/{noted}/publish"),
            json!({ "comment": "Launch day" }),
            token,
        )
        .await;
    assert_status(&with_note, StatusCode::OK);
    let history = app
        .get(&format!("{ARTICLES}/{noted}/versions"), Some(token))
        .await;
    assert_status(&history, StatusCode::OK);
    let summary = history.body["data"][0]["change_summary"].as_str().unwrap();
    assert!(summary.contains("Launch day"), "{summary}");
    app.settle().await;
    assert_eq!(
        events_about(&app, "article.published", &approved)
            .await
            .len(),
        1
    );
    assert!(
        events_about(&app, "article.published", &draft)
            .await
            .is_empty()
    );
}

#[tokio::test]
async fn approving_publishing_and_scheduling_need_articles_publish() {
    let app = TestApp::spawn().await;
    let admin = app.admin("ada").await;
    let editor = app.user_with_role("eve", "Editor").await;
    let writer_role = custom_role(
        &app,
        &admin,
        "Writer",
        &["articles.create", "articles.edit"],
    )
    .await;
    let writer = holder(&app, &admin, "walt", writer_role).await;
    let author = new_author(&app, &admin, "alan").await;
    let id = new_article(&app, &author.access_token, "Up for review").await;
    assert_status(
        &set_status(&app, &id, "pending_review", &author.access_token).await,
        StatusCode::OK,
    );

    // articles.edit is not enough to approve...
    set_status(&app, &id, "approved", &writer.access_token)
        .await
        .assert_problem(403);
    assert_eq!(
        article(&app, &id, &editor.access_token).await["status"],
        "pending_review"
    );
    // ...an editor (articles.publish) approves.
    let approved = set_status(&app, &id, "approved", &editor.access_token).await;
    assert_status(&approved, StatusCode::OK);
    assert_eq!(approved.body["status"], "approved");

    // Nor to publish, reject, or schedule an approved article.
    publish(&app, &id, &writer.access_token)
        .await
        .assert_problem(403);
    set_status(&app, &id, "published", &writer.access_token)
        .await
        .assert_problem(403);
    set_status(&app, &id, "draft", &writer.access_token)
        .await
        .assert_problem(403);
    schedule(
        &app,
        &id,
        json!(in_seconds(3600).to_rfc3339()),
        &writer.access_token,
    )
    .await
    .assert_problem(403);
    let unchanged = article(&app, &id, &editor.access_token).await;
    assert_eq!(unchanged["status"], "approved");
    assert!(unchanged["scheduled_publish_at"].is_null());

    // The editor schedules and publishes.
    let scheduled = schedule(
        &app,
        &id,
        json!(in_seconds(3600).to_rfc3339()),
        &editor.access_token,
    )
    .await;
    assert_status(&scheduled, StatusCode::OK);
    let published = publish(&app, &id, &editor.access_token).await;
    assert_status(&published, StatusCode::OK);
    assert_eq!(published.body["status"], "published");
    assert!(published.body["published_at"].is_string());
    assert!(
        published.body["scheduled_publish_at"].is_null(),
        "publishing clears the schedule"
    );

    // articles.edit submits someone else's draft (it sees every draft).
    let other = new_article(&app, &author.access_token, "Another draft").await;
    assert_status(
        &set_status(&app, &other, "pending_review", &writer.access_token).await,
        StatusCode::OK,
    );
}

#[tokio::test]
async fn authors_submit_and_withdraw_their_own_drafts_but_do_not_approve() {
    let app = TestApp::spawn().await;
    let admin = app.admin("ada").await;
    let author = new_author(&app, &admin, "alan").await;
    let token = author.access_token.as_str();
    let id = new_article(&app, token, "My first piece").await;

    let submitted = set_status(&app, &id, "pending_review", token).await;
    assert_status(&submitted, StatusCode::OK);
    assert_eq!(submitted.body["status"], "pending_review");
    let withdrawn = set_status(&app, &id, "draft", token).await;
    assert_status(&withdrawn, StatusCode::OK);
    assert_eq!(withdrawn.body["status"], "draft");
    assert_status(
        &set_status(&app, &id, "pending_review", token).await,
        StatusCode::OK,
    );

    set_status(&app, &id, "approved", token)
        .await
        .assert_problem(403);
    publish(&app, &id, token).await.assert_problem(409);
    assert_eq!(article(&app, &id, token).await["status"], "pending_review");

    // Once approved, withdrawing (approved → draft) is a reviewer's rejection, not the author's.
    assert_status(
        &set_status(&app, &id, "approved", &admin.access_token).await,
        StatusCode::OK,
    );
    set_status(&app, &id, "draft", token)
        .await
        .assert_problem(403);
    publish(&app, &id, token).await.assert_problem(403);
    assert_eq!(article(&app, &id, token).await["status"], "approved");

    // Nobody else's draft is an author's to submit: they do not even see it.
    let stranger = new_author(&app, &admin, "olga").await;
    let theirs = new_article(&app, &stranger.access_token, "Not yours").await;
    set_status(&app, &theirs, "pending_review", token)
        .await
        .assert_problem(404);
}

// ------------------------------------------------------------- who may do what, per route

#[tokio::test]
async fn creating_an_article_needs_articles_create_and_a_token() {
    let app = TestApp::spawn().await;
    let admin = app.admin("ada").await;
    let viewer = app.viewer("vic").await;
    let author = new_author(&app, &admin, "alan").await;
    let body = json!({ "title": "Hello" });

    app.post(ARTICLES, body.clone()).await.assert_problem(401);
    app.post_as(ARTICLES, body.clone(), &viewer.access_token)
        .await
        .assert_problem(403);
    let created = app.post_as(ARTICLES, body, &author.access_token).await;

    let id = created_id(&created);
    assert_eq!(
        created.header("location"),
        Some(format!("/api/v1/articles/{id}").as_str())
    );
    assert_etag(&created, 1);
    assert_eq!(created.body["status"], "draft");
    assert_eq!(created.body["visibility"], "public");
    assert_eq!(created.body["version"], 1);
    assert_eq!(
        created.body["author_id"],
        app.user_id(&author.email).await.to_string()
    );
    assert_eq!(created.body["slug"], "hello");
    assert!(created.body["published_at"].is_null());
    // Only the author's own article was created.
    let count: i64 = app
        .db()
        .await
        .query_one("SELECT count(*) FROM content.articles", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(count, 1);
}

/// The writes of an article's content, each as (method, path suffix, body).
fn content_writes() -> Vec<(&'static str, &'static str, Value)> {
    vec![
        ("PUT", "", json!({ "title": "Changed title" })),
        (
            "PUT",
            "/blocks",
            json!({ "blocks": [paragraph("Changed body")] }),
        ),
        ("PUT", "/seo", json!({ "meta_title": "Changed meta" })),
        ("PUT", "/tags", json!({ "tags": ["Rust"] })),
    ]
}

/// Tries every content write on article `id` as `token`; answers the mismatches.
async fn try_writes(
    app: &TestApp,
    who: &str,
    id: &str,
    token: &str,
    expected: StatusCode,
) -> Vec<String> {
    let mut mismatches = Vec::new();
    for (method, suffix, body) in content_writes() {
        let path = format!("{ARTICLES}/{id}{suffix}");
        let reply = send(
            app,
            method.parse().unwrap(),
            &path,
            Some(body),
            Some(token),
            None,
        )
        .await;
        if reply.status != expected {
            mismatches.push(format!(
                "{who}: {method} {path}: expected {expected}, got {} {}",
                reply.status, reply.text
            ));
        }
    }
    mismatches
}

#[tokio::test]
async fn authors_change_their_own_drafts_and_editors_change_any_article() {
    let app = TestApp::spawn().await;
    let admin = app.admin("ada").await;
    let editor = app.user_with_role("eve", "Editor").await;
    let role = custom_role(&app, &admin, "Author", &["articles.create"]).await;
    let author = holder(&app, &admin, "alan", role).await;
    let other = holder(&app, &admin, "olga", role).await;
    // The tag the writes set exists, so authors (without tags.create) may set it.
    created_id(
        &app.post_as(
            "/api/v1/tags",
            json!({ "name": "Rust" }),
            &admin.access_token,
        )
        .await,
    );
    let mine = new_article(&app, &author.access_token, "Mine").await;
    let theirs = new_article(&app, &other.access_token, "Theirs").await;
    let published = new_article(&app, &other.access_token, "Theirs, published").await;
    drive(&app, &published, "published", &admin.access_token).await;

    let mut mismatches = Vec::new();
    // Own draft: every write.
    mismatches.extend(
        try_writes(
            &app,
            "author, own draft",
            &mine,
            &author.access_token,
            StatusCode::OK,
        )
        .await,
    );
    // Someone else's draft does not exist for an author (drafts are for their author and
    // editors, and what a caller cannot see is 404); an editor changes it.
    mismatches.extend(
        try_writes(
            &app,
            "author, another's draft",
            &theirs,
            &author.access_token,
            StatusCode::NOT_FOUND,
        )
        .await,
    );
    mismatches.extend(
        try_writes(
            &app,
            "editor, another's draft",
            &theirs,
            &editor.access_token,
            StatusCode::OK,
        )
        .await,
    );
    // Someone else's published article is visible, but not the author's to change.
    mismatches.extend(
        try_writes(
            &app,
            "author, another's published article",
            &published,
            &author.access_token,
            StatusCode::FORBIDDEN,
        )
        .await,
    );
    mismatches.extend(
        try_writes(
            &app,
            "editor, published article",
            &published,
            &editor.access_token,
            StatusCode::OK,
        )
        .await,
    );
    // Once submitted, the author's own article is the editors' to change.
    assert_status(
        &set_status(&app, &mine, "pending_review", &author.access_token).await,
        StatusCode::OK,
    );
    mismatches.extend(
        try_writes(
            &app,
            "author, own pending_review",
            &mine,
            &author.access_token,
            StatusCode::FORBIDDEN,
        )
        .await,
    );
    mismatches.extend(
        try_writes(
            &app,
            "editor, pending_review",
            &mine,
            &editor.access_token,
            StatusCode::OK,
        )
        .await,
    );
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));

    // The refusals changed nothing; the accepted writes did.
    let theirs_now = article(&app, &theirs, &editor.access_token).await;
    assert_eq!(theirs_now["title"], "Changed title");
    assert_eq!(theirs_now["version"], 5, "created, then four editor writes");
    let mine_now = article(&app, &mine, &author.access_token).await;
    assert_eq!(
        mine_now["version"], 10,
        "created, four author writes, submitted, four editor writes"
    );
    assert_eq!(
        mine_now["author_id"],
        app.user_id(&author.email).await.to_string()
    );
    let history = app
        .get(
            &format!("{ARTICLES}/{mine}/versions"),
            Some(&author.access_token),
        )
        .await;
    assert_status(&history, StatusCode::OK);
    let changed_by: Vec<&str> = history.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["changed_by"].as_str().unwrap())
        .collect();
    let editor_id = app.user_id(&editor.email).await.to_string();
    let author_id = app.user_id(&author.email).await.to_string();
    assert_eq!(changed_by[..4], [editor_id.as_str(); 4]);
    assert_eq!(changed_by[4..], [author_id.as_str(); 6]);
}

#[tokio::test]
async fn authors_delete_their_own_drafts_and_nothing_else() {
    let app = TestApp::spawn().await;
    let admin = app.admin("ada").await;
    let editor = app.user_with_role("eve", "Editor").await;
    let viewer = app.viewer("vic").await;
    let role = custom_role(&app, &admin, "Author", &["articles.create"]).await;
    let author = holder(&app, &admin, "alan", role).await;
    let other = holder(&app, &admin, "olga", role).await;
    let draft = new_article(&app, &author.access_token, "Doomed draft").await;
    let submitted = new_article(&app, &author.access_token, "Submitted").await;
    drive(&app, &submitted, "pending_review", &author.access_token).await;
    let theirs = new_article(&app, &other.access_token, "Theirs").await;
    let published = new_article(&app, &author.access_token, "Published").await;
    drive(&app, &published, "published", &admin.access_token).await;

    let deleted = app
        .delete(&article_path(&draft), &author.access_token)
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{}", deleted.text);
    assert!(deleted.text.is_empty());
    get_article(&app, &draft, Some(&author.access_token))
        .await
        .assert_problem(404);
    get_article(&app, &draft, Some(&editor.access_token))
        .await
        .assert_problem(404);

    // Past draft, or not theirs: articles.delete.
    app.delete(&article_path(&submitted), &author.access_token)
        .await
        .assert_problem(403);
    app.delete(&article_path(&published), &author.access_token)
        .await
        .assert_problem(403);
    app.delete(&article_path(&theirs), &author.access_token)
        .await
        .assert_problem(404);
    app.delete(&article_path(&published), &viewer.access_token)
        .await
        .assert_problem(403);
    send(
        &app,
        Method::DELETE,
        &article_path(&published),
        None,
        None,
        None,
    )
    .await
    .assert_problem(401);
    assert_eq!(
        article(&app, &submitted, &author.access_token).await["status"],
        "pending_review"
    );
    assert_eq!(
        article(&app, &published, &author.access_token).await["status"],
        "published"
    );

    // An editor archives a published article and deletes a draft.
    let archived = app
        .delete(&article_path(&published), &editor.access_token)
        .await;
    assert_status(&archived, StatusCode::OK);
    assert_eq!(archived.body["status"], "archived");
    let gone = app
        .delete(&article_path(&theirs), &editor.access_token)
        .await;
    assert_eq!(gone.status, StatusCode::NO_CONTENT, "{}", gone.text);
    app.settle().await;
    assert_eq!(events_about(&app, "article.deleted", &draft).await.len(), 1);
}

#[tokio::test]
async fn drafts_are_seen_by_their_author_and_editors_and_published_articles_by_everyone() {
    let app = TestApp::spawn().await;
    let admin = app.admin("ada").await;
    let editor = app.user_with_role("eve", "Editor").await;
    let viewer = app.viewer("vic").await;
    let role = custom_role(&app, &admin, "Author", &["articles.create"]).await;
    let author = holder(&app, &admin, "alan", role).await;
    let other = holder(&app, &admin, "olga", role).await;
    let id = create(
        &app,
        &author.access_token,
        json!({ "title": "Work in progress", "blocks": [paragraph("Secret plans")] }),
    )
    .await["id"]
        .as_str()
        .unwrap()
        .to_string();

    for (who, token) in [
        ("anonymous", None),
        ("viewer", Some(viewer.access_token.as_str())),
        ("another author", Some(other.access_token.as_str())),
    ] {
        for suffix in ["", "/blocks", "/seo", "/tags"] {
            let reply = app.get(&format!("{ARTICLES}/{id}{suffix}"), token).await;
            assert_eq!(
                reply.status,
                StatusCode::NOT_FOUND,
                "{who} GET {suffix}: {}",
                reply.text
            );
        }
    }
    let own = get_article(&app, &id, Some(&author.access_token)).await;
    assert_status(&own, StatusCode::OK);
    assert_etag(&own, 1);
    assert_eq!(own.body["blocks"][0]["content"], "Secret plans");
    assert_status(
        &get_article(&app, &id, Some(&editor.access_token)).await,
        StatusCode::OK,
    );
    // The list agrees with the single read.
    let listed = app.get(ARTICLES, Some(&viewer.access_token)).await;
    assert_status(&listed, StatusCode::OK);
    assert_eq!(listed.body["data"], json!([]));

    drive(&app, &id, "published", &editor.access_token).await;

    let anonymous = get_article(&app, &id, None).await;
    assert_status(&anonymous, StatusCode::OK);
    assert_eq!(anonymous.body["title"], "Work in progress");
    assert_eq!(anonymous.body["blocks"][0]["content"], "Secret plans");
    assert_status(
        &get_article(&app, &id, Some(&viewer.access_token)).await,
        StatusCode::OK,
    );
    // The history holds the drafts: for the author and editors only.
    let versions = format!("{ARTICLES}/{id}/versions");
    app.get(&versions, Some(&viewer.access_token))
        .await
        .assert_problem(403);
    app.get(&format!("{versions}/1"), Some(&viewer.access_token))
        .await
        .assert_problem(403);
    app.get(&versions, None).await.assert_problem(401);
    assert_status(
        &app.get(&versions, Some(&author.access_token)).await,
        StatusCode::OK,
    );
    assert_status(
        &app.get(&versions, Some(&editor.access_token)).await,
        StatusCode::OK,
    );
    // Restoring is a write: a viewer may not.
    send(
        &app,
        Method::POST,
        &format!("{ARTICLES}/{id}/restore/1"),
        None,
        Some(&viewer.access_token),
        None,
    )
    .await
    .assert_problem(403);
}

// -------------------------------------------------------------------------- If-Match

#[tokio::test]
async fn a_stale_if_match_is_412_and_changes_nothing_and_a_current_one_saves() {
    let app = TestApp::spawn().await;
    let editor = app.user_with_role("eve", "Editor").await;
    let token = editor.access_token.as_str();
    let id = new_article(&app, token, "First").await;
    let path = article_path(&id);
    let saved = app.put(&path, json!({ "title": "Second" }), token).await;
    assert_status(&saved, StatusCode::OK);
    assert_etag(&saved, 2);
    let read = get_article(&app, &id, Some(token)).await;
    assert_etag(&read, 2);

    // The article: a client still holding version 1 is refused.
    let stale = send(
        &app,
        Method::PUT,
        &path,
        Some(json!({ "title": "Lost update" })),
        Some(token),
        Some("\"1\""),
    )
    .await;
    stale.assert_problem(412);
    let unchanged = article(&app, &id, token).await;
    assert_eq!(unchanged["title"], "Second");
    assert_eq!(unchanged["version"], 2);
    let current = send(
        &app,
        Method::PUT,
        &path,
        Some(json!({ "title": "Third" })),
        Some(token),
        Some("\"2\""),
    )
    .await;
    assert_status(&current, StatusCode::OK);
    assert_etag(&current, 3);
    assert_eq!(current.body["version"], 3);
    assert_eq!(current.body["title"], "Third");

    // The blocks.
    let blocks = format!("{path}/blocks");
    send(
        &app,
        Method::PUT,
        &blocks,
        Some(json!({ "blocks": [paragraph("Lost body")] })),
        Some(token),
        Some("\"2\""),
    )
    .await
    .assert_problem(412);
    let unchanged = article(&app, &id, token).await;
    assert_eq!(unchanged["blocks"], json!([]));
    assert_eq!(unchanged["version"], 3);
    let replaced = send(
        &app,
        Method::PUT,
        &blocks,
        Some(json!({ "blocks": [paragraph("Kept body")] })),
        Some(token),
        Some("\"3\""),
    )
    .await;
    assert_status(&replaced, StatusCode::OK);
    assert_etag(&replaced, 4);
    assert_eq!(block_contents(&replaced.body["data"]), ["Kept body"]);

    // The status.
    let status = format!("{path}/status");
    send(
        &app,
        Method::PUT,
        &status,
        Some(json!({ "status": "pending_review" })),
        Some(token),
        Some("\"3\""),
    )
    .await
    .assert_problem(412);
    let unchanged = article(&app, &id, token).await;
    assert_eq!(unchanged["status"], "draft");
    assert_eq!(unchanged["version"], 4);
    let moved = send(
        &app,
        Method::PUT,
        &status,
        Some(json!({ "status": "pending_review" })),
        Some(token),
        Some("\"4\""),
    )
    .await;
    assert_status(&moved, StatusCode::OK);
    assert_etag(&moved, 5);
    assert_eq!(moved.body["status"], "pending_review");

    // A malformed If-Match is the client's mistake.
    send(
        &app,
        Method::PUT,
        &path,
        Some(json!({ "title": "Whatever" })),
        Some(token),
        Some("\"not-a-version\""),
    )
    .await
    .assert_problem(400);
    assert_eq!(version_of(&app, &id, token).await, 5);
}

// -------------------------------------------------------------------------- versions

#[tokio::test]
async fn every_save_is_a_version_and_a_restore_adds_one_without_losing_any() {
    let app = TestApp::spawn().await;
    let editor = app.user_with_role("eve", "Editor").await;
    let token = editor.access_token.as_str();
    let created = create(
        &app,
        token,
        json!({ "title": "Original title", "blocks": [paragraph("Original body")] }),
    )
    .await;
    let id = id_of(&created);
    assert_eq!(created["version"], 1);
    let renamed = app
        .put(&article_path(&id), json!({ "title": "Renamed" }), token)
        .await;
    assert_status(&renamed, StatusCode::OK);
    assert_eq!(renamed.body["version"], 2);
    let rewritten = app
        .put(
            &format!("{ARTICLES}/{id}/blocks"),
            json!({ "blocks": [paragraph("New body"), paragraph("More")] }),
            token,
        )
        .await;
    assert_status(&rewritten, StatusCode::OK);
    assert_etag(&rewritten, 3);

    let history = app
        .get(&format!("{ARTICLES}/{id}/versions"), Some(token))
        .await;

    assert_status(&history, StatusCode::OK);
    let entries = history.body["data"].as_array().unwrap();
    let numbers: Vec<i64> = entries
        .iter()
        .map(|v| v["version_number"].as_i64().unwrap())
        .collect();
    assert_eq!(numbers, [3, 2, 1]);
    let summaries: Vec<&str> = entries
        .iter()
        .map(|v| v["change_summary"].as_str().unwrap())
        .collect();
    assert_eq!(summaries, ["Replaced the body", "Edited", "Created"]);
    let titles: Vec<&str> = entries
        .iter()
        .map(|v| v["title"].as_str().unwrap())
        .collect();
    assert_eq!(titles, ["Renamed", "Renamed", "Original title"]);
    assert!(history.body["next_cursor"].is_null());
    // Pages follow the cursor.
    let first = app
        .get(&format!("{ARTICLES}/{id}/versions?limit=2"), Some(token))
        .await;
    assert_eq!(first.body["data"].as_array().unwrap().len(), 2);
    let cursor = first.body["next_cursor"].as_str().expect("a next page");
    let rest = app
        .get(
            &format!("{ARTICLES}/{id}/versions?limit=2&cursor={cursor}"),
            Some(token),
        )
        .await;
    assert_status(&rest, StatusCode::OK);
    assert_eq!(rest.body["data"][0]["version_number"], 1);

    let v1 = app
        .get(&format!("{ARTICLES}/{id}/versions/1"), Some(token))
        .await;
    assert_status(&v1, StatusCode::OK);
    assert_eq!(v1.body["version_number"], 1);
    assert_eq!(v1.body["title"], "Original title");
    assert_eq!(
        v1.body["content_snapshot"]["article"]["title"],
        "Original title"
    );
    assert_eq!(
        block_contents(&v1.body["content_snapshot"]["blocks"]),
        ["Original body"]
    );
    app.get(&format!("{ARTICLES}/{id}/versions/9"), Some(token))
        .await
        .assert_problem(404);

    let restored = send(
        &app,
        Method::POST,
        &format!("{ARTICLES}/{id}/restore/1"),
        None,
        Some(token),
        None,
    )
    .await;

    assert_status(&restored, StatusCode::OK);
    assert_etag(&restored, 4);
    assert_eq!(restored.body["version"], 4);
    assert_eq!(restored.body["title"], "Original title");
    assert_eq!(block_contents(&restored.body["blocks"]), ["Original body"]);
    let now = article(&app, &id, token).await;
    assert_eq!(now["title"], "Original title");
    assert_eq!(block_contents(&now["blocks"]), ["Original body"]);
    assert_eq!(now["slug"], created["slug"], "the slug stays");
    let history = app
        .get(&format!("{ARTICLES}/{id}/versions"), Some(token))
        .await;
    let numbers: Vec<i64> = history.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["version_number"].as_i64().unwrap())
        .collect();
    assert_eq!(numbers, [4, 3, 2, 1], "nothing is lost");
    assert_eq!(
        history.body["data"][0]["change_summary"],
        "Restored version 1"
    );
    // Version 3 can still be brought back.
    let v3 = app
        .get(&format!("{ARTICLES}/{id}/versions/3"), Some(token))
        .await;
    assert_eq!(
        block_contents(&v3.body["content_snapshot"]["blocks"]),
        ["New body", "More"]
    );

    let missing = send(
        &app,
        Method::POST,
        &format!("{ARTICLES}/{id}/restore/99"),
        None,
        Some(token),
        None,
    )
    .await;
    missing.assert_problem(404);
    assert_eq!(version_of(&app, &id, token).await, 4);
    send(
        &app,
        Method::POST,
        &format!("{ARTICLES}/{}/restore/1", Uuid::now_v7()),
        None,
        Some(token),
        None,
    )
    .await
    .assert_problem(404);
}

// ---------------------------------------------------------------------------- blocks

fn every_block_type() -> Value {
    json!([
        { "block_type": "paragraph", "content": "Hello <strong>world</strong>" },
        { "block_type": "heading", "content": "Getting started", "metadata": { "level": 2 } },
        { "block_type": "code", "content": "fn main() {\n    println!(\"<hi>\");\n}", "metadata": { "language": "rust" } },
        { "block_type": "image", "metadata": { "src": "https://cdn.example.com/cat.png", "alt": "A sleeping cat" } },
        { "block_type": "quote", "content": "Simplicity is prerequisite for reliability." },
        { "block_type": "list", "metadata": { "items": ["one", "two"] } },
        { "block_type": "divider" },
        { "block_type": "callout", "content": "Mind the gap", "metadata": { "type": "info" } },
        { "block_type": "video", "metadata": { "url": "https://www.youtube.com/watch?v=dQw4w9WgXcQ" } },
        { "block_type": "embed", "metadata": { "url": "https://codepen.io/team/pen/abcdef" } },
    ])
}

#[track_caller]
fn assert_every_block_type(blocks: &Value) {
    let types: Vec<&str> = blocks
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["block_type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        [
            "paragraph",
            "heading",
            "code",
            "image",
            "quote",
            "list",
            "divider",
            "callout",
            "video",
            "embed"
        ]
    );
    assert_eq!(sort_orders(blocks), (0..10).collect::<Vec<i64>>());
    assert_eq!(blocks[0]["content"], "Hello <strong>world</strong>");
    assert_eq!(blocks[1]["content"], "Getting started");
    assert_eq!(blocks[1]["metadata"]["level"], 2);
    assert_eq!(
        blocks[2]["content"], "fn main() {\n    println!(\"<hi>\");\n}",
        "code is kept as typed"
    );
    assert_eq!(blocks[2]["metadata"]["language"], "rust");
    assert_eq!(
        blocks[3]["metadata"]["src"],
        "https://cdn.example.com/cat.png"
    );
    assert_eq!(blocks[3]["metadata"]["alt"], "A sleeping cat");
    assert_eq!(
        blocks[4]["content"],
        "Simplicity is prerequisite for reliability."
    );
    assert_eq!(blocks[5]["metadata"]["items"], json!(["one", "two"]));
    assert_eq!(blocks[5]["metadata"]["ordered"], false);
    assert_eq!(blocks[6]["content"], "");
    assert_eq!(blocks[7]["content"], "Mind the gap");
    assert_eq!(blocks[7]["metadata"]["type"], "info");
    assert_eq!(
        blocks[8]["metadata"]["url"],
        "https://www.youtube.com/watch?v=dQw4w9WgXcQ"
    );
    assert_eq!(blocks[8]["metadata"]["provider"], "youtube");
    assert_eq!(
        blocks[9]["metadata"]["url"],
        "https://codepen.io/team/pen/abcdef"
    );
    assert_eq!(blocks[9]["metadata"]["provider"], "codepen.io");
}

#[tokio::test]
async fn every_block_type_is_accepted_with_valid_metadata() {
    let app = TestApp::spawn().await;
    let editor = app.user_with_role("eve", "Editor").await;
    let token = editor.access_token.as_str();

    let created = create(
        &app,
        token,
        json!({ "title": "All the blocks", "blocks": every_block_type() }),
    )
    .await;

    assert_every_block_type(&created["blocks"]);
    let id = id_of(&created);
    // A read passes the blocks through as PostgreSQL builds them: the same document, to the
    // format of every time, as the save answered.
    assert_eq!(article(&app, &id, token).await, created);
    let listed = app
        .get(&format!("{ARTICLES}/{id}/blocks"), Some(token))
        .await;
    assert_status(&listed, StatusCode::OK);
    assert_etag(&listed, 1);
    assert_every_block_type(&listed.body["data"]);
    // The same set through a replace.
    let other = new_article(&app, token, "Replaced blocks").await;
    let replaced = app
        .put(
            &format!("{ARTICLES}/{other}/blocks"),
            json!({ "blocks": every_block_type() }),
            token,
        )
        .await;
    assert_status(&replaced, StatusCode::OK);
    assert_every_block_type(&replaced.body["data"]);
    assert_every_block_type(&article(&app, &other, token).await["blocks"]);
}

#[tokio::test]
async fn invalid_block_metadata_is_422_naming_the_field_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let editor = app.user_with_role("eve", "Editor").await;
    let token = editor.access_token.as_str();
    let id = id_of(
        &create(
            &app,
            token,
            json!({ "title": "Careful", "blocks": [paragraph("Kept")] }),
        )
        .await,
    );
    let blocks = format!("{ARTICLES}/{id}/blocks");

    let three = app
        .put(
            &blocks,
            json!({ "blocks": [
                { "block_type": "heading", "content": "Too deep", "metadata": { "level": 7 } },
                { "block_type": "video", "metadata": { "url": "javascript:alert(1)" } },
                { "block_type": "list", "metadata": { "items": [] } },
            ] }),
            token,
        )
        .await;
    assert_invalid(
        &three,
        &[
            "blocks[0].metadata.level",
            "blocks[1].metadata.url",
            "blocks[2].metadata.items",
        ],
    );
    let off_list = app
        .put(
            &blocks,
            json!({ "blocks": [
                paragraph("Fine"),
                { "block_type": "video", "metadata": { "url": "https://videos.evil.example/watch?v=1" } },
            ] }),
            token,
        )
        .await;
    assert_invalid(&off_list, &["blocks[1].metadata.url"]);
    let lookalike = app
        .put(
            &blocks,
            json!({ "blocks": [
                paragraph("Fine"),
                { "block_type": "video", "metadata": { "url": "https://youtube.com.evil.example/watch?v=1" } },
            ] }),
            token,
        )
        .await;
    assert_invalid(&lookalike, &["blocks[1].metadata.url"]);
    let unknown = app
        .put(
            &blocks,
            json!({ "blocks": [{ "block_type": "marquee", "content": "Wheee" }] }),
            token,
        )
        .await;
    assert_invalid(&unknown, &["blocks[0].block_type"]);
    // The same rules on create and on a single block.
    let on_create = app
        .post_as(
            ARTICLES,
            json!({ "title": "Bad", "blocks": [paragraph("ok"), { "block_type": "heading", "content": "x", "metadata": { "level": 7 } }] }),
            token,
        )
        .await;
    assert_invalid(&on_create, &["blocks[1].metadata.level"]);
    let single = app
        .post_as(
            &blocks,
            json!({ "block_type": "heading", "content": "x", "metadata": { "level": 7 } }),
            token,
        )
        .await;
    assert_invalid(&single, &["block.metadata.level"]);

    let now = article(&app, &id, token).await;
    assert_eq!(now["version"], 1, "no refused change made a version");
    assert_eq!(block_contents(&now["blocks"]), ["Kept"]);
    let count: i64 = app
        .db()
        .await
        .query_one("SELECT count(*) FROM content.articles", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(count, 1, "the refused create stored nothing");
}

#[tokio::test]
async fn blocks_are_added_changed_deleted_and_reordered_one_version_each() {
    let app = TestApp::spawn().await;
    let editor = app.user_with_role("eve", "Editor").await;
    let token = editor.access_token.as_str();
    let created = create(
        &app,
        token,
        json!({ "title": "Blocks", "blocks": [paragraph("A"), paragraph("B"), paragraph("C")] }),
    )
    .await;
    let id = id_of(&created);
    let ids = block_ids(&created["blocks"]);
    let blocks = format!("{ARTICLES}/{id}/blocks");

    // Added at the top.
    let added = app
        .post_as(
            &blocks,
            json!({ "block_type": "paragraph", "content": "Zero", "position": 0 }),
            token,
        )
        .await;
    let zero = created_id(&added);
    assert_eq!(
        added.header("location"),
        Some(format!("{blocks}/{zero}").as_str())
    );
    assert_etag(&added, 2);
    assert_eq!(added.body["sort_order"], 0);
    assert_eq!(added.body["content"], "Zero");
    let listed = app.get(&blocks, Some(token)).await;
    assert_etag(&listed, 2);
    assert_eq!(
        block_contents(&listed.body["data"]),
        ["Zero", "A", "B", "C"]
    );
    assert_eq!(sort_orders(&listed.body["data"]), [0, 1, 2, 3]);
    assert_eq!(version_of(&app, &id, token).await, 2);

    // Changed.
    let changed = app
        .put(
            &format!("{blocks}/{}", ids[1]),
            json!({ "content": "B, revised" }),
            token,
        )
        .await;
    assert_status(&changed, StatusCode::OK);
    assert_etag(&changed, 3);
    assert_eq!(changed.body["content"], "B, revised");
    assert_eq!(changed.body["block_type"], "paragraph");
    assert_eq!(version_of(&app, &id, token).await, 3);

    // Deleted.
    let deleted = app.delete(&format!("{blocks}/{}", ids[0]), token).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{}", deleted.text);
    assert_etag(&deleted, 4);
    let listed = app.get(&blocks, Some(token)).await;
    assert_eq!(
        block_contents(&listed.body["data"]),
        ["Zero", "B, revised", "C"]
    );
    assert_eq!(sort_orders(&listed.body["data"]), [0, 1, 2]);
    assert_eq!(version_of(&app, &id, token).await, 4);
    app.delete(&format!("{blocks}/{}", ids[0]), token)
        .await
        .assert_problem(404);

    // Reordered.
    let order = format!("{blocks}/order");
    let reordered = app
        .put(
            &order,
            json!({ "block_ids": [ids[2], zero, ids[1]] }),
            token,
        )
        .await;
    assert_status(&reordered, StatusCode::OK);
    assert_etag(&reordered, 5);
    assert_eq!(
        block_contents(&reordered.body["data"]),
        ["C", "Zero", "B, revised"]
    );
    assert_eq!(sort_orders(&reordered.body["data"]), [0, 1, 2]);
    assert_eq!(
        block_contents(&article(&app, &id, token).await["blocks"]),
        ["C", "Zero", "B, revised"]
    );
    assert_eq!(version_of(&app, &id, token).await, 5);

    // An order that leaves a block out, or names another, is refused.
    let missing = app
        .put(&order, json!({ "block_ids": [ids[2], zero] }), token)
        .await;
    assert_invalid(&missing, &["block_ids"]);
    let foreign = app
        .put(
            &order,
            json!({ "block_ids": [ids[2], zero, Uuid::now_v7()] }),
            token,
        )
        .await;
    assert_invalid(&foreign, &["block_ids"]);
    let twice = app
        .put(
            &order,
            json!({ "block_ids": [ids[2], zero, ids[1], zero] }),
            token,
        )
        .await;
    assert_invalid(&twice, &["block_ids"]);
    let now = article(&app, &id, token).await;
    assert_eq!(now["version"], 5);
    assert_eq!(block_contents(&now["blocks"]), ["C", "Zero", "B, revised"]);
    let history = app
        .get(&format!("{ARTICLES}/{id}/versions"), Some(token))
        .await;
    let summaries: Vec<&str> = history.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["change_summary"].as_str().unwrap())
        .collect();
    assert_eq!(
        summaries,
        [
            "Reordered the blocks",
            "Deleted a block",
            "Changed a block",
            "Added a block",
            "Created"
        ]
    );

    // A block moves with `position`: down to the end, then back up to the top.
    let down = app
        .put(
            &format!("{blocks}/{}", ids[2]),
            json!({ "position": 2 }),
            token,
        )
        .await;
    assert_status(&down, StatusCode::OK);
    assert_etag(&down, 6);
    assert_eq!(down.body["sort_order"], 2);
    assert_eq!(
        block_contents(&app.get(&blocks, Some(token)).await.body["data"]),
        ["Zero", "B, revised", "C"]
    );
    let up = app
        .put(
            &format!("{blocks}/{}", ids[2]),
            json!({ "position": 0 }),
            token,
        )
        .await;
    assert_status(&up, StatusCode::OK);
    assert_etag(&up, 7);
    let listed = app.get(&blocks, Some(token)).await;
    assert_eq!(
        block_contents(&listed.body["data"]),
        ["C", "Zero", "B, revised"]
    );
    assert_eq!(sort_orders(&listed.body["data"]), [0, 1, 2]);
}

#[tokio::test]
async fn reading_time_and_the_excerpt_are_derived_from_the_blocks() {
    let app = TestApp::spawn().await;
    let editor = app.user_with_role("eve", "Editor").await;
    let token = editor.access_token.as_str();
    let words = |n: usize| {
        (0..n)
            .map(|i| format!("word{i}"))
            .collect::<Vec<_>>()
            .join(" ")
    };

    // 2 + 3 + 445 = 450 words at 200 a minute: 3 minutes.
    let created = create(
        &app,
        token,
        json!({ "title": "Long read", "blocks": [
            { "block_type": "heading", "content": "Getting started", "metadata": { "level": 2 } },
            paragraph("Opening <em>words</em> here."),
            paragraph(&words(445)),
        ] }),
    )
    .await;

    assert_eq!(created["reading_time_minutes"], 3);
    assert_eq!(created["excerpt"], "Opening words here.");
    let id = id_of(&created);
    // 400 words: 2 minutes; a long first paragraph is cut at a word, with an ellipsis.
    let replaced = app
        .put(
            &format!("{ARTICLES}/{id}/blocks"),
            json!({ "blocks": [paragraph(&words(400))] }),
            token,
        )
        .await;
    assert_status(&replaced, StatusCode::OK);
    let now = article(&app, &id, token).await;
    assert_eq!(now["reading_time_minutes"], 2);
    let excerpt = now["excerpt"].as_str().unwrap();
    assert!(excerpt.starts_with("word0 word1 word2"), "{excerpt}");
    assert!(excerpt.ends_with('…'), "{excerpt}");
    assert!(excerpt.chars().count() <= 300, "{excerpt}");
    assert!(
        excerpt
            .trim_end_matches('…')
            .split(' ')
            .all(|w| w.starts_with("word")),
        "cut at a word: {excerpt}"
    );
    // A written excerpt is kept whatever the body becomes.
    assert_status(
        &app.put(
            &article_path(&id),
            json!({ "excerpt": "Written by hand." }),
            token,
        )
        .await,
        StatusCode::OK,
    );
    assert_status(
        &app.put(
            &format!("{ARTICLES}/{id}/blocks"),
            json!({ "blocks": [paragraph("Short.")] }),
            token,
        )
        .await,
        StatusCode::OK,
    );
    let now = article(&app, &id, token).await;
    assert_eq!(now["excerpt"], "Written by hand.");
    assert_eq!(now["reading_time_minutes"], 1);
    // An empty body reads in no time.
    let empty = create(&app, token, json!({ "title": "Empty" })).await;
    assert_eq!(empty["reading_time_minutes"], 0);
    assert!(empty["excerpt"].is_null());
}

#[tokio::test]
async fn scripts_event_handlers_and_script_urls_never_reach_stored_content() {
    let app = TestApp::spawn().await;
    let editor = app.user_with_role("eve", "Editor").await;
    let token = editor.access_token.as_str();

    let created = create(
        &app,
        token,
        json!({ "title": "Hostile input", "blocks": [
            paragraph(r#"<p>hi<script>alert(1)</script><img src=x onerror=alert(1)><a href="javascript:alert(1)">x</a></p> see <a href="https://example.com/docs">the docs</a>"#),
            { "block_type": "list", "metadata": { "items": [
                "safe one<svg onload=alert(1)>",
                "safe two<iframe src=//evil>",
                r#"<a href="JaVaScRiPt:alert(1)">safe three</a>"#,
            ] } },
            { "block_type": "callout",
              "content": r#"Callout text <a href="JaVaScRiPt:alert(1)">click</a> <iframe src=//evil></iframe> <svg onload=alert(1)>"#,
              "metadata": { "type": "warning", "title": "Heads up<svg onload=alert(1)>" } },
        ] }),
    )
    .await;
    let id = id_of(&created);

    let read = get_article(&app, &id, Some(token)).await;
    let blocks = app
        .get(&format!("{ARTICLES}/{id}/blocks"), Some(token))
        .await;
    let snapshot = app
        .get(&format!("{ARTICLES}/{id}/versions/1"), Some(token))
        .await;
    assert_status(&read, StatusCode::OK);
    assert_status(&blocks, StatusCode::OK);
    assert_status(&snapshot, StatusCode::OK);
    for (what, reply) in [
        ("created", &created.to_string()),
        ("GET article", &read.text),
        ("GET blocks", &blocks.text),
        ("version 1", &snapshot.text),
    ] {
        let lower = reply.to_lowercase();
        for needle in [
            "<script",
            "onerror",
            "javascript:",
            "<svg",
            "<iframe",
            "onload",
        ] {
            assert!(!lower.contains(needle), "{what} holds {needle}: {reply}");
        }
    }
    let stored = &read.body["blocks"];
    let first = stored[0]["content"].as_str().unwrap();
    assert!(first.starts_with("hi"), "{first}");
    assert!(first.contains(">x</a>"), "{first}");
    assert!(
        first.contains(
            r#"<a href="https://example.com/docs" rel="noopener noreferrer nofollow">the docs</a>"#
        ),
        "{first}"
    );
    let items: Vec<&str> = stored[1]["metadata"]["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i.as_str().unwrap())
        .collect();
    assert_eq!(items.len(), 3, "{items:?}");
    assert_eq!(items[0], "safe one");
    assert_eq!(items[1], "safe two");
    assert!(items[2].contains("safe three"), "{items:?}");
    assert!(
        items[2].contains(r#"rel="noopener noreferrer nofollow""#),
        "{items:?}"
    );
    let callout = stored[2]["content"].as_str().unwrap();
    assert!(callout.starts_with("Callout text"), "{callout}");
    assert!(callout.contains("click"), "{callout}");
    assert_eq!(stored[2]["metadata"]["title"], "Heads up");
    assert_eq!(
        read.body["excerpt"].as_str().map(|e| e.starts_with("hi")),
        Some(true),
        "{}",
        read.body["excerpt"]
    );
}

// ------------------------------------------------------------------------ scheduling

#[tokio::test]
async fn scheduling_needs_an_approved_article_and_a_future_time_and_null_cancels() {
    let app = TestApp::spawn().await;
    let editor = app.user_with_role("eve", "Editor").await;
    let token = editor.access_token.as_str();
    let draft = new_article(&app, token, "A draft").await;
    let id = new_article(&app, token, "Approved").await;
    drive(&app, &id, "approved", token).await;

    schedule(&app, &draft, json!(in_seconds(3600).to_rfc3339()), token)
        .await
        .assert_problem(409);
    let past = schedule(&app, &id, json!(in_seconds(-60).to_rfc3339()), token).await;
    assert_invalid(&past, &["scheduled_publish_at"]);
    let garbage = schedule(&app, &id, json!("next tuesday"), token).await;
    assert_invalid(&garbage, &["scheduled_publish_at"]);
    let missing = app
        .post_as(&format!("{ARTICLES}/{id}/schedule"), json!({}), token)
        .await;
    assert_invalid(&missing, &["scheduled_publish_at"]);
    let before = article(&app, &id, token).await;
    assert!(before["scheduled_publish_at"].is_null());
    assert_eq!(before["version"], 3);

    let at = in_seconds(2);
    let scheduled = schedule(&app, &id, json!(at.to_rfc3339()), token).await;
    assert_status(&scheduled, StatusCode::OK);
    assert_eq!(scheduled.body["status"], "approved");
    assert_eq!(
        time_of(&scheduled.body["scheduled_publish_at"]).timestamp_micros(),
        at.timestamp_micros()
    );
    assert_eq!(scheduled.body["version"], 4);

    let cancelled = schedule(&app, &id, Value::Null, token).await;
    assert_status(&cancelled, StatusCode::OK);
    assert!(cancelled.body["scheduled_publish_at"].is_null());
    assert_eq!(cancelled.body["status"], "approved");
    assert_eq!(cancelled.body["version"], 5);
    tokio::time::sleep((at - Utc::now()).to_std().unwrap_or_default() + Duration::from_millis(300))
        .await;
    assert_eq!(
        app.stack.scheduler.publish_due_articles().await.unwrap(),
        0,
        "a cancelled schedule publishes nothing"
    );
    assert_eq!(article(&app, &id, token).await["status"], "approved");
    app.settle().await;
    let events = content_events(&app).await;
    for kind in ["article.scheduled", "article.schedule_cancelled"] {
        assert_eq!(
            events.iter().filter(|e| *e == kind).count(),
            1,
            "{events:?}"
        );
    }
}

#[tokio::test]
async fn overlapping_scheduler_runs_publish_each_due_article_exactly_once() {
    let app = TestApp::spawn().await;
    let editor = app.user_with_role("eve", "Editor").await;
    let token = editor.access_token.as_str();
    let mut due = Vec::new();
    let mut latest = Utc::now();
    for n in 0..3 {
        let id = new_article(&app, token, &format!("Due {n}")).await;
        drive(&app, &id, "approved", token).await;
        let at = in_seconds(2);
        assert_status(
            &schedule(&app, &id, json!(at.to_rfc3339()), token).await,
            StatusCode::OK,
        );
        latest = latest.max(at);
        due.push(id);
    }
    let later = new_article(&app, token, "Next year").await;
    drive(&app, &later, "approved", token).await;
    let later_at = in_seconds(3600);
    assert_status(
        &schedule(&app, &later, json!(later_at.to_rfc3339()), token).await,
        StatusCode::OK,
    );
    tokio::time::sleep(
        (latest - Utc::now()).to_std().unwrap_or_default() + Duration::from_millis(500),
    )
    .await;

    let (a, b) = tokio::join!(
        app.stack.scheduler.publish_due_articles(),
        app.stack.scheduler.publish_due_articles()
    );

    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a + b, 3, "published {a} + {b}");
    assert_eq!(
        app.stack.scheduler.publish_due_articles().await.unwrap(),
        0,
        "nothing is left to publish"
    );
    app.settle().await;
    for id in &due {
        let now = article(&app, id, token).await;
        assert_eq!(now["status"], "published", "{now}");
        assert!(now["published_at"].is_string(), "{now}");
        assert!(now["scheduled_publish_at"].is_null(), "{now}");
        assert_eq!(
            now["version"], 5,
            "created, submitted, approved, scheduled, published"
        );
        let history = app
            .get(&format!("{ARTICLES}/{id}/versions"), Some(token))
            .await;
        assert_status(&history, StatusCode::OK);
        let publications: Vec<&str> = history.body["data"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|v| v["change_summary"].as_str())
            .filter(|s| s.contains("→ published"))
            .collect();
        assert_eq!(publications.len(), 1, "{publications:?}");
        assert!(
            publications[0].to_lowercase().contains("schedule"),
            "{publications:?}"
        );
        let events = events_about(&app, "article.published", id).await;
        assert_eq!(events.len(), 1, "{events:?}");
        assert!(events[0]["scheduled_publish_at"].is_string(), "{events:?}");
        // Anyone reads it now.
        assert_status(&get_article(&app, id, None).await, StatusCode::OK);
    }
    let waiting = article(&app, &later, token).await;
    assert_eq!(waiting["status"], "approved");
    assert_eq!(
        time_of(&waiting["scheduled_publish_at"]).timestamp_micros(),
        later_at.timestamp_micros()
    );
}

// ------------------------------------------------------------------------ SEO and tags

#[tokio::test]
async fn seo_fields_are_derived_until_set_and_the_canonical_url_must_be_http() {
    let app = TestApp::spawn().await;
    let editor = app.user_with_role("eve", "Editor").await;
    let token = editor.access_token.as_str();
    let id = new_article(&app, token, "A Guide to Rust Lifetimes").await;
    let seo = format!("{ARTICLES}/{id}/seo");

    let derived = app.get(&seo, Some(token)).await;

    assert_status(&derived, StatusCode::OK);
    assert_eq!(derived.body["meta_title"], "A Guide to Rust Lifetimes");
    assert_eq!(derived.body["og_title"], "A Guide to Rust Lifetimes");
    assert_eq!(derived.body["twitter_card"], "summary");
    assert!(derived.body["canonical_url"].is_null());
    let fields: Vec<&str> = derived.body["derived"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap())
        .collect();
    for field in ["meta_title", "og_title", "twitter_card"] {
        assert!(fields.contains(&field), "{field} not in {fields:?}");
    }

    for bad in ["javascript:alert(1)", "ftp://x", "/relative/path"] {
        let refused = app.put(&seo, json!({ "canonical_url": bad }), token).await;
        assert_invalid(&refused, &["canonical_url"]);
    }
    assert_eq!(version_of(&app, &id, token).await, 1);

    let saved = app
        .put(
            &seo,
            json!({
                "meta_title": "Lifetimes, explained",
                "meta_description": "What 'a really means.",
                "canonical_url": "https://example.com/guides/lifetimes",
                "og_title": "Rust lifetimes",
                "og_description": "A friendly guide.",
                "twitter_card": "summary_large_image",
                "keywords": ["rust", "lifetimes"],
            }),
            token,
        )
        .await;
    assert_status(&saved, StatusCode::OK);
    assert_etag(&saved, 2);
    let read = app.get(&seo, Some(token)).await;
    assert_status(&read, StatusCode::OK);
    assert_eq!(
        read.body["canonical_url"],
        "https://example.com/guides/lifetimes"
    );
    assert_eq!(read.body["meta_title"], "Lifetimes, explained");
    assert_eq!(read.body["meta_description"], "What 'a really means.");
    assert_eq!(read.body["og_title"], "Rust lifetimes");
    assert_eq!(read.body["og_description"], "A friendly guide.");
    assert_eq!(read.body["twitter_card"], "summary_large_image");
    assert_eq!(read.body["keywords"], json!(["rust", "lifetimes"]));
    assert_eq!(read.body["derived"], json!([]), "{}", read.text);
    assert_eq!(
        article(&app, &id, token).await["seo"]["canonical_url"],
        "https://example.com/guides/lifetimes"
    );
}

#[tokio::test]
async fn tags_are_set_by_name_or_id_and_new_names_need_tags_create() {
    let app = TestApp::spawn().await;
    let admin = app.admin("ada").await;
    let editor = app.user_with_role("eve", "Editor").await;
    let author = new_author(&app, &admin, "alan").await;
    let existing = created_id(
        &app.post_as(
            "/api/v1/tags",
            json!({ "name": "Databases" }),
            &editor.access_token,
        )
        .await,
    );
    let id = new_article(&app, &editor.access_token, "Tagged").await;

    let tagged = app
        .put(
            &format!("{ARTICLES}/{id}/tags"),
            json!({ "tags": ["Rust", existing] }),
            &editor.access_token,
        )
        .await;

    assert_status(&tagged, StatusCode::OK);
    assert_etag(&tagged, 2);
    let names: Vec<&str> = tagged.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Databases", "Rust"]);
    assert_eq!(tagged.body["data"][0]["id"], existing);
    assert_eq!(tagged.body["data"][1]["slug"], "rust");
    let created: i64 = app
        .db()
        .await
        .query_one("SELECT count(*) FROM content.tags WHERE name = 'Rust'", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(created, 1, "Rust became a tag");
    let read = app
        .get(&format!("{ARTICLES}/{id}/tags"), Some(&editor.access_token))
        .await;
    assert_status(&read, StatusCode::OK);
    assert_eq!(read.body["data"], tagged.body["data"]);

    // An author without tags.create names only existing tags.
    let own = new_article(&app, &author.access_token, "Mine").await;
    let refused = app
        .put(
            &format!("{ARTICLES}/{own}/tags"),
            json!({ "tags": ["Brand new tag", "rust"] }),
            &author.access_token,
        )
        .await;
    assert_invalid(&refused, &["tags[0]"]);
    assert_eq!(version_of(&app, &own, &author.access_token).await, 1);
    let unknown_id = app
        .put(
            &format!("{ARTICLES}/{own}/tags"),
            json!({ "tags": [Uuid::now_v7()] }),
            &author.access_token,
        )
        .await;
    assert_invalid(&unknown_id, &["tags[0]"]);
    let existing_only = app
        .put(
            &format!("{ARTICLES}/{own}/tags"),
            json!({ "tags": ["rust", existing] }),
            &author.access_token,
        )
        .await;
    assert_status(&existing_only, StatusCode::OK);
    let names: Vec<&str> = existing_only.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Databases", "Rust"]);
    let tags: i64 = app
        .db()
        .await
        .query_one("SELECT count(*) FROM content.tags", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(tags, 2, "the author created no tag");
}

// ----------------------------------------------------------------------------- slugs

#[tokio::test]
async fn slugs_are_unique_and_the_public_read_by_slug_waits_for_publication() {
    let app = TestApp::spawn().await;
    let editor = app.user_with_role("eve", "Editor").await;
    let viewer = app.viewer("vic").await;
    let token = editor.access_token.as_str();

    let first = create(&app, token, json!({ "title": "Same Title" })).await;
    let second = create(&app, token, json!({ "title": "Same Title" })).await;

    assert_eq!(first["slug"], "same-title");
    assert_eq!(second["slug"], "same-title-2");
    app.post_as(
        ARTICLES,
        json!({ "title": "Another", "slug": "same-title" }),
        token,
    )
    .await
    .assert_problem(409);
    app.put(
        &article_path(&id_of(&second)),
        json!({ "slug": "same-title" }),
        token,
    )
    .await
    .assert_problem(409);
    let malformed = app
        .post_as(
            ARTICLES,
            json!({ "title": "x", "slug": "Not A Slug" }),
            token,
        )
        .await;
    assert_invalid(&malformed, &["slug"]);

    let by_slug = format!("{ARTICLES}/slug/same-title");
    app.get(&by_slug, None).await.assert_problem(404);
    app.get(&by_slug, Some(token)).await.assert_problem(404);
    let id = id_of(&first);
    drive(&app, &id, "approved", token).await;
    app.get(&by_slug, None).await.assert_problem(404);
    assert_status(&publish(&app, &id, token).await, StatusCode::OK);

    let read = app.get(&by_slug, None).await;
    assert_status(&read, StatusCode::OK);
    assert_eq!(read.body["id"], id);
    assert_eq!(read.body["view_count"], 1);
    let again = app.get(&by_slug, Some(&viewer.access_token)).await;
    assert_status(&again, StatusCode::OK);
    assert_eq!(again.body["view_count"], 2);
    assert_eq!(
        article(&app, &id, token).await["view_count"],
        2,
        "reads by id do not count"
    );
    app.get(&format!("{ARTICLES}/slug/same-title-2"), None)
        .await
        .assert_problem(404);
    app.get(&format!("{ARTICLES}/slug/no-such-article"), None)
        .await
        .assert_problem(404);
    let views = content_events(&app)
        .await
        .iter()
        .filter(|e| *e == "article.viewed")
        .count();
    assert_eq!(views, 2);
    assert_eq!(
        app.unpublished("content", "article.viewed").await,
        2,
        "views wait for the scheduler's sweep"
    );
}

#[tokio::test]
async fn two_articles_with_one_title_created_at_once_both_get_a_slug() {
    let app = TestApp::spawn().await;
    let editor = app.user_with_role("eve", "Editor").await;
    let token = editor.access_token.as_str();

    // No slug was asked for, so neither create has a reason to fail.
    let (a, b) = tokio::join!(
        app.post_as(ARTICLES, json!({ "title": "Breaking News" }), token),
        app.post_as(ARTICLES, json!({ "title": "Breaking News" }), token)
    );

    assert_status(&a, StatusCode::CREATED);
    assert_status(&b, StatusCode::CREATED);
    let mut slugs = [
        a.body["slug"].as_str().unwrap().to_string(),
        b.body["slug"].as_str().unwrap().to_string(),
    ];
    slugs.sort();
    assert_eq!(slugs, ["breaking-news", "breaking-news-2"]);
}

#[tokio::test]
async fn every_article_event_names_its_article_at_data_article_id() {
    let app = TestApp::spawn().await;
    let editor = app.user_with_role("eve", "Editor").await;
    let token = editor.access_token.as_str();
    let id = new_article(&app, token, "Eventful").await;
    assert_status(
        &app.put(&article_path(&id), json!({ "title": "Renamed" }), token)
            .await,
        StatusCode::OK,
    );
    drive(&app, &id, "published", token).await;
    // Archived by DELETE, the other way a published article leaves the site.
    let archived = app.delete(&article_path(&id), token).await;
    assert_status(&archived, StatusCode::OK);
    assert_eq!(archived.body["status"], "archived");

    let rows = app
        .db()
        .await
        .query(
            "SELECT type, data FROM content.outbox WHERE type LIKE 'article.%' ORDER BY occurred_at, id",
            &[],
        )
        .await
        .unwrap();
    let kinds: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
    assert_eq!(
        kinds,
        [
            "article.created",
            "article.updated",
            "article.submitted",
            "article.approved",
            "article.published",
            "article.archived"
        ]
    );
    let unnamed: Vec<String> = rows
        .iter()
        .filter(|r| r.get::<_, Value>(1)["article_id"] != id.as_str())
        .map(|r| format!("{}: {}", r.get::<_, String>(0), r.get::<_, Value>(1)))
        .collect();
    assert!(
        unnamed.is_empty(),
        "events without data.article_id = {id}:\n{}",
        unnamed.join("\n")
    );
}
