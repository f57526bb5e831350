use lectern_shared::{config::ProcessEnv, sqs::Consumer, telemetry};
use lectern_users::worker::UsersEvents;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    telemetry::init();
    Consumer::from_env(&ProcessEnv, UsersEvents)?
        .run_lambda()
        .await
}
