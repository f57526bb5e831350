#![recursion_limit = "256"]

use lectern_shared::{aws::LazySdk, config::ProcessEnv, sqs::Consumer, telemetry};
use lectern_users::worker::UsersEvents;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    telemetry::init();
    // The AWS configuration loads when the worker first publishes an event, not at init.
    Consumer::from_env_emitting(&ProcessEnv, LazySdk::from_env(&ProcessEnv), UsersEvents)?
        .run_lambda()
        .await
}
