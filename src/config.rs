//! Typed settings: environment variables over an optional TOML file, validated once at start.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use secrecy::SecretString;
use serde::Deserialize;

use crate::domain::key::KeyHasher;
use crate::domain::secrets::{DerivedSecrets, MasterKey, MasterKeyError};
use crate::domain::token::SigningAlgorithm;
use crate::domain::webhook::OutboundPolicy;
use crate::routes::client_addr::TrustedProxies;
use crate::store::url::{DatabaseUrl, data_dir_of};
use crate::telemetry::LogFormat;

/// Where the default embedded database lives, relative to the working directory.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://data/latchkey.db";
/// Name of the generated master key file inside the data directory (embedded mode only).
pub const GENERATED_SECRET_FILE: &str = "secret.key";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    ReadFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path} is not valid TOML: {message}")]
    ParseFile { path: PathBuf, message: String },
    #[error("{name} is invalid: {message}")]
    Invalid { name: &'static str, message: String },
    #[error(
        "LATCHKEY_SECRET_KEY (or LATCHKEY_SECRET_KEY_FILE) is required when DATABASE_URL is PostgreSQL; generate one with `openssl rand -hex 32` and give the same value to every node"
    )]
    MissingSecretKey,
    #[error("{name}: {source}")]
    SecretKey {
        name: &'static str,
        source: MasterKeyError,
    },
    #[error("cannot read {path}: {source}")]
    SecretKeyFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot create data directory {path}: {source}")]
    DataDir {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// The optional TOML file: the same settings as the environment, lower-case names without prefix.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSettings {
    bind: Option<String>,
    database_url: Option<String>,
    redis_url: Option<String>,
    redis_timeout_ms: Option<u64>,
    secret_key_file: Option<PathBuf>,
    log_format: Option<String>,
    public_url: Option<String>,
    db_pool_size: Option<u32>,
    workers: Option<usize>,
    max_body_bytes: Option<usize>,
    stale_seconds: Option<u64>,
    management_rate_limit_per_minute: Option<u32>,
    token_ttl_seconds: Option<i64>,
    token_audience: Option<String>,
    signing_algorithm: Option<String>,
    leak_reporter_keys: Option<PathBuf>,
    trusted_proxies: Option<String>,
    metrics_token: Option<String>,
    shutdown_delay_seconds: Option<u64>,
    webhook_allow_http: Option<bool>,
    webhook_allow_private: Option<bool>,
    webhook_claim_seconds: Option<u64>,
    audit_retention_days: Option<u32>,
}

/// Everything the process needs, validated.
#[derive(Debug)]
pub struct Settings {
    pub bind: SocketAddr,
    pub database: DatabaseUrl,
    pub redis_url: Option<String>,
    /// How long one Redis call may take before it counts as failed (and the node falls back).
    pub redis_timeout_ms: u64,
    pub log_format: LogFormat,
    pub public_url: String,
    pub db_pool_size: u32,
    /// HTTP worker threads, each serving its own connections.
    pub workers: usize,
    pub max_body_bytes: usize,
    pub stale_seconds: u64,
    pub management_rate_limit_per_minute: u32,
    pub secret: SecretSource,
    /// Lifetime of issued access tokens.
    pub token_ttl_seconds: i64,
    pub signing_algorithm: SigningAlgorithm,
    /// GitHub-format public keys of secret scanners allowed to report leaks; none: intake refused.
    pub leak_reporter_keys: Option<PathBuf>,
    /// Peers whose `X-Forwarded-For` names the client (load balancers); none by default.
    pub trusted_proxies: TrustedProxies,
    /// The bearer token `/metrics` requires; none: `/metrics` is open.
    pub metrics_token: Option<SecretString>,
    /// After SIGTERM, how long the node keeps accepting connections (answering `/readyz` with
    /// 503 `draining`) before it stops listening, so a balancer polling readiness moves on first.
    pub shutdown_delay_seconds: u64,
    /// Where webhook deliveries may go: https and public addresses only, unless allowed.
    pub webhook_policy: OutboundPolicy,
    /// How long a node's claim on a webhook delivery lasts: past it (the node died), another
    /// node sends it. Longer than a delivery's timeout.
    pub webhook_claim_seconds: u64,
    /// How long audit events and usage rollups are kept before the scheduled purge deletes them.
    pub audit_retention_days: u32,
}

