//! `lambda-harness`: cold starts, binary sizes and memory, measured the way Lambda runs a
//! function.
//!
//! It implements the Lambda Runtime API on loopback (`GET /2018-06-01/runtime/invocation/next`,
//! `POST .../{id}/response`, `.../{id}/error`, `.../init/error`), starts a function's release
//! binary with `AWS_LAMBDA_RUNTIME_API` pointing at itself and only the function's own
//! environment (`.local/bench/functions/<binary>.env`, as the devstack writes it), and measures
//!
//! - init: exec → the first `GET next` (the runtime is ready for work);
//! - cold request: exec → the response to a first API Gateway v2 event that reads the database;
//! - peak RSS (VmHWM) after the cold request and after a burst of warm invocations, and what
//!   the resident set holds after that burst: anonymous memory and pages of the binary;
//!
//! over `--runs` fresh processes (default 20) per target, interleaved so that drift in the
//! machine's load hits every target alike. The baselines run in the same loop: `bench-hello`
//! (lambda_http + axum, nothing else) and `bench-bare-pg` (connect + the same statement).
//!
//! ```text
//! lambda-harness [--bin-dir target/release] [--runs 20] [--warm 300]
//! ```
//!
//! The content function is not a cold-start target yet: it joins with a `Target` in
//! `targets()` (its env file, a published article and the bare-pg statement of `GET_SQL`).

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    process::Stdio,
    sync::Arc,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use anyhow::{Context, bail};
use axum::{
    Router,
    body::Bytes,
    extract::State,
    http::{HeaderMap, HeaderValue, StatusCode},
    response::IntoResponse,
    routing::{get, post},
};
use lectern_bench::{Samples, account_email, apigw_event, function_env, record, sql};
use lectern_shared::{
    authz::Access,
    jwt::{SigningKey, TokenIssuer, TokenParties},
};
use serde_json::{Value, json};
use tokio::sync::{Mutex, mpsc};
use uuid::Uuid;

/// What the runtime API saw from the function.
#[derive(Debug)]
enum Observed {
    Next(Instant),
    Response(Instant, Bytes),
    Error(Bytes),
    InitError(Bytes),
}

struct Api {
    observed: mpsc::UnboundedSender<Observed>,
    invocations: Mutex<mpsc::UnboundedReceiver<(String, Value)>>,
}

async fn next(State(api): State<Arc<Api>>) -> impl IntoResponse {
    let _ = api.observed.send(Observed::Next(Instant::now()));
    let Some((id, payload)) = api.invocations.lock().await.recv().await else {
        return (StatusCode::GONE, HeaderMap::new(), String::new());
    };
    let deadline = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis()
        + 30_000;
    let mut headers = HeaderMap::new();
    let mut set = |name: &'static str, value: String| {
        if let Ok(v) = HeaderValue::from_str(&value) {
            headers.insert(name, v);
        }
    };
    set("lambda-runtime-aws-request-id", id);
    set("lambda-runtime-deadline-ms", deadline.to_string());
    set(
        "lambda-runtime-invoked-function-arn",
        "arn:aws:lambda:us-east-1:000000000000:function:bench".into(),
    );
    set(
        "lambda-runtime-trace-id",
        "Root=1-00000000-000000000000000000000000;Sampled=0".into(),
    );
    set("content-type", "application/json".into());
    (StatusCode::OK, headers, payload.to_string())
}

async fn response(State(api): State<Arc<Api>>, body: Bytes) -> StatusCode {
    let _ = api.observed.send(Observed::Response(Instant::now(), body));
    StatusCode::ACCEPTED
}

async fn error(State(api): State<Arc<Api>>, body: Bytes) -> StatusCode {
    let _ = api.observed.send(Observed::Error(body));
    StatusCode::ACCEPTED
}

async fn init_error(State(api): State<Arc<Api>>, body: Bytes) -> StatusCode {
    let _ = api.observed.send(Observed::InitError(body));
    StatusCode::ACCEPTED
}

