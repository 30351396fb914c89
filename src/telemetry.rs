//! Logging (`tracing`, pretty or JSON, to stderr) and the id of the request being served,
//! which any layer may read; the HTTP edge sets it (`routes::request_log`).

use std::sync::atomic::{AtomicBool, Ordering};

use serde::Deserialize;
use tracing_subscriber::fmt::format::FmtSpan;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// How log lines are written: `LATCHKEY_LOG_FORMAT`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Pretty,
    Json,
}

tokio::task_local! {
    static REQUEST_ID: String;
}

/// Set once the node closed its listening socket on purpose (graceful shutdown).
static LISTENER_CLOSED: AtomicBool = AtomicBool::new(false);

/// Says that the listening socket is being closed on purpose: actix's accept loop reports the
/// closed socket as an accept error, which is then not logged.
pub fn listener_closed() {
    LISTENER_CLOSED.store(true, Ordering::Release);
}

/// Installs the global subscriber. Logs go to stderr so stdout stays for command output.
///
/// Both filters are global, not per-layer: with the level filter global, a disabled callsite
/// (every `trace!` in actix, the request span at `RUST_LOG=warn`) is decided once and then costs
/// nothing. As per-layer filters (from the graceful-shutdown change of session 4) they were asked on every span and event:
/// about 9,000 instructions per request (docs/BENCHMARKS.md).
pub fn init(format: LogFormat) {
    let levels = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,actix_server=warn,tracing_actix_web=error"));
    let lines = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_span_events(FmtSpan::NONE);
    let lines = match format {
        LogFormat::Pretty => lines.compact().boxed(),
        LogFormat::Json => lines.json().flatten_event(true).boxed(),
    };
    // A second init (tests spawn many apps in one process) is harmless: keep the first.
    let _ = tracing_subscriber::registry()
        .with(levels)
        .with(NotTheClosedListener)
        .with(lines)
        .try_init();
}

/// Drops actix's accept error for the listening socket the node closed on purpose; asked only
/// for events the level filter let through.
struct NotTheClosedListener;

impl<S: tracing::Subscriber> Layer<S> for NotTheClosedListener {
    fn event_enabled(
        &self,
        event: &tracing::Event<'_>,
        _: tracing_subscriber::layer::Context<'_, S>,
    ) -> bool {
        event.metadata().target() != "actix_server::accept"
            || !LISTENER_CLOSED.load(Ordering::Acquire)
    }
}

/// The id of the request being served, if any (used in problem bodies).
pub fn current_request_id() -> Option<String> {
    REQUEST_ID.try_with(Clone::clone).ok()
}

/// Runs `work` as the request `id`: [`current_request_id`] answers it inside.
pub async fn with_request_id<F: std::future::Future>(id: String, work: F) -> F::Output {
    REQUEST_ID.scope(id, work).await
}
