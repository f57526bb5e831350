//! AWS clients from one configuration load per cold start — made when a request first needs
//! them, not at init.
//!
//! `AWS_ENDPOINT_URL` points every client at a local emulator (moto) for the devstack and
//! the tests; in AWS it is unset and the SDK's own resolution applies. The HTTP client uses
//! rustls with ring, the same TLS stack as the database pool, so a function links one.
//!
//! Loading the configuration builds the SDK's HTTPS client, and the first SDK client made
//! from it loads the platform's trust store: milliseconds that most requests (a token check,
//! a read) never need. The Lambda binaries therefore hold a [`LazySdk`] and [`LazyClient`]s,
//! which do that work on first use, once per process. The devstack, the tests and the
//! benchmarks load one [`SdkConfig`] up front with [`load`] and share it; a [`LazySdk`] made
//! from it ([`LazySdk::ready`], or `From<&SdkConfig>`) starts out loaded.

use std::sync::Arc;

use aws_credential_types::{
    Credentials,
    provider::{ProvideCredentials, SharedCredentialsProvider, error::CredentialsError, future},
};
use aws_sdk_eventbridge::config::{BehaviorVersion, Region};
use aws_smithy_http_client::{
    Builder,
    tls::{self, rustls_provider::CryptoMode},
};
pub use aws_types::SdkConfig;
use tokio::sync::OnceCell;

use crate::config::{self, Env};

/// Where the AWS clients go, read from the environment.
#[derive(Debug, Clone, Default)]
pub struct AwsSettings {
    /// An endpoint override for every service (the emulator), from `AWS_ENDPOINT_URL`.
    pub endpoint_url: Option<String>,
}

impl AwsSettings {
    /// `AWS_ENDPOINT_URL`, when set.
    pub fn from_env(env: &dyn Env) -> Self {
        Self {
            endpoint_url: config::optional(env, "AWS_ENDPOINT_URL"),
        }
    }
}

/// Loads the shared SDK configuration (region, credentials, endpoint) once.
///
/// Built from the environment Lambda gives every function (`AWS_REGION`, and the execution
/// role's `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`), which is also
/// what the devstack and the tests set. No profile files, SSO, STS or instance metadata: the
/// functions never need them, and leaving out `aws-config`'s provider chain (with the STS
/// client it links) keeps every bootstrap smaller (BENCHMARKS.md, *Size*). Retries, timeouts
/// and the identity cache are the SDK clients' defaults for the latest behaviour version.
pub async fn load(settings: &AwsSettings) -> SdkConfig {
    let http_client = Builder::new()
        .tls_provider(tls::Provider::Rustls(CryptoMode::Ring))
        .build_https();
    let region = ["AWS_REGION", "AWS_DEFAULT_REGION"]
        .into_iter()
        .find_map(|name| std::env::var(name).ok().filter(|r| !r.is_empty()))
        .map(Region::new);
    let mut config = SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .http_client(http_client)
        .region(region)
        .credentials_provider(SharedCredentialsProvider::new(EnvironmentCredentials));
    if let Some(endpoint) = &settings.endpoint_url {
        config = config.endpoint_url(endpoint);
    }
    config.build()
}

/// The execution role's credentials, as Lambda puts them in the environment; read on every
/// request for credentials, so the SDK's identity cache decides how long one set is used.
#[derive(Debug)]
struct EnvironmentCredentials;

impl EnvironmentCredentials {
    fn read() -> Result<Credentials, CredentialsError> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let key = var("AWS_ACCESS_KEY_ID")
            .ok_or_else(|| CredentialsError::not_loaded("AWS_ACCESS_KEY_ID is not set"))?;
        let secret = var("AWS_SECRET_ACCESS_KEY")
            .ok_or_else(|| CredentialsError::not_loaded("AWS_SECRET_ACCESS_KEY is not set"))?;
        Ok(Credentials::new(
            key,
            secret,
            var("AWS_SESSION_TOKEN"),
            None,
            "environment",
        ))
    }
}

impl ProvideCredentials for EnvironmentCredentials {
    fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        future::ProvideCredentials::ready(Self::read())
    }
}

/// The SDK configuration, loaded by [`load`] the first time a client needs it and shared by
/// every client made from it afterwards. Cheap to clone: clones share the one load.
#[derive(Clone)]
pub struct LazySdk {
    inner: Arc<LazySdkInner>,
}

struct LazySdkInner {
    settings: AwsSettings,
    config: OnceCell<SdkConfig>,
}

impl LazySdk {
    /// A configuration that `settings` will load on first use.
    pub fn new(settings: AwsSettings) -> Self {
        Self {
            inner: Arc::new(LazySdkInner {
                settings,
                config: OnceCell::new(),
            }),
        }
    }

