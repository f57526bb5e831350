//! The users worker: applies the events routed to the users queue.

use anyhow::Context;
use deadpool_postgres::Transaction;
use lectern_shared::{
    events::Envelope,
    sqs::{Consumer, EventHandler},
};
use serde::Deserialize;
use uuid::Uuid;

use crate::SCHEMA;

/// The users worker as a queue consumer.
pub type Worker = Consumer<UsersEvents>;

#[derive(Debug, Clone, Copy, Default)]
pub struct UsersEvents;

#[derive(Debug, Deserialize)]
struct UserCreated {
    user_id: Uuid,
    email: String,
    first_name: String,
    last_name: String,
}

impl EventHandler for UsersEvents {
    const SCHEMA: &'static str = SCHEMA;

    async fn handle(&self, tx: &Transaction<'_>, event: &Envelope) -> anyhow::Result<()> {
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
        Ok(())
    }
}
