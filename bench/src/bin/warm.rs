//! `warm`: each function's router driven in-process, side by side with the bare work it
//! stands on.
//!
//! ```text
//! warm            router construction; round trips; throughput at concurrency 1, 10, 50;
//!                 list/search at the current size
//! warm --scale    only the list/search figures at the current number of directory users
//! ```
//!
//! Every router request is a real `http::Request` sent with tower's `oneshot` to the router
//! the Lambda binary serves, built from the same environment file. Its baseline runs in the
//! same process with the same pool: the handler's SQL as a raw tokio-postgres loop (auth me
//! and refresh, users effective permissions), or a bare argon2id verify loop (login). The SQL
//! comparisons alternate five rounds of baseline and router windows (`load::compare`), so a
//! change in the machine's load during the run shows up on both sides; login runs argon2id,
//! login and argon2id again, 4 s each. Beside auth.me runs its floor (`floor.auth.me`): the
//! same request to a route behind the platform's layers whose handler runs the same statement
//! on the same pool and answers a constant, so the cost of the request path itself is measured
//! under load, not only on one idle core. At c=10 the same statement is also measured behind a
//! bare axum router (`floor.axum.me`) and behind no router at all (`floor.service.me`, a tower
//! `service_fn` sent the same request object), which splits that cost between the platform's
//! layers, axum, and the request and response objects themselves.
//!
//! The content read paths (get article, list published page, search) are measured by
//! `warm-content`, in the same format.

use std::{
    collections::HashMap,
    convert::Infallible,
    net::IpAddr,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use argon2::{Algorithm, Argon2, Params, PasswordHash, PasswordVerifier, Version};
use axum::{
    Router,
    body::{Body, Bytes},
    http::{Method, Request, StatusCode},
    response::IntoResponse,
};
use http_body_util::BodyExt;
use lectern_auth::passwords::{M_COST, P_COST, T_COST};
use lectern_bench::{
    ACCOUNT_PASSWORD, Samples, account_email, function_env,
    load::{compare, drive, mean, report, report_comparison},
    proxy::RoundTrips,
    record, split_host, sql,
};
use lectern_shared::{db::Pool, tokens};
use serde_json::{Value, json};
use tower::ServiceExt;
use uuid::Uuid;

const CONCURRENCY: [usize; 3] = [1, 10, 50];

/// A request to a router; answers the status and body.
async fn send(
    router: &Router,
    method: Method,
    uri: &str,
    token: Option<&str>,
    body: Option<&Value>,
) -> anyhow::Result<(StatusCode, Bytes)> {
    send_to(router.clone(), method, uri, token, body).await
}

/// [`send`] to any tower service that answers HTTP: a router, or a bare `service_fn`.
async fn send_to<S>(
    service: S,
    method: Method,
    uri: &str,
    token: Option<&str>,
    body: Option<&Value>,
) -> anyhow::Result<(StatusCode, Bytes)>
where
    S: tower::Service<Request<Body>, Response = axum::response::Response, Error = Infallible>,
{
    let mut request = Request::builder()
        .method(method)
        .uri(uri)
        .header("user-agent", "lectern-bench/1.0");
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    let request = match body {
        Some(body) => request
            .header("content-type", "application/json")
            .body(Body::from(body.to_string()))?,
        None => request.body(Body::empty())?,
    };
    let response = service.oneshot(request).await?;
    let status = response.status();
    let bytes = response.into_body().collect().await?.to_bytes();
    Ok((status, bytes))
}

async fn send_ok(
    router: &Router,
    method: Method,
    uri: &str,
    token: Option<&str>,
    body: Option<&Value>,
) -> anyhow::Result<Bytes> {
    let (status, bytes) = send(router, method, uri, token, body).await?;
    if status != StatusCode::OK {
        bail!(
            "{uri} answered {status}: {}",
            String::from_utf8_lossy(&bytes)
        );
    }
    Ok(bytes)
}

/// A signed-in session.
#[derive(Clone)]
struct Session {
    user_id: Uuid,
    session_id: Uuid,
    access: String,
    refresh: String,
}

async fn login(router: &Router, email: &str) -> anyhow::Result<Session> {
    let body = json!({ "email": email, "password": ACCOUNT_PASSWORD });
    let reply: Value = serde_json::from_slice(
        &send_ok(
            router,
            Method::POST,
            "/api/v1/auth/login",
            None,
            Some(&body),
        )
        .await?,
    )?;
    let access = reply["access_token"].as_str().context("no access_token")?;
    let claims: Value = {
        use base64::Engine;
        let payload = access.split('.').nth(1).context("a JWT")?;
        serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload)?)?
    };
    Ok(Session {
        user_id: claims["sub"].as_str().context("sub")?.parse()?,
        session_id: reply["session_id"]
            .as_str()
            .context("session_id")?
            .parse()?,
        access: access.to_string(),
        refresh: reply["refresh_token"]
            .as_str()
            .context("no refresh_token")?
            .to_string(),
    })
}

