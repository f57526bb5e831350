use lambda_runtime::{LambdaEvent, service_fn};
use lectern_auth::worker::Worker;
use lectern_shared::{config::ProcessEnv, telemetry};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    telemetry::init();
    let worker = Worker::from_env(&ProcessEnv)?;
    let worker = &worker;
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<aws_lambda_events::event::sqs::SqsEvent>| async move {
            Ok::<_, lambda_runtime::Error>(worker.handle_batch(event.payload).await)
        },
    ))
    .await
}
