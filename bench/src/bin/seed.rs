//! `seed`: fills a benchmark database.
//!
//! ```text
//! seed --create-database NAME     drop and create NAME (via DATABASE_ADMIN_URL), then exit
//! seed [--users N] [--accounts M] add directory users until N exist (default 10 000) and
//!                                 M sign-in accounts (default 64), with roles and groups
//! seed --articles N [--users N]   add articles until N exist (bench/src/content.rs); the
//!                                 users step runs too only when --users is given
//! ```
//!
//! The directory users have profiles, the Viewer role (every 20th also Editor, every 200th
//! Moderator) and a membership in one of 64 squads, nested in teams and departments that
//! hold roles of their own, so effective permissions walk a real group tree. The accounts
//! (`bench-0001@bench.lectern` ...) can sign in and carry their access summary. Seeding is
//! incremental: run it again with a larger N to grow the same database.
//!
//! Articles (categories, tags, blocks, versions) are written by `lectern_bench::content`,
//! in bulk SQL with a progress bar, incrementally like the users.

use std::{
    io::Write,
    time::{Duration, Instant},
};

use anyhow::Context;
use lectern_bench::{ACCOUNT_DOMAIN, ACCOUNT_PASSWORD, account_email, function_env};
use lectern_shared::db::{self, DbConfig, Pool};
use uuid::Uuid;

const BATCH: i64 = 5_000;

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if let Some(name) = arg(&args, "--create-database") {
        return create_database(&name).await;
    }
    let articles: Option<i64> = arg(&args, "--articles").map(|n| n.parse()).transpose()?;
    let users_step = articles.is_none() || arg(&args, "--users").is_some();
    let users: i64 = arg(&args, "--users")
        .map(|n| n.parse())
        .transpose()?
        .unwrap_or(10_000);
    let accounts: usize = arg(&args, "--accounts")
        .map(|n| n.parse())
        .transpose()?
        .unwrap_or(64);
    let url = match std::env::var("BENCH_DATABASE_URL") {
        Ok(url) => url,
        Err(_) => function_env("users")?
            .remove("DATABASE_URL")
            .context("users.env has no DATABASE_URL")?,
    };
    let pool = db::pool(&DbConfig::from_url(&url, 2)?)?;
    if let Some(articles) = articles {
        if users_step {
            seed_directory(&pool, users, accounts).await?;
        }
        return lectern_bench::content::seed_articles(&pool, articles).await;
    }
    seed_directory(&pool, users, accounts).await
}

