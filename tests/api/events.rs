//! The event backbone: outbox → EventBridge → rule → SQS → worker, idempotently.

use std::time::Duration;

use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use aws_sdk_sqs::types::QueueAttributeName;
use axum::http::StatusCode;
use lectern_shared::events::Envelope;
use serde_json::json;
use uuid::Uuid;

use crate::helpers::TestApp;

const USERS_QUEUE: &str = "UsersQueue";

fn user_created(user_id: Uuid) -> Envelope {
    Envelope::new(
        "lectern.auth",
        "user.created",
        Some(user_id),
        json!({ "user_id": user_id, "email": "grace@example.com", "first_name": "Grace", "last_name": "Hopper" }),
    )
}

/// The EventBridge event SQS would carry for `envelope`.
fn eventbridge_body(envelope: &Envelope) -> String {
    json!({
        "version": "0", "id": Uuid::new_v4(), "detail-type": envelope.type_, "source": envelope.source,
        "account": "000000000000", "time": envelope.occurred_at, "region": "us-east-1", "resources": [],
        "detail": envelope,
    })
    .to_string()
}

fn sqs_record(id: &str, body: &str) -> SqsMessage {
    let mut record = SqsMessage::default();
    record.message_id = Some(id.to_string());
    record.body = Some(body.to_string());
    record
}

async fn profile_count(app: &TestApp, id: Uuid) -> i64 {
    app.db()
        .await
        .query_one("SELECT count(*) FROM users.users WHERE id = $1", &[&id])
        .await
        .unwrap()
        .get(0)
}

fn sqs(app: &TestApp) -> aws_sdk_sqs::Client {
    aws_sdk_sqs::Client::new(&app.stack.sdk)
}

async fn queue_depth(app: &TestApp, logical_id: &str) -> (i64, i64) {
    let url = &app.stack.provisioned.queues[logical_id].url;
    let attributes = sqs(app)
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::All)
        .send()
        .await
        .unwrap()
        .attributes
        .unwrap();
    let n = |name: QueueAttributeName| {
        attributes
            .get(&name)
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (
        n(QueueAttributeName::ApproximateNumberOfMessages),
        n(QueueAttributeName::ApproximateNumberOfMessagesNotVisible),
    )
}

