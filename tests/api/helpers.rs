//! `TestApp`: the real application on a free port over its own database, dropped afterwards.
#![allow(dead_code)] // each test module uses a different subset of these helpers

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

use diesel::Connection;
use diesel::RunQueryDsl;
use diesel::pg::PgConnection;
use latchkey::config::Settings;
use latchkey::domain::key::KeyHasher;
use latchkey::domain::time::Clock;
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
    /// The app's clock: move it (`app.clock.advance(..)`) instead of waiting for time to pass.
    pub clock: Clock,
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
        let port = app.port();
        tokio::spawn(app.run_until_stopped());
        let store = Store::connect(
            &latchkey::store::url::DatabaseUrl::parse(&db.url()).expect("url"),
            2,
        )
        .expect("test store connects");
        Self {
            address: format!("http://127.0.0.1:{port}"),
            port,
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                // The server closes a connection idle for 5 s; a client that reused one that old could
                // send on it just as it closes. Idle connections are dropped well before.
                .pool_idle_timeout(std::time::Duration::from_secs(1))
                .build()
                .expect("http client"),
            store,
            hasher,
            db,
            clock,
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
                root_key: done.root_key.expose_secret().to_owned(),
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

// ---- REST API helpers (key lifecycle tests) ----

use serde_json::{Value, json};

/// A tenant with one keyspace, the usual starting point of a key lifecycle test.
#[derive(Clone, Debug)]
pub struct TestSpace {
    pub tenant: TestTenant,
    pub keyspace_id: String,
    pub prefix: String,
}

impl TestSpace {
    pub fn token(&self) -> &str {
        &self.tenant.root_key
    }
}

impl TestApp {
    /// Any request with an optional bearer token and an optional JSON body.
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> reqwest::Response {
        let mut request = self.client.request(method, self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        request.send().await.expect("request")
    }

    pub async fn get_as(&self, path: &str, token: &str) -> reqwest::Response {
        self.call(reqwest::Method::GET, path, Some(token), None)
            .await
    }

    pub async fn post_json(&self, path: &str, token: &str, body: &Value) -> reqwest::Response {
        self.call(reqwest::Method::POST, path, Some(token), Some(body))
            .await
    }

    pub async fn patch_json(&self, path: &str, token: &str, body: &Value) -> reqwest::Response {
        self.call(reqwest::Method::PATCH, path, Some(token), Some(body))
            .await
    }

    /// A POST with a raw body and content type (for malformed input).
    pub async fn post_raw(
        &self,
        path: &str,
        token: &str,
        content_type: &str,
        body: impl Into<reqwest::Body>,
    ) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .bearer_auth(token)
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .expect("request")
    }

    /// GET that must answer 200 with JSON.
    pub async fn get_ok(&self, path: &str, token: &str) -> Value {
        expect_json(self.get_as(path, token).await, 200).await
    }

    pub async fn create_keyspace(&self, token: &str, prefix: &str) -> Value {
        let body = json!({"name": format!("{prefix} keys"), "prefix": prefix});
        expect_json(self.post_json("/v1/keyspaces", token, &body).await, 201).await
    }

    /// A new tenant with one keyspace whose prefix is `{name}_live`.
    pub async fn space(&self, name: &str) -> TestSpace {
        let tenant = self.tenant(name).await;
        let prefix = format!("{name}_live");
        let keyspace = self.create_keyspace(&tenant.root_key, &prefix).await;
        TestSpace {
            keyspace_id: keyspace["id"].as_str().expect("keyspace id").to_owned(),
            tenant,
            prefix,
        }
    }

    /// Creates a key in `space`'s keyspace with `extra` fields; answers the 201 body.
    pub async fn create_key(&self, space: &TestSpace, extra: Value) -> Value {
        let mut body = json!({"keyspace_id": space.keyspace_id});
        merge(&mut body, extra);
        expect_json(self.post_json("/v1/keys", space.token(), &body).await, 201).await
    }

    /// Verifies with a full body; answers the 200 body.
    pub async fn verify_with(&self, token: &str, body: Value) -> Value {
        expect_json(self.post_json("/v1/keys/verify", token, &body).await, 200).await
    }

    pub async fn verify(&self, token: &str, key: &str) -> Value {
        self.verify_with(token, json!({"key": key})).await
    }

    /// The verify code of `key` for `token`'s tenant.
    pub async fn verify_code(&self, token: &str, key: &str) -> String {
        self.verify(token, key).await["code"]
            .as_str()
            .expect("code")
            .to_owned()
    }

    pub async fn get_key(&self, token: &str, id: &str) -> Value {
        self.get_ok(&format!("/v1/keys/{id}"), token).await
    }

    /// Creates a root key with `scopes`; answers the 201 body (with `key`).
    pub async fn create_root_key(&self, token: &str, scopes: &[&str]) -> Value {
        let body = json!({"name": "limited", "scopes": scopes});
        expect_json(self.post_json("/v1/root-keys", token, &body).await, 201).await
    }

    /// Every audit event matching `query` (e.g. `action=key.create`), newest first, one page.
    pub async fn audit(&self, token: &str, query: &str) -> Vec<Value> {
        let page = self
            .get_ok(&format!("/v1/audit-events?limit=100&{query}"), token)
            .await;
        page["data"].as_array().expect("data").clone()
    }

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

/// The one way tests wait for something outside their control (another process, Redis, a
/// browser): polls `check` every 25 ms until it holds, and answers how long that took, or
/// `None` once `limit` has passed. Time inside the app is moved with `TestApp::clock` instead.
pub async fn within<F, Fut>(limit: std::time::Duration, mut check: F) -> Option<std::time::Duration>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = std::time::Instant::now();
    loop {
        if check().await {
            return Some(started.elapsed());
        }
        if started.elapsed() > limit {
            return None;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
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
