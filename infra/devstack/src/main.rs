//! `cargo run -p lectern-devstack` (what `make dev` runs): provisions, migrates and serves the
//! whole platform on one base URL.

use std::net::SocketAddr;

use anyhow::Context;
use lectern_devstack::{DevstackConfig, Stack};
use lectern_shared::config::ProcessEnv;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    if std::env::var_os("LECTERN_LOG_FORMAT").is_none() {
        // SAFETY: set before any thread reads the environment.
        unsafe { std::env::set_var("LECTERN_LOG_FORMAT", "pretty") };
    }
    lectern_shared::telemetry::init();
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--public-key") {
        // The JwtPublicKeys deploy parameter for a signing-key seed file.
        let path = args.get(i + 1).context("--public-key takes a seed file")?;
        let seed = std::fs::read_to_string(path).with_context(|| format!("reading {path}"))?;
        let key = lectern_shared::jwt::SigningKey::from_base64(&seed)
            .map_err(|e| anyhow::anyhow!("{path} is not a signing key seed: {e}"))?;
        println!("{}", key.public_key().to_base64());
        return Ok(());
    }
    let config = DevstackConfig::from_env(&ProcessEnv)?;
    let provision_only = std::env::args().any(|a| a == "--provision-only");
    let stack = Stack::start(config.clone()).await?;
    let env_dir = config
        .signing_key_file
        .parent()
        .map(|d| d.join("functions"))
        .unwrap_or_default();
    std::fs::create_dir_all(&env_dir)?;
    for (binary, env) in stack.function_envs() {
        std::fs::write(env_dir.join(format!("{binary}.env")), env.to_env_file())?;
    }
    if provision_only {
        println!(
            "provisioned stack {} and migrated the database",
            config.stack
        );
        return Ok(());
    }
    stack.spawn_background();
    if let (Ok(email), Ok(password)) = (
        std::env::var("LECTERN_ADMIN_EMAIL"),
        std::env::var("LECTERN_ADMIN_PASSWORD"),
    ) {
        let id =
            lectern_auth::accounts::ensure_account(&stack.auth, &email, &password, "Admin", "User")
                .await
                .context("bootstrapping the first admin account")?;
        // The profile arrives through the user.created event; then the role can be granted.
        let mut granted = Err(anyhow::anyhow!("the profile did not appear"));
        for _ in 0..100 {
            granted = lectern_users::bootstrap::grant_role(&stack.users, &email, "Admin").await;
            if granted.is_ok() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
        granted.context("making the first account an Admin")?;
        println!("admin account {email} is ready (id {id}) and holds the Admin role");
    }
    serve(stack, config, env_dir).await
}

async fn serve(
    stack: Stack,
    config: DevstackConfig,
    env_dir: std::path::PathBuf,
) -> anyhow::Result<()> {
    let app = stack.gateway()?;
    let address = SocketAddr::from(([127, 0, 0, 1], config.port));
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .with_context(|| format!("binding {address}; set LECTERN_PORT to use another port"))?;
    let moto = config
        .aws
        .endpoint_url
        .clone()
        .unwrap_or_else(|| "(AWS)".into());
    println!(
        "\nLectern is up.\n  API:      http://{address}/api/v1\n  OpenAPI:  http://{address}/api/v1/openapi.json\n  \
         Mail:     sent mail is kept by the emulator: curl -s {moto}/moto-api/data.json | python3 -c \
         'import json,sys; [print(m[\"destinations\"], m[\"subject\"], m[\"body\"], sep=\"\\n\", end=\"\\n\\n\") for m in json.load(sys.stdin)[\"ses\"][\"Message\"]]'\n  \
         Stack:    {} (bus {}, database {})\n  \
         Lambda:   each function's environment is in {}/<binary>.env (cargo lambda watch --env-file)\n",
        config.stack,
        stack.provisioned.event_bus,
        redact(&config.database_url),
        env_dir.display(),
    );
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await?;
    Ok(())
}

fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let credentials = &url[scheme + 3..at];
            match credentials.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}