/// One function to start again and again.
struct Target {
    name: &'static str,
    binary: &'static str,
    env: HashMap<String, String>,
    payload: Value,
    /// Whether an answer is the success we asked for (a wrong token would be fast, not cold).
    ok: fn(&Value) -> bool,
}

fn http_ok(answer: &Value) -> bool {
    answer["statusCode"] == 200
}

fn rows_ok(answer: &Value) -> bool {
    answer["rows"].as_u64().is_some_and(|n| n > 0)
}

/// One running function process with its own Runtime API endpoint.
struct Launch {
    child: std::process::Child,
    pid: u32,
    started: Instant,
    server: tokio::task::JoinHandle<()>,
    observed: mpsc::UnboundedReceiver<Observed>,
    invoke: mpsc::UnboundedSender<(String, Value)>,
}

impl Launch {
    async fn start(bin_dir: &Path, target: &Target, log: &Path) -> anyhow::Result<Self> {
        let (observed_tx, observed) = mpsc::unbounded_channel();
        let (invoke, invocations) = mpsc::unbounded_channel();
        let api = Arc::new(Api {
            observed: observed_tx,
            invocations: Mutex::new(invocations),
        });
        let app = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route(
                "/2018-06-01/runtime/invocation/{id}/response",
                post(response),
            )
            .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
            .route("/2018-06-01/runtime/init/error", post(init_error))
            .with_state(api);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?;
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        let binary = bin_dir.join(target.binary);
        let stderr = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)?;
        let mut command = std::process::Command::new(&binary);
        command
            .env_clear()
            .envs(&target.env)
            .env("AWS_LAMBDA_RUNTIME_API", address.to_string())
            .env("AWS_LAMBDA_FUNCTION_NAME", format!("bench-{}", target.name))
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_LOG_STREAM_NAME", "bench")
            .env("AWS_LAMBDA_LOG_GROUP_NAME", "bench")
            .env("_HANDLER", "bootstrap")
            .env("TZ", ":UTC")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr);
        let started = Instant::now();
        let child = command
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        let pid = child.id();
        Ok(Self {
            child,
            pid,
            started,
            server,
            observed,
            invoke,
        })
    }

    async fn wait_next(&mut self) -> anyhow::Result<Duration> {
        match self.wait().await? {
            Observed::Next(at) => Ok(at - self.started),
            Observed::InitError(body) => bail!("init error: {}", String::from_utf8_lossy(&body)),
            other => bail!("expected GET next, got {other:?}"),
        }
    }

    async fn invoke(&mut self, payload: &Value) -> anyhow::Result<(Instant, Value)> {
        let _ = self
            .invoke
            .send((Uuid::new_v4().to_string(), payload.clone()));
        loop {
            match self.wait().await? {
                Observed::Next(_) => continue,
                Observed::Response(at, body) => return Ok((at, serde_json::from_slice(&body)?)),
                Observed::Error(body) => {
                    bail!("invocation error: {}", String::from_utf8_lossy(&body))
                }
                Observed::InitError(body) => {
                    bail!("init error: {}", String::from_utf8_lossy(&body))
                }
            }
        }
    }

    async fn wait(&mut self) -> anyhow::Result<Observed> {
        let give_up = Instant::now() + Duration::from_secs(30);
        loop {
            let tick = tokio::time::timeout(Duration::from_millis(50), self.observed.recv());
            if let Ok(observed) = tick.await {
                return observed.context("the runtime API stopped");
            }
            if let Some(status) = self.child.try_wait()? {
                bail!("the function exited: {status}");
            }
            if Instant::now() > give_up {
                bail!("no word from the function in 30 s");
            }
        }
    }

    /// Peak resident set so far, in KiB.
    fn peak_rss_kib(&self) -> anyhow::Result<f64> {
        let [peak] = self.status_kib(["VmHWM"])?;
        Ok(peak)
    }

    /// KiB figures of one read of `/proc/<pid>/status`: `VmHWM` (peak resident set),
    /// `RssAnon` (heap, stacks and written data: memory the process alone holds), `RssFile`
    /// (pages of the binary and its libraries, shared with the page cache).
    fn status_kib<const N: usize>(&self, fields: [&str; N]) -> anyhow::Result<[f64; N]> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid))?;
        let value = |field: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
                .with_context(|| format!("no {field} in /proc/<pid>/status"))
        };
        let mut figures = [0.0; N];
        for (figure, field) in figures.iter_mut().zip(fields) {
            *figure = value(field)?;
        }
        Ok(figures)
    }

    fn stop(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.server.abort();
    }
}

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

