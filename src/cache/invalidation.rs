//! The invalidation channel: a change evicts its digests here, deletes their L2 records and
//! publishes them over Redis, and every node's subscriber evicts them from its L1.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;

use super::{Cached, LookupFor, TieredCache};
use crate::domain::ids::TenantId;
use crate::domain::key::KeyDigest;
use crate::metrics::Metrics;
use crate::redis::{RETRY_EVERY, RedisTier};
use crate::sync::lock;

/// How long after a change the second eviction goes out.
const SECOND_EVICTION_DELAY: Duration = Duration::from_millis(500);
/// How long an evicted record's L2 key holds a tombstone: a load that read the record before
/// the change cannot write it back over one (see [`RedisTier::set_unless_changed`]), however
/// late its write arrives within this time.
pub const TOMBSTONE_TTL: Duration = Duration::from_secs(120);

/// Leaves a tombstone in each of `keys` (unique to this invalidation, so a load that saw an
/// older one still fails its write) and tells every node to evict; `false` if Redis was not
/// reached.
async fn evict_everywhere(redis: &RedisTier, keys: &[String], message: &str) -> bool {
    let tombstone = format!("~{}", crate::domain::ids::new_id());
    redis
        .tombstone_and_publish(keys, tombstone.as_bytes(), TOMBSTONE_TTL, message)
        .await
}

/// A change's records to evict: the digest and the scope of its owner's lookups.
type Evicted = (LookupFor, KeyDigest);

/// What goes to Redis for some evicted records: their L2 keys (in their owners' scopes) and the
/// message that evicts their digests everywhere.
#[derive(Clone)]
struct Invalidation {
    keys: Vec<String>,
    message: String,
}

impl Invalidation {
    fn of<T: Cached>(evicted: &[Evicted]) -> Self {
        let keys = evicted
            .iter()
            .map(|(scope, digest)| TieredCache::<T>::l2_key(scope, digest))
            .collect();
        let hexes: Vec<String> = evicted.iter().map(|(_, d)| d.to_hex()).collect();
        let message = format!("{}:{}", T::NAMESPACE, hexes.join(","));
        Self { keys, message }
    }
}

/// Both record kinds' tiers and the invalidation channel between nodes.
pub struct Caches<K: Cached, R: Cached> {
    pub keys: Arc<TieredCache<K>>,
    pub root_keys: Arc<TieredCache<R>>,
    pub redis: Option<RedisTier>,
    /// Invalidations that could not be published (Redis down); sent again on reconnect.
    pending: Mutex<Vec<Invalidation>>,
    metrics: Arc<Metrics>,
}

impl<K: Cached, R: Cached> Caches<K, R> {
    pub fn new(redis: Option<RedisTier>, metrics: Arc<Metrics>, stale_bound: Duration) -> Self {
        Self {
            keys: Arc::new(TieredCache::new(
                redis.clone(),
                metrics.clone(),
                stale_bound,
            )),
            root_keys: Arc::new(TieredCache::new(
                redis.clone(),
                metrics.clone(),
                stale_bound,
            )),
            redis,
            pending: Default::default(),
            metrics,
        }
    }

    /// Evicts API keys, each named by its tenant and digest: the key is cached for its own
    /// tenant's lookups only (another tenant's find nothing and keep only that).
    pub async fn invalidate_keys(&self, keys: &[(TenantId, KeyDigest)]) {
        let evicted: Vec<Evicted> = keys
            .iter()
            .map(|(tenant, digest)| (LookupFor::Tenant(tenant.clone()), *digest))
            .collect();
        let digests: Vec<KeyDigest> = keys.iter().map(|(_, digest)| *digest).collect();
        self.keys.evict_local(&digests);
        self.publish::<K>(&evicted).await;
    }

    pub async fn invalidate_root_keys(&self, digests: &[KeyDigest]) {
        self.root_keys.evict_local(digests);
        let evicted: Vec<Evicted> = digests.iter().map(|d| (LookupFor::Anyone, *d)).collect();
        self.publish::<R>(&evicted).await;
    }

