//! Categories and tags over HTTP: the tree as each caller sees it, slugs, moves that would
//! cycle or nest too deep, deletes that must say where subcategories and articles go, group
//! access rules (learned from the users service by the content worker), and the tag list.
//!
//! Articles are arranged with plain SQL: these tests are about categories and tags, and only
//! need rows that carry a category, a status and tags.

use axum::http::{Method, StatusCode};
use chrono::{Duration, Utc};
use lectern_shared::events::Envelope;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::{
    helpers::{Reply, TestApp},
    roles::created_id,
};

/// Creates a category as `token` from `body` and answers its id.
async fn category(app: &TestApp, token: &str, body: Value) -> String {
    created_id(&app.post_as("/api/v1/categories", body, token).await)
}

/// A category named `name` under `parent`, if any.
async fn named(app: &TestApp, token: &str, name: &str, parent: Option<&str>) -> String {
    category(app, token, json!({ "name": name, "parent_id": parent })).await
}

/// An article row in `category` with `status`, carrying `tags`.
async fn article(app: &TestApp, category: Option<&str>, status: &str, tags: &[&str]) -> Uuid {
    let id = Uuid::now_v7();
    let category: Option<Uuid> = category.map(|c| c.parse().unwrap());
    let db = app.db().await;
    db.execute(
        "INSERT INTO content.articles (id, title, slug, status, category_id, author_id, published_at)
         VALUES ($1, 'A title', $5, $2, $3, $4, CASE WHEN $2 = 'published' THEN now() END)",
        &[&id, &status, &category, &Uuid::now_v7(), &format!("a-{}", id.simple())],
    )
    .await
    .unwrap();
    for tag in tags {
        let tag: Uuid = tag.parse().unwrap();
        db.execute(
            "INSERT INTO content.article_tags (id, article_id, tag_id) VALUES ($1, $2, $3)",
            &[&Uuid::now_v7(), &id, &tag],
        )
        .await
        .unwrap();
    }
    id
}

/// The names of a tree level, in order.
fn names_of(level: &Value) -> Vec<String> {
    level
        .as_array()
        .unwrap_or_else(|| panic!("not a list: {level}"))
        .iter()
        .map(|node| node["name"].as_str().unwrap().to_string())
        .collect()
}

/// The tree as `token` (or an anonymous caller) sees it.
async fn tree(app: &TestApp, token: Option<&str>) -> Value {
    let reply = app.get("/api/v1/categories", token).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    reply.body
}

