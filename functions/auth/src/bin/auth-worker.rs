use lectern_auth::worker::AuthEvents;
use lectern_shared::{config::ProcessEnv, sqs::Consumer, telemetry};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    telemetry::init();
    Consumer::from_env(&ProcessEnv, AuthEvents)?
        .run_lambda()
        .await
}
