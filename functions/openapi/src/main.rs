#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    lectern_shared::telemetry::init();
    lectern_shared::http::run_lambda(lectern_openapi::router()).await
}
