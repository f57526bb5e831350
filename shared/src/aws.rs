//! AWS clients from one configuration load per cold start.
//!
//! `AWS_ENDPOINT_URL` points every client at a local emulator (moto) for the devstack and
//! the tests; in AWS it is unset and the SDK's own resolution applies. The HTTP client uses
//! rustls with ring, the same TLS stack as the database pool, so a function links one.

use aws_config::{BehaviorVersion, SdkConfig};
use aws_smithy_http_client::{
    Builder,
    tls::{self, rustls_provider::CryptoMode},
};

use crate::config::{self, Env};

#[derive(Debug, Clone, Default)]
pub struct AwsSettings {
    /// An endpoint override for every service (the emulator), from `AWS_ENDPOINT_URL`.
    pub endpoint_url: Option<String>,
}

impl AwsSettings {
    pub fn from_env(env: &dyn Env) -> Self {
        Self {
            endpoint_url: config::optional(env, "AWS_ENDPOINT_URL"),
        }
    }
}

/// Loads the shared SDK configuration (region, credentials, endpoint) once.
pub async fn load(settings: &AwsSettings) -> SdkConfig {
    let http_client = Builder::new()
        .tls_provider(tls::Provider::Rustls(CryptoMode::Ring))
        .build_https();
    let mut loader = aws_config::defaults(BehaviorVersion::latest()).http_client(http_client);
    if let Some(endpoint) = &settings.endpoint_url {
        loader = loader.endpoint_url(endpoint);
    }
    loader.load().await
}
