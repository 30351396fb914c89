//! The cache tiers under verification: L1 in process (moka), L2 in Redis, and the invalidation
//! channel that keeps every node's L1 honest.
//!
//! Reads go L1 → L2 → store. L1 entries live at most a few seconds (the hard staleness bound);
//! concurrent loads of one digest are coalesced into one. Every change to a key evicts it from
//! L2 and publishes its digest; every node evicts it from L1. A node that is not subscribed
//! (Redis down, or reconnecting) does not trust its L1 and reads through.

pub mod redis;

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use moka::Expiry;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::domain::key::KeyDigest;
use crate::metrics::{Metrics, Tier};
use crate::store::StoreError;
use redis::RedisTier;

/// Hard bound on how long an L1 entry is trusted without hearing from the store or Redis.
pub const L1_TTL: Duration = Duration::from_secs(5);
/// Unknown digests are remembered this long (a new key also evicts its digest explicitly).
pub const NEGATIVE_TTL: Duration = Duration::from_secs(2);
/// L2 records live this long; changes delete them explicitly before that. Never longer than
/// the stale bound: an L2 hit does not touch the store, so while the store is down L2 serves
/// what it holds, and `LATCHKEY_STALE_SECONDS` promises that is at most that old.
pub const L2_TTL: Duration = Duration::from_secs(60);
/// The shortest L2 lifetime, when the stale bound is smaller (0 included).
const MIN_L2_TTL: Duration = Duration::from_secs(1);
const L1_CAPACITY: u64 = 200_000;

/// A record kind the tiers can hold.
pub trait Cached: Clone + Serialize + DeserializeOwned + Send + Sync + 'static {
    /// Distinguishes kinds in Redis keys and invalidation messages.
    const NAMESPACE: &'static str;
}

/// What a tier lookup found.
#[derive(Debug)]
pub enum Lookup<T> {
    Found(Arc<T>),
    NotFound,
    /// The store is down; this is the last known record, younger than the stale bound.
    Stale(Arc<T>),
}

/// A store lookup's answer: the record and the digest it is stored under.
pub type Loaded<T> = Option<(T, KeyDigest)>;

/// What reading past L1 found; `Found(_, false)` must not be cached in L1.
enum Through<T> {
    Found(Arc<T>, bool),
    NotFound,
    Stale(Arc<T>),
}

/// Why a load is not put into L1: either it must not be cached, or it failed.
#[derive(Debug)]
enum NotCached<T> {
    /// Found under a previous pepper's digest: invalidations name the stored digest, so an
    /// entry under this lookup digest could not be evicted. Always read through.
    Uncacheable(Arc<T>),
    Stale(Arc<T>),
    Failed(StoreError),
}

struct EntryExpiry;

impl<T> Expiry<[u8; 32], Option<Arc<T>>> for EntryExpiry {
    fn expire_after_create(
        &self,
        _key: &[u8; 32],
        value: &Option<Arc<T>>,
        _created_at: Instant,
    ) -> Option<Duration> {
        Some(if value.is_some() {
            L1_TTL
        } else {
            NEGATIVE_TTL
        })
    }
}

pub struct TieredCache<T: Cached> {
    l1: moka::future::Cache<[u8; 32], Option<Arc<T>>>,
    /// Positive records kept for the stale bound, served only while the store is down.
    last_known: moka::future::Cache<[u8; 32], Arc<T>>,
    redis: Option<RedisTier>,
    /// [`L2_TTL`], capped at the stale bound.
    l2_ttl: Duration,
    metrics: Arc<Metrics>,
}

impl<T: Cached> TieredCache<T> {
    pub fn new(redis: Option<RedisTier>, metrics: Arc<Metrics>, stale_bound: Duration) -> Self {
        Self {
            l1: moka::future::Cache::builder()
                .max_capacity(L1_CAPACITY)
                .expire_after(EntryExpiry)
                .build(),
            last_known: moka::future::Cache::builder()
                .max_capacity(L1_CAPACITY)
                .time_to_live(stale_bound.max(Duration::from_millis(1)))
                .build(),
            redis,
            l2_ttl: L2_TTL.min(stale_bound).max(MIN_L2_TTL),
            metrics,
        }
    }