/// The content outbox's events of `kind`, oldest first.
async fn content_events(app: &TestApp, kind: &str) -> Vec<Value> {
    app.db()
        .await
        .query(
            "SELECT data FROM content.outbox WHERE type = $1 ORDER BY occurred_at, id",
            &[&kind],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

#[track_caller]
fn assert_invalid(reply: &Reply, fields: &[&str]) {
    reply.assert_problem(422);
    assert_eq!(reply.error_fields(), fields, "{}", reply.text);
}

async fn anonymous(app: &TestApp, method: Method, path: &str, body: Option<Value>) -> Reply {
    app.call(method, path, body, None).await
}

// ------------------------------------------------------------------------------ the tree

#[tokio::test]
async fn the_tree_nests_categories_orders_siblings_and_is_open_to_anonymous_readers() {
    let app = TestApp::spawn().await;
    let admin = app.admin("ada").await;
    let token = admin.access_token.as_str();
    let science = category(
        &app,
        token,
        json!({ "name": "Science", "sort_order": 2, "color": "#A0B1C2", "icon": "flask" }),
    )
    .await;
    named(&app, token, "Biology", Some(&science)).await;
    named(&app, token, "Astronomy", Some(&science)).await;
    let physics = category(
        &app,
        token,
        json!({ "name": "Physics", "parent_id": science, "sort_order": -1 }),
    )
    .await;
    category(&app, token, json!({ "name": "Arts", "sort_order": 1 })).await;
    let archive = category(
        &app,
        token,
        json!({ "name": "Archive", "is_active": false }),
    )
    .await;
    named(&app, token, "Old news", Some(&archive)).await;
    article(&app, Some(&physics), "published", &[]).await;
    article(&app, Some(&physics), "published", &[]).await;
    article(&app, Some(&physics), "draft", &[]).await;
    article(&app, Some(&science), "published", &[]).await;

    let seen = tree(&app, None).await;

    assert_eq!(names_of(&seen), ["Arts", "Science"]);
    assert_eq!(
        names_of(&seen[1]["children"]),
        ["Physics", "Astronomy", "Biology"],
        "sort_order first, then the name"
    );
    let science_node = &seen[1];
    assert_eq!(science_node["slug"], "science");
    assert_eq!(science_node["color"], "#a0b1c2");
    assert_eq!(science_node["icon"], "flask");
    assert_eq!(science_node["restricted"], false);
    assert_eq!(science_node["is_active"], true);
    assert_eq!(science_node["parent_id"], Value::Null);
    assert_eq!(
        science_node["article_count"], 1,
        "only published articles directly in it"
    );
    assert_eq!(science_node["children"][0]["article_count"], 2);
    assert_eq!(science_node["children"][0]["parent_id"], science);
    assert_eq!(science_node["children"][0]["children"], json!([]));
    for column in [
        "id",
        "name",
        "slug",
        "description",
        "icon",
        "color",
        "parent_id",
        "sort_order",
        "is_active",
        "meta_title",
        "meta_description",
        "created_by",
        "created_at",
        "updated_at",
    ] {
        assert!(
            science_node.get(column).is_some(),
            "no {column} in {science_node}"
        );
    }

    // Inactive categories (and what lies below them) are for editors who ask for them.
    let viewer = app.viewer("vic").await;
    anonymous(
        &app,
        Method::GET,
        "/api/v1/categories?include_inactive=true",
        None,
    )
    .await
    .assert_problem(401);
    app.get(
        "/api/v1/categories?include_inactive=true",
        Some(&viewer.access_token),
    )
    .await
    .assert_problem(403);
    let everything = app
        .get("/api/v1/categories?include_inactive=true", Some(token))
        .await;
    assert_eq!(everything.status, StatusCode::OK, "{}", everything.text);
    assert_eq!(names_of(&everything.body), ["Archive", "Arts", "Science"]);
    assert_eq!(names_of(&everything.body[0]["children"]), ["Old news"]);
    assert_eq!(
        app.get(&format!("/api/v1/categories/{archive}"), None)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn a_category_answers_its_path_and_its_children() {
    let app = TestApp::spawn().await;
    let admin = app.admin("ada").await;
    let token = admin.access_token.as_str();
    let top = named(&app, token, "Guides", None).await;
    let middle = named(&app, token, "Backend", Some(&top)).await;
    let bottom = named(&app, token, "Databases", Some(&middle)).await;
    named(&app, token, "Queues", Some(&middle)).await;

    let reply = app.get(&format!("/api/v1/categories/{middle}"), None).await;

    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(
        reply.body["path"],
        json!([{ "id": top, "name": "Guides", "slug": "guides" }])
    );
    assert_eq!(names_of(&reply.body["children"]), ["Databases", "Queues"]);
    assert_eq!(reply.body["children"][0]["id"], bottom);
    assert_eq!(reply.body["restricted"], false);
    let leaf = app.get(&format!("/api/v1/categories/{bottom}"), None).await;
    assert_eq!(names_of(&leaf.body["path"]), ["Guides", "Backend"]);
    assert_eq!(leaf.body["children"], json!([]));
    let missing = app
        .get(&format!("/api/v1/categories/{}", Uuid::now_v7()), None)
        .await;
    missing.assert_problem(404);
    let malformed = app.get("/api/v1/categories/not-an-id", None).await;
    assert_invalid(&malformed, &["id"]);
}

// ------------------------------------------------------------------- create and update

#[tokio::test]
async fn slugs_come_from_names_and_a_slug_sent_that_is_taken_is_a_conflict() {
    let app = TestApp::spawn().await;
    let admin = app.admin("ada").await;
    let token = admin.access_token.as_str();

    let first = app
        .post_as("/api/v1/categories", json!({ "name": "Rust & Go!" }), token)
        .await;
    let second = app
        .post_as("/api/v1/categories", json!({ "name": "rust go" }), token)
        .await;
    let third = app
        .post_as("/api/v1/categories", json!({ "name": "Rust  Go" }), token)
        .await;
    let foreign = app
        .post_as("/api/v1/categories", json!({ "name": "日本語" }), token)
        .await;

    assert_eq!(first.status, StatusCode::CREATED, "{}", first.text);
    let id = first.body["id"].as_str().unwrap();
    assert_eq!(
        first.header("location"),
        Some(format!("/api/v1/categories/{id}").as_str())
    );
    assert_eq!(first.body["slug"], "rust-go");
    assert_eq!(second.body["slug"], "rust-go-2");
    assert_eq!(third.body["slug"], "rust-go-3");
    assert_eq!(foreign.body["slug"], "category");
    let taken = app
        .post_as(
            "/api/v1/categories",
            json!({ "name": "Another", "slug": "rust-go-2" }),
            token,
        )
        .await;
    taken.assert_problem(409);
    assert!(taken.body["detail"].as_str().unwrap().contains("rust-go-2"));
    let chosen = app
        .post_as(
            "/api/v1/categories",
            json!({ "name": "Another", "slug": "systems" }),
            token,
        )
        .await;
    assert_eq!(chosen.body["slug"], "systems");
    let renamed = app
        .put(
            &format!("/api/v1/categories/{id}"),
            json!({ "name": "Rust and Go" }),
            token,
        )
        .await;
    assert_eq!(renamed.status, StatusCode::OK, "{}", renamed.text);
    assert_eq!(
        renamed.body["slug"], "rust-go",
        "the slug does not follow a new name"
    );
    app.put(
        &format!("/api/v1/categories/{id}"),
        json!({ "slug": "systems" }),
        token,
    )
    .await
    .assert_problem(409);
}

#[tokio::test]
async fn every_invalid_field_of_a_new_category_is_named_in_one_answer() {
    let app = TestApp::spawn().await;
    let admin = app.admin("ada").await;
    let token = admin.access_token.as_str();

    let reply = app
        .post_as(
            "/api/v1/categories",
            json!({
                "name": "  ",
                "slug": "Not A Slug",
                "description": "d".repeat(2001),
                "icon": "Book Open",
                "color": "red",
                "parent_id": Uuid::now_v7(),
                "sort_order": 3,
                "meta_title": "t".repeat(71),
                "meta_description": "m".repeat(161),
            }),
            token,
        )
        .await;

    assert_invalid(
        &reply,
        &[
            "name",
            "slug",
            "description",
            "icon",
            "color",
            "meta_title",
            "meta_description",
            "parent_id",
        ],
    );
    assert_invalid(
        &app.post_as(
            "/api/v1/categories",
            json!({ "name": "A", "owner": "me" }),
            token,
        )
        .await,
        &["owner"],
    );
    let id = named(&app, token, "Fine", None).await;
    let update = app
        .put(
            &format!("/api/v1/categories/{id}"),
            json!({ "name": "", "color": "#12345", "icon": "x!" }),
            token,
        )
        .await;
    assert_invalid(&update, &["name", "icon", "color"]);
    let count: i64 = app
        .db()
        .await
        .query_one("SELECT count(*) FROM content.categories", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(count, 1, "nothing invalid was stored");
}

#[tokio::test]
async fn an_update_changes_only_what_it_names_and_null_clears() {
    let app = TestApp::spawn().await;
    let admin = app.admin("ada").await;
    let token = admin.access_token.as_str();
    let id = category(
        &app,
        token,
        json!({ "name": "Talks", "description": "Recorded talks", "color": "#FFAA00",
                "meta_title": "Talks", "sort_order": 4 }),
    )
    .await;

    let reply = app
        .put(
            &format!("/api/v1/categories/{id}"),
            json!({ "description": null, "is_active": false, "meta_description": "All talks" }),
            token,
        )
        .await;

    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(reply.body["description"], Value::Null);
    assert_eq!(reply.body["is_active"], false);
    assert_eq!(reply.body["meta_description"], "All talks");
    assert_eq!(reply.body["color"], "#ffaa00");
    assert_eq!(reply.body["meta_title"], "Talks");
    assert_eq!(reply.body["sort_order"], 4);
    let events = content_events(&app, "category.updated").await;
    assert_eq!(events.len(), 1);
    assert_eq!(
        events[0]["changes"],
        json!(["description", "is_active", "meta_description"])
    );
    assert_eq!(content_events(&app, "category.created").await.len(), 1);
}

#[tokio::test]
async fn a_category_cannot_move_under_itself_or_its_descendants_nor_nest_deeper_than_eight_levels()
{
    let app = TestApp::spawn().await;
    let admin = app.admin("ada").await;
    let token = admin.access_token.as_str();
    let mut chain = vec![named(&app, token, "L1", None).await];
    for level in 2..=8 {
        let parent = chain.last().cloned();
        chain.push(named(&app, token, &format!("L{level}"), parent.as_deref()).await);
    }
    let a = named(&app, token, "A", None).await;
    let b = named(&app, token, "B", Some(&a)).await;
    let c = named(&app, token, "C", Some(&b)).await;

    let ninth = app
        .post_as(
            "/api/v1/categories",
            json!({ "name": "L9", "parent_id": chain[7] }),
            token,
        )
        .await;
    assert_invalid(&ninth, &["parent_id"]);
    assert!(ninth.text.contains("8 levels"), "{}", ninth.text);
    for target in [&a, &b, &c] {
        let cycle = app
            .put(
                &format!("/api/v1/categories/{a}"),
                json!({ "parent_id": target }),
                token,
            )
            .await;
        assert_invalid(&cycle, &["parent_id"]);
        assert!(cycle.text.contains("cycle"), "{}", cycle.text);
    }
    // A (three levels) fits under L5 (5 + 3 = 8), not under L6.
    let too_deep = app
        .put(
            &format!("/api/v1/categories/{a}"),
            json!({ "parent_id": chain[5] }),
            token,
        )
        .await;
    assert_invalid(&too_deep, &["parent_id"]);
    let unknown = app
        .put(
            &format!("/api/v1/categories/{a}"),
            json!({ "parent_id": Uuid::now_v7() }),
            token,
        )
        .await;
    assert_invalid(&unknown, &["parent_id"]);
    let fits = app
        .put(
            &format!("/api/v1/categories/{a}"),
            json!({ "parent_id": chain[4] }),
            token,
        )
        .await;
    assert_eq!(fits.status, StatusCode::OK, "{}", fits.text);
    assert_eq!(names_of(&fits.body["path"]), ["L1", "L2", "L3", "L4", "L5"]);
    let back = app
        .put(
            &format!("/api/v1/categories/{b}"),
            json!({ "parent_id": null }),
            token,
        )
        .await;
    assert_eq!(back.status, StatusCode::OK, "{}", back.text);
    assert_eq!(back.body["parent_id"], Value::Null);
    assert_eq!(back.body["path"], json!([]));
    let moved = content_events(&app, "category.updated").await;
    assert_eq!(moved.len(), 2);
    assert_eq!(moved[1]["changes"], json!(["parent_id"]));
}

// ---------------------------------------------------------------------------- delete

#[tokio::test]
async fn a_delete_is_refused_while_subcategories_or_articles_have_nowhere_to_go() {
    let app = TestApp::spawn().await;
    let admin = app.admin("ada").await;
    let token = admin.access_token.as_str();
    let doomed = named(&app, token, "Doomed", None).await;
    let child = named(&app, token, "Child", Some(&doomed)).await;
    let grandchild = named(&app, token, "Grandchild", Some(&child)).await;
    let shelter = named(&app, token, "Shelter", None).await;
    let published = article(&app, Some(&doomed), "published", &[]).await;
    let draft = article(&app, Some(&doomed), "draft", &[]).await;
    let path = format!("/api/v1/categories/{doomed}");

    let refused = app.delete(&path, token).await;

    refused.assert_problem(409);
    let detail = refused.body["detail"].as_str().unwrap();
    for needed in ["1 subcategory", "2 articles", "children_to", "articles_to"] {
        assert!(detail.contains(needed), "{needed} not in {detail}");
    }
    app.delete(&format!("{path}?children_to=root"), token)
        .await
        .assert_problem(409);
    for (query, field) in [
        (
            format!("children_to={grandchild}&articles_to=none"),
            "children_to",
        ),
        (
            format!("children_to=root&articles_to={doomed}"),
            "articles_to",
        ),
        (
            format!("children_to={}&articles_to=none", Uuid::now_v7()),
            "children_to",
        ),
        ("children_to=up&articles_to=none".to_string(), "children_to"),
        (
            "children_to=root&articles_to=root".to_string(),
            "articles_to",
        ),
    ] {
        let reply = app.delete(&format!("{path}?{query}"), token).await;
        assert_invalid(&reply, &[field]);
    }
    assert_eq!(
        app.get(&path, Some(token)).await.status,
        StatusCode::OK,
        "nothing was deleted"
    );

    let deleted = app
        .delete(
            &format!("{path}?children_to=root&articles_to={shelter}"),
            token,
        )
        .await;

    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{}", deleted.text);
    app.get(&path, Some(token)).await.assert_problem(404);
    let seen = tree(&app, Some(token)).await;
    assert_eq!(names_of(&seen), ["Child", "Shelter"]);
    assert_eq!(names_of(&seen[0]["children"]), ["Grandchild"]);
    let db = app.db().await;
    for id in [published, draft] {
        let category: Option<Uuid> = db
            .query_one(
                "SELECT category_id FROM content.articles WHERE id = $1",
                &[&id],
            )
            .await
            .unwrap()
            .get(0);
        assert_eq!(category.map(|c| c.to_string()), Some(shelter.clone()));
    }
    let events = content_events(&app, "category.deleted").await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["category_id"], doomed);
    assert_eq!(events[0]["children_to"], "root");
    assert_eq!(events[0]["articles_to"], shelter);
    assert_eq!(events[0]["moved_category_ids"], json!([child]));
    assert_eq!(events[0]["moved_article_ids"].as_array().unwrap().len(), 2);

    // Articles may also become uncategorised, and subcategories move under another category.
    let second = named(&app, token, "Second", None).await;
    named(&app, token, "Inner", Some(&second)).await;
    let loose = article(&app, Some(&second), "published", &[]).await;
    let gone = app
        .delete(
            &format!("/api/v1/categories/{second}?children_to={shelter}&articles_to=none"),
            token,
        )
        .await;
    assert_eq!(gone.status, StatusCode::NO_CONTENT, "{}", gone.text);
    let category: Option<Uuid> = db
        .query_one(
            "SELECT category_id FROM content.articles WHERE id = $1",
            &[&loose],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(category, None);
    let shelter_detail = app
        .get(&format!("/api/v1/categories/{shelter}"), None)
        .await;
    assert_eq!(names_of(&shelter_detail.body["children"]), ["Inner"]);
    let empty = named(&app, token, "Empty", None).await;
    assert_eq!(
        app.delete(&format!("/api/v1/categories/{empty}"), token)
            .await
            .status,
        StatusCode::NO_CONTENT,
        "an empty category needs no options"
    );
}

// ------------------------------------------------------------------------ permissions

#[tokio::test]
async fn changing_categories_needs_the_matching_permission() {
    let app = TestApp::spawn().await;
    let viewer = app.viewer("vic").await;
    let editor = app.user_with_role("eve", "Editor").await;
    let (viewer, editor) = (viewer.access_token.as_str(), editor.access_token.as_str());
    let body = json!({ "name": "News" });

    anonymous(&app, Method::POST, "/api/v1/categories", Some(body.clone()))
        .await
        .assert_problem(401);
    app.post_as("/api/v1/categories", body.clone(), viewer)
        .await
        .assert_problem(403);
    let id = category(&app, editor, body).await;
    let path = format!("/api/v1/categories/{id}");
    let access = format!("{path}/access");
    let rules = json!({ "rules": [] });

    anonymous(
        &app,
        Method::PUT,
        &path,
        Some(json!({ "name": "Old news" })),
    )
    .await
    .assert_problem(401);
    app.put(&path, json!({ "name": "Old news" }), viewer)
        .await
        .assert_problem(403);
    assert_eq!(
        app.put(&path, json!({ "name": "Old news" }), editor)
            .await
            .status,
        StatusCode::OK
    );
    anonymous(&app, Method::GET, &access, None)
        .await
        .assert_problem(401);
    for token in [viewer, editor] {
        app.get(&access, Some(token)).await.assert_problem(403);
        app.put(&access, rules.clone(), token)
            .await
            .assert_problem(403);
    }
    anonymous(&app, Method::DELETE, &path, None)
        .await
        .assert_problem(401);
    app.delete(&path, viewer).await.assert_problem(403);
    assert_eq!(
        app.delete(&path, editor).await.status,
        StatusCode::NO_CONTENT
    );

    anonymous(
        &app,
        Method::POST,
        "/api/v1/tags",
        Some(json!({ "name": "rust" })),
    )
    .await
    .assert_problem(401);
    app.post_as("/api/v1/tags", json!({ "name": "rust" }), viewer)
        .await
        .assert_problem(403);
    let tag = created_id(
        &app.post_as("/api/v1/tags", json!({ "name": "rust" }), editor)
            .await,
    );
    anonymous(&app, Method::DELETE, &format!("/api/v1/tags/{tag}"), None)
        .await
        .assert_problem(401);
    app.delete(&format!("/api/v1/tags/{tag}"), viewer)
        .await
        .assert_problem(403);
    assert_eq!(
        app.delete(&format!("/api/v1/tags/{tag}"), editor)
            .await
            .status,
        StatusCode::NO_CONTENT
    );
}

// ---------------------------------------------------------------------- group access

#[tokio::test]
async fn a_restricted_category_is_hidden_from_outsiders_and_seen_by_members_of_a_subgroup() {
    let app = TestApp::spawn().await;
    let admin = app.admin("ada").await;
    let token = admin.access_token.as_str();
    let company = created_id(
        &app.post_as("/api/v1/groups", json!({ "name": "Company" }), token)
            .await,
    );
    let team = created_id(
        &app.post_as(
            "/api/v1/groups",
            json!({ "name": "Platform", "parent_id": company }),
            token,
        )
        .await,
    );
    let member = app.viewer("mia").await;
    let outsider = app.viewer("otto").await;
    let joined = app
        .put(
            &format!("/api/v1/groups/{team}/members"),
            json!({ "add": [app.user_id(&member.email).await] }),
            token,
        )
        .await;
    assert_eq!(joined.status, StatusCode::OK, "{}", joined.text);
    let internal = named(&app, token, "Internal", None).await;
    let runbooks = named(&app, token, "Runbooks", Some(&internal)).await;
    named(&app, token, "Public", None).await;
    // The content worker learns of the groups; the member's next token carries them.
    app.settle().await;
    let member = app.refresh(&member).await;

    let ruled = app
        .put(
            &format!("/api/v1/categories/{internal}/access"),
            json!({ "rules": [{ "group_id": company, "can_view": true, "can_edit": false }] }),
            token,
        )
        .await;

    assert_eq!(ruled.status, StatusCode::OK, "{}", ruled.text);
    assert_eq!(ruled.body["restricted"], true);
    assert_eq!(ruled.body["rules"][0]["group_name"], "Company");
    assert_eq!(ruled.body["rules"][0]["group_deleted"], false);
    for (who, caller) in [
        ("an outsider", Some(outsider.access_token.as_str())),
        ("an anonymous caller", None),
    ] {
        for id in [&internal, &runbooks] {
            let hidden = app.get(&format!("/api/v1/categories/{id}"), caller).await;
            assert_eq!(
                hidden.status,
                StatusCode::NOT_FOUND,
                "{who}: {}",
                hidden.text
            );
        }
        let seen = tree(&app, caller).await;
        assert_eq!(names_of(&seen), ["Public"], "{who}");
    }
    for caller in [member.access_token.as_str(), token] {
        let seen = tree(&app, Some(caller)).await;
        assert_eq!(names_of(&seen), ["Internal", "Public"]);
        assert_eq!(seen[0]["restricted"], true);
        assert_eq!(names_of(&seen[0]["children"]), ["Runbooks"]);
        let detail = app
            .get(&format!("/api/v1/categories/{runbooks}"), Some(caller))
            .await;
        assert_eq!(detail.status, StatusCode::OK, "{}", detail.text);
        // A restriction covers the subtree: the child has no rules of its own but is closed.
        assert_eq!(detail.body["restricted"], true);
    }
    let events = content_events(&app, "category.access_changed").await;
    assert_eq!(events.len(), 1);
    assert_eq!(
        events[0]["rules"],
        json!([{ "group_id": company, "can_view": true, "can_edit": false }])
    );

    // Renaming the group reaches the content service; deleting it keeps the category closed.
    app.put(
        &format!("/api/v1/groups/{company}"),
        json!({ "name": "Company Ltd" }),
        token,
    )
    .await;
    app.settle().await;
    let access = app
        .get(
            &format!("/api/v1/categories/{internal}/access"),
            Some(token),
        )
        .await;
    assert_eq!(access.body["rules"][0]["group_name"], "Company Ltd");
    let deleted = app
        .delete(
            &format!("/api/v1/groups/{company}?children=delete&members=remove"),
            token,
        )
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{}", deleted.text);
    app.settle().await;
    let access = app
        .get(
            &format!("/api/v1/categories/{internal}/access"),
            Some(token),
        )
        .await;
    assert_eq!(access.status, StatusCode::OK, "{}", access.text);
    assert_eq!(access.body["restricted"], true);
    assert_eq!(access.body["rules"][0]["group_deleted"], true);
    assert_eq!(access.body["rules"][0]["group_name"], Value::Null);
    let known: i64 = app
        .db()
        .await
        .query_one("SELECT count(*) FROM content.groups", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(known, 0, "both deleted groups are forgotten");
    assert_eq!(
        app.get(
            &format!("/api/v1/categories/{internal}"),
            Some(&outsider.access_token)
        )
        .await
        .status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn access_rules_name_known_groups_once_and_grant_something() {
    let app = TestApp::spawn().await;
    let admin = app.admin("ada").await;
    let token = admin.access_token.as_str();
    let group = created_id(
        &app.post_as("/api/v1/groups", json!({ "name": "Editors" }), token)
            .await,
    );
    app.settle().await;
    let id = named(&app, token, "Drafts", None).await;
    let path = format!("/api/v1/categories/{id}/access");

    let unknown = app
        .put(
            &path,
            json!({ "rules": [{ "group_id": Uuid::now_v7(), "can_view": true, "can_edit": false }] }),
            token,
        )
        .await;
    assert_invalid(&unknown, &["rules[0].group_id"]);
    let repeated = app
        .put(
            &path,
            json!({ "rules": [
                { "group_id": group, "can_view": true, "can_edit": false },
                { "group_id": group, "can_view": true, "can_edit": true },
                { "group_id": Uuid::now_v7(), "can_view": false, "can_edit": false },
            ] }),
            token,
        )
        .await;
    assert_invalid(
        &repeated,
        &["rules[1].group_id", "rules[2]", "rules[2].group_id"],
    );
    assert_invalid(
        &app.put(&path, json!({ "rules": [{ "group_id": group }] }), token)
            .await,
        &["rules[0].can_view"],
    );
    let set = app
        .put(
            &path,
            json!({ "rules": [{ "group_id": group, "can_view": false, "can_edit": true }] }),
            token,
        )
        .await;
    assert_eq!(set.status, StatusCode::OK, "{}", set.text);
    assert_eq!(set.body["rules"][0]["can_edit"], true);
    let read = app.get(&path, Some(token)).await;
    assert_eq!(read.body, set.body);
    let detail = app
        .get(&format!("/api/v1/categories/{id}"), Some(token))
        .await;
    assert_eq!(detail.body["restricted"], true);

    let cleared = app.put(&path, json!({ "rules": [] }), token).await;

    assert_eq!(cleared.status, StatusCode::OK, "{}", cleared.text);
    assert_eq!(cleared.body["restricted"], false);
    assert_eq!(cleared.body["rules"], json!([]));
    let viewer = app.viewer("vic").await;
    assert_eq!(
        app.get(
            &format!("/api/v1/categories/{id}"),
            Some(&viewer.access_token)
        )
        .await
        .status,
        StatusCode::OK
    );
    let events = content_events(&app, "category.access_changed").await;
    assert_eq!(events.len(), 2);
    assert_eq!(events[1]["rules"], json!([]));
    app.get(
        &format!("/api/v1/categories/{}/access", Uuid::now_v7()),
        Some(token),
    )
    .await
    .assert_problem(404);
}

#[tokio::test]
async fn the_content_worker_keeps_the_newest_name_of_a_group_whatever_the_delivery_order() {
    let app = TestApp::spawn().await;
    let group_id = Uuid::now_v7();
    let event = |kind: &str, name: &str, minutes_ago: i64| {
        let mut event = Envelope::new(
            "lectern.users",
            kind,
            None,
            json!({ "group_id": group_id, "name": name, "description": null, "parent_id": null }),
        );
        event.occurred_at = Utc::now() - Duration::minutes(minutes_ago);
        event
    };
    let worker = &app.stack.content_worker;
    let name = || async {
        app.db()
            .await
            .query_opt(
                "SELECT name FROM content.groups WHERE id = $1",
                &[&group_id],
            )
            .await
            .unwrap()
            .map(|r| r.get::<_, String>(0))
    };

    worker
        .apply(&event("group.updated", "Newest", 1))
        .await
        .unwrap();
    worker
        .apply(&event("group.created", "First", 10))
        .await
        .unwrap();
    worker
        .apply(&event("group.updated", "Older", 5))
        .await
        .unwrap();

    assert_eq!(name().await.as_deref(), Some("Newest"));
    let deleted = Envelope::new(
        "lectern.users",
        "group.deleted",
        None,
        json!({ "group_id": group_id, "name": "Newest", "deleted_group_ids": [group_id] }),
    );
    worker.apply(&deleted).await.unwrap();
    worker.apply(&deleted).await.unwrap();
    assert_eq!(name().await, None);
}

// ------------------------------------------------------------------------------ tags

#[tokio::test]
async fn tags_are_listed_by_name_or_use_with_their_published_usage() {
    let app = TestApp::spawn().await;
    let admin = app.admin("ada").await;
    let token = admin.access_token.as_str();
    let mut ids = std::collections::HashMap::new();
    for name in ["Rust", "Go", "Python", "C++", "Py_a", "  Zig  "] {
        let reply = app
            .post_as("/api/v1/tags", json!({ "name": name }), token)
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
        let id = reply.body["id"].as_str().unwrap().to_string();
        assert_eq!(
            reply.header("location"),
            Some(format!("/api/v1/tags/{id}").as_str())
        );
        ids.insert(name.trim().to_string(), id);
    }
    let tag = |name: &str| ids[name].as_str();
    article(&app, None, "published", &[tag("Go"), tag("Python")]).await;
    article(&app, None, "published", &[tag("Go")]).await;
    article(&app, None, "published", &[tag("Go"), tag("Rust")]).await;
    article(&app, None, "draft", &[tag("Rust"), tag("Zig")]).await;
    article(&app, None, "archived", &[tag("Zig")]).await;

    let by_name = app.get("/api/v1/tags", None).await;
    let by_use = app.get("/api/v1/tags?sort=-usage", None).await;

    assert_eq!(
        crate::roles::names(&by_name),
        ["C++", "Go", "Py_a", "Python", "Rust", "Zig"]
    );
    assert_eq!(by_name.body["next_cursor"], Value::Null);
    let cpp = &by_name.body["data"][0];
    assert_eq!(cpp["slug"], "c");
    assert_eq!(cpp["usage_count"], 0);
    assert!(cpp["created_at"].is_string());
    assert_eq!(
        crate::roles::names(&by_use),
        ["Go", "Python", "Rust", "C++", "Py_a", "Zig"]
    );
    let counts: Vec<i64> = by_use.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["usage_count"].as_i64().unwrap())
        .collect();
    assert_eq!(
        counts,
        [3, 1, 1, 0, 0, 0],
        "drafts and archived articles do not count"
    );

    for sort in ["name", "-usage"] {
        let mut seen = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let url = match &cursor {
                Some(c) => format!("/api/v1/tags?sort={sort}&limit=4&cursor={c}"),
                None => format!("/api/v1/tags?sort={sort}&limit=4"),
            };
            let page = app.get(&url, None).await;
            assert_eq!(page.status, StatusCode::OK, "{}", page.text);
            seen.extend(crate::roles::names(&page));
            match page.body["next_cursor"].as_str() {
                Some(next) => cursor = Some(next.to_string()),
                None => break,
            }
        }
        let whole = if sort == "name" { &by_name } else { &by_use };
        assert_eq!(seen, crate::roles::names(whole), "paging by {sort}");
    }
    let first_page = app.get("/api/v1/tags?limit=2", None).await;
    let cursor = first_page.body["next_cursor"].as_str().unwrap();
    assert_invalid(
        &app.get(&format!("/api/v1/tags?sort=-usage&cursor={cursor}"), None)
            .await,
        &["cursor"],
    );
    assert_invalid(&app.get("/api/v1/tags?sort=usage", None).await, &["sort"]);
    assert_invalid(&app.get("/api/v1/tags?limit=0", None).await, &["limit"]);
    assert_eq!(
        crate::roles::names(&app.get("/api/v1/tags?q=PY", None).await),
        ["Py_a", "Python"]
    );
    assert_eq!(
        crate::roles::names(&app.get("/api/v1/tags?q=py_", None).await),
        ["Py_a"],
        "an underscore is a letter, not a wildcard"
    );
    assert_eq!(
        crate::roles::names(&app.get("/api/v1/tags?q=%25", None).await),
        Vec::<String>::new()
    );
    assert_eq!(
        crate::roles::names(&app.get("/api/v1/tags?q=o", None).await),
        Vec::<String>::new(),
        "q matches the start of the name"
    );
}

#[tokio::test]
async fn a_tag_name_or_slug_that_exists_is_a_conflict() {
    let app = TestApp::spawn().await;
    let admin = app.admin("ada").await;
    let token = admin.access_token.as_str();
    created_id(
        &app.post_as("/api/v1/tags", json!({ "name": "C++" }), token)
            .await,
    );

    let same_name = app
        .post_as("/api/v1/tags", json!({ "name": "c++" }), token)
        .await;
    let same_slug = app
        .post_as("/api/v1/tags", json!({ "name": "C" }), token)
        .await;

    same_name.assert_problem(409);
    assert!(same_name.text.contains("C++"), "{}", same_name.text);
    same_slug.assert_problem(409);
    assert!(same_slug.text.contains("slug"), "{}", same_slug.text);
    assert_invalid(
        &app.post_as("/api/v1/tags", json!({ "name": " " }), token)
            .await,
        &["name"],
    );
    assert_invalid(
        &app.post_as("/api/v1/tags", json!({ "name": "x".repeat(51) }), token)
            .await,
        &["name"],
    );
    assert_invalid(
        &app.post_as("/api/v1/tags", json!({ "name": "ok", "slug": "ok" }), token)
            .await,
        &["slug"],
    );
}

#[tokio::test]
async fn deleting_a_tag_takes_it_off_every_article_and_says_which() {
    let app = TestApp::spawn().await;
    let admin = app.admin("ada").await;
    let token = admin.access_token.as_str();
    let doomed = created_id(
        &app.post_as("/api/v1/tags", json!({ "name": "Legacy" }), token)
            .await,
    );
    let kept = created_id(
        &app.post_as("/api/v1/tags", json!({ "name": "Modern" }), token)
            .await,
    );
    let first = article(&app, None, "published", &[&doomed, &kept]).await;
    let second = article(&app, None, "draft", &[&doomed]).await;
    article(&app, None, "published", &[&kept]).await;

    let reply = app.delete(&format!("/api/v1/tags/{doomed}"), token).await;

    assert_eq!(reply.status, StatusCode::NO_CONTENT, "{}", reply.text);
    app.get(&format!("/api/v1/tags/{doomed}"), None)
        .await
        .assert_problem(404);
    app.delete(&format!("/api/v1/tags/{doomed}"), token)
        .await
        .assert_problem(404);
    let left: Vec<Uuid> = app
        .db()
        .await
        .query("SELECT tag_id FROM content.article_tags", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(left.len(), 2);
    assert!(left.iter().all(|t| t.to_string() == kept));
    let modern = app.get(&format!("/api/v1/tags/{kept}"), None).await;
    assert_eq!(modern.body["usage_count"], 2);
    let events = content_events(&app, "tag.deleted").await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["tag_id"], doomed);
    let mut expected = vec![first.to_string(), second.to_string()];
    expected.sort();
    assert_eq!(events[0]["article_ids"], json!(expected));
}