    async fn publish<T: Cached>(&self, evicted: &[Evicted]) {
        let Some(redis) = &self.redis else { return };
        if evicted.is_empty() {
            return;
        }
        let invalidations: Vec<Invalidation> =
            evicted.chunks(500).map(Invalidation::of::<T>).collect();
        for invalidation in &invalidations {
            if !evict_everywhere(redis, &invalidation.keys, &invalidation.message).await {
                lock(&self.pending).push(invalidation.clone());
            }
        }
        // A load that read the store just before the change may write the old record to L2 (or
        // a peer's L1) just after our eviction. Evicting again shortly after closes that window.
        let redis = redis.clone();
        tokio::spawn(async move {
            tokio::time::sleep(SECOND_EVICTION_DELAY).await;
            for invalidation in &invalidations {
                evict_everywhere(&redis, &invalidation.keys, &invalidation.message).await;
            }
        });
    }

    async fn apply(&self, message: &str) {
        let Some((namespace, hexes)) = message.split_once(':') else {
            return;
        };
        let digests: Vec<KeyDigest> = hexes
            .split(',')
            .filter_map(|h| hex::decode(h).ok())
            .filter_map(|bytes| KeyDigest::from_slice(&bytes))
            .collect();
        self.metrics
            .invalidations_received
            .inc_by(digests.len() as u64);
        if namespace == K::NAMESPACE {
            self.keys.evict_local(&digests);
        } else if namespace == R::NAMESPACE {
            self.root_keys.evict_local(&digests);
        }
    }

    /// Re-sends invalidations that failed while Redis was unreachable (their L2 records may
    /// still exist). Returns whether all went out.
    async fn flush_pending(&self) -> bool {
        let Some(redis) = &self.redis else {
            return true;
        };
        let pending = std::mem::take(&mut *lock(&self.pending));
        for (i, invalidation) in pending.iter().enumerate() {
            if !evict_everywhere(redis, &invalidation.keys, &invalidation.message).await {
                lock(&self.pending).extend(pending[i..].iter().cloned());
                return false;
            }
        }
        true
    }

    /// Re-sends failed invalidations every [`RETRY_EVERY`] until they go out. A hung Redis that
    /// resumes never drops the subscription, so waiting for a reconnect would wait forever.
    pub async fn run_retries(self: Arc<Self>) {
        if self.redis.is_none() {
            return;
        }
        loop {
            tokio::time::sleep(RETRY_EVERY).await;
            if !lock(&self.pending).is_empty() {
                self.flush_pending().await;
            }
        }
    }

    /// Listens on the invalidation channel for as long as the process runs, reconnecting after
    /// any drop. L1 is cleared and bypassed whenever the subscription is not live.
    pub async fn run_subscriber(self: Arc<Self>) {
        let Some(redis) = self.redis.clone() else {
            return;
        };
        let mut backoff = Duration::from_millis(50);
        loop {
            match redis.client().get_async_pubsub().await {
                Ok(mut pubsub) => {
                    if pubsub
                        .subscribe(crate::redis::INVALIDATION_CHANNEL)
                        .await
                        .is_ok()
                    {
                        // Anything cached before this moment may have missed an eviction.
                        self.keys.clear_l1();
                        self.root_keys.clear_l1();
                        self.flush_pending().await;
                        redis.set_subscribed(true);
                        tracing::info!("subscribed to cache invalidations");
                        backoff = Duration::from_millis(50);
                        let mut messages = pubsub.on_message();
                        while let Some(message) = messages.next().await {
                            if let Ok(payload) = message.get_payload::<String>() {
                                self.apply(&payload).await;
                            }
                        }
                    }
                }
                Err(err) => tracing::debug!(error = %err, "cannot subscribe to invalidations"),
            }
            if redis.is_subscribed() {
                tracing::warn!("lost the invalidation channel; bypassing the in-process cache");
            }
            redis.set_subscribed(false);
            self.keys.clear_l1();
            self.root_keys.clear_l1();
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(1));
        }
    }
}