    fn l2_key(digest: &KeyDigest) -> String {
        format!("latchkey:{}:{}", T::NAMESPACE, digest.to_hex())
    }

    /// Whether L1 may answer: always on a single node; with Redis only while subscribed.
    fn l1_trusted(&self) -> bool {
        self.redis
            .as_ref()
            .is_none_or(|redis| redis.is_subscribed() && redis.is_healthy())
    }

    /// Finds the record for `digest`, loading it from the store with `load` when no tier has it.
    pub async fn get<F, Fut>(&self, digest: KeyDigest, load: F) -> Result<Lookup<T>, StoreError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Loaded<T>, StoreError>>,
    {
        if !self.l1_trusted() {
            return Ok(match self.read_through(digest, load).await? {
                Through::Found(record, _) => Lookup::Found(record),
                Through::NotFound => Lookup::NotFound,
                Through::Stale(record) => Lookup::Stale(record),
            });
        }
        let key = *digest.as_bytes();
        if let Some(hit) = self.l1.get(&key).await {
            self.metrics.cache_lookup(Tier::L1, true);
            return Ok(hit.map_or(Lookup::NotFound, Lookup::Found));
        }
        self.metrics.cache_lookup(Tier::L1, false);
        // Coalesced: concurrent callers for one digest wait for this single load.
        let loaded = self
            .l1
            .try_get_with(key, async {
                match self.read_through(digest, load).await {
                    Ok(Through::Found(record, true)) => Ok(Some(record)),
                    Ok(Through::Found(record, false)) => Err(NotCached::Uncacheable(record)),
                    Ok(Through::NotFound) => Ok(None),
                    Ok(Through::Stale(record)) => Err(NotCached::Stale(record)),
                    Err(err) => Err(NotCached::Failed(err)),
                }
            })
            .await;
        match loaded {
            Ok(record) => Ok(record.map_or(Lookup::NotFound, Lookup::Found)),
            Err(err) => match &*err {
                NotCached::Stale(record) => Ok(Lookup::Stale(record.clone())),
                NotCached::Uncacheable(record) => Ok(Lookup::Found(record.clone())),
                NotCached::Failed(err) => Err(StoreError::Unavailable(err.to_string())),
            },
        }
    }

    /// L2, then the store; fills L2 (and the stale copy) on the way back.
    async fn read_through<F, Fut>(
        &self,
        digest: KeyDigest,
        load: F,
    ) -> Result<Through<T>, StoreError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Loaded<T>, StoreError>>,
    {
        let l2_key = Self::l2_key(&digest);
        if let Some(redis) = &self.redis {
            match redis.get(&l2_key).await {
                Some(bytes) if bytes == b"-" => {
                    self.metrics.cache_lookup(Tier::L2, true);
                    return Ok(Through::NotFound);
                }
                Some(bytes) => {
                    if let Ok(record) = serde_json::from_slice::<T>(&bytes) {
                        self.metrics.cache_lookup(Tier::L2, true);
                        return Ok(Through::Found(Arc::new(record), true));
                    }
                }
                None => {}
            }
            self.metrics.cache_lookup(Tier::L2, false);
        }
        self.metrics.store_lookups.inc();
        match load().await {
            Ok(Some((record, stored))) => {
                let record = Arc::new(record);
                if stored != digest {
                    return Ok(Through::Found(record, false));
                }
                if let Some(redis) = &self.redis
                    && let Ok(bytes) = serde_json::to_vec(&*record)
                {
                    redis.set(&l2_key, &bytes, self.l2_ttl).await;
                }
                self.last_known
                    .insert(*digest.as_bytes(), record.clone())
                    .await;
                Ok(Through::Found(record, true))
            }
            Ok(None) => {
                if let Some(redis) = &self.redis {
                    redis.set(&l2_key, b"-", NEGATIVE_TTL).await;
                }
                Ok(Through::NotFound)
            }
            Err(err) => match self.last_known.get(digest.as_bytes()).await {
                Some(record) => Ok(Through::Stale(record)),
                None => Err(err),
            },
        }
    }

