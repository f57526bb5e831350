//! Roles and permissions over HTTP: custom roles, the protected system roles, no escalation,
//! the permission catalogue and the role lists.

use std::collections::BTreeSet;

use axum::http::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::{
    directory::decode_claims,
    helpers::{Reply, TestApp},
};

/// The id of the permission or role named `name` (`table` is `permissions` or `roles`).
pub async fn id_named(app: &TestApp, table: &str, name: &str) -> Uuid {
    app.db()
        .await
        .query_one(
            &format!("SELECT id FROM users.{table} WHERE name = $1"),
            &[&name],
        )
        .await
        .unwrap_or_else(|_| panic!("no {table} row named {name}"))
        .get(0)
}

/// The `id` of a created resource, after checking it was created.
#[track_caller]
pub fn created_id(reply: &Reply) -> String {
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
    reply.body["id"].as_str().unwrap().to_string()
}

/// Event types in the users outbox, oldest first.
pub async fn users_events(app: &TestApp) -> Vec<String> {
    app.db()
        .await
        .query(
            "SELECT type FROM users.outbox ORDER BY occurred_at, id",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

/// The names in the `data` of a list answer, in order.
pub fn names(reply: &Reply) -> Vec<String> {
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    reply.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item["name"].as_str().unwrap().to_string())
        .collect()
}

/// Follows `next_cursor` from `path` (which has a query string) and collects every item.
pub async fn every_page(app: &TestApp, path: &str, token: &str) -> Vec<Value> {
    let mut items = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let url = match &cursor {
            Some(c) => format!("{path}&cursor={c}"),
            None => path.to_string(),
        };
        let reply = app.get(&url, Some(token)).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
        items.extend(reply.body["data"].as_array().unwrap().iter().cloned());
        match reply.body["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => return items,
        }
    }
}

#[tokio::test]
async fn a_custom_role_is_created_renamed_and_deleted_with_unique_names() {
    let app = TestApp::spawn().await;
    let admin = app.admin("ada").await;
    let token = admin.access_token.as_str();
    let view = id_named(&app, "permissions", "articles.view").await;
    let edit = id_named(&app, "permissions", "articles.edit").await;

    let created = app
        .post_as(
            "/api/v1/roles",
            json!({ "name": "Reviewer", "description": "Reads and fixes drafts.", "permission_ids": [view, edit] }),
            token,
        )
        .await;
    let id = created_id(&created);
    assert_eq!(
        created.header("location"),
        Some(format!("/api/v1/roles/{id}").as_str())
    );
    assert_eq!(created.body["is_system"], false);
    assert_eq!(created.body["member_count"], 0);
    assert_eq!(created.body["grants"], json!({ "articles": "ve" }));
    assert_eq!(created.body["permissions"].as_array().unwrap().len(), 2);
    assert_eq!(created.body["permissions"][0]["module"], "articles");

    // Names are unique whatever their case; ids must exist; clients cannot set is_system.
    app.post_as("/api/v1/roles", json!({ "name": "reviewer" }), token)
        .await
        .assert_problem(409);
    let unknown = app
        .post_as(
            "/api/v1/roles",
            json!({ "name": "Ghost", "permission_ids": [Uuid::now_v7()] }),
            token,
        )
        .await;
    unknown.assert_problem(422);
    assert_eq!(unknown.error_fields(), ["permission_ids"]);
    let sneaky = app
        .post_as(
            "/api/v1/roles",
            json!({ "name": "Sneaky", "is_system": true }),
            token,
        )
        .await;
    sneaky.assert_problem(422);
    assert_eq!(sneaky.error_fields(), ["is_system"]);

    let renamed = app
        .put(
            &format!("/api/v1/roles/{id}"),
            json!({ "name": "Copy Editor", "description": null }),
            token,
        )
        .await;
    assert_eq!(renamed.status, StatusCode::OK, "{}", renamed.text);
    assert_eq!(renamed.body["name"], "Copy Editor");
    assert!(renamed.body["description"].is_null());
    app.put(
        &format!("/api/v1/roles/{id}"),
        json!({ "name": "EDITOR" }),
        token,
    )
    .await
    .assert_problem(409);
    let mass = app
        .put(
            &format!("/api/v1/roles/{id}"),
            json!({ "created_at": "2020-01-01T00:00:00Z" }),
            token,
        )
        .await;
    mass.assert_problem(422);
    assert_eq!(mass.error_fields(), ["created_at"]);

    // A held role is only deleted when forced; its holders lose it.
    let vera = app.viewer("vera").await;
    let vera_id = app.user_id(&vera.email).await;
    let viewer_role = id_named(&app, "roles", "Viewer").await;
    let assigned = app
        .put(
            &format!("/api/v1/users/{vera_id}/roles"),
            json!({ "role_ids": [viewer_role, id] }),
            token,
        )
        .await;
    assert_eq!(assigned.status, StatusCode::OK, "{}", assigned.text);
    let got = app.get(&format!("/api/v1/roles/{id}"), Some(token)).await;
    assert_eq!(got.body["member_count"], 1);
    let members = app
        .get(&format!("/api/v1/roles/{id}/members"), Some(token))
        .await;
    assert_eq!(members.status, StatusCode::OK, "{}", members.text);
    assert_eq!(members.body["data"][0]["id"], vera_id.to_string());
    assert!(members.body["data"][0]["via_group"].is_null());
    app.settle().await;
    let vera = app.refresh(&vera).await;
    let roles: BTreeSet<String> =
        serde_json::from_value(decode_claims(&vera.access_token)["roles"].clone()).unwrap();
    assert_eq!(
        roles,
        BTreeSet::from(["Copy Editor".into(), "Viewer".into()])
    );

    app.delete(&format!("/api/v1/roles/{id}"), token)
        .await
        .assert_problem(409);
    app.delete(&format!("/api/v1/roles/{id}?force=maybe"), token)
        .await
        .assert_problem(422);
    let deleted = app
        .delete(&format!("/api/v1/roles/{id}?force=true"), token)
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{}", deleted.text);
    app.get(&format!("/api/v1/roles/{id}"), Some(token))
        .await
        .assert_problem(404);
    app.settle().await;
    let vera = app.refresh(&vera).await;
    let claims = decode_claims(&vera.access_token);
    assert_eq!(claims["roles"], json!(["Viewer"]));
    assert_eq!(claims["perms"]["articles"], "v");

    let events = users_events(&app).await;
    for kind in ["role.created", "role.updated", "role.deleted"] {
        assert!(events.iter().any(|e| e == kind), "no {kind} in {events:?}");
    }
}

