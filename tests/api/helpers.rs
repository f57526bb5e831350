//! The test harness: a fresh database and a fresh set of AWS resources per test, and the
//! devstack's own gateway in front of the real routers.

use std::{collections::HashMap, net::SocketAddr, time::Duration};

use axum::{
    Router,
    body::Body,
    extract::ConnectInfo,
    http::{HeaderMap, Method, Request, StatusCode},
};
use http_body_util::BodyExt;
use lectern_devstack::{DevstackConfig, Stack, workspace_root};
use lectern_shared::aws::AwsSettings;
use serde_json::Value;
use tokio::sync::OnceCell;
use tokio_postgres::types::ToSql;
use tower::ServiceExt;
use uuid::Uuid;

pub const PASSWORD: &str = "correct horse battery staple";

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: run the tests with `make test`, which starts PostgreSQL and the emulator")
    })
}

fn with_database(url: &str, database: &str) -> String {
    let (base, _) = url
        .rsplit_once('/')
        .expect("a database url names a database");
    format!("{base}/{database}")
}

async fn admin_client() -> tokio_postgres::Client {
    let url = std::env::var("DATABASE_ADMIN_URL")
        .unwrap_or_else(|_| with_database(&env("DATABASE_URL"), "postgres"));
    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .expect("connecting as admin");
    tokio::spawn(connection);
    client
}

/// This test process's run: the prefix of every database it creates. A connection held open
/// for the life of the process keeps an advisory lock on it, so another run can tell that this
/// one is alive. On first use it drops, in the background, the databases (and signing keys) of
/// earlier runs whose lock is free: a test database is kept only while its run lasts, plus
/// until the next run starts, where a failing test can still be looked at.
fn this_run() -> &'static str {
    static RUN: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    RUN.get_or_init(|| {
        let run = Uuid::new_v4().simple().to_string()[..12].to_string();
        let (locked, held) = std::sync::mpsc::channel();
        let key = run.clone();
        std::thread::Builder::new()
            .name("test-run-lock".into())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("a runtime for the run lock");
                runtime.block_on(async move {
                    let admin = admin_client().await;
                    admin
                        .execute("SELECT pg_advisory_lock(4243, hashtext($1))", &[&key])
                        .await
                        .expect("locking this test run");
                    locked.send(()).ok();
                    drop_finished_runs(&admin).await;
                    // Holding the connection (its task runs on this thread) holds the lock.
                    std::future::pending::<()>().await;
                })
            })
            .expect("starting the run-lock thread");
        held.recv().expect("the run lock is taken");
        run
    })
}

/// Drops the databases of test runs that have ended: a `test_<run>_…` database whose run lock
/// is free, and the older unprefixed `test_<uuid>` ones nobody is connected to.
async fn drop_finished_runs(admin: &tokio_postgres::Client) {
    let Ok(rows) = admin
        .query(
            "SELECT datname FROM pg_database WHERE datname LIKE 'test\\_%'
             AND NOT EXISTS (SELECT 1 FROM pg_stat_activity s WHERE s.datname = pg_database.datname)",
            &[],
        )
        .await
    else {
        return;
    };
    let probe = admin_client().await;
    for row in rows {
        let database: String = row.get(0);
        let ended = match database
            .strip_prefix("test_")
            .and_then(|r| r.split_once('_'))
        {
            Some((run, _)) => {
                let free: bool = probe
                    .query_one("SELECT pg_try_advisory_lock(4243, hashtext($1))", &[&run])
                    .await
                    .map(|r| r.get(0))
                    .unwrap_or(false);
                if free {
                    probe
                        .execute("SELECT pg_advisory_unlock(4243, hashtext($1))", &[&run])
                        .await
                        .ok();
                }
                free
            }
            None => true,
        };
        if ended
            && probe
                .batch_execute(&format!("DROP DATABASE IF EXISTS {database}"))
                .await
                .is_ok()
        {
            std::fs::remove_file(signing_key_file(&database)).ok();
        }
    }
}

