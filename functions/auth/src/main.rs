use lectern_auth::{AppState, AuthConfig, router};
use lectern_shared::{config::ProcessEnv, http, telemetry};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    telemetry::init();
    let config = AuthConfig::from_env(&ProcessEnv)?;
    let state = AppState::build(config).await?;
    http::run_lambda(router(state)).await
}