#[tokio::test]
async fn the_role_routes_need_a_token_the_permission_and_a_real_id() {
    let app = TestApp::spawn().await;
    let viewer = app.viewer("vera").await;
    let admin = app.admin("ada").await;

    app.get("/api/v1/roles", None).await.assert_problem(401);
    app.get("/api/v1/roles", Some(&viewer.access_token))
        .await
        .assert_problem(403);
    app.get("/api/v1/permissions", Some(&viewer.access_token))
        .await
        .assert_problem(403);
    app.post_as(
        "/api/v1/roles",
        json!({ "name": "Mine" }),
        &viewer.access_token,
    )
    .await
    .assert_problem(403);
    // 403 comes before 404: a caller without roles.view learns nothing about ids.
    let nobody = Uuid::now_v7();
    app.get(
        &format!("/api/v1/roles/{nobody}"),
        Some(&viewer.access_token),
    )
    .await
    .assert_problem(403);
    for path in [
        format!("/api/v1/roles/{nobody}"),
        format!("/api/v1/roles/{nobody}/permissions"),
        format!("/api/v1/roles/{nobody}/members"),
    ] {
        app.get(&path, Some(&admin.access_token))
            .await
            .assert_problem(404);
    }
    app.delete(&format!("/api/v1/roles/{nobody}"), &admin.access_token)
        .await
        .assert_problem(404);
    let bad = app
        .get("/api/v1/roles/not-a-uuid", Some(&admin.access_token))
        .await;
    bad.assert_problem(422);
    assert_eq!(bad.error_fields(), ["id"]);
}

