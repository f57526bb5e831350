#![recursion_limit = "256"]

use lambda_runtime::{LambdaEvent, service_fn};
use lectern_scheduler::Scheduler;
use lectern_shared::{config::ProcessEnv, telemetry};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    telemetry::init();
    let scheduler = Scheduler::from_env(&ProcessEnv).await?;
    let scheduler = &scheduler;
    lambda_runtime::run(service_fn(move |_: LambdaEvent<Value>| async move {
        let report = scheduler.tick().await?;
        Ok::<_, lambda_runtime::Error>(serde_json::to_value(report)?)
    }))
    .await
}
