//! What every HTTP service's state starts from: the lazy PostgreSQL pool, the access-token
//! verifier (public keys only) and the service's outbox, whose EventBridge client is made on
//! the first publish. A service's `AppState` wraps a [`ServiceCore`] and adds its own clients;
//! its handlers read `state.pool` and friends through `Deref`.

use std::sync::Arc;

use crate::{
    aws::LazySdk,
    config::{self, Env},
    db::{self, DbConfig, Pool},
    events::{EventPublisher, Outbox},
    jwt::JwtVerifier,
};

/// The pool, the verifier and the outbox every HTTP service has.
#[derive(Clone)]
pub struct ServiceCore {
    /// Connects on first use.
    pub pool: Pool,
    /// Checks access tokens against `JWT_PUBLIC_KEYS`.
    pub verifier: Arc<JwtVerifier>,
    /// The service's own schema's outbox.
    pub outbox: Outbox,
}

impl ServiceCore {
    /// `DATABASE_*`, `EVENT_BUS_NAME`, `JWT_PUBLIC_KEYS`/`JWT_ISSUER`/`JWT_AUDIENCE`; events go
    /// through `schema`'s outbox. Nothing connects until a request needs it: `sdk` is either
    /// a loaded `&SdkConfig` (the devstack, the tests) or a [`LazySdk`] that loads on the
    /// first publish (the Lambda binaries).
    pub fn from_env(env: &dyn Env, sdk: impl Into<LazySdk>, schema: &str) -> anyhow::Result<Self> {
        let pool = db::pool(&DbConfig::from_env(env)?)?;
        let outbox = Outbox::new(
            schema,
            EventPublisher::lazy(sdk, config::required(env, "EVENT_BUS_NAME")?),
            pool.clone(),
        );
        Ok(Self {
            pool,
            verifier: Arc::new(JwtVerifier::from_env(env)?),
            outbox,
        })
    }
}
