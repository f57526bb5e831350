//! The auth worker: applies what other services say about users — today the access summary
//! (`user.access_changed`) that login and refresh sign into access tokens.

use anyhow::Context;
use deadpool_postgres::Transaction;
use lectern_shared::{
    authz::Access,
    events::Envelope,
    sqs::{Consumer, EventHandler},
};
use serde::Deserialize;
use uuid::Uuid;

use crate::state::SCHEMA;

/// The auth worker as a queue consumer.
pub type Worker = Consumer<AuthEvents>;

#[derive(Debug, Clone, Copy, Default)]
pub struct AuthEvents;

#[derive(Debug, Deserialize)]
struct AccessChanged {
    user_id: Uuid,
    access: Access,
}

impl EventHandler for AuthEvents {
    const SCHEMA: &'static str = SCHEMA;

    async fn handle(&self, tx: &Transaction<'_>, event: &Envelope) -> anyhow::Result<()> {
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
        Ok(())
    }
}