/// How the master secret is obtained. Resolved (and, in embedded mode, generated) by [`Settings::master_keys`].
#[derive(Debug)]
pub enum SecretSource {
    Given {
        current: MasterKey,
        previous: Vec<MasterKey>,
    },
    /// Embedded default with no key given: read or create `<data dir>/secret.key`.
    Generated {
        path: PathBuf,
        previous: Vec<MasterKey>,
    },
}

/// A source of raw setting values; the process environment in production, a map in tests.
pub trait Env {
    fn var(&self, name: &str) -> Option<String>;
}

pub struct ProcessEnv;

impl Env for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok().filter(|v| !v.is_empty())
    }
}

impl Env for std::collections::HashMap<String, String> {
    fn var(&self, name: &str) -> Option<String> {
        self.get(name).filter(|v| !v.is_empty()).cloned()
    }
}

impl<const N: usize> Env for [(&str, &str); N] {
    fn var(&self, name: &str) -> Option<String> {
        self.iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| (*v).to_owned())
    }
}

impl Settings {
    /// Loads settings from `env`, layered over the TOML file named by `config_path` or `LATCHKEY_CONFIG`.
    pub fn load(env: &impl Env, config_path: Option<&Path>) -> Result<Self, ConfigError> {
        let file = FileSettings::find(env, config_path)?;
        let http = HttpSettings::load(env, &file)?;
        let store = StoreSettings::load(env, &file)?;
        let redis = RedisSettings::load(env, &file)?;
        let log_format = log_format(env, &file)?;
        let tokens = TokenSettings::load(env, &file)?;
        let leak_reporter_keys = env
            .var("LATCHKEY_LEAK_REPORTER_KEYS")
            .map(PathBuf::from)
            .or(file.leak_reporter_keys);
        let secret = SecretSource::load(env, file.secret_key_file, &store.database)?;
        let webhook_policy = OutboundPolicy {
            allow_http: flag(env, "LATCHKEY_WEBHOOK_ALLOW_HTTP", file.webhook_allow_http)?,
            allow_private: flag(
                env,
                "LATCHKEY_WEBHOOK_ALLOW_PRIVATE",
                file.webhook_allow_private,
            )?,
        };
        // A claim must outlive one attempt (10 s), or a slow live node's delivery is sent twice.
        let webhook_claim_seconds = number(
            env,
            "LATCHKEY_WEBHOOK_CLAIM_SECONDS",
            file.webhook_claim_seconds,
            60,
            12..=3_600,
        )?;
        let audit_retention_days = number(
            env,
            "LATCHKEY_AUDIT_RETENTION_DAYS",
            file.audit_retention_days,
            400,
            1..=36_500,
        )?;

        Ok(Self {
            bind: http.bind,
            database: store.database,
            redis_url: redis.url,
            redis_timeout_ms: redis.timeout_ms,
            log_format,
            public_url: http.public_url,
            db_pool_size: store.pool_size,
            workers: http.workers,
            max_body_bytes: http.max_body_bytes,
            stale_seconds: store.stale_seconds,
            management_rate_limit_per_minute: http.management_rate_limit_per_minute,
            secret,
            token_ttl_seconds: tokens.ttl_seconds,
            signing_algorithm: tokens.signing_algorithm,
            leak_reporter_keys,
            trusted_proxies: http.trusted_proxies,
            metrics_token: http.metrics_token,
            shutdown_delay_seconds: http.shutdown_delay_seconds,
            webhook_policy,
            webhook_claim_seconds,
            audit_retention_days,
        })
    }

