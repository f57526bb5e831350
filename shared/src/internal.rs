//! Service-to-service calls: the `/internal/*` routes one service answers for another.
//!
//! In AWS those routes use API Gateway's IAM authorization: the caller signs with SigV4, API
//! Gateway checks the signature against the caller's role before the function runs, and the
//! request context carries the verified IAM identity. Locally (the devstack and the tests,
//! where no gateway checks signatures) a caller presents the service credential
//! `INTERNAL_API_TOKEN` in `X-Lectern-Service-Token`. An end-user access token is never
//! enough: it is not even looked at.

use axum::{
    extract::{FromRef, FromRequestParts},
    http::request::Parts,
};
use sha2::{Digest, Sha256};

use crate::{
    config::{self, Env},
    error::ApiError,
};

pub const SERVICE_TOKEN_HEADER: &str = "x-lectern-service-token";

/// The local service credential, if one is configured; in AWS it is unset and only IAM-signed
/// calls get through.
#[derive(Clone, Default)]
pub struct ServiceCredential {
    token_hash: Option<[u8; 32]>,
}

impl std::fmt::Debug for ServiceCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceCredential")
            .field("configured", &self.token_hash.is_some())
            .finish()
    }
}

impl ServiceCredential {
    pub fn new(token: Option<&str>) -> Self {
        Self {
            token_hash: token
                .filter(|t| !t.is_empty())
                .map(|t| Sha256::digest(t.as_bytes()).into()),
        }
    }

    /// `INTERNAL_API_TOKEN`, at least 32 characters when set.
    pub fn from_env(env: &dyn Env) -> Result<Self, config::ConfigError> {
        let token = config::optional(env, "INTERNAL_API_TOKEN");
        if let Some(t) = &token
            && t.len() < 32
        {
            return Err(config::ConfigError::Invalid {
                name: "INTERNAL_API_TOKEN",
                reason: "must be at least 32 characters".into(),
            });
        }
        Ok(Self::new(token.as_deref()))
    }

    fn accepts(&self, presented: &str) -> bool {
        let Some(expected) = &self.token_hash else {
            return false;
        };
        let presented: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        // Compare digests in constant time.
        expected
            .iter()
            .zip(presented.iter())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
    }
}

/// Another service calling an internal route: who it is (the IAM principal in AWS).
#[derive(Debug, Clone)]
pub struct ServiceCaller {
    pub principal: String,
}

impl<S> FromRequestParts<S> for ServiceCaller
where
    S: Send + Sync,
    ServiceCredential: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        use lambda_http::request::RequestContext;
        if let Some(RequestContext::ApiGatewayV2(ctx)) = parts.extensions.get::<RequestContext>()
            && let Some(iam) = ctx.authorizer.as_ref().and_then(|a| a.iam.as_ref())
        {
            let principal = iam
                .user_arn
                .clone()
                .or_else(|| iam.caller_id.clone())
                .unwrap_or_else(|| "iam".into());
            return Ok(Self { principal });
        }
        let credential = ServiceCredential::from_ref(state);
        match parts
            .headers
            .get(SERVICE_TOKEN_HEADER)
            .and_then(|v| v.to_str().ok())
        {
            Some(token) if credential.accepts(token) => Ok(Self {
                principal: "local-service".into(),
            }),
            Some(_) => Err(ApiError::Forbidden(
                "The service credential is not valid.".into(),
            )),
            None => Err(ApiError::Unauthorized(
                "Internal routes answer other services only (IAM-signed calls).".into(),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_configured_token_is_accepted() {
        let credential = ServiceCredential::new(Some("a-long-enough-service-credential-123"));
        assert!(credential.accepts("a-long-enough-service-credential-123"));
        assert!(!credential.accepts("a-long-enough-service-credential-124"));
        assert!(!ServiceCredential::new(None).accepts(""));
        assert!(!ServiceCredential::new(Some("")).accepts(""));
    }
}
