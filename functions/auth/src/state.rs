//! Everything a request needs, built once per cold start. The AWS clients (DynamoDB for the
//! throttle, SES for mail, EventBridge for the outbox) are made when a request first uses
//! them, so init and the requests that only read never load the AWS configuration.

use std::sync::Arc;

use anyhow::Context;
use axum::extract::FromRef;
use lectern_shared::{
    aws::LazySdk,
    db::{self, Pool},
    events::{EventPublisher, Outbox},
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

/// The signing key. Only a key kept in Secrets Manager loads the AWS configuration at init
/// (the clients made later share that load).
async fn load_signing_key(source: &SigningKeySource, sdk: &LazySdk) -> anyhow::Result<SigningKey> {
    let encoded = match source {
        SigningKeySource::Inline(secret) => secret.expose().clone(),
        SigningKeySource::File(path) => std::fs::read_to_string(path)
            .with_context(|| format!("reading JWT_SIGNING_KEY_FILE {path}"))?,
        SigningKeySource::SecretsManager(arn) => {
            aws_sdk_secretsmanager::Client::new(sdk.config().await)
                .get_secret_value()
                .secret_id(arn)
                .send()
                .await
                .context("reading the JWT signing key from Secrets Manager")?
                .secret_string()
                .context("the JWT signing key secret has no string value")?
                .to_string()
        }
    };
    SigningKey::from_base64(&encoded)
        .map_err(|e| anyhow::anyhow!("the JWT signing key is unusable: {e}"))
}

impl AppState {
    /// The Lambda binary's state: the pool connects and the AWS clients are made (from one
    /// AWS configuration load, `config.aws`) when a request first needs them.
    pub async fn build(config: AuthConfig) -> anyhow::Result<Self> {
        let sdk = LazySdk::new(config.aws.clone());
        Self::build_with(config, sdk).await
    }

    /// The state with an AWS configuration of the caller's: a loaded `&SdkConfig` (the
    /// devstack and the tests share one) or a [`LazySdk`].
    pub async fn build_with(config: AuthConfig, sdk: impl Into<LazySdk>) -> anyhow::Result<Self> {
        let sdk = sdk.into();
        let key = load_signing_key(&config.signing_key, &sdk).await?;
        let issuer = TokenIssuer::new(
            key,
            config.parties.clone(),
            config.access_token_ttl.as_secs() as i64,
        );
        let verifier = Arc::new(issuer.verifier(config.previous_public_keys.clone()));
        let pool = db::pool(&config.db)?;
        let outbox = Outbox::new(
            SCHEMA,
            EventPublisher::lazy(sdk.clone(), config.event_bus.clone()),
            pool.clone(),
        );
        let throttle = Throttle::lazy(sdk.clone(), config.throttle_table.clone());
        let mailer = Mailer::lazy(
            sdk,
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