    /// The secrets derived from the current master key and from each retired one. In embedded
    /// mode with no key given, the key is read from the data directory or generated there on
    /// first start (mode 0600).
    pub fn derived_secrets(&self) -> Result<(DerivedSecrets, Vec<DerivedSecrets>), ConfigError> {
        let (current, previous) = match &self.secret {
            SecretSource::Given { current, previous } => (current.derive(), previous),
            SecretSource::Generated { path, previous } => {
                (load_or_generate_secret(path)?.derive(), previous)
            }
        };
        Ok((current, previous.iter().map(MasterKey::derive).collect()))
    }

    /// The hasher that generates, parses and digests keys under these secrets.
    pub fn key_hasher(&self) -> Result<KeyHasher, ConfigError> {
        let (current, previous) = self.derived_secrets()?;
        Ok(KeyHasher::new(&current, &previous))
    }
}

impl FileSettings {
    /// The file named by `config_path` or `LATCHKEY_CONFIG`; none named: every value unset.
    fn find(env: &impl Env, config_path: Option<&Path>) -> Result<Self, ConfigError> {
        let config_path = config_path
            .map(Path::to_path_buf)
            .or_else(|| env.var("LATCHKEY_CONFIG").map(PathBuf::from));
        match config_path {
            Some(path) => read_file_settings(&path),
            None => Ok(Self::default()),
        }
    }
}

/// How the server listens, how it is reached, and what it accepts from clients.
struct HttpSettings {
    bind: SocketAddr,
    public_url: String,
    workers: usize,
    max_body_bytes: usize,
    management_rate_limit_per_minute: u32,
    trusted_proxies: TrustedProxies,
    metrics_token: Option<SecretString>,
    shutdown_delay_seconds: u64,
}

/// The shortest `LATCHKEY_METRICS_TOKEN` accepted.
const MIN_METRICS_TOKEN_CHARS: usize = 16;

impl HttpSettings {
    fn load(env: &impl Env, file: &FileSettings) -> Result<Self, ConfigError> {
        let bind_raw = env
            .var("LATCHKEY_BIND")
            .or_else(|| file.bind.clone())
            .unwrap_or_else(|| "127.0.0.1:8080".into());
        let bind: SocketAddr = bind_raw.parse().map_err(|_| ConfigError::Invalid {
            name: "LATCHKEY_BIND",
            message: format!("`{bind_raw}` is not an address such as 127.0.0.1:8080"),
        })?;

        let public_url = env
            .var("LATCHKEY_PUBLIC_URL")
            .or_else(|| file.public_url.clone())
            .unwrap_or_else(|| format!("http://{bind}"));
        if !(public_url.starts_with("http://") || public_url.starts_with("https://")) {
            return Err(ConfigError::Invalid {
                name: "LATCHKEY_PUBLIC_URL",
                message: "expected an http:// or https:// URL".into(),
            });
        }
        let public_url = public_url.trim_end_matches('/').to_owned();

        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        let workers = number(env, "LATCHKEY_WORKERS", file.workers, cores, 1..=1024)?;
        let max_body_bytes = number(
            env,
            "LATCHKEY_MAX_BODY_BYTES",
            file.max_body_bytes,
            256 * 1024,
            1024..=16 * 1024 * 1024,
        )?;
        let management_rate_limit_per_minute = number(
            env,
            "LATCHKEY_MANAGEMENT_RATE_LIMIT",
            file.management_rate_limit_per_minute,
            600,
            1..=1_000_000,
        )?;
        let shutdown_delay_seconds = number(
            env,
            "LATCHKEY_SHUTDOWN_DELAY_SECONDS",
            file.shutdown_delay_seconds,
            0,
            0..=300,
        )?;
        let trusted_proxies = TrustedProxies::parse(
            &env.var("LATCHKEY_TRUSTED_PROXIES")
                .or_else(|| file.trusted_proxies.clone())
                .unwrap_or_default(),
        )
        .map_err(|message| ConfigError::Invalid {
            name: "LATCHKEY_TRUSTED_PROXIES",
            message,
        })?;
        let metrics_token = env
            .var("LATCHKEY_METRICS_TOKEN")
            .or_else(|| file.metrics_token.clone());
        if let Some(token) = &metrics_token
            && (token.chars().count() < MIN_METRICS_TOKEN_CHARS || !is_token68(token))
        {
            return Err(ConfigError::Invalid {
                name: "LATCHKEY_METRICS_TOKEN",
                message: format!(
                    "expected at least {MIN_METRICS_TOKEN_CHARS} characters of letters, digits \
                     and -._~+/= (e.g. `openssl rand -hex 32`)"
                ),
            });
        }
        Ok(Self {
            bind,
            public_url,
            workers,
            max_body_bytes,
            management_rate_limit_per_minute,
            trusted_proxies,
            metrics_token: metrics_token.map(SecretString::from),
            shutdown_delay_seconds,
        })
    }
}

