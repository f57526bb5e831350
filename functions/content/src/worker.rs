//! The content worker: keeps `content.groups`, the service's view of the users service's
//! groups, so that a category access rule can only name a group that exists and answers show
//! its name.
//!
//! - `group.created`, `group.updated`: the group and its name, unless what is stored came from
//!   a later event (SQS may deliver out of order; `occurred_at` decides).
//! - `group.deleted`: every deleted group (the group and, when its subtree went too, its
//!   subgroups) is forgotten, but the category rules naming them stay. A rule naming a
//!   deleted group matches nobody, since no token carries that group any more: the category
//!   stays restricted instead of silently opening up to everyone, until someone with
//!   categories.manage changes its rules (`GET /categories/{id}/access` shows such rules with
//!   `group_deleted: true`).
//!
//! A `group.updated` redelivered after the `group.deleted` of the same group brings the name
//! back; that is harmless, as a rule naming the group still matches nobody.

use anyhow::Context;
use deadpool_postgres::Transaction;
use lectern_shared::{
    events::Envelope,
    sqs::{Consumer, EventHandler},
};
use serde::Deserialize;
use uuid::Uuid;

use crate::state::SCHEMA;

/// The content worker as a queue consumer.
pub type Worker = Consumer<ContentEvents>;

/// What the content worker does with each event of its queue.
#[derive(Debug, Clone, Copy, Default)]
pub struct ContentEvents;

/// What `group.created` and `group.updated` carry that this service keeps.
#[derive(Debug, Deserialize)]
struct GroupNamed {
    group_id: Uuid,
    name: String,
}

/// What `group.deleted` carries that this service needs.
#[derive(Debug, Deserialize)]
struct GroupsDeleted {
    deleted_group_ids: Vec<Uuid>,
}

impl EventHandler for ContentEvents {
    const SCHEMA: &'static str = SCHEMA;

    async fn handle(
        &self,
        tx: &Transaction<'_>,
        event: &Envelope,
    ) -> anyhow::Result<Vec<Envelope>> {
        match event.type_.as_str() {
            "group.created" | "group.updated" => remember_group(tx, event).await?,
            "group.deleted" => forget_groups(tx, event).await?,
            other => tracing::warn!(kind = other, "the content worker ignores this event type"),
        }
        Ok(Vec::new())
    }
}

#[tracing::instrument(skip_all, fields(event_id = %event.id, kind = %event.type_))]
async fn remember_group(tx: &Transaction<'_>, event: &Envelope) -> anyhow::Result<()> {
    let data: GroupNamed = event.data_as()?;
    let changed = tx
        .execute(
            "INSERT INTO content.groups (id, name, updated_at) VALUES ($1, $2, $3)
             ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, updated_at = EXCLUDED.updated_at
             WHERE content.groups.updated_at < EXCLUDED.updated_at",
            &[&data.group_id, &data.name, &event.occurred_at],
        )
        .await
        .context("storing the group")?;
    if changed == 0 {
        tracing::info!(group_id = %data.group_id, "a later event about the group is stored already");
    }
    Ok(())
}

#[tracing::instrument(skip_all, fields(event_id = %event.id))]
async fn forget_groups(tx: &Transaction<'_>, event: &Envelope) -> anyhow::Result<()> {
    let data: GroupsDeleted = event.data_as()?;
    let forgotten = tx
        .execute(
            "DELETE FROM content.groups WHERE id = ANY ($1)",
            &[&data.deleted_group_ids],
        )
        .await
        .context("forgetting the deleted groups")?;
    tracing::info!(
        groups = data.deleted_group_ids.len(),
        forgotten,
        "forgot deleted groups; their category rules stay and match nobody"
    );
    Ok(())
}
