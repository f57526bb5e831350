//! Everything a settings request needs, built once per cold start.

use std::sync::Arc;

use axum::extract::FromRef;
use lectern_shared::{aws::LazySdk, config::Env, jwt::JwtVerifier, service::ServiceCore};

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
    /// pool connects lazily. `sdk` is an AWS configuration loaded already (the devstack and
    /// the tests share one).
    pub fn from_env(env: &dyn Env, sdk: &aws_types::SdkConfig) -> anyhow::Result<Self> {
        Self::with_sdk(env, LazySdk::ready(sdk))
    }

    /// [`AppState::from_env`] for the Lambda binary: nothing AWS is built at init; the AWS
    /// configuration loads when a request first publishes an event.
    pub async fn load(env: &dyn Env) -> anyhow::Result<Self> {
        Self::with_sdk(env, LazySdk::from_env(env))
    }

    fn with_sdk(env: &dyn Env, sdk: LazySdk) -> anyhow::Result<Self> {
        Ok(Self {
            inner: Arc::new(ServiceCore::from_env(env, sdk, SCHEMA)?),
        })
    }
}
