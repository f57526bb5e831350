//! The users worker: applies the events routed to the users queue.
//!
//! - `user.created` (a self-service signup in the auth service): the profile, with the
//!   default role Viewer, and the new user's access summary for the auth service.

use anyhow::Context;
use deadpool_postgres::Transaction;
use lectern_shared::{
    events::Envelope,
    sqs::{Consumer, EventHandler},
};
use serde::Deserialize;
use uuid::Uuid;

use crate::{SCHEMA, access::AccessChange};

/// The users worker as a queue consumer.
pub type Worker = Consumer<UsersEvents>;

/// The role every self-registered account starts with.
pub const DEFAULT_ROLE: &str = "Viewer";

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

    async fn handle(
        &self,
        tx: &Transaction<'_>,
        event: &Envelope,
    ) -> anyhow::Result<Vec<Envelope>> {
        match event.type_.as_str() {
            "user.created" => {
                let data: UserCreated = event.data_as()?;
                let created = tx
                    .execute(
                        "INSERT INTO users.users (id, email, first_name, last_name) VALUES ($1, $2, $3, $4)
                         ON CONFLICT DO NOTHING",
                        &[&data.user_id, &data.email.to_lowercase(), &data.first_name, &data.last_name],
                    )
                    .await
                    .context("creating the profile")?;
                if created == 0 {
                    // Invited (the profile came first) or already known: nothing to add.
                    return Ok(Vec::new());
                }
                let mut change = AccessChange::begin(tx, None).await?;
                tx.execute(
                    "INSERT INTO users.user_roles (id, user_id, role_id)
                     SELECT $1, $2, id FROM users.roles WHERE name = $3 AND is_system
                     ON CONFLICT DO NOTHING",
                    &[&Uuid::now_v7(), &data.user_id, &DEFAULT_ROLE],
                )
                .await
                .context("assigning the default role")?;
                change.affects([data.user_id]);
                Ok(change.finish(tx).await?)
            }
            other => {
                tracing::warn!(kind = other, "the users worker ignores this event type");
                Ok(Vec::new())
            }
        }
    }
}
