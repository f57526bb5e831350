//! Events between services: the envelope, the transactional outbox and the EventBridge
//! publisher.
//!
//! A producer writes its event into its own schema's `outbox` in the same transaction as the
//! change, and publishes it after commit. A crash, a throttle or an outage between the two
//! loses nothing: the scheduler's sweep publishes whatever is still unpublished. Consumers
//! therefore see an event at least once and must be idempotent (see [`crate::sqs`]).
//!
//! Audit and analytics events that no service acts on at once (`auth.login_succeeded`,
//! `auth.login_failed`, `article.viewed`, `search.performed`) are only written to the outbox:
//! the sweep sends them, ten to a call, within a minute, so the request that records one never
//! waits on or pays for an EventBridge call of its own.

use std::time::Duration;

use anyhow::Context;
use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use crate::aws::{LazyClient, LazySdk};

pub use aws_sdk_eventbridge::Client as EventBridgeClient;

/// The envelope every event travels in; it is the EventBridge `detail`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    pub id: Uuid,
    #[serde(rename = "type")]
    pub type_: String,
    /// `lectern.<service>`
    pub source: String,
    #[serde(serialize_with = "crate::timestamp::serialize")]
    pub occurred_at: DateTime<Utc>,
    pub actor_id: Option<Uuid>,
    pub data: Value,
}

impl Envelope {
    pub fn new(source: &str, type_: &str, actor_id: Option<Uuid>, data: impl Serialize) -> Self {
        Self {
            id: Uuid::now_v7(),
            type_: type_.to_string(),
            source: source.to_string(),
            occurred_at: Utc::now(),
            actor_id,
            data: serde_json::to_value(data).expect("event data serialises"),
        }
    }

    /// Reads the envelope back out of an EventBridge event (as SQS delivers it).
    pub fn from_eventbridge_json(body: &str) -> anyhow::Result<Self> {
        #[derive(Deserialize)]
        struct EventBridgeEvent {
            detail: Envelope,
        }
        let event: EventBridgeEvent = serde_json::from_str(body)
            .context("the message is not an EventBridge event with a Lectern envelope")?;
        Ok(event.detail)
    }

    pub fn data_as<T: serde::de::DeserializeOwned>(&self) -> anyhow::Result<T> {
        serde_json::from_value(self.data.clone())
            .with_context(|| format!("event {} ({}) has unexpected data", self.id, self.type_))
    }
}

/// Publishes envelopes to the bus, ten entries a call (the PutEvents limit), retrying the
/// entries EventBridge reports as failed. The EventBridge client is made when the first
/// event is published (see [`EventPublisher::lazy`]).
#[derive(Debug, Clone)]
pub struct EventPublisher {
    client: LazyClient<EventBridgeClient>,
    bus_name: String,
}

const PUT_EVENTS_BATCH: usize = 10;
/// `PutEvents` calls one publish keeps in flight (a sweep sends up to 50 of them).
const PUT_EVENTS_IN_FLIGHT: usize = 4;
const PUBLISH_ATTEMPTS: u32 = 3;

impl EventPublisher {
    /// A publisher with a ready client.
    pub fn new(client: EventBridgeClient, bus_name: impl Into<String>) -> Self {
        Self {
            client: LazyClient::ready(client),
            bus_name: bus_name.into(),
        }
    }

    /// A publisher whose client is made from `sdk` when the first event is published: a
    /// request that publishes nothing never loads the AWS configuration.
    pub fn lazy(sdk: impl Into<LazySdk>, bus_name: impl Into<String>) -> Self {
        Self {
            client: LazyClient::new(sdk.into(), EventBridgeClient::new),
            bus_name: bus_name.into(),
        }
    }

    /// The bus events go to.
    pub fn bus_name(&self) -> &str {
        &self.bus_name
    }

    /// Publishes `events`, ten to a call and up to four calls at once; answers the ids that
    /// EventBridge accepted.
    pub async fn publish(&self, events: &[Envelope]) -> Vec<Uuid> {
        if events.is_empty() {
            return Vec::new();
        }
        let client = self.client.get().await;
        let chunks: Vec<&[Envelope]> = events.chunks(PUT_EVENTS_BATCH).collect();
        let mut accepted = Vec::with_capacity(events.len());
        for group in chunks.chunks(PUT_EVENTS_IN_FLIGHT) {
            let mut calls = Vec::with_capacity(group.len());
            for chunk in group {
                calls.push(self.publish_chunk(client, chunk));
            }
            for ids in futures::future::join_all(calls).await {
                accepted.extend(ids);
            }
        }
        accepted
    }

