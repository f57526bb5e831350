use lectern_content::AppState;
use lectern_shared::{config::ProcessEnv, telemetry};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    telemetry::init();
    let state = AppState::load(&ProcessEnv).await?;
    lectern_shared::http::run_lambda(lectern_content::router(state)).await
}
