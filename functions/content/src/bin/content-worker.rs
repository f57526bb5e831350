#![recursion_limit = "256"]

use lectern_content::worker::ContentEvents;
use lectern_shared::{config::ProcessEnv, sqs::Consumer, telemetry};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    telemetry::init();
    Consumer::from_env(&ProcessEnv, ContentEvents)?
        .run_lambda()
        .await
}
