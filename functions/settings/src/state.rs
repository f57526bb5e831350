//! Everything a settings request needs, built once per cold start.

use std::sync::Arc;

use axum::extract::FromRef;
use lectern_shared::{aws, config::Env, jwt::JwtVerifier, service::ServiceCore};

pub const SCHEMA: &str = "settings";
pub const EVENT_SOURCE: &str = "lectern.settings";

/// The pool, the token verifier and the settings outbox (`state.pool`, `state.outbox`).
#[derive(Clone)]
pub struct AppState {
    inner: Arc<ServiceCore>,
}

impl std::ops::Deref for AppState {
    type Target = ServiceCore;
    fn deref(&self) -> &ServiceCore {
        &self.inner
    }
}

impl FromRef<AppState> for Arc<JwtVerifier> {
    fn from_ref(state: &AppState) -> Self {
        state.verifier.clone()
    }
}

impl AppState {
    /// `DATABASE_*`, `EVENT_BUS_NAME` and `JWT_PUBLIC_KEYS`/`JWT_ISSUER`/`JWT_AUDIENCE`. The
    /// pool connects lazily.
    pub fn from_env(env: &dyn Env, sdk: &aws_config::SdkConfig) -> anyhow::Result<Self> {
        Ok(Self {
            inner: Arc::new(ServiceCore::from_env(env, sdk, SCHEMA)?),
        })
    }

    /// Loads the AWS configuration, then [`AppState::from_env`].
    pub async fn load(env: &dyn Env) -> anyhow::Result<Self> {
        let sdk = aws::load(&aws::AwsSettings::from_env(env)).await;
        Self::from_env(env, &sdk)
    }
}