/// A value a bearer token can carry (RFC 6750 `b64token`).
fn is_token68(token: &str) -> bool {
    token
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-._~+/=".contains(&b))
}

/// The database, and how long cached answers may stand in for it while it is down.
struct StoreSettings {
    database: DatabaseUrl,
    pool_size: u32,
    stale_seconds: u64,
}

impl StoreSettings {
    fn load(env: &impl Env, file: &FileSettings) -> Result<Self, ConfigError> {
        let database = DatabaseUrl::parse(
            &env.var("DATABASE_URL")
                .or_else(|| file.database_url.clone())
                .unwrap_or_else(|| DEFAULT_DATABASE_URL.into()),
        )
        .map_err(|err| ConfigError::Invalid {
            name: "DATABASE_URL",
            message: err.0,
        })?;
        let pool_size = number(env, "LATCHKEY_DB_POOL_SIZE", file.db_pool_size, 16, 1..=512)?;
        let stale_seconds = number(
            env,
            "LATCHKEY_STALE_SECONDS",
            file.stale_seconds,
            60,
            0..=86_400,
        )?;
        Ok(Self {
            database,
            pool_size,
            stale_seconds,
        })
    }
}

/// The shared Redis, if any, and how long one call to it may take.
struct RedisSettings {
    url: Option<String>,
    timeout_ms: u64,
}

impl RedisSettings {
    fn load(env: &impl Env, file: &FileSettings) -> Result<Self, ConfigError> {
        let url = env.var("REDIS_URL").or_else(|| file.redis_url.clone());
        if let Some(url) = &url
            && !(url.starts_with("redis://") || url.starts_with("rediss://"))
        {
            return Err(ConfigError::Invalid {
                name: "REDIS_URL",
                message: "expected redis://host:port or rediss://host:port".into(),
            });
        }
        let timeout_ms = number(
            env,
            "LATCHKEY_REDIS_TIMEOUT_MS",
            file.redis_timeout_ms,
            50,
            10..=60_000,
        )?;
        Ok(Self { url, timeout_ms })
    }
}

fn log_format(env: &impl Env, file: &FileSettings) -> Result<LogFormat, ConfigError> {
    match env
        .var("LATCHKEY_LOG_FORMAT")
        .or_else(|| file.log_format.clone())
        .as_deref()
    {
        None | Some("pretty") => Ok(LogFormat::Pretty),
        Some("json") => Ok(LogFormat::Json),
        Some(other) => Err(ConfigError::Invalid {
            name: "LATCHKEY_LOG_FORMAT",
            message: format!("`{other}` is not one of pretty, json"),
        }),
    }
}

/// The access tokens the OAuth endpoints issue.
struct TokenSettings {
    ttl_seconds: i64,
    signing_algorithm: SigningAlgorithm,
}

