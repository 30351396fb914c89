//! A webhook receiver: a real HTTP server on a free port that records every delivery (with the
//! app's clock reading when it came) and answers from a script; and the official Python
//! `standardwebhooks` library to verify what it received.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use latchkey::domain::time::Clock;
use serde_json::{Value, json};

use super::within;

/// How the receiver answers one delivery.
#[derive(Clone, Copy, Debug)]
pub enum Reply {
    Status(u16),
    /// Never answers (the sender times out, or dies waiting).
    Hang,
}

/// One delivery as the receiver got it.
#[derive(Clone, Debug)]
pub struct Received {
    pub id: String,
    pub timestamp: String,
    pub signature: String,
    pub body: String,
    /// The app's clock when it came (tests move that clock).
    pub at: chrono::NaiveDateTime,
}

impl Received {
    pub fn payload(&self) -> Value {
        serde_json::from_str(&self.body).expect("a delivery's body is JSON")
    }

    pub fn event_type(&self) -> String {
        self.payload()["type"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }
}

struct Shared {
    received: Mutex<Vec<Received>>,
    replies: Mutex<VecDeque<Reply>>,
    clock: Clock,
}

/// Stopped when dropped.
pub struct Receiver {
    /// `http://127.0.0.1:<port>/hook`
    pub url: String,
    shared: Arc<Shared>,
    server: actix_web::dev::ServerHandle,
}

async fn receive(req: HttpRequest, body: web::Bytes, shared: web::Data<Shared>) -> HttpResponse {
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    shared.received.lock().unwrap().push(Received {
        id: header("webhook-id"),
        timestamp: header("webhook-timestamp"),
        signature: header("webhook-signature"),
        body: String::from_utf8_lossy(&body).into_owned(),
        at: shared.clock.now(),
    });
    let reply = shared
        .replies
        .lock()
        .unwrap()
        .pop_front()
        .unwrap_or(Reply::Status(200));
    match reply {
        Reply::Status(code) => HttpResponse::build(
            actix_web::http::StatusCode::from_u16(code).expect("a valid status"),
        )
        .body("thanks"),
        Reply::Hang => std::future::pending().await,
    }
}

impl Receiver {
    /// Starts a receiver whose records read `clock` (the app's, or the system's for processes).
    pub async fn start(clock: &Clock) -> Self {
        let shared = web::Data::new(Shared {
            received: Mutex::new(Vec::new()),
            replies: Mutex::new(VecDeque::new()),
            clock: clock.clone(),
        });
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind the receiver");
        let port = listener.local_addr().unwrap().port();
        let data = shared.clone();
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .default_service(web::to(receive))
        })
        .workers(1)
        .disable_signals()
        .shutdown_timeout(0)
        .listen(listener)
        .expect("receiver listens")
        .run();
        let handle = server.handle();
        tokio::spawn(server);
        Self {
            url: format!("http://127.0.0.1:{port}/hook"),
            shared: shared.into_inner(),
            server: handle,
        }
    }

    /// The next deliveries are answered so, in order; after them, 200.
    pub fn script(&self, replies: impl IntoIterator<Item = Reply>) {
        self.shared.replies.lock().unwrap().extend(replies);
    }

    pub fn received(&self) -> Vec<Received> {
        self.shared.received.lock().unwrap().clone()
    }

    /// Waits until at least `n` deliveries came (or `limit` passed); answers all received.
    pub async fn wait_for(&self, n: usize, limit: Duration) -> Vec<Received> {
        within(limit, || async { self.received().len() >= n }).await;
        self.received()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let server = self.server.clone();
        // Stopping is async; a receiver dropped outside a runtime just goes with the process.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move { server.stop(false).await });
        }
    }
}

/// The venv with the pinned `standardwebhooks` (tests/webhooks/requirements.txt), built once
/// per test process by `scripts/venv` (which leaves an up-to-date one as it is).
fn venv_python() -> &'static PathBuf {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON.get_or_init(|| {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        let status = Command::new(root.join("scripts/venv"))
            .args([".venv-webhooks", "tests/webhooks/requirements.txt"])
            .current_dir(&root)
            .status()
            .expect("run scripts/venv (python3 with venv is needed for the webhook tests)");
        assert!(status.success(), "scripts/venv .venv-webhooks failed");
        root.join(".venv-webhooks/bin/python")
    })
}

/// Verifies every delivery under every one of `secrets` with the official Python library, as a
/// receiver would (its timestamp check against the moment each delivery came); panics with the
/// library's verdict otherwise.
pub fn verify_with_standardwebhooks(secrets: &[&str], received: &[Received]) {
    assert!(!received.is_empty(), "nothing to verify");
    let deliveries: Vec<Value> = received
        .iter()
        .map(|r| {
            json!({
                "headers": {
                    "webhook-id": r.id,
                    "webhook-timestamp": r.timestamp,
                    "webhook-signature": r.signature,
                },
                "body": r.body,
                "received_at": r.at.and_utc().timestamp(),
            })
        })
        .collect();
    let input = json!({ "secrets": secrets, "deliveries": deliveries }).to_string();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut child = Command::new(venv_python())
        .arg(root.join("tests/webhooks/verify.py"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run the Python verifier");
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "standardwebhooks refused a delivery:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let verified = stdout
        .lines()
        .filter(|l| l.starts_with("verified "))
        .count();
    assert_eq!(verified, received.len() * secrets.len(), "{stdout}");
}
