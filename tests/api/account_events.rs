//! What the users service says about accounts, applied by the auth worker: invitations (an
//! identity with no password and a mailed link to choose one), status changes and erasure.

use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use lectern_shared::events::Envelope;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{PASSWORD, Reply, Session, TestApp};

const INVITATION_LINK: &str = "http://lectern.test/reset-password?token=";
const RESET_LINK: &str = INVITATION_LINK;
const WRONG_PASSWORD: &str = "not the right passphrase";
const CHOSEN_PASSWORD: &str = "my own first passphrase";

// ------------------------------------------------------------------------------ helpers

fn users_event(kind: &str, data: Value) -> Envelope {
    Envelope::new("lectern.users", kind, None, data)
}

fn invited(user_id: Uuid, email: &str, invited_by: Option<Uuid>) -> Envelope {
    users_event(
        "user.invited",
        json!({
            "user_id": user_id, "email": email, "first_name": "Grace", "last_name": "Hopper",
            "invited_by": invited_by,
        }),
    )
}

fn status_changed(user_id: Uuid, status: &str) -> Envelope {
    users_event(
        "user.updated",
        json!({ "user_id": user_id, "status": status, "first_name": "Grace" }),
    )
}

/// Applies `event` as the auth worker does when SQS hands it over.
async fn apply(app: &TestApp, event: &Envelope) {
    app.stack
        .auth_worker
        .apply(event)
        .await
        .unwrap_or_else(|err| panic!("applying {}: {err:?}", event.type_));
}

/// Invites a new user with a unique address; answers its id and address.
async fn invite(app: &TestApp, name: &str) -> (Uuid, String) {
    let (user_id, email) = (Uuid::now_v7(), app.email(name));
    apply(app, &invited(user_id, &email, None)).await;
    (user_id, email)
}

async fn reset_password(app: &TestApp, token: &str, new_password: &str) -> Reply {
    app.post(
        "/api/v1/auth/reset-password",
        json!({ "token": token, "new_password": new_password }),
    )
    .await
}

async fn refresh(app: &TestApp, refresh_token: &str) -> Reply {
    app.post(
        "/api/v1/auth/refresh",
        json!({ "refresh_token": refresh_token }),
    )
    .await
}

/// What a wrong password for an existing account answers.
async fn wrong_password_answer(app: &TestApp) -> Reply {
    let email = app.email("someone");
    assert_eq!(app.signup(&email).await.status, StatusCode::ACCEPTED);
    let reply = app.login(&email, WRONG_PASSWORD).await;
    reply.assert_problem(401);
    reply
}

/// The account as stored: email, whether it has a password, status, email verified.
async fn account(app: &TestApp, user_id: Uuid) -> Option<(String, bool, String, bool)> {
    app.db()
        .await
        .query_opt(
            "SELECT email, password_hash IS NOT NULL, status, email_verified FROM auth.users WHERE id = $1",
            &[&user_id],
        )
        .await
        .unwrap()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
}

async fn count(app: &TestApp, sql: &str, user_id: Uuid) -> i64 {
    app.db()
        .await
        .query_one(sql, &[&user_id])
        .await
        .unwrap()
        .get(0)
}