/// A test database's signing key lives in Cargo's scratch directory for integration tests,
/// inside this checkout's `target/`: a key outlives its test (the database does too, until a
/// later run drops both), and a clone that is deleted takes its keys with it instead of
/// leaving them in the shared temp directory.
fn signing_key_file(database: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("signing-keys")
        .join(database)
}

/// The migrated template every test database is cloned from; its name carries a hash of the
/// migrations, so a changed migration gets a new template.
async fn template_database() -> &'static str {
    static TEMPLATE: OnceCell<String> = OnceCell::const_new();
    TEMPLATE
        .get_or_init(|| async {
            let mut text = String::new();
            for set in lectern_migrate::ALL {
                for m in set.migrations {
                    text.push_str(m.sql);
                }
            }
            text.push_str(include_str!("../../shared/src/migrate.rs"));
            let name = format!(
                "lectern_tmpl_{}",
                &lectern_shared::tokens::sha256_hex(text.as_bytes())[..12]
            );
            // Another test process may be creating it: serialise on an advisory lock.
            let admin = admin_client().await;
            admin
                .execute("SELECT pg_advisory_lock(4242)", &[])
                .await
                .unwrap();
            let exists = admin
                .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&name])
                .await
                .unwrap()
                .is_some();
            if !exists {
                admin
                    .batch_execute(&format!("CREATE DATABASE {name}_new"))
                    .await
                    .unwrap();
                let url = with_database(&env("DATABASE_URL"), &format!("{name}_new"));
                let pool = lectern_shared::db::pool(
                    &lectern_shared::db::DbConfig::from_url(&url, 1).unwrap(),
                )
                .unwrap();
                lectern_migrate::run(&pool)
                    .await
                    .expect("migrating the template database");
                pool.close();
                drop(pool);
                admin
                    .batch_execute(&format!("ALTER DATABASE {name}_new RENAME TO {name}"))
                    .await
                    .unwrap();
            }
            admin
                .execute("SELECT pg_advisory_unlock(4242)", &[])
                .await
                .unwrap();
            name
        })
        .await
}