#[tokio::test]
async fn signup_publishes_user_created_and_the_users_worker_creates_the_profile() {
    let app = TestApp::spawn().await;
    let email = app.email("grace");
    assert_eq!(app.signup(&email).await.status, StatusCode::ACCEPTED);
    let user_id = app.user_id(&email).await;

    let delivered = app.drain_queue(USERS_QUEUE).await;

    assert_eq!(
        delivered, 1,
        "exactly the user.created event reaches the users queue"
    );
    let row = app
        .db()
        .await
        .query_one(
            "SELECT first_name, last_name FROM users.users WHERE id = $1",
            &[&user_id],
        )
        .await
        .unwrap();
    assert_eq!(
        (row.get::<_, String>(0), row.get::<_, String>(1)),
        ("Ada".into(), "Lovelace".into())
    );
    let published: bool = app
        .db()
        .await
        .query_one(
            "SELECT published_at IS NOT NULL FROM auth.outbox WHERE type = 'user.created'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(published, "the outbox row is marked published after commit");
    assert_eq!(
        queue_depth(&app, USERS_QUEUE).await,
        (0, 0),
        "the handled message was deleted"
    );
}

#[tokio::test]
async fn delivering_the_same_event_twice_creates_one_profile() {
    let app = TestApp::spawn().await;
    let user_id = Uuid::now_v7();
    let event = user_created(user_id);
    let url = &app.stack.provisioned.queues[USERS_QUEUE].url;
    for _ in 0..2 {
        sqs(&app)
            .send_message()
            .queue_url(url)
            .message_body(eventbridge_body(&event))
            .send()
            .await
            .unwrap();
    }

    assert_eq!(app.drain_queue(USERS_QUEUE).await, 2);
    app.stack.users_worker.apply(&event).await.unwrap();

    assert_eq!(profile_count(&app, user_id).await, 1);
    let processed: i64 = app
        .db()
        .await
        .query_one(
            "SELECT count(*) FROM users.processed_events WHERE event_id = $1",
            &[&event.id],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(processed, 1);
}

#[tokio::test]
async fn a_batch_reports_only_the_messages_that_failed() {
    let app = TestApp::spawn().await;
    let good = user_created(Uuid::now_v7());
    let mut batch = SqsEvent::default();
    batch.records = vec![
        sqs_record("good", &eventbridge_body(&good)),
        sqs_record("bad", "{not an event"),
    ];

    let response = app.stack.users_worker.handle_batch(batch).await;

    let failed: Vec<_> = response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.as_str())
        .collect();
    assert_eq!(failed, ["bad"]);
    assert_eq!(
        profile_count(
            &app,
            good.data["user_id"].as_str().unwrap().parse().unwrap()
        )
        .await,
        1
    );
}

#[tokio::test]
async fn a_poison_message_stays_on_the_queue_and_is_redriven_to_the_dead_letter_queue() {
    let app = TestApp::spawn().await;
    let queue = &app.stack.provisioned.queues[USERS_QUEUE];
    // Let a failed message come back at once instead of after the template's timeout.
    sqs(&app)
        .set_queue_attributes()
        .queue_url(&queue.url)
        .attributes(QueueAttributeName::VisibilityTimeout, "0")
        .send()
        .await
        .unwrap();
    sqs(&app)
        .send_message()
        .queue_url(&queue.url)
        .message_body("{not an event")
        .send()
        .await
        .unwrap();

    // maxReceiveCount is 5: five failed deliveries, then SQS moves it aside.
    let mut deliveries = 0;
    for _ in 0..10 {
        deliveries += app
            .stack
            .poll_once(USERS_QUEUE, Duration::from_secs(0))
            .await
            .unwrap();
    }

    assert_eq!(
        deliveries, 5,
        "the worker saw the message once per receive, up to maxReceiveCount"
    );
    assert_eq!(queue_depth(&app, "UsersDeadLetterQueue").await.0, 1);
}

/// Records `events` in the auth outbox without publishing them.
async fn left_unpublished(app: &TestApp, events: &[Envelope]) {
    let db = app.db().await;
    for event in events {
        app.stack.auth.outbox.record(&db, event).await.unwrap();
    }
}

#[tokio::test]
async fn the_scheduler_sweep_publishes_events_a_request_left_unpublished() {
    let app = TestApp::spawn().await;
    let user_id = Uuid::now_v7();
    // As if the process died between commit and publish.
    left_unpublished(&app, &[user_created(user_id)]).await;

    let first = app
        .stack
        .scheduler
        .sweep_outboxes(Duration::ZERO)
        .await
        .unwrap();
    let second = app
        .stack
        .scheduler
        .sweep_outboxes(Duration::ZERO)
        .await
        .unwrap();

    assert_eq!((first, second), (1, 0), "published once, then nothing left");
    assert_eq!(app.drain_queue(USERS_QUEUE).await, 1);
    assert_eq!(profile_count(&app, user_id).await, 1);
}

#[tokio::test]
async fn one_tick_sweeps_batch_after_batch_until_the_outbox_is_empty() {
    let app = TestApp::spawn().await;
    let events: Vec<Envelope> = (0..23).map(|_| user_created(Uuid::now_v7())).collect();
    left_unpublished(&app, &events).await;
    // The tick's time budget is not what this covers: against an emulator busy with every
    // other test, five `PutEvents` calls have taken longer than the real 30 s.
    let scheduler = app
        .stack
        .scheduler
        .clone()
        .with_sweep_batch(5)
        .with_sweep_budget(Duration::from_secs(600));

    let first = scheduler.sweep_outboxes(Duration::ZERO).await.unwrap();
    let second = scheduler.sweep_outboxes(Duration::ZERO).await.unwrap();

    assert_eq!(
        (first, second),
        (23, 0),
        "five batches in one tick, then nothing left"
    );
    assert_eq!(app.drain_queue(USERS_QUEUE).await, 23);
}

#[tokio::test]
async fn overlapping_sweeps_publish_each_event_once() {
    let app = TestApp::spawn().await;
    let events: Vec<Envelope> = (0..25).map(|_| user_created(Uuid::now_v7())).collect();
    left_unpublished(&app, &events).await;

    let (a, b) = tokio::join!(
        app.stack.scheduler.sweep_outboxes(Duration::ZERO),
        app.stack.scheduler.sweep_outboxes(Duration::ZERO)
    );

    assert_eq!(a.unwrap() + b.unwrap(), 25);
    assert_eq!(
        app.drain_queue(USERS_QUEUE).await,
        25,
        "every event reached the queue exactly once"
    );
    let unpublished: i64 = app
        .db()
        .await
        .query_one(
            "SELECT count(*) FROM auth.outbox WHERE published_at IS NULL",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(unpublished, 0);
}

#[tokio::test]
async fn the_prune_deletes_old_published_events_and_old_processed_ids_and_nothing_else() {
    let app = TestApp::spawn().await;
    let db = app.db().await;
    // In the auth outbox: seven events published eight days ago, one published yesterday, and
    // one recorded eight days ago that never went out. In the users schema: four ids
    // processed 31 days ago and one 29 days ago.
    db.batch_execute(
        "INSERT INTO auth.outbox (id, type, source, occurred_at, data, created_at, published_at)
         SELECT gen_random_uuid(), 'test.' || kind, 'lectern.test', now(), '{}',
                now() - make_interval(days => age), now() - make_interval(days => published)
         FROM (VALUES ('old', 8, 8), ('old', 8, 8), ('old', 8, 8), ('old', 8, 8), ('old', 8, 8),
                      ('old', 8, 8), ('old', 8, 8), ('recent', 2, 1)) AS e(kind, age, published);
         INSERT INTO auth.outbox (id, type, source, occurred_at, data, created_at)
         VALUES (gen_random_uuid(), 'test.unsent', 'lectern.test', now(), '{}',
                 now() - interval '8 days');
         INSERT INTO users.processed_events (event_id, type, processed_at)
         SELECT gen_random_uuid(), 'test.processed', now() - make_interval(days => age)
         FROM (VALUES (31), (31), (31), (31), (29)) AS p(age);",
    )
    .await
    .unwrap();
    let scheduler = app.stack.scheduler.clone().with_prune_batch(3);

    let first = scheduler.prune().await.unwrap();
    let second = scheduler.prune().await.unwrap();

    assert_eq!(
        (first.events, first.processed_ids),
        (7, 4),
        "three batches of at most three, then two"
    );
    assert_eq!((second.events, second.processed_ids), (0, 0));
    let left: Vec<String> = db
        .query(
            "SELECT type FROM auth.outbox WHERE type LIKE 'test.%' ORDER BY type",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(
        left,
        ["test.recent", "test.unsent"],
        "a recent event stays, and an unsent one is never pruned"
    );
    let processed = app
        .count(
            "SELECT count(*) FROM users.processed_events WHERE type = 'test.processed'",
            &[],
        )
        .await;
    assert_eq!(processed, 1);
}

#[tokio::test]
async fn the_prune_reads_the_age_indexes_not_the_whole_table() {
    let app = TestApp::spawn().await;
    let db = app.db().await;
    db.batch_execute(
        "INSERT INTO content.outbox (id, type, source, occurred_at, data, created_at, published_at)
         SELECT gen_random_uuid(), 'article.viewed', 'lectern.content', now(), '{}', now(), now()
         FROM generate_series(1, 2000);
         ANALYZE content.outbox;
         SET enable_seqscan = off;",
    )
    .await
    .unwrap();
    // With sequential scans priced out, a plan without the index would still be a seq scan;
    // the index must exist and match the prune's predicate for the plan to use it.
    async fn plan(db: &deadpool_postgres::Client, query: &str) -> String {
        let rows = db.query(&format!("EXPLAIN {query}"), &[]).await.unwrap();
        rows.iter()
            .map(|r| r.get::<_, String>(0))
            .collect::<Vec<_>>()
            .join("\n")
    }
    let outbox = plan(
        &db,
        "SELECT id FROM content.outbox WHERE published_at < now() - make_interval(secs => 604800)
         ORDER BY published_at LIMIT 5000",
    )
    .await;
    assert!(outbox.contains("outbox_published_idx"), "{outbox}");
    let processed = plan(
        &db,
        "SELECT event_id FROM content.processed_events
         WHERE processed_at < now() - make_interval(secs => 2592000)
         ORDER BY processed_at LIMIT 5000",
    )
    .await;
    assert!(
        processed.contains("processed_events_processed_at_idx"),
        "{processed}"
    );
    db.batch_execute("RESET enable_seqscan").await.unwrap();
}

async fn publish_access_changed(
    app: &TestApp,
    user_id: Uuid,
    access: serde_json::Value,
) -> Envelope {
    let event = Envelope::new(
        "lectern.users",
        "user.access_changed",
        None,
        json!({ "user_id": user_id, "access": access }),
    );
    let accepted = app
        .stack
        .auth
        .outbox
        .publisher()
        .publish(std::slice::from_ref(&event))
        .await;
    assert_eq!(accepted, [event.id]);
    event
}

fn access_token_claims(token: &str) -> serde_json::Value {
    use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
    serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(token.split('.').nth(1).unwrap())
            .unwrap(),
    )
    .unwrap()
}

#[tokio::test]
async fn the_access_summary_from_the_users_service_is_in_the_next_access_token() {
    let app = TestApp::spawn().await;
    let session = app.signed_in_user("ada").await;
    let user_id = app.user_id(&session.email).await;
    assert!(
        access_token_claims(&session.access_token)
            .get("perms")
            .is_none(),
        "no permissions before any role"
    );
    let group = Uuid::now_v7();

    publish_access_changed(
        &app,
        user_id,
        json!({ "grants": { "articles": "vcedp", "comments": "vc" }, "roles": ["Editor"], "groups": [group] }),
    )
    .await;
    assert_eq!(
        app.drain_queue("AuthQueue").await,
        1,
        "the rule routes user.access_changed to the auth queue"
    );
    let refreshed = app
        .post(
            "/api/v1/auth/refresh",
            json!({ "refresh_token": session.refresh_token }),
        )
        .await;

    assert_eq!(refreshed.status, StatusCode::OK, "{}", refreshed.text);
    let claims = access_token_claims(refreshed.body["access_token"].as_str().unwrap());
    assert_eq!(
        claims["perms"],
        json!({ "articles": "vcedp", "comments": "vc" })
    );
    assert_eq!(claims["roles"], json!(["Editor"]));
    assert_eq!(claims["groups"], json!([group]));
    let login = app.login(&session.email, crate::helpers::PASSWORD).await;
    assert_eq!(
        access_token_claims(login.body["access_token"].as_str().unwrap())["perms"]["articles"],
        "vcedp"
    );

    // The verified claims give handlers their one way to authorize.
    let verified = app
        .stack
        .auth
        .verifier
        .verify(refreshed.body["access_token"].as_str().unwrap())
        .unwrap();
    let caller = lectern_shared::extract::AuthUser { claims: verified };
    use lectern_shared::authz::{Action, Module};
    assert!(caller.require(Module::Articles, Action::Publish).is_ok());
    assert_eq!(
        caller
            .require(Module::Users, Action::View)
            .unwrap_err()
            .status(),
        StatusCode::FORBIDDEN
    );
}

#[tokio::test]
async fn an_older_access_summary_never_overwrites_a_newer_one() {
    let app = TestApp::spawn().await;
    let session = app.signed_in_user("ada").await;
    let user_id = app.user_id(&session.email).await;
    let mut older = Envelope::new(
        "lectern.users",
        "user.access_changed",
        None,
        json!({ "user_id": user_id, "access": { "grants": { "users": "vcedpm" } } }),
    );
    let newer = Envelope::new(
        "lectern.users",
        "user.access_changed",
        None,
        json!({ "user_id": user_id, "access": { "grants": { "articles": "v" } } }),
    );
    older.occurred_at = newer.occurred_at - chrono::Duration::seconds(5);

    app.stack.auth_worker.apply(&newer).await.unwrap();
    app.stack.auth_worker.apply(&older).await.unwrap();
    app.stack.auth_worker.apply(&newer).await.unwrap();

    let stored: serde_json::Value = app
        .db()
        .await
        .query_one(
            "SELECT access FROM auth.user_access WHERE user_id = $1",
            &[&user_id],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(stored["grants"], json!({ "articles": "v" }));
}