    /// One `PutEvents` call for `chunk`, retrying what EventBridge refuses.
    async fn publish_chunk(&self, client: &EventBridgeClient, chunk: &[Envelope]) -> Vec<Uuid> {
        let mut accepted = Vec::with_capacity(chunk.len());
        let mut pending: Vec<&Envelope> = chunk.iter().collect();
        for attempt in 1..=PUBLISH_ATTEMPTS {
            let entries: Vec<PutEventsRequestEntry> = pending
                .iter()
                .map(|event| {
                    PutEventsRequestEntry::builder()
                        .event_bus_name(&self.bus_name)
                        .source(&event.source)
                        .detail_type(&event.type_)
                        .time(aws_sdk_eventbridge::primitives::DateTime::from_millis(
                            event.occurred_at.timestamp_millis(),
                        ))
                        .detail(serde_json::to_string(event).expect("envelope serialises"))
                        .build()
                })
                .collect();
            match client.put_events().set_entries(Some(entries)).send().await {
                Ok(output) => {
                    let results = output.entries();
                    let mut failed = Vec::new();
                    for (i, event) in pending.iter().enumerate() {
                        match results.get(i) {
                            Some(r) if r.event_id().is_some() && r.error_code().is_none() => {
                                accepted.push(event.id)
                            }
                            other => {
                                tracing::warn!(
                                    event_id = %event.id,
                                    error = ?other.and_then(|r| r.error_code()),
                                    attempt,
                                    "EventBridge refused an event"
                                );
                                failed.push(*event);
                            }
                        }
                    }
                    pending = failed;
                }
                Err(err) => {
                    tracing::warn!(error = ?err, attempt, "PutEvents failed");
                }
            }
            if pending.is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50 * 2u64.pow(attempt))).await;
        }
        accepted
    }
}

/// One schema's outbox.
#[derive(Clone)]
pub struct Outbox {
    schema: String,
    publisher: EventPublisher,
    pool: deadpool_postgres::Pool,
    /// The statements every write and every publish runs, built once and prepared once per
    /// connection (`prepare_cached`), not re-planned per event.
    insert_sql: std::sync::Arc<str>,
    mark_sql: std::sync::Arc<str>,
}

impl std::fmt::Debug for Outbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outbox")
            .field("schema", &self.schema)
            .field("publisher", &self.publisher)
            .finish()
    }
}

impl Outbox {
    pub fn new(
        schema: impl Into<String>,
        publisher: EventPublisher,
        pool: deadpool_postgres::Pool,
    ) -> Self {
        let schema = schema.into();
        Self {
            insert_sql: format!(
                "INSERT INTO {schema}.outbox (id, type, source, actor_id, occurred_at, data) VALUES ($1, $2, $3, $4, $5, $6)"
            )
            .into(),
            mark_sql: format!("UPDATE {schema}.outbox SET published_at = now() WHERE id = ANY($1)")
                .into(),
            schema,
            publisher,
            pool,
        }
    }

    pub fn publisher(&self) -> &EventPublisher {
        &self.publisher
    }

    /// Records `event` in the caller's transaction.
    pub async fn record(
        &self,
        tx: &impl GenericClient,
        event: &Envelope,
    ) -> Result<(), tokio_postgres::Error> {
        tx.execute(
            &tx.prepare_cached(&self.insert_sql).await?,
            &[
                &event.id,
                &event.type_,
                &event.source,
                &event.actor_id,
                &event.occurred_at,
                &event.data,
            ],
        )
        .await?;
        Ok(())
    }

    /// Records `events` in `tx`, commits, then publishes them: the change and its events
    /// commit together or not at all.
    pub async fn commit(
        &self,
        tx: deadpool_postgres::Transaction<'_>,
        events: &[Envelope],
    ) -> Result<(), tokio_postgres::Error> {
        self.commit_for_sweep(tx, events).await?;
        self.publish_committed(events).await;
        Ok(())
    }

