//! The scheduler: what runs every minute, fired by an EventBridge schedule rule in AWS and by
//! the devstack locally — scheduled article publishing, the outbox sweep, then the prune of
//! what the outboxes and the consumers' records no longer need.

use std::time::Duration;

use anyhow::Context;
use lectern_shared::{
    aws::{self, AwsSettings},
    config::{self, Env},
    db::{self, DbConfig, Pool},
    events::{EventPublisher, Outbox},
};

/// Unpublished events younger than this are left to the request that wrote them.
pub const SWEEP_GRACE: Duration = Duration::from_secs(5);
/// Events locked, sent and marked together (ten to a `PutEvents` call).
const SWEEP_BATCH: i64 = 500;
/// A tick stops starting new batches after this long, well inside the function's 55 s
/// timeout; what is left goes with the next tick.
const SWEEP_BUDGET: Duration = Duration::from_secs(30);
/// Published events stay this long in their outbox, to show what was sent and to replay it by
/// hand; then the prune deletes them. Unpublished events are never pruned.
pub const OUTBOX_RETENTION: Duration = Duration::from_secs(7 * 86_400);
/// Ids of processed events stay longer than a message can come back: four days in its queue,
/// then up to fourteen in the dead-letter queue before someone redrives it.
pub const PROCESSED_RETENTION: Duration = Duration::from_secs(30 * 86_400);
/// Rows deleted per statement, so no prune holds its locks for long.
const PRUNE_BATCH: i64 = 5_000;
/// The prune stops starting new batches after this long (after the sweep's 30 s, inside the
/// function's 55 s timeout); what is left goes with the next tick.
const PRUNE_BUDGET: Duration = Duration::from_secs(10);

#[derive(Clone)]
pub struct Scheduler {
    pool: Pool,
    publisher: EventPublisher,
    sweep_batch: i64,
    sweep_budget: Duration,
    prune_batch: i64,
}

/// What one tick did.
#[derive(Debug, Default, serde::Serialize)]
pub struct TickReport {
    pub articles_published: usize,
    pub events_published: usize,
    pub events_pruned: usize,
    pub processed_ids_pruned: usize,
}

/// What one prune deleted, over every schema.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Pruned {
    /// Published outbox events older than [`OUTBOX_RETENTION`].
    pub events: usize,
    /// `processed_events` ids older than [`PROCESSED_RETENTION`].
    pub processed_ids: usize,
}

impl Scheduler {
    /// `DATABASE_*`, `EVENT_BUS_NAME` and `AWS_ENDPOINT_URL`. Nothing connects and nothing
    /// AWS is built until a tick needs it: the AWS configuration loads on the first publish.
    pub async fn from_env(env: &dyn Env) -> anyhow::Result<Self> {
        let sdk = aws::LazySdk::new(AwsSettings::from_env(env));
        let pool = db::pool(&DbConfig::from_env(env)?)?;
        let bus = config::required(env, "EVENT_BUS_NAME")?;
        Ok(Self::new(pool, EventPublisher::lazy(sdk, bus)))
    }

    pub fn new(pool: Pool, publisher: EventPublisher) -> Self {
        Self {
            pool,
            publisher,
            sweep_batch: SWEEP_BATCH,
            sweep_budget: SWEEP_BUDGET,
            prune_batch: PRUNE_BATCH,
        }
    }

    /// The same scheduler, sweeping `events` at a time (tests use a small batch to cover a
    /// sweep of several batches).
    pub fn with_sweep_batch(mut self, events: i64) -> Self {
        self.sweep_batch = events.max(1);
        self
    }

    /// The same scheduler, starting new sweep batches for up to `budget` in a tick (tests of
    /// the batching give it room: against a busy emulator one `PutEvents` can take seconds).
    pub fn with_sweep_budget(mut self, budget: Duration) -> Self {
        self.sweep_budget = budget;
        self
    }

    /// The same scheduler, pruning `rows` at a time (tests cover a prune of several batches).
    pub fn with_prune_batch(mut self, rows: i64) -> Self {
        self.prune_batch = rows.max(1);
        self
    }

    /// Runs every job once. A failing job does not keep the others from running; the tick
    /// then fails with the first error, so the invocation is reported (and retried).
    pub async fn tick(&self) -> anyhow::Result<TickReport> {
        let articles = self.publish_due_articles().await;
        let events = self.sweep_outboxes(SWEEP_GRACE).await;
        let pruned = self.prune().await;
        let articles_published = articles.context("publishing scheduled articles")?;
        let events_published = events.context("sweeping the outboxes")?;
        let pruned = pruned.context("pruning the outboxes and processed events")?;
        Ok(TickReport {
            articles_published,
            events_published,
            events_pruned: pruned.events,
            processed_ids_pruned: pruned.processed_ids,
        })
    }

