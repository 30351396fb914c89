//! Real `latchkey` processes and private `redis-server`s, for tests of several nodes, of Redis or
//! the store going away, and of graceful shutdown. Everything is killed when dropped.
//!
//! Process-based tests that need a shared store always use PostgreSQL (the production shape), so
//! they are identical in the SQLite and the PostgreSQL pass of the test command: they run only
//! when `LATCHKEY_TEST_BACKEND=postgres` (see [`cluster_tests_enabled`]).
#![allow(dead_code)] // each test module uses a different subset

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use latchkey::domain::key::KeyHasher;
use latchkey::store::Store;
use serde_json::{Value, json};

use crate::helpers::{Backend, TEST_SECRET_KEY, TestApp, TestDatabase, backend};
use crate::helpers::{free_port, within};

/// Whether to run tests that spawn several processes over PostgreSQL and Redis: only in the
/// PostgreSQL pass, since they would do exactly the same work in the SQLite pass.
pub fn cluster_tests_enabled() -> bool {
    let enabled = backend() == Backend::Postgres;
    if !enabled {
        eprintln!("skipped: multi-process tests run when LATCHKEY_TEST_BACKEND=postgres");
    }
    enabled
}

// ---- Redis ------------------------------------------------------------------------------------

/// A private `redis-server` on its own port, with no persistence; killed when dropped.
pub struct RedisServer {
    pub port: u16,
    child: Option<Child>,
}

