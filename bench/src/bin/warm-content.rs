//! `warm-content`: the content service's read paths driven in-process, side by side with the
//! handler's own SQL.
//!
//! ```text
//! warm-content          round trips; throughput at concurrency 1, 10, 50 of get, list and
//!                       search; list/search at the current number of articles
//! warm-content --scale  only the list/search figures at the current number of articles
//! warm-content --print-sql  the three statements, for EXPLAIN
//! ```
//!
//! Like `warm` (which does this for auth and users), every router request is a real
//! `http::Request` sent with tower's `oneshot` to the router the Lambda binary serves, built
//! from `content.env`. The caller is anonymous, as the public site reads: no token, so no
//! signature check. Each baseline is a raw tokio-postgres loop on the same pool running the
//! handler's statement the way the handler runs it: the text comes from `lectern_content`
//! itself (`articles::get_sql`, `articles::list_sql`), so it cannot drift, and the raw loops'
//! answers are checked against the router's before anything is measured.
//! - `content.get`: `GET /api/v1/articles/{id}` of a published public article, one prepared
//!   statement (cached per connection).
//! - `content.list`: `GET /api/v1/articles?status=published&limit=20`, the first page in the
//!   default order (`-published_at`), one prepared statement.
//! - `content.search`: `GET /api/v1/articles?q=<word>&limit=20`, ranked; the handler plans it
//!   for its words (unnamed statement per request), and so does the raw loop. The handler also
//!   records `search.performed` in the outbox (one more round trip; the scheduler's sweep
//!   publishes it later); the raw loop runs only the search.
//!
//! Each comparison alternates five rounds of baseline and router windows (see
//! `lectern_bench::load::compare`) and divides the pooled figures. Figures
//! go to `$BENCH_RESULTS` with the keys `warm` uses (`warm_rps/content.get/c10`, ...,
//! `scale_p50_ms/content.list/<articles>`).

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use axum::{
    Router,
    body::{Body, Bytes},
    http::{Request, StatusCode},
};
use http_body_util::BodyExt;
use lectern_bench::{
    Samples,
    content::{COMMON_WORD, FIXED_WORD, RARE_WORD},
    function_env,
    load::{compare, report_comparison},
    proxy::RoundTrips,
    record, split_host,
};
use lectern_content::{
    access::Reader,
    articles::{ArticleFilter, get_sql, list_sql},
};
use lectern_shared::{db::Pool, extract::PageQuery};
use serde_json::{Value, json};
use tower::ServiceExt;
use uuid::Uuid;

const CONCURRENCY: [usize; 3] = [1, 10, 50];
const LIST_URI: &str = "/api/v1/articles?status=published&limit=20";

fn search_uri(word: &str) -> String {
    format!("/api/v1/articles?q={word}&limit=20")
}

/// An anonymous GET; answers the body, or fails unless 200.
async fn get(router: &Router, uri: &str) -> anyhow::Result<Bytes> {
    let request = Request::builder()
        .uri(uri)
        .header("user-agent", "lectern-bench/1.0")
        .header("accept", "application/json")
        .body(Body::empty())?;
    let response = router.clone().oneshot(request).await?;
    let status = response.status();
    let bytes = response.into_body().collect().await?.to_bytes();
    if status != StatusCode::OK {
        bail!(
            "{uri} answered {status}: {}",
            String::from_utf8_lossy(&bytes)
        );
    }
    Ok(bytes)
}

/// The statements, as the handlers build them for an anonymous reader.
struct Statements {
    get: String,
    list: String,
    search: String,
}

impl Statements {
    fn new() -> anyhow::Result<Self> {
        let reader = Reader::default();
        let page = || PageQuery {
            limit: Some("20".into()),
            cursor: None,
        };
        let list = list_sql(
            &reader,
            ArticleFilter {
                status: Some("published".into()),
                ..Default::default()
            },
            page(),
        )
        .map_err(|e| anyhow::anyhow!("list statement: {e:?}"))?;
        let search = list_sql(
            &reader,
            ArticleFilter {
                q: Some(COMMON_WORD.into()),
                ..Default::default()
            },
            page(),
        )
        .map_err(|e| anyhow::anyhow!("search statement: {e:?}"))?;
        Ok(Self {
            get: get_sql().to_string(),
            list,
            search,
        })
    }
}

// An anonymous reader's scope, as `Reader::params` binds it: no id, no groups, not an editor,
// no category bypass.
const ME: Option<Uuid> = None;
const NOT: bool = false;

