//! The devstack: the whole platform in one local process.
//!
//! It reads template.yaml, creates the same AWS resources in the emulator, migrates the
//! database, and then plays the parts AWS plays: API Gateway (each route of the template goes
//! to the function that declares it), the SQS event source mappings (queues polled, real SQS
//! batch events handed to the workers, only successes deleted so redrive works), and the
//! schedule rules (which the emulator never fires). The tests start the same stack.

pub mod gateway;
pub mod provision;
pub mod template;

use std::{collections::HashMap, path::PathBuf, sync::Arc, time::Duration};

use anyhow::Context;
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use aws_sdk_sqs::types::{DeleteMessageBatchRequestEntry, MessageSystemAttributeName};
use axum::Router;
use futures::future::BoxFuture;
use lectern_shared::aws::SdkConfig;
use lectern_shared::{
    aws::AwsSettings,
    config::{Env, ProcessEnv},
    db::{self, DbConfig, Pool},
    jwt::SigningKey,
    sqs::Consumer,
};

use crate::{
    provision::{Provisioned, provision},
    template::{EnvValue, FunctionSpec, Template},
};

/// What the devstack needs to know beyond the template.
#[derive(Debug, Clone)]
pub struct DevstackConfig {
    pub database_url: String,
    pub aws: AwsSettings,
    /// Plays the part of the CloudFormation stack name in every resource name.
    pub stack: String,
    pub port: u16,
    pub public_base_url: String,
    pub mail_from: String,
    pub signing_key_file: PathBuf,
    pub template: PathBuf,
    /// Values for the template's parameters that matter locally.
    pub parameters: HashMap<String, String>,
    /// Variables every function gets, over the template's and the process's (tests use this
    /// to shorten windows and limits).
    pub overrides: HashMap<String, String>,
    pub pool_size: usize,
}

impl DevstackConfig {
    pub fn from_env(env: &dyn Env) -> anyhow::Result<Self> {
        let root = workspace_root();
        let port: u16 = lectern_shared::config::parsed_or(env, "LECTERN_PORT", 3000)?;
        let state_dir = env
            .get("LECTERN_STATE_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| root.join(".local"));
        let public_base_url = env
            .get("PUBLIC_BASE_URL")
            .unwrap_or_else(|| format!("http://127.0.0.1:{port}"));
        let mail_from = env
            .get("MAIL_FROM")
            .unwrap_or_else(|| "no-reply@lectern.local".into());
        Ok(Self {
            database_url: lectern_shared::config::required(env, "DATABASE_URL")?,
            aws: AwsSettings::from_env(env),
            stack: env
                .get("LECTERN_STACK")
                .unwrap_or_else(|| "lectern-local".into()),
            port,
            parameters: HashMap::from([
                ("Stage".into(), "local".into()),
                ("PublicBaseUrl".into(), public_base_url.clone()),
                ("MailFrom".into(), mail_from.clone()),
                ("LogLevel".into(), "INFO".into()),
            ]),
            public_base_url,
            mail_from,
            signing_key_file: env
                .get("JWT_SIGNING_KEY_FILE")
                .map(PathBuf::from)
                .unwrap_or_else(|| state_dir.join("jwt-signing-key")),
            template: root.join("template.yaml"),
            overrides: HashMap::new(),
            pool_size: 8,
        })
    }
}

/// The repository root (the devstack crate sits at `infra/devstack`).
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("the workspace root exists")
}

