#![recursion_limit = "256"]

use lectern_shared::{config::ProcessEnv, sqs::Consumer, telemetry};
use lectern_users::worker::UsersEvents;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    telemetry::init();
    let sdk =
        lectern_shared::aws::load(&lectern_shared::aws::AwsSettings::from_env(&ProcessEnv)).await;
    Consumer::from_env_emitting(&ProcessEnv, &sdk, UsersEvents)?
        .run_lambda()
        .await
}