async fn raw_get(pool: &Pool, sql: &str, id: Uuid) -> anyhow::Result<Uuid> {
    let groups: Vec<Uuid> = Vec::new();
    let db = pool.get().await?;
    let row = db
        .query_opt(
            &db.prepare_cached(sql).await?,
            &[&id, &ME, &groups, &NOT, &NOT],
        )
        .await?
        .context("the article is not visible")?;
    Ok(row.get(0))
}

async fn raw_list(pool: &Pool, sql: &str) -> anyhow::Result<Vec<Uuid>> {
    let groups: Vec<Uuid> = Vec::new();
    let limit = 21i64;
    let db = pool.get().await?;
    let rows = db
        .query(
            &db.prepare_cached(sql).await?,
            &[&ME, &groups, &NOT, &NOT, &"published", &limit],
        )
        .await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// Unprepared, as the handler runs it: planned for its words.
async fn raw_search(pool: &Pool, sql: &str, word: &str) -> anyhow::Result<Vec<Uuid>> {
    let groups: Vec<Uuid> = Vec::new();
    let limit = 21i64;
    let db = pool.get().await?;
    let rows = db
        .query(sql, &[&ME, &groups, &NOT, &NOT, &limit, &word])
        .await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

fn ids_of(page: &Bytes) -> anyhow::Result<Vec<Uuid>> {
    let page: Value = serde_json::from_slice(page)?;
    page["data"]
        .as_array()
        .context("a list answer")?
        .iter()
        .map(|a| Ok(a["id"].as_str().context("an id")?.parse()?))
        .collect()
}

async fn state_from(
    env: &std::collections::HashMap<String, String>,
) -> anyhow::Result<lectern_content::AppState> {
    let sdk = lectern_shared::aws::load(&lectern_shared::aws::AwsSettings::from_env(env)).await;
    lectern_content::AppState::from_env(env, &sdk)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let scale_only = std::env::args().any(|a| a == "--scale");
    if std::env::args().any(|a| a == "--print-sql") {
        // For EXPLAIN: the statements with their parameters ($1..$4 an anonymous scope).
        let sql = Statements::new()?;
        println!("-- content.get ($1 the id)\n{};\n", sql.get);
        println!("-- content.list ($5 'published', $6 21)\n{};\n", sql.list);
        println!("-- content.search ($5 21, $6 the words)\n{};", sql.search);
        return Ok(());
    }
    lectern_shared::telemetry::init();
    let env = function_env("content")?;
    let state = state_from(&env).await?;
    let router = lectern_content::router(state.clone());
    let pool = state.pool.clone();
    let sql = Statements::new()?;
    let articles: i64 = pool
        .get()
        .await?
        .query_one("SELECT count(*) FROM content.articles", &[])
        .await?
        .get(0);
    anyhow::ensure!(
        articles > 0,
        "no articles: run `seed --articles 1000` first (bench/run.sh does)"
    );
    if !scale_only {
        let ids = public_articles(&pool, *CONCURRENCY.iter().max().expect("levels")).await?;
        same_answers(&router, &pool, &sql, ids[0]).await?;
        round_trips(&env, &sql, ids[0]).await?;
        throughput(&router, &pool, &sql, &ids).await?;
    }
    scale(&router, &pool, articles).await
}

/// `count` published public articles, spread over the table.
async fn public_articles(pool: &Pool, count: usize) -> anyhow::Result<Vec<Uuid>> {
    let db = pool.get().await?;
    let ids: Vec<Uuid> = db
        .query(
            "SELECT id FROM content.articles WHERE status = 'published' AND visibility = 'public'
             ORDER BY md5(id::text) LIMIT $1",
            &[&(count as i64)],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    anyhow::ensure!(ids.len() == count, "fewer than {count} public articles");
    Ok(ids)
}

/// The raw loops answer what the router answers (the same statement with the same
/// parameters), or nothing is measured.
async fn same_answers(
    router: &Router,
    pool: &Pool,
    sql: &Statements,
    id: Uuid,
) -> anyhow::Result<()> {
    let article: Value =
        serde_json::from_slice(&get(router, &format!("/api/v1/articles/{id}")).await?)?;
    anyhow::ensure!(
        article["id"] == json!(id) && raw_get(pool, &sql.get, id).await? == id,
        "content.get: the router and the raw statement disagree"
    );
    let routed = ids_of(&get(router, LIST_URI).await?)?;
    let raw = raw_list(pool, &sql.list).await?;
    anyhow::ensure!(
        routed.len() == 20 && raw[..20] == routed[..],
        "content.list: the router and the raw statement disagree"
    );
    let routed = ids_of(&get(router, &search_uri(COMMON_WORD)).await?)?;
    let raw = raw_search(pool, &sql.search, COMMON_WORD).await?;
    anyhow::ensure!(
        !routed.is_empty() && raw[..routed.len()] == routed[..],
        "content.search: the router and the raw statement disagree"
    );
    Ok(())
}

/// Database round trips (and AWS calls) per request, counted at the socket after a warm-up,
/// on a second state whose `DATABASE_URL` and `AWS_ENDPOINT_URL` point at counting proxies.
async fn round_trips(
    env: &std::collections::HashMap<String, String>,
    sql: &Statements,
    id: Uuid,
) -> anyhow::Result<()> {
    let url = env.get("DATABASE_URL").context("DATABASE_URL")?;
    let (head, upstream, tail) = split_host(url)?;
    let proxy = RoundTrips::start(upstream).await?;
    let aws_url = env.get("AWS_ENDPOINT_URL").context("AWS_ENDPOINT_URL")?;
    let (aws_head, aws_upstream, aws_tail) = split_host(aws_url)?;
    let aws_proxy = RoundTrips::start(aws_upstream).await?;
    let mut env = env.clone();
    env.insert("DATABASE_URL".into(), format!("{head}{}{tail}", proxy.addr));
    env.insert(
        "AWS_ENDPOINT_URL".into(),
        format!("{aws_head}{}{aws_tail}", aws_proxy.addr),
    );
    let state = state_from(&env).await?;
    let router = lectern_content::router(state.clone());
    let pool = state.pool.clone();
    println!(
        "\nround trips per request (counted at the socket, warm, 20 requests)\n  {:<28} {:>8} {:>8}",
        "", "database", "AWS"
    );
    const N: u64 = 20;
    let get_uri = format!("/api/v1/articles/{id}");
    let search = search_uri(COMMON_WORD);
    for name in [
        "content.get",
        "raw.content.get",
        "content.list",
        "raw.content.list",
        "content.search",
        "raw.content.search",
    ] {
        let run = async || -> anyhow::Result<()> {
            match name {
                "content.get" => get(&router, &get_uri).await.map(drop),
                "raw.content.get" => raw_get(&pool, &sql.get, id).await.map(drop),
                "content.list" => get(&router, LIST_URI).await.map(drop),
                "raw.content.list" => raw_list(&pool, &sql.list).await.map(drop),
                "content.search" => get(&router, &search).await.map(drop),
                _ => raw_search(&pool, &sql.search, COMMON_WORD).await.map(drop),
            }
        };
        for _ in 0..3 {
            run().await?;
        }
        // Whatever earlier requests left running ends first.
        tokio::time::sleep(Duration::from_secs(1)).await;
        proxy.reset();
        aws_proxy.reset();
        for _ in 0..N {
            run().await?;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        let per = proxy.count() as f64 / N as f64;
        let aws = aws_proxy.count() as f64 / N as f64;
        println!("  {name:<28} {per:>8.2} {aws:>8.2}");
        record(format!("round_trips/{name}"), per, "");
        record(format!("aws_calls/{name}"), aws, "");
    }
    Ok(())
}

async fn throughput(
    router: &Router,
    pool: &Pool,
    sql: &Statements,
    ids: &[Uuid],
) -> anyhow::Result<()> {
    // Five rounds of 0.2 s warm-up + 0.5 s for each side (see `compare`).
    let (warmup, window) = (Duration::from_millis(200), Duration::from_millis(2500));
    println!(
        "\nwarm throughput: content router (tower oneshot, anonymous) vs the handler's SQL, same pool, same run"
    );
    for &c in &CONCURRENCY {
        // get: one published public article per loop.
        let (p, s) = (pool.clone(), sql.get.clone());
        let raw = move |id: Uuid| {
            let (p, s) = (p.clone(), s.clone());
            async move { raw_get(&p, &s, id).await }
        };
        let r = router.clone();
        let routed = move |id: Uuid| {
            let r = r.clone();
            async move {
                get(&r, &format!("/api/v1/articles/{id}")).await?;
                Ok(id)
            }
        };
        let get_vs_raw = compare(
            ids[..c].to_vec(),
            raw,
            ids[..c].to_vec(),
            routed,
            warmup,
            window,
        )
        .await?;
        report_comparison("content.get", "raw SQL", c, &get_vs_raw);

        // list: the first page of published articles.
        let (p, s) = (pool.clone(), sql.list.clone());
        let raw = move |()| {
            let (p, s) = (p.clone(), s.clone());
            async move { raw_list(&p, &s).await.map(drop) }
        };
        let r = router.clone();
        let routed = move |()| {
            let r = r.clone();
            async move { get(&r, LIST_URI).await.map(drop) }
        };
        let list_vs_raw = compare(vec![(); c], raw, vec![(); c], routed, warmup, window).await?;
        report_comparison("content.list", "raw SQL", c, &list_vs_raw);

        // search: the first page for the common word.
        let (p, s) = (pool.clone(), sql.search.clone());
        let raw = move |()| {
            let (p, s) = (p.clone(), s.clone());
            async move { raw_search(&p, &s, COMMON_WORD).await.map(drop) }
        };
        let r = router.clone();
        let uri = search_uri(COMMON_WORD);
        let routed = move |()| {
            let (r, uri) = (r.clone(), uri.clone());
            async move { get(&r, &uri).await.map(drop) }
        };
        let search_vs_raw = compare(vec![(); c], raw, vec![(); c], routed, warmup, window).await?;
        report_comparison("content.search", "raw SQL", c, &search_vs_raw);
    }
    Ok(())
}

/// List and search p50 at the current number of articles (200 sequential requests each, fewer
/// when they are slow).
async fn scale(router: &Router, pool: &Pool, articles: i64) -> anyhow::Result<()> {
    let db = pool.get().await?;
    // The middle of the published list: a cursor as the list issues it.
    let middle = db
        .query_one(
            "SELECT to_json(published_at) #>> '{}', id FROM content.articles
             WHERE status = 'published' AND visibility = 'public'
             ORDER BY coalesce(published_at, '-infinity'::timestamptz) DESC, id DESC
             OFFSET (SELECT count(*) / 2 FROM content.articles
                     WHERE status = 'published' AND visibility = 'public') LIMIT 1",
            &[],
        )
        .await?;
    let cursor = lectern_shared::extract::encode_cursor(&json!({
        "sort": "-published_at", "t": middle.get::<_, String>(0), "id": middle.get::<_, Uuid>(1)
    }));
    let mut matches = Vec::new();
    for word in [COMMON_WORD, RARE_WORD, FIXED_WORD] {
        let n: i64 = db
            .query_one(
                "SELECT count(*) FROM content.articles
                 WHERE search @@ websearch_to_tsquery('english', $1)",
                &[&word],
            )
            .await?
            .get(0);
        matches.push(n);
    }
    drop(db);
    let paths = [
        ("content.list", LIST_URI.to_string()),
        ("content.list.middle", format!("{LIST_URI}&cursor={cursor}")),
        ("content.search.common", search_uri(COMMON_WORD)),
        ("content.search.rare", search_uri(RARE_WORD)),
        ("content.search.fixed", search_uri(FIXED_WORD)),
    ];
    println!(
        "\nlist and search at {articles} articles (p50 of up to 200 sequential requests; ?q={COMMON_WORD} matches {}, ?q={RARE_WORD} {}, ?q={FIXED_WORD} {})",
        matches[0], matches[1], matches[2]
    );
    for (name, path) in paths {
        // 20 warm-up requests and 200 measured ones, or as many as 5 s and 30 s allow when a
        // request is slow (at least 20 measured).
        let started = Instant::now();
        for _ in 0..20 {
            get(router, &path).await?;
            if started.elapsed() > Duration::from_secs(5) {
                break;
            }
        }
        let started = Instant::now();
        let mut latencies = Samples::default();
        while latencies.len() < 200
            && (latencies.len() < 20 || started.elapsed() < Duration::from_secs(30))
        {
            let sent = Instant::now();
            get(router, &path).await?;
            latencies.push(sent.elapsed());
        }
        println!(
            "  {name:<22} p50 {:>8.3}ms  p99 {:>8.3}ms  ({} requests)",
            latencies.median(),
            latencies.percentile(99.0),
            latencies.len()
        );
        record(
            format!("scale_p50_ms/{name}/{articles}"),
            latencies.median(),
            path,
        );
    }
    Ok(())
}
