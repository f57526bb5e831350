//! Everything a content request needs, built once per cold start.

use std::sync::Arc;

use axum::extract::FromRef;
use lectern_shared::{
    aws, config::Env, internal::ServiceCredential, jwt::JwtVerifier, service::ServiceCore,
};

pub const SCHEMA: &str = "content";
pub const EVENT_SOURCE: &str = "lectern.content";

#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

/// The shared core (`state.pool`, `state.verifier`, `state.outbox`) and the credential other
/// services present on `/internal/*` locally.
pub struct Inner {
    core: ServiceCore,
    pub service: ServiceCredential,
}

impl std::ops::Deref for Inner {
    type Target = ServiceCore;
    fn deref(&self) -> &ServiceCore {
        &self.core
    }
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

impl FromRef<AppState> for ServiceCredential {
    fn from_ref(state: &AppState) -> Self {
        state.service.clone()
    }
}

impl AppState {
    /// `DATABASE_*`, `EVENT_BUS_NAME`, `JWT_PUBLIC_KEYS`/`JWT_ISSUER`/`JWT_AUDIENCE` and
    /// optionally `INTERNAL_API_TOKEN`. The pool connects lazily.
    pub fn from_env(env: &dyn Env, sdk: &aws_types::SdkConfig) -> anyhow::Result<Self> {
        Ok(Self {
            inner: Arc::new(Inner {
                core: ServiceCore::from_env(env, sdk, SCHEMA)?,
                service: ServiceCredential::from_env(env)?,
            }),
        })
    }

    /// [`AppState::from_env`] for the Lambda binary: nothing AWS is built at init; the AWS
    /// configuration loads when a request first publishes an event.
    pub async fn load(env: &dyn Env) -> anyhow::Result<Self> {
        Ok(Self {
            inner: Arc::new(Inner {
                core: ServiceCore::from_env(env, aws::LazySdk::from_env(env), SCHEMA)?,
                service: ServiceCredential::from_env(env)?,
            }),
        })
    }
}
