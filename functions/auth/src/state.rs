//! Everything a request needs, built once per cold start.

use std::sync::Arc;

use anyhow::Context;
use axum::extract::FromRef;
use lectern_shared::{
    aws,
    db::{self, Pool},
    events::{EventBridgeClient, EventPublisher, Outbox},
    jwt::{JwtVerifier, SigningKey, TokenIssuer},
};

use crate::{
    config::{AuthConfig, SigningKeySource},
    mail::Mailer,
    throttle::Throttle,
};

pub const SCHEMA: &str = "auth";
pub const EVENT_SOURCE: &str = "lectern.auth";

#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

pub struct Inner {
    pub config: AuthConfig,
    pub pool: Pool,
    pub issuer: TokenIssuer,
    pub verifier: Arc<JwtVerifier>,
    pub outbox: Outbox,
    pub throttle: Throttle,
    pub mailer: Mailer,
}

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.inner
    }
}

impl FromRef<AppState> for Arc<JwtVerifier> {
    fn from_ref(state: &AppState) -> Self {
        state.verifier.clone()
    }
}

async fn load_signing_key(
    source: &SigningKeySource,
    sdk: &aws_config::SdkConfig,
) -> anyhow::Result<SigningKey> {
    let encoded = match source {
        SigningKeySource::Inline(secret) => secret.expose().clone(),
        SigningKeySource::File(path) => std::fs::read_to_string(path)
            .with_context(|| format!("reading JWT_SIGNING_KEY_FILE {path}"))?,
        SigningKeySource::SecretsManager(arn) => aws_sdk_secretsmanager::Client::new(sdk)
            .get_secret_value()
            .secret_id(arn)
            .send()
            .await
            .context("reading the JWT signing key from Secrets Manager")?
            .secret_string()
            .context("the JWT signing key secret has no string value")?
            .to_string(),
    };
    SigningKey::from_base64(&encoded)
        .map_err(|e| anyhow::anyhow!("the JWT signing key is unusable: {e}"))
}

impl AppState {
    /// Builds clients from one AWS configuration load. The pool connects lazily.
    pub async fn build(config: AuthConfig) -> anyhow::Result<Self> {
        let sdk = aws::load(&config.aws).await;
        Self::build_with(config, &sdk).await
    }

    pub async fn build_with(
        config: AuthConfig,
        sdk: &aws_config::SdkConfig,
    ) -> anyhow::Result<Self> {
        let key = load_signing_key(&config.signing_key, sdk).await?;
        let issuer = TokenIssuer::new(
            key,
            config.parties.clone(),
            config.access_token_ttl.as_secs() as i64,
        );
        let verifier = Arc::new(issuer.verifier(config.previous_public_keys.clone()));
        let pool = db::pool(&config.db)?;
        let outbox = Outbox::new(
            SCHEMA,
            EventPublisher::new(EventBridgeClient::new(sdk), config.event_bus.clone()),
            pool.clone(),
        );
        let throttle = Throttle::new(
            aws_sdk_dynamodb::Client::new(sdk),
            config.throttle_table.clone(),
        );
        let mailer = Mailer::new(
            aws_sdk_sesv2::Client::new(sdk),
            config.mail_from.clone(),
            config.public_base_url.clone(),
        );
        Ok(Self {
            inner: Arc::new(Inner {
                config,
                pool,
                issuer,
                verifier,
                outbox,
                throttle,
                mailer,
            }),
        })
    }
}