    /// [`LazySdk::new`] with [`AwsSettings::from_env`]: what a Lambda binary holds.
    pub fn from_env(env: &dyn Env) -> Self {
        Self::new(AwsSettings::from_env(env))
    }

    /// A configuration loaded already (the devstack and the tests share one).
    pub fn ready(config: &SdkConfig) -> Self {
        Self {
            inner: Arc::new(LazySdkInner {
                settings: AwsSettings::default(),
                config: OnceCell::new_with(Some(config.clone())),
            }),
        }
    }

    /// The configuration, loading it if this is the first call. Concurrent first calls wait
    /// for one load.
    pub async fn config(&self) -> &SdkConfig {
        // Boxed: the load is a large future that runs once; inline, it would grow every
        // request future that might publish, and deepen their layout past the compiler's
        // default recursion limit.
        self.inner
            .config
            .get_or_init(|| Box::pin(load(&self.inner.settings)))
            .await
    }

    /// Whether the configuration has been loaded.
    pub fn is_loaded(&self) -> bool {
        self.inner.config.initialized()
    }
}

impl From<&SdkConfig> for LazySdk {
    fn from(config: &SdkConfig) -> Self {
        Self::ready(config)
    }
}

impl std::fmt::Debug for LazySdk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LazySdk")
            .field("settings", &self.inner.settings)
            .field("loaded", &self.is_loaded())
            .finish()
    }
}

/// One SDK client (`aws_sdk_eventbridge::Client`, `aws_sdk_dynamodb::Client`, ...), made from
/// a [`LazySdk`] on first use, or given ready-made. Cheap to clone: clones share the client.
pub struct LazyClient<C> {
    inner: Arc<Source<C>>,
}

enum Source<C> {
    Ready(C),
    Lazy {
        sdk: LazySdk,
        make: fn(&SdkConfig) -> C,
        client: OnceCell<C>,
    },
}

impl<C> LazyClient<C> {
    /// A client that `make` builds from `sdk`'s configuration on first use, e.g.
    /// `LazyClient::new(sdk, aws_sdk_dynamodb::Client::new)`.
    pub fn new(sdk: LazySdk, make: fn(&SdkConfig) -> C) -> Self {
        Self {
            inner: Arc::new(Source::Lazy {
                sdk,
                make,
                client: OnceCell::new(),
            }),
        }
    }

    /// A client built already.
    pub fn ready(client: C) -> Self {
        Self {
            inner: Arc::new(Source::Ready(client)),
        }
    }

    /// The client, making it (and loading the configuration) if this is the first call.
    pub async fn get(&self) -> &C {
        match &*self.inner {
            Source::Ready(client) => client,
            Source::Lazy { sdk, make, client } => {
                client
                    .get_or_init(|| async { make(sdk.config().await) })
                    .await
            }
        }
    }

    /// Whether the client exists yet.
    pub fn is_made(&self) -> bool {
        match &*self.inner {
            Source::Ready(_) => true,
            Source::Lazy { client, .. } => client.initialized(),
        }
    }
}

impl<C> Clone for LazyClient<C> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
        }
    }
}

impl<C> std::fmt::Debug for LazyClient<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LazyClient")
            .field("client", &std::any::type_name::<C>())
            .field("made", &self.is_made())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> AwsSettings {
        AwsSettings {
            endpoint_url: Some("http://127.0.0.1:9".into()),
        }
    }

    #[tokio::test]
    async fn nothing_is_loaded_or_made_before_first_use() {
        let sdk = LazySdk::new(settings());
        let client = LazyClient::new(sdk.clone(), aws_sdk_eventbridge::Client::new);
        let copy = client.clone();
        assert!(!sdk.is_loaded());
        assert!(!client.is_made());

        copy.get().await;
        assert!(sdk.is_loaded(), "the clone shares the configuration");
        assert!(client.is_made(), "the clone shares the client");
        assert_eq!(
            sdk.config().await.endpoint_url(),
            Some("http://127.0.0.1:9")
        );
    }

    #[tokio::test]
    async fn a_ready_configuration_is_not_loaded_again() {
        let config = SdkConfig::builder()
            .endpoint_url("http://127.0.0.1:7")
            .behavior_version(BehaviorVersion::latest())
            .build();
        let sdk = LazySdk::from(&config);
        assert!(sdk.is_loaded());
        assert_eq!(
            sdk.config().await.endpoint_url(),
            Some("http://127.0.0.1:7")
        );
        let ready = LazyClient::ready(aws_sdk_eventbridge::Client::new(&config));
        assert!(ready.is_made());
    }
}
