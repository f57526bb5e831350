use lectern_shared::{config::ProcessEnv, telemetry};
use lectern_users::AppState;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    telemetry::init();
    let state = AppState::load(&ProcessEnv).await?;
    lectern_shared::http::run_lambda(lectern_users::router(state)).await
}
