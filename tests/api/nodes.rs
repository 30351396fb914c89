//! Real `latchkey` processes and private `redis-server`s, for tests of several nodes, of Redis or
//! the store going away, and of graceful shutdown. Everything is killed when dropped.
//!
//! Process-based tests that need a shared store always use PostgreSQL (the production shape), so
//! they are identical in the SQLite and the PostgreSQL pass of the test command: they run only
//! in the PostgreSQL pass and say so in the other (`skip_unless!(postgres_pass(), NEEDS_POSTGRES)`).
#![allow(dead_code)] // each test module uses a different subset

use std::cell::Cell;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::helpers::{Api, Backend, Deployment, TEST_SECRET_KEY, TestDatabase, World};
use crate::helpers::{free_port, within};

// ---- Redis ------------------------------------------------------------------------------------

/// A private `redis-server` on its own port, with no persistence; killed when dropped.
pub struct RedisServer {
    pub port: u16,
    child: Option<Child>,
}

impl RedisServer {
    pub async fn start() -> Self {
        for _ in 0..5 {
            let port = free_port();
            if let Some(child) = spawn_redis(port, Duration::from_secs(5)).await {
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

    /// Stops the server with SIGSTOP: it keeps every connection open and answers nothing, as a
    /// hung host or a full network path would.
    pub fn pause(&self) {
        self.signal("-STOP");
    }

    /// Resumes a paused server (SIGCONT): it answers everything queued meanwhile, in order.
    pub fn resume(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, signal: &str) {
        let child = self.child.as_ref().expect("a running redis-server");
        let status = std::process::Command::new("kill")
            .args([signal, &child.id().to_string()])
            .status()
            .expect("kill is installed");
        assert!(status.success(), "kill {signal} redis-server");
    }

    /// Kills the server at once (SIGKILL), as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port (empty: it keeps nothing).
    pub async fn restart(&mut self) {
        assert!(self.child.is_none(), "kill it first");
        let (port, started) = (self.port, Cell::new(None));
        // The port may not be free again at once: try again until it is.
        within(Duration::from_secs(10), || async {
            let child = spawn_redis(port, Duration::from_secs(3)).await;
            let up = child.is_some();
            started.set(child);
            up
        })
        .await;
        let child = started.take();
        assert!(
            child.is_some(),
            "could not restart redis-server on port {port}"
        );
        self.child = child;
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Starts `redis-server` on `port` and waits for PONG; `None` if it exits or never answers.
async fn spawn_redis(port: u16, limit: Duration) -> Option<Child> {
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
    let mut answered = false;
    within(limit, || {
        let exited = matches!(child.try_wait(), Ok(Some(_)));
        answered = !exited && redis_pings(port);
        let done = exited || answered;
        async move { done }
    })
    .await;
    if answered {
        return Some(child);
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
/// logged none within `limit`.
async fn listening_port(child: &mut Child, log: &std::path::Path, limit: Duration) -> Option<u16> {
    let mut port = None;
    within(limit, || {
        port = logged_port(log);
        let done = port.is_some() || matches!(child.try_wait(), Ok(Some(_)));
        async move { done }
    })
    .await;
    port
}

fn logged_port(log: &std::path::Path) -> Option<u16> {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    text.lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .find(|line| line["message"] == "latchkey listening")
        .and_then(|line| line["port"].as_u64())
        .and_then(|port| u16::try_from(port).ok())
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
                api: Api::at(&format!("http://127.0.0.1:{port}")),
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

    /// Waits until `/readyz` answers 200; `false` if the process exited or `limit` passed.
    async fn wait_until_serving(&mut self, limit: Duration) -> bool {
        let (child, readyz) = (&mut self.child, self.api.url("/readyz"));
        let mut exited = false;
        let serving = within(limit, || {
            exited = matches!(child.try_wait(), Ok(Some(_)));
            let (gone, answer) = (exited, self.api.client.get(&readyz).send());
            async move { gone || answer.await.is_ok_and(|r| r.status() == 200) }
        })
        .await;
        serving.is_some() && !exited
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

    /// How the process ended; `None` while it runs.
    pub fn exit_status(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().expect("wait")
    }

    /// Sends SIGTERM (graceful shutdown) and returns at once.
    pub fn send_terminate(&self) {
        let sent = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .expect("run kill");
        assert!(sent.success(), "kill -TERM failed");
    }

    /// Sends SIGTERM (graceful shutdown) and waits for the process to exit; answers its status.
    pub async fn terminate(&mut self, limit: Duration) -> std::process::ExitStatus {
        self.send_terminate();
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

/// Several nodes over one PostgreSQL database and one private Redis; set up through the first.
pub struct Cluster {
    pub nodes: Vec<Node>,
    pub redis: RedisServer,
    pub db: TestDatabase,
    setup: Deployment,
}

impl std::ops::Deref for Cluster {
    type Target = Deployment;
    fn deref(&self) -> &Deployment {
        &self.setup
    }
}

impl Cluster {
    pub async fn start(nodes: usize, extra: &[(&str, &str)]) -> Self {
        let db = TestDatabase::create(Backend::Postgres);
        let redis = RedisServer::start().await;
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
            setup: Deployment::over(&started[0], &db),
            nodes: started,
            redis,
            db,
        }
    }

    /// Starts a [`World`] on this cluster: a tenant `name` with an all-scopes root key.
    pub async fn with_tenant(self, name: &str) -> World<Self> {
        World::new(self, name).await
    }

    /// `.with_tenant(name)` then `.with_keyspace("{name}_live")`.
    pub async fn with_space(self, name: &str) -> World<Self> {
        let prefix = format!("{name}_live");
        self.with_tenant(name).await.with_keyspace(&prefix).await
    }
}