/// A live session for the first bench account and an access token for it, signed with the
/// devstack's key: what a client holds when it calls `GET /auth/me`.
async fn sign_in(auth_env: &HashMap<String, String>) -> anyhow::Result<(Uuid, Uuid, String)> {
    let url = auth_env
        .get("DATABASE_URL")
        .context("auth.env has no DATABASE_URL")?;
    let (db, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
    tokio::spawn(connection);
    let row = db
        .query_one(
            "SELECT u.id, a.access FROM auth.users u LEFT JOIN auth.user_access a ON a.user_id = u.id
             WHERE u.email = $1",
            &[&account_email(1)],
        )
        .await
        .context("the bench accounts are missing: run `seed` first")?;
    let user_id: Uuid = row.get(0);
    let access: Access = row
        .get::<_, Option<Value>>(1)
        .map(serde_json::from_value)
        .transpose()?
        .unwrap_or_default();
    let session_id = Uuid::now_v7();
    db.execute(
        "INSERT INTO auth.user_sessions (id, user_id, token_hash, expires_at)
         VALUES ($1, $2, $3, now() + interval '1 day')",
        &[
            &session_id,
            &user_id,
            &lectern_shared::tokens::hash(&Uuid::new_v4().to_string()),
        ],
    )
    .await?;
    let key_file = auth_env
        .get("JWT_SIGNING_KEY_FILE")
        .context("auth.env has no JWT_SIGNING_KEY_FILE")?;
    let key = SigningKey::from_base64(&std::fs::read_to_string(key_file)?)
        .map_err(|e| anyhow::anyhow!("the signing key: {e}"))?;
    let issuer = TokenIssuer::new(key, TokenParties::from_env(auth_env), 3600);
    Ok((
        user_id,
        session_id,
        issuer.issue(user_id, session_id, true, &access),
    ))
}

/// What a cold start of each function is asked for.
struct Calls<'a> {
    user_id: Uuid,
    session_id: Uuid,
    token: &'a str,
    /// A published public article: `content.get` reads it anonymously.
    article_id: Uuid,
}

fn targets(
    auth_env: HashMap<String, String>,
    users_env: HashMap<String, String>,
    content_env: HashMap<String, String>,
    calls: Calls<'_>,
) -> Vec<Target> {
    let Calls {
        user_id,
        session_id,
        token,
        article_id,
    } = calls;
    let database = |env: &HashMap<String, String>| {
        env.iter()
            .filter(|(k, _)| k.starts_with("DATABASE_"))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect::<HashMap<_, _>>()
    };
    vec![
        Target {
            name: "hello",
            binary: "bench-hello",
            env: HashMap::new(),
            payload: apigw_event("GET", "/hello", "", None),
            ok: http_ok,
        },
        Target {
            name: "bare-pg.auth.me",
            binary: "bench-bare-pg",
            env: database(&auth_env),
            payload: json!({ "sql": sql::AUTH_CALLER, "params": [session_id, user_id] }),
            ok: rows_ok,
        },
        Target {
            name: "auth.me",
            binary: "auth",
            env: auth_env.clone(),
            payload: apigw_event("GET", "/api/v1/auth/me", "", Some(token)),
            ok: http_ok,
        },
        Target {
            name: "bare-pg.users.permissions",
            binary: "bench-bare-pg",
            env: database(&users_env),
            payload: json!({ "sql": sql::USERS_EFFECTIVE, "params": [user_id] }),
            ok: rows_ok,
        },
        Target {
            name: "users.permissions",
            binary: "users",
            env: users_env,
            payload: apigw_event(
                "GET",
                &format!("/api/v1/users/{user_id}/permissions"),
                "",
                Some(token),
            ),
            ok: http_ok,
        },
        Target {
            name: "bare-pg.content.get",
            binary: "bench-bare-pg",
            env: database(&content_env),
            // An anonymous reader's scope: no id, no groups, not an editor, no bypass.
            payload: json!({
                "sql": lectern_content::articles::get_sql(),
                "params": [article_id, null, [], false, false],
            }),
            ok: rows_ok,
        },
        Target {
            name: "content.get",
            binary: "content",
            env: content_env,
            payload: apigw_event("GET", &format!("/api/v1/articles/{article_id}"), "", None),
            ok: http_ok,
        },
    ]
}

