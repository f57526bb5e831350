//! `aws lambda invoke --function-name <stack>-migrate out.json` after each deploy; locally,
//! `cargo run -p lectern-migrate -- --local` with DATABASE_URL set.
//!
//! On a fresh installation nobody can hand out roles yet: invoke it once with
//! `{"grant_admin": "ops@example.com"}` (after that account has signed up) to make it Admin.

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
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        let applied = lectern_migrate::run(pool).await?;
        let mut answer = json!({ "applied": applied });
        if let Some(email) = event.payload.get("grant_admin").and_then(Value::as_str) {
            let users = lectern_users::AppState::load(&ProcessEnv).await?;
            let id = lectern_users::bootstrap::grant_role(&users, email, "Admin").await?;
            answer["admin"] = json!(id);
        }
        Ok::<_, lambda_runtime::Error>(answer)
    }))
    .await
}
