//! The PostgreSQL pool: small (a Lambda instance serves one request at a time), lazy (the
//! first request connects, not the cold start), TLS-capable for RDS, statements cached per
//! connection (`prepare_cached`) so a warm read is one round trip.

use std::{str::FromStr, sync::Arc, time::Duration};

use anyhow::Context;
use deadpool_postgres::{Manager, ManagerConfig, RecyclingMethod, Runtime};
use tokio_postgres::config::SslMode;

use crate::config::{self, ConfigError, Env, Secret};

pub use deadpool_postgres::{Client, GenericClient, Pool, Transaction};

#[derive(Debug, Clone)]
pub struct DbConfig {
    pg: tokio_postgres::Config,
    pool_size: usize,
    ca_file: Option<String>,
}

impl DbConfig {
    /// `DATABASE_URL`, or the parts `DATABASE_HOST`, `DATABASE_PORT`, `DATABASE_NAME`,
    /// `DATABASE_USER`, `DATABASE_PASSWORD`, `DATABASE_SSLMODE` (which is how the template passes
    /// an RDS secret without putting it in a URL). `DATABASE_POOL_SIZE` (default 4),
    /// `DATABASE_CA_FILE` (a PEM bundle, e.g. the RDS CA, added to the web roots).
    pub fn from_env(env: &dyn Env) -> Result<Self, ConfigError> {
        let pg = match config::optional(env, "DATABASE_URL") {
            Some(url) => {
                tokio_postgres::Config::from_str(&url).map_err(|e| ConfigError::Invalid {
                    name: "DATABASE_URL",
                    reason: e.to_string(),
                })?
            }
            None => {
                let mut pg = tokio_postgres::Config::new();
                pg.host(&config::required(env, "DATABASE_HOST")?)
                    .port(config::parsed_or(env, "DATABASE_PORT", 5432)?)
                    .dbname(&config::required(env, "DATABASE_NAME")?)
                    .user(&config::required(env, "DATABASE_USER")?);
                let password: Secret<String> = config::secret(env, "DATABASE_PASSWORD")?;
                pg.password(password.expose());
                let mode = match config::optional(env, "DATABASE_SSLMODE").as_deref() {
                    None | Some("require") => SslMode::Require,
                    Some("prefer") => SslMode::Prefer,
                    Some("disable") => SslMode::Disable,
                    Some(other) => {
                        return Err(ConfigError::Invalid {
                            name: "DATABASE_SSLMODE",
                            reason: format!("{other} is not one of require, prefer, disable"),
                        });
                    }
                };
                pg.ssl_mode(mode);
                pg
            }
        };
        Ok(Self {
            pg,
            pool_size: config::parsed_or(env, "DATABASE_POOL_SIZE", 4)?,
            ca_file: config::optional(env, "DATABASE_CA_FILE"),
        })
    }

    pub fn from_url(url: &str, pool_size: usize) -> anyhow::Result<Self> {
        Ok(Self {
            pg: url.parse().context("parsing the database url")?,
            pool_size,
            ca_file: None,
        })
    }

    pub fn pg(&self) -> &tokio_postgres::Config {
        &self.pg
    }
}

fn tls(ca_file: Option<&str>) -> anyhow::Result<tokio_postgres_rustls::MakeRustlsConnect> {
    use rustls::pki_types::{CertificateDer, pem::PemObject};
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(path) = ca_file {
        for cert in CertificateDer::pem_file_iter(path).context("reading DATABASE_CA_FILE")? {
            roots.add(cert.context("parsing DATABASE_CA_FILE")?)?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
}

/// Builds the pool. Nothing connects until the first `get`.
pub fn pool(config: &DbConfig) -> anyhow::Result<Pool> {
    let manager = Manager::from_config(
        config.pg.clone(),
        tls(config.ca_file.as_deref())?,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    Pool::builder(manager)
        .max_size(config.pool_size)
        .wait_timeout(Some(Duration::from_secs(10)))
        .create_timeout(Some(Duration::from_secs(10)))
        .runtime(Runtime::Tokio1)
        .build()
        .context("building the database pool")
}

/// A `jsonb` (or `json`) column as PostgreSQL wrote it: its JSON text, borrowed from the row
/// and never parsed. PostgreSQL stores only valid JSON, so an answer can carry the text as it
/// is ([`crate::extract::Json::with_member`]) where decoding it and encoding it again, or even
/// checking it again, would be most of the cost of a read (an article's blocks).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JsonText<'a>(pub &'a [u8]);

impl<'a> tokio_postgres::types::FromSql<'a> for JsonText<'a> {
    fn from_sql(
        ty: &tokio_postgres::types::Type,
        raw: &'a [u8],
    ) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        if *ty == tokio_postgres::types::Type::JSONB {
            // jsonb's binary form is a version byte, 1 so far, then the text.
            match raw.split_first() {
                Some((1, text)) => Ok(Self(text)),
                _ => Err("unsupported jsonb encoding version".into()),
            }
        } else {
            Ok(Self(raw))
        }
    }

    fn accepts(ty: &tokio_postgres::types::Type) -> bool {
        matches!(
            *ty,
            tokio_postgres::types::Type::JSON | tokio_postgres::types::Type::JSONB
        )
    }
}

/// One value a dynamically built statement binds.
pub type Param<'a> = &'a (dyn tokio_postgres::types::ToSql + Sync);

/// The parameters of a statement built from the filters a request uses: `bind` keeps the
/// value and answers its placeholder (`$3`), so text and values cannot drift apart.
#[derive(Default)]
pub struct Binds<'a>(Vec<Param<'a>>);

impl<'a> Binds<'a> {
    pub fn new() -> Self {
        Self(Vec::new())
    }

    pub fn bind(&mut self, value: Param<'a>) -> String {
        self.0.push(value);
        format!("${}", self.0.len())
    }

    pub fn values(&self) -> &[Param<'a>] {
        &self.0
    }
}
