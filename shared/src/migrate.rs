//! Per-schema migrations with their own history table (`<schema>.schema_migrations`).
//!
//! Every schema first gets the platform tables (`outbox`, `processed_events`) so that each
//! service can publish and consume events the same way. The platform's migrations count down
//! from 0 (0, -1, …) and a service's count up from 1, so the two never take the same number in
//! a schema's history; the platform's are applied first. A schema migrates in one
//! transaction under an advisory lock: two deploys racing apply each migration once, and a
//! failing migration leaves nothing half-applied. An applied migration whose text changed is
//! an error, not a silent skip.

use anyhow::{Context, bail};
use tokio_postgres::Client;

use crate::tokens::sha256_hex;

#[derive(Debug, Clone, Copy)]
pub struct Migration {
    pub version: i64,
    pub name: &'static str,
    pub sql: &'static str,
}

/// One service's schema and its migrations, in version order.
#[derive(Debug, Clone, Copy)]
pub struct SchemaMigrations {
    pub schema: &'static str,
    pub migrations: &'static [Migration],
}

/// The platform's migrations for `schema`: (version, name, SQL), in the order they apply.
fn platform_migrations(schema: &str) -> [(i64, &'static str, String); 2] {
    [
        (
            0,
            "platform",
            format!(
                r#"
CREATE TABLE {schema}.outbox (
    id           uuid PRIMARY KEY,
    type         text NOT NULL,
    source       text NOT NULL,
    actor_id     uuid,
    occurred_at  timestamptz NOT NULL,
    data         jsonb NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    attempts     integer NOT NULL DEFAULT 0,
    published_at timestamptz
);
CREATE INDEX outbox_unpublished_idx ON {schema}.outbox (created_at) WHERE published_at IS NULL;

CREATE TABLE {schema}.processed_events (
    event_id     uuid PRIMARY KEY,
    type         text NOT NULL,
    processed_at timestamptz NOT NULL DEFAULT now()
);
"#
            ),
        ),
        (
            -1,
            "platform retention",
            // What the scheduler's prune reads: the oldest published events and the oldest
            // processed ids, without a scan of either table.
            format!(
                r#"
CREATE INDEX outbox_published_idx ON {schema}.outbox (published_at) WHERE published_at IS NOT NULL;
CREATE INDEX processed_events_processed_at_idx ON {schema}.processed_events (processed_at);
"#
            ),
        ),
    ]
}

/// Applies what is missing of `set`; answers the versions it applied.
pub async fn run(client: &mut Client, set: &SchemaMigrations) -> anyhow::Result<Vec<i64>> {
    let schema = set.schema;
    anyhow::ensure!(
        schema.chars().all(|c| c.is_ascii_lowercase() || c == '_'),
        "schema names are lower-case identifiers"
    );
    let tx = client.transaction().await?;
    tx.execute(
        "SELECT pg_advisory_xact_lock(hashtext('lectern-migrate:' || $1::text))",
        &[&schema],
    )
    .await?;
    tx.batch_execute(&format!(
        "CREATE SCHEMA IF NOT EXISTS {schema};
         CREATE TABLE IF NOT EXISTS {schema}.schema_migrations (
             version    bigint PRIMARY KEY,
             name       text NOT NULL,
             checksum   text NOT NULL,
             applied_at timestamptz NOT NULL DEFAULT now()
         );"
    ))
    .await?;
    let applied = tx
        .query(
            &format!("SELECT version, checksum FROM {schema}.schema_migrations"),
            &[],
        )
        .await?;
    let applied: std::collections::HashMap<i64, String> =
        applied.iter().map(|r| (r.get(0), r.get(1))).collect();

    let platform = platform_migrations(schema);
    let all = platform
        .iter()
        .map(|(version, name, sql)| (*version, *name, sql.as_str()))
        .chain(set.migrations.iter().map(|m| (m.version, m.name, m.sql)));
    let mut done = Vec::new();
    for (version, name, sql) in all {
        let checksum = sha256_hex(sql.as_bytes());
        match applied.get(&version) {
            Some(existing) if *existing == checksum => continue,
            Some(_) => bail!("{schema} migration {version} ({name}) changed after it was applied"),
            None => {}
        }
        tx.batch_execute(sql)
            .await
            .with_context(|| format!("applying {schema} migration {version} ({name})"))?;
        tx.execute(
            &format!("INSERT INTO {schema}.schema_migrations (version, name, checksum) VALUES ($1, $2, $3)"),
            &[&version, &name, &checksum],
        )
        .await?;
        done.push(version);
    }
    tx.commit().await?;
    if !done.is_empty() {
        tracing::info!(schema, versions = ?done, "applied migrations");
    }
    Ok(done)
}

/// Migrates every set, in order, on one connection.
pub async fn run_all(client: &mut Client, sets: &[SchemaMigrations]) -> anyhow::Result<()> {
    for set in sets {
        run(client, set).await?;
    }
    Ok(())
}