/// Creates the local signing key on first start (0600), like a secret an operator sets once.
pub fn ensure_signing_key(path: &std::path::Path) -> anyhow::Result<()> {
    if path.exists() {
        return Ok(());
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(path, SigningKey::generate().to_base64())?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(())
}

/// A function's environment as AWS would give it: the devstack's own settings (database,
/// signing key, overrides), then the template's variables with `!Ref`s resolved to the
/// provisioned names and local parameters, then the process environment for anything the
/// template leaves unset (the emulator endpoint, optional tuning).
pub struct FunctionEnv {
    forced: HashMap<String, String>,
    template: HashMap<String, String>,
}

impl FunctionEnv {
    /// The variables as `KEY=value` lines, for `cargo lambda watch --env-file`, with the
    /// emulator settings from the process environment.
    pub fn to_env_file(&self) -> String {
        let mut vars: std::collections::BTreeMap<&str, String> = std::collections::BTreeMap::new();
        for (k, v) in self.template.iter().chain(self.forced.iter()) {
            vars.insert(k, v.clone());
        }
        for name in [
            "AWS_ENDPOINT_URL",
            "AWS_REGION",
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
        ] {
            if let Some(v) = ProcessEnv.get(name) {
                vars.insert(name, v);
            }
        }
        vars.iter()
            .filter(|(_, v)| !v.is_empty())
            .map(|(k, v)| format!("{k}={v}\n"))
            .collect()
    }
}

impl Env for FunctionEnv {
    fn get(&self, name: &str) -> Option<String> {
        self.forced
            .get(name)
            .or_else(|| self.template.get(name))
            .cloned()
            .or_else(|| ProcessEnv.get(name))
            .filter(|v| !v.is_empty())
    }
}

/// A worker's batch handler.
pub type BatchHandler = Arc<dyn Fn(SqsEvent) -> BoxFuture<'static, SqsBatchResponse> + Send + Sync>;

/// A schedule handler.
pub type TickHandler = Arc<dyn Fn() -> BoxFuture<'static, ()> + Send + Sync>;

/// The running platform.
#[derive(Clone)]
pub struct Stack {
    pub config: DevstackConfig,
    pub sdk: SdkConfig,
    pub pool: Pool,
    pub provisioned: Provisioned,
    pub template: Arc<Template>,
    pub auth: lectern_auth::AppState,
    pub auth_worker: lectern_auth::worker::Worker,
    pub users: lectern_users::AppState,
    pub users_worker: lectern_users::worker::Worker,
    pub settings: lectern_settings::AppState,
    pub settings_worker: lectern_settings::worker::Worker,
    pub content: lectern_content::AppState,
    pub content_worker: lectern_content::worker::Worker,
    pub scheduler: lectern_scheduler::Scheduler,
}

impl Stack {
    /// Provisions, migrates and builds every function's state.
    pub async fn start(mut config: DevstackConfig) -> anyhow::Result<Self> {
        let sdk = lectern_shared::aws::load(&config.aws).await;
        let template = Arc::new(Template::load(&config.template)?);
        let provisioned = provision(&sdk, &template, &config.stack, &config.mail_from)
            .await
            .context("creating the AWS resources in the emulator")?;
        let pool = db::pool(&DbConfig::from_url(&config.database_url, config.pool_size)?)?;
        lectern_migrate::run(&pool)
            .await
            .context("migrating the database")?;
        ensure_signing_key(&config.signing_key_file)?;
        // What AWS gets from the JwtPublicKeys parameter and IAM: the verifying key of the
        // local signing key, and a service credential for the /internal/* routes.
        let seed = std::fs::read_to_string(&config.signing_key_file)
            .context("reading the local signing key")?;
        let public_key = SigningKey::from_base64(&seed)
            .map_err(|e| anyhow::anyhow!("the local signing key is unusable: {e}"))?
            .public_key()
            .to_base64();
        config
            .overrides
            .entry("JWT_PUBLIC_KEYS".into())
            .or_insert(public_key);
        config
            .overrides
            .entry("INTERNAL_API_TOKEN".into())
            .or_insert_with(lectern_shared::tokens::generate);

        let stack_env = |binary: &str| -> anyhow::Result<FunctionEnv> {
            let spec = template
                .functions()
                .into_iter()
                .find(|f| f.binary == binary)
                .with_context(|| {
                    format!("template.yaml declares no function with binary {binary}")
                })?;
            Ok(function_env(&template, &spec, &provisioned, &config))
        };
        let auth_config = lectern_auth::AuthConfig::from_env(&stack_env("auth")?)?;
        let auth = lectern_auth::AppState::build_with(auth_config, &sdk).await?;
        let auth_worker = lectern_auth::worker::build(&stack_env("auth-worker")?, &sdk)?;
        let users_worker = Consumer::from_env_emitting(
            &stack_env("users-worker")?,
            &sdk,
            lectern_users::worker::UsersEvents,
        )?;
        let users = lectern_users::AppState::from_env(&stack_env("users")?, &sdk)?;
        let settings = lectern_settings::AppState::from_env(&stack_env("settings")?, &sdk)?;
        let settings_worker = Consumer::from_env(
            &stack_env("settings-worker")?,
            lectern_settings::worker::SettingsEvents,
        )?;
        let content = lectern_content::AppState::from_env(&stack_env("content")?, &sdk)?;
        let content_worker = Consumer::from_env(
            &stack_env("content-worker")?,
            lectern_content::worker::ContentEvents,
        )?;
        let scheduler = lectern_scheduler::Scheduler::from_env(&stack_env("scheduler")?).await?;
        Ok(Self {
            config,
            sdk,
            pool,
            provisioned,
            template,
            auth,
            auth_worker,
            users,
            users_worker,
            settings,
            settings_worker,
            content,
            content_worker,
            scheduler,
        })
    }

    /// Each function's environment as the template gives it here, by binary.
    pub fn function_envs(&self) -> Vec<(String, FunctionEnv)> {
        self.template
            .functions()
            .into_iter()
            .map(|f| {
                let env = function_env(&self.template, &f, &self.provisioned, &self.config);
                (f.binary, env)
            })
            .collect()
    }

    /// The HTTP routers, by function binary.
    pub fn routers(&self) -> HashMap<String, Router> {
        HashMap::from([
            ("auth".to_string(), lectern_auth::router(self.auth.clone())),
            (
                "users".to_string(),
                lectern_users::router(self.users.clone()),
            ),
            (
                "settings".to_string(),
                lectern_settings::router(self.settings.clone()),
            ),
            (
                "content".to_string(),
                lectern_content::router(self.content.clone()),
            ),
            ("openapi".to_string(), lectern_openapi::router()),
        ])
    }

    /// The batch handlers, by function binary.
    pub fn workers(&self) -> HashMap<String, BatchHandler> {
        let users = self.users_worker.clone();
        let users: BatchHandler = Arc::new(move |event| {
            let users = users.clone();
            Box::pin(async move { users.handle_batch(event).await })
        });
        let settings = self.settings_worker.clone();
        let settings: BatchHandler = Arc::new(move |event| {
            let settings = settings.clone();
            Box::pin(async move { settings.handle_batch(event).await })
        });
        let content = self.content_worker.clone();
        let content: BatchHandler = Arc::new(move |event| {
            let content = content.clone();
            Box::pin(async move { content.handle_batch(event).await })
        });
        let auth = self.auth_worker.clone();
        let auth: BatchHandler = Arc::new(move |event| {
            let auth = auth.clone();
            Box::pin(async move { auth.handle_batch(event).await })
        });
        HashMap::from([
            ("users-worker".to_string(), users),
            ("settings-worker".to_string(), settings),
            ("content-worker".to_string(), content),
            ("auth-worker".to_string(), auth),
        ])
    }

    /// The scheduled handlers, by function binary.
    pub fn ticks(&self) -> HashMap<String, TickHandler> {
        let scheduler = self.scheduler.clone();
        let tick: TickHandler = Arc::new(move || {
            let scheduler = scheduler.clone();
            Box::pin(async move {
                if let Err(err) = scheduler.tick().await {
                    tracing::error!(error = ?err, "the scheduler tick failed");
                }
            })
        });
        HashMap::from([("scheduler".to_string(), tick)])
    }

    /// API Gateway: the template's routes, each to its function's router.
    pub fn gateway(&self) -> anyhow::Result<Router> {
        gateway::router(&self.template.functions(), self.routers())
    }

    /// Receives one batch from the queue `queue_logical_id` and hands it to the worker that
    /// the template maps to it; deletes what did not fail. Answers how many messages came.
    pub async fn poll_once(&self, queue_logical_id: &str, wait: Duration) -> anyhow::Result<usize> {
        let (function, handler) = self
            .template
            .functions()
            .into_iter()
            .find(|f| f.queues.iter().any(|q| q == queue_logical_id))
            .and_then(|f| self.workers().remove(&f.binary).map(|h| (f, h)))
            .with_context(|| format!("no worker consumes {queue_logical_id}"))?;
        let queue = self
            .provisioned
            .queues
            .get(queue_logical_id)
            .context("the queue was not provisioned")?;
        deliver(
            &aws_sdk_sqs::Client::new(&self.sdk),
            queue,
            &function,
            &handler,
            wait,
        )
        .await
    }

    /// Runs the queue pollers and the schedules until the process ends.
    pub fn spawn_background(&self) {
        let sqs = aws_sdk_sqs::Client::new(&self.sdk);
        let workers = self.workers();
        let ticks = self.ticks();
        for function in self.template.functions() {
            if let Some(handler) = workers.get(&function.binary) {
                for queue in &function.queues {
                    let Some(queue) = self.provisioned.queues.get(queue).cloned() else {
                        continue;
                    };
                    let (sqs, handler, function) = (sqs.clone(), handler.clone(), function.clone());
                    tokio::spawn(async move {
                        loop {
                            if let Err(err) =
                                deliver(&sqs, &queue, &function, &handler, Duration::from_secs(5))
                                    .await
                            {
                                tracing::warn!(queue = %queue.name, error = ?err, "polling failed; retrying");
                                tokio::time::sleep(Duration::from_secs(2)).await;
                            }
                        }
                    });
                }
            }
            if let Some(tick) = ticks.get(&function.binary) {
                for schedule in &function.schedules {
                    let Some(period) = template::rate_seconds(schedule) else {
                        tracing::warn!(schedule, "only rate() schedules run locally");
                        continue;
                    };
                    let tick = tick.clone();
                    tokio::spawn(async move {
                        let mut interval = tokio::time::interval(Duration::from_secs(period));
                        loop {
                            interval.tick().await;
                            tick().await;
                        }
                    });
                }
            }
        }
    }
}

fn function_env(
    template: &Template,
    spec: &FunctionSpec,
    provisioned: &Provisioned,
    config: &DevstackConfig,
) -> FunctionEnv {
    let mut vars = HashMap::new();
    for (name, value) in template.function_env(&spec.logical_id) {
        let resolved = match value {
            EnvValue::Literal(v) => Some(v),
            EnvValue::Ref(r) if r == "EventBus" => Some(provisioned.event_bus.clone()),
            EnvValue::Ref(r) => provisioned
                .tables
                .get(&r)
                .cloned()
                .or_else(|| provisioned.queues.get(&r).map(|q| q.url.clone()))
                .or_else(|| config.parameters.get(&r).cloned()),
            EnvValue::Other => None,
        };
        if let Some(v) = resolved {
            vars.insert(name, v);
        }
    }
    let mut forced = config.overrides.clone();
    forced.insert(
        "JWT_SIGNING_KEY_FILE".into(),
        config.signing_key_file.display().to_string(),
    );
    forced.insert("DATABASE_URL".into(), config.database_url.clone());
    forced
        .entry("DATABASE_POOL_SIZE".into())
        .or_insert_with(|| config.pool_size.to_string());
    FunctionEnv {
        forced,
        template: vars,
    }
}

/// One receive → invoke → delete round, as Lambda's SQS event source mapping does it.
async fn deliver(
    sqs: &aws_sdk_sqs::Client,
    queue: &provision::Queue,
    function: &FunctionSpec,
    handler: &BatchHandler,
    wait: Duration,
) -> anyhow::Result<usize> {
    let received = sqs
        .receive_message()
        .queue_url(&queue.url)
        .max_number_of_messages(10)
        .wait_time_seconds(wait.as_secs() as i32)
        .message_system_attribute_names(MessageSystemAttributeName::All)
        .send()
        .await
        .context("receiving from SQS")?;
    let messages = received.messages.unwrap_or_default();
    if messages.is_empty() {
        return Ok(0);
    }
    let region = aws_sdk_sqs::config::Region::new("us-east-1");
    let mut event = SqsEvent::default();
    for m in &messages {
        let mut record = SqsMessage::default();
        record.message_id = m.message_id.clone();
        record.receipt_handle = m.receipt_handle.clone();
        record.body = m.body.clone();
        record.md5_of_body = m.md5_of_body.clone();
        record.attributes = m
            .attributes
            .clone()
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k.as_str().to_string(), v))
            .collect();
        record.event_source = Some("aws:sqs".into());
        record.event_source_arn = Some(queue.arn.clone());
        record.aws_region = Some(region.to_string());
        event.records.push(record);
    }
    let response = handler(event).await;
    let failed: std::collections::HashSet<String> = response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.clone())
        .collect();
    let entries: Vec<DeleteMessageBatchRequestEntry> = messages
        .iter()
        .filter(|m| !failed.contains(m.message_id.as_deref().unwrap_or_default()))
        .enumerate()
        .filter_map(|(i, m)| {
            DeleteMessageBatchRequestEntry::builder()
                .id(i.to_string())
                .receipt_handle(m.receipt_handle.clone()?)
                .build()
                .ok()
        })
        .collect();
    if !entries.is_empty() {
        sqs.delete_message_batch()
            .queue_url(&queue.url)
            .set_entries(Some(entries))
            .send()
            .await?;
    }
    if !failed.is_empty() {
        tracing::warn!(function = %function.binary, failed = failed.len(), "messages failed; SQS will redeliver them");
    }
    Ok(messages.len())
}
