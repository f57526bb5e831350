//! The users worker: consumes the events routed to the users queue.
//!
//! Each event is applied in one transaction together with the record that it was processed,
//! so a redelivered event changes nothing.

use anyhow::Context;
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use lectern_shared::{
    config::Env,
    db::{self, DbConfig, Pool},
    events::Envelope,
    sqs::{claim_event, envelope_of, run_batch},
};
use serde::Deserialize;
use uuid::Uuid;

use crate::SCHEMA;

#[derive(Clone)]
pub struct Worker {
    pool: Pool,
}

#[derive(Debug, Deserialize)]
struct UserCreated {
    user_id: Uuid,
    email: String,
    first_name: String,
    last_name: String,
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
        let event = envelope_of(&message)?;
        self.apply(&event).await
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
            tracing::info!(event_id = %event.id, kind = %event.type_, "event already processed");
            return Ok(());
        }
        match event.type_.as_str() {
            "user.created" => {
                let data: UserCreated = event.data_as()?;
                tx.execute(
                    "INSERT INTO users.users (id, email, first_name, last_name) VALUES ($1, $2, $3, $4)
                     ON CONFLICT (id) DO NOTHING",
                    &[&data.user_id, &data.email.to_lowercase(), &data.first_name, &data.last_name],
                )
                .await
                .context("creating the profile")?;
            }
            other => tracing::warn!(kind = other, "the users worker ignores this event type"),
        }
        tx.commit().await?;
        Ok(())
    }
}
