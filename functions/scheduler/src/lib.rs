//! The scheduler: what runs every minute, fired by an EventBridge schedule rule in AWS and by
//! the devstack locally — scheduled article publishing, then the outbox sweep.

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

#[derive(Clone)]
pub struct Scheduler {
    pool: Pool,
    publisher: EventPublisher,
    sweep_batch: i64,
}

/// What one tick did.
#[derive(Debug, Default, serde::Serialize)]
pub struct TickReport {
    pub articles_published: usize,
    pub events_published: usize,
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
        }
    }

    /// The same scheduler, sweeping `events` at a time (tests use a small batch to cover a
    /// sweep of several batches).
    pub fn with_sweep_batch(mut self, events: i64) -> Self {
        self.sweep_batch = events.max(1);
        self
    }

    /// Runs every job once. A failing job does not keep the others from running; the tick
    /// then fails with the first error, so the invocation is reported (and retried).
    pub async fn tick(&self) -> anyhow::Result<TickReport> {
        let articles = self.publish_due_articles().await;
        let events = self.sweep_outboxes(SWEEP_GRACE).await;
        Ok(TickReport {
            articles_published: articles.context("publishing scheduled articles")?,
            events_published: events.context("sweeping the outboxes")?,
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
        let schemas: Vec<String> = client
            .query(
                "SELECT table_schema FROM information_schema.tables
                 WHERE table_name = 'outbox' AND table_type = 'BASE TABLE' ORDER BY 1",
                &[],
            )
            .await?
            .iter()
            .map(|r| r.get(0))
            .collect();
        let mut published = 0;
        for schema in schemas {
            let outbox = Outbox::new(schema.as_str(), self.publisher.clone(), self.pool.clone());
            let mut swept = 0;
            loop {
                let (found, sent) = outbox.sweep(&mut client, grace, self.sweep_batch).await?;
                swept += sent;
                // A short batch emptied the outbox; a batch EventBridge refused in part waits
                // for the next tick rather than being retried at once.
                if found < self.sweep_batch as usize
                    || sent < found
                    || started.elapsed() >= SWEEP_BUDGET
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
}