async fn sessions(
    router: &Router,
    count: usize,
    first_account: usize,
) -> anyhow::Result<Vec<Session>> {
    use futures::{StreamExt, TryStreamExt};
    futures::stream::iter(0..count)
        .map(|i| {
            let router = router.clone();
            async move { login(&router, &account_email(1 + (first_account + i) % 64)).await }
        })
        .buffered(8)
        .try_collect()
        .await
}

struct Bench {
    auth: lectern_auth::AppState,
    auth_router: Router,
    users_router: Router,
    users_pool: Pool,
    auth_env: HashMap<String, String>,
    users_env: HashMap<String, String>,
}

async fn build(
    auth_env: &HashMap<String, String>,
    users_env: &HashMap<String, String>,
) -> anyhow::Result<(lectern_auth::AppState, lectern_users::AppState)> {
    let sdk =
        lectern_shared::aws::load(&lectern_shared::aws::AwsSettings::from_env(auth_env)).await;
    let auth =
        lectern_auth::AppState::build_with(lectern_auth::AuthConfig::from_env(auth_env)?, &sdk)
            .await?;
    let users = lectern_users::AppState::from_env(users_env, &sdk)?;
    Ok((auth, users))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let scale_only = std::env::args().any(|a| a == "--scale");
    // Handler errors are logged, not answered: `RUST_LOG=error` (run.sh) shows them.
    lectern_shared::telemetry::init();
    let auth_env = function_env("auth")?;
    let users_env = function_env("users")?;
    let (auth, users) = build(&auth_env, &users_env).await?;
    // The first construction in the process, as a cold start pays it.
    let started = Instant::now();
    let auth_router = lectern_auth::router(auth.clone());
    let auth_first = started.elapsed();
    let started = Instant::now();
    let users_router = lectern_users::router(users.clone());
    let users_first = started.elapsed();
    let bench = Bench {
        auth_router,
        users_router,
        users_pool: users.pool.clone(),
        auth,
        auth_env,
        users_env,
    };
    if !scale_only {
        startup(&users, auth_first, users_first, &bench);
        round_trips(&bench).await?;
        throughput(&bench).await?;
    }
    scale(&bench).await
}

/// What building each router costs at init, and what building the OpenAPI document costs
/// (`router()` built that document too until it stopped generating OpenAPI; `openapi()`
/// still does), in µs: the first call in this process and the median of 200 more.
fn startup(
    users: &lectern_users::AppState,
    auth_first: Duration,
    users_first: Duration,
    bench: &Bench,
) {
    fn timed(first: Option<Duration>, mut build: impl FnMut()) -> (f64, f64) {
        let first = first.unwrap_or_else(|| {
            let started = Instant::now();
            build();
            started.elapsed()
        });
        let mut again = Samples::default();
        for _ in 0..200 {
            let started = Instant::now();
            build();
            again.push(started.elapsed());
        }
        (first.as_secs_f64() * 1e6, again.median() * 1e3)
    }
    let pieces = [
        (
            "router/auth",
            timed(Some(auth_first), || {
                drop(lectern_auth::router(bench.auth.clone()))
            }),
        ),
        (
            "router/users",
            timed(Some(users_first), || {
                drop(lectern_users::router(users.clone()))
            }),
        ),
        (
            "openapi/auth",
            timed(None, || drop(lectern_auth::openapi())),
        ),
        (
            "openapi/users",
            timed(None, || drop(lectern_users::openapi())),
        ),
    ];
    println!("\nbuilding at init (µs)        first    median of 200");
    for (name, (first, median)) in pieces {
        println!("{name:<26} {first:>8.0} {median:>12.0}");
        record(format!("build_first_us/{name}"), first, "");
        record(format!("build_us/{name}"), median, "");
    }
}