/// How each of the user's sessions ended (None while live), oldest first.
async fn revocations(app: &TestApp, user_id: Uuid) -> Vec<Option<String>> {
    app.db()
        .await
        .query(
            "SELECT revoked_reason FROM auth.user_sessions WHERE user_id = $1 ORDER BY created_at",
            &[&user_id],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

async fn outbox_types(app: &TestApp) -> Vec<String> {
    app.db()
        .await
        .query("SELECT type FROM auth.outbox ORDER BY occurred_at, id", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

/// A signed-up user, signed in on two devices.
async fn user_on_two_devices(app: &TestApp) -> (Uuid, Session, Session) {
    let first = app.signed_in_user("ada").await;
    let second = app.sign_in(&first.email, PASSWORD).await;
    (app.user_id(&first.email).await, first, second)
}

// ------------------------------------------------------------------------------ invitations

#[tokio::test]
async fn an_invitation_creates_an_identity_without_a_password_and_mails_a_link_to_choose_one() {
    let app = TestApp::spawn().await;
    let admin = app.signed_in_user("admin").await;
    let admin_id = app.user_id(&admin.email).await;
    let user_id = Uuid::now_v7();
    let email = app.email("grace");
    let outbox_before = outbox_types(&app).await;

    apply(
        &app,
        &invited(user_id, &email.to_uppercase(), Some(admin_id)),
    )
    .await;

    assert_eq!(
        account(&app, user_id).await,
        Some((email.clone(), false, "ACTIVE".into(), false)),
        "same id, address lower-cased, no password, active, not yet verified"
    );
    let mails = app.mails_to(&email).await;
    assert_eq!(mails.len(), 1);
    let mail = &mails[0];
    assert_eq!(mail.subject, "You are invited to Lectern");
    assert!(mail.body.contains("Hello Grace"), "{}", mail.body);
    assert!(
        mail.body
            .contains(&format!("{} has invited you", admin.email)),
        "the mail says who invited them: {}",
        mail.body
    );
    assert!(mail.body.contains("within 7 days"), "{}", mail.body);
    let token = mail.token_after(INVITATION_LINK);
    assert!(lectern_shared::tokens::looks_valid(&token));
    let stored = app
        .db()
        .await
        .query_one(
            "SELECT token_hash, purpose, expires_at, used_at, created_at FROM auth.password_reset_tokens WHERE user_id = $1",
            &[&user_id],
        )
        .await
        .unwrap();
    assert_eq!(
        stored.get::<_, Vec<u8>>(0),
        lectern_shared::tokens::hash(&token),
        "only the hash is stored"
    );
    assert_eq!(stored.get::<_, String>(1), "invitation");
    // Measured from when the token was made: a busy machine may take its time to get here.
    let valid_for = stored.get::<_, DateTime<Utc>>(2) - stored.get::<_, DateTime<Utc>>(4);
    assert!(
        (valid_for - chrono::Duration::days(7)).num_seconds().abs() <= 1,
        "valid for a week: {valid_for}"
    );
    assert_eq!(stored.get::<_, Option<DateTime<Utc>>>(3), None);
    assert_eq!(
        outbox_types(&app).await,
        outbox_before,
        "no user.created (nor anything else) for an invited identity"
    );
}

#[tokio::test]
async fn an_invitation_without_a_known_inviter_still_reads_well() {
    let app = TestApp::spawn().await;
    let user_id = Uuid::now_v7();
    let email = app.email("grace");

    apply(&app, &invited(user_id, &email, Some(Uuid::now_v7()))).await;

    let mail = app.last_mail_to(&email).await;
    assert!(
        mail.body.contains("You have been invited to Lectern."),
        "{}",
        mail.body
    );
}

#[tokio::test]
async fn an_invited_user_cannot_sign_in_before_choosing_a_password_and_hears_the_same_as_for_a_wrong_password()
 {
    let app = TestApp::spawn().await;
    let wrong_password = wrong_password_answer(&app).await;
    let (user_id, email) = invite(&app, "grace").await;

    for attempt in [PASSWORD, WRONG_PASSWORD] {
        let reply = app.login(&email, attempt).await;

        reply.assert_problem(401);
        assert_eq!(reply.text, wrong_password.text);
    }
    assert!(revocations(&app, user_id).await.is_empty(), "no session");
    let reasons: Vec<Value> = app
        .db()
        .await
        .query(
            "SELECT data->'reason' FROM auth.outbox WHERE type = 'auth.login_failed' AND data->>'email' = $1",
            &[&email],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(reasons, ["invalid_credentials", "invalid_credentials"]);
}

#[tokio::test]
async fn the_invitation_link_sets_the_password_verifies_the_address_and_lets_the_user_sign_in() {
    let app = TestApp::spawn().await;
    let (user_id, email) = invite(&app, "grace").await;
    let token = app.last_mail_to(&email).await.token_after(INVITATION_LINK);

    let reply = reset_password(&app, &token, CHOSEN_PASSWORD).await;

    assert_eq!(reply.status, StatusCode::NO_CONTENT, "{}", reply.text);
    assert_eq!(
        account(&app, user_id).await,
        Some((email.clone(), true, "ACTIVE".into(), true)),
        "a password, and the address counts as verified: the link proved the mailbox"
    );
    let login = app.login(&email, CHOSEN_PASSWORD).await;
    assert_eq!(login.status, StatusCode::OK, "{}", login.text);
    let me = app
        .get(
            "/api/v1/auth/me",
            Some(login.body["access_token"].as_str().unwrap()),
        )
        .await;
    assert_eq!(me.body["id"], user_id.to_string());
    assert_eq!(me.body["email_verified"], true);
    assert!(
        outbox_types(&app)
            .await
            .contains(&"auth.invitation_accepted".to_string())
    );
    assert_eq!(
        app.mails_to(&email).await.len(),
        1,
        "no 'your password was changed' notice for a first password"
    );
}

#[tokio::test]
async fn the_invitation_link_follows_the_password_policy() {
    let app = TestApp::spawn().await;
    let (user_id, email) = invite(&app, "grace").await;
    let token = app.last_mail_to(&email).await.token_after(INVITATION_LINK);

    let reply = reset_password(&app, &token, "password").await;

    reply.assert_problem(422);
    assert_eq!(reply.error_fields(), ["new_password"]);
    assert!(
        !account(&app, user_id).await.unwrap().1,
        "still no password"
    );
    assert_eq!(
        reset_password(&app, &token, CHOSEN_PASSWORD).await.status,
        StatusCode::NO_CONTENT,
        "a refused password does not use the link up"
    );
}

#[tokio::test]
async fn an_invitation_link_works_only_once() {
    let app = TestApp::spawn().await;
    let (_, email) = invite(&app, "grace").await;
    let token = app.last_mail_to(&email).await.token_after(INVITATION_LINK);
    assert_eq!(
        reset_password(&app, &token, CHOSEN_PASSWORD).await.status,
        StatusCode::NO_CONTENT
    );

    let again = reset_password(&app, &token, "someone else's passphrase").await;

    again.assert_problem(422);
    assert_eq!(again.error_fields(), ["token"]);
    assert_eq!(
        app.login(&email, CHOSEN_PASSWORD).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn an_expired_invitation_link_is_refused_and_sets_nothing() {
    let app = TestApp::spawn().await;
    let (user_id, email) = invite(&app, "grace").await;
    let token = app.last_mail_to(&email).await.token_after(INVITATION_LINK);
    app.db()
        .await
        .execute(
            "UPDATE auth.password_reset_tokens SET expires_at = now() - interval '1 minute' WHERE user_id = $1",
            &[&user_id],
        )
        .await
        .unwrap();

    let reply = reset_password(&app, &token, CHOSEN_PASSWORD).await;

    reply.assert_problem(422);
    assert_eq!(reply.error_fields(), ["token"]);
    assert!(
        !account(&app, user_id).await.unwrap().1,
        "still no password"
    );
    app.login(&email, CHOSEN_PASSWORD).await.assert_problem(401);
}

#[tokio::test]
async fn the_invitation_lifetime_comes_from_invitation_ttl_hours() {
    let app = TestApp::spawn_with(&[("INVITATION_TTL_HOURS", "36")]).await;

    let (user_id, email) = invite(&app, "grace").await;

    assert!(
        app.last_mail_to(&email)
            .await
            .body
            .contains("within 36 hours")
    );
    let valid_for: f64 = app
        .db()
        .await
        .query_one(
            "SELECT extract(epoch FROM expires_at - now())::float8 FROM auth.password_reset_tokens WHERE user_id = $1",
            &[&user_id],
        )
        .await
        .unwrap()
        .get(0);
    assert!(
        (36.0 * 3600.0 - 60.0..=36.0 * 3600.0).contains(&valid_for),
        "{valid_for}"
    );
}

#[tokio::test]
async fn an_invitation_for_an_address_another_account_holds_changes_nothing_and_sends_nothing() {
    let app = TestApp::spawn().await;
    let existing = app.signed_in_user("ada").await;
    let existing_id = app.user_id(&existing.email).await;
    let mails_before = app.mails_to(&existing.email).await.len();
    let other_id = Uuid::now_v7();

    apply(&app, &invited(other_id, &existing.email, None)).await;

    assert_eq!(account(&app, other_id).await, None);
    assert_eq!(
        account(&app, existing_id).await,
        Some((existing.email.clone(), true, "ACTIVE".into(), false)),
        "the existing account is as it was"
    );
    assert_eq!(app.mails_to(&existing.email).await.len(), mails_before);
    assert_eq!(
        count(
            &app,
            "SELECT count(*) FROM auth.password_reset_tokens WHERE user_id = $1",
            existing_id
        )
        .await,
        0
    );
    assert_eq!(
        app.login(&existing.email, PASSWORD).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn delivering_the_same_invitation_twice_sends_one_mail() {
    let app = TestApp::spawn().await;
    let user_id = Uuid::now_v7();
    let email = app.email("grace");
    let event = invited(user_id, &email, None);

    apply(&app, &event).await;
    apply(&app, &event).await;

    assert_eq!(app.mails_to(&email).await.len(), 1);
    assert_eq!(
        count(
            &app,
            "SELECT count(*) FROM auth.password_reset_tokens WHERE user_id = $1",
            user_id
        )
        .await,
        1
    );
}

#[tokio::test]
async fn inviting_again_someone_who_never_chose_a_password_mails_a_fresh_link() {
    let app = TestApp::spawn().await;
    let user_id = Uuid::now_v7();
    let email = app.email("grace");
    apply(&app, &invited(user_id, &email, None)).await;

    apply(&app, &invited(user_id, &email, None)).await;

    let mails = app.mails_to(&email).await;
    assert_eq!(mails.len(), 2);
    let (first, second) = (
        mails[0].token_after(INVITATION_LINK),
        mails[1].token_after(INVITATION_LINK),
    );
    assert_ne!(first, second);
    assert_eq!(
        reset_password(&app, &second, CHOSEN_PASSWORD).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        reset_password(&app, &first, "another passphrase here")
            .await
            .error_fields(),
        ["token"],
        "choosing the password voids the other link"
    );

    // Once the password is set, another invitation sends nothing.
    apply(&app, &invited(user_id, &email, None)).await;
    assert_eq!(app.mails_to(&email).await.len(), 2);
}

#[tokio::test]
async fn a_failed_invitation_mail_fails_the_event_and_keeps_nothing_so_a_redelivery_can_try_again()
{
    let app = TestApp::spawn().await;
    // The same worker, built the one way there is, but sending from an address SES has
    // not verified: SES refuses every mail.
    let mut env = app.function_env("auth-worker");
    env.insert(
        "MAIL_FROM".into(),
        format!("no-reply@unverified-{}.test", Uuid::new_v4().simple()),
    );
    let refused = lectern_auth::worker::build(&env, &app.stack.sdk).unwrap();
    let user_id = Uuid::now_v7();
    let email = app.email("grace");
    let event = invited(user_id, &email, None);

    let failed = refused.apply(&event).await;

    let err = format!(
        "{:#}",
        failed.expect_err("the message fails, so SQS redelivers it")
    );
    assert!(err.contains("sending mail through SES"), "{err}");
    assert_eq!(account(&app, user_id).await, None);
    assert_eq!(
        count(
            &app,
            "SELECT count(*) FROM auth.processed_events WHERE event_id = $1",
            event.id
        )
        .await,
        0,
        "the event is not claimed"
    );
    assert!(app.mails_to(&email).await.is_empty());

    apply(&app, &event).await;

    assert_eq!(
        account(&app, user_id).await.map(|a| a.2),
        Some("ACTIVE".into())
    );
    assert_eq!(app.mails_to(&email).await.len(), 1);
}

#[tokio::test]
async fn an_invited_user_who_never_chose_a_password_can_still_ask_for_a_reset_link() {
    let app = TestApp::spawn().await;
    let (user_id, email) = invite(&app, "grace").await;

    let reply = app
        .post("/api/v1/auth/forgot-password", json!({ "email": email }))
        .await;

    assert_eq!(reply.status, StatusCode::ACCEPTED);
    let mail = app.last_mail_to(&email).await;
    assert_eq!(mail.subject, "Reset your password");
    let token = mail.token_after(RESET_LINK);
    assert_eq!(
        reset_password(&app, &token, CHOSEN_PASSWORD).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        account(&app, user_id).await,
        Some((email.clone(), true, "ACTIVE".into(), true))
    );
    assert_eq!(
        app.login(&email, CHOSEN_PASSWORD).await.status,
        StatusCode::OK
    );
}

// ------------------------------------------------------------------------------ status

#[tokio::test]
async fn deactivating_a_user_ends_every_session_and_refuses_sign_in_like_a_wrong_password() {
    let app = TestApp::spawn().await;
    let (user_id, first, second) = user_on_two_devices(&app).await;
    let wrong_password = app.login(&first.email, WRONG_PASSWORD).await;

    apply(&app, &status_changed(user_id, "INACTIVE")).await;

    assert_eq!(account(&app, user_id).await.unwrap().2, "INACTIVE");
    assert_eq!(
        revocations(&app, user_id).await,
        [
            Some("account_disabled".to_string()),
            Some("account_disabled".to_string())
        ]
    );
    for session in [&first, &second] {
        refresh(&app, &session.refresh_token)
            .await
            .assert_problem(401);
        app.get("/api/v1/auth/me", Some(&session.access_token))
            .await
            .assert_problem(401);
    }
    let login = app.login(&first.email, PASSWORD).await;
    login.assert_problem(401);
    assert_eq!(login.text, wrong_password.text);
}

#[tokio::test]
async fn suspending_a_user_ends_every_session_too() {
    let app = TestApp::spawn().await;
    let (user_id, first, _) = user_on_two_devices(&app).await;

    apply(&app, &status_changed(user_id, "SUSPENDED")).await;

    assert_eq!(account(&app, user_id).await.unwrap().2, "SUSPENDED");
    refresh(&app, &first.refresh_token)
        .await
        .assert_problem(401);
    assert!(
        revocations(&app, user_id)
            .await
            .iter()
            .all(|r| r.as_deref() == Some("account_disabled"))
    );
}

#[tokio::test]
async fn reactivating_a_user_lets_them_sign_in_again_but_not_revive_old_sessions() {
    let app = TestApp::spawn().await;
    let (user_id, first, _) = user_on_two_devices(&app).await;
    apply(&app, &status_changed(user_id, "INACTIVE")).await;

    apply(&app, &status_changed(user_id, "ACTIVE")).await;

    assert_eq!(account(&app, user_id).await.unwrap().2, "ACTIVE");
    assert_eq!(
        app.login(&first.email, PASSWORD).await.status,
        StatusCode::OK
    );
    refresh(&app, &first.refresh_token)
        .await
        .assert_problem(401);
}

#[tokio::test]
async fn an_older_status_change_never_overrides_a_newer_one() {
    let app = TestApp::spawn().await;
    let (user_id, first, _) = user_on_two_devices(&app).await;
    let newer = status_changed(user_id, "ACTIVE");
    let mut older = status_changed(user_id, "SUSPENDED");
    older.occurred_at = newer.occurred_at - chrono::Duration::seconds(5);

    apply(&app, &newer).await;
    apply(&app, &older).await;

    assert_eq!(account(&app, user_id).await.unwrap().2, "ACTIVE");
    assert_eq!(
        revocations(&app, user_id).await,
        [None, None],
        "the late suspension ended no session"
    );
    assert_eq!(
        refresh(&app, &first.refresh_token).await.status,
        StatusCode::OK
    );

    // And the other way round: a late reactivation does not undo a newer suspension.
    let suspended = status_changed(user_id, "SUSPENDED");
    let mut late = status_changed(user_id, "ACTIVE");
    late.occurred_at = suspended.occurred_at - chrono::Duration::seconds(1);
    apply(&app, &suspended).await;
    apply(&app, &late).await;

    assert_eq!(account(&app, user_id).await.unwrap().2, "SUSPENDED");
    app.login(&first.email, PASSWORD).await.assert_problem(401);
}

#[tokio::test]
async fn a_status_change_older_than_the_invitation_is_ignored() {
    let app = TestApp::spawn().await;
    let user_id = Uuid::now_v7();
    let email = app.email("grace");
    let mut stale = status_changed(user_id, "SUSPENDED");
    let invitation = invited(user_id, &email, None);
    stale.occurred_at = invitation.occurred_at - chrono::Duration::seconds(1);

    apply(&app, &invitation).await;
    apply(&app, &stale).await;

    assert_eq!(account(&app, user_id).await.unwrap().2, "ACTIVE");
}

#[tokio::test]
async fn a_profile_update_without_a_status_changes_nothing_in_auth() {
    let app = TestApp::spawn().await;
    let (user_id, first, _) = user_on_two_devices(&app).await;

    apply(
        &app,
        &users_event(
            "user.updated",
            json!({ "user_id": user_id, "first_name": "Augusta", "bio": "Poet of science" }),
        ),
    )
    .await;

    assert_eq!(account(&app, user_id).await.unwrap().2, "ACTIVE");
    assert_eq!(revocations(&app, user_id).await, [None, None]);
    assert_eq!(
        refresh(&app, &first.refresh_token).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn an_unknown_status_fails_the_event_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let (user_id, _, _) = user_on_two_devices(&app).await;

    let failed = app
        .stack
        .auth_worker
        .apply(&status_changed(user_id, "BANISHED"))
        .await;

    assert!(
        failed.is_err(),
        "a malformed event goes to the DLQ, not to SQL"
    );
    assert_eq!(account(&app, user_id).await.unwrap().2, "ACTIVE");
    assert_eq!(revocations(&app, user_id).await, [None, None]);
}

// ------------------------------------------------------------------------------ erasure

#[tokio::test]
async fn deleting_a_user_erases_the_identity_its_sessions_tokens_access_and_events() {
    let app = TestApp::spawn().await;
    let (user_id, first, _) = user_on_two_devices(&app).await;
    app.post(
        "/api/v1/auth/forgot-password",
        json!({ "email": first.email }),
    )
    .await;
    app.login(&first.email, WRONG_PASSWORD).await;
    apply(
        &app,
        &users_event(
            "user.access_changed",
            json!({ "user_id": user_id, "access": { "grants": { "articles": "v" } } }),
        ),
    )
    .await;
    let bystander = app.signed_in_user("bystander").await;
    let bystander_id = app.user_id(&bystander.email).await;

    apply(
        &app,
        &users_event("user.deleted", json!({ "user_id": user_id })),
    )
    .await;

    assert_eq!(account(&app, user_id).await, None);
    for (table, column) in [
        ("auth.user_sessions", "user_id"),
        ("auth.password_reset_tokens", "user_id"),
        ("auth.email_verification_tokens", "user_id"),
        ("auth.user_access", "user_id"),
        ("auth.outbox", "actor_id"),
    ] {
        let sql = format!("SELECT count(*) FROM {table} WHERE {column} = $1");
        assert_eq!(count(&app, &sql, user_id).await, 0, "{table}");
    }
    let mentions: i64 = app
        .db()
        .await
        .query_one(
            "SELECT count(*) FROM auth.outbox WHERE data->>'user_id' = $1 OR data->>'email' = $2",
            &[&user_id.to_string(), &first.email],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        mentions, 0,
        "no event in the outbox names the user any more"
    );
    refresh(&app, &first.refresh_token)
        .await
        .assert_problem(401);
    app.get("/api/v1/auth/me", Some(&first.access_token))
        .await
        .assert_problem(401);
    app.login(&first.email, PASSWORD).await.assert_problem(401);
    assert_eq!(
        refresh(&app, &bystander.refresh_token).await.status,
        StatusCode::OK,
        "nobody else is touched"
    );
    assert!(account(&app, bystander_id).await.is_some());
}

#[tokio::test]
async fn events_arriving_after_a_deletion_do_not_bring_the_user_back() {
    let app = TestApp::spawn().await;
    let (user_id, email) = invite(&app, "grace").await;
    let late_invitation = invited(user_id, &email, None);
    apply(
        &app,
        &users_event("user.deleted", json!({ "user_id": user_id })),
    )
    .await;

    apply(&app, &late_invitation).await;
    apply(&app, &status_changed(user_id, "ACTIVE")).await;
    apply(
        &app,
        &users_event(
            "user.access_changed",
            json!({ "user_id": user_id, "access": { "grants": { "articles": "v" } } }),
        ),
    )
    .await;

    assert_eq!(account(&app, user_id).await, None);
    assert_eq!(
        count(
            &app,
            "SELECT count(*) FROM auth.user_access WHERE user_id = $1",
            user_id
        )
        .await,
        0
    );
    assert_eq!(
        app.mails_to(&email).await.len(),
        1,
        "only the first invitation"
    );
    assert_eq!(
        app.post("/api/v1/auth/signup", json!({ "email": email, "password": PASSWORD, "first_name": "Grace", "last_name": "Hopper" }))
            .await
            .status,
        StatusCode::ACCEPTED,
        "the address itself is free again for a new account"
    );
    assert_ne!(app.user_id(&email).await, user_id);
}

// ------------------------------------------------------------------------------ routing

#[tokio::test]
async fn the_rule_routes_the_users_services_account_events_to_the_auth_queue() {
    let app = TestApp::spawn().await;
    let (signed_up, session, _) = user_on_two_devices(&app).await;
    let invited_id = Uuid::now_v7();
    let invited_email = app.email("grace");
    let events = [
        invited(invited_id, &invited_email, None),
        status_changed(signed_up, "SUSPENDED"),
    ];
    let publisher = app.stack.auth.outbox.publisher();
    assert_eq!(publisher.publish(&events).await.len(), 2);

    let delivered = app.drain_queue("AuthQueue").await;

    assert_eq!(delivered, 2, "the rule routes both to the auth queue");
    assert!(account(&app, invited_id).await.is_some());
    assert_eq!(app.mails_to(&invited_email).await.len(), 1);
    refresh(&app, &session.refresh_token)
        .await
        .assert_problem(401);

    let deleted = users_event("user.deleted", json!({ "user_id": invited_id }));
    assert_eq!(
        publisher
            .publish(std::slice::from_ref(&deleted))
            .await
            .len(),
        1
    );
    assert_eq!(app.drain_queue("AuthQueue").await, 1);
    assert_eq!(account(&app, invited_id).await, None);
}
