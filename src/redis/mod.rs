//! The Redis tier: shared records with a TTL, the invalidation channel, and a short circuit
//! breaker so a dead Redis costs one failed call per second, not one per request.

pub mod keys;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use redis::AsyncCommands;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use crate::metrics::Metrics;

/// The channel every node listens on for evictions.
pub use keys::INVALIDATION_CHANNEL;
/// How long to stop trying Redis after an error.
const BREAKER_OPEN: Duration = Duration::from_secs(1);

#[derive(Clone)]
pub struct RedisTier {
    client: redis::Client,
    manager: ConnectionManager,
    /// Milliseconds since the epoch until which calls are skipped (0: closed).
    open_until_ms: Arc<AtomicU64>,
    /// Whether this node currently receives invalidations (its L1 may be trusted).
    subscribed: Arc<AtomicBool>,
    metrics: Arc<Metrics>,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or_default()
}

impl RedisTier {
    /// Prepares a connection without requiring Redis to be up: it connects on first use and
    /// reconnects by itself. A call that takes longer than `timeout` fails (and is counted).
    pub fn new(url: &str, timeout: Duration, metrics: Arc<Metrics>) -> redis::RedisResult<Self> {
        let client = redis::Client::open(url)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout))
            .set_number_of_retries(1)
            .set_max_delay(timeout);
        let manager = client.get_connection_manager_lazy(config)?;
        Ok(Self {
            client,
            manager,
            open_until_ms: Arc::new(AtomicU64::new(0)),
            subscribed: Arc::new(AtomicBool::new(false)),
            metrics,
        })
    }

    pub fn client(&self) -> &redis::Client {
        &self.client
    }

    pub fn is_subscribed(&self) -> bool {
        self.subscribed.load(Ordering::Acquire)
    }

    pub(super) fn set_subscribed(&self, value: bool) {
        self.subscribed.store(value, Ordering::Release);
    }

    /// No Redis call failed within the last second.
    pub fn is_healthy(&self) -> bool {
        self.available()
    }

    fn available(&self) -> bool {
        self.open_until_ms.load(Ordering::Relaxed) <= now_ms()
    }

    fn record<T>(&self, result: redis::RedisResult<T>) -> Option<T> {
        match result {
            Ok(value) => Some(value),
            Err(err) => {
                self.metrics.redis_errors.inc();
                self.open_until_ms.store(
                    now_ms() + BREAKER_OPEN.as_millis() as u64,
                    Ordering::Relaxed,
                );
                tracing::warn!(error = %err, "redis call failed; using the store for a second");
                None
            }
        }
    }

    /// Reads a value; `None` when absent or when Redis is unavailable.
    pub async fn get(&self, key: &str) -> Option<Vec<u8>> {
        if !self.available() {
            return None;
        }
        let mut conn = self.manager.clone();
        self.record(conn.get::<_, Option<Vec<u8>>>(key).await)
            .flatten()
    }

    pub async fn set(&self, key: &str, value: &[u8], ttl: Duration) {
        if !self.available() {
            return;
        }
        let mut conn = self.manager.clone();
        let ttl = ttl.as_millis().max(1) as u64;
        self.record(conn.pset_ex::<_, _, ()>(key, value, ttl).await);
    }

    /// Deletes keys and tells every node to evict them. `false` if Redis could not be reached.
    pub async fn delete_and_publish(&self, keys: &[String], message: &str) -> bool {
        let mut conn = self.manager.clone();
        let mut pipe = redis::pipe();
        if !keys.is_empty() {
            pipe.del(keys).ignore();
        }
        pipe.publish(INVALIDATION_CHANNEL, message).ignore();
        self.record(pipe.query_async::<()>(&mut conn).await)
            .is_some()
    }

    /// Runs a Lua script (rate limits); `None` when Redis is unavailable.
    pub async fn eval<T: redis::FromRedisValue>(
        &self,
        script: &redis::Script,
        keys: &[&str],
        args: &[i64],
    ) -> Option<T> {
        if !self.available() {
            return None;
        }
        let mut conn = self.manager.clone();
        let mut invocation = script.prepare_invoke();
        for key in keys {
            invocation.key(*key);
        }
        for arg in args {
            invocation.arg(*arg);
        }
        self.record(invocation.invoke_async(&mut conn).await)
    }

    /// Runs a pipeline (its commands in order, in one round trip); `None` when Redis is
    /// unavailable.
    pub async fn pipeline<T: redis::FromRedisValue>(&self, pipe: &redis::Pipeline) -> Option<T> {
        if !self.available() {
            return None;
        }
        let mut conn = self.manager.clone();
        self.record(pipe.query_async(&mut conn).await)
    }

    pub async fn ping(&self) -> bool {
        let mut conn = self.manager.clone();
        let pong: redis::RedisResult<String> = redis::cmd("PING").query_async(&mut conn).await;
        pong.is_ok()
    }
}
