//! Which access tokens are revoked, by `jti`.
//!
//! The store holds the record: a revocation is written there together with its audit event.
//! With Redis configured, every node also reads a shared copy there, so checking a token costs
//! one Redis round trip instead of a store query. The copy is one sorted set, member
//! `{tenant}:{jti}`, score the token's expiry in milliseconds, plus a [`LOADED`] member that says
//! the set is complete. Being one key, the set and its marker vanish together (a Redis restart
//! without persistence, an eviction), and then every node reads the store until one of them has
//! copied the store's entries back, which the background [`Denylist::run`] does within a
//! second. A node that could not add an entry (Redis unreachable at that moment) copies the
//! whole list again once Redis answers; every node also recopies it every [`RESYNC`], which
//! bounds any drift (say, a Redis restored from an older snapshot).

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use chrono::NaiveDateTime;

use crate::domain::ids::TenantId;
use crate::domain::time::Clock;
use crate::redis::RedisTier;
use crate::store::{Store, StoreError, revoked_tokens};

/// The sorted set holding the copy.
pub const REDIS_KEY: &str = crate::redis::keys::REVOKED_TOKENS;
/// The member that marks the copy complete; its score is `+inf`, so pruning never drops it.
pub const LOADED: &str = "loaded";
/// How often a node checks the copy is there.
const TICK: Duration = Duration::from_secs(1);
/// How often a node copies the whole list again even though nothing looked wrong.
const RESYNC: Duration = Duration::from_secs(30);
/// Entries are kept this long past their token's expiry, for clock skew between nodes.
const EXPIRED_SLACK_MS: i64 = 60_000;
/// Members added per command when copying the list.
const CHUNK: usize = 500;

pub struct Denylist {
    store: Store,
    redis: Option<RedisTier>,
    /// Which revoked tokens have expired (and need no entry any more).
    clock: Clock,
    /// An entry may be missing from the Redis copy: copy the whole list at the next tick.
    missed: AtomicBool,
}

/// The set member naming one token.
pub fn member(tenant: &TenantId, jti: &str) -> String {
    format!("{}:{jti}", tenant.as_str())
}

fn millis(at: NaiveDateTime) -> i64 {
    at.and_utc().timestamp_millis()
}

impl Denylist {
    pub fn new(store: Store, redis: Option<RedisTier>, clock: Clock) -> Self {
        Self {
            store,
            redis,
            clock,
            missed: AtomicBool::new(false),
        }
    }

    /// Whether `jti` of `tenant` was revoked: from the Redis copy when it is complete and
    /// reachable, from the store otherwise. Never "not revoked" from a guess.
    pub async fn contains(&self, tenant: &TenantId, jti: &str) -> Result<bool, StoreError> {
        if let Some(redis) = &self.redis {
            let mut pipe = redis::pipe();
            pipe.zscore(REDIS_KEY, LOADED)
                .zscore(REDIS_KEY, member(tenant, jti));
            if let Some((Some(_), entry)) =
                redis.pipeline::<(Option<f64>, Option<f64>)>(&pipe).await
            {
                return Ok(entry.is_some());
            }
        }
        let (tenant, jti) = (tenant.clone(), jti.to_owned());
        self.store
            .run(move |conn| revoked_tokens::is_revoked(conn, &tenant, &jti))
            .await
    }

    /// Adds a revocation the store has already committed to the Redis copy.
    pub async fn added(&self, tenant: &TenantId, jti: &str, expires_at: NaiveDateTime) {
        let Some(redis) = &self.redis else {
            return;
        };
        let mut pipe = redis::pipe();
        pipe.zadd(REDIS_KEY, member(tenant, jti), millis(expires_at))
            .ignore();
        if redis.pipeline::<()>(&pipe).await.is_none() {
            self.missed.store(true, Ordering::Release);
        }
    }

    /// Keeps the Redis copy complete for as long as the node runs; returns at once without
    /// Redis.
    pub async fn run(self: std::sync::Arc<Self>) {
        let Some(redis) = &self.redis else {
            return;
        };
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut copied_at: Option<Instant> = None;
        loop {
            tick.tick().await;
            // Both must answer; the breakers logged whichever does not.
            if !redis.is_healthy() || !self.store.is_healthy() {
                continue;
            }
            let missed = self.missed.swap(false, Ordering::AcqRel);
            let due = missed
                || copied_at.is_none_or(|at| at.elapsed() >= RESYNC)
                || !self.is_complete(redis).await;
            if !due {
                continue;
            }
            match self.copy(redis).await {
                Ok(true) => copied_at = Some(Instant::now()),
                Ok(false) => self.missed.store(true, Ordering::Release),
                Err(err) => {
                    self.missed.store(true, Ordering::Release);
                    tracing::warn!(error = %err, "cannot read the token denylist from the store");
                }
            }
        }
    }

    /// The marker is there. A failed call counts as complete: the next tick asks again, and
    /// reads fall back to the store meanwhile anyway.
    async fn is_complete(&self, redis: &RedisTier) -> bool {
        let mut pipe = redis::pipe();
        pipe.zscore(REDIS_KEY, LOADED);
        !matches!(redis.pipeline::<(Option<f64>,)>(&pipe).await, Some((None,)))
    }

    /// Copies every live entry of the store to Redis, prunes expired ones, and marks the copy
    /// complete, in one pipeline. `Ok(false)` if Redis failed.
    async fn copy(&self, redis: &RedisTier) -> Result<bool, StoreError> {
        let at = self.clock.now();
        let rows = self
            .store
            .run(move |conn| revoked_tokens::unexpired(conn, at))
            .await?;
        let mut pipe = redis::pipe();
        for chunk in rows.chunks(CHUNK) {
            let items: Vec<(i64, String)> = chunk
                .iter()
                .map(|row| {
                    let tenant = TenantId::from_trusted(row.tenant_id.clone());
                    (millis(row.expires_at), member(&tenant, &row.jti))
                })
                .collect();
            pipe.zadd_multiple(REDIS_KEY, &items).ignore();
        }
        pipe.zrembyscore(REDIS_KEY, "-inf", millis(at) - EXPIRED_SLACK_MS)
            .ignore()
            .zadd(REDIS_KEY, LOADED, "+inf")
            .ignore();
        Ok(redis.pipeline::<()>(&pipe).await.is_some())
    }
}