impl TokenSettings {
    fn load(env: &impl Env, file: &FileSettings) -> Result<Self, ConfigError> {
        let ttl_seconds = number(
            env,
            "LATCHKEY_TOKEN_TTL_SECONDS",
            file.token_ttl_seconds,
            600,
            1..=86_400,
        )?;
        // A deployment-wide audience would let one tenant's tokens pass for another's: the
        // audience is each keyspace's now. Refuse the old setting rather than ignore it.
        if env.var("LATCHKEY_TOKEN_AUDIENCE").is_some() || file.token_audience.is_some() {
            return Err(ConfigError::Invalid {
                name: "LATCHKEY_TOKEN_AUDIENCE",
                message: "was removed: each keyspace sets the audience of its tokens \
                          (`token_audience`, by default {issuer}/keyspaces/{keyspace_id})"
                    .into(),
            });
        }
        let signing_algorithm = match env
            .var("LATCHKEY_SIGNING_ALGORITHM")
            .or_else(|| file.signing_algorithm.clone())
        {
            None => SigningAlgorithm::EdDSA,
            Some(raw) => {
                SigningAlgorithm::parse(raw.trim()).ok_or_else(|| ConfigError::Invalid {
                    name: "LATCHKEY_SIGNING_ALGORITHM",
                    message: format!("`{raw}` is not one of EdDSA, ES256"),
                })?
            }
        };
        Ok(Self {
            ttl_seconds,
            signing_algorithm,
        })
    }
}

impl SecretSource {
    /// The master key given in the environment or a key file (`file_path` unless the
    /// environment names one); with neither, generated for SQLite and required for PostgreSQL.
    fn load(
        env: &impl Env,
        file_path: Option<PathBuf>,
        database: &DatabaseUrl,
    ) -> Result<Self, ConfigError> {
        let previous = previous_secret_keys(env)?;
        let secret_file = env
            .var("LATCHKEY_SECRET_KEY_FILE")
            .map(PathBuf::from)
            .or(file_path);
        if let Some(raw) = env.var("LATCHKEY_SECRET_KEY") {
            let current = MasterKey::parse(&raw).map_err(|source| ConfigError::SecretKey {
                name: "LATCHKEY_SECRET_KEY",
                source,
            })?;
            Ok(Self::Given { current, previous })
        } else if let Some(path) = secret_file {
            let raw = std::fs::read_to_string(&path)
                .map_err(|source| ConfigError::SecretKeyFile { path, source })?;
            let current = MasterKey::parse(&raw).map_err(|source| ConfigError::SecretKey {
                name: "LATCHKEY_SECRET_KEY_FILE",
                source,
            })?;
            Ok(Self::Given { current, previous })
        } else {
            match database {
                DatabaseUrl::Postgres(_) => Err(ConfigError::MissingSecretKey),
                DatabaseUrl::Sqlite(db_path) => Ok(Self::Generated {
                    path: data_dir_of(db_path).join(GENERATED_SECRET_FILE),
                    previous,
                }),
            }
        }
    }
}

/// Retired master keys whose secrets still verify, comma-separated.
fn previous_secret_keys(env: &impl Env) -> Result<Vec<MasterKey>, ConfigError> {
    let Some(list) = env.var("LATCHKEY_PREVIOUS_SECRET_KEYS") else {
        return Ok(Vec::new());
    };
    list.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            MasterKey::parse(s).map_err(|source| ConfigError::SecretKey {
                name: "LATCHKEY_PREVIOUS_SECRET_KEYS",
                source,
            })
        })
        .collect()
}

fn read_file_settings(path: &Path) -> Result<FileSettings, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::ReadFile {
        path: path.to_owned(),
        source,
    })?;
    toml::from_str(&text).map_err(|e| ConfigError::ParseFile {
        path: path.to_owned(),
        message: e.message().to_owned(),
    })
}

/// A yes/no setting: `1`/`true`/`yes` or `0`/`false`/`no`, default no.
fn flag(env: &impl Env, name: &'static str, file_value: Option<bool>) -> Result<bool, ConfigError> {
    match env.var(name) {
        None => Ok(file_value.unwrap_or(false)),
        Some(raw) => match raw.trim().to_ascii_lowercase().as_str() {
            "1" | "true" | "yes" => Ok(true),
            "0" | "false" | "no" => Ok(false),
            _ => Err(ConfigError::Invalid {
                name,
                message: format!("`{raw}` is not 1 or 0"),
            }),
        },
    }
}

