//! `TestApp`: the real application on a free port over its own database, dropped afterwards.
#![allow(dead_code)] // each test module uses a different subset of these helpers

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

use diesel::Connection;
use diesel::RunQueryDsl;
use diesel::pg::PgConnection;
use latchkey::config::Settings;
use latchkey::domain::key::KeyHasher;
use latchkey::startup::Application;
use latchkey::store::Store;

/// A master key used by every test app (tests never share a database, so sharing it is harmless).
pub const TEST_SECRET_KEY: &str =
    "5f1c0a7e3b9d2468ace13579bdf02468ace13579bdf02468ace13579bdf02468";

pub fn backend() -> Backend {
    match std::env::var("LATCHKEY_TEST_BACKEND").as_deref() {
        Ok("postgres") => Backend::Postgres,
        Ok("sqlite") | Err(_) => Backend::Sqlite,
        Ok(other) => panic!("LATCHKEY_TEST_BACKEND must be sqlite or postgres, not {other}"),
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

fn postgres_admin_url() -> String {
    std::env::var("LATCHKEY_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// A database that exists for one test and is removed when dropped.
pub enum TestDatabase {
    Sqlite { dir: tempfile::TempDir },
    Postgres { name: String, url: String },
}

impl TestDatabase {
    pub fn create(backend: Backend) -> Self {
        match backend {
            Backend::Sqlite => Self::Sqlite {
                dir: tempfile::tempdir().expect("temp dir"),
            },
            Backend::Postgres => {
                static COUNTER: AtomicU64 = AtomicU64::new(0);
                let name = format!(
                    "latchkey_test_{}_{}_{}",
                    std::process::id(),
                    COUNTER.fetch_add(1, Ordering::Relaxed),
                    uuid::Uuid::now_v7().simple()
                );
                let admin = postgres_admin_url();
                let mut conn = PgConnection::establish(&admin)
                    .expect("PostgreSQL must run for LATCHKEY_TEST_BACKEND=postgres");
                diesel::sql_query(format!("CREATE DATABASE {name}"))
                    .execute(&mut conn)
                    .expect("create test database");
                let base = admin.rsplit_once('/').map(|(b, _)| b).unwrap_or(&admin);
                let url = format!("{base}/{name}");
                Self::Postgres { name, url }
            }
        }
    }

    pub fn url(&self) -> String {
        match self {
            Self::Sqlite { dir } => {
                format!("sqlite://{}", dir.path().join("latchkey.db").display())
            }
            Self::Postgres { url, .. } => url.clone(),
        }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if let Self::Postgres { name, .. } = self
            && let Ok(mut conn) = PgConnection::establish(&postgres_admin_url())
        {
            let _ = diesel::sql_query(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .execute(&mut conn);
        }
    }
}

/// Settings for a test app over `db`, with `extra` environment on top.
pub fn test_env(db: &TestDatabase, extra: &[(&str, &str)]) -> HashMap<String, String> {
    let mut env: HashMap<String, String> = [
        ("DATABASE_URL", db.url()),
        ("LATCHKEY_BIND", "127.0.0.1:0".into()),
        ("LATCHKEY_SECRET_KEY", TEST_SECRET_KEY.into()),
        ("LATCHKEY_DB_POOL_SIZE", "4".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    for (k, v) in extra {
        env.insert((*k).to_owned(), (*v).to_owned());
    }
    env
}

/// A tenant made by `latchkey::bootstrap`, with its all-scopes root key.
#[derive(Clone, Debug)]
pub struct TestTenant {
    pub id: String,
    pub name: String,
    pub root_key: String,
    pub root_key_id: String,
}

pub struct TestApp {
    pub address: String,
    pub port: u16,
    pub client: reqwest::Client,
    pub store: Store,
    pub hasher: KeyHasher,
    pub db: TestDatabase,
}

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_with(&[]).await
    }

    /// Spawns the real application with extra environment settings.
    pub async fn spawn_with(extra: &[(&str, &str)]) -> Self {
        init_test_logging();
        let db = TestDatabase::create(backend());
        let env = test_env(&db, extra);
        let settings = Settings::load(&env, None).expect("test settings are valid");
        let hasher = settings.key_hasher().expect("test secret is valid");
        let app = Application::build(settings)
            .await
            .expect("application builds");
        let port = app.port();
        tokio::spawn(app.run_until_stopped());
        let store = Store::connect(
            &latchkey::config::DatabaseUrl::parse(&db.url()).expect("url"),
            2,
        )
        .expect("test store connects");
        Self {
            address: format!("http://127.0.0.1:{port}"),
            port,
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("http client"),
            store,
            hasher,
            db,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    /// Creates a tenant with an owner and an all-scopes root key.
    pub async fn tenant(&self, name: &str) -> TestTenant {
        let store = self.store.clone();
        let hasher = self.hasher.clone();
        let name = name.to_owned();
        tokio::task::spawn_blocking(move || {
            let done = latchkey::bootstrap::bootstrap(
                &store,
                &hasher,
                &name,
                &format!("owner@{name}.example.com"),
                Some("correct horse battery staple".into()),
            )
            .expect("bootstrap");
            TestTenant {
                id: done.tenant_id,
                name,
                root_key: done.root_key,
                root_key_id: done.root_key_id,
            }
        })
        .await
        .expect("bootstrap task")
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .send()
            .await
            .expect("request")
    }
}

/// Asserts a problem+json answer with the given status and code; returns the body.
pub async fn assert_problem(
    response: reqwest::Response,
    status: u16,
    code: &str,
) -> serde_json::Value {
    assert_eq!(response.status().as_u16(), status, "status");
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert_eq!(content_type, "application/problem+json");
    let body: serde_json::Value = response.json().await.expect("problem body is JSON");
    assert_eq!(body["code"], code, "{body}");
    assert_eq!(body["status"], status);
    assert!(body["detail"].as_str().is_some_and(|d| !d.is_empty()));
    body
}

/// Sends every app's logs (at debug level) to the file named by `LATCHKEY_TEST_LOG_FILE`, so the
/// test command can check that no plaintext key ever reaches a log line.
fn init_test_logging() {
    static INIT: std::sync::Once = std::sync::Once::new();
    INIT.call_once(|| {
        let Ok(path) = std::env::var("LATCHKEY_TEST_LOG_FILE") else {
            return;
        };
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .expect("open test log file");
        let _ = tracing_subscriber::fmt()
            .json()
            .with_env_filter(tracing_subscriber::EnvFilter::new("debug"))
            .with_writer(std::sync::Mutex::new(file))
            .try_init();
    });
}
