//! The test vocabulary: `TestApp` (the real application on a free port over its own database,
//! dropped afterwards), the [`World`] a test builds on it, one way to poll, one way to skip.
#![allow(dead_code)] // each test module uses a different subset of these helpers

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

use diesel::Connection;
use diesel::RunQueryDsl;
use diesel::pg::PgConnection;
use latchkey::config::Settings;
use latchkey::domain::time::Clock;
use latchkey::startup::Application;
use latchkey::store::Store;
use serde_json::Value;

mod api;
mod receiver;
mod world;

pub use api::{Api, metric};
pub use receiver::{Received, Receiver, Reply, verify_with_standardwebhooks};
pub use world::{Deployment, KeySpec, TestKey, TestSpace, TestTenant, World};

/// The password of every user the tests make (tenant owners, dashboard members).
pub const PASSWORD: &str = "correct horse battery staple";

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

/// The PostgreSQL server's own database, where test databases are created and dropped.
pub fn postgres_admin_url() -> String {
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
        // Calls stalled by a loaded CI machine are not Redis failures.
        ("LATCHKEY_REDIS_TIMEOUT_MS", "2000".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    for (k, v) in extra {
        env.insert((*k).to_owned(), (*v).to_owned());
    }
    env
}

/// The real application, spawned in this process on a free port over its own database.
pub struct TestApp {
    /// The app's REST API and the store behind it: where a test sets up its [`World`].
    pub setup: Deployment,
    pub address: String,
    pub db: TestDatabase,
    /// The app's clock: move it (`app.clock.advance(..)`) instead of waiting for time to pass.
    pub clock: Clock,
}

impl std::ops::Deref for TestApp {
    type Target = Deployment;
    fn deref(&self) -> &Deployment {
        &self.setup
    }
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
        let clock = Clock::system();
        let app = Application::build_with_clock(settings, clock.clone())
            .await
            .expect("application builds");
        let address = format!("http://127.0.0.1:{}", app.port());
        tokio::spawn(app.run_until_stopped());
        Self {
            setup: Deployment {
                api: Api::at(&address),
                store: store_of(&db),
                hasher,
            },
            address,
            db,
            clock,
        }
    }

    /// Starts a [`World`] on this app: a tenant `name` with an all-scopes root key.
    pub async fn with_tenant(self, name: &str) -> World {
        World::new(self, name).await
    }

    /// `.with_tenant(name)` then `.with_keyspace("{name}_live")`: where most tests start.
    pub async fn with_space(self, name: &str) -> World {
        let prefix = format!("{name}_live");
        self.with_tenant(name).await.with_keyspace(&prefix).await
    }
}

/// A small pool on `db`, for a test's own setup work.
pub fn store_of(db: &TestDatabase) -> Store {
    Store::connect(
        &latchkey::store::url::DatabaseUrl::parse(&db.url()).expect("url"),
        2,
    )
    .expect("test store connects")
}

/// Asserts a problem+json answer with the given status and code; returns the body.
pub async fn assert_problem(
    response: reqwest::Response,
    status: u16,
    code: &str,
) -> serde_json::Value {
    assert_eq!(response.status().as_u16(), status, "status");
    assert_eq!(api::content_type(&response), "application/problem+json");
    let body: serde_json::Value = response.json().await.expect("problem body is JSON");
    assert_eq!(body["code"], code, "{body}");
    assert_eq!(body["status"], status);
    assert!(body["detail"].as_str().is_some_and(|d| !d.is_empty()));
    body
}

/// Sends every app's logs (at debug level) to the file named by `LATCHKEY_TEST_LOG_FILE`, so the
/// test command can check that no plaintext key ever reaches a log line. The test client's
/// cookie jar (`cookie_store`) is left out: it logs every cookie it receives, and a random
/// 43-character session or CSRF value sometimes has the shape of a key.
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
            .with_env_filter(tracing_subscriber::EnvFilter::new("debug,cookie_store=off"))
            .with_writer(std::sync::Mutex::new(file))
            .try_init();
    });
}

// ---- the store behind the app's back -----------------------------------------------------------

impl TestApp {
    /// Moves a key's last credit refill back a day in the store, so its refill period has
    /// ended (to test refills without waiting).
    pub fn end_refill_period_in_store(&self, id: &str) {
        use latchkey::store::schema::api_keys;
        let mut conn = self.store.conn().expect("conn");
        let yesterday = chrono::Utc::now().naive_utc() - chrono::TimeDelta::days(1);
        let period_start = yesterday.date().and_hms_opt(0, 0, 0).expect("midnight");
        diesel::update(api_keys::table.filter(api_keys::id.eq(id)))
            .set(api_keys::credits_refilled_at.eq(Some(period_start)))
            .execute(&mut *conn)
            .expect("end refill period");
    }