    /// Records `events` in `tx` and commits, leaving them to the scheduler's sweep, which
    /// sends them within a minute, ten to a call. For audit and analytics events that no
    /// service acts on at once: the request does not wait on EventBridge.
    pub async fn commit_for_sweep(
        &self,
        tx: deadpool_postgres::Transaction<'_>,
        events: &[Envelope],
    ) -> Result<(), tokio_postgres::Error> {
        for event in events {
            self.record(&tx, event).await?;
        }
        tx.commit().await
    }

    /// After commit: publishes `events` and marks what was accepted. Never fails the caller's
    /// request; what stays unpublished is swept later.
    pub async fn publish_committed(&self, events: &[Envelope]) {
        if events.is_empty() {
            return;
        }
        let accepted = self.publisher.publish(events).await;
        if accepted.is_empty() {
            return;
        }
        // The request that committed still holds its own connection. Waiting here for a second
        // one could wait on every other request doing the same (a full pool, all of them
        // publishing): take one only if it is free now, and otherwise mark in the background as
        // soon as one is.
        let now = deadpool_postgres::Timeouts {
            wait: Some(Duration::ZERO),
            ..self.pool.timeouts()
        };
        match self.pool.timeout_get(&now).await {
            Ok(db) => self.mark_or_warn(&db, &accepted).await,
            Err(_) => {
                let outbox = self.clone();
                tokio::spawn(async move {
                    match outbox.pool.get().await {
                        Ok(db) => outbox.mark_or_warn(&db, &accepted).await,
                        Err(err) => {
                            tracing::warn!(error = ?err, "could not mark events published; the sweep will resend them")
                        }
                    }
                });
            }
        }
    }

    async fn mark_or_warn(&self, db: &impl GenericClient, ids: &[Uuid]) {
        if let Err(err) = self.mark_published(db, ids).await {
            tracing::warn!(error = ?err, "could not mark events published; the sweep will resend them");
        }
    }

    async fn mark_published(
        &self,
        db: &impl GenericClient,
        ids: &[Uuid],
    ) -> Result<(), tokio_postgres::Error> {
        if ids.is_empty() {
            return Ok(());
        }
        db.execute(&db.prepare_cached(&self.mark_sql).await?, &[&ids])
            .await?;
        Ok(())
    }

    /// Publishes events older than `grace` that are still unpublished, at most `limit` of
    /// them. Rows are locked with SKIP LOCKED, so overlapping sweeps never send one twice.
    /// Answers how many it found and how many EventBridge accepted.
    pub async fn sweep(
        &self,
        client: &mut deadpool_postgres::Client,
        grace: Duration,
        limit: i64,
    ) -> anyhow::Result<(usize, usize)> {
        let tx = client.transaction().await?;
        let sql = format!(
            "SELECT id, type, source, actor_id, occurred_at, data FROM {}.outbox
             WHERE published_at IS NULL AND created_at < now() - make_interval(secs => $1)
             ORDER BY created_at LIMIT $2 FOR UPDATE SKIP LOCKED",
            self.schema
        );
        let rows = tx.query(&sql, &[&grace.as_secs_f64(), &limit]).await?;
        let events: Vec<Envelope> = rows
            .iter()
            .map(|r| Envelope {
                id: r.get(0),
                type_: r.get(1),
                source: r.get(2),
                actor_id: r.get(3),
                occurred_at: r.get(4),
                data: r.get(5),
            })
            .collect();
        if events.is_empty() {
            return Ok((0, 0));
        }
        let accepted = self.publisher.publish(&events).await;
        self.mark_published(&tx, &accepted).await?;
        let attempts = format!(
            "UPDATE {}.outbox SET attempts = attempts + 1 WHERE id = ANY($1) AND published_at IS NULL",
            self.schema
        );
        let ids: Vec<Uuid> = events.iter().map(|e| e.id).collect();
        tx.execute(&attempts, &[&ids]).await?;
        tx.commit().await?;
        Ok((events.len(), accepted.len()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::AwsSettings;

    #[tokio::test]
    async fn a_lazy_publisher_makes_no_client_until_it_has_something_to_publish() {
        let sdk = LazySdk::new(AwsSettings {
            endpoint_url: Some("http://127.0.0.1:9".into()),
        });
        let publisher = EventPublisher::lazy(sdk.clone(), "bus");
        assert!(publisher.publish(&[]).await.is_empty());
        assert!(!publisher.client.is_made());
        assert!(!sdk.is_loaded());
    }
}