#[tokio::test]
async fn system_roles_keep_their_names_and_admin_keeps_every_permission() {
    let app = TestApp::spawn().await;
    let admin = app.admin("ada").await;
    let token = admin.access_token.as_str();

    for name in ["Admin", "Editor", "Moderator", "Viewer"] {
        let id = id_named(&app, "roles", name).await;
        let refused = app
            .delete(&format!("/api/v1/roles/{id}?force=true"), token)
            .await;
        refused.assert_problem(409);
        assert!(
            refused.body["detail"]
                .as_str()
                .unwrap()
                .contains("system role"),
            "{}",
            refused.text
        );
        app.put(
            &format!("/api/v1/roles/{id}"),
            json!({ "name": format!("{name} Two") }),
            token,
        )
        .await
        .assert_problem(409);
    }
    // Their descriptions may change; sending the name unchanged is no rename.
    let editor = id_named(&app, "roles", "Editor").await;
    let described = app
        .put(
            &format!("/api/v1/roles/{editor}"),
            json!({ "name": "Editor", "description": "Runs the newsroom." }),
            token,
        )
        .await;
    assert_eq!(described.status, StatusCode::OK, "{}", described.text);
    assert_eq!(described.body["description"], "Runs the newsroom.");

    let admin_role = id_named(&app, "roles", "Admin").await;
    let before = app
        .get(
            &format!("/api/v1/roles/{admin_role}/permissions"),
            Some(token),
        )
        .await;
    assert_eq!(before.body["data"].as_array().unwrap().len(), 102);
    app.put(
        &format!("/api/v1/roles/{admin_role}/permissions"),
        json!({ "permission_ids": [] }),
        token,
    )
    .await
    .assert_problem(409);

    // Another system role's permissions may change, by someone holding them all; its holders'
    // tokens follow.
    let vera = app.viewer("vera").await;
    let viewer_role = id_named(&app, "roles", "Viewer").await;
    let current = app
        .get(
            &format!("/api/v1/roles/{viewer_role}/permissions"),
            Some(token),
        )
        .await;
    let mut ids: Vec<Value> = current.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].clone())
        .collect();
    ids.push(json!(
        id_named(&app, "permissions", "audit_logs.view").await
    ));
    let changed = app
        .put(
            &format!("/api/v1/roles/{viewer_role}/permissions"),
            json!({ "permission_ids": ids }),
            token,
        )
        .await;
    assert_eq!(changed.status, StatusCode::OK, "{}", changed.text);
    assert_eq!(changed.body["data"].as_array().unwrap().len(), 12);
    app.settle().await;
    let vera = app.refresh(&vera).await;
    assert_eq!(
        decode_claims(&vera.access_token)["perms"]["audit_logs"],
        "v"
    );
    assert!(
        users_events(&app)
            .await
            .iter()
            .any(|e| e == "role.permissions_changed")
    );
}

#[tokio::test]
async fn a_role_manager_cannot_grant_a_permission_they_lack() {
    let app = TestApp::spawn().await;
    let admin = app.admin("ada").await;
    let mut ids = Vec::new();
    for name in ["roles.view", "roles.create", "roles.manage"] {
        ids.push(id_named(&app, "permissions", name).await);
    }
    let manager_role = created_id(
        &app.post_as(
            "/api/v1/roles",
            json!({ "name": "Role Manager", "permission_ids": ids }),
            &admin.access_token,
        )
        .await,
    );
    let bob = app.viewer("bob").await;
    let bob_id = app.user_id(&bob.email).await;
    let viewer_role = id_named(&app, "roles", "Viewer").await;
    let assigned = app
        .put(
            &format!("/api/v1/users/{bob_id}/roles"),
            json!({ "role_ids": [viewer_role, manager_role] }),
            &admin.access_token,
        )
        .await;
    assert_eq!(assigned.status, StatusCode::OK, "{}", assigned.text);
    app.settle().await;
    let bob = app.refresh(&bob).await;
    let token = bob.access_token.as_str();
    let users_delete = id_named(&app, "permissions", "users.delete").await;
    let articles_view = id_named(&app, "permissions", "articles.view").await;

    let refused = app
        .post_as(
            "/api/v1/roles",
            json!({ "name": "Sneaky", "permission_ids": [users_delete] }),
            token,
        )
        .await;
    refused.assert_problem(403);
    assert!(
        refused.body["detail"]
            .as_str()
            .unwrap()
            .contains("users.delete")
    );

    let reader = created_id(
        &app.post_as(
            "/api/v1/roles",
            json!({ "name": "Reader", "permission_ids": [articles_view] }),
            token,
        )
        .await,
    );
    app.put(
        &format!("/api/v1/roles/{reader}/permissions"),
        json!({ "permission_ids": [articles_view, users_delete] }),
        token,
    )
    .await
    .assert_problem(403);
    // Nor give themselves more through their own role.
    app.put(
        &format!("/api/v1/roles/{manager_role}/permissions"),
        json!({ "permission_ids": [ids[0], ids[1], ids[2], users_delete] }),
        token,
    )
    .await
    .assert_problem(403);
    let comments_create = id_named(&app, "permissions", "comments.create").await;
    let widened = app
        .put(
            &format!("/api/v1/roles/{reader}/permissions"),
            json!({ "permission_ids": [articles_view, comments_create] }),
            token,
        )
        .await;
    assert_eq!(widened.status, StatusCode::OK, "{}", widened.text);
    assert_eq!(names(&widened), ["articles.view", "comments.create"]);
    let roles = app
        .get(
            &format!("/api/v1/roles/{reader}"),
            Some(&admin.access_token),
        )
        .await;
    assert_eq!(
        roles.body["grants"],
        json!({ "articles": "v", "comments": "c" })
    );
}

