//! Who sees and changes which article, end to end: categories restricted to groups (404, never
//! 403, on every route), visibility and status, full-text search with safe snippets, and every
//! filter, order and cursor of `GET /articles`.

use std::collections::BTreeSet;

use axum::http::{Method, StatusCode};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::{
    directory::decode_claims,
    helpers::{Reply, Session, TestApp},
    roles::{created_id, id_named},
};

/// Percent-encodes a query-string value.
fn enc(raw: &str) -> String {
    raw.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

async fn group(app: &TestApp, token: &str, name: &str, parent: Option<&str>) -> String {
    created_id(
        &app.post_as(
            "/api/v1/groups",
            json!({ "name": name, "parent_id": parent }),
            token,
        )
        .await,
    )
}

async fn category(app: &TestApp, token: &str, name: &str, parent: Option<&str>) -> String {
    created_id(
        &app.post_as(
            "/api/v1/categories",
            json!({ "name": name, "parent_id": parent }),
            token,
        )
        .await,
    )
}

/// Replaces the access rules of `category`.
async fn set_access(app: &TestApp, token: &str, category: &str, rules: Value) -> Reply {
    let reply = app
        .put(
            &format!("/api/v1/categories/{category}/access"),
            json!({ "rules": rules }),
            token,
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    reply
}

fn paragraph(text: &str) -> Value {
    json!({ "block_type": "paragraph", "content": text })
}

/// Creates an article as `token` and answers it.
async fn create(app: &TestApp, token: &str, body: Value) -> Value {
    let reply = app.post_as("/api/v1/articles", body, token).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
    reply.body
}

/// Moves article `id` to `status` as `token`.
async fn move_to(app: &TestApp, token: &str, id: &str, status: &str) -> Value {
    let reply = app
        .put(
            &format!("/api/v1/articles/{id}/status"),
            json!({ "status": status }),
            token,
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "to {status}: {}", reply.text);
    assert_eq!(reply.body["status"], status);
    reply.body
}

/// Submits, approves and publishes article `id` as `token`.
async fn publish(app: &TestApp, token: &str, id: &str) -> Value {
    move_to(app, token, id, "pending_review").await;
    move_to(app, token, id, "approved").await;
    let published = move_to(app, token, id, "published").await;
    assert!(published["published_at"].is_string(), "{published}");
    published
}

/// Creates and publishes an article as `token` (who needs articles.publish).
async fn published(app: &TestApp, token: &str, body: Value) -> Value {
    let created = create(app, token, body).await;
    publish(app, token, created["id"].as_str().unwrap()).await
}

fn id_of(item: &Value) -> String {
    item["id"].as_str().unwrap().to_string()
}

/// Every page of a list, following `next_cursor`; each page is checked against `limit`.
async fn pages(app: &TestApp, path: &str, token: Option<&str>) -> Vec<Vec<Value>> {
    let separator = if path.contains('?') { '&' } else { '?' };
    let mut pages: Vec<Vec<Value>> = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let url = match &cursor {
            Some(c) => format!("{path}{separator}cursor={}", enc(c)),
            None => path.to_string(),
        };
        let reply = app.get(&url, token).await;
        assert_eq!(reply.status, StatusCode::OK, "GET {url}: {}", reply.text);
        let page = reply.body["data"].as_array().unwrap().clone();
        pages.push(page);
        assert!(pages.len() <= 200, "GET {path} never ends");
        match reply.body["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => return pages,
        }
    }
}

/// Every item of a list, in order.
async fn all_items(app: &TestApp, path: &str, token: Option<&str>) -> Vec<Value> {
    pages(app, path, token)
        .await
        .into_iter()
        .flatten()
        .collect()
}

/// The ids a list holds (checking that none comes twice).
async fn list_ids(app: &TestApp, path: &str, token: Option<&str>) -> BTreeSet<String> {
    let items = all_items(app, path, token).await;
    let ids: BTreeSet<String> = items.iter().map(id_of).collect();
    assert_eq!(ids.len(), items.len(), "GET {path} repeats an article");
    ids
}

/// Types and data of the content service's events, oldest first.
async fn content_events(app: &TestApp, kind: &str) -> Vec<Value> {
    app.db()
        .await
        .query(
            "SELECT data::text FROM content.outbox WHERE type = $1 ORDER BY occurred_at, id",
            &[&kind],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| serde_json::from_str(r.get::<_, &str>(0)).unwrap())
        .collect()
}

/// The people of the access tests: groups Dept ⊃ Team, and who is in them.
struct World {
    admin: Session,
    /// An Editor in Team.
    member: Session,
    /// A Viewer in Team.
    reader: Session,
    /// An Editor in no group.
    outsider: Session,
    /// A Viewer in no group.
    viewer: Session,
    dept: String,
    team: String,
}

impl World {
    async fn new(app: &TestApp) -> Self {
        let admin = app.admin("ada").await;
        let token = admin.access_token.as_str();
        let dept = group(app, token, "Dept", None).await;
        let team = group(app, token, "Team", Some(&dept)).await;
        let member = app.user_with_role("member", "Editor").await;
        let reader = app.viewer("reader").await;
        let outsider = app.user_with_role("outsider", "Editor").await;
        let viewer = app.viewer("vera").await;
        let member_id = app.user_id(&member.email).await;
        let reader_id = app.user_id(&reader.email).await;
        let joined = app
            .put(
                &format!("/api/v1/groups/{team}/members"),
                json!({ "add": [member_id, reader_id] }),
                token,
            )
            .await;
        assert_eq!(joined.status, StatusCode::OK, "{}", joined.text);
        // The content worker learns the groups; auth learns the memberships.
        app.settle().await;
        let member = app.refresh(&member).await;
        let reader = app.refresh(&reader).await;
        for session in [&member, &reader] {
            let groups = decode_claims(&session.access_token)["groups"].clone();
            for g in [&dept, &team] {
                assert!(
                    groups.as_array().unwrap().contains(&json!(g)),
                    "the token's groups {groups} name {g} (ancestors included)"
                );
            }
        }
        for session in [&outsider, &viewer] {
            let groups = decode_claims(&session.access_token)["groups"].clone();
            assert!(
                groups.is_null() || groups == json!([]),
                "an outsider is in no group: {groups}"
            );
        }
        Self {
            admin,
            member,
            reader,
            outsider,
            viewer,
            dept,
            team,
        }
    }

    /// A category restricted to Dept: can_view, not can_edit.
    async fn secret_category(&self, app: &TestApp, name: &str) -> String {
        let token = self.admin.access_token.as_str();
        let id = category(app, token, name, None).await;
        let rules = set_access(
            app,
            token,
            &id,
            json!([{ "group_id": self.dept, "can_view": true, "can_edit": false }]),
        )
        .await;
        assert_eq!(rules.body["restricted"], true, "{}", rules.text);
        id
    }
}

/// The read routes of one article.
fn read_routes(id: &str, slug: &str) -> Vec<String> {
    vec![
        format!("/api/v1/articles/{id}"),
        format!("/api/v1/articles/slug/{slug}"),
        format!("/api/v1/articles/{id}/blocks"),
        format!("/api/v1/articles/{id}/seo"),
        format!("/api/v1/articles/{id}/tags"),
        format!("/api/v1/articles/{id}/versions"),
        format!("/api/v1/articles/{id}/versions/1"),
    ]
}

#[tokio::test]
async fn a_restricted_category_hides_its_articles_from_outsiders_on_every_route_with_404() {
    let app = TestApp::spawn().await;
    let w = World::new(&app).await;
    let admin = w.admin.access_token.as_str();
    let secret = w.secret_category(&app, "Secret").await;
    let article = published(
        &app,
        admin,
        json!({
            "title": "Quarterly zebra plans",
            "category_id": secret,
            "tags": ["Zebras"],
            "blocks": [paragraph("<p>Our xylophonic roadmap for the coming quarter.</p>")],
        }),
    )
    .await;
    assert_eq!(article["visibility"], "public");
    let id = id_of(&article);
    let slug = article["slug"].as_str().unwrap().to_string();
    let lists = [
        "/api/v1/articles".to_string(),
        format!("/api/v1/articles?category_id={secret}"),
        format!("/api/v1/articles?category_id={secret}&include_subcategories=true"),
        "/api/v1/articles?q=xylophonic".to_string(),
        "/api/v1/articles?q=zebra".to_string(),
        "/api/v1/articles?tag=zebras".to_string(),
        "/api/v1/articles?status=published".to_string(),
    ];

    let outsiders = [
        (
            "the outsider Editor",
            Some(w.outsider.access_token.as_str()),
        ),
        ("a Viewer", Some(w.viewer.access_token.as_str())),
        ("an anonymous caller", None),
    ];
    for (who, token) in outsiders {
        for path in read_routes(&id, &slug) {
            let reply = app.get(&path, token).await;
            assert_eq!(
                reply.status,
                StatusCode::NOT_FOUND,
                "{who}: GET {path}: {}",
                reply.text
            );
            reply.assert_problem(404);
        }
        for path in &lists {
            let ids = list_ids(&app, path, token).await;
            assert!(!ids.contains(&id), "{who}: GET {path} lists the article");
        }
        let category = app
            .get(&format!("/api/v1/categories/{secret}"), token)
            .await;
        assert_eq!(
            category.status,
            StatusCode::NOT_FOUND,
            "{who}: GET the category: {}",
            category.text
        );
        let tree = app.get("/api/v1/categories", token).await;
        assert_eq!(tree.status, StatusCode::OK, "{}", tree.text);
        assert!(
            !tree.text.contains(&secret),
            "{who}: the tree shows Secret: {}",
            tree.text
        );
    }

    // Writing to it is 404 too for an Editor outside the groups, whatever the route.
    let outsider = w.outsider.access_token.as_str();
    let writes: Vec<(Method, String, Option<Value>)> = vec![
        (
            Method::PUT,
            format!("/api/v1/articles/{id}"),
            Some(json!({ "title": "Hijacked" })),
        ),
        (
            Method::PUT,
            format!("/api/v1/articles/{id}/status"),
            Some(json!({ "status": "archived" })),
        ),
        (Method::POST, format!("/api/v1/articles/{id}/publish"), None),
        (
            Method::PUT,
            format!("/api/v1/articles/{id}/seo"),
            Some(json!({ "meta_title": "Hijacked" })),
        ),
        (
            Method::PUT,
            format!("/api/v1/articles/{id}/tags"),
            Some(json!({ "tags": ["Hijacked"] })),
        ),
        (
            Method::POST,
            format!("/api/v1/articles/{id}/blocks"),
            Some(paragraph("Hijacked")),
        ),
        (
            Method::PUT,
            format!("/api/v1/articles/{id}/blocks"),
            Some(json!({ "blocks": [] })),
        ),
        (
            Method::POST,
            format!("/api/v1/articles/{id}/restore/1"),
            None,
        ),
        (Method::DELETE, format!("/api/v1/articles/{id}"), None),
    ];
    for (method, path, body) in writes {
        let reply = app.call(method.clone(), &path, body, Some(outsider)).await;
        assert_eq!(
            reply.status,
            StatusCode::NOT_FOUND,
            "the outsider Editor: {method} {path}: {}",
            reply.text
        );
        reply.assert_problem(404);
    }
    // Nor can they write in the category: it names no category they know of.
    let elsewhere = app
        .post_as(
            "/api/v1/articles",
            json!({ "title": "Planted", "category_id": secret }),
            outsider,
        )
        .await;
    elsewhere.assert_problem(422);
    assert_eq!(elsewhere.error_fields(), ["category_id"]);
    let untouched = app
        .get(&format!("/api/v1/articles/{id}"), Some(admin))
        .await;
    assert_eq!(untouched.status, StatusCode::OK, "{}", untouched.text);
    assert_eq!(untouched.body["title"], "Quarterly zebra plans");
    assert_eq!(untouched.body["status"], "published");
    assert_eq!(untouched.body["blocks"].as_array().unwrap().len(), 1);
    assert_eq!(untouched.body["tags"][0]["slug"], "zebras");

    // Members of Team (under Dept) see it everywhere, Editor or Viewer.
    let members = [
        ("the member Editor", w.member.access_token.as_str()),
        ("the member Viewer", w.reader.access_token.as_str()),
    ];
    for (who, token) in members {
        for path in read_routes(&id, &slug) {
            let reply = app.get(&path, Some(token)).await;
            let expected = if path.contains("/versions") && token == w.reader.access_token {
                // The history is for its author and editors, but the article exists.
                StatusCode::FORBIDDEN
            } else {
                StatusCode::OK
            };
            assert_eq!(reply.status, expected, "{who}: GET {path}: {}", reply.text);
        }
        for path in &lists {
            let ids = list_ids(&app, path, Some(token)).await;
            assert!(
                ids.contains(&id),
                "{who}: GET {path} leaves the article out"
            );
        }
        let found = app.get("/api/v1/articles?q=xylophonic", Some(token)).await;
        assert!(
            found.body["data"][0]["snippet"]
                .as_str()
                .unwrap_or_default()
                .contains("<mark>xylophonic</mark>"),
            "{}",
            found.text
        );
        let category = app
            .get(&format!("/api/v1/categories/{secret}"), Some(token))
            .await;
        assert_eq!(category.status, StatusCode::OK, "{who}: {}", category.text);
    }

    // Dept's rule has no can_edit: the member Editor reads but does not write...
    let member = w.member.access_token.as_str();
    let refused = app
        .put(
            &format!("/api/v1/articles/{id}"),
            json!({ "title": "Quarterly zebra plans, revised" }),
            member,
        )
        .await;
    refused.assert_problem(403);
    assert!(refused.text.contains("can_edit"), "{}", refused.text);
    let refused = app
        .put(
            &format!("/api/v1/articles/{id}/status"),
            json!({ "status": "archived" }),
            member,
        )
        .await;
    refused.assert_problem(403);
    let refused = app
        .post_as(
            "/api/v1/articles",
            json!({ "title": "Member's plan", "category_id": secret }),
            member,
        )
        .await;
    refused.assert_problem(403);
    // ...while an Admin (categories.manage), in no group, does.
    let edited = app
        .put(
            &format!("/api/v1/articles/{id}"),
            json!({ "title": "Quarterly zebra plans, v2" }),
            admin,
        )
        .await;
    assert_eq!(edited.status, StatusCode::OK, "{}", edited.text);

    // A can_edit rule for Team lets the member write.
    set_access(
        &app,
        admin,
        &secret,
        json!([
            { "group_id": w.dept, "can_view": true, "can_edit": false },
            { "group_id": w.team, "can_view": true, "can_edit": true },
        ]),
    )
    .await;
    let member = app.refresh(&w.member).await;
    let edited = app
        .put(
            &format!("/api/v1/articles/{id}"),
            json!({ "title": "Quarterly zebra plans, revised" }),
            &member.access_token,
        )
        .await;
    assert_eq!(edited.status, StatusCode::OK, "{}", edited.text);
    assert_eq!(edited.body["title"], "Quarterly zebra plans, revised");
    let written = app
        .post_as(
            "/api/v1/articles",
            json!({ "title": "Member's plan", "category_id": secret }),
            &member.access_token,
        )
        .await;
    assert_eq!(written.status, StatusCode::CREATED, "{}", written.text);
    // The Viewer member still only reads (no articles.edit), and the outsider still sees nothing.
    app.put(
        &format!("/api/v1/articles/{id}"),
        json!({ "title": "Reader's edit" }),
        &w.reader.access_token,
    )
    .await
    .assert_problem(403);
    app.get(&format!("/api/v1/articles/{id}"), Some(outsider))
        .await
        .assert_problem(404);
    let search = list_ids(&app, "/api/v1/articles?q=xylophonic", Some(outsider)).await;
    assert!(search.is_empty(), "{search:?}");
}

#[tokio::test]
async fn an_article_in_a_subcategory_of_a_restricted_category_is_hidden_with_it() {
    let app = TestApp::spawn().await;
    let w = World::new(&app).await;
    let admin = w.admin.access_token.as_str();
    let secret = w.secret_category(&app, "Secret").await;
    let annex = category(&app, admin, "Annex", Some(&secret)).await;
    let article = published(
        &app,
        admin,
        json!({
            "title": "Annex inventory",
            "category_id": annex,
            "blocks": [paragraph("A quixotic list of crates.")],
        }),
    )
    .await;
    let id = id_of(&article);
    let slug = article["slug"].as_str().unwrap();

    // Every leak is collected, so that a failure names them all.
    let mut leaks: Vec<String> = Vec::new();
    for (who, token) in [
        (
            "the outsider Editor",
            Some(w.outsider.access_token.as_str()),
        ),
        ("a Viewer", Some(w.viewer.access_token.as_str())),
        ("an anonymous caller", None),
    ] {
        // The categories module hides the whole subtree of a hidden category...
        let category = app.get(&format!("/api/v1/categories/{annex}"), token).await;
        if category.status != StatusCode::NOT_FOUND {
            leaks.push(format!(
                "{who}: GET /categories/{{annex}} answers {}",
                category.status
            ));
        }
        // ...so its articles are hidden as well.
        for path in [
            format!("/api/v1/articles/{id}"),
            format!("/api/v1/articles/slug/{slug}"),
            format!("/api/v1/articles/{id}/blocks"),
        ] {
            let reply = app.get(&path, token).await;
            if reply.status != StatusCode::NOT_FOUND {
                leaks.push(format!("{who}: GET {path} answers {}", reply.status));
            }
        }
        for path in [
            "/api/v1/articles".to_string(),
            format!("/api/v1/articles?category_id={annex}"),
            format!("/api/v1/articles?category_id={secret}&include_subcategories=true"),
            "/api/v1/articles?q=quixotic".to_string(),
        ] {
            if list_ids(&app, &path, token).await.contains(&id) {
                leaks.push(format!("{who}: GET {path} lists the article"));
            }
        }
    }
    assert!(
        leaks.is_empty(),
        "the article of a subcategory of a hidden category leaks:\n{}",
        leaks.join("\n")
    );
    for token in [&w.member.access_token, &w.reader.access_token] {
        let reply = app
            .get(&format!("/api/v1/articles/{id}"), Some(token))
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    }
}

/// A custom role that writes (articles.create) but edits nothing else (no articles.edit).
async fn writer_role(app: &TestApp, admin: &str) {
    let view = id_named(app, "permissions", "articles.view").await;
    let create = id_named(app, "permissions", "articles.create").await;
    created_id(
        &app.post_as(
            "/api/v1/roles",
            json!({ "name": "Writer", "permission_ids": [view, create] }),
            admin,
        )
        .await,
    );
}

#[tokio::test]
async fn visibility_and_status_decide_who_reads_a_published_article() {
    let app = TestApp::spawn().await;
    let w = World::new(&app).await;
    let admin = w.admin.access_token.as_str();
    writer_role(&app, admin).await;
    let author = app.user_with_role("paula", "Writer").await;

    // A private article, written by a Writer and published by the Admin.
    let private = create(
        &app,
        &author.access_token,
        json!({ "title": "Private memo", "visibility": "private",
                "blocks": [paragraph("For the few.")] }),
    )
    .await;
    let private_id = id_of(&private);
    move_to(&app, &author.access_token, &private_id, "pending_review").await;
    move_to(&app, admin, &private_id, "approved").await;
    move_to(&app, admin, &private_id, "published").await;
    let private_slug = private["slug"].as_str().unwrap();
    let cases = [
        (
            "its author (no articles.edit)",
            Some(author.access_token.as_str()),
            true,
        ),
        ("an Editor", Some(w.outsider.access_token.as_str()), true),
        ("a Viewer", Some(w.viewer.access_token.as_str()), false),
        (
            "a Viewer in a group",
            Some(w.reader.access_token.as_str()),
            false,
        ),
        ("an anonymous caller", None, false),
    ];
    for (who, token, sees) in cases {
        let expected = if sees {
            StatusCode::OK
        } else {
            StatusCode::NOT_FOUND
        };
        for path in [
            format!("/api/v1/articles/{private_id}"),
            format!("/api/v1/articles/slug/{private_slug}"),
            format!("/api/v1/articles/{private_id}/blocks"),
        ] {
            let reply = app.get(&path, token).await;
            assert_eq!(reply.status, expected, "{who}: GET {path}: {}", reply.text);
        }
        let listed = list_ids(&app, "/api/v1/articles", token).await;
        assert_eq!(listed.contains(&private_id), sees, "{who}: the list");
        let listed = list_ids(&app, "/api/v1/articles?visibility=private", token).await;
        assert_eq!(
            listed.contains(&private_id),
            sees,
            "{who}: ?visibility=private"
        );
    }

    // A restricted article in a category whose rule lets Dept view it.
    let handbook = w.secret_category(&app, "Handbook").await;
    let restricted = published(
        &app,
        admin,
        json!({ "title": "Team handbook", "visibility": "restricted", "category_id": handbook,
                "blocks": [paragraph("How we work.")] }),
    )
    .await;
    let restricted_id = id_of(&restricted);
    let restricted_slug = restricted["slug"].as_str().unwrap();
    let cases = [
        (
            "the member Viewer",
            Some(w.reader.access_token.as_str()),
            true,
        ),
        (
            "the member Editor",
            Some(w.member.access_token.as_str()),
            true,
        ),
        ("a Viewer", Some(w.viewer.access_token.as_str()), false),
        (
            "the outsider Editor",
            Some(w.outsider.access_token.as_str()),
            false,
        ),
        ("an anonymous caller", None, false),
    ];
    for (who, token, sees) in cases {
        let expected = if sees {
            StatusCode::OK
        } else {
            StatusCode::NOT_FOUND
        };
        for path in [
            format!("/api/v1/articles/{restricted_id}"),
            format!("/api/v1/articles/slug/{restricted_slug}"),
            format!("/api/v1/articles/{restricted_id}/seo"),
        ] {
            let reply = app.get(&path, token).await;
            assert_eq!(reply.status, expected, "{who}: GET {path}: {}", reply.text);
        }
        let listed = list_ids(&app, "/api/v1/articles?visibility=restricted", token).await;
        assert_eq!(listed.contains(&restricted_id), sees, "{who}: the list");
    }

    // Restricted in a category without rules: no group can view it, so only its author and
    // editors read it.
    let open = category(&app, admin, "Open", None).await;
    let lonely = published(
        &app,
        admin,
        json!({ "title": "Restricted without rules", "visibility": "restricted",
                "category_id": open }),
    )
    .await;
    let lonely_id = id_of(&lonely);
    for (who, token, sees) in [
        (
            "the member Viewer",
            Some(w.reader.access_token.as_str()),
            false,
        ),
        ("a Viewer", Some(w.viewer.access_token.as_str()), false),
        ("an anonymous caller", None, false),
        ("an Editor", Some(w.outsider.access_token.as_str()), true),
    ] {
        let reply = app
            .get(&format!("/api/v1/articles/{lonely_id}"), token)
            .await;
        let expected = if sees {
            StatusCode::OK
        } else {
            StatusCode::NOT_FOUND
        };
        assert_eq!(reply.status, expected, "{who}: {}", reply.text);
    }

    // A draft (and one in review) is its author's and the editors'.
    let draft = create(
        &app,
        &author.access_token,
        json!({ "title": "Unfinished thoughts", "blocks": [paragraph("Not yet.")] }),
    )
    .await;
    let draft_id = id_of(&draft);
    let draft_slug = draft["slug"].as_str().unwrap().to_string();
    for round in ["draft", "pending_review"] {
        if round == "pending_review" {
            move_to(&app, &author.access_token, &draft_id, "pending_review").await;
        }
        for (who, token, sees) in [
            ("its author", Some(author.access_token.as_str()), true),
            ("an Editor", Some(w.outsider.access_token.as_str()), true),
            ("a Viewer", Some(w.viewer.access_token.as_str()), false),
            ("an anonymous caller", None, false),
        ] {
            let reply = app
                .get(&format!("/api/v1/articles/{draft_id}"), token)
                .await;
            let expected = if sees {
                StatusCode::OK
            } else {
                StatusCode::NOT_FOUND
            };
            assert_eq!(reply.status, expected, "{who}, {round}: {}", reply.text);
            let listed = list_ids(&app, "/api/v1/articles", token).await;
            assert_eq!(listed.contains(&draft_id), sees, "{who}, {round}: the list");
        }
        // Unpublished, it has no public page, even for its author.
        app.get(
            &format!("/api/v1/articles/slug/{draft_slug}"),
            Some(&author.access_token),
        )
        .await
        .assert_problem(404);
    }
}

/// A snippet is escaped text in which the only markup is `<mark>word</mark>` around `word`.
#[track_caller]
fn assert_safe_snippet(snippet: &str, word: &str) {
    let mut text = String::new();
    let mut rest = snippet;
    let mut marks = 0;
    while let Some(start) = rest.find("<mark>") {
        text.push_str(&rest[..start]);
        let after = &rest[start + "<mark>".len()..];
        let end = after
            .find("</mark>")
            .unwrap_or_else(|| panic!("an unclosed mark in {snippet}"));
        assert_eq!(
            after[..end].to_lowercase(),
            word,
            "only the searched word is marked: {snippet}"
        );
        marks += 1;
        rest = &after[end + "</mark>".len()..];
    }
    text.push_str(rest);
    assert!(marks > 0, "the word is marked: {snippet}");
    assert!(
        !text.contains('<') && !text.contains('>'),
        "unescaped markup in the snippet: {snippet}"
    );
    for (i, _) in text.match_indices('&') {
        let entity = &text[i..];
        assert!(
            ["&amp;", "&lt;", "&gt;", "&quot;", "&#"]
                .iter()
                .any(|e| entity.starts_with(e)),
            "an unescaped & in the snippet: {snippet}"
        );
    }
}

#[tokio::test]
async fn search_ranks_highlights_safely_and_understands_websearch_syntax() {
    let app = TestApp::spawn().await;
    let admin = app.admin("ada").await;
    let token = admin.access_token.as_str();

    // A word only in a later block: not in the title, not in the (custom) excerpt.
    let notes = published(
        &app,
        token,
        json!({
            "title": "Field notes",
            "excerpt": "Observations from the marsh.",
            "blocks": [
                paragraph("<p>Reeds and herons at dawn.</p>"),
                paragraph("<p>The zymurgy of the reeds is remarkable.</p>"),
            ],
        }),
    )
    .await;
    assert_eq!(notes["excerpt"], "Observations from the marsh.");
    let one = app.get("/api/v1/articles?q=zymurgy", None).await;
    assert_eq!(one.status, StatusCode::OK, "{}", one.text);
    let data = one.body["data"].as_array().unwrap();
    assert_eq!(data.len(), 1, "{}", one.text);
    assert_eq!(data[0]["id"], notes["id"]);
    assert!(data[0]["rank"].as_f64().unwrap() > 0.0, "{}", one.text);
    let snippet = data[0]["snippet"].as_str().unwrap();
    assert!(snippet.contains("<mark>zymurgy</mark>"), "{snippet}");
    assert_safe_snippet(snippet, "zymurgy");
    // The list without q carries neither rank nor snippet.
    let plain = app.get("/api/v1/articles", None).await;
    assert!(
        plain.body["data"][0].get("snippet").is_none(),
        "{}",
        plain.text
    );

    // The first page of a search is recorded as search.performed.
    let searches = content_events(&app, "search.performed").await;
    let recorded = searches
        .iter()
        .find(|e| e["query"] == "zymurgy")
        .unwrap_or_else(|| panic!("no search.performed for zymurgy: {searches:?}"));
    assert_eq!(recorded["results"], 1);
    assert_eq!(recorded["result_ids"], json!([notes["id"]]));
    // An analytics event: the search leaves it to the scheduler's sweep, which sends it.
    assert_eq!(
        app.unpublished("content", "search.performed").await,
        searches.len() as i64
    );
    let swept = app
        .stack
        .scheduler
        .sweep_outboxes(std::time::Duration::ZERO)
        .await
        .unwrap();
    assert!(swept >= searches.len(), "swept {swept}");
    assert_eq!(app.unpublished("content", "search.performed").await, 0);

    // Websearch syntax: "exact phrase" and -excluded.
    let lights = published(
        &app,
        token,
        json!({ "title": "Harbor report one",
                "blocks": [paragraph("The crimson harbor lights shone all night.")] }),
    )
    .await;
    let painted = published(
        &app,
        token,
        json!({ "title": "Harbor report two",
                "blocks": [paragraph("A harbor painted crimson at dusk, near the lighthouse.")] }),
    )
    .await;
    let both: BTreeSet<String> = [id_of(&lights), id_of(&painted)].into();
    let search = |q: &str| format!("/api/v1/articles?q={}", enc(q));
    assert_eq!(list_ids(&app, &search("crimson harbor"), None).await, both);
    assert_eq!(
        list_ids(&app, &search("\"crimson harbor\""), None).await,
        BTreeSet::from([id_of(&lights)]),
        "a quoted phrase matches only its words in that order"
    );
    assert_eq!(
        list_ids(&app, &search("crimson -lighthouse"), None).await,
        BTreeSet::from([id_of(&lights)]),
        "-word excludes"
    );
    assert_eq!(
        list_ids(&app, &search("zymurgy or lighthouse"), None).await,
        BTreeSet::from([id_of(&notes), id_of(&painted)]),
        "or"
    );

    // A title match ranks above a body match, and relevance pages with a cursor.
    let in_body = published(
        &app,
        token,
        json!({ "title": "Star charts", "excerpt": "Maps of the sky.",
                "blocks": [paragraph("Charts and more charts."),
                           paragraph("One faint nebula near the pole.")] }),
    )
    .await;
    let in_title = published(
        &app,
        token,
        json!({ "title": "Nebula atlas", "blocks": [paragraph("Pictures of clouds in space.")] }),
    )
    .await;
    let ranked = app.get(&search("nebula"), None).await;
    assert_eq!(ranked.status, StatusCode::OK, "{}", ranked.text);
    let data = ranked.body["data"].as_array().unwrap();
    assert_eq!(
        data.iter().map(id_of).collect::<Vec<_>>(),
        [id_of(&in_title), id_of(&in_body)],
        "{}",
        ranked.text
    );
    assert!(
        data[0]["rank"].as_f64().unwrap() > data[1]["rank"].as_f64().unwrap(),
        "{}",
        ranked.text
    );
    let paged = pages(&app, &format!("{}&limit=1", search("nebula")), None).await;
    assert_eq!(
        paged
            .iter()
            .map(|p| p.iter().map(id_of).collect::<Vec<_>>())
            .collect::<Vec<_>>(),
        [vec![id_of(&in_title)], vec![id_of(&in_body)]]
    );
    // Another order on request.
    let by_title = all_items(&app, &format!("{}&sort=title", search("harbor")), None).await;
    assert_eq!(
        by_title.iter().map(id_of).collect::<Vec<_>>(),
        [id_of(&lights), id_of(&painted)]
    );

    // Markup in the text never reaches the snippet unescaped.
    let hostile = published(
        &app,
        token,
        json!({
            "title": "Lantern code",
            "excerpt": "Glowing things.",
            "blocks": [
                paragraph("<p>Setup first.</p>"),
                { "block_type": "code", "metadata": { "language": "html" },
                  "content": "let bioluminescent = 1; // <script>alert(1)</script> <mark>fake</mark> & <b>bold</b>" },
                paragraph("<p>&lt;img src=x onerror=alert(2)&gt; bioluminescent glow</p>"),
            ],
        }),
    )
    .await;
    let found = app.get(&search("bioluminescent"), None).await;
    assert_eq!(found.status, StatusCode::OK, "{}", found.text);
    assert_eq!(found.body["data"][0]["id"], hostile["id"], "{}", found.text);
    let snippet = found.body["data"][0]["snippet"].as_str().unwrap();
    assert!(
        snippet.contains("alert"),
        "the snippet shows the text around the word: {snippet}"
    );
    assert_safe_snippet(snippet, "bioluminescent");

    // A query of stop words only matches nothing; a long one is refused.
    let stop = app.get("/api/v1/articles?q=the", None).await;
    assert_eq!(stop.status, StatusCode::OK, "{}", stop.text);
    assert_eq!(stop.body["data"], json!([]), "{}", stop.text);
    assert!(stop.body["next_cursor"].is_null());
    let long = app
        .get(&format!("/api/v1/articles?q={}", "a".repeat(201)), None)
        .await;
    long.assert_problem(422);
    assert_eq!(long.error_fields(), ["q"]);
    let just_right = app
        .get(&format!("/api/v1/articles?q={}", "a".repeat(200)), None)
        .await;
    assert_eq!(just_right.status, StatusCode::OK, "{}", just_right.text);
}

/// What one seeded article is.
#[derive(Debug, Clone)]
struct Seeded {
    id: String,
    author: usize,
    /// 0: the parent category, 1: its child.
    category: Option<usize>,
    tags: Vec<&'static str>,
    featured: bool,
    private: bool,
    published: bool,
    views: i64,
}

/// An article's key in the order `sort`.
#[derive(Debug, PartialEq, PartialOrd)]
enum Key {
    Time(Option<DateTime<Utc>>),
    Text(String),
    Count(i64),
}

fn time(raw: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(raw)
        .unwrap_or_else(|_| panic!("not RFC 3339: {raw}"))
        .with_timezone(&Utc)
}

fn key(sort: &str, item: &Value) -> Key {
    match sort.trim_start_matches('-') {
        "published_at" => Key::Time(item["published_at"].as_str().map(time)),
        "updated_at" => Key::Time(Some(time(item["updated_at"].as_str().unwrap()))),
        "title" => Key::Text(item["title"].as_str().unwrap().to_lowercase()),
        "view_count" => Key::Count(item["view_count"].as_i64().unwrap()),
        other => panic!("no key for {other}"),
    }
}

/// Pages through `path` (with a query string) `limit` at a time and checks that it holds
/// `expected` exactly once each, in the order `sort` (ties by id).
async fn assert_paged(
    app: &TestApp,
    path: &str,
    sort: &str,
    limit: usize,
    token: Option<&str>,
    expected: &BTreeSet<String>,
) {
    let pages = pages(app, &format!("{path}&limit={limit}"), token).await;
    let count = pages.len();
    for (i, page) in pages.iter().enumerate() {
        if i + 1 < count {
            assert_eq!(page.len(), limit, "{path}: page {i} is short");
        } else {
            assert!(
                !page.is_empty() || expected.is_empty(),
                "{path}: an empty last page"
            );
            assert!(page.len() <= limit);
        }
    }
    let items: Vec<Value> = pages.into_iter().flatten().collect();
    let ids: Vec<String> = items.iter().map(id_of).collect();
    let unique: BTreeSet<String> = ids.iter().cloned().collect();
    assert_eq!(unique.len(), ids.len(), "{path}: an article comes twice");
    assert_eq!(&unique, expected, "{path}: not every article, or others");
    let descending = sort.starts_with('-');
    for pair in items.windows(2) {
        let a = (
            key(sort, &pair[0]),
            Uuid::parse_str(pair[0]["id"].as_str().unwrap()).unwrap(),
        );
        let b = (
            key(sort, &pair[1]),
            Uuid::parse_str(pair[1]["id"].as_str().unwrap()).unwrap(),
        );
        let in_order = if descending { a > b } else { a < b };
        assert!(in_order, "{path}: {a:?} comes before {b:?}");
    }
}

const SORTS: [&str; 8] = [
    "-published_at",
    "published_at",
    "-updated_at",
    "updated_at",
    "title",
    "-title",
    "-view_count",
    "view_count",
];

#[tokio::test]
async fn every_order_pages_through_every_article_once_and_every_filter_is_exact() {
    let app = TestApp::spawn().await;
    let ada = app.admin("ada").await;
    let bea = app.admin("bea").await;
    let authors = [ada.access_token.as_str(), bea.access_token.as_str()];
    let admin = authors[0];
    let guides = category(&app, admin, "Guides", None).await;
    let deep = category(&app, admin, "Deep dives", Some(&guides)).await;
    let categories = [guides.clone(), deep.clone()];

    let mut seeded: Vec<Seeded> = Vec::new();
    for i in 0..29usize {
        let is_draft = i >= 25;
        let author = i % 2;
        let category = match i % 3 {
            0 => Some(0),
            1 => Some(1),
            _ => None,
        };
        let tags = match i % 4 {
            0 => vec!["Rustacean"],
            1 => vec!["Rustacean", "Postgres"],
            _ => vec![],
        };
        let featured = i % 5 == 0;
        let private = !is_draft && i % 6 == 5;
        let title = if is_draft {
            format!("Ledger draft {i}")
        } else {
            format!("Ledger {:02}", (i * 7) % 25)
        };
        let body = json!({
            "title": title,
            "category_id": category.map(|c: usize| categories[c].clone()),
            "tags": tags,
            "is_featured": featured,
            "visibility": if private { "private" } else { "public" },
            "blocks": [paragraph(&format!("Entry {i} of the ledger."))],
        });
        let token = authors[author];
        let article = create(&app, token, body).await;
        let id = id_of(&article);
        if !is_draft {
            publish(&app, token, &id).await;
        }
        seeded.push(Seeded {
            id,
            author,
            category,
            tags,
            featured,
            private,
            published: !is_draft,
            views: 0,
        });
    }
    // Views: read the public page n times.
    for (i, s) in seeded.iter_mut().enumerate() {
        if !s.published {
            continue;
        }
        let n = (i % 4) as i64;
        let slug = app
            .get(&format!("/api/v1/articles/{}", s.id), Some(admin))
            .await
            .body["slug"]
            .as_str()
            .unwrap()
            .to_string();
        for _ in 0..n {
            let read = app
                .get(&format!("/api/v1/articles/slug/{slug}"), Some(admin))
                .await;
            assert_eq!(read.status, StatusCode::OK, "{}", read.text);
        }
        s.views = n;
    }
    let every: BTreeSet<String> = seeded.iter().map(|s| s.id.clone()).collect();
    let public: BTreeSet<String> = seeded
        .iter()
        .filter(|s| s.published && !s.private)
        .map(|s| s.id.clone())
        .collect();
    assert_eq!((every.len(), public.len()), (29, 21));

    // The view counts came through.
    let listed = all_items(&app, "/api/v1/articles?limit=100", Some(admin)).await;
    for s in &seeded {
        let item = listed.iter().find(|a| id_of(a) == s.id).unwrap();
        assert_eq!(item["view_count"], s.views, "{item}");
    }

    // Every order, 7 at a time, as an Admin (everything) and anonymously (public only).
    for sort in SORTS {
        let path = format!("/api/v1/articles?sort={}", enc(sort));
        assert_paged(&app, &path, sort, 7, Some(admin), &every).await;
        assert_paged(&app, &path, sort, 7, None, &public).await;
    }
    // Two at a time, a page ends between two never-published drafts (a cursor without a
    // publication time) in both directions.
    for sort in ["-published_at", "published_at"] {
        let path = format!("/api/v1/articles?sort={}", enc(sort));
        assert_paged(&app, &path, sort, 2, Some(admin), &every).await;
    }
    // The default order is newest publication first.
    assert_paged(
        &app,
        "/api/v1/articles?x=1",
        "-published_at",
        7,
        None,
        &public,
    )
    .await;
    assert_paged(
        &app,
        "/api/v1/articles?x=1",
        "-published_at",
        7,
        Some(admin),
        &every,
    )
    .await;

    // A cursor belongs to its order.
    let first = app
        .get("/api/v1/articles?sort=title&limit=7", Some(admin))
        .await;
    let cursor = first.body["next_cursor"].as_str().unwrap().to_string();
    for other in ["sort=-view_count&", "sort=-title&", ""] {
        let mixed = app
            .get(
                &format!("/api/v1/articles?{other}limit=7&cursor={}", enc(&cursor)),
                Some(admin),
            )
            .await;
        mixed.assert_problem(422);
        assert_eq!(mixed.error_fields(), ["cursor"], "{other}");
    }
    let forged = app
        .get("/api/v1/articles?cursor=not-a-cursor", Some(admin))
        .await;
    forged.assert_problem(422);
    assert_eq!(forged.error_fields(), ["cursor"]);

    // Every filter answers exactly the articles it names.
    let tagged = app
        .get(&format!("/api/v1/articles/{}", seeded[1].id), Some(admin))
        .await;
    let tag_ids = tagged.body["tags"].as_array().unwrap().clone();
    let postgres_id = tag_ids
        .iter()
        .find(|t| t["slug"] == "postgres")
        .unwrap_or_else(|| panic!("a postgres tag: {tag_ids:?}"))["id"]
        .as_str()
        .unwrap()
        .to_string();
    let ada_id = app.user_id(&ada.email).await;
    let bea_id = app.user_id(&bea.email).await;
    let select = |f: &dyn Fn(&Seeded) -> bool| -> BTreeSet<String> {
        seeded
            .iter()
            .filter(|s| f(s))
            .map(|s| s.id.clone())
            .collect()
    };
    let cases: Vec<(String, BTreeSet<String>)> = vec![
        ("status=draft".into(), select(&|s| !s.published)),
        ("status=published".into(), select(&|s| s.published)),
        ("status=archived".into(), BTreeSet::new()),
        ("visibility=private".into(), select(&|s| s.private)),
        ("visibility=public".into(), select(&|s| !s.private)),
        (
            format!("category_id={guides}"),
            select(&|s| s.category == Some(0)),
        ),
        (
            format!("category_id={deep}"),
            select(&|s| s.category == Some(1)),
        ),
        (
            format!("category_id={guides}&include_subcategories=true"),
            select(&|s| s.category.is_some()),
        ),
        (
            format!("category_id={guides}&include_subcategories=false"),
            select(&|s| s.category == Some(0)),
        ),
        (
            format!("category_id={deep}&include_subcategories=true"),
            select(&|s| s.category == Some(1)),
        ),
        (
            "tag=rustacean".into(),
            select(&|s| s.tags.contains(&"Rustacean")),
        ),
        (
            "tag=postgres".into(),
            select(&|s| s.tags.contains(&"Postgres")),
        ),
        (
            format!("tag={postgres_id}"),
            select(&|s| s.tags.contains(&"Postgres")),
        ),
        (format!("tag={}", Uuid::now_v7()), BTreeSet::new()),
        ("tag=no-such-tag".into(), BTreeSet::new()),
        (format!("author_id={ada_id}"), select(&|s| s.author == 0)),
        (format!("author_id={bea_id}"), select(&|s| s.author == 1)),
        ("featured=true".into(), select(&|s| s.featured)),
        ("featured=false".into(), select(&|s| !s.featured)),
        (
            format!(
                "category_id={guides}&include_subcategories=true&tag=rustacean&featured=false&status=published"
            ),
            select(&|s| {
                s.category.is_some() && s.tags.contains(&"Rustacean") && !s.featured && s.published
            }),
        ),
    ];
    for (query, expected) in &cases {
        let got = list_ids(
            &app,
            &format!("/api/v1/articles?{query}&limit=100"),
            Some(admin),
        )
        .await;
        assert_eq!(&got, expected, "?{query}");
    }
    // Filters page and order like the whole list.
    assert_paged(
        &app,
        &format!("/api/v1/articles?author_id={ada_id}&sort=title"),
        "title",
        3,
        Some(admin),
        &select(&|s| s.author == 0),
    )
    .await;
    assert_paged(
        &app,
        "/api/v1/articles?featured=false&sort=-view_count",
        "-view_count",
        4,
        None,
        &select(&|s| !s.featured && s.published && !s.private),
    )
    .await;

    // Publication time windows: from is inclusive, to exclusive.
    let mut by_time: Vec<(DateTime<Utc>, String, String)> = listed
        .iter()
        .filter_map(|a| {
            a["published_at"]
                .as_str()
                .map(|t| (time(t), t.to_string(), id_of(a)))
        })
        .collect();
    by_time.sort();
    assert_eq!(by_time.len(), 25);
    let (from, from_raw) = (by_time[5].0, by_time[5].1.clone());
    let (to, to_raw) = (by_time[15].0, by_time[15].1.clone());
    let window = |f: &dyn Fn(DateTime<Utc>) -> bool| -> BTreeSet<String> {
        by_time
            .iter()
            .filter(|(t, _, _)| f(*t))
            .map(|(_, _, id)| id.clone())
            .collect()
    };
    for (query, expected) in [
        (
            format!("published_from={}", enc(&from_raw)),
            window(&|t| t >= from),
        ),
        (
            format!("published_to={}", enc(&to_raw)),
            window(&|t| t < to),
        ),
        (
            format!(
                "published_from={}&published_to={}",
                enc(&from_raw),
                enc(&to_raw)
            ),
            window(&|t| t >= from && t < to),
        ),
    ] {
        let got = list_ids(
            &app,
            &format!("/api/v1/articles?{query}&limit=100"),
            Some(admin),
        )
        .await;
        assert_eq!(got, expected, "?{query}");
    }
    assert_eq!(window(&|t| t >= from && t < to).len(), 10);

    // Invalid values are 422 naming the parameter.
    for (query, field) in [
        ("status=nope", "status"),
        ("visibility=secret", "visibility"),
        ("category_id=x", "category_id"),
        ("author_id=x", "author_id"),
        ("featured=maybe", "featured"),
        ("published_from=yesterday", "published_from"),
        ("published_to=2026-13-45", "published_to"),
        ("sort=popularity", "sort"),
        ("sort=relevance", "sort"),
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("include_subcategories=true", "include_subcategories"),
        (
            "include_subcategories=perhaps&category_id=00000000-0000-0000-0000-000000000000",
            "include_subcategories",
        ),
    ] {
        let reply = app
            .get(&format!("/api/v1/articles?{query}"), Some(admin))
            .await;
        assert_eq!(
            reply.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "?{query}: {}",
            reply.text
        );
        reply.assert_problem(422);
        assert_eq!(reply.error_fields(), [field], "?{query}");
    }
}

#[tokio::test]
async fn a_draft_list_shows_editors_every_draft_authors_their_own_and_viewers_none() {
    let app = TestApp::spawn().await;
    let admin = app.admin("ada").await;
    writer_role(&app, &admin.access_token).await;
    let wendy = app.user_with_role("wendy", "Writer").await;
    let walt = app.user_with_role("walt", "Writer").await;
    let editor = app.user_with_role("ed", "Editor").await;
    let viewer = app.viewer("vera").await;

    let wendys = id_of(
        &create(
            &app,
            &wendy.access_token,
            json!({ "title": "Wendy's draft" }),
        )
        .await,
    );
    let walts = id_of(&create(&app, &walt.access_token, json!({ "title": "Walt's draft" })).await);
    let eds = id_of(&create(&app, &editor.access_token, json!({ "title": "Ed's draft" })).await);
    let out = id_of(
        &published(
            &app,
            &editor.access_token,
            json!({ "title": "Ed's article" }),
        )
        .await,
    );

    let drafts = "/api/v1/articles?status=draft";
    assert_eq!(
        list_ids(&app, drafts, Some(&editor.access_token)).await,
        BTreeSet::from([wendys.clone(), walts.clone(), eds.clone()]),
        "an Editor sees every draft"
    );
    assert_eq!(
        list_ids(&app, drafts, Some(&admin.access_token)).await,
        BTreeSet::from([wendys.clone(), walts.clone(), eds.clone()])
    );
    assert!(
        list_ids(&app, drafts, Some(&viewer.access_token))
            .await
            .is_empty()
    );
    assert!(list_ids(&app, drafts, None).await.is_empty());
    assert_eq!(
        list_ids(&app, drafts, Some(&wendy.access_token)).await,
        BTreeSet::from([wendys.clone()]),
        "an author sees only their own drafts"
    );
    assert_eq!(
        list_ids(&app, drafts, Some(&walt.access_token)).await,
        BTreeSet::from([walts.clone()])
    );
    // Without a status filter, the same: published articles plus the caller's own drafts.
    assert_eq!(
        list_ids(&app, "/api/v1/articles", Some(&wendy.access_token)).await,
        BTreeSet::from([wendys.clone(), out.clone()])
    );
    assert_eq!(
        list_ids(&app, "/api/v1/articles", Some(&viewer.access_token)).await,
        BTreeSet::from([out.clone()])
    );
    // Other people's drafts do not exist for an author, by id either.
    app.get(
        &format!("/api/v1/articles/{walts}"),
        Some(&wendy.access_token),
    )
    .await
    .assert_problem(404);
    let own = app
        .get(
            &format!("/api/v1/articles/{wendys}"),
            Some(&wendy.access_token),
        )
        .await;
    assert_eq!(own.status, StatusCode::OK, "{}", own.text);

    // Submitted for review, it stays the author's and the editors'.
    move_to(&app, &wendy.access_token, &wendys, "pending_review").await;
    let review = "/api/v1/articles?status=pending_review";
    assert_eq!(
        list_ids(&app, review, Some(&wendy.access_token)).await,
        BTreeSet::from([wendys.clone()])
    );
    assert!(
        list_ids(&app, review, Some(&walt.access_token))
            .await
            .is_empty()
    );
    assert!(
        list_ids(&app, review, Some(&viewer.access_token))
            .await
            .is_empty()
    );
    assert_eq!(
        list_ids(&app, review, Some(&editor.access_token)).await,
        BTreeSet::from([wendys.clone()])
    );
    assert_eq!(
        list_ids(&app, drafts, Some(&editor.access_token)).await,
        BTreeSet::from([walts, eds])
    );
}

/// A relevance search ranks the newest `RANKED_MATCHES` matches the caller may see; a word
/// matching fewer is ranked in full, and `sort=-published_at` reaches every match.
#[tokio::test]
async fn a_relevance_search_ranks_the_newest_matches_and_date_order_reaches_all() {
    use lectern_content::articles::RANKED_MATCHES;
    let app = TestApp::spawn().await;
    let reader = app.user_with_role("rita", "Viewer").await;
    let token = reader.access_token.as_str();
    let author = Uuid::new_v4();
    let total = RANKED_MATCHES + 5;
    // The oldest match says "heron" four times in its title, so that ranked in full it would
    // come first; every other one says it once, in its body. They are written straight into
    // the table (a save per article would take minutes), as a save would index them.
    app.db()
        .await
        .execute(
            "INSERT INTO content.articles (id, title, slug, status, visibility, author_id,
                                           published_at, version, search)
             SELECT gen_random_uuid(), t.title, 'heron-' || i, 'published', 'public', $1,
                    now() - make_interval(days => i), 1,
                    setweight(to_tsvector('english', t.title), 'A')
                      || setweight(to_tsvector('english', t.body), 'C')
             FROM generate_series(1, $2::int) i,
                  LATERAL (SELECT CASE WHEN i = $2::int THEN 'Heron heron heron heron'
                                       ELSE 'Note ' || i END AS title,
                                  CASE WHEN i = $2::int THEN '' ELSE 'A heron was seen.' END AS body) t",
            &[&author, &(total as i32)],
        )
        .await
        .unwrap();

    let pages = app
        .all_pages(token, "/api/v1/articles?q=heron&limit=100")
        .await;
    for item in &pages {
        assert!(item["rank"].as_f64().unwrap() > 0.0);
    }
    let ranked: Vec<String> = pages
        .iter()
        .map(|i| i["slug"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        ranked.len(),
        RANKED_MATCHES,
        "pages through the ranked matches once"
    );
    assert_eq!(ranked.iter().collect::<BTreeSet<_>>().len(), RANKED_MATCHES);
    let oldest = format!("heron-{total}");
    assert!(
        !ranked.contains(&oldest),
        "the oldest match is past the ranked ones"
    );
    assert!(ranked.contains(&"heron-1".to_string()));

    // In date order every match is reached.
    let dated: Vec<String> = app
        .all_pages(
            token,
            "/api/v1/articles?q=heron&sort=-published_at&limit=100",
        )
        .await
        .iter()
        .map(|i| i["slug"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(dated.len(), total);
    assert_eq!(dated.last(), Some(&oldest));

    // A word only the oldest one says is ranked in full: the candidates are the matches.
    let few = app
        .get("/api/v1/articles?q=heron%20-seen", Some(token))
        .await;
    assert_eq!(few.status, StatusCode::OK, "{}", few.text);
    assert_eq!(few.body["data"][0]["slug"], json!(oldest));
}
