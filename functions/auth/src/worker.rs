//! The auth worker: consumes what other services say about users — today the access summary
//! (`user.access_changed`) that login and refresh sign into access tokens.

use anyhow::Context;
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use lectern_shared::{
    authz::Access,
    config::Env,
    db::{self, DbConfig, Pool},
    events::Envelope,
    sqs::{claim_event, envelope_of, run_batch},
};
use serde::Deserialize;
use uuid::Uuid;

use crate::state::SCHEMA;

#[derive(Clone)]
pub struct Worker {
    pool: Pool,
}

#[derive(Debug, Deserialize)]
struct AccessChanged {
    user_id: Uuid,
    access: Access,
}

impl Worker {
    pub fn from_env(env: &dyn Env) -> anyhow::Result<Self> {
        Ok(Self::new(db::pool(&DbConfig::from_env(env)?)?))
    }

    pub fn new(pool: Pool) -> Self {
        Self { pool }
    }

    /// Handles one SQS batch; answers the messages that failed.
    pub async fn handle_batch(&self, event: SqsEvent) -> SqsBatchResponse {
        run_batch(event, |message| self.handle_message(message)).await
    }

    async fn handle_message(&self, message: SqsMessage) -> anyhow::Result<()> {
        self.apply(&envelope_of(&message)?).await
    }

    /// Applies one event exactly once.
    pub async fn apply(&self, event: &Envelope) -> anyhow::Result<()> {
        let mut db = self
            .pool
            .get()
            .await
            .context("getting a database connection")?;
        let tx = db.transaction().await?;
        if !claim_event(&tx, SCHEMA, event).await? {
            return Ok(());
        }
        match event.type_.as_str() {
            "user.access_changed" => {
                let data: AccessChanged = event.data_as()?;
                let access = serde_json::to_value(&data.access)?;
                let stored = tx
                    .execute(
                        "INSERT INTO auth.user_access (user_id, access, computed_at)
                         SELECT $1, $2, $3 WHERE EXISTS (SELECT 1 FROM auth.users WHERE id = $1)
                         ON CONFLICT (user_id) DO UPDATE
                         SET access = EXCLUDED.access, computed_at = EXCLUDED.computed_at, updated_at = now()
                         WHERE auth.user_access.computed_at < EXCLUDED.computed_at",
                        &[&data.user_id, &access, &event.occurred_at],
                    )
                    .await
                    .context("storing the access summary")?;
                if stored == 0 {
                    tracing::info!(user_id = %data.user_id, "kept a newer access summary (or the user is gone)");
                }
            }
            other => tracing::warn!(kind = other, "the auth worker ignores this event type"),
        }
        tx.commit().await?;
        Ok(())
    }
}
