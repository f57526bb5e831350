//! Failed-attempt counters in DynamoDB, per account and per source IP.
//!
//! Counts live in fixed windows (`<scope>:<key>:<window number>`) that DynamoDB's TTL removes
//! afterwards, so a limit always lifts by itself: there is no permanent lockout to abuse.

use std::{collections::HashMap, net::IpAddr, time::Duration};

use anyhow::Context;
use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes, ReturnValue};
use chrono::Utc;
use lectern_shared::{
    ApiError,
    aws::{LazyClient, LazySdk},
    tokens::sha256_hex,
};

/// The counters' table and its DynamoDB client, made on the first check or count.
#[derive(Debug, Clone)]
pub struct Throttle {
    client: LazyClient<aws_sdk_dynamodb::Client>,
    table: String,
}

/// What [`Throttle::check`] saw: the attempts counted so far in each limit's current window.
#[derive(Debug, Clone, Default)]
pub struct Counted {
    attempts: HashMap<String, u64>,
}

impl Counted {
    /// The attempts counted against `limit` in the window the check looked at.
    pub fn attempts(&self, limit: &Limit) -> u64 {
        self.attempts.get(&limit.key).copied().unwrap_or(0)
    }
}

/// One counted thing: what, for whom, how many, over how long.
#[derive(Debug, Clone)]
pub struct Limit {
    pub key: String,
    pub max: u32,
    pub window: Duration,
}

impl Limit {
    pub fn account(scope: &str, email: &str, max: u32, window: Duration) -> Self {
        // Hashed so the table holds no email addresses.
        Self {
            key: format!("{scope}:acct:{}", &sha256_hex(email.as_bytes())[..32]),
            max,
            window,
        }
    }

    pub fn ip(scope: &str, ip: Option<IpAddr>, max: u32, window: Duration) -> Self {
        let ip = ip
            .map(|ip| ip.to_string())
            .unwrap_or_else(|| "unknown".into());
        Self {
            key: format!("{scope}:ip:{ip}"),
            max,
            window,
        }
    }

    fn window_secs(&self) -> i64 {
        self.window.as_secs().max(1) as i64
    }

    fn item_key(&self, now: i64) -> String {
        format!("{}:{}", self.key, now / self.window_secs())
    }

    fn retry_after(&self, now: i64) -> u64 {
        let w = self.window_secs();
        ((now / w + 1) * w - now).max(1) as u64
    }
}

impl Throttle {
    /// Counters in `table`, through a ready client.
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        Self {
            client: LazyClient::ready(client),
            table: table.into(),
        }
    }

    /// Counters in `table`, through a client made from `sdk` on first use.
    pub fn lazy(sdk: impl Into<LazySdk>, table: impl Into<String>) -> Self {
        Self {
            client: LazyClient::new(sdk.into(), aws_sdk_dynamodb::Client::new),
            table: table.into(),
        }
    }

    /// 429 with `Retry-After` if any of `limits` is used up; otherwise what each has counted.
    pub async fn check(&self, limits: &[Limit]) -> Result<Counted, ApiError> {
        let now = Utc::now().timestamp();
        let keys: Vec<HashMap<String, AttributeValue>> = limits
            .iter()
            .map(|l| HashMap::from([("pk".to_string(), AttributeValue::S(l.item_key(now)))]))
            .collect();
        let request = KeysAndAttributes::builder()
            .set_keys(Some(keys))
            .consistent_read(true)
            .build()
            .context("building a throttle lookup")?;
        let output = self
            .client
            .get()
            .await
            .batch_get_item()
            .request_items(&self.table, request)
            .send()
            .await
            .context("reading throttle counters")?;
        let counts: HashMap<String, u64> = output
            .responses()
            .and_then(|r| r.get(&self.table))
            .into_iter()
            .flatten()
            .filter_map(|item| {
                let pk = item.get("pk")?.as_s().ok()?.clone();
                let n = item.get("attempts")?.as_n().ok()?.parse().ok()?;
                Some((pk, n))
            })
            .collect();
        let counted = Counted {
            attempts: limits
                .iter()
                .map(|l| {
                    let n = counts.get(&l.item_key(now)).copied().unwrap_or(0);
                    (l.key.clone(), n)
                })
                .collect(),
        };
        let exceeded = limits
            .iter()
            .filter(|l| counted.attempts(l) >= u64::from(l.max))
            .map(|l| l.retry_after(now))
            .max();
        match exceeded {
            Some(retry_after_secs) => Err(ApiError::TooManyRequests { retry_after_secs }),
            None => Ok(counted),
        }
    }

    /// Counts one attempt against each of `limits`.
    pub async fn hit(&self, limits: &[Limit]) -> anyhow::Result<()> {
        let now = Utc::now().timestamp();
        let client = self.client.get().await;
        let updates = limits.iter().map(|l| {
            let expires = (now / l.window_secs() + 2) * l.window_secs();
            client
                .update_item()
                .table_name(&self.table)
                .key("pk", AttributeValue::S(l.item_key(now)))
                .update_expression("ADD attempts :one SET expires_at = :exp")
                .expression_attribute_values(":one", AttributeValue::N("1".into()))
                .expression_attribute_values(":exp", AttributeValue::N(expires.to_string()))
                .return_values(ReturnValue::None)
                .send()
        });
        for result in futures::future::join_all(updates).await {
            result.context("counting a failed attempt")?;
        }
        Ok(())
    }

    /// Forgets the current window's count (after a successful login).
    pub async fn clear(&self, limit: &Limit) -> anyhow::Result<()> {
        let now = Utc::now().timestamp();
        self.client
            .get()
            .await
            .delete_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(limit.item_key(now)))
            .send()
            .await
            .context("clearing a throttle counter")?;
        Ok(())
    }
}