impl RedisServer {
    pub fn start() -> Self {
        for _ in 0..5 {
            let port = free_port();
            if let Some(child) = spawn_redis(port, Duration::from_secs(5)) {
                return Self {
                    port,
                    child: Some(child),
                };
            }
        }
        panic!("could not start redis-server");
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Kills the server at once (SIGKILL), as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port (empty: it keeps nothing).
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "kill it first");
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Some(child) = spawn_redis(self.port, Duration::from_secs(3)) {
                self.child = Some(child);
                return;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        panic!("could not restart redis-server on port {}", self.port);
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Starts `redis-server` on `port` and waits for PONG; `None` if it exits or never answers.
fn spawn_redis(port: u16, within: Duration) -> Option<Child> {
    let mut child = Command::new("redis-server")
        .args(["--port", &port.to_string()])
        .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
        .args(["--daemonize", "no", "--loglevel", "warning"])
        .current_dir(std::env::temp_dir())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("redis-server is installed");
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return None;
        }
        if redis_pings(port) {
            return Some(child);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

fn redis_pings(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
    let mut buf = [0u8; 16];
    stream.write_all(b"PING\r\n").is_ok()
        && stream
            .read(&mut buf)
            .is_ok_and(|n| buf[..n].starts_with(b"+PONG"))
}

// ---- HTTP --------------------------------------------------------------------------------------

/// The REST API of one node (a process or an in-process [`TestApp`]); cheap to clone into tasks.
#[derive(Clone)]
pub struct Api {
    pub base: String,
    pub client: reqwest::Client,
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        // The server closes a connection idle for 5 s; a client that reused one that old could
        // send on it just as it closes. Idle connections are dropped well before.
        .pool_idle_timeout(std::time::Duration::from_secs(1))
        .timeout(Duration::from_secs(30))
        .build()
        .expect("http client")
}

impl Api {
    pub fn of(app: &TestApp) -> Self {
        Self {
            base: app.address.clone(),
            client: client(),
        }
    }

    /// Sends a request; answers the status, the content type and the body (JSON, or a string).
    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> (u16, String, Value) {
        let mut request = self.client.request(method, format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.expect("request");
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let text = response.text().await.expect("body");
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, content_type, body)
    }

    /// A request that must answer `status`; answers the body.
    pub async fn expect(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
        body: Option<&Value>,
        status: u16,
    ) -> Value {
        let (actual, _, body) = self.send(method.clone(), path, Some(token), body).await;
        assert_eq!(actual, status, "{method} {path} on {}: {body}", self.base);
        body
    }

    pub async fn create_keyspace(&self, token: &str, prefix: &str) -> String {
        let body = json!({"name": format!("{prefix} keys"), "prefix": prefix});
        let created = self
            .expect(
                reqwest::Method::POST,
                "/v1/keyspaces",
                token,
                Some(&body),
                201,
            )
            .await;
        created["id"].as_str().expect("keyspace id").to_owned()
    }

    /// An access token for the key `id` (`secret` is its plaintext), by client credentials.
    pub async fn mint_token(&self, id: &str, secret: &str) -> String {
        let response = self
            .client
            .post(format!("{}/oauth/token", self.base))
            .basic_auth(id, Some(secret))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .expect("token request");
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.expect("token response");
        body["access_token"]
            .as_str()
            .expect("access_token")
            .to_owned()
    }

    /// Creates a key with `extra` fields; answers `(id, plaintext)`.
    pub async fn create_key(&self, space: &Space, extra: Value) -> (String, String) {
        let mut body = json!({"keyspace_id": space.keyspace_id});
        if let (Some(body), Value::Object(extra)) = (body.as_object_mut(), extra) {
            body.extend(extra);
        }
        let created = self
            .expect(
                reqwest::Method::POST,
                "/v1/keys",
                &space.token,
                Some(&body),
                201,
            )
            .await;
        (
            created["id"].as_str().expect("id").to_owned(),
            created["key"].as_str().expect("key").to_owned(),
        )
    }

    /// Verifies; the answer must be 200 (the verification ran).
    pub async fn verify_with(&self, token: &str, body: Value) -> Value {
        self.expect(
            reqwest::Method::POST,
            "/v1/keys/verify",
            token,
            Some(&body),
            200,
        )
        .await
    }

    pub async fn code(&self, token: &str, key: &str) -> String {
        self.verify_with(token, json!({"key": key})).await["code"]
            .as_str()
            .expect("code")
            .to_owned()
    }

    pub async fn revoke(&self, token: &str, id: &str) -> Value {
        let path = format!("/v1/keys/{id}/revoke");
        self.expect(reqwest::Method::POST, &path, token, Some(&json!({})), 200)
            .await
    }

    pub async fn patch_key(&self, token: &str, id: &str, body: Value) -> Value {
        let path = format!("/v1/keys/{id}");
        self.expect(reqwest::Method::PATCH, &path, token, Some(&body), 200)
            .await
    }

    pub async fn get_key(&self, token: &str, id: &str) -> Value {
        let path = format!("/v1/keys/{id}");
        self.expect(reqwest::Method::GET, &path, token, None, 200)
            .await
    }

    /// `/readyz`: status code and body.
    pub async fn readyz(&self) -> (u16, Value) {
        let (status, _, body) = self.send(reqwest::Method::GET, "/readyz", None, None).await;
        (status, body)
    }

    /// The Prometheus text at `/metrics`.
    pub async fn metrics(&self) -> String {
        let (status, _, body) = self
            .send(reqwest::Method::GET, "/metrics", None, None)
            .await;
        assert_eq!(status, 200);
        body.as_str().expect("metrics are text").to_owned()
    }

    /// One sample of `/metrics`, e.g. `latchkey_store_lookups_total` (0 when absent).
    pub async fn metric(&self, sample: &str) -> f64 {
        metric(&self.metrics().await, sample)
    }
}

/// The value of the sample named exactly `sample` (name and labels) in Prometheus text.
pub fn metric(text: &str, sample: &str) -> f64 {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .find_map(|line| {
            let (name, value) = line.rsplit_once(' ')?;
            (name == sample).then(|| value.parse().ok())?
        })
        .unwrap_or(0.0)
}

/// A tenant's root key and one keyspace of it.
#[derive(Clone, Debug)]
pub struct Space {
    pub tenant_id: String,
    pub token: String,
    pub keyspace_id: String,
}

/// Creates a tenant (with the library's bootstrap, straight into `store`) and a keyspace through
/// `api`.
pub async fn space(store: &Store, hasher: &KeyHasher, api: &Api, name: &str) -> Space {
    let (store, hasher, tenant) = (store.clone(), hasher.clone(), name.to_owned());
    let done = tokio::task::spawn_blocking(move || {
        latchkey::bootstrap::bootstrap(
            &store,
            &hasher,
            &tenant,
            &format!("owner@{tenant}.example.com"),
            Some("correct horse battery staple".into()),
        )
        .expect("bootstrap")
    })
    .await
    .expect("bootstrap task");
    let keyspace_id = api
        .create_keyspace(done.root_key.expose_secret(), &format!("{name}_live"))
        .await;
    Space {
        tenant_id: done.tenant_id,
        token: done.root_key.expose_secret().to_owned(),
        keyspace_id,
    }
}

/// The key hasher every node uses (they share [`TEST_SECRET_KEY`]).
pub fn hasher() -> KeyHasher {
    latchkey::config::Settings::load(&[("LATCHKEY_SECRET_KEY", TEST_SECRET_KEY)], None)
        .expect("settings")
        .key_hasher()
        .expect("hasher")
}

/// A small pool on `db`, for the test's own setup work.
pub fn store_of(db: &TestDatabase) -> Store {
    Store::connect(
        &latchkey::store::url::DatabaseUrl::parse(&db.url()).expect("url"),
        2,
    )
    .expect("test store connects")
}

// ---- latchkey processes ------------------------------------------------------------------------

/// One `latchkey serve` process on a free port; killed (SIGKILL) when dropped unless it already
/// exited. Its log (JSON) is kept in a temporary file, printed if the test fails, and appended to
/// `LATCHKEY_TEST_LOG_FILE` so the suite's no-plaintext-in-logs check covers it.
pub struct Node {
    pub api: Api,
    pub port: u16,
    child: Child,
    log: tempfile::NamedTempFile,
}

impl std::ops::Deref for Node {
    type Target = Api;
    fn deref(&self) -> &Api {
        &self.api
    }
}

/// The port a starting node logged in its `latchkey listening` line; `None` if it exited or
/// logged none within `within`.
async fn listening_port(child: &mut Child, log: &std::path::Path, within: Duration) -> Option<u16> {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        let port = text
            .lines()
            .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
            .find(|line| line["message"] == "latchkey listening")
            .and_then(|line| line["port"].as_u64())
            .and_then(|port| u16::try_from(port).ok());
        if port.is_some() {
            return port;
        }
        if let Ok(Some(_)) = child.try_wait() {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    None
}

impl Node {
    /// Starts a node over `database_url` (and Redis, if given) and waits until `/readyz` answers
    /// 200 (`ready`, or `degraded` while its invalidation subscription comes up).
    pub async fn start(
        database_url: &str,
        redis_url: Option<&str>,
        extra: &[(&str, &str)],
    ) -> Self {
        for _ in 0..3 {
            let log = tempfile::NamedTempFile::new().expect("log file");
            let mut cmd = Command::new(env!("CARGO_BIN_EXE_latchkey"));
            // Port 0: the node takes a port of the kernel's choosing and logs it. A port picked
            // beforehand could be taken by another test's server while this node migrates.
            cmd.arg("serve")
                .env_clear()
                .env("PATH", std::env::var("PATH").unwrap_or_default())
                .env("DATABASE_URL", database_url)
                .env("LATCHKEY_SECRET_KEY", TEST_SECRET_KEY)
                .env("LATCHKEY_BIND", "127.0.0.1:0")
                .env("LATCHKEY_DB_POOL_SIZE", "4")
                .env("LATCHKEY_LOG_FORMAT", "json")
                // Calls stalled by a loaded CI machine are not Redis failures.
                .env("LATCHKEY_REDIS_TIMEOUT_MS", "2000")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log.reopen().expect("log file"));
            if let Some(url) = redis_url {
                cmd.env("REDIS_URL", url);
            }
            for (k, v) in extra {
                cmd.env(k, v);
            }
            let mut child = cmd.spawn().expect("spawn latchkey");
            let Some(port) = listening_port(&mut child, log.path(), Duration::from_secs(20)).await
            else {
                let _ = child.kill();
                let _ = child.wait();
                let text = std::fs::read_to_string(log.path()).unwrap_or_default();
                eprintln!("latchkey did not start:\n{text}");
                continue;
            };
            let mut node = Self {
                api: Api {
                    base: format!("http://127.0.0.1:{port}"),
                    client: client(),
                },
                port,
                child,
                log,
            };
            if node.wait_until_serving(Duration::from_secs(20)).await {
                return node;
            }
            eprintln!(
                "latchkey did not start on port {port}:\n{}",
                node.log_tail(20)
            );
        }
        panic!("could not start a latchkey node");
    }

    async fn wait_until_serving(&mut self, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return false;
            }
            let url = format!("{}/readyz", self.api.base);
            if let Ok(response) = self.api.client.get(url).send().await
                && response.status() == 200
            {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        false
    }

    /// Waits until `/readyz` says `ready` (store and Redis up, invalidations subscribed).
    pub async fn wait_ready(&self, limit: Duration) {
        let ready = within(limit, || async {
            let (status, body) = self.readyz().await;
            status == 200 && body["status"] == "ready"
        })
        .await;
        assert!(
            ready.is_some(),
            "node {} not ready: {:?}",
            self.port,
            self.readyz().await
        );
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends SIGTERM (graceful shutdown) and waits for the process to exit; answers its status.
    pub async fn terminate(&mut self, limit: Duration) -> std::process::ExitStatus {
        let sent = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .expect("run kill");
        assert!(sent.success(), "kill -TERM failed");
        let child = &mut self.child;
        let stopped = within(limit, || {
            let exited = child.try_wait().expect("wait").is_some();
            async move { exited }
        })
        .await;
        assert!(
            stopped.is_some(),
            "the node did not stop within {limit:?} of SIGTERM"
        );
        self.child.wait().expect("wait")
    }

    /// The last `lines` lines of the node's log.
    pub fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(self.log.path()).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// The whole log.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(self.log.path()).unwrap_or_default()
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        if std::thread::panicking() {
            eprintln!(
                "---- log of node on port {} ----\n{}",
                self.port,
                self.log_tail(40)
            );
        }
        if let Ok(path) = std::env::var("LATCHKEY_TEST_LOG_FILE")
            && let Ok(mut file) = std::fs::OpenOptions::new().append(true).open(path)
        {
            let _ = file.write_all(self.log_text().as_bytes());
        }
    }
}

/// Several nodes over one PostgreSQL database and one private Redis.
pub struct Cluster {
    pub nodes: Vec<Node>,
    pub redis: RedisServer,
    pub store: Store,
    pub hasher: KeyHasher,
    pub db: TestDatabase,
}

impl Cluster {
    pub async fn start(nodes: usize, extra: &[(&str, &str)]) -> Self {
        let db = TestDatabase::create(Backend::Postgres);
        let redis = RedisServer::start();
        let url = db.url();
        let redis_url = redis.url();
        // The first node migrates; the others then start together.
        let mut started = vec![Node::start(&url, Some(&redis_url), extra).await];
        let rest = futures_util::future::join_all(
            (1..nodes).map(|_| Node::start(&url, Some(&redis_url), extra)),
        )
        .await;
        started.extend(rest);
        for node in &started {
            node.wait_ready(Duration::from_secs(10)).await;
        }
        Self {
            nodes: started,
            redis,
            store: store_of(&db),
            hasher: hasher(),
            db,
        }
    }

    pub async fn space(&self, name: &str) -> Space {
        space(&self.store, &self.hasher, &self.nodes[0], name).await
    }
}