#[tokio::test]
async fn permissions_are_listed_by_module_and_custom_ones_can_be_added() {
    let app = TestApp::spawn().await;
    let admin = app.admin("ada").await;
    let token = admin.access_token.as_str();

    let articles = app
        .get("/api/v1/permissions?module=articles", Some(token))
        .await;
    assert_eq!(
        names(&articles),
        [
            "articles.create",
            "articles.delete",
            "articles.edit",
            "articles.manage",
            "articles.publish",
            "articles.view"
        ]
    );
    assert_eq!(articles.body["data"][5]["view"], true);
    assert_eq!(articles.body["data"][5]["edit"], false);
    let bad = app
        .get("/api/v1/permissions?module=nope", Some(token))
        .await;
    bad.assert_problem(422);
    assert_eq!(bad.error_fields(), ["module"]);
    let all = every_page(&app, "/api/v1/permissions?limit=7", token).await;
    let unique: BTreeSet<&str> = all.iter().map(|p| p["id"].as_str().unwrap()).collect();
    assert_eq!((all.len(), unique.len()), (102, 102));

    let created = app
        .post_as(
            "/api/v1/permissions",
            json!({ "module": "articles", "name": "articles.review_queue",
                    "description": "Work the review queue", "view": true, "edit": true }),
            token,
        )
        .await;
    let id = created_id(&created);
    assert_eq!(
        created.header("location"),
        Some("/api/v1/permissions?module=articles")
    );
    assert_eq!(created.body["publish"], false);
    app.post_as(
        "/api/v1/permissions",
        json!({ "module": "articles", "name": "articles.review_queue", "view": true }),
        token,
    )
    .await
    .assert_problem(409);
    let invalid = app
        .post_as(
            "/api/v1/permissions",
            json!({ "module": "spaceships", "name": "Launch Them" }),
            token,
        )
        .await;
    invalid.assert_problem(422);
    assert_eq!(invalid.error_fields(), ["module", "name", "view"]);
    let elsewhere = app
        .post_as(
            "/api/v1/permissions",
            json!({ "module": "tags", "name": "articles.sneak", "view": true }),
            token,
        )
        .await;
    elsewhere.assert_problem(422);
    assert_eq!(elsewhere.error_fields(), ["name"]);

    let modules = app.get("/api/v1/permissions/modules", Some(token)).await;
    assert_eq!(modules.status, StatusCode::OK, "{}", modules.text);
    let data = modules.body["data"].as_array().unwrap();
    assert_eq!(data.len(), 17);
    assert!(
        data.iter()
            .all(|m| m["actions"].as_array().unwrap().len() == 6)
    );
    let grid = &data[0];
    assert_eq!(grid["module"], "articles");
    assert_eq!(grid["actions"][0]["action"], "view");
    let view_ids = grid["actions"][0]["permission_ids"].as_array().unwrap();
    assert_eq!(view_ids.len(), 2);
    assert!(view_ids.contains(&json!(id)));
    assert_eq!(
        grid["actions"][4]["permission_ids"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // Admin keeps holding every permission.
    let admin_role = id_named(&app, "roles", "Admin").await;
    let admin_permissions = app
        .get(
            &format!("/api/v1/roles/{admin_role}/permissions"),
            Some(token),
        )
        .await;
    assert!(names(&admin_permissions).contains(&"articles.review_queue".to_string()));
    assert!(
        users_events(&app)
            .await
            .iter()
            .any(|e| e == "permission.created")
    );
}

#[tokio::test]
async fn the_role_list_pages_through_every_role_once_and_filters() {
    let app = TestApp::spawn().await;
    let admin = app.admin("ada").await;
    let token = admin.access_token.as_str();
    for name in ["zeta", "Alpha", "beta", "Gamma", "delta"] {
        created_id(
            &app.post_as("/api/v1/roles", json!({ "name": name }), token)
                .await,
        );
    }

    let all = every_page(&app, "/api/v1/roles?limit=2", token).await;
    let listed: Vec<&str> = all.iter().map(|r| r["name"].as_str().unwrap()).collect();
    assert_eq!(
        listed,
        [
            "Admin",
            "Alpha",
            "beta",
            "delta",
            "Editor",
            "Gamma",
            "Moderator",
            "Viewer",
            "zeta"
        ]
    );
    let system = app.get("/api/v1/roles?is_system=true", Some(token)).await;
    assert_eq!(names(&system), ["Admin", "Editor", "Moderator", "Viewer"]);
    assert_eq!(system.body["data"][0]["member_count"], 1);
    let custom = app
        .get("/api/v1/roles?is_system=false&q=ta", Some(token))
        .await;
    assert_eq!(names(&custom), ["beta", "delta", "zeta"]);
    let bad = app.get("/api/v1/roles?is_system=maybe", Some(token)).await;
    bad.assert_problem(422);
    assert_eq!(bad.error_fields(), ["is_system"]);
    app.get("/api/v1/roles?cursor=garbage", Some(token))
        .await
        .assert_problem(422);
}

#[tokio::test]
async fn role_members_include_holders_through_groups_on_request() {
    let app = TestApp::spawn().await;
    let admin = app.admin("ada").await;
    let token = admin.access_token.as_str();
    let role = created_id(
        &app.post_as("/api/v1/roles", json!({ "name": "Archivist" }), token)
            .await,
    );
    let top = created_id(
        &app.post_as("/api/v1/groups", json!({ "name": "Library" }), token)
            .await,
    );
    let shelf = created_id(
        &app.post_as(
            "/api/v1/groups",
            json!({ "name": "Shelf", "parent_id": top }),
            token,
        )
        .await,
    );
    let set = app
        .put(
            &format!("/api/v1/groups/{top}/roles"),
            json!({ "role_ids": [role] }),
            token,
        )
        .await;
    assert_eq!(set.status, StatusCode::OK, "{}", set.text);
    let carl = app.viewer("carl").await;
    let carl_id = app.user_id(&carl.email).await;
    let joined = app
        .put(
            &format!("/api/v1/groups/{shelf}/members"),
            json!({ "add": [carl_id] }),
            token,
        )
        .await;
    assert_eq!(joined.status, StatusCode::OK, "{}", joined.text);
    let dora = app.viewer("dora").await;
    let dora_id = app.user_id(&dora.email).await;
    let viewer_role = id_named(&app, "roles", "Viewer").await;
    app.put(
        &format!("/api/v1/users/{dora_id}/roles"),
        json!({ "role_ids": [viewer_role, role] }),
        token,
    )
    .await;

    let direct = app
        .get(&format!("/api/v1/roles/{role}/members"), Some(token))
        .await;
    assert_eq!(direct.status, StatusCode::OK, "{}", direct.text);
    let ids: Vec<&str> = direct.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [dora_id.to_string()]);

    let all = every_page(
        &app,
        &format!("/api/v1/roles/{role}/members?include=inherited&limit=1"),
        token,
    )
    .await;
    assert_eq!(all.len(), 2);
    let carl_row = all
        .iter()
        .find(|m| m["id"] == carl_id.to_string())
        .expect("carl holds the role through Shelf");
    assert_eq!(carl_row["via_group"]["name"], "Shelf");
    assert_eq!(carl_row["email"], carl.email);
    app.get(
        &format!("/api/v1/roles/{role}/members?include=everyone"),
        Some(token),
    )
    .await
    .assert_problem(422);
}
