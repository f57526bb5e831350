// Laying out the future of the AWS configuration load followed by the Lambda runtime takes
// more than the default 128 query levels.
#![recursion_limit = "256"]

use lectern_shared::{config::ProcessEnv, telemetry};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    telemetry::init();
    lectern_auth::worker::from_env(&ProcessEnv)
        .await?
        .run_lambda()
        .await
}