    /// Evicts digests from this node's tiers (L1 and the stale copy).
    pub async fn evict_local(&self, digests: &[KeyDigest]) {
        for digest in digests {
            self.l1.invalidate(digest.as_bytes()).await;
            self.last_known.invalidate(digest.as_bytes()).await;
        }
    }

    pub fn clear_l1(&self) {
        self.l1.invalidate_all();
    }
}

/// How long after a change the second eviction goes out.
const SECOND_EVICTION_DELAY: Duration = Duration::from_millis(500);

/// The L2 keys of `digests` and the message that evicts them everywhere.
fn invalidation<T: Cached>(digests: &[KeyDigest]) -> (Vec<String>, String) {
    let keys = digests.iter().map(TieredCache::<T>::l2_key).collect();
    let hexes: Vec<String> = digests.iter().map(KeyDigest::to_hex).collect();
    (keys, format!("{}:{}", T::NAMESPACE, hexes.join(",")))
}

/// Both record kinds' tiers and the invalidation channel between nodes.
pub struct Caches<K: Cached, R: Cached> {
    pub keys: TieredCache<K>,
    pub root_keys: TieredCache<R>,
    pub redis: Option<RedisTier>,
    /// Invalidations that could not be published (Redis down); sent again on reconnect.
    pending: std::sync::Mutex<Vec<String>>,
    metrics: Arc<Metrics>,
}

impl<K: Cached, R: Cached> Caches<K, R> {
    pub fn new(redis: Option<RedisTier>, metrics: Arc<Metrics>, stale_bound: Duration) -> Self {
        Self {
            keys: TieredCache::new(redis.clone(), metrics.clone(), stale_bound),
            root_keys: TieredCache::new(redis.clone(), metrics.clone(), stale_bound),
            redis,
            pending: Default::default(),
            metrics,
        }
    }

    pub async fn invalidate_keys(&self, digests: &[KeyDigest]) {
        self.keys.evict_local(digests).await;
        self.publish::<K>(digests).await;
    }

    pub async fn invalidate_root_keys(&self, digests: &[KeyDigest]) {
        self.root_keys.evict_local(digests).await;
        self.publish::<R>(digests).await;
    }

    async fn publish<T: Cached>(&self, digests: &[KeyDigest]) {
        let Some(redis) = &self.redis else { return };
        if digests.is_empty() {
            return;
        }
        self.send::<T>(redis, digests).await;
        // A load that read the store just before the change may write the old record to L2 (or
        // a peer's L1) just after our eviction. Evicting again shortly after closes that window.
        let (redis, digests) = (redis.clone(), digests.to_vec());
        tokio::spawn(async move {
            tokio::time::sleep(SECOND_EVICTION_DELAY).await;
            for chunk in digests.chunks(500) {
                let (keys, message) = invalidation::<T>(chunk);
                redis.delete_and_publish(&keys, &message).await;
            }
        });
    }

    async fn send<T: Cached>(&self, redis: &RedisTier, digests: &[KeyDigest]) {
        for chunk in digests.chunks(500) {
            let (keys, message) = invalidation::<T>(chunk);
            if !redis.delete_and_publish(&keys, &message).await {
                self.pending
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(message);
            }
        }
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
            self.keys.evict_local(&digests).await;
        } else if namespace == R::NAMESPACE {
            self.root_keys.evict_local(&digests).await;
        }
    }

    /// Re-sends invalidations that failed while Redis was unreachable (their L2 records may
    /// still exist). Returns whether all went out.
    async fn flush_pending(&self) -> bool {
        let Some(redis) = &self.redis else {
            return true;
        };
        let pending = std::mem::take(&mut *self.pending.lock().unwrap_or_else(|e| e.into_inner()));
        for (i, message) in pending.iter().enumerate() {
            let Some((namespace, hexes)) = message.split_once(':') else {
                continue;
            };
            let keys: Vec<String> = hexes
                .split(',')
                .map(|h| format!("latchkey:{namespace}:{h}"))
                .collect();
            if !redis.delete_and_publish(&keys, message).await {
                self.pending
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .extend(pending[i..].iter().cloned());
                return false;
            }
        }
        true
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
                    if pubsub.subscribe(redis::INVALIDATION_CHANNEL).await.is_ok() {
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