fn number<T>(
    env: &impl Env,
    name: &'static str,
    file_value: Option<T>,
    default: T,
    range: std::ops::RangeInclusive<T>,
) -> Result<T, ConfigError>
where
    T: std::str::FromStr + PartialOrd + std::fmt::Display + Copy,
{
    let value = match env.var(name) {
        Some(raw) => raw.trim().parse::<T>().map_err(|_| ConfigError::Invalid {
            name,
            message: format!("`{raw}` is not a number"),
        })?,
        None => file_value.unwrap_or(default),
    };
    if !range.contains(&value) {
        return Err(ConfigError::Invalid {
            name,
            message: format!("{value} is outside {}..={}", range.start(), range.end()),
        });
    }
    Ok(value)
}

fn load_or_generate_secret(path: &Path) -> Result<MasterKey, ConfigError> {
    match std::fs::read_to_string(path) {
        Ok(raw) => MasterKey::parse(&raw).map_err(|source| ConfigError::SecretKey {
            name: "generated secret key file",
            source,
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let dir = data_dir_of(path);
            crate::store::create_private_dir(&dir).map_err(|source| ConfigError::DataDir {
                path: dir.clone(),
                source,
            })?;
            let key = MasterKey::generate();
            write_private_file(path, &key.to_hex()).map_err(|source| {
                ConfigError::SecretKeyFile {
                    path: path.to_owned(),
                    source,
                }
            })?;
            tracing::warn!(
                path = %path.display(),
                "generated a new LATCHKEY_SECRET_KEY for this embedded install; back it up: \
                 without it no existing key verifies"
            );
            Ok(key)
        }
        Err(source) => Err(ConfigError::SecretKeyFile {
            path: path.to_owned(),
            source,
        }),
    }
}

fn write_private_file(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut file = crate::store::create_private_file(path)?;
    file.write_all(contents.as_bytes())?;
    file.write_all(b"\n")?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "0000000000000000000000000000000000000000000000000000000000000001";

    #[test]
    fn defaults_to_embedded_sqlite_with_generated_secret() {
        let s = Settings::load(&[("X", "")], None).expect("defaults are valid");
        assert_eq!(
            s.database,
            DatabaseUrl::Sqlite(PathBuf::from("data/latchkey.db"))
        );
        assert_eq!(s.bind.to_string(), "127.0.0.1:8080");
        assert_eq!(s.shutdown_delay_seconds, 0);
        assert!(
            matches!(s.secret, SecretSource::Generated { ref path, .. } if path == Path::new("data/secret.key"))
        );
    }

    #[test]
    fn workers_default_to_the_cpu_count() {
        let cores = std::thread::available_parallelism().unwrap().get();
        assert_eq!(Settings::load(&[("X", "")], None).unwrap().workers, cores);
        let s = Settings::load(&[("LATCHKEY_WORKERS", "3")], None).unwrap();
        assert_eq!(s.workers, 3);
    }

    #[test]
    fn postgres_requires_a_secret_key() {
        let err = Settings::load(&[("DATABASE_URL", "postgres://localhost/x")], None).unwrap_err();
        assert!(matches!(err, ConfigError::MissingSecretKey));
        assert!(err.to_string().contains("LATCHKEY_SECRET_KEY"));
    }

    #[test]
    fn unknown_scheme_is_named() {
        let err = Settings::load(&[("DATABASE_URL", "mysql://localhost/x")], None).unwrap_err();
        assert_eq!(
            err.to_string(),
            "DATABASE_URL is invalid: unknown scheme `mysql://`; use postgres:// or sqlite://"
        );
    }

    #[test]
    fn bad_values_name_their_variable() {
        for (name, value) in [
            ("LATCHKEY_BIND", "nope"),
            ("LATCHKEY_LOG_FORMAT", "xml"),
            ("LATCHKEY_DB_POOL_SIZE", "0"),
            ("LATCHKEY_DB_POOL_SIZE", "many"),
            ("LATCHKEY_WORKERS", "0"),
            ("REDIS_URL", "localhost:6379"),
            ("LATCHKEY_SECRET_KEY", "short"),
            ("LATCHKEY_TRUSTED_PROXIES", "10.0.0.0/8, lb.internal"),
            ("LATCHKEY_SHUTDOWN_DELAY_SECONDS", "301"),
        ] {
            let err = Settings::load(&[(name, value)], None).unwrap_err();
            assert!(err.to_string().starts_with(name), "{name}: {err}");
        }
    }

    #[test]
    fn environment_overrides_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("latchkey.toml");
        std::fs::write(&path, "bind = \"127.0.0.1:9000\"\nlog_format = \"json\"\n").unwrap();
        let s = Settings::load(&[("LATCHKEY_BIND", "127.0.0.1:9001")], Some(&path)).unwrap();
        assert_eq!(s.bind.port(), 9001);
        assert_eq!(s.log_format, LogFormat::Json);

        std::fs::write(&path, "bogus = 1\n").unwrap();
        let err = Settings::load(&[("X", "")], Some(&path)).unwrap_err();
        assert!(matches!(err, ConfigError::ParseFile { .. }), "{err}");
    }

    #[test]
    fn every_file_value_reaches_its_setting() {
        let dir = tempfile::tempdir().unwrap();
        let (path, key_file) = (dir.path().join("latchkey.toml"), dir.path().join("key"));
        std::fs::write(&key_file, KEY).unwrap();
        let toml = format!(
            r#"bind = "127.0.0.1:9000"
database_url = "postgres://db/latchkey"
redis_url = "redis://cache:6379"
redis_timeout_ms = 700
secret_key_file = "{}"
log_format = "json"
public_url = "https://keys.example/"
db_pool_size = 8
workers = 3
max_body_bytes = 4096
stale_seconds = 30
management_rate_limit_per_minute = 100
token_ttl_seconds = 300
signing_algorithm = "ES256"
leak_reporter_keys = "reporters.json"
trusted_proxies = "10.0.0.0/8"
shutdown_delay_seconds = 5
"#,
            key_file.display()
        );
        std::fs::write(&path, toml).unwrap();
        let s = Settings::load(&[("X", "")], Some(&path)).unwrap();
        assert_eq!(s.bind.port(), 9000);
        assert!(matches!(s.database, DatabaseUrl::Postgres(_)));
        assert_eq!(s.redis_url.as_deref(), Some("redis://cache:6379"));
        assert_eq!(s.redis_timeout_ms, 700);
        assert!(matches!(s.secret, SecretSource::Given { .. }));
        assert_eq!(s.log_format, LogFormat::Json);
        assert_eq!(s.public_url, "https://keys.example");
        assert_eq!((s.db_pool_size, s.workers, s.max_body_bytes), (8, 3, 4096));
        assert_eq!(s.stale_seconds, 30);
        assert_eq!(s.management_rate_limit_per_minute, 100);
        assert_eq!(s.token_ttl_seconds, 300);
        assert_eq!(s.signing_algorithm, SigningAlgorithm::ES256);
        assert_eq!(s.leak_reporter_keys, Some(PathBuf::from("reporters.json")));
        assert_eq!(
            s.trusted_proxies,
            TrustedProxies::parse("10.0.0.0/8").unwrap()
        );
        assert_eq!(s.shutdown_delay_seconds, 5);
    }

    #[test]
    fn generated_secret_is_private_and_stable() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("sub/latchkey.db");
        let url = format!("sqlite://{}", db.display());
        let s = Settings::load(&[("DATABASE_URL", url.as_str())], None).unwrap();
        let (first, _) = s.derived_secrets().unwrap();
        let (second, _) = s.derived_secrets().unwrap();
        assert_eq!(first.pepper.expose(), second.pepper.expose());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join("sub/secret.key"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
            let mode = std::fs::metadata(dir.path().join("sub"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o700, "the data directory it created");
        }
        let given = Settings::load(&[("LATCHKEY_SECRET_KEY", KEY)], None).unwrap();
        assert!(matches!(given.secret, SecretSource::Given { .. }));
    }

    #[test]
    fn metrics_token_is_optional_and_long() {
        assert!(Settings::load(&[], None).unwrap().metrics_token.is_none());
        let token = "0123456789abcdef0123";
        let s = Settings::load(&[("LATCHKEY_METRICS_TOKEN", token)], None).unwrap();
        use secrecy::ExposeSecret;
        assert_eq!(s.metrics_token.unwrap().expose_secret(), token);
        for bad in ["short", "0123456789 abcdef0123"] {
            let err = Settings::load(&[("LATCHKEY_METRICS_TOKEN", bad)], None).unwrap_err();
            assert!(err.to_string().contains("LATCHKEY_METRICS_TOKEN"), "{err}");
        }
    }

    #[test]
    fn token_settings_default_and_validate() {
        let s = Settings::load(&[("LATCHKEY_PUBLIC_URL", "https://auth.example/")], None).unwrap();
        assert_eq!(s.token_ttl_seconds, 600);
        assert_eq!(s.signing_algorithm, SigningAlgorithm::EdDSA);
        assert!(s.leak_reporter_keys.is_none());
        let s = Settings::load(&[("LATCHKEY_SIGNING_ALGORITHM", "ES256")], None).unwrap();
        assert_eq!(s.signing_algorithm, SigningAlgorithm::ES256);
        for (name, value) in [
            ("LATCHKEY_TOKEN_AUDIENCE", "api://billing"),
            ("LATCHKEY_SIGNING_ALGORITHM", "HS256"),
            ("LATCHKEY_SIGNING_ALGORITHM", "none"),
            ("LATCHKEY_TOKEN_TTL_SECONDS", "0"),
            ("LATCHKEY_TOKEN_TTL_SECONDS", "86401"),
        ] {
            let err = Settings::load(&[(name, value)], None).unwrap_err();
            assert!(err.to_string().starts_with(name), "{name}: {err}");
        }
    }

    #[test]
    fn webhook_outbound_rules_are_strict_unless_relaxed() {
        let s = Settings::load(&[("LATCHKEY_WORKERS", "1")], None).unwrap();
        assert_eq!(s.webhook_policy, OutboundPolicy::default());
        assert_eq!(s.webhook_claim_seconds, 60);
        let s = Settings::load(
            &[
                ("LATCHKEY_WEBHOOK_ALLOW_HTTP", "1"),
                ("LATCHKEY_WEBHOOK_ALLOW_PRIVATE", "true"),
                ("LATCHKEY_WEBHOOK_CLAIM_SECONDS", "15"),
            ],
            None,
        )
        .unwrap();
        assert!(s.webhook_policy.allow_http && s.webhook_policy.allow_private);
        assert_eq!(s.webhook_claim_seconds, 15);
        for (name, bad) in [
            ("LATCHKEY_WEBHOOK_ALLOW_HTTP", "maybe"),
            ("LATCHKEY_WEBHOOK_CLAIM_SECONDS", "5"),
        ] {
            let err = Settings::load(&[(name, bad)], None).unwrap_err();
            assert!(err.to_string().contains(name), "{err}");
        }
    }

    #[test]
    fn audit_retention_defaults_to_400_days_and_is_bounded() {
        let s = Settings::load(&[("LATCHKEY_WORKERS", "1")], None).unwrap();
        assert_eq!(s.audit_retention_days, 400);
        let s = Settings::load(&[("LATCHKEY_AUDIT_RETENTION_DAYS", "30")], None).unwrap();
        assert_eq!(s.audit_retention_days, 30);
        for bad in ["0", "36501", "a year"] {
            let err = Settings::load(&[("LATCHKEY_AUDIT_RETENTION_DAYS", bad)], None).unwrap_err();
            assert!(
                err.to_string().contains("LATCHKEY_AUDIT_RETENTION_DAYS"),
                "{err}"
            );
        }
    }
}
