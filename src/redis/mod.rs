//! The Redis tier: shared records with a TTL, the invalidation channel, and a circuit breaker
//! so a dead or hung Redis costs one short timeout per second, not one per request.
//!
//! Every call has the configured timeout (`LATCHKEY_REDIS_TIMEOUT_MS`), enforced here whatever
//! the connection does: a Redis stopped with SIGSTOP is as good as dead. A failed call opens the
//! breaker for a second; then one call at a time probes (a heartbeat probes too, so an idle node
//! notices). When the breaker closes again, the tiers wait [`SETTLE`] before trusting L1 and L2
//! again: long enough for every node's invalidations that failed during the outage to go out.

pub mod keys;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use redis::AsyncCommands;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use crate::breaker::Breaker;
use crate::metrics::Metrics;

/// The channel every node listens on for evictions.
pub use keys::INVALIDATION_CHANNEL;
/// How long to stop trying Redis after an error.
const BREAKER_OPEN: Duration = Duration::from_secs(1);
/// After an outage, how long the caches keep bypassing L1 and L2 (calls go to Redis already).
/// Invalidations that failed during the outage are re-sent within [`RETRY_EVERY`].
pub const SETTLE: Duration = Duration::from_secs(2);
/// How often failed invalidations are re-sent and an idle node checks that Redis answers.
pub const RETRY_EVERY: Duration = Duration::from_millis(250);

#[derive(Clone)]
pub struct RedisTier {
    client: redis::Client,
    manager: ConnectionManager,
    /// The most any one call may take.
    timeout: Duration,
    breaker: Arc<RedisBreaker>,
    /// Whether this node currently receives invalidations (its L1 may be trusted).
    subscribed: Arc<AtomicBool>,
    metrics: Arc<Metrics>,
}

/// The shared [`Breaker`], and whether the caches may trust what they hold again after an outage.
struct RedisBreaker {
    breaker: Breaker,
    /// Closed and past the settling time after the last outage.
    settled: AtomicBool,
}

impl RedisBreaker {
    /// A closed breaker for calls that take at most `timeout` (a probe lapses after twice that).
    /// A new node has missed nothing (its caches are empty), so it starts settled.
    fn new(timeout: Duration) -> Self {
        Self {
            breaker: Breaker::new(BREAKER_OPEN, 2 * timeout),
            settled: AtomicBool::new(true),
        }
    }

    fn admit(&self) -> bool {
        self.breaker.admit().is_some()
    }

    fn succeeded(&self) {
        self.breaker.succeeded();
    }

    fn failed(&self) {
        if self.breaker.failed() {
            self.settled.store(false, Ordering::Release);
        }
    }

    /// Marks the breaker settled once it has been closed for [`SETTLE`].
    fn settle(&self) {
        let outages = self.breaker.outages();
        if self
            .breaker
            .closed_for()
            .is_some_and(|since| since >= SETTLE)
        {
            self.settled.store(true, Ordering::Release);
            // An outage began meanwhile (its `failed` may have cleared `settled` before this
            // store): it is not settled after all.
            if self.breaker.outages() != outages || !self.breaker.is_closed() {
                self.settled.store(false, Ordering::Release);
            }
        }
    }
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
            timeout,
            breaker: Arc::new(RedisBreaker::new(timeout)),
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

    /// The breaker is closed: the last call (or probe) succeeded.
    pub fn is_healthy(&self) -> bool {
        self.breaker.breaker.is_closed()
    }

    /// Healthy, and long enough after the last outage that what the caches hold may be trusted.
    pub fn is_settled(&self) -> bool {
        self.breaker.settled.load(Ordering::Acquire)
    }

    /// How many outages this node has seen; a cache clears L1 when it changes.
    pub fn outages(&self) -> u64 {
        self.breaker.breaker.outages()
    }

    /// Runs one call with the timeout, through the breaker: `None` when it is skipped, fails or
    /// takes too long.
    async fn call<T>(&self, call: impl Future<Output = redis::RedisResult<T>>) -> Option<T> {
        if !self.breaker.admit() {
            return None;
        }
        self.attempt(call).await
    }