/// Database round trips per request, counted at the socket (after a warm-up, so statements
/// are prepared and connections open).
async fn round_trips(bench: &Bench) -> anyhow::Result<()> {
    let url = bench.auth_env.get("DATABASE_URL").context("DATABASE_URL")?;
    let (head, upstream, tail) = split_host(url)?;
    let proxy = RoundTrips::start(upstream).await?;
    let proxied = format!("{head}{}{tail}", proxy.addr);
    // The AWS calls (the emulator's HTTP API: one call is one round trip) are counted the same
    // way, by a second proxy in front of `AWS_ENDPOINT_URL`.
    let aws_url = bench
        .auth_env
        .get("AWS_ENDPOINT_URL")
        .context("AWS_ENDPOINT_URL")?;
    let (aws_head, aws_upstream, aws_tail) = split_host(aws_url)?;
    let aws_proxy = RoundTrips::start(aws_upstream).await?;
    let aws_proxied = format!("{aws_head}{}{aws_tail}", aws_proxy.addr);
    let through = |env: &HashMap<String, String>| {
        let mut env = env.clone();
        env.insert("DATABASE_URL".into(), proxied.clone());
        env.insert("DATABASE_POOL_SIZE".into(), "1".into());
        env.insert("AWS_ENDPOINT_URL".into(), aws_proxied.clone());
        env
    };
    let (auth, users) = build(&through(&bench.auth_env), &through(&bench.users_env)).await?;
    let (auth_router, users_router) = (
        lectern_auth::router(auth.clone()),
        lectern_users::router(users.clone()),
    );
    let session = login(&bench.auth_router, &account_email(64)).await?;
    let permissions = format!("/api/v1/users/{}/permissions", session.user_id);

    println!(
        "\nround trips per request (counted at the socket, warm, 20 requests)\n  {:<28} {:>8} {:>8}",
        "", "database", "AWS"
    );
    const N: u64 = 20;
    let count = async |name: &str,
                       mut run: Box<
        dyn FnMut() -> futures::future::BoxFuture<'static, anyhow::Result<()>> + '_,
    >|
           -> anyhow::Result<f64> {
        for _ in 0..3 {
            run().await?;
        }
        proxy.reset();
        aws_proxy.reset();
        for _ in 0..N {
            run().await?;
        }
        let per = proxy.count() as f64 / N as f64;
        let aws = aws_proxy.count() as f64 / N as f64;
        println!("  {name:<28} {per:>8.2} {aws:>8.2}");
        record(format!("round_trips/{name}"), per, "");
        record(format!("aws_calls/{name}"), aws, "");
        Ok(per)
    };
    {
        let (router, token) = (auth_router.clone(), session.access.clone());
        count(
            "auth.me",
            Box::new(move || {
                let (router, token) = (router.clone(), token.clone());
                Box::pin(async move {
                    send_ok(&router, Method::GET, "/api/v1/auth/me", Some(&token), None)
                        .await
                        .map(drop)
                })
            }),
        )
        .await?;
    }
    {
        let (pool, s) = (auth.pool.clone(), session.clone());
        count(
            "raw.auth.me",
            Box::new(move || {
                let (pool, s) = (pool.clone(), s.clone());
                Box::pin(async move { raw_me(&pool, s.session_id, s.user_id).await })
            }),
        )
        .await?;
    }
    {
        let (router, token, path) = (
            users_router.clone(),
            session.access.clone(),
            permissions.clone(),
        );
        count(
            "users.permissions",
            Box::new(move || {
                let (router, token, path) = (router.clone(), token.clone(), path.clone());
                Box::pin(async move {
                    send_ok(&router, Method::GET, &path, Some(&token), None)
                        .await
                        .map(drop)
                })
            }),
        )
        .await?;
    }
    {
        let (pool, id) = (users.pool.clone(), session.user_id);
        count(
            "raw.users.permissions",
            Box::new(move || {
                let pool = pool.clone();
                Box::pin(async move { raw_permissions(&pool, id).await })
            }),
        )
        .await?;
    }
    {
        let (router, token) = (users_router.clone(), session.access.clone());
        count(
            "users.list",
            Box::new(move || {
                let (router, token) = (router.clone(), token.clone());
                Box::pin(async move {
                    send_ok(
                        &router,
                        Method::GET,
                        "/api/v1/users?limit=20",
                        Some(&token),
                        None,
                    )
                    .await
                    .map(drop)
                })
            }),
        )
        .await?;
    }
    {
        let router = auth_router.clone();
        let shared = std::sync::Arc::new(std::sync::Mutex::new(session.refresh.clone()));
        count(
            "auth.refresh",
            Box::new(move || {
                let (router, shared) = (router.clone(), shared.clone());
                Box::pin(async move {
                    let token = shared.lock().expect("unpoisoned").clone();
                    let next = refresh_once(&router, token).await?;
                    *shared.lock().expect("unpoisoned") = next;
                    Ok(())
                })
            }),
        )
        .await?;
    }
    {
        let router = auth_router.clone();
        count(
            "auth.login",
            Box::new(move || {
                let router = router.clone();
                Box::pin(async move { login(&router, &account_email(63)).await.map(drop) })
            }),
        )
        .await?;
    }
    Ok(())
}

