//! Shutdown that drops no request. After SIGTERM the node answers every request it has read and
//! every request that still arrives on an open connection, each with `Connection: close` so the
//! client moves on; it stops listening, and it stops once no connection is left.
//!
//! actix's own graceful stop is not used for this: it stops reading from connections that are
//! between requests and discards requests it has read but not yet dispatched, so a client that
//! wrote a request a moment after the signal never got an answer. Here actix is only asked to
//! stop when no connection is left, or after [`DRAIN_LIMIT`] for a client that holds one open.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::ConnectionType;
use actix_web::middleware::Next;
use actix_web::web;
use tokio::sync::Notify;

/// The longest the node waits for its clients to close their connections after it stopped
/// listening. An idle keep-alive connection is closed by the server after its keep-alive
/// timeout (5 s), so only a client that keeps one busy this long is cut off.
pub const DRAIN_LIMIT: Duration = Duration::from_secs(10);

/// Whether the node is shutting down, and how many client connections are open.
#[derive(Debug, Default)]
pub struct Drain {
    draining: AtomicBool,
    closing: AtomicBool,
    open: AtomicUsize,
    all_closed: Notify,
}

impl Drain {
    pub fn new() -> Arc<Self> {
        Arc::default()
    }

    /// From now on `/readyz` says `draining`, so balancers stop sending new work.
    pub fn begin(&self) {
        self.draining.store(true, Ordering::Release);
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Acquire)
    }

    /// From now on every answer closes its connection. Called only once the node has stopped
    /// listening: a client told to close that reconnected at once would otherwise find its new
    /// connection accepted by the kernel and then reset when the listener closes.
    pub fn close_connections(&self) {
        self.closing.store(true, Ordering::Release);
    }

    fn is_closing(&self) -> bool {
        self.closing.load(Ordering::Acquire)
    }

    /// Counts a connection as open until the returned guard is dropped (with the connection).
    pub fn track(self: &Arc<Self>) -> OpenConnection {
        self.open.fetch_add(1, Ordering::AcqRel);
        OpenConnection(self.clone())
    }

    pub fn open_connections(&self) -> usize {
        self.open.load(Ordering::Acquire)
    }

    /// Waits until no connection is open, at most `limit`; answers whether none is.
    pub async fn until_closed(&self, limit: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let closed = self.all_closed.notified();
            tokio::pin!(closed);
            // Registered before the count is read, so a close in between still wakes us.
            closed.as_mut().enable();
            if self.open_connections() == 0 {
                return true;
            }
            if tokio::time::timeout_at(deadline, closed).await.is_err() {
                return self.open_connections() == 0;
            }
        }
    }
}

/// One open client connection; kept in the connection's data, dropped when it closes.
#[derive(Debug)]
pub struct OpenConnection(Arc<Drain>);

impl Drop for OpenConnection {
    fn drop(&mut self) {
        if self.0.open.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.all_closed.notify_waiters();
        }
    }
}

/// Middleware: once closing, every answer tells the client to close the connection.
pub async fn close_while_draining(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let drain = req.app_data::<web::Data<Drain>>().cloned();
    let mut res = next.call(req).await?;
    if drain.is_some_and(|drain| drain.is_closing()) {
        res.response_mut()
            .head_mut()
            .set_connection_type(ConnectionType::Close);
    }
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn waits_for_the_last_connection_and_no_longer_than_the_limit() {
        let drain = Drain::new();
        assert!(
            drain.until_closed(Duration::from_secs(1)).await,
            "none open"
        );

        let (first, second) = (drain.track(), drain.track());
        assert_eq!(drain.open_connections(), 2);
        let waiting = tokio::spawn({
            let drain = drain.clone();
            async move { drain.until_closed(Duration::from_secs(10)).await }
        });
        tokio::time::sleep(Duration::from_secs(1)).await;
        drop(first);
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert!(!waiting.is_finished(), "one connection is still open");
        drop(second);
        assert!(waiting.await.unwrap(), "the last one closed");

        let _held = drain.track();
        assert!(!drain.until_closed(Duration::from_secs(3)).await);
    }
}
