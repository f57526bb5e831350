//! What every HTTP service's state starts from: the lazy PostgreSQL pool, the access-token
//! verifier (public keys only) and the service's outbox. A service's `AppState` wraps a
//! [`ServiceCore`] and adds its own clients; its handlers read `state.pool` and friends
//! through `Deref`.

use std::sync::Arc;

use crate::{
    config::{self, Env},
    db::{self, DbConfig, Pool},
    events::{EventBridgeClient, EventPublisher, Outbox},
    jwt::JwtVerifier,
};

#[derive(Clone)]
pub struct ServiceCore {
    pub pool: Pool,
    pub verifier: Arc<JwtVerifier>,
    pub outbox: Outbox,
}

impl ServiceCore {
    /// `DATABASE_*`, `EVENT_BUS_NAME`, `JWT_PUBLIC_KEYS`/`JWT_ISSUER`/`JWT_AUDIENCE`; events go
    /// through `schema`'s outbox. Nothing connects until a request needs it.
    pub fn from_env(
        env: &dyn Env,
        sdk: &aws_config::SdkConfig,
        schema: &str,
    ) -> anyhow::Result<Self> {
        let pool = db::pool(&DbConfig::from_env(env)?)?;
        let outbox = Outbox::new(
            schema,
            EventPublisher::new(
                EventBridgeClient::new(sdk),
                config::required(env, "EVENT_BUS_NAME")?,
            ),
            pool.clone(),
        );
        Ok(Self {
            pool,
            verifier: Arc::new(JwtVerifier::from_env(env)?),
            outbox,
        })
    }
}