    /// Runs one call with the timeout whatever the breaker says, and tells the breaker how it
    /// went: an I/O error or no answer opens it, any answer closes it.
    async fn attempt<T>(&self, call: impl Future<Output = redis::RedisResult<T>>) -> Option<T> {
        let result = match tokio::time::timeout(self.timeout, call).await {
            Ok(Ok(value)) => Ok(value),
            // Redis answered, with an error about this call (a script's, a type): it is up.
            Ok(Err(err))
                if !(err.is_io_error() || err.is_timeout() || err.is_unrecoverable_error()) =>
            {
                self.metrics.redis_errors.inc();
                self.breaker.succeeded();
                tracing::warn!(error = %err, "redis refused a call");
                return None;
            }
            Ok(Err(err)) => Err(err.to_string()),
            Err(_) => Err(format!("no answer within {} ms", self.timeout.as_millis())),
        };
        match result {
            Ok(value) => {
                self.breaker.succeeded();
                Some(value)
            }
            Err(err) => {
                self.metrics.redis_errors.inc();
                self.breaker.failed();
                tracing::warn!(error = %err, "redis call failed; using the store for a second");
                None
            }
        }
    }

    /// Checks every [`RETRY_EVERY`] that Redis answers (an idle node notices a hung Redis too)
    /// and marks the breaker settled after an outage.
    pub async fn run_heartbeat(self) {
        loop {
            tokio::time::sleep(RETRY_EVERY).await;
            self.ping().await;
            self.breaker.settle();
        }
    }

    /// Reads a value; `None` when absent or when Redis is unavailable.
    pub async fn get(&self, key: &str) -> Option<Vec<u8>> {
        let mut conn = self.manager.clone();
        self.call(conn.get::<_, Option<Vec<u8>>>(key))
            .await
            .flatten()
    }

    /// Sets `key` to `value` only if it still holds `expected` (`None`: nothing), atomically.
    /// A record read from the store before a change is never written over the tombstone the
    /// change left, however late its write arrives.
    pub async fn set_unless_changed(
        &self,
        key: &str,
        expected: Option<&[u8]>,
        value: &[u8],
        ttl: Duration,
    ) {
        static SCRIPT: std::sync::LazyLock<redis::Script> = std::sync::LazyLock::new(|| {
            redis::Script::new(
                "if (redis.call('GET', KEYS[1]) or '') ~= ARGV[1] then return 0 end \
                 redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3]) return 1",
            )
        });
        let mut conn = self.manager.clone();
        let mut invocation = SCRIPT.prepare_invoke();
        invocation
            .key(key)
            .arg(expected.unwrap_or_default())
            .arg(value)
            .arg(ttl.as_millis().max(1) as u64);
        self.call(invocation.invoke_async::<i64>(&mut conn)).await;
    }

    /// Replaces `keys` with `tombstone` for `ttl` and tells every node to evict them. `false` if
    /// Redis could not be reached (the caller sends it again). Invalidations skip the breaker:
    /// they are the calls that must get through first.
    pub async fn tombstone_and_publish(
        &self,
        keys: &[String],
        tombstone: &[u8],
        ttl: Duration,
        message: &str,
    ) -> bool {
        let mut conn = self.manager.clone();
        let mut pipe = redis::pipe();
        let ttl = ttl.as_millis().max(1) as u64;
        for key in keys {
            pipe.pset_ex(key, tombstone, ttl).ignore();
        }
        pipe.publish(INVALIDATION_CHANNEL, message).ignore();
        self.attempt(pipe.query_async::<()>(&mut conn))
            .await
            .is_some()
    }

    /// Runs a Lua script (rate limits); `None` when Redis is unavailable.
    pub async fn eval<T: redis::FromRedisValue>(
        &self,
        script: &redis::Script,
        keys: &[&str],
        args: &[i64],
    ) -> Option<T> {
        let mut conn = self.manager.clone();
        let mut invocation = script.prepare_invoke();
        for key in keys {
            invocation.key(*key);
        }
        for arg in args {
            invocation.arg(*arg);
        }
        self.call(invocation.invoke_async(&mut conn)).await
    }

    /// Runs a pipeline (its commands in order, in one round trip); `None` when Redis is
    /// unavailable.
    pub async fn pipeline<T: redis::FromRedisValue>(&self, pipe: &redis::Pipeline) -> Option<T> {
        let mut conn = self.manager.clone();
        self.call(pipe.query_async(&mut conn)).await
    }

    /// Whether Redis answers PING within the timeout (through the breaker: while it is open,
    /// `false` at once).
    pub async fn ping(&self) -> bool {
        let mut conn = self.manager.clone();
        let ping = redis::cmd("PING");
        self.call(ping.query_async::<String>(&mut conn))
            .await
            .is_some()
    }
}
