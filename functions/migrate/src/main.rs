//! `aws lambda invoke --function-name <stack>-migrate out.json` after each deploy; locally,
//! `cargo run -p lectern-migrate -- --local` with DATABASE_URL set.

use lambda_runtime::{LambdaEvent, service_fn};
use lectern_shared::{
    config::ProcessEnv,
    db::{self, DbConfig},
    telemetry,
};
use serde_json::{Value, json};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    telemetry::init();
    let pool = db::pool(&DbConfig::from_env(&ProcessEnv)?)?;
    if std::env::args().any(|a| a == "--local") {
        let applied = lectern_migrate::run(&pool).await?;
        println!("{}", json!({ "applied": applied }));
        return Ok(());
    }
    let pool = &pool;
    lambda_runtime::run(service_fn(move |_: LambdaEvent<Value>| async move {
        let applied = lectern_migrate::run(pool).await?;
        Ok::<_, lambda_runtime::Error>(json!({ "applied": applied }))
    }))
    .await
}