    /// Changes a key's refill amount in the store behind the caches' back (as a change made
    /// through another node looks while this node still holds the key).
    pub fn set_refill_amount_in_store(&self, id: &str, amount: i64) {
        use latchkey::store::schema::api_keys;
        let mut conn = self.store.conn().expect("conn");
        diesel::update(api_keys::table.filter(api_keys::id.eq(id)))
            .set(api_keys::credits_refill_amount.eq(Some(amount)))
            .execute(&mut *conn)
            .expect("set refill amount");
    }

    /// Sets a key's expiry directly in the store (to test expiry without waiting).
    pub fn expire_key_in_store(&self, id: &str) {
        use latchkey::store::schema::api_keys;
        let mut conn = self.store.conn().expect("conn");
        let past = chrono::Utc::now().naive_utc() - chrono::TimeDelta::seconds(5);
        diesel::update(api_keys::table.filter(api_keys::id.eq(id)))
            .set(api_keys::expires_at.eq(Some(past)))
            .execute(&mut *conn)
            .expect("expire key");
    }
}

use diesel::{ExpressionMethods, QueryDsl};

/// Asserts the status and answers the JSON body.
pub async fn expect_json(response: reqwest::Response, status: u16) -> Value {
    let actual = response.status().as_u16();
    let text = response.text().await.expect("body");
    assert_eq!(actual, status, "unexpected status; body: {text}");
    serde_json::from_str(&text).unwrap_or_else(|_| panic!("body is not JSON: {text}"))
}

/// Shallow-merges the fields of `extra` (an object) into `base`.
pub fn merge(base: &mut Value, extra: Value) {
    if let (Some(base), Value::Object(extra)) = (base.as_object_mut(), extra) {
        base.extend(extra);
    }
}

/// The string at `value[field]`.
pub fn s(value: &Value, field: &str) -> String {
    value[field]
        .as_str()
        .unwrap_or_else(|| panic!("{field} is not a string in {value}"))
        .to_owned()
}

/// Asserts that no object anywhere in `value` has a field whose name contains `digest`, and that
/// `secret` appears nowhere in it.
pub fn assert_no_secret(value: &Value, secret: &str) {
    let text = value.to_string();
    assert!(!text.contains(secret), "the plaintext leaked: {text}");
    fn walk(value: &Value) {
        match value {
            Value::Object(map) => {
                for (k, v) in map {
                    assert!(!k.contains("digest"), "field {k} exposes a digest");
                    walk(v);
                }
            }
            Value::Array(items) => items.iter().for_each(walk),
            _ => {}
        }
    }
    walk(value);
}

// ---- waiting, ports, windows and skips -------------------------------------------------------

use std::time::{Duration, Instant};

/// How often [`within`] looks again.
const POLL_INTERVAL: Duration = Duration::from_millis(25);

/// The one way tests wait for something outside their control (another process, Redis, a
/// browser): polls `check` every 25 ms until it holds, and answers how long that took, or
/// `None` once `limit` has passed. Time inside the app is moved with `TestApp::clock` instead.
pub async fn within<F, Fut>(limit: Duration, mut check: F) -> Option<Duration>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    loop {
        if check().await {
            return Some(started.elapsed());
        }
        if started.elapsed() > limit {
            return None;
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

/// A port that was free a moment ago, for a server the test starts itself (Redis,
/// chromedriver); callers retry on the rare collision.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// Prints `SKIPPED <test>: <reason>` on stderr, so that a test which cannot run in this pass is
/// seen to be skipped rather than passing. Written to stderr itself: libtest captures what
/// `eprintln!` prints and shows it only for failures. `here` is the type name of a function
/// inside the test.
pub fn print_skip(here: &str, reason: &str) {
    use std::io::Write;
    let test = here.trim_end_matches("::here").replace("::{{closure}}", "");
    let test = test
        .split_once("::")
        .map_or(test.as_str(), |(_, path)| path);
    let _ = writeln!(std::io::stderr(), "SKIPPED {test}: {reason}");
}

/// Ends the running test, printing `SKIPPED <test>: <reason>` on stderr.
macro_rules! skip {
    ($reason:expr) => {{
        fn here() {}
        $crate::helpers::print_skip(std::any::type_name_of_val(&here), $reason);
        return;
    }};
}

/// Ends the running test unless `$condition` holds, printing `SKIPPED <test>: <reason>`.
macro_rules! skip_unless {
    ($condition:expr, $reason:expr) => {
        if !$condition {
            skip!($reason)
        }
    };
}

/// Why the multi-process tests skip in the SQLite pass. A cluster always uses PostgreSQL (and
/// Redis), so they would do exactly the same work there; `scripts/test` runs them in the
/// PostgreSQL pass.
pub const NEEDS_POSTGRES: &str =
    "needs PostgreSQL and Redis; runs with LATCHKEY_TEST_BACKEND=postgres";

/// Whether this is the pass that runs multi-process tests (see [`NEEDS_POSTGRES`]).
pub fn postgres_pass() -> bool {
    backend() == Backend::Postgres
}
