//! JSON logs with the Lambda request id.
//!
//! `lambda_runtime` opens a span per invocation carrying `requestId`; logging the current
//! span on every line ties each line to its invocation in CloudWatch.

use tracing_subscriber::{EnvFilter, fmt, prelude::*};

/// Installs the global subscriber. `RUST_LOG` (or `AWS_LAMBDA_LOG_LEVEL`) sets the filter;
/// `LECTERN_LOG_FORMAT=pretty` gives readable lines for a terminal.
pub fn init() {
    let filter = std::env::var("RUST_LOG")
        .ok()
        .or_else(|| {
            std::env::var("AWS_LAMBDA_LOG_LEVEL")
                .ok()
                .map(|l| l.to_lowercase())
        })
        .and_then(|f| EnvFilter::try_new(f).ok())
        .unwrap_or_else(|| EnvFilter::new("info"));
    let pretty = std::env::var("LECTERN_LOG_FORMAT").is_ok_and(|v| v == "pretty");
    let registry = tracing_subscriber::registry().with(filter);
    let result = if pretty {
        registry.with(fmt::layer().with_target(false)).try_init()
    } else {
        registry
            .with(
                fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_current_span(true)
                    .with_span_list(false)
                    .with_ansi(false),
            )
            .try_init()
    };
    // A second init (tests, the devstack) keeps the first subscriber.
    let _ = result;
}