/// Groups, directory users and sign-in accounts.
async fn seed_directory(pool: &Pool, users: i64, accounts: usize) -> anyhow::Result<()> {
    seed_groups(pool).await?;
    seed_users(pool, users).await?;
    seed_accounts(pool, accounts).await?;
    // VACUUM as well as ANALYZE, as the articles' seed does, so the measured reads find the
    // tables as autovacuum leaves them after an import: statistics current, the visibility map
    // set. (New users no longer wait in the trigram index's pending list, which a vacuum used
    // to merge: users migration 4 turned the list off.)
    let db = pool.get().await?;
    let started = Instant::now();
    db.batch_execute(
        "VACUUM ANALYZE users.users, users.user_roles, users.user_groups, users.groups,
                        auth.users, auth.user_sessions",
    )
    .await?;
    println!(
        "vacuum + analyze of the directory tables: {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

async fn create_database(name: &str) -> anyhow::Result<()> {
    anyhow::ensure!(
        name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
        "a database name of letters, digits and _"
    );
    let admin = std::env::var("DATABASE_ADMIN_URL").context("DATABASE_ADMIN_URL is not set")?;
    let (client, connection) = tokio_postgres::connect(&admin, tokio_postgres::NoTls).await?;
    tokio::spawn(connection);
    // Two statements, two round trips: neither may run inside a transaction block.
    client
        .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .await
        .with_context(|| format!("dropping the database {name}"))?;
    client
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await
        .with_context(|| format!("creating the database {name}"))?;
    println!("created database {name}");
    Ok(())
}

/// Eight departments, each with four teams, each with two squads; departments and the first
/// team of each hold roles, so a squad member inherits through two levels.
async fn seed_groups(pool: &Pool) -> anyhow::Result<()> {
    let db = pool.get().await?;
    db.batch_execute(
        "INSERT INTO users.groups (id, name, description)
         SELECT gen_random_uuid(), 'Bench Dept ' || d, 'benchmark department'
         FROM generate_series(1, 8) d
         ON CONFLICT DO NOTHING;
         INSERT INTO users.groups (id, name, parent_id)
         SELECT gen_random_uuid(), 'Bench Team ' || d || '.' || t, p.id
         FROM generate_series(1, 8) d CROSS JOIN generate_series(1, 4) t
         JOIN users.groups p ON p.name = 'Bench Dept ' || d AND p.parent_id IS NULL
         ON CONFLICT DO NOTHING;
         INSERT INTO users.groups (id, name, parent_id)
         SELECT gen_random_uuid(), 'Bench Squad ' || d || '.' || t || '.' || s, p.id
         FROM generate_series(1, 8) d CROSS JOIN generate_series(1, 4) t CROSS JOIN generate_series(1, 2) s
         JOIN users.groups p ON p.name = 'Bench Team ' || d || '.' || t
         ON CONFLICT DO NOTHING;
         INSERT INTO users.group_roles (id, group_id, role_id)
         SELECT gen_random_uuid(), g.id, r.id FROM users.groups g, users.roles r
         WHERE (g.name ~ '^Bench Dept [2468]$' AND r.name = 'Editor')
            OR (g.name ~ '^Bench Dept [1357]$' AND r.name = 'Moderator')
            OR (g.name ~ '^Bench Team [0-9]\\.1$' AND r.name = 'Viewer')
         ON CONFLICT DO NOTHING;",
    )
    .await
    .context("seeding groups")?;
    Ok(())
}

/// Directory users `seed-<i>@bench.lectern` for i in 1..=target, in batches, with roles and a
/// squad each.
async fn seed_users(pool: &Pool, target: i64) -> anyhow::Result<()> {
    let db = pool.get().await?;
    let existing: i64 = db
        .query_one(
            "SELECT count(*) FROM users.users WHERE email LIKE 'seed-%@bench.lectern'",
            &[],
        )
        .await?
        .get(0);
    if existing >= target {
        println!("{existing} directory users already seeded");
        return Ok(());
    }
    let insert = db
        .prepare(
            "WITH names AS (
                 SELECT ARRAY['Ada','Alan','Barbara','Claude','Donald','Edsger','Frances','Grace','Hedy',
                              'Ivan','John','Ken','Leslie','Margaret','Niklaus','Ole','Peter','Radia',
                              'Shafi','Tim','Ursula','Vint','Whitfield','Xavier','Yukihiro','Zhores'] AS firsts,
                        ARRAY['Lovelace','Turing','Liskov','Shannon','Knuth','Dijkstra','Allen','Hopper',
                              'Lamarr','Sutherland','McCarthy','Thompson','Lamport','Hamilton','Wirth','Dahl',
                              'Naur','Perlman','Goldwasser','Berners-Lee','Franklin','Cerf','Diffie','Leroy',
                              'Matsumoto','Alferov','Backus','Cocke','Hoare','Kay','Milner','Ritchie',
                              'Stroustrup','Tarjan','Valiant','Yao','Hellman','Rivest','Shamir','Adleman'] AS lasts,
                        ARRAY['Engineering','Editorial','Marketing','Sales','Support','Research','Legal',
                              'Finance'] AS depts,
                        (SELECT array_agg(id ORDER BY name) FROM users.groups WHERE name LIKE 'Bench Squad %') AS squads
             ), new AS (
                 INSERT INTO users.users (id, first_name, last_name, email, department, job_title, status, created_at, updated_at)
                 SELECT gen_random_uuid(),
                        firsts[(1 + (i * 7919) % array_length(firsts, 1))::int],
                        lasts[(1 + (i * 104729) % array_length(lasts, 1))::int],
                        'seed-' || i || '@bench.lectern',
                        depts[(1 + i % array_length(depts, 1))::int],
                        'Member of staff',
                        CASE WHEN i % 50 = 0 THEN 'INACTIVE' ELSE 'ACTIVE' END,
                        now() - make_interval(secs => i::double precision),
                        now()
                 FROM names, generate_series($1::bigint, $2::bigint) AS i
                 RETURNING id
             ), viewer AS (
                 INSERT INTO users.user_roles (id, user_id, role_id)
                 SELECT gen_random_uuid(), new.id, r.id FROM new, users.roles r WHERE r.name = 'Viewer'
             ), extra AS (
                 INSERT INTO users.user_roles (id, user_id, role_id)
                 SELECT gen_random_uuid(), new.id, r.id FROM new, users.roles r
                 WHERE (r.name = 'Editor' AND abs(hashtext(new.id::text)) % 20 = 0)
                    OR (r.name = 'Moderator' AND abs(hashtext(new.id::text)) % 200 = 1)
             )
             INSERT INTO users.user_groups (id, user_id, group_id)
             SELECT gen_random_uuid(), new.id, squads[1 + abs(hashtext(new.id::text)) % array_length(squads, 1)]
             FROM new, names",
        )
        .await
        .context("preparing the user seed")?;
    let started = Instant::now();
    let mut from = existing + 1;
    while from <= target {
        let to = (from + BATCH - 1).min(target);
        db.execute(&insert, &[&from, &to])
            .await
            .context("seeding users")?;
        progress(to - existing, target - existing, started.elapsed());
        from = to + 1;
    }
    println!();
    Ok(())
}

fn progress(done: i64, total: i64, elapsed: Duration) {
    let width = 30;
    let filled = (done * width / total.max(1)) as usize;
    let rate = done as f64 / elapsed.as_secs_f64().max(1e-3);
    print!(
        "\rseeding users [{}{}] {done}/{total} ({rate:.0}/s)",
        "#".repeat(filled),
        " ".repeat(width as usize - filled)
    );
    let _ = std::io::stdout().flush();
}

/// Accounts that sign in: identity and password in `auth`, profile, Viewer role and a squad in
/// `users`, and the access summary the auth service signs into tokens.
async fn seed_accounts(pool: &Pool, count: usize) -> anyhow::Result<()> {
    let mut db = pool.get().await?;
    let hash = lectern_auth::passwords::hash(ACCOUNT_PASSWORD)?;
    let mut created = 0;
    for i in 1..=count {
        let email = account_email(i);
        let tx = db.transaction().await?;
        let known = tx
            .query_opt("SELECT id FROM auth.users WHERE email = $1", &[&email])
            .await?;
        if known.is_some() {
            continue;
        }
        let id = Uuid::now_v7();
        tx.execute(
            "INSERT INTO auth.users (id, email, password_hash, email_verified) VALUES ($1, $2, $3, true)",
            &[&id, &email, &hash],
        )
        .await?;
        let squad = format!("Bench Squad {}.1.{}", 2 * (i % 4) + 2, 1 + i % 2);
        tx.execute(
            "INSERT INTO users.users (id, first_name, last_name, email, department) VALUES ($1, 'Bench', $2, $3, 'Engineering')",
            &[&id, &format!("Account {i:04}"), &email],
        )
        .await?;
        tx.execute(
            "INSERT INTO users.user_roles (id, user_id, role_id)
             SELECT gen_random_uuid(), $1, id FROM users.roles WHERE name = 'Viewer'",
            &[&id],
        )
        .await?;
        tx.execute(
            "INSERT INTO users.user_groups (id, user_id, group_id)
             SELECT gen_random_uuid(), $1, id FROM users.groups WHERE name = $2",
            &[&id, &squad],
        )
        .await?;
        let effective = lectern_users::access::effective(&tx, id).await?;
        tx.execute(
            "INSERT INTO auth.user_access (user_id, access, computed_at) VALUES ($1, $2, now())",
            &[&id, &serde_json::to_value(&effective.access)?],
        )
        .await?;
        tx.commit().await?;
        created += 1;
    }
    println!("{created} new sign-in accounts (bench-NNNN@{ACCOUNT_DOMAIN}), {count} in all");
    Ok(())
}