    /// Publishes every approved article whose scheduled time has come (each exactly once,
    /// however many ticks overlap), emitting `article.published` through the content outbox.
    pub async fn publish_due_articles(&self) -> anyhow::Result<usize> {
        let outbox = Outbox::new(
            lectern_content::SCHEMA,
            self.publisher.clone(),
            self.pool.clone(),
        );
        lectern_content::publishing::publish_due(&self.pool, &outbox).await
    }

    /// Publishes what every schema's outbox still holds, a batch at a time, until it is empty
    /// or the tick's budget is spent. Analytics events (`article.viewed`, `search.performed`)
    /// are never sent by the request that records them, so at a busy minute this is most of
    /// what the outboxes hold. Schemas are found by their `outbox` table, so a new service is
    /// swept without a change here.
    pub async fn sweep_outboxes(&self, grace: Duration) -> anyhow::Result<usize> {
        let started = std::time::Instant::now();
        let mut client = self
            .pool
            .get()
            .await
            .context("connecting to the database")?;
        let mut published = 0;
        for schema in schemas(&client).await? {
            let outbox = Outbox::new(schema.as_str(), self.publisher.clone(), self.pool.clone());
            let mut swept = 0;
            loop {
                let (found, sent) = outbox.sweep(&mut client, grace, self.sweep_batch).await?;
                swept += sent;
                // A short batch emptied the outbox; a batch EventBridge refused in part waits
                // for the next tick rather than being retried at once.
                if found < self.sweep_batch as usize
                    || sent < found
                    || started.elapsed() >= self.sweep_budget
                {
                    break;
                }
            }
            if swept > 0 {
                tracing::info!(
                    schema = schema.as_str(),
                    published = swept,
                    "swept the outbox"
                );
            }
            published += swept;
        }
        Ok(published)
    }

    /// Deletes, in every schema, the published events older than [`OUTBOX_RETENTION`] and the
    /// processed-event ids older than [`PROCESSED_RETENTION`], oldest first and a batch at a
    /// time, until none is left or [`PRUNE_BUDGET`] is spent. Every view and search leaves an
    /// event in the content outbox, so without this the outboxes would only grow.
    pub async fn prune(&self) -> anyhow::Result<Pruned> {
        let started = std::time::Instant::now();
        let client = self
            .pool
            .get()
            .await
            .context("connecting to the database")?;
        let mut pruned = Pruned::default();
        for schema in schemas(&client).await? {
            // Both statements walk an index in age order (platform migration -1).
            let events = format!(
                "DELETE FROM {schema}.outbox WHERE id IN (
                     SELECT id FROM {schema}.outbox
                     WHERE published_at < now() - make_interval(secs => $1)
                     ORDER BY published_at LIMIT $2)"
            );
            let processed = format!(
                "DELETE FROM {schema}.processed_events WHERE event_id IN (
                     SELECT event_id FROM {schema}.processed_events
                     WHERE processed_at < now() - make_interval(secs => $1)
                     ORDER BY processed_at LIMIT $2)"
            );
            let events = self
                .prune_batches(&client, &events, OUTBOX_RETENTION, started)
                .await?;
            let processed_ids = self
                .prune_batches(&client, &processed, PROCESSED_RETENTION, started)
                .await?;
            if events + processed_ids > 0 {
                tracing::info!(schema = schema.as_str(), events, processed_ids, "pruned");
            }
            pruned.events += events;
            pruned.processed_ids += processed_ids;
        }
        Ok(pruned)
    }

    /// Runs one prune statement until a batch comes back short or the budget is spent.
    async fn prune_batches(
        &self,
        client: &deadpool_postgres::Client,
        sql: &str,
        retention: Duration,
        started: std::time::Instant,
    ) -> anyhow::Result<usize> {
        let mut deleted = 0;
        loop {
            let batch = client
                .execute(sql, &[&retention.as_secs_f64(), &self.prune_batch])
                .await? as usize;
            deleted += batch;
            if batch < self.prune_batch as usize || started.elapsed() >= PRUNE_BUDGET {
                return Ok(deleted);
            }
        }
    }
}

/// The schemas that hold the platform tables, found by their `outbox`: a new service is swept
/// and pruned without a change here.
async fn schemas(client: &deadpool_postgres::Client) -> anyhow::Result<Vec<String>> {
    Ok(client
        .query(
            "SELECT table_schema FROM information_schema.tables
             WHERE table_name = 'outbox' AND table_type = 'BASE TABLE' ORDER BY 1",
            &[],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect())
}