async fn raw_me(pool: &Pool, session_id: Uuid, user_id: Uuid) -> anyhow::Result<()> {
    let db = pool.get().await?;
    let row = db
        .query_opt(
            &db.prepare_cached(sql::AUTH_CALLER).await?,
            &[&session_id, &user_id],
        )
        .await?;
    anyhow::ensure!(row.is_some(), "the session is not live");
    Ok(())
}

async fn raw_permissions(pool: &Pool, user_id: Uuid) -> anyhow::Result<()> {
    let db = pool.get().await?;
    let rows = db
        .query(&db.prepare_cached(sql::USERS_EFFECTIVE).await?, &[&user_id])
        .await?;
    anyhow::ensure!(!rows.is_empty(), "no rows");
    Ok(())
}

async fn refresh_once(router: &Router, token: String) -> anyhow::Result<String> {
    let body = json!({ "refresh_token": token });
    let reply: Value = serde_json::from_slice(
        &send_ok(
            router,
            Method::POST,
            "/api/v1/auth/refresh",
            None,
            Some(&body),
        )
        .await?,
    )?;
    Ok(reply["refresh_token"]
        .as_str()
        .context("no refresh_token")?
        .to_string())
}

/// The refresh statement the handler runs, with the same parameters: the token's hash, the
/// grace window, the successor's hash and sealed bytes, no address, the session's lifetime.
async fn raw_refresh(pool: &Pool, token: String) -> anyhow::Result<String> {
    let db = pool.get().await?;
    let hash = tokens::hash(&token);
    let successor_token = tokens::generate();
    let successor_hash = tokens::hash(&successor_token);
    let sealed: Vec<u8> = rand_bytes();
    let ip: Option<IpAddr> = None;
    let (grace, ttl) = (10.0f64, 30.0 * 86_400.0f64);
    let row = db
        .query_opt(
            &db.prepare_cached(sql::AUTH_REFRESH).await?,
            &[&hash, &grace, &successor_hash, &sealed, &ip, &ttl],
        )
        .await?
        .context("the refresh token is unknown")?;
    anyhow::ensure!(row.get::<_, bool>(9), "the refresh token did not rotate");
    Ok(successor_token)
}

fn rand_bytes() -> Vec<u8> {
    tokens::hash(&Uuid::new_v4().to_string())
}

