//! The settings worker: keeps the service's view of which accounts exist.
//!
//! - `user.created` (a signup, from the auth service) and `user.invited` (an admin created
//!   the user, from the users service): the account is known, so admins can reach its
//!   settings at `/users/{id}/settings`.
//! - `user.deleted`: the account's settings are personal data and are erased with it; the
//!   account is remembered as erased so that a late or replayed `user.created` does not
//!   bring it back.

use anyhow::Context;
use deadpool_postgres::Transaction;
use lectern_shared::{
    events::Envelope,
    sqs::{Consumer, EventHandler},
};
use serde::Deserialize;
use uuid::Uuid;

use crate::{state::SCHEMA, user_settings::lock_user};

/// The settings worker as a queue consumer.
pub type Worker = Consumer<SettingsEvents>;

#[derive(Debug, Clone, Copy, Default)]
pub struct SettingsEvents;

/// What these events all carry; the rest of their data belongs to other services.
#[derive(Debug, Deserialize)]
struct UserRef {
    user_id: Uuid,
}

impl EventHandler for SettingsEvents {
    const SCHEMA: &'static str = SCHEMA;

    async fn handle(
        &self,
        tx: &Transaction<'_>,
        event: &Envelope,
    ) -> anyhow::Result<Vec<Envelope>> {
        match event.type_.as_str() {
            "user.created" | "user.invited" => remember(tx, event).await?,
            "user.deleted" => erase(tx, event).await?,
            other => tracing::warn!(kind = other, "the settings worker ignores this event type"),
        }
        Ok(Vec::new())
    }
}

#[tracing::instrument(skip_all, fields(event_id = %event.id, kind = %event.type_))]
async fn remember(tx: &Transaction<'_>, event: &Envelope) -> anyhow::Result<()> {
    let data: UserRef = event.data_as()?;
    let added = tx
        .execute(
            "INSERT INTO settings.known_users (user_id, created_at)
             SELECT $1, $2 WHERE NOT EXISTS (SELECT 1 FROM settings.erased_users WHERE user_id = $1)
             ON CONFLICT (user_id) DO NOTHING",
            &[&data.user_id, &event.occurred_at],
        )
        .await
        .context("remembering the account")?;
    if added == 0 {
        tracing::info!(user_id = %data.user_id, "the account is known already, or was deleted");
    }
    Ok(())
}

#[tracing::instrument(skip_all, fields(event_id = %event.id))]
async fn erase(tx: &Transaction<'_>, event: &Envelope) -> anyhow::Result<()> {
    let data: UserRef = event.data_as()?;
    lock_user(tx, data.user_id)
        .await
        .context("locking the user's settings")?;
    let settings = tx
        .execute(
            "DELETE FROM settings.user_settings WHERE user_id = $1",
            &[&data.user_id],
        )
        .await
        .context("erasing the user's settings")?;
    tx.execute(
        "DELETE FROM settings.known_users WHERE user_id = $1",
        &[&data.user_id],
    )
    .await
    .context("forgetting the account")?;
    tx.execute(
        "INSERT INTO settings.erased_users (user_id) VALUES ($1) ON CONFLICT (user_id) DO NOTHING",
        &[&data.user_id],
    )
    .await
    .context("remembering the erasure")?;
    tracing::info!(user_id = %data.user_id, settings, "erased the user's settings");
    Ok(())
}
