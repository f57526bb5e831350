//! Password policy and hashing.
//!
//! Policy (NIST SP 800-63B): 8 to 128 characters, no composition rules, not one of the most
//! common passwords, never truncated. Hashes are argon2id PHC strings; a hash made with
//! weaker parameters than the current ones is replaced at the next successful login.

use std::sync::LazyLock;

use argon2::{Algorithm, Argon2, Params, PasswordHash, PasswordHasher, PasswordVerifier, Version};

pub const MIN_LEN: usize = 8;
pub const MAX_LEN: usize = 128;

/// The current argon2id cost: m = 19 MiB, t = 2, p = 1 (OWASP's first recommendation).
pub const M_COST: u32 = 19_456;
pub const T_COST: u32 = 2;
pub const P_COST: u32 = 1;

static COMMON: LazyLock<std::collections::HashSet<&'static str>> = LazyLock::new(|| {
    include_str!("../data/common-passwords.txt")
        .lines()
        .collect()
});

fn hasher() -> Argon2<'static> {
    Argon2::new(
        Algorithm::Argon2id,
        Version::V0x13,
        Params::new(M_COST, T_COST, P_COST, None).expect("valid argon2 parameters"),
    )
}

/// A password that satisfies the policy.
pub struct NewPassword(String);

impl NewPassword {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let length = raw.chars().count();
        if length < MIN_LEN {
            return Err(format!("must be at least {MIN_LEN} characters"));
        }
        if length > MAX_LEN {
            return Err(format!("must be at most {MAX_LEN} characters"));
        }
        if raw.trim().is_empty() {
            return Err("must not be only spaces".into());
        }
        if COMMON.contains(raw.to_lowercase().as_str()) {
            return Err("is one of the most common passwords; choose another".into());
        }
        Ok(Self(raw.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Hashes with the current parameters. CPU-bound: call from `spawn_blocking`.
pub fn hash(password: &str) -> anyhow::Result<String> {
    hasher()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| anyhow::anyhow!("hashing a password: {e}"))
}

/// The outcome of checking a password against a stored hash.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    Invalid,
    Valid,
    /// Valid, but hashed with weaker parameters: store a fresh hash.
    ValidNeedsRehash,
}

/// Checks `password` against `stored`; with no stored hash, checks against a dummy so that
/// an unknown account costs the same time as a known one.
pub fn verify(password: &str, stored: Option<&str>) -> Verdict {
    static DUMMY: LazyLock<String> =
        LazyLock::new(|| hash("lectern-dummy-password").expect("hashing works"));
    let (stored, real) = match stored {
        Some(s) => (s, true),
        None => (DUMMY.as_str(), false),
    };
    let Ok(parsed) = PasswordHash::new(stored) else {
        tracing::error!("a stored password hash is not a PHC string");
        return Verdict::Invalid;
    };
    if password.chars().count() > MAX_LEN
        || hasher()
            .verify_password(password.as_bytes(), &parsed)
            .is_err()
        || !real
    {
        return Verdict::Invalid;
    }
    let current = Params::try_from(&parsed).ok();
    let weaker = parsed.algorithm.as_str() != "argon2id"
        || current
            .is_none_or(|p| p.m_cost() < M_COST || p.t_cost() < T_COST || p.p_cost() < P_COST);
    if weaker {
        Verdict::ValidNeedsRehash
    } else {
        Verdict::Valid
    }
}

/// Runs a CPU-bound closure off the async workers.
pub async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> anyhow::Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| anyhow::anyhow!("a blocking task failed: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_policy_counts_characters_and_rejects_common_passwords() {
        assert!(NewPassword::parse("short").is_err());
        assert!(NewPassword::parse("password").is_err());
        assert!(NewPassword::parse("correct horse battery staple").is_ok());
        assert!(
            NewPassword::parse(&"é".repeat(128)).is_ok(),
            "128 characters of two bytes each is allowed"
        );
        assert!(NewPassword::parse(&"a".repeat(129)).is_err());
        assert!(COMMON.len() >= 10_000);
    }

    #[test]
    fn a_hash_verifies_and_weaker_parameters_ask_for_a_rehash() {
        let stored = hash("correct horse battery staple").unwrap();
        assert!(stored.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert_eq!(
            verify("correct horse battery staple", Some(&stored)),
            Verdict::Valid
        );
        assert_eq!(
            verify("wrong horse battery staple", Some(&stored)),
            Verdict::Invalid
        );
        assert_eq!(
            verify("correct horse battery staple", None),
            Verdict::Invalid
        );

        let weak = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(8192, 1, 1, None).unwrap(),
        )
        .hash_password(b"correct horse battery staple")
        .unwrap()
        .to_string();
        assert_eq!(
            verify("correct horse battery staple", Some(&weak)),
            Verdict::ValidNeedsRehash
        );
    }

    #[test]
    fn long_passwords_are_never_truncated() {
        let long = "x".repeat(100);
        let stored = hash(&long).unwrap();
        assert_eq!(verify(&"x".repeat(99), Some(&stored)), Verdict::Invalid);
    }
}