async fn throughput(bench: &Bench) -> anyhow::Result<()> {
    let max = *CONCURRENCY.iter().max().expect("levels");
    eprintln!("signing in {} sessions ...", 3 * max);
    let me_sessions = sessions(&bench.auth_router, max, 0).await?;
    let mut router_chains: Vec<String> = sessions(&bench.auth_router, max, 10)
        .await?
        .into_iter()
        .map(|s| s.refresh)
        .collect();
    let mut raw_chains: Vec<String> = sessions(&bench.auth_router, max, 20)
        .await?
        .into_iter()
        .map(|s| s.refresh)
        .collect();
    let stored_hash = {
        let db = bench.auth.pool.get().await?;
        db.query_one(
            "SELECT password_hash FROM auth.users WHERE email = $1",
            &[&account_email(1)],
        )
        .await?
        .get::<_, String>(0)
    };
    // Login against argon2id: B M B windows of 0.5 s warm-up + 4 s (a login takes up to
    // seconds at c=50). The SQL paths: five rounds of 0.2 s warm-up + 0.5 s each side
    // (`compare`).
    let (warmup, window, slow_window, round_warmup) = (
        Duration::from_millis(500),
        Duration::from_millis(2500),
        Duration::from_secs(4),
        Duration::from_millis(200),
    );

    // What every authenticated request pays before any SQL: a token check (an Ed25519
    // signature the first time a token is seen, a cache hit after that).
    let verifier = bench.auth.verifier.clone();
    let token = me_sessions[0].access.clone();
    let started = Instant::now();
    for _ in 0..2_000 {
        verifier
            .verify(&token)
            .context("the access token verifies")?;
    }
    let verify_us = started.elapsed().as_secs_f64() * 1e6 / 2_000.0;
    println!("\naccess token verification (EdDSA, cached, one core): {verify_us:.1} µs each");
    record("jwt_verify_us", verify_us, "");
    // What every login and refresh pays to answer: an access token, signed.
    // The access summary a bench account signs in with.
    let signed = verifier
        .verify(&token)
        .context("the access token verifies")?;
    let claims = lectern_shared::authz::Access {
        grants: signed.perms.clone(),
        roles: signed.roles.clone(),
        groups: signed.groups.clone(),
    };
    let issuer = bench.auth.signer.issuer().await?;
    let started = Instant::now();
    for _ in 0..2_000 {
        std::hint::black_box(issuer.issue(
            me_sessions[0].user_id,
            me_sessions[0].session_id,
            true,
            &claims,
        ));
    }
    let issue_us = started.elapsed().as_secs_f64() * 1e6 / 2_000.0;
    println!("access token issuing (EdDSA signature, one core): {issue_us:.1} µs each");
    record("jwt_issue_us", issue_us, "");
    // The least any route costs in this process: a static answer through the platform's router
    // layers (lectern_shared::http::finish) and this program's request path, token included;
    // beside it the same route in a bare axum router, so that the layers' own cost shows.
    // Five alternating rounds of 20 000 requests each; the fastest round of each counts.
    let static_route = || {
        Router::new().route(
            "/floor",
            axum::routing::get(|| async { axum::Json(json!({ "ok": true })) }),
        )
    };
    let (floor, bare) = (lectern_shared::http::finish(static_route()), static_route());
    let per_request = async |router: &Router, n: u32| -> anyhow::Result<f64> {
        let started = Instant::now();
        for _ in 0..n {
            send_ok(router, Method::GET, "/floor", Some(&token), None).await?;
        }
        Ok(started.elapsed().as_secs_f64() * 1e6 / f64::from(n))
    };
    per_request(&floor, 1_000).await?;
    per_request(&bare, 1_000).await?;
    let (mut floor_us, mut bare_us) = (f64::MAX, f64::MAX);
    for _ in 0..5 {
        floor_us = floor_us.min(per_request(&floor, 20_000).await?);
        bare_us = bare_us.min(per_request(&bare, 20_000).await?);
    }
    println!(
        "router floor (a static JSON route, one core): {floor_us:.2} µs per request; \
         {bare_us:.2} µs in a bare axum router, so the platform's layers cost {:.2} µs",
        floor_us - bare_us
    );
    record("router_floor_us", floor_us, "");
    record("router_floor_bare_axum_us", bare_us, "");

    println!("\nwarm throughput: router (tower oneshot) vs its baseline, same pool, same run");
    for &c in &CONCURRENCY {
        // auth: me vs the raw session check.
        let tokens: Vec<String> = me_sessions[..c].iter().map(|s| s.access.clone()).collect();
        let ids: Vec<(Uuid, Uuid)> = me_sessions[..c]
            .iter()
            .map(|s| (s.session_id, s.user_id))
            .collect();
        let pool = bench.auth.pool.clone();
        let raw = move |(sid, uid): (Uuid, Uuid)| {
            let pool = pool.clone();
            async move { raw_me(&pool, sid, uid).await.map(|_| (sid, uid)) }
        };
        // `GET /api/v1/auth/me` with each loop's token, to auth's router or to the floor's.
        let get_me = |router: Router| {
            move |token: String| {
                let router = router.clone();
                async move {
                    send_ok(&router, Method::GET, "/api/v1/auth/me", Some(&token), None).await?;
                    Ok(token)
                }
            }
        };
        let me = compare(
            ids.clone(),
            raw.clone(),
            tokens.clone(),
            get_me(bench.auth_router.clone()),
            round_warmup,
            window,
        )
        .await?;
        report_comparison("auth.me", "raw SQL", c, &me);

        // The floor under load: the same request to a route behind the same platform layers
        // whose handler runs the same statement on the same pool and answers a constant. No
        // token check, no row to decode, no answer to build: what is left between it and the
        // raw loop is the request path itself, measured while PostgreSQL shares the cores.
        // Its requests take the same sessions in turn (one atomic add), so PostgreSQL reads
        // the very rows the two other sides read: one row read over and over can cost it
        // twice as much (a user row that logins keep updating).
        let pool = bench.auth.pool.clone();
        let (turn, rows) = (Arc::new(AtomicUsize::new(0)), Arc::new(ids.clone()));
        // The statement, then a constant answer: `{"ok":true}`, or a 500.
        let same_statement = move || {
            let pool = pool.clone();
            let (sid, uid) = rows[turn.fetch_add(1, Ordering::Relaxed) % rows.len()];
            async move {
                match raw_me(&pool, sid, uid).await {
                    Ok(()) => Ok(axum::Json(json!({ "ok": true }))),
                    Err(_) => Err(StatusCode::INTERNAL_SERVER_ERROR),
                }
            }
        };
        let route = || {
            Router::new().route(
                "/api/v1/auth/me",
                axum::routing::get(same_statement.clone()),
            )
        };
        let floor = lectern_shared::http::finish(route());
        let same_sql = compare(
            ids.clone(),
            raw.clone(),
            tokens.clone(),
            get_me(floor),
            round_warmup,
            window,
        )
        .await?;
        report_comparison("floor.auth.me", "raw SQL", c, &same_sql);
        if c == 10 {
            // Where the floor comes from, at the concurrency the budget names: the same
            // statement behind a bare axum router (no platform layers), and behind no router
            // at all (a tower `service_fn`, the same request object sent the same way).
            let bare = compare(
                ids.clone(),
                raw.clone(),
                tokens.clone(),
                get_me(route()),
                round_warmup,
                window,
            )
            .await?;
            report_comparison("floor.axum.me", "raw SQL", c, &bare);
            let statement = same_statement.clone();
            let service = tower::service_fn(move |_: Request<Body>| {
                let answer = statement();
                async move { Ok::<_, Infallible>(answer.await.into_response()) }
            });
            let no_router = move |token: String| {
                let service = service.clone();
                async move {
                    let (status, _) =
                        send_to(service, Method::GET, "/api/v1/auth/me", Some(&token), None)
                            .await?;
                    anyhow::ensure!(status == StatusCode::OK, "the statement failed: {status}");
                    Ok(token)
                }
            };
            let none = compare(
                ids.clone(),
                raw.clone(),
                tokens.clone(),
                no_router,
                round_warmup,
                window,
            )
            .await?;
            report_comparison("floor.service.me", "raw SQL", c, &none);
        }

        // auth: refresh vs the raw refresh transaction.
        let pool = bench.auth.pool.clone();
        let raw = move |token: String| {
            let pool = pool.clone();
            async move { raw_refresh(&pool, token).await }
        };
        let router = bench.auth_router.clone();
        let routed = move |token: String| {
            let router = router.clone();
            async move { refresh_once(&router, token).await }
        };
        let refresh = compare(
            raw_chains.drain(..c).collect(),
            raw,
            router_chains.drain(..c).collect(),
            routed,
            round_warmup,
            window,
        )
        .await?;
        report_comparison("auth.refresh", "raw SQL", c, &refresh);
        raw_chains.splice(0..0, refresh.base_states);
        router_chains.splice(0..0, refresh.measured_states);

        // auth: login vs a bare argon2id verify loop with the same parameters.
        let hash = stored_hash.clone();
        let argon = move |()| {
            let hash = hash.clone();
            async move {
                let ok = tokio::task::spawn_blocking(move || {
                    let params = Params::new(M_COST, T_COST, P_COST, None).expect("params");
                    let parsed = PasswordHash::new(&hash).expect("a PHC string");
                    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
                        .verify_password(ACCOUNT_PASSWORD.as_bytes(), &parsed)
                        .is_ok()
                })
                .await?;
                anyhow::ensure!(ok, "the password does not verify");
                Ok(())
            }
        };
        let router = bench.auth_router.clone();
        let routed = move |i: usize| {
            let router = router.clone();
            async move { login(&router, &account_email(1 + i % 64)).await.map(|_| i) }
        };
        let (b1, _) = drive(vec![(); c], warmup, slow_window, argon.clone()).await?;
        let (m, _) = drive((0..c).collect(), warmup, slow_window, routed).await?;
        let (b2, _) = drive(vec![(); c], warmup, slow_window, argon).await?;
        report("auth.login", "argon2id loop", c, m, mean(b1, b2));

        // users: effective permissions vs the raw statement.
        let pool = bench.users_pool.clone();
        let raw = move |uid: Uuid| {
            let pool = pool.clone();
            async move { raw_permissions(&pool, uid).await.map(|_| uid) }
        };
        let router = bench.users_router.clone();
        let routed = move |(token, uid): (String, Uuid)| {
            let router = router.clone();
            async move {
                let path = format!("/api/v1/users/{uid}/permissions");
                send_ok(&router, Method::GET, &path, Some(&token), None).await?;
                Ok((token, uid))
            }
        };
        let users: Vec<Uuid> = me_sessions[..c].iter().map(|s| s.user_id).collect();
        let callers: Vec<(String, Uuid)> = me_sessions[..c]
            .iter()
            .map(|s| (s.access.clone(), s.user_id))
            .collect();
        let permissions = compare(users, raw, callers, routed, round_warmup, window).await?;
        report_comparison("users.permissions", "raw SQL", c, &permissions);
    }
    Ok(())
}