/// A response as a client sees it.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
    pub text: String,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The fields a problem document names.
    pub fn error_fields(&self) -> Vec<String> {
        self.body["errors"]
            .as_array()
            .map(|e| {
                e.iter()
                    .filter_map(|e| e["field"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    }

    #[track_caller]
    pub fn assert_problem(&self, status: u16) -> &Self {
        assert_eq!(
            self.status.as_u16(),
            status,
            "unexpected status; body: {}",
            self.text
        );
        assert_eq!(
            self.header("content-type"),
            Some("application/problem+json"),
            "body: {}",
            self.text
        );
        assert_eq!(self.body["status"], status);
        assert!(
            self.body["title"].is_string()
                && self.body["type"].is_string()
                && self.body["detail"].is_string()
        );
        self
    }
}

/// One sent mail, read back from the emulator.
#[derive(Debug, Clone)]
pub struct Mail {
    pub to: Vec<String>,
    pub subject: String,
    pub body: String,
}

impl Mail {
    /// The token at the end of the first link to `path` in the mail.
    pub fn token_after(&self, marker: &str) -> String {
        let start = self
            .body
            .find(marker)
            .unwrap_or_else(|| panic!("no {marker} in mail: {}", self.body))
            + marker.len();
        self.body[start..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
            .collect()
    }
}

pub struct TestApp {
    pub stack: Stack,
    pub gateway: Router,
    pub database: String,
}

/// A signed-in user.
#[derive(Debug, Clone)]
pub struct Session {
    pub email: String,
    pub access_token: String,
    pub refresh_token: String,
    pub session_id: String,
}

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_with(&[]).await
    }

    /// A stack whose functions see `overrides` in their environment.
    pub async fn spawn_with(overrides: &[(&str, &str)]) -> Self {
        let template = template_database().await;
        let database = format!("test_{}_{}", this_run(), Uuid::new_v4().simple());
        admin_client()
            .await
            .batch_execute(&format!("CREATE DATABASE {database} TEMPLATE {template}"))
            .await
            .expect("cloning the template database");
        let stack_name = format!("t{}", &Uuid::new_v4().simple().to_string()[..12]);
        let mut overrides: HashMap<String, String> = overrides
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        overrides
            .entry("AUTH_MIN_RESPONSE_MS".into())
            .or_insert_with(|| "0".into());
        let config = DevstackConfig {
            database_url: with_database(&env("DATABASE_URL"), &database),
            aws: AwsSettings {
                endpoint_url: Some(env("AWS_ENDPOINT_URL")),
            },
            stack: stack_name,
            port: 0,
            public_base_url: "http://lectern.test".into(),
            mail_from: "no-reply@lectern.test".into(),
            signing_key_file: signing_key_file(&database),
            template: workspace_root().join("template.yaml"),
            parameters: HashMap::from([
                ("Stage".into(), "local".into()),
                ("PublicBaseUrl".into(), "http://lectern.test".into()),
                ("MailFrom".into(), "no-reply@lectern.test".into()),
            ]),
            overrides,
            pool_size: 4,
        };
        let stack = Stack::start(config).await.expect("starting the stack");
        let gateway = stack.gateway().expect("building the gateway");
        Self {
            stack,
            gateway,
            database,
        }
    }

    pub async fn db(&self) -> deadpool_postgres::Client {
        self.stack.pool.get().await.expect("a database connection")
    }

    /// Sends a request through the gateway, from `ip`.
    pub async fn send_raw(&self, request: Request<Body>, ip: [u8; 4]) -> Reply {
        let mut request = request;
        request
            .extensions_mut()
            .insert(ConnectInfo(SocketAddr::from((ip, 40000))));
        let response = self
            .gateway
            .clone()
            .oneshot(request)
            .await
            .expect("the gateway answers");
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response
            .into_body()
            .collect()
            .await
            .expect("a body")
            .to_bytes();
        let text = String::from_utf8_lossy(&bytes).to_string();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Reply {
            status,
            headers,
            body,
            text,
        }
    }

    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        token: Option<&str>,
    ) -> Reply {
        self.call_from(method, path, body, token, [10, 0, 0, 1])
            .await
    }

    pub async fn call_from(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        token: Option<&str>,
        ip: [u8; 4],
    ) -> Reply {
        let mut builder = Request::builder()
            .method(method)
            .uri(path)
            .header("user-agent", "lectern-tests/1.0");
        if let Some(token) = token {
            builder = builder.header("authorization", format!("Bearer {token}"));
        }
        let request = match body {
            Some(body) => builder
                .header("content-type", "application/json")
                .body(Body::from(body.to_string())),
            None => builder.body(Body::empty()),
        }
        .unwrap();
        self.send_raw(request, ip).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Reply {
        self.call(Method::POST, path, Some(body), None).await
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Reply {
        self.call(Method::GET, path, None, token).await
    }

    /// Every item of every page of the list at `uri` (which has a query already), following
    /// `next_cursor`; each page must answer 200.
    pub async fn all_pages(&self, token: &str, uri: &str) -> Vec<Value> {
        let mut items = Vec::new();
        let mut next = uri.to_string();
        loop {
            let page = self.get(&next, Some(token)).await;
            assert_eq!(page.status, StatusCode::OK, "{}", page.text);
            items.extend(page.body["data"].as_array().unwrap().iter().cloned());
            match page.body["next_cursor"].as_str() {
                Some(cursor) => next = format!("{uri}&cursor={cursor}"),
                None => return items,
            }
        }
    }

    /// The auth service's id of the account with `email`.
    pub async fn user_id(&self, email: &str) -> Uuid {
        self.db()
            .await
            .query_one("SELECT id FROM auth.users WHERE email = $1", &[&email])
            .await
            .expect("the account exists")
            .get(0)
    }

    /// A unique address for this test.
    pub fn email(&self, name: &str) -> String {
        format!(
            "{name}.{}@example.com",
            &Uuid::new_v4().simple().to_string()[..10]
        )
    }

    pub async fn signup(&self, email: &str) -> Reply {
        self.post(
            "/api/v1/auth/signup",
            serde_json::json!({ "email": email, "password": PASSWORD, "first_name": "Ada", "last_name": "Lovelace" }),
        )
        .await
    }

    pub async fn login(&self, email: &str, password: &str) -> Reply {
        self.post(
            "/api/v1/auth/login",
            serde_json::json!({ "email": email, "password": password }),
        )
        .await
    }

    /// Signs a new user up and in.
    pub async fn signed_in_user(&self, name: &str) -> Session {
        let email = self.email(name);
        assert_eq!(self.signup(&email).await.status, StatusCode::ACCEPTED);
        let reply = self.login(&email, PASSWORD).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
        Session {
            email,
            access_token: reply.body["access_token"].as_str().unwrap().to_string(),
            refresh_token: reply.body["refresh_token"].as_str().unwrap().to_string(),
            session_id: reply.body["session_id"].as_str().unwrap().to_string(),
        }
    }

    /// Every mail the emulator holds for `to`, oldest first.
    pub async fn mails_to(&self, to: &str) -> Vec<Mail> {
        let data = emulator_state().await;
        data["ses"]["Message"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|m| {
                let destinations = &m["destinations"];
                let to_list: Vec<String> = destinations["ToAddresses"]
                    .as_array()
                    .or_else(|| destinations.as_array())
                    .into_iter()
                    .flatten()
                    .filter_map(|a| a.as_str().map(str::to_string))
                    .collect();
                to_list.iter().any(|a| a == to).then(|| Mail {
                    to: to_list,
                    subject: m["subject"].as_str().unwrap_or_default().to_string(),
                    body: m["body"].as_str().unwrap_or_default().to_string(),
                })
            })
            .collect()
    }

    /// The newest mail to `to`, waiting briefly for it.
    pub async fn last_mail_to(&self, to: &str) -> Mail {
        for _ in 0..20 {
            if let Some(mail) = self.mails_to(to).await.pop() {
                return mail;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("no mail reached {to}");
    }

    /// Delivers what is waiting on the queue `queue` to its worker, as Lambda would.
    pub async fn drain_queue(&self, queue: &str) -> usize {
        let mut total = 0;
        loop {
            let n = self
                .stack
                .poll_once(queue, Duration::from_secs(1))
                .await
                .expect("polling the queue");
            if n == 0 {
                return total;
            }
            total += n;
        }
    }
}

// Helpers for requests `post` cannot make and for the tokens a test forges.
impl TestApp {
    /// POSTs `body` byte for byte as `content_type`: malformed JSON, other media types.
    pub async fn post_raw(&self, path: &str, content_type: &str, body: impl Into<Body>) -> Reply {
        let request = Request::builder()
            .method(Method::POST)
            .uri(path)
            .header("user-agent", "lectern-tests/1.0")
            .header("content-type", content_type)
            .body(body.into())
            .unwrap();
        self.send_raw(request, [10, 0, 0, 1]).await
    }

    /// Signs an existing user in once more: another device, another session.
    pub async fn sign_in(&self, email: &str, password: &str) -> Session {
        let reply = self.login(email, password).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
        Session {
            email: email.to_string(),
            access_token: reply.body["access_token"].as_str().unwrap().to_string(),
            refresh_token: reply.body["refresh_token"].as_str().unwrap().to_string(),
            session_id: reply.body["session_id"].as_str().unwrap().to_string(),
        }
    }

    /// The environment the stack gives the function `binary` (`auth`, `auth-worker`, …), to
    /// build one of its parts by hand with a variable changed.
    pub fn function_env(&self, binary: &str) -> HashMap<String, String> {
        self.stack
            .function_envs()
            .into_iter()
            .find(|(name, _)| name == binary)
            .map(|(_, env)| {
                env.to_env_file()
                    .lines()
                    .filter_map(|line| line.split_once('='))
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect()
            })
            .unwrap_or_else(|| panic!("the template has no function {binary}"))
    }

    /// The key this stack signs access tokens with, to forge tokens as an attacker with the
    /// key (or a test of the claims) would.
    pub fn signing_key(&self) -> lectern_shared::jwt::SigningKey {
        let encoded = std::fs::read_to_string(&self.stack.config.signing_key_file)
            .expect("reading the stack's signing key");
        lectern_shared::jwt::SigningKey::from_base64(&encoded).expect("a usable signing key")
    }
}

/// The emulator's whole state (`/moto-api/data.json`). Moto answers a 500 now and then while
/// other tests write to it (a DynamoDB item changes between its serialisability check and the
/// final `json.dumps`); a read a moment later succeeds.
async fn emulator_state() -> Value {
    let url = format!("{}/moto-api/data.json", env("AWS_ENDPOINT_URL"));
    let mut failure = String::new();
    for attempt in 0..60u64 {
        match reqwest::get(&url).await {
            Ok(response) if response.status().is_success() => match response.json().await {
                Ok(data) => return data,
                Err(err) => failure = err.to_string(),
            },
            Ok(response) => failure = format!("status {}", response.status()),
            Err(err) => failure = err.to_string(),
        }
        tokio::time::sleep(Duration::from_millis(50 + 10 * attempt.min(20))).await;
    }
    panic!("the emulator's state could not be read: {failure}");
}

// Users with roles, and letting events settle.
impl TestApp {
    /// The number a `SELECT count(*) …` answers.
    pub async fn count(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> i64 {
        self.db().await.query_one(sql, params).await.unwrap().get(0)
    }

    /// How many `event_type` events `schema`'s outbox holds unpublished.
    pub async fn unpublished(&self, schema: &str, event_type: &str) -> i64 {
        let sql = format!(
            "SELECT count(*) FROM {schema}.outbox WHERE type = $1 AND published_at IS NULL"
        );
        self.count(&sql, &[&event_type]).await
    }

    /// Delivers every queued event to its worker, until every queue is empty: what the
    /// devstack's pollers do in the background.
    pub async fn settle(&self) {
        let queues: Vec<String> = self
            .stack
            .template
            .functions()
            .into_iter()
            .flat_map(|f| f.queues)
            .collect();
        loop {
            let mut delivered = 0;
            for queue in &queues {
                delivered += self.drain_queue(queue).await;
            }
            if delivered == 0 {
                return;
            }
        }
    }

    /// Trades the session's refresh token for new tokens (which carry the current access).
    pub async fn refresh(&self, session: &Session) -> Session {
        let reply = self
            .post(
                "/api/v1/auth/refresh",
                serde_json::json!({ "refresh_token": session.refresh_token }),
            )
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
        Session {
            email: session.email.clone(),
            access_token: reply.body["access_token"].as_str().unwrap().to_string(),
            refresh_token: reply.body["refresh_token"].as_str().unwrap().to_string(),
            session_id: session.session_id.clone(),
        }
    }

    /// A signed-up user (with the default Viewer role), signed in with a token that carries
    /// their access.
    pub async fn viewer(&self, name: &str) -> Session {
        let session = self.signed_in_user(name).await;
        self.settle().await;
        self.refresh(&session).await
    }

    /// A signed-up user who also holds the system role `role` (Admin, Editor, Moderator,
    /// Viewer), granted the way an operator bootstraps the first Admin.
    pub async fn user_with_role(&self, name: &str, role: &str) -> Session {
        let session = self.signed_in_user(name).await;
        self.settle().await;
        lectern_users::bootstrap::grant_role(&self.stack.users, &session.email, role)
            .await
            .expect("granting the role");
        self.settle().await;
        self.refresh(&session).await
    }

    pub async fn admin(&self, name: &str) -> Session {
        self.user_with_role(name, "Admin").await
    }

    /// The local service credential for `/internal/*` routes.
    pub fn service_token(&self) -> String {
        self.stack.config.overrides["INTERNAL_API_TOKEN"].clone()
    }

    /// PUTs `body` with a bearer token.
    pub async fn put(&self, path: &str, body: Value, token: &str) -> Reply {
        self.call(Method::PUT, path, Some(body), Some(token)).await
    }

    /// POSTs `body` with a bearer token.
    pub async fn post_as(&self, path: &str, body: Value, token: &str) -> Reply {
        self.call(Method::POST, path, Some(body), Some(token)).await
    }

    pub async fn delete(&self, path: &str, token: &str) -> Reply {
        self.call(Method::DELETE, path, None, Some(token)).await
    }
}
