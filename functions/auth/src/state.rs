//! Everything a request needs, built once per cold start. The AWS clients (DynamoDB for the
//! throttle, SES for mail, EventBridge for the outbox) are made when a request first uses
//! them, and the signing key is read when the first token is signed ([`Signer`]), so init and
//! the requests that only read never load the AWS configuration.

use std::sync::Arc;

use anyhow::Context;
use axum::extract::FromRef;
use lectern_shared::{
    ApiResult,
    aws::LazySdk,
    db::{self, Pool},
    events::{EventPublisher, Outbox},
    jwt::{JwtVerifier, SigningKey, TokenIssuer, TokenParties},
};
use tokio::sync::OnceCell;

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
    pub signer: Signer,
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

/// Signs access tokens with the signing key, read once: at init when auth verifies with its
/// own key, or when the first token is signed when it verifies with `JWT_PUBLIC_KEYS`
/// ([`AuthConfig::public_keys`]). Then init, and every request that only verifies a token
/// (`me`, logout, the sessions list, JWKS), never read it: in AWS that read is a Secrets
/// Manager call.
pub struct Signer {
    source: SigningKeySource,
    sdk: LazySdk,
    parties: TokenParties,
    ttl_secs: i64,
    /// The verifier built from `JWT_PUBLIC_KEYS`: a key read later must be one it accepts.
    verifier: Arc<JwtVerifier>,
    issuer: OnceCell<TokenIssuer>,
}

impl Signer {
    /// The issuer, reading the signing key if no token was signed yet. A key whose public key
    /// is not in `JWT_PUBLIC_KEYS` is refused (a 500 and an error logged): the tokens it
    /// signed would verify nowhere. A failed read is tried again by the next request.
    pub async fn issuer(&self) -> ApiResult<&TokenIssuer> {
        let issuer = self
            .issuer
            .get_or_try_init(|| async {
                let key = load_signing_key(&self.source, &self.sdk).await?;
                let public = key.public_key();
                anyhow::ensure!(
                    self.verifier.accepts(&public),
                    "the JWT signing key (kid {}) is not among JWT_PUBLIC_KEYS: tokens it signed would not verify",
                    public.kid()
                );
                Ok(TokenIssuer::new(key, self.parties.clone(), self.ttl_secs))
            })
            .await?;
        Ok(issuer)
    }
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
        let ttl_secs = config.access_token_ttl.as_secs() as i64;
        let previous = config.previous_public_keys.iter().cloned();
        let (verifier, issuer) = if config.public_keys.is_empty() {
            let key = load_signing_key(&config.signing_key, &sdk).await?;
            let issuer = TokenIssuer::new(key, config.parties.clone(), ttl_secs);
            (issuer.verifier(previous), OnceCell::new_with(Some(issuer)))
        } else {
            let keys = config.public_keys.iter().cloned().chain(previous);
            (
                JwtVerifier::new(keys, config.parties.clone()),
                OnceCell::new(),
            )
        };
        let verifier = Arc::new(verifier);
        let signer = Signer {
            source: config.signing_key.clone(),
            sdk: sdk.clone(),
            parties: config.parties.clone(),
            ttl_secs,
            verifier: verifier.clone(),
            issuer,
        };
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
                signer,
                verifier,
                outbox,
                throttle,
                mailer,
            }),
        })
    }
}