/// List and search p50 at the current number of directory users.
async fn scale(bench: &Bench) -> anyhow::Result<()> {
    let rows: i64 = bench
        .users_pool
        .get()
        .await?
        .query_one("SELECT count(*) FROM users.users", &[])
        .await?
        .get(0);
    let session = login(&bench.auth_router, &account_email(2)).await?;
    let cursor = lectern_shared::extract::encode_cursor(&json!({
        "sort": "Name", "last": "lamport", "first": "a",
        "created_at": "2026-01-01T00:00:00Z", "id": Uuid::nil()
    }));
    let paths = [
        ("users.list", "/api/v1/users?limit=20".to_string()),
        (
            "users.list.middle",
            format!("/api/v1/users?limit=20&cursor={cursor}"),
        ),
        (
            "users.search.common",
            "/api/v1/users?limit=20&q=lamport".to_string(),
        ),
        (
            "users.search.one",
            "/api/v1/users?limit=20&q=seed-777%40".to_string(),
        ),
    ];
    println!("\nlist and search at {rows} directory users (p50 of 200 sequential requests)");
    for (name, path) in paths {
        for _ in 0..20 {
            send_ok(
                &bench.users_router,
                Method::GET,
                &path,
                Some(&session.access),
                None,
            )
            .await?;
        }
        let mut latencies = Samples::default();
        for _ in 0..200 {
            let sent = Instant::now();
            send_ok(
                &bench.users_router,
                Method::GET,
                &path,
                Some(&session.access),
                None,
            )
            .await?;
            latencies.push(sent.elapsed());
        }
        println!(
            "  {name:<22} p50 {:>7.3}ms  p99 {:>7.3}ms",
            latencies.median(),
            latencies.percentile(99.0)
        );
        record(
            format!("scale_p50_ms/{name}/{rows}"),
            latencies.median(),
            path,
        );
    }
    Ok(())
}
