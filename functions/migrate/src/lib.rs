//! Every service's migrations, in dependency-free order (no foreign key crosses a schema).

use anyhow::Context;
use lectern_shared::{db::Pool, migrate::SchemaMigrations};

pub const ALL: &[SchemaMigrations] = &[
    lectern_auth::MIGRATIONS,
    lectern_users::MIGRATIONS,
    lectern_settings::MIGRATIONS,
    lectern_content::MIGRATIONS,
];

/// Applies whatever is missing; answers `schema -> versions applied`.
pub async fn run(pool: &Pool) -> anyhow::Result<Vec<(&'static str, Vec<i64>)>> {
    let mut client = pool.get().await.context("connecting to the database")?;
    let mut applied = Vec::new();
    for set in ALL {
        applied.push((
            set.schema,
            lectern_shared::migrate::run(&mut client, set).await?,
        ));
    }
    Ok(applied)
}
