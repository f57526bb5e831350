//! The SQS batch runner every worker uses, and idempotent consumption.
//!
//! Each message is handled on its own; the answer lists only the messages that failed
//! (`ReportBatchItemFailures`), so SQS redelivers just those and, after the queue's
//! `maxReceiveCount`, moves them to the dead-letter queue.

use std::future::Future;

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use deadpool_postgres::GenericClient;

use crate::events::Envelope;

/// Runs `handle` for every record; answers the failures.
pub async fn run_batch<F, Fut>(event: SqsEvent, handle: F) -> SqsBatchResponse
where
    F: Fn(SqsMessage) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    let mut response = SqsBatchResponse::default();
    for message in event.records {
        let id = message.message_id.clone().unwrap_or_default();
        if let Err(err) = handle(message).await {
            tracing::error!(message_id = %id, error = ?err, "message failed; SQS will redeliver it");
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = id;
            response.batch_item_failures.push(failure);
        }
    }
    response
}

/// Reads the Lectern envelope out of an SQS message fed by an EventBridge rule.
pub fn envelope_of(message: &SqsMessage) -> anyhow::Result<Envelope> {
    let body = message.body.as_deref().unwrap_or_default();
    Envelope::from_eventbridge_json(body)
}

/// Records that `schema` has processed `event` inside the caller's transaction. Answers
/// false when it already had, in which case the caller does nothing and commits nothing.
pub async fn claim_event(
    tx: &impl GenericClient,
    schema: &str,
    event: &Envelope,
) -> Result<bool, tokio_postgres::Error> {
    let sql = format!(
        "INSERT INTO {schema}.processed_events (event_id, type) VALUES ($1, $2) ON CONFLICT (event_id) DO NOTHING"
    );
    let inserted = tx.execute(&sql, &[&event.id, &event.type_]).await?;
    Ok(inserted == 1)
}

/// What a worker does with one event, inside the transaction that records the event as
/// processed: the effect and the record commit together, so a redelivered event changes
/// nothing.
pub trait EventHandler: Send + Sync {
    /// The schema whose `processed_events` holds this consumer's progress.
    const SCHEMA: &'static str;

    fn handle(
        &self,
        tx: &deadpool_postgres::Transaction<'_>,
        event: &Envelope,
    ) -> impl Future<Output = anyhow::Result<Vec<Envelope>>> + Send;
}

/// A queue consumer: SQS batches in, partial batch failures out, each event applied once.
#[derive(Clone)]
pub struct Consumer<H> {
    pool: deadpool_postgres::Pool,
    handler: H,
    outbox: Option<crate::events::Outbox>,
}

impl<H: EventHandler> Consumer<H> {
    pub fn new(pool: deadpool_postgres::Pool, handler: H) -> Self {
        Self {
            pool,
            handler,
            outbox: None,
        }
    }

    /// Lets the handler emit events: they are recorded in the same transaction as the
    /// effect and published after commit.
    pub fn with_outbox(mut self, outbox: crate::events::Outbox) -> Self {
        self.outbox = Some(outbox);
        self
    }

    /// The handler, for callers that share its clients.
    pub fn handler(&self) -> &H {
        &self.handler
    }

    /// A consumer whose pool comes from the environment (`DATABASE_*`).
    pub fn from_env(env: &dyn crate::config::Env, handler: H) -> anyhow::Result<Self> {
        let pool = crate::db::pool(&crate::db::DbConfig::from_env(env)?)?;
        Ok(Self::new(pool, handler))
    }

    /// A consumer whose handler emits events, to `EVENT_BUS_NAME` through `H::SCHEMA`'s outbox.
    /// `sdk` is a loaded `&SdkConfig` or a [`LazySdk`](crate::aws::LazySdk); either way the
    /// EventBridge client is made when the first event is published.
    pub fn from_env_emitting(
        env: &dyn crate::config::Env,
        sdk: impl Into<crate::aws::LazySdk>,
        handler: H,
    ) -> anyhow::Result<Self> {
        let consumer = Self::from_env(env, handler)?;
        let publisher = crate::events::EventPublisher::lazy(
            sdk,
            crate::config::required(env, "EVENT_BUS_NAME")?,
        );
        let outbox = crate::events::Outbox::new(H::SCHEMA, publisher, consumer.pool.clone());
        Ok(consumer.with_outbox(outbox))
    }

    /// Handles one SQS batch; answers the messages that failed.
    pub async fn handle_batch(&self, event: SqsEvent) -> SqsBatchResponse {
        run_batch(event, |message| async move {
            self.apply(&envelope_of(&message)?).await
        })
        .await
    }

    /// Applies one event exactly once.
    pub async fn apply(&self, event: &Envelope) -> anyhow::Result<()> {
        use anyhow::Context;
        let mut db = self
            .pool
            .get()
            .await
            .context("getting a database connection")?;
        let tx = db.transaction().await?;
        if !claim_event(&tx, H::SCHEMA, event).await? {
            tracing::info!(event_id = %event.id, kind = %event.type_, "event already processed");
            return Ok(());
        }
        let emitted = self.handler.handle(&tx, event).await?;
        match (&self.outbox, emitted.is_empty()) {
            (_, true) => tx.commit().await?,
            (Some(outbox), false) => outbox.commit(tx, &emitted).await?,
            (None, false) => anyhow::bail!(
                "the {} handler emitted events but the consumer has no outbox",
                H::SCHEMA
            ),
        }
        Ok(())
    }

    /// Serves the consumer as a Lambda function fed by an SQS event source mapping.
    pub async fn run_lambda(self) -> Result<(), lambda_runtime::Error> {
        let consumer = &self;
        lambda_runtime::run(lambda_runtime::service_fn(
            move |event: lambda_runtime::LambdaEvent<SqsEvent>| async move {
                Ok::<_, lambda_runtime::Error>(consumer.handle_batch(event.payload).await)
            },
        ))
        .await
    }
}
