//! Failed-attempt counters in DynamoDB, per account and per source IP.
//!
//! Counts live in fixed windows (`<scope>:<key>:<window number>`) that DynamoDB's TTL removes
//! afterwards, so a limit always lifts by itself: there is no permanent lockout to abuse. A
//! check reads the current window and the one before it and weighs the earlier count by how
//! much of it the last `window` seconds still cover (a sliding window), so attempts on either
//! side of a window boundary are counted together rather than starting again from nothing.

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

/// What [`Throttle::check`] saw: each limit's counts in its current and previous windows.
#[derive(Debug, Clone, Default)]
pub struct Counted {
    attempts: HashMap<String, Window>,
}

/// The attempts counted in a limit's current window and in the one before it.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Window {
    current: u64,
    previous: u64,
}

impl Counted {
    /// The attempts counted against `limit` in the two windows the check looked at.
    pub fn attempts(&self, limit: &Limit) -> u64 {
        self.attempts
            .get(&limit.key)
            .map_or(0, |w| w.current + w.previous)
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

    /// The key of the window before the one `now` is in.
    fn previous_key(&self, now: i64) -> String {
        format!("{}:{}", self.key, now / self.window_secs() - 1)
    }

    /// Seconds left in the window `now` is in.
    fn rest(&self, now: i64) -> i64 {
        let w = self.window_secs();
        w - now.rem_euclid(w)
    }

    /// The attempts in the last `window` seconds: all of the current window's, and the
    /// previous window's in the share of it those seconds still cover.
    fn estimate(&self, now: i64, seen: Window) -> f64 {
        let w = self.window_secs() as f64;
        seen.current as f64 + seen.previous as f64 * (self.rest(now) as f64 / w)
    }

    fn exceeded(&self, now: i64, seen: Window) -> bool {
        self.estimate(now, seen) >= f64::from(self.max)
    }

    /// Whole seconds until the estimate falls below the limit if nothing more is counted.
    fn retry_after(&self, now: i64, seen: Window) -> u64 {
        let (w, rest) = (self.window_secs() as f64, self.rest(now) as f64);
        let (max, current, previous) = (
            f64::from(self.max),
            seen.current as f64,
            seen.previous as f64,
        );
        let wait = if current < max && previous > 0.0 {
            // Later in this window the previous window's share has faded enough:
            // previous × (rest − t) / w < max − current.
            rest - (max - current) * w / previous
        } else {
            // Only in the next window, as this window's count fades in its turn:
            // current × (w − (t − rest)) / w < max.
            rest + w * (1.0 - max / current.max(1.0))
        };
        (wait.floor() as i64 + 1).max(1) as u64
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
            .flat_map(|l| [l.item_key(now), l.previous_key(now)])
            .map(|pk| HashMap::from([("pk".to_string(), AttributeValue::S(pk))]))
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
        let count = |pk: String| counts.get(&pk).copied().unwrap_or(0);
        let counted = Counted {
            attempts: limits
                .iter()
                .map(|l| {
                    let seen = Window {
                        current: count(l.item_key(now)),
                        previous: count(l.previous_key(now)),
                    };
                    (l.key.clone(), seen)
                })
                .collect(),
        };
        let exceeded = limits
            .iter()
            .filter_map(|l| Some((l, *counted.attempts.get(&l.key)?)))
            .filter(|(l, seen)| l.exceeded(now, *seen))
            .map(|(l, seen)| l.retry_after(now, seen))
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

    /// Forgets what the current and the previous window counted (after a successful login).
    pub async fn clear(&self, limit: &Limit) -> anyhow::Result<()> {
        let now = Utc::now().timestamp();
        let client = self.client.get().await;
        let deletes = [limit.item_key(now), limit.previous_key(now)].map(|pk| {
            client
                .delete_item()
                .table_name(&self.table)
                .key("pk", AttributeValue::S(pk))
                .send()
        });
        for result in futures::future::join_all(deletes).await {
            result.context("clearing a throttle counter")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limit(max: u32, window: u64) -> Limit {
        Limit::ip("test", None, max, Duration::from_secs(window))
    }

    fn seen(current: u64, previous: u64) -> Window {
        Window { current, previous }
    }

    #[test]
    fn the_previous_window_counts_by_how_much_of_it_is_still_in_view() {
        let l = limit(10, 100);
        // 30 s into a window: 70 % of the previous one is still within the last 100 s.
        assert_eq!(l.estimate(1030, seen(2, 10)), 9.0);
        assert!(!l.exceeded(1030, seen(2, 10)));
        assert!(l.exceeded(1030, seen(3, 10)));
        // Failures just before a boundary still count just after it (a fixed window saw 1).
        assert!(l.exceeded(1001, seen(1, 10)));
        assert!(l.exceeded(1099, seen(9, 100)));
        assert!(!l.exceeded(1099, seen(8, 100)));
    }

    #[test]
    fn retry_after_is_when_the_estimate_falls_below_the_limit() {
        let l = limit(10, 100);
        // 3 now, 10 before, 30 s in: the previous share must fall below 7, i.e. 70 % → < 70 %.
        let wait = l.retry_after(1030, seen(3, 10));
        assert_eq!(wait, 1);
        assert!(!l.exceeded(1030 + wait as i64, seen(3, 10)));
        // 5 now, 10 before, 1 s in: until the previous share is below 5, 49 s on.
        let wait = l.retry_after(1001, seen(5, 10));
        assert_eq!(wait, 50);
        assert!(l.exceeded(1001 + wait as i64 - 1, seen(5, 10)));
        assert!(!l.exceeded(1001 + wait as i64, seen(5, 10)));
        // The whole limit used in this window: past its end, as its own count fades.
        let wait = l.retry_after(1040, seen(10, 0));
        assert_eq!(wait, 61);
        let wait = l.retry_after(1040, seen(20, 0));
        assert_eq!(wait, 60 + 50 + 1);
    }
}
