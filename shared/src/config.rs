//! Typed configuration read once from the environment at cold start.
//!
//! Functions fail fast on a missing or malformed variable, naming it; values that are
//! secrets are wrapped in [`Secret`] so that no `Debug` print or log line shows them.

use std::{fmt, str::FromStr};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("environment variable {0} is required but not set")]
    Missing(&'static str),
    #[error("environment variable {name} is invalid: {reason}")]
    Invalid { name: &'static str, reason: String },
}

/// A value that must never reach a log.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret<T>(T);

impl<T> Secret<T> {
    pub fn new(value: T) -> Self {
        Self(value)
    }
    pub fn expose(&self) -> &T {
        &self.0
    }
}

impl<T> fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(**redacted**)")
    }
}

/// Reads variables from a source: the process environment in production, a map in tests.
pub trait Env {
    fn get(&self, name: &str) -> Option<String>;
}

/// The process environment.
pub struct ProcessEnv;

impl Env for ProcessEnv {
    fn get(&self, name: &str) -> Option<String> {
        std::env::var(name).ok().filter(|v| !v.is_empty())
    }
}

impl Env for std::collections::HashMap<String, String> {
    fn get(&self, name: &str) -> Option<String> {
        self.get(name).cloned().filter(|v| !v.is_empty())
    }
}

pub fn required(env: &dyn Env, name: &'static str) -> Result<String, ConfigError> {
    env.get(name).ok_or(ConfigError::Missing(name))
}

pub fn optional(env: &dyn Env, name: &'static str) -> Option<String> {
    env.get(name)
}

/// Parses a variable with `FromStr`, falling back to `default` when it is unset.
pub fn parsed_or<T>(env: &dyn Env, name: &'static str, default: T) -> Result<T, ConfigError>
where
    T: FromStr,
    T::Err: fmt::Display,
{
    match env.get(name) {
        None => Ok(default),
        Some(raw) => raw.parse().map_err(|e: T::Err| ConfigError::Invalid {
            name,
            reason: e.to_string(),
        }),
    }
}

pub fn secret(env: &dyn Env, name: &'static str) -> Result<Secret<String>, ConfigError> {
    required(env, name).map(Secret::new)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn a_secret_never_shows_in_debug_output() {
        let s = Secret::new("hunter2".to_string());
        assert!(!format!("{s:?}").contains("hunter2"));
    }

    #[test]
    fn an_invalid_number_names_the_variable() {
        let env: HashMap<String, String> = [("N".to_string(), "x".to_string())].into();
        let err = parsed_or::<u32>(&env, "N", 1).unwrap_err();
        assert!(err.to_string().contains("N"));
        assert_eq!(parsed_or::<u32>(&HashMap::new(), "N", 7).unwrap(), 7);
    }
}
