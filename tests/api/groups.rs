//! Groups over HTTP: the tree, inherited roles, members, and the rules every access change
//! obeys (no escalation, an active Admin always remains).

use std::collections::BTreeSet;

use axum::http::StatusCode;
use serde_json::json;
use uuid::Uuid;

use crate::{
    directory::decode_claims,
    helpers::TestApp,
    roles::{created_id, every_page, id_named, names, users_events},
};

/// Creates a group (under `parent`, if any) as `token` and answers its id.
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

/// The ids of the members a list answer names.
fn member_ids(reply: &crate::helpers::Reply) -> BTreeSet<String> {
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    reply.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_string())
        .collect()
}

/// How many groups `user_id` is a direct member of.
async fn memberships(app: &TestApp, user_id: Uuid) -> i64 {
    app.db()
        .await
        .query_one(
            "SELECT count(*) FROM users.user_groups WHERE user_id = $1",
            &[&user_id],
        )
        .await
        .unwrap()
        .get(0)
}

#[tokio::test]
async fn a_role_on_the_top_group_reaches_a_member_of_the_bottom_group_three_levels_down() {
    let app = TestApp::spawn().await;
    let admin = app.admin("ada").await;
    let token = admin.access_token.as_str();
    let audit_view = id_named(&app, "permissions", "audit_logs.view").await;
    let archivist = created_id(
        &app.post_as(
            "/api/v1/roles",
            json!({ "name": "Archivist", "permission_ids": [audit_view] }),
            token,
        )
        .await,
    );
    let top = group(&app, token, "Company", None).await;
    let middle = group(&app, token, "Engineering", Some(&top)).await;
    let bottom = group(&app, token, "Platform", Some(&middle)).await;
    let roles = app
        .put(
            &format!("/api/v1/groups/{top}/roles"),
            json!({ "role_ids": [archivist] }),
            token,
        )
        .await;
    assert_eq!(roles.status, StatusCode::OK, "{}", roles.text);
    assert_eq!(roles.body["roles"][0]["name"], "Archivist");
    let carl = app.viewer("carl").await;
    let carl_id = app.user_id(&carl.email).await;

    let joined = app
        .put(
            &format!("/api/v1/groups/{bottom}/members"),
            json!({ "add": [carl_id] }),
            token,
        )
        .await;

    assert_eq!(member_ids(&joined), BTreeSet::from([carl_id.to_string()]));
    let permissions = app
        .get(&format!("/api/v1/users/{carl_id}/permissions"), Some(token))
        .await;
    assert_eq!(permissions.status, StatusCode::OK, "{}", permissions.text);
    let audit = permissions.body["permissions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["module"] == "audit_logs")
        .expect("audit_logs comes through the groups");
    assert_eq!(audit["view"], true);
    assert_eq!(audit["sources"][0]["role"]["name"], "Archivist");
    let via: Vec<&str> = audit["sources"][0]["via"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["name"].as_str().unwrap())
        .collect();
    assert_eq!(via, ["Platform", "Engineering", "Company"]);

    app.settle().await;
    let carl = app.refresh(&carl).await;
    let claims = decode_claims(&carl.access_token);
    assert_eq!(claims["perms"]["audit_logs"], "v");
    assert!(
        claims["roles"]
            .as_array()
            .unwrap()
            .contains(&json!("Archivist"))
    );
    assert_eq!(
        claims["groups"].as_array().unwrap().len(),
        3,
        "the token names the member group and its ancestors"
    );

    // What the tree looks like from each end.
    let detail = app
        .get(&format!("/api/v1/groups/{bottom}"), Some(token))
        .await;
    assert_eq!(detail.status, StatusCode::OK, "{}", detail.text);
    let path: Vec<&str> = detail.body["path"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["name"].as_str().unwrap())
        .collect();
    assert_eq!(path, ["Company", "Engineering"]);
    assert_eq!(detail.body["member_count"], 1);
    assert_eq!(detail.body["parent_id"], middle);
    let top_detail = app.get(&format!("/api/v1/groups/{top}"), Some(token)).await;
    assert_eq!(top_detail.body["children"][0]["name"], "Engineering");
    assert_eq!(top_detail.body["roles"][0]["name"], "Archivist");
    assert_eq!(top_detail.body["path"], json!([]));
    let inherited = app
        .get(&format!("/api/v1/groups/{bottom}/roles"), Some(token))
        .await;
    assert_eq!(inherited.body["roles"], json!([]));
    assert_eq!(inherited.body["inherited"][0]["name"], "Archivist");
    assert_eq!(inherited.body["inherited"][0]["group"]["name"], "Company");
    let direct = app
        .get(&format!("/api/v1/groups/{top}/members"), Some(token))
        .await;
    assert!(member_ids(&direct).is_empty());
    let below = app
        .get(
            &format!("/api/v1/groups/{top}/members?include=descendants"),
            Some(token),
        )
        .await;
    assert_eq!(member_ids(&below), BTreeSet::from([carl_id.to_string()]));
    assert_eq!(below.body["data"][0]["group"]["name"], "Platform");
    let events = users_events(&app).await;
    for kind in [
        "group.created",
        "role.assigned",
        "group.members_changed",
        "user.access_changed",
    ] {
        assert!(events.iter().any(|e| e == kind), "no {kind} in {events:?}");
    }
}

#[tokio::test]
async fn a_group_cannot_move_under_itself_or_its_descendants_nor_nest_too_deep() {
    let app = TestApp::spawn().await;
    let admin = app.admin("ada").await;
    let token = admin.access_token.as_str();
    let a = group(&app, token, "A", None).await;
    let b = group(&app, token, "B", Some(&a)).await;
    let c = group(&app, token, "C", Some(&b)).await;

    for target in [&c, &a] {
        let cycle = app
            .put(
                &format!("/api/v1/groups/{a}"),
                json!({ "parent_id": target }),
                token,
            )
            .await;
        cycle.assert_problem(422);
        assert_eq!(cycle.error_fields(), ["parent_id"]);
        assert!(cycle.text.contains("cycle"), "{}", cycle.text);
    }
    let unknown = app
        .put(
            &format!("/api/v1/groups/{a}"),
            json!({ "parent_id": Uuid::now_v7() }),
            token,
        )
        .await;
    unknown.assert_problem(422);
    assert_eq!(unknown.error_fields(), ["parent_id"]);

    // Eight levels is the most.
    let mut chain = vec![group(&app, token, "Level 1", None).await];
    for level in 2..=8 {
        let parent = chain.last().unwrap().clone();
        chain.push(group(&app, token, &format!("Level {level}"), Some(&parent)).await);
    }
    let ninth = app
        .post_as(
            "/api/v1/groups",
            json!({ "name": "Level 9", "parent_id": chain[7] }),
            token,
        )
        .await;
    ninth.assert_problem(422);
    assert_eq!(ninth.error_fields(), ["parent_id"]);
    // A -> B -> C is three deep: under level 6 it would reach 9, under level 5 it fits.
    let too_deep = app
        .put(
            &format!("/api/v1/groups/{a}"),
            json!({ "parent_id": chain[5] }),
            token,
        )
        .await;
    too_deep.assert_problem(422);
    assert_eq!(too_deep.error_fields(), ["parent_id"]);
    let moved = app
        .put(
            &format!("/api/v1/groups/{a}"),
            json!({ "parent_id": chain[4], "description": "Moved down" }),
            token,
        )
        .await;
    assert_eq!(moved.status, StatusCode::OK, "{}", moved.text);
    assert_eq!(moved.body["parent_id"], chain[4]);
    assert_eq!(moved.body["path"].as_array().unwrap().len(), 5);
    let c_detail = app.get(&format!("/api/v1/groups/{c}"), Some(token)).await;
    assert_eq!(c_detail.body["path"].as_array().unwrap().len(), 7);

    // parent_id null moves it back to the top level.
    let back = app
        .put(
            &format!("/api/v1/groups/{a}"),
            json!({ "parent_id": null }),
            token,
        )
        .await;
    assert_eq!(back.status, StatusCode::OK, "{}", back.text);
    assert!(back.body["parent_id"].is_null());
    assert_eq!(back.body["description"], "Moved down");

    // Siblings have distinct names, whatever the case; cousins may share one.
    app.post_as(
        "/api/v1/groups",
        json!({ "name": "b", "parent_id": a }),
        token,
    )
    .await
    .assert_problem(409);
    group(&app, token, "B", Some(&c)).await;
    app.put(
        &format!("/api/v1/groups/{a}"),
        json!({ "name": "LEVEL 1" }),
        token,
    )
    .await
    .assert_problem(409);
    let mass = app
        .post_as(
            "/api/v1/groups",
            json!({ "name": "Z", "created_by": Uuid::now_v7() }),
            token,
        )
        .await;
    mass.assert_problem(422);
    assert_eq!(mass.error_fields(), ["created_by"]);
    let missing = app
        .post_as(
            "/api/v1/groups",
            json!({ "name": "Orphan", "parent_id": Uuid::now_v7() }),
            token,
        )
        .await;
    missing.assert_problem(422);
    assert_eq!(missing.error_fields(), ["parent_id"]);
}

#[tokio::test]
async fn deleting_a_group_with_subgroups_or_members_needs_to_be_told_what_becomes_of_them() {
    let app = TestApp::spawn().await;
    let admin = app.admin("ada").await;
    let token = admin.access_token.as_str();
    let parent = group(&app, token, "Sales", None).await;
    let east = group(&app, token, "East", Some(&parent)).await;
    let west = group(&app, token, "West", Some(&parent)).await;
    let coast = group(&app, token, "Coast", Some(&west)).await;
    let mia = app.viewer("mia").await;
    let mia_id = app.user_id(&mia.email).await;
    let ned = app.viewer("ned").await;
    let ned_id = app.user_id(&ned.email).await;
    for (group_id, user) in [(&parent, mia_id), (&coast, ned_id)] {
        let joined = app
            .put(
                &format!("/api/v1/groups/{group_id}/members"),
                json!({ "add": [user] }),
                token,
            )
            .await;
        assert_eq!(joined.status, StatusCode::OK, "{}", joined.text);
    }

    let refused = app.delete(&format!("/api/v1/groups/{parent}"), token).await;
    refused.assert_problem(409);
    let detail = refused.body["detail"].as_str().unwrap();
    assert!(
        detail.contains("2 subgroups") && detail.contains("members=remove"),
        "{detail}"
    );
    app.delete(&format!("/api/v1/groups/{parent}?children=reparent"), token)
        .await
        .assert_problem(409);
    app.delete(&format!("/api/v1/groups/{parent}?children=adopt"), token)
        .await
        .assert_problem(422);

    let reparented = app
        .delete(
            &format!("/api/v1/groups/{parent}?children=reparent&members=remove"),
            token,
        )
        .await;
    assert_eq!(
        reparented.status,
        StatusCode::NO_CONTENT,
        "{}",
        reparented.text
    );
    app.get(&format!("/api/v1/groups/{parent}"), Some(token))
        .await
        .assert_problem(404);
    for child in [&east, &west] {
        let moved = app
            .get(&format!("/api/v1/groups/{child}"), Some(token))
            .await;
        assert!(moved.body["parent_id"].is_null(), "{}", moved.text);
    }
    assert_eq!(memberships(&app, mia_id).await, 0);

    // West still has Coast, and Coast has Ned.
    app.delete(&format!("/api/v1/groups/{west}"), token)
        .await
        .assert_problem(409);
    app.delete(&format!("/api/v1/groups/{west}?children=delete"), token)
        .await
        .assert_problem(409);
    let subtree = app
        .delete(
            &format!("/api/v1/groups/{west}?children=delete&members=remove"),
            token,
        )
        .await;
    assert_eq!(subtree.status, StatusCode::NO_CONTENT, "{}", subtree.text);
    for gone in [&west, &coast] {
        app.get(&format!("/api/v1/groups/{gone}"), Some(token))
            .await
            .assert_problem(404);
    }
    assert_eq!(memberships(&app, ned_id).await, 0);
    // An empty group without subgroups just goes.
    let plain = app.delete(&format!("/api/v1/groups/{east}"), token).await;
    assert_eq!(plain.status, StatusCode::NO_CONTENT, "{}", plain.text);
    assert!(
        users_events(&app)
            .await
            .iter()
            .any(|e| e == "group.deleted")
    );
}

#[tokio::test]
async fn members_are_added_and_removed_in_one_request_that_answers_the_result() {
    let app = TestApp::spawn().await;
    let admin = app.admin("ada").await;
    let token = admin.access_token.as_str();
    let team = group(&app, token, "Team", None).await;
    let mut ids = Vec::new();
    for name in ["una", "uri", "uwe"] {
        let session = app.viewer(name).await;
        ids.push(app.user_id(&session.email).await);
    }
    let path = format!("/api/v1/groups/{team}/members");

    let first = app
        .put(&path, json!({ "add": [ids[0], ids[1]] }), token)
        .await;
    assert_eq!(
        member_ids(&first),
        BTreeSet::from([ids[0].to_string(), ids[1].to_string()])
    );
    let swapped = app
        .put(&path, json!({ "add": [ids[2]], "remove": [ids[0]] }), token)
        .await;

    assert_eq!(
        member_ids(&swapped),
        BTreeSet::from([ids[1].to_string(), ids[2].to_string()])
    );
    assert!(swapped.body["data"][0]["joined_at"].is_string());
    assert!(
        swapped.body["data"][0]["email"]
            .as_str()
            .unwrap()
            .contains('@')
    );
    let listed = app.get(&path, Some(token)).await;
    assert_eq!(member_ids(&listed), member_ids(&swapped));
    let events = users_events(&app).await;
    assert_eq!(
        events
            .iter()
            .filter(|e| *e == "group.members_changed")
            .count(),
        2
    );
    let updates = app
        .db()
        .await
        .query_one(
            "SELECT count(*) FROM users.outbox WHERE type = 'user.updated' AND data->'changes' = '[\"groups\"]'",
            &[],
        )
        .await
        .unwrap()
        .get::<_, i64>(0);
    assert_eq!(updates, 4);

    let empty = app.put(&path, json!({}), token).await;
    empty.assert_problem(422);
    let both = app
        .put(&path, json!({ "add": [ids[0]], "remove": [ids[0]] }), token)
        .await;
    both.assert_problem(422);
    assert_eq!(both.error_fields(), ["remove"]);
    let unknown = app
        .put(&path, json!({ "add": [Uuid::now_v7()] }), token)
        .await;
    unknown.assert_problem(422);
    assert_eq!(unknown.error_fields(), ["add"]);
    let extra = app
        .put(&path, json!({ "add": [ids[0]], "role": "Admin" }), token)
        .await;
    extra.assert_problem(422);
    assert_eq!(extra.error_fields(), ["role"]);
    let too_many: Vec<Uuid> = (0..501).map(|_| Uuid::now_v7()).collect();
    let flood = app.put(&path, json!({ "add": too_many }), token).await;
    flood.assert_problem(422);
    assert_eq!(flood.error_fields(), ["add"]);
    app.put(
        &format!("/api/v1/groups/{}/members", Uuid::now_v7()),
        json!({ "add": [ids[0]] }),
        token,
    )
    .await
    .assert_problem(404);
}

#[tokio::test]
async fn a_group_manager_cannot_join_or_arm_a_group_with_more_than_they_hold() {
    let app = TestApp::spawn().await;
    let admin = app.admin("ada").await;
    let mut permission_ids = Vec::new();
    for name in ["groups.view", "groups.manage"] {
        permission_ids.push(id_named(&app, "permissions", name).await);
    }
    let manager_role = created_id(
        &app.post_as(
            "/api/v1/roles",
            json!({ "name": "Group Manager", "permission_ids": permission_ids }),
            &admin.access_token,
        )
        .await,
    );
    let admins = group(&app, &admin.access_token, "Admins", None).await;
    let readers = group(&app, &admin.access_token, "Readers", None).await;
    let admin_role = id_named(&app, "roles", "Admin").await;
    let viewer_role = id_named(&app, "roles", "Viewer").await;
    for (group_id, role) in [(&admins, admin_role), (&readers, viewer_role)] {
        let set = app
            .put(
                &format!("/api/v1/groups/{group_id}/roles"),
                json!({ "role_ids": [role] }),
                &admin.access_token,
            )
            .await;
        assert_eq!(set.status, StatusCode::OK, "{}", set.text);
    }
    let bob = app.viewer("bob").await;
    let bob_id = app.user_id(&bob.email).await;
    app.put(
        &format!("/api/v1/users/{bob_id}/roles"),
        json!({ "role_ids": [viewer_role, manager_role] }),
        &admin.access_token,
    )
    .await;
    app.settle().await;
    let bob = app.refresh(&bob).await;
    let token = bob.access_token.as_str();

    let refused = app
        .put(
            &format!("/api/v1/groups/{admins}/members"),
            json!({ "add": [bob_id] }),
            token,
        )
        .await;

    refused.assert_problem(403);
    assert_eq!(memberships(&app, bob_id).await, 0);
    app.put(
        &format!("/api/v1/groups/{readers}/roles"),
        json!({ "role_ids": [viewer_role, admin_role] }),
        token,
    )
    .await
    .assert_problem(403);
    // What bob holds he may pass on.
    let joined = app
        .put(
            &format!("/api/v1/groups/{readers}/members"),
            json!({ "add": [bob_id] }),
            token,
        )
        .await;
    assert_eq!(member_ids(&joined), BTreeSet::from([bob_id.to_string()]));
    // groups.manage is not groups.create.
    app.post_as("/api/v1/groups", json!({ "name": "Mine" }), token)
        .await
        .assert_problem(403);
    app.get("/api/v1/groups", None).await.assert_problem(401);
}

#[tokio::test]
async fn the_last_admin_cannot_lose_admin_through_the_group_that_gives_it() {
    let app = TestApp::spawn().await;
    let admin = app.admin("ada").await;
    let token = admin.access_token.as_str();
    let ada_id = app.user_id(&admin.email).await;
    let admin_role = id_named(&app, "roles", "Admin").await;
    let board = group(&app, token, "Board", None).await;
    let chair = group(&app, token, "Chair", Some(&board)).await;
    app.put(
        &format!("/api/v1/groups/{board}/roles"),
        json!({ "role_ids": [admin_role] }),
        token,
    )
    .await;
    let joined = app
        .put(
            &format!("/api/v1/groups/{chair}/members"),
            json!({ "add": [ada_id] }),
            token,
        )
        .await;
    assert_eq!(joined.status, StatusCode::OK, "{}", joined.text);
    // Ada now holds Admin only through Chair -> Board.
    let direct = app
        .put(
            &format!("/api/v1/users/{ada_id}/roles"),
            json!({ "role_ids": [] }),
            token,
        )
        .await;
    assert_eq!(direct.status, StatusCode::OK, "{}", direct.text);
    let events_before = users_events(&app).await.len();

    app.put(
        &format!("/api/v1/groups/{board}/roles"),
        json!({ "role_ids": [] }),
        token,
    )
    .await
    .assert_problem(409);
    app.put(
        &format!("/api/v1/groups/{chair}"),
        json!({ "parent_id": null }),
        token,
    )
    .await
    .assert_problem(409);
    app.put(
        &format!("/api/v1/groups/{chair}/members"),
        json!({ "remove": [ada_id] }),
        token,
    )
    .await
    .assert_problem(409);
    app.delete(&format!("/api/v1/groups/{chair}?members=remove"), token)
        .await
        .assert_problem(409);
    let refused = app
        .delete(
            &format!("/api/v1/groups/{board}?children=delete&members=remove"),
            token,
        )
        .await;
    refused.assert_problem(409);
    assert!(refused.body["detail"].as_str().unwrap().contains("Admin"));

    // Nothing changed.
    assert_eq!(users_events(&app).await.len(), events_before);
    let chair_detail = app
        .get(&format!("/api/v1/groups/{chair}"), Some(token))
        .await;
    assert_eq!(chair_detail.body["parent_id"], board);
    assert_eq!(chair_detail.body["member_count"], 1);
    let roles = app
        .get(&format!("/api/v1/groups/{board}/roles"), Some(token))
        .await;
    assert_eq!(roles.body["roles"][0]["name"], "Admin");
    let permissions = app
        .get(&format!("/api/v1/users/{ada_id}/permissions"), Some(token))
        .await;
    assert_eq!(
        permissions.body["roles"],
        json!([{ "id": admin_role, "name": "Admin" }])
    );
}

#[tokio::test]
async fn the_group_list_pages_through_every_group_once_and_filters_by_parent() {
    let app = TestApp::spawn().await;
    let admin = app.admin("ada").await;
    let token = admin.access_token.as_str();
    let alpha = group(&app, token, "Alpha", None).await;
    group(&app, token, "bravo", None).await;
    group(&app, token, "Charlie", None).await;
    for name in ["delta", "Echo", "foxtrot", "Golf"] {
        group(&app, token, name, Some(&alpha)).await;
    }

    let all = every_page(&app, "/api/v1/groups?limit=3", token).await;
    let listed: Vec<&str> = all.iter().map(|g| g["name"].as_str().unwrap()).collect();
    assert_eq!(
        listed,
        [
            "Alpha", "bravo", "Charlie", "delta", "Echo", "foxtrot", "Golf"
        ]
    );
    assert_eq!(all[0]["child_count"], 4);
    assert_eq!(all[0]["member_count"], 0);
    let top = app.get("/api/v1/groups?parent_id=root", Some(token)).await;
    assert_eq!(names(&top), ["Alpha", "bravo", "Charlie"]);
    let under = every_page(
        &app,
        &format!("/api/v1/groups?parent_id={alpha}&limit=1"),
        token,
    )
    .await;
    assert_eq!(under.len(), 4);
    let searched = app.get("/api/v1/groups?q=HA", Some(token)).await;
    assert_eq!(names(&searched), ["Alpha", "Charlie"]);
    let bad = app
        .get("/api/v1/groups?parent_id=nowhere", Some(token))
        .await;
    bad.assert_problem(422);
    assert_eq!(bad.error_fields(), ["parent_id"]);

    let viewer = app.viewer("vera").await;
    app.get("/api/v1/groups", Some(&viewer.access_token))
        .await
        .assert_problem(403);
    app.get(&format!("/api/v1/groups/{}", Uuid::now_v7()), Some(token))
        .await
        .assert_problem(404);
    let malformed = app.get("/api/v1/groups/12345", Some(token)).await;
    malformed.assert_problem(422);
    assert_eq!(malformed.error_fields(), ["id"]);
}
