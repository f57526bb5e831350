//! The benchmark suite's shared pieces: function environments, statistics, the results file
//! every program appends to, the SQL the raw loops run, and a round-trip counting proxy.
//!
//! `make bench` (bench/run.sh) runs the programs in `src/bin` one after another; each writes
//! its figures as JSON lines to `$BENCH_RESULTS`, and `bench-report` turns them into the one
//! table. Benchmarks print figures; none of this is a test and nothing here can fail CI on a
//! slow machine.

pub mod content;
pub mod cpu;
pub mod load;
pub mod proxy;
pub mod sql;

use std::{
    collections::HashMap,
    io::Write,
    path::{Path, PathBuf},
    time::Duration,
};

use anyhow::Context;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// Where the bench programs find the functions' environments: the `.env` files the devstack
/// writes with `--provision-only` (`$BENCH_ENV_DIR`, default `.local/bench/functions`).
pub fn env_dir() -> PathBuf {
    std::env::var_os("BENCH_ENV_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join(".local/bench/functions"))
}

pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .canonicalize()
        .expect("the workspace root exists")
}

/// A function's environment as Lambda would give it: `KEY=value` lines of
/// `<env_dir>/<binary>.env`.
pub fn function_env(binary: &str) -> anyhow::Result<HashMap<String, String>> {
    let path = env_dir().join(format!("{binary}.env"));
    let text = std::fs::read_to_string(&path).with_context(|| {
        format!(
            "reading {}: run `cargo run -p lectern-devstack -- --provision-only` (bench/run.sh does)",
            path.display()
        )
    })?;
    Ok(parse_env_file(&text))
}

pub fn parse_env_file(text: &str) -> HashMap<String, String> {
    text.lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.to_string()))
        .collect()
}

/// Latency samples in milliseconds.
#[derive(Debug, Default, Clone)]
pub struct Samples(pub Vec<f64>);

impl Samples {
    pub fn push(&mut self, d: Duration) {
        self.0.push(d.as_secs_f64() * 1000.0);
    }

    /// The nearest-rank percentile `p` (0–100), in ms.
    pub fn percentile(&self, p: f64) -> f64 {
        if self.0.is_empty() {
            return f64::NAN;
        }
        let mut sorted = self.0.clone();
        sorted.sort_by(f64::total_cmp);
        let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
        sorted[rank.clamp(1, sorted.len()) - 1]
    }

    pub fn median(&self) -> f64 {
        self.percentile(50.0)
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// One measured figure, as a line of the results file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Figure {
    pub key: String,
    pub value: f64,
    #[serde(default)]
    pub note: String,
}

/// The results file (`$BENCH_RESULTS`, default `target/bench/results.jsonl`).
pub fn results_path() -> PathBuf {
    std::env::var_os("BENCH_RESULTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target/bench/results.jsonl"))
}

/// Appends a figure to the results file (later lines win over earlier ones with the same key).
pub fn record(key: impl Into<String>, value: f64, note: impl Into<String>) {
    let figure = Figure {
        key: key.into(),
        value,
        note: note.into(),
    };
    let path = results_path();
    if let Some(dir) = path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    let line = serde_json::to_string(&figure).expect("a figure serialises");
    let written = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .and_then(|mut f| writeln!(f, "{line}"));
    if let Err(err) = written {
        eprintln!("could not write {}: {err}", path.display());
    }
}

/// Every figure in the results file, the last of each key.
pub fn read_results(path: &Path) -> anyhow::Result<HashMap<String, Figure>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(text
        .lines()
        .filter_map(|l| serde_json::from_str::<Figure>(l).ok())
        .map(|f| (f.key.clone(), f))
        .collect())
}

/// An API Gateway HTTP API (payload 2.0) event, as API Gateway sends it to the function.
pub fn apigw_event(method: &str, path: &str, query: &str, token: Option<&str>) -> Value {
    let mut headers = serde_json::Map::new();
    headers.insert("accept".into(), json!("application/json"));
    headers.insert(
        "host".into(),
        json!("bench.execute-api.us-east-1.amazonaws.com"),
    );
    headers.insert("user-agent".into(), json!("lectern-bench/1.0"));
    headers.insert("x-forwarded-for".into(), json!("203.0.113.10"));
    headers.insert("x-forwarded-proto".into(), json!("https"));
    if let Some(token) = token {
        headers.insert("authorization".into(), json!(format!("Bearer {token}")));
    }
    json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": query,
        "headers": headers,
        "requestContext": {
            "accountId": "000000000000",
            "apiId": "bench",
            "domainName": "bench.execute-api.us-east-1.amazonaws.com",
            "domainPrefix": "bench",
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "203.0.113.10",
                "userAgent": "lectern-bench/1.0"
            },
            "requestId": "bench-request",
            "routeKey": "$default",
            "stage": "$default",
            "time": "27/Nov/2026:10:00:00 +0000",
            "timeEpoch": 1_795_773_600_000u64
        },
        "isBase64Encoded": false
    })
}

/// `DATABASE_URL` with another database name.
pub fn with_database(url: &str, database: &str) -> anyhow::Result<String> {
    let (base, _) = url
        .rsplit_once('/')
        .context("a database url names a database")?;
    Ok(format!("{base}/{database}"))
}

/// The `host:port` of a `postgres://user@host:port/db` url, and the url with another one.
pub fn split_host(url: &str) -> anyhow::Result<(String, String, String)> {
    let scheme_end = url.find("://").context("a database url has a scheme")? + 3;
    let rest = &url[scheme_end..];
    let host_start = rest.find('@').map(|i| i + 1).unwrap_or(0);
    let host_end = rest[host_start..]
        .find('/')
        .map(|i| host_start + i)
        .unwrap_or(rest.len());
    Ok((
        url[..scheme_end + host_start].to_string(),
        rest[host_start..host_end].to_string(),
        rest[host_end..].to_string(),
    ))
}

/// The accounts `seed` creates for the benchmarks to sign in as.
pub const ACCOUNT_DOMAIN: &str = "bench.lectern";
pub const ACCOUNT_PASSWORD: &str = "a long benchmark passphrase";

pub fn account_email(i: usize) -> String {
    format!("bench-{i:04}@{ACCOUNT_DOMAIN}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let s = Samples((1..=10).map(f64::from).collect());
        assert_eq!(s.median(), 5.0);
        assert_eq!(s.percentile(90.0), 9.0);
        assert_eq!(s.percentile(99.0), 10.0);
        assert!(Samples::default().median().is_nan());
    }

    #[test]
    fn a_database_url_splits_around_its_host() {
        let (head, host, tail) = split_host("postgres://postgres@127.0.0.1:55432/lectern").unwrap();
        assert_eq!(
            (head.as_str(), host.as_str(), tail.as_str()),
            ("postgres://postgres@", "127.0.0.1:55432", "/lectern")
        );
        assert_eq!(
            with_database("postgres://u@h:1/a", "b").unwrap(),
            "postgres://u@h:1/b"
        );
    }

    #[test]
    fn env_files_are_key_value_lines() {
        let env = parse_env_file("# c\nA=1\nB=x=y\n\n");
        assert_eq!(env["A"], "1");
        assert_eq!(env["B"], "x=y");
        assert_eq!(env.len(), 2);
    }
}
