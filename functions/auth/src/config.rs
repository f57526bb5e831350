//! The auth service's configuration, read once at cold start.

use std::time::Duration;

use lectern_shared::{
    aws::AwsSettings,
    config::{self, ConfigError, Env, Secret},
    db::DbConfig,
    jwt::{self, PublicKey, TokenParties},
};

/// Where the Ed25519 signing key comes from.
#[derive(Debug, Clone)]
pub enum SigningKeySource {
    /// `JWT_SIGNING_KEY`: the base64 seed itself (local runs, tests).
    Inline(Secret<String>),
    /// `JWT_SIGNING_KEY_FILE`: a file holding the base64 seed (the devstack writes one).
    File(String),
    /// `JWT_SIGNING_KEY_SECRET_ARN`: a Secrets Manager secret holding the base64 seed (AWS).
    SecretsManager(String),
}

/// Failed-login limits: per account and per source IP, over a rolling fixed window.
#[derive(Debug, Clone)]
pub struct LoginLimits {
    pub per_account: u32,
    pub per_ip: u32,
    pub window: Duration,
}

#[derive(Debug, Clone)]
pub struct AuthConfig {
    pub db: DbConfig,
    pub aws: AwsSettings,
    pub signing_key: SigningKeySource,
    /// `JWT_PUBLIC_KEYS`, the keys every service verifies access tokens with (the template
    /// gives each function the same list, the current signing key's first). When auth has
    /// them it verifies with them, and reads its signing key only when it first signs a token;
    /// without them the signing key is read at init and its own public key verifies.
    pub public_keys: Vec<PublicKey>,
    /// Public keys of retired signing keys, still accepted until their tokens expire.
    pub previous_public_keys: Vec<PublicKey>,
    pub parties: TokenParties,
    pub access_token_ttl: Duration,
    pub refresh_token_ttl: Duration,
    pub throttle_table: String,
    pub login_limits: LoginLimits,
    pub event_bus: String,
    /// Links in mails start with this (`https://app.example.com`).
    pub public_base_url: String,
    pub mail_from: String,
    /// Enumeration-safe endpoints answer no sooner than this, whatever path they took.
    pub min_response_time: Duration,
    /// How long a rotated refresh token still yields its successor (a client racing itself)
    /// before presenting it counts as reuse.
    pub refresh_reuse_grace: Duration,
}

impl AuthConfig {
    pub fn from_env(env: &dyn Env) -> Result<Self, ConfigError> {
        let signing_key = if let Some(arn) = config::optional(env, "JWT_SIGNING_KEY_SECRET_ARN") {
            SigningKeySource::SecretsManager(arn)
        } else if let Some(path) = config::optional(env, "JWT_SIGNING_KEY_FILE") {
            SigningKeySource::File(path)
        } else {
            SigningKeySource::Inline(config::secret(env, "JWT_SIGNING_KEY").map_err(|_| {
                ConfigError::Invalid {
                    name: "JWT_SIGNING_KEY",
                    reason: "set one of JWT_SIGNING_KEY_SECRET_ARN, JWT_SIGNING_KEY_FILE, JWT_SIGNING_KEY".into(),
                }
            })?)
        };
        let public_keys = jwt::public_keys(env, "JWT_PUBLIC_KEYS")?;
        let previous_public_keys = jwt::public_keys(env, "JWT_PREVIOUS_PUBLIC_KEYS")?;
        let public_base_url = public_base_url(env)?;
        Ok(Self {
            db: DbConfig::from_env(env)?,
            aws: AwsSettings::from_env(env),
            signing_key,
            public_keys,
            previous_public_keys,
            parties: TokenParties::from_env(env),
            access_token_ttl: Duration::from_secs(config::parsed_or(
                env,
                "ACCESS_TOKEN_TTL_SECS",
                900,
            )?),
            refresh_token_ttl: Duration::from_secs(
                86_400 * config::parsed_or::<u64>(env, "REFRESH_TOKEN_TTL_DAYS", 30)?,
            ),
            throttle_table: config::required(env, "AUTH_THROTTLE_TABLE")?,
            login_limits: LoginLimits {
                per_account: config::parsed_or(env, "LOGIN_MAX_FAILURES_PER_ACCOUNT", 10)?,
                per_ip: config::parsed_or(env, "LOGIN_MAX_FAILURES_PER_IP", 100)?,
                window: Duration::from_secs(config::parsed_or(
                    env,
                    "LOGIN_FAILURE_WINDOW_SECS",
                    900,
                )?),
            },
            event_bus: config::required(env, "EVENT_BUS_NAME")?,
            public_base_url,
            mail_from: config::required(env, "MAIL_FROM")?,
            min_response_time: Duration::from_millis(config::parsed_or(
                env,
                "AUTH_MIN_RESPONSE_MS",
                250,
            )?),
            refresh_reuse_grace: Duration::from_secs(config::parsed_or(
                env,
                "REFRESH_REUSE_GRACE_SECS",
                10,
            )?),
        })
    }
}

/// `PUBLIC_BASE_URL` without a trailing slash: links in mails start with it.
fn public_base_url(env: &dyn Env) -> Result<String, ConfigError> {
    Ok(config::required(env, "PUBLIC_BASE_URL")?
        .trim_end_matches('/')
        .to_string())
}

/// The auth worker's configuration; its database comes from the same `DATABASE_*` variables
/// as every function's.
#[derive(Debug, Clone)]
pub struct AuthWorkerConfig {
    /// Invitation links start with this.
    pub public_base_url: String,
    pub mail_from: String,
    /// How long an invitation link can set the password (`INVITATION_TTL_HOURS`, default 7 days).
    pub invitation_ttl: Duration,
}

impl AuthWorkerConfig {
    pub fn from_env(env: &dyn Env) -> Result<Self, ConfigError> {
        let hours: u64 = config::parsed_or(env, "INVITATION_TTL_HOURS", 7 * 24)?;
        if hours == 0 {
            return Err(ConfigError::Invalid {
                name: "INVITATION_TTL_HOURS",
                reason: "must be at least 1".into(),
            });
        }
        Ok(Self {
            public_base_url: public_base_url(env)?,
            mail_from: config::required(env, "MAIL_FROM")?,
            invitation_ttl: Duration::from_secs(3600 * hours),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn the_worker_config_defaults_to_a_week_long_invitation() {
        let config = AuthWorkerConfig::from_env(&env(&[
            ("PUBLIC_BASE_URL", "https://app.example.com/"),
            ("MAIL_FROM", "no-reply@example.com"),
        ]))
        .unwrap();
        assert_eq!(config.public_base_url, "https://app.example.com");
        assert_eq!(config.invitation_ttl, Duration::from_secs(7 * 24 * 3600));
    }

    #[test]
    fn the_worker_config_names_what_is_missing_or_invalid() {
        let missing = AuthWorkerConfig::from_env(&env(&[("MAIL_FROM", "a@example.com")]));
        assert!(missing.unwrap_err().to_string().contains("PUBLIC_BASE_URL"));
        for ttl in ["0", "soon"] {
            let invalid = AuthWorkerConfig::from_env(&env(&[
                ("PUBLIC_BASE_URL", "https://app.example.com"),
                ("MAIL_FROM", "a@example.com"),
                ("INVITATION_TTL_HOURS", ttl),
            ]));
            assert!(
                invalid
                    .unwrap_err()
                    .to_string()
                    .contains("INVITATION_TTL_HOURS")
            );
        }
    }
}
