//! The cold-request baseline: a Lambda function that does nothing but connect to PostgreSQL
//! (the same rustls connector and SSL mode as the functions' pool) and run one statement.
//!
//! The harness invokes it through the same Runtime API as the real functions, with
//! `{"sql": "...", "params": [...]}`, each parameter a uuid (a string), `null` (no uuid), a
//! list of uuids or a boolean; it answers the number of rows.

use std::sync::Arc;

use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::{Value, json};
use tokio::sync::OnceCell;
use tokio_postgres::types::ToSql;
use uuid::Uuid;

struct Connector {
    config: tokio_postgres::Config,
    tls: tokio_postgres_rustls::MakeRustlsConnect,
}

fn connector() -> Result<Connector, Error> {
    let url = std::env::var("DATABASE_URL")?;
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Connector {
        config: url.parse()?,
        tls: tokio_postgres_rustls::MakeRustlsConnect::new(tls),
    })
}

async fn handle(
    connector: &Connector,
    client: &OnceCell<tokio_postgres::Client>,
    event: LambdaEvent<Value>,
) -> Result<Value, Error> {
    let client = client
        .get_or_try_init(|| async {
            let (client, connection) = connector.config.connect(connector.tls.clone()).await?;
            tokio::spawn(connection);
            Ok::<_, tokio_postgres::Error>(client)
        })
        .await?;
    let sql = event.payload["sql"].as_str().ok_or("no sql")?;
    let params = event.payload["params"]
        .as_array()
        .into_iter()
        .flatten()
        .map(param)
        .collect::<Result<Vec<_>, Error>>()?;
    let refs: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| p.as_ref() as _).collect();
    let statement = client.prepare(sql).await?;
    let rows = client.query(&statement, &refs).await?;
    Ok(json!({ "rows": rows.len() }))
}

fn param(value: &Value) -> Result<Box<dyn ToSql + Sync + Send>, Error> {
    Ok(match value {
        Value::String(id) => Box::new(id.parse::<Uuid>()?),
        Value::Null => Box::new(None::<Uuid>),
        Value::Bool(flag) => Box::new(*flag),
        Value::Array(ids) => Box::new(
            ids.iter()
                .map(|id| Ok(id.as_str().ok_or("a list of uuids")?.parse::<Uuid>()?))
                .collect::<Result<Vec<_>, Error>>()?,
        ),
        other => return Err(format!("a parameter this program does not bind: {other}").into()),
    })
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let connector = connector()?;
    let client = OnceCell::new();
    lambda_runtime::run(service_fn(|event| handle(&connector, &client, event))).await
}
