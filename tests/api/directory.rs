//! The users service over HTTP: profiles, invitations, roles and effective permissions.

use axum::http::{Method, StatusCode};
use serde_json::json;

use crate::helpers::TestApp;

#[tokio::test]
async fn a_new_account_is_a_viewer_and_its_token_says_so() {
    let app = TestApp::spawn().await;
    let viewer = app.viewer("vera").await;
    let id = app.user_id(&viewer.email).await;

    let me = app
        .get(
            &format!("/api/v1/users/{id}/permissions"),
            Some(&viewer.access_token),
        )
        .await;
    assert_eq!(me.status, StatusCode::OK, "{}", me.text);
    assert_eq!(me.body["roles"][0]["name"], "Viewer");
    let articles = me.body["permissions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["module"] == "articles")
        .unwrap();
    assert_eq!(articles["view"], true);
    assert_eq!(articles["publish"], false);
    assert!(articles["sources"][0]["via"].is_null());

    // Others' permissions need users.view, which a Viewer lacks.
    let admin = app.admin("ada").await;
    let admin_id = app.user_id(&admin.email).await;
    app.get(
        &format!("/api/v1/users/{admin_id}/permissions"),
        Some(&viewer.access_token),
    )
    .await
    .assert_problem(403);
    // The list too.
    app.get("/api/v1/users", Some(&viewer.access_token))
        .await
        .assert_problem(403);
    app.get("/api/v1/users", None).await.assert_problem(401);
    let list = app.get("/api/v1/users", Some(&admin.access_token)).await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.text);
    assert_eq!(list.body["data"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn the_internal_routes_take_a_service_credential_and_never_a_user_token() {
    let app = TestApp::spawn().await;
    let admin = app.admin("ada").await;
    let id = app.user_id(&admin.email).await;
    let path = format!("/api/v1/internal/users/{id}");
    // An end-user token, even an Admin's, is not a service credential.
    app.get(&path, Some(&admin.access_token))
        .await
        .assert_problem(401);
    let request = |token: &str| {
        axum::http::Request::builder()
            .method(Method::GET)
            .uri(&path)
            .header("x-lectern-service-token", token)
            .body(axum::body::Body::empty())
            .unwrap()
    };
    app.send_raw(request("not-the-credential"), [10, 0, 0, 9])
        .await
        .assert_problem(403);
    let reply = app
        .send_raw(request(&app.service_token()), [10, 0, 0, 9])
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(reply.body["email"], admin.email);
}

#[tokio::test]
async fn creating_a_user_invites_them_and_their_token_carries_the_roles_permissions() {
    let app = TestApp::spawn().await;
    let admin = app.admin("ada").await;
    let roles = app.get("/api/v1/roles", Some(&admin.access_token)).await;
    let _ = roles;
    let email = app.email("ed");
    let editor_role: uuid::Uuid = app
        .db()
        .await
        .query_one("SELECT id FROM users.roles WHERE name = 'Editor'", &[])
        .await
        .unwrap()
        .get(0);
    let created = app
        .post_as(
            "/api/v1/users",
            json!({ "email": email, "first_name": "Ed", "last_name": "Itor", "job_title": "Editor",
                    "role_ids": [editor_role] }),
            &admin.access_token,
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    let id = created.body["id"].as_str().unwrap().to_string();
    assert_eq!(
        created.header("location"),
        Some(format!("/api/v1/users/{id}").as_str())
    );
    app.settle().await;
    // The identity exists in the auth service with the same id, and a mail went out.
    assert_eq!(app.user_id(&email).await.to_string(), id);
    let mail = app.last_mail_to(&email).await;
    let token = mail.token_after("token=");
    let reset = app
        .post(
            "/api/v1/auth/reset-password",
            json!({ "token": token, "new_password": "a fresh and long passphrase" }),
        )
        .await;
    assert!(reset.status.is_success(), "{}", reset.text);
    let session = app.sign_in(&email, "a fresh and long passphrase").await;
    let claims = decode_claims(&session.access_token);
    assert_eq!(claims["roles"], json!(["Editor"]));
    assert_eq!(claims["perms"]["articles"], "vcedp");

    // The same address twice is a conflict.
    app.post_as(
        "/api/v1/users",
        json!({ "email": email, "first_name": "Ed", "last_name": "Again" }),
        &admin.access_token,
    )
    .await
    .assert_problem(409);
}

/// The claims of an access token, unverified (the tests trust their own stack).
pub fn decode_claims(token: &str) -> serde_json::Value {
    use base64::Engine;
    let payload = token.split('.').nth(1).unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

#[tokio::test]
async fn a_profile_update_changes_only_what_it_names_and_rejects_what_it_may_not_touch() {
    let app = TestApp::spawn().await;
    let vera = app.viewer("vera").await;
    let id = app.user_id(&vera.email).await;
    let path = format!("/api/v1/users/{id}");

    let updated = app
        .put(
            &path,
            json!({ "job_title": "Copy editor", "bio": "Commas.\nAlways.", "phone": "+44 20 7946 0958" }),
            &vera.access_token,
        )
        .await;
    assert_eq!(updated.status, StatusCode::OK, "{}", updated.text);
    assert_eq!(updated.body["job_title"], "Copy editor");
    assert_eq!(updated.body["first_name"], "Ada");
    let cleared = app
        .put(&path, json!({ "bio": null }), &vera.access_token)
        .await;
    assert!(cleared.body["bio"].is_null(), "{}", cleared.text);
    assert_eq!(cleared.body["job_title"], "Copy editor");

    // Mass assignment: fields a profile update may not carry are refused, by name.
    for (body, field) in [
        (json!({ "id": uuid::Uuid::now_v7() }), "id"),
        (json!({ "email": "other@example.com" }), "email"),
        (json!({ "role_ids": [] }), "role_ids"),
        (json!({ "is_system": true }), "is_system"),
        (
            json!({ "created_at": "2020-01-01T00:00:00Z" }),
            "created_at",
        ),
        (json!({ "status": "ACTIVE" }), "status"),
    ] {
        let reply = app.put(&path, body, &vera.access_token).await;
        reply.assert_problem(422);
        assert_eq!(reply.error_fields(), [field], "{}", reply.text);
    }
    // Every invalid field in one answer.
    let reply = app
        .put(
            &path,
            json!({ "first_name": "", "avatar_url": "javascript:alert(1)", "phone": "call me" }),
            &vera.access_token,
        )
        .await;
    reply.assert_problem(422);
    assert_eq!(reply.error_fields(), ["first_name", "avatar_url", "phone"]);

    // Someone else's profile needs users.edit.
    let other = app.viewer("otto").await;
    app.put(&path, json!({ "job_title": "Boss" }), &other.access_token)
        .await
        .assert_problem(403);
    let admin = app.admin("ada").await;
    let by_admin = app
        .put(
            &path,
            json!({ "department": "Editorial" }),
            &admin.access_token,
        )
        .await;
    assert_eq!(
        by_admin.body["department"], "Editorial",
        "{}",
        by_admin.text
    );

    // Nothing changed by the refused requests, and the changes were announced.
    let profile = app.get(&path, Some(&vera.access_token)).await;
    assert_eq!(profile.body["email"], vera.email);
    assert_eq!(profile.body["status"], "ACTIVE");
    let announced: i64 = app
        .db()
        .await
        .query_one(
            "SELECT count(*) FROM users.outbox WHERE type = 'user.updated' AND data->>'user_id' = $1",
            &[&id.to_string()],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(announced, 3);
}

#[tokio::test]
async fn deactivating_ends_the_sessions_and_erasing_leaves_nothing_behind() {
    let app = TestApp::spawn().await;
    let admin = app.admin("ada").await;
    let vera = app.viewer("vera").await;
    let id = app.user_id(&vera.email).await;

    let reply = app
        .delete(&format!("/api/v1/users/{id}"), &admin.access_token)
        .await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT, "{}", reply.text);
    app.settle().await;
    let profile = app
        .get(&format!("/api/v1/users/{id}"), Some(&admin.access_token))
        .await;
    assert_eq!(profile.body["status"], "INACTIVE");
    // The auth service signed them out and refuses them.
    let refreshed = app
        .post(
            "/api/v1/auth/refresh",
            json!({ "refresh_token": vera.refresh_token }),
        )
        .await;
    refreshed.assert_problem(401);
    assert_ne!(
        app.login(&vera.email, crate::helpers::PASSWORD)
            .await
            .status,
        StatusCode::OK
    );

    app.call(
        Method::DELETE,
        &format!("/api/v1/users/{id}?mode=shred"),
        None,
        Some(&admin.access_token),
    )
    .await
    .assert_problem(422);
    let erased = app
        .call(
            Method::DELETE,
            &format!("/api/v1/users/{id}?mode=erase"),
            None,
            Some(&admin.access_token),
        )
        .await;
    assert_eq!(erased.status, StatusCode::NO_CONTENT, "{}", erased.text);
    app.settle().await;
    app.get(&format!("/api/v1/users/{id}"), Some(&admin.access_token))
        .await
        .assert_problem(404);
    let db = app.db().await;
    for table in ["users.users", "auth.users"] {
        let left: i64 = db
            .query_one(
                &format!("SELECT count(*) FROM {table} WHERE id = $1"),
                &[&id],
            )
            .await
            .unwrap()
            .get(0);
        assert_eq!(left, 0, "{table} still holds the erased user");
    }
    for table in [
        "users.user_roles",
        "users.user_groups",
        "users.notification_preferences",
    ] {
        let left: i64 = db
            .query_one(
                &format!("SELECT count(*) FROM {table} WHERE user_id = $1"),
                &[&id],
            )
            .await
            .unwrap()
            .get(0);
        assert_eq!(left, 0, "{table} still holds the erased user");
    }
    let described: Vec<String> = db
        .query(
            "SELECT type FROM users.outbox WHERE data->>'user_id' = $1",
            &[&id.to_string()],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(described, ["user.deleted"], "only the deletion is kept");
    // Deleting needs users.delete.
    let otto = app.viewer("otto").await;
    let admin_id = app.user_id(&admin.email).await;
    app.delete(&format!("/api/v1/users/{admin_id}"), &otto.access_token)
        .await
        .assert_problem(403);
}

#[tokio::test]
async fn the_last_active_admin_cannot_be_removed_deactivated_or_demoted() {
    let app = TestApp::spawn().await;
    let admin = app.admin("ada").await;
    let id = app.user_id(&admin.email).await;
    let viewer_role: uuid::Uuid = app
        .db()
        .await
        .query_one("SELECT id FROM users.roles WHERE name = 'Viewer'", &[])
        .await
        .unwrap()
        .get(0);

    app.put(
        &format!("/api/v1/users/{id}/roles"),
        json!({ "role_ids": [viewer_role] }),
        &admin.access_token,
    )
    .await
    .assert_problem(409);
    app.delete(&format!("/api/v1/users/{id}"), &admin.access_token)
        .await
        .assert_problem(409);
    app.call(
        Method::DELETE,
        &format!("/api/v1/users/{id}?mode=erase"),
        None,
        Some(&admin.access_token),
    )
    .await
    .assert_problem(409);
    let roles = app
        .get(
            &format!("/api/v1/users/{id}/roles"),
            Some(&admin.access_token),
        )
        .await;
    assert_eq!(roles.body["direct"][0]["name"], "Admin", "{}", roles.text);

    // With a second Admin the first may step down.
    let bea = app.admin("bea").await;
    let bea_id = app.user_id(&bea.email).await;
    let demoted = app
        .put(
            &format!("/api/v1/users/{id}/roles"),
            json!({ "role_ids": [viewer_role] }),
            &admin.access_token,
        )
        .await;
    assert_eq!(demoted.status, StatusCode::OK, "{}", demoted.text);
    // …and now Bea is the last one.
    let reply = app
        .put(
            &format!("/api/v1/users/{bea_id}"),
            json!({ "status": "SUSPENDED" }),
            &bea.access_token,
        )
        .await;
    reply.assert_problem(422); // not one's own status
    app.delete(&format!("/api/v1/users/{bea_id}"), &bea.access_token)
        .await
        .assert_problem(409);
}

#[tokio::test]
async fn a_role_change_is_in_the_token_after_the_next_refresh() {
    let app = TestApp::spawn().await;
    let admin = app.admin("ada").await;
    let vera = app.viewer("vera").await;
    let id = app.user_id(&vera.email).await;
    assert_eq!(decode_claims(&vera.access_token)["perms"]["articles"], "v");
    let editor_role: uuid::Uuid = app
        .db()
        .await
        .query_one("SELECT id FROM users.roles WHERE name = 'Editor'", &[])
        .await
        .unwrap()
        .get(0);

    let reply = app
        .put(
            &format!("/api/v1/users/{id}/roles"),
            json!({ "role_ids": [editor_role] }),
            &admin.access_token,
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(reply.body["direct"][0]["name"], "Editor");
    app.settle().await;
    let refreshed = app.refresh(&vera).await;
    let claims = decode_claims(&refreshed.access_token);
    assert_eq!(claims["roles"], json!(["Editor"]));
    assert_eq!(claims["perms"]["articles"], "vcedp");
    // Announced as the issue asks.
    let db = app.db().await;
    for kind in [
        "role.assigned",
        "role.revoked",
        "user.updated",
        "user.access_changed",
    ] {
        let n: i64 = db
            .query_one(
                "SELECT count(*) FROM users.outbox WHERE type = $1 AND data->>'user_id' = $2",
                &[&kind, &id.to_string()],
            )
            .await
            .unwrap()
            .get(0);
        assert!(n >= 1, "no {kind} event");
    }
    // No escalation: an Editor (no users.manage) cannot hand out roles.
    app.put(
        &format!("/api/v1/users/{id}/roles"),
        json!({ "role_ids": [] }),
        &refreshed.access_token,
    )
    .await
    .assert_problem(403);
}

#[tokio::test]
async fn a_search_pages_through_its_matches_in_every_order() {
    let app = TestApp::spawn().await;
    let admin = app.admin("ada").await;
    let db = app.db().await;
    // 40 profiles with 20 last names, two each: Surname10..Surname19 (20 profiles) match, in a
    // scrambled creation order; the pairs share a first name too, so the id breaks the tie.
    for i in 0..40 {
        db.execute(
            "INSERT INTO users.users (id, email, first_name, last_name, created_at) \
             VALUES ($1, $2, $3, $4, now() - make_interval(secs => $5))",
            &[
                &uuid::Uuid::now_v7(),
                &format!("member{i}@example.com"),
                &if i % 2 == 0 { "Bea" } else { "al" },
                &format!("Surname{:02}", (i * 7) % 20),
                &f64::from((i * 13) % 40),
            ],
        )
        .await
        .unwrap();
    }
    let orders = [
        ("name", "lower(last_name), lower(first_name), id"),
        (
            "-name",
            "lower(last_name) DESC, lower(first_name) DESC, id DESC",
        ),
        ("created_at", "created_at, id"),
        ("-created_at", "created_at DESC, id DESC"),
    ];
    for (sort, order) in orders {
        let expected: Vec<String> = db
            .query(
                &format!(
                    "SELECT id::text FROM users.users WHERE last_name LIKE 'Surname1%' ORDER BY {order}"
                ),
                &[],
            )
            .await
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        assert_eq!(expected.len(), 20);
        let got: Vec<String> = app
            .all_pages(
                &admin.access_token,
                &format!("/api/v1/users?q=sUrNaMe1&limit=3&sort={sort}"),
            )
            .await
            .iter()
            .map(|row| row["id"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(got, expected, "sort={sort}");
    }
}

/// A user just created is in the trigram index itself: no search has to read a pending list
/// until a vacuum comes (users migration 4; BENCHMARKS.md, *A search index without a pending
/// list*).
#[tokio::test]
async fn new_users_go_straight_into_the_search_index_not_a_pending_list() {
    let app = TestApp::spawn().await;
    let admin = app.admin("ada").await;
    let db = app.db().await;
    db.batch_execute("CREATE EXTENSION IF NOT EXISTS pgstattuple")
        .await
        .unwrap();
    for i in 0..12 {
        let created = app
            .post_as(
                "/api/v1/users",
                json!({
                    "email": app.email(&format!("newcomer{i}")),
                    "first_name": "Newcomer",
                    "last_name": format!("Pending{i}"),
                }),
                &admin.access_token,
            )
            .await;
        assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    }
    let pending: i64 = db
        .query_one(
            "SELECT pending_tuples FROM pgstatginindex('users.users_search_idx')",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(pending, 0, "users waiting in the index's pending list");
    let found = app
        .get("/api/v1/users?q=pending1", Some(&admin.access_token))
        .await;
    assert_eq!(found.status, StatusCode::OK, "{}", found.text);
    let names: Vec<&str> = found.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["last_name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Pending1", "Pending10", "Pending11"]);
}

#[tokio::test]
async fn the_user_list_filters_sorts_and_pages_every_row_exactly_once_while_rows_arrive() {
    let app = TestApp::spawn().await;
    let admin = app.admin("ada").await;
    let db = app.db().await;
    // 40 profiles straight into the table (the worker's own insert), some in Sales.
    for i in 0..40 {
        db.execute(
            "INSERT INTO users.users (id, email, first_name, last_name, department) VALUES ($1, $2, $3, $4, $5)",
            &[
                &uuid::Uuid::now_v7(),
                &format!("person{i}@example.com"),
                &format!("Person{i:02}"),
                &format!("Surname{:02}", (i * 7) % 40),
                &if i % 4 == 0 { "Sales" } else { "Editorial" },
            ],
        )
        .await
        .unwrap();
    }
    for sort in ["name", "-name", "created_at", "-created_at"] {
        let mut seen = std::collections::HashSet::new();
        let mut cursor: Option<String> = None;
        let mut inserted = 0;
        loop {
            let path = match &cursor {
                Some(c) => format!("/api/v1/users?limit=7&sort={sort}&cursor={c}"),
                None => format!("/api/v1/users?limit=7&sort={sort}"),
            };
            let page = app.get(&path, Some(&admin.access_token)).await;
            assert_eq!(page.status, StatusCode::OK, "{}", page.text);
            for row in page.body["data"].as_array().unwrap() {
                let id = row["id"].as_str().unwrap().to_string();
                assert!(seen.insert(id), "{sort}: a row came twice");
            }
            // Someone signs up between two pages.
            db.execute(
                "INSERT INTO users.users (id, email, first_name, last_name) VALUES ($1, $2, 'Late', 'Comer')",
                &[&uuid::Uuid::now_v7(), &format!("late{sort}{inserted}@example.com")],
            )
            .await
            .unwrap();
            inserted += 1;
            match page.body["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_string()),
                None => break,
            }
        }
        let originals = db
            .query(
                "SELECT id FROM users.users WHERE email NOT LIKE 'late%'",
                &[],
            )
            .await
            .unwrap();
        for row in originals {
            let id: uuid::Uuid = row.get(0);
            assert!(seen.contains(&id.to_string()), "{sort}: a row was skipped");
        }
    }
    // Ordered by name: last name, then first name.
    let page = app
        .get(
            "/api/v1/users?limit=3&department=sales&sort=-name",
            Some(&admin.access_token),
        )
        .await;
    let names: Vec<&str> = page.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["last_name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Surname36", "Surname32", "Surname28"]);
    // Search over name and email, with LIKE wildcards taken literally.
    let found = app
        .get("/api/v1/users?q=PERSON1", Some(&admin.access_token))
        .await;
    assert_eq!(found.body["data"].as_array().unwrap().len(), 11); // 1, 10..19
    let none = app
        .get("/api/v1/users?q=%25", Some(&admin.access_token))
        .await;
    assert_eq!(
        none.body["data"].as_array().unwrap().len(),
        0,
        "{}",
        none.text
    );
    // Status and role filters.
    let admins = app
        .get(
            &format!(
                "/api/v1/users?role={}",
                db.query_one("SELECT id FROM users.roles WHERE name = 'Admin'", &[])
                    .await
                    .unwrap()
                    .get::<_, uuid::Uuid>(0)
            ),
            Some(&admin.access_token),
        )
        .await;
    assert_eq!(admins.body["data"][0]["email"], admin.email);
    assert_eq!(admins.body["data"].as_array().unwrap().len(), 1);
    // Bad parameters are named.
    for (query, field) in [
        ("status=gone", "status"),
        ("role=nope", "role"),
        ("group=nope", "group"),
        ("sort=email", "sort"),
        ("limit=0", "limit"),
        ("cursor=zzz", "cursor"),
    ] {
        let reply = app
            .get(&format!("/api/v1/users?{query}"), Some(&admin.access_token))
            .await;
        reply.assert_problem(422);
        assert_eq!(reply.error_fields(), [field], "{query}");
    }
    // A cursor from one order is refused in another.
    let first = app
        .get("/api/v1/users?limit=2&sort=name", Some(&admin.access_token))
        .await;
    let cursor = first.body["next_cursor"].as_str().unwrap();
    app.get(
        &format!("/api/v1/users?limit=2&sort=created_at&cursor={cursor}"),
        Some(&admin.access_token),
    )
    .await
    .assert_problem(422);
}

#[tokio::test]
async fn notification_preferences_start_from_defaults_and_belong_to_their_owner() {
    let app = TestApp::spawn().await;
    let vera = app.viewer("vera").await;
    let id = app.user_id(&vera.email).await;
    let path = format!("/api/v1/users/{id}/notifications/preferences");

    let defaults = app.get(&path, Some(&vera.access_token)).await;
    assert_eq!(defaults.status, StatusCode::OK, "{}", defaults.text);
    assert_eq!(defaults.body["digest"], "instant");
    assert_eq!(defaults.body["email_enabled"], true);
    assert!(defaults.body["updated_at"].is_null());
    let rows: i64 = app
        .db()
        .await
        .query_one("SELECT count(*) FROM users.notification_preferences", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(rows, 0, "reading the defaults wrote a row");

    let updated = app
        .put(
            &path,
            json!({ "digest": "weekly", "types": { "task_assigned": { "email": false, "in_app": true } } }),
            &vera.access_token,
        )
        .await;
    assert_eq!(updated.status, StatusCode::OK, "{}", updated.text);
    let again = app
        .put(&path, json!({ "email_enabled": false }), &vera.access_token)
        .await;
    assert_eq!(again.body["digest"], "weekly");
    assert_eq!(again.body["email_enabled"], false);
    assert_eq!(again.body["types"]["task_assigned"]["email"], false);

    let reply = app
        .put(
            &path,
            json!({ "digest": "hourly", "types": { "Bad Name": { "email": true, "in_app": true } } }),
            &vera.access_token,
        )
        .await;
    reply.assert_problem(422);
    assert_eq!(reply.error_fields(), ["digest", "types.Bad Name"]);
    app.put(&path, json!({ "user_id": id }), &vera.access_token)
        .await
        .assert_problem(422);

    let otto = app.viewer("otto").await;
    app.get(&path, Some(&otto.access_token))
        .await
        .assert_problem(403);
    app.put(&path, json!({ "digest": "never" }), &otto.access_token)
        .await
        .assert_problem(403);
    let admin = app.admin("ada").await;
    let by_admin = app.get(&path, Some(&admin.access_token)).await;
    assert_eq!(by_admin.body["digest"], "weekly");
    app.get(
        &format!(
            "/api/v1/users/{}/notifications/preferences",
            uuid::Uuid::now_v7()
        ),
        Some(&admin.access_token),
    )
    .await
    .assert_problem(404);
}