/// A published public article of the seeded ones.
async fn an_article(content_env: &HashMap<String, String>) -> anyhow::Result<Uuid> {
    let url = content_env
        .get("DATABASE_URL")
        .context("content.env has no DATABASE_URL")?;
    let (db, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
    tokio::spawn(connection);
    let row = db
        .query_opt(
            "SELECT id FROM content.articles WHERE status = 'published' AND visibility = 'public'
             ORDER BY published_at DESC LIMIT 1",
            &[],
        )
        .await?
        .context("no published article: run `seed --articles 1000` first")?;
    Ok(row.get(0))
}

#[derive(Default)]
struct Cold {
    init: Samples,
    cold: Samples,
    rss: Vec<f64>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let root = lectern_bench::workspace_root();
    let bin_dir = arg(&args, "--bin-dir")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target/release"));
    let runs: usize = arg(&args, "--runs")
        .map(|n| n.parse())
        .transpose()?
        .unwrap_or(20);
    let warm: usize = arg(&args, "--warm")
        .map(|n| n.parse())
        .transpose()?
        .unwrap_or(300);
    let log_dir = root.join("target/bench/logs");
    std::fs::create_dir_all(&log_dir)?;

    let auth_env = function_env("auth")?;
    let users_env = function_env("users")?;
    let content_env = function_env("content")?;
    let (user_id, session_id, token) = sign_in(&auth_env).await?;
    let article_id = an_article(&content_env).await?;
    let targets = targets(
        auth_env,
        users_env,
        content_env,
        Calls {
            user_id,
            session_id,
            token: &token,
            article_id,
        },
    );

    sizes(
        &bin_dir,
        &["bench-hello", "auth", "users", "content", "bench-bare-pg"],
    )?;

    // A first start of each binary, not counted: the page cache holds it afterwards, as it
    // does on a Lambda worker that has the code.
    for target in &targets {
        let log = log_dir.join(format!("{}.stderr", target.name));
        let mut launch = Launch::start(&bin_dir, target, &log).await?;
        launch.wait_next().await?;
        let (_, answer) = launch.invoke(&target.payload).await?;
        anyhow::ensure!(
            (target.ok)(&answer),
            "{} answered {answer}; see {}",
            target.name,
            log.display()
        );
        launch.stop();
    }

    let mut cold: Vec<Cold> = targets.iter().map(|_| Cold::default()).collect();
    for run in 0..runs {
        eprint!("\rcold starts: run {}/{runs}", run + 1);
        for (target, cold) in targets.iter().zip(cold.iter_mut()) {
            let log = log_dir.join(format!("{}.stderr", target.name));
            let mut launch = Launch::start(&bin_dir, target, &log).await?;
            cold.init.push(launch.wait_next().await?);
            let (at, answer) = launch.invoke(&target.payload).await?;
            anyhow::ensure!((target.ok)(&answer), "{} answered {answer}", target.name);
            cold.cold.push(at - launch.started);
            cold.rss.push(launch.peak_rss_kib()?);
            launch.stop();
        }
    }
    eprintln!();

    println!(
        "\ncold starts ({runs} fresh processes each)\n{:<28} {:>10} {:>10} {:>12} {:>12} {:>12}",
        "target", "init p50", "init p90", "request p50", "request p90", "RSS p50 KiB"
    );
    for (target, cold) in targets.iter().zip(&cold) {
        let rss = Samples(cold.rss.clone()).median();
        println!(
            "{:<28} {:>8.2}ms {:>8.2}ms {:>10.2}ms {:>10.2}ms {:>12.0}",
            target.name,
            cold.init.median(),
            cold.init.percentile(90.0),
            cold.cold.median(),
            cold.cold.percentile(90.0),
            rss
        );
        record(format!("init_ms/{}", target.name), cold.init.median(), "");
        record(
            format!("init_p90_ms/{}", target.name),
            cold.init.percentile(90.0),
            "",
        );
        record(format!("cold_ms/{}", target.name), cold.cold.median(), "");
        record(
            format!("cold_p90_ms/{}", target.name),
            cold.cold.percentile(90.0),
            "",
        );
        record(format!("rss_cold_kib/{}", target.name), rss, "");
    }

    println!(
        "\nwarm invocations through the Runtime API ({warm} in one process)\n{:<28} {:>10} {:>10} {:>14} {:>10} {:>10}",
        "target", "p50", "p99", "peak RSS KiB", "anon KiB", "file KiB"
    );
    for target in &targets {
        let log = log_dir.join(format!("{}.stderr", target.name));
        let mut launch = Launch::start(&bin_dir, target, &log).await?;
        launch.wait_next().await?;
        let mut latencies = Samples::default();
        for _ in 0..=warm {
            let sent = Instant::now();
            let (at, answer) = launch.invoke(&target.payload).await?;
            anyhow::ensure!((target.ok)(&answer), "{} answered {answer}", target.name);
            latencies.push(at - sent);
        }
        latencies.0.remove(0);
        let [rss, anon, file] = launch.status_kib(["VmHWM", "RssAnon", "RssFile"])?;
        launch.stop();
        println!(
            "{:<28} {:>8.3}ms {:>8.3}ms {:>14.0} {:>10.0} {:>10.0}",
            target.name,
            latencies.median(),
            latencies.percentile(99.0),
            rss,
            anon,
            file
        );
        record(format!("rss_warm_kib/{}", target.name), rss, "");
        record(format!("rss_anon_kib/{}", target.name), anon, "");
        record(format!("rss_file_kib/{}", target.name), file, "");
        record(
            format!("lambda_warm_ms/{}", target.name),
            latencies.median(),
            "",
        );
    }
    Ok(())
}

/// Each binary's size, and the size of the zip Lambda would get (`bootstrap` alone, deflated
/// as `cargo lambda build --output-format zip` does).
fn sizes(bin_dir: &Path, binaries: &[&str]) -> anyhow::Result<()> {
    println!("\nrelease binaries ({})", bin_dir.display());
    let scratch = std::env::temp_dir().join(format!("lectern-bench-zip-{}", std::process::id()));
    std::fs::create_dir_all(&scratch)?;
    for binary in binaries {
        let path = bin_dir.join(binary);
        let size = std::fs::metadata(&path)
            .with_context(|| format!("{} is not built", path.display()))?
            .len() as f64;
        let bootstrap = scratch.join("bootstrap");
        let zip = scratch.join(format!("{binary}.zip"));
        std::fs::copy(&path, &bootstrap)?;
        let _ = std::fs::remove_file(&zip);
        let zipped = std::process::Command::new("zip")
            .current_dir(&scratch)
            .args(["-q", "-X"])
            .arg(&zip)
            .arg("bootstrap")
            .status()
            .ok()
            .filter(|s| s.success())
            .and_then(|_| std::fs::metadata(&zip).ok())
            .map(|m| m.len() as f64);
        println!(
            "  {binary:<16} {:>8.2} MiB   zip {}",
            size / 1048576.0,
            zipped
                .map(|z| format!("{:.2} MiB", z / 1048576.0))
                .unwrap_or_else(|| "(no zip command)".into())
        );
        record(format!("size_bytes/{binary}"), size, "x86_64");
        if let Some(z) = zipped {
            record(format!("zip_bytes/{binary}"), z, "x86_64");
        }
    }
    let _ = std::fs::remove_dir_all(&scratch);
    Ok(())
}
