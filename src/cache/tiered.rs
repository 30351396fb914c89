//! The tiered read-through: L1, then L2 in Redis, then the store, with concurrent loads of one
//! digest coalesced and hot entries reloaded in the background. Every entry answers one
//! [`LookupFor`]: a tenant's lookups find, cache and evict only that tenant's records.

use std::collections::HashSet;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::l1::{
    EntryExpiry, Generation, Generations, L1_CAPACITY, L1Entry, L1Timing, NEGATIVE_TTL,
};
use crate::domain::ids::TenantId;
use crate::domain::key::KeyDigest;
use crate::metrics::{CacheKind, Metrics, Tier};
use crate::redis::RedisTier;
use crate::store::models::StoredByDigest;
use crate::store::{DbConnection, Store, StoreError};
use crate::sync::lock;

/// L2 records live this long; changes delete them explicitly before that. Never longer than
/// the stale bound: an L2 hit does not touch the store, so while the store is down L2 serves
/// what it holds, and `LATCHKEY_STALE_SECONDS` promises that is at most that old.
pub const L2_TTL: Duration = Duration::from_secs(60);
/// The shortest L2 lifetime, when the stale bound is smaller (0 included).
const MIN_L2_TTL: Duration = Duration::from_secs(1);

/// Whose lookup an entry answers. API keys are looked up for the calling tenant only, so the
/// store is asked for that tenant's record: another tenant's key is "not found" just as a key
/// that exists nowhere is (the same query, the same empty answer, the same negative entry), and
/// one tenant's lookups never bring another's record into memory or L2. Root keys are what
/// names the caller's tenant, so they are looked up for anyone.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum LookupFor {
    Tenant(TenantId),
    Anyone,
}

/// An entry's place in L1 and in the stale copies: its scope and digest. Evictions name
/// digests: they move the digest's generation on, which retires its entries in every scope.
type EntryKey = (LookupFor, [u8; 32]);

/// A record kind the tiers can hold.
pub trait Cached: Clone + Serialize + DeserializeOwned + Send + Sync + 'static {
    /// Distinguishes kinds in Redis keys and invalidation messages.
    const NAMESPACE: &'static str;
    /// Names the kind in the cache metrics.
    const KIND: CacheKind;
}

/// What a tier lookup found.
#[derive(Clone, Debug)]
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

impl<T> Through<T> {
    /// What L1 may keep of this answer, read from `generation` on, or why it keeps nothing.
    fn into_l1(self, generation: Generation) -> Result<L1Entry<T>, NotCached<T>> {
        match self {
            Through::Found(record, true) => Ok(L1Entry::new(Some(record), generation)),
            Through::Found(record, false) => Err(NotCached::Uncacheable(record)),
            Through::NotFound => Ok(L1Entry::new(None, generation)),
            Through::Stale(record) => Err(NotCached::Stale(record)),
        }
    }

    fn into_lookup(self) -> Lookup<T> {
        match self {
            Through::Found(record, _) => Lookup::Found(record),
            Through::NotFound => Lookup::NotFound,
            Through::Stale(record) => Lookup::Stale(record),
        }
    }
}

/// A load L1 keeps nothing of, with the generation it read from.
#[derive(Debug)]
struct Miss<T> {
    generation: Generation,
    why: NotCached<T>,
}

/// Why a load is not put into L1: either it must not be cached, or it failed.
#[derive(Debug)]
enum NotCached<T> {
    /// Found under a previous pepper's digest: invalidations name the stored digest, so an
    /// entry under this lookup digest could not be evicted. Always read through.
    Uncacheable(Arc<T>),
    Stale(Arc<T>),
    /// Read while its digest was evicted: this caller's answer (it asked before the change
    /// finished), kept for no one else.
    Overlapped(Lookup<T>),
    Failed(StoreError),
}

/// One record kind's tiers. A clone is a handle to the same tiers (for a background reload).
#[derive(Clone)]
pub struct TieredCache<T: Cached> {
    l1: moka::future::Cache<EntryKey, L1Entry<T>>,
    timing: L1Timing,
    /// Positive records kept for the stale bound, served only while the store is down.
    /// Each with its digest's eviction generation from when it was read: a copy read before a
    /// change that evicted it is never served, however late it was put here.
    last_known: moka::future::Cache<EntryKey, (Arc<T>, Generation)>,
    redis: Option<RedisTier>,
    /// [`L2_TTL`], capped at the stale bound.
    l2_ttl: Duration,
    metrics: Arc<Metrics>,
    /// Entries being reloaded in the background (at most one reload each).
    refreshing: Arc<Mutex<HashSet<EntryKey>>>,
    /// Bumped by every eviction: a load (first lookup or background reload) that overlapped an
    /// eviction of its digest is not kept in L1, since it may have read the record before the
    /// change that evicted it.
    generations: Arc<Generations>,
    /// The Redis outages this cache has cleared L1 for.
    seen_outages: Arc<AtomicU64>,
}

impl<T: Cached> TieredCache<T> {
    pub fn new(redis: Option<RedisTier>, metrics: Arc<Metrics>, stale_bound: Duration) -> Self {
        Self::with_timing(redis, metrics, stale_bound, L1Timing::default())
    }

    pub fn with_timing(
        redis: Option<RedisTier>,
        metrics: Arc<Metrics>,
        stale_bound: Duration,
        timing: L1Timing,
    ) -> Self {
        let redis_outages = redis.as_ref().map_or(0, RedisTier::outages);
        Self {
            l1: moka::future::Cache::builder()
                .max_capacity(L1_CAPACITY)
                .expire_after(EntryExpiry(timing))
                .build(),
            timing,
            last_known: moka::future::Cache::builder()
                .max_capacity(L1_CAPACITY)
                .time_to_live(stale_bound.max(Duration::from_millis(1)))
                .build(),
            redis,
            l2_ttl: L2_TTL.min(stale_bound).max(MIN_L2_TTL),
            metrics,
            refreshing: Default::default(),
            generations: Arc::new(Generations::new()),
            seen_outages: Arc::new(AtomicU64::new(redis_outages)),
        }
    }

    pub(super) fn l2_key(scope: &LookupFor, digest: &KeyDigest) -> String {
        let tenant = match scope {
            LookupFor::Tenant(tenant) => Some(tenant.as_str()),
            LookupFor::Anyone => None,
        };
        crate::redis::keys::record(T::NAMESPACE, tenant, &digest.to_hex())
    }

    /// Whether L1 may answer: always on a single node; with Redis only while subscribed and
    /// settled after any outage (which may have cost it invalidations: L1 is cleared then).
    fn l1_trusted(&self) -> bool {
        let Some(redis) = &self.redis else {
            return true;
        };
        let outages = redis.outages();
        if self.seen_outages.load(Ordering::Acquire) != outages {
            self.seen_outages.store(outages, Ordering::Release);
            self.generations.evicted_all();
        }
        redis.is_subscribed() && redis.is_settled()
    }

    /// Redis, when L2 may be read and written: not during an outage nor while it settles.
    fn l2(&self) -> Option<&RedisTier> {
        self.redis.as_ref().filter(|redis| redis.is_settled())
    }

    /// Finds the record stored under any of `digests` (the current pepper's first) for `scope`:
    /// through the tiers, and from the store with `find` when no tier has it. `find` must look
    /// in that scope only (for a tenant, filter by it).
    pub async fn get_stored<Row, F>(
        &self,
        store: &Store,
        scope: LookupFor,
        digests: Vec<KeyDigest>,
        find: F,
    ) -> Result<Lookup<T>, StoreError>
    where
        Row: StoredByDigest + Send + 'static,
        T: From<Row>,
        F: FnOnce(&mut DbConnection, &[KeyDigest]) -> Result<Option<Row>, StoreError>
            + Clone
            + Send
            + 'static,
    {
        let current = digests[0];
        let store = store.clone();
        self.get(scope, current, move || async move {
            let row = store.run(move |conn| find(conn, &digests)).await?;
            Ok(row.and_then(|row| {
                let stored = KeyDigest::from_slice(row.digest())?;
                Some((T::from(row), stored))
            }))
        })
        .await
    }

    /// Finds the record for `digest` in `scope`, loading it from the store with `load` when no
    /// tier has it.
    ///
    /// No answer predates an eviction that finished before the call: every L1 entry carries the
    /// digest's eviction generation from when its read began, and one that an eviction has
    /// moved past is dropped, however the read that made it was interleaved with the change.
    pub async fn get<F, Fut>(
        &self,
        scope: LookupFor,
        digest: KeyDigest,
        load: F,
    ) -> Result<Lookup<T>, StoreError>
    where
        F: FnOnce() -> Fut + Clone + Send + 'static,
        Fut: Future<Output = Result<Loaded<T>, StoreError>> + Send + 'static,
    {
        // Both read-through paths are boxed: their futures (L2, the store, the coalescing) are
        // kilobytes, and an L1 hit should not build and move them on every call.
        let key = (scope, *digest.as_bytes());
        if !self.l1_trusted() {
            return Box::pin(self.read_past_l1(&key, digest, load)).await;
        }
        if let Some(hit) = self.l1.get(&key).await {
            if hit.generation == self.generations.of(&digest) {
                self.metrics.cache_lookup(T::KIND, Tier::L1, true);
                if hit.record.is_some()
                    && hit.read_at.elapsed() >= self.timing.refresh_after(&digest)
                {
                    self.refresh_in_background(key, digest, load);
                }
                return Ok(hit.lookup());
            }
            // Read before the latest eviction of its digest (its load raced the change).
            self.l1.invalidate(&key).await;
        }
        self.metrics.cache_lookup(T::KIND, Tier::L1, false);
        Box::pin(self.load_into_l1(key, digest, load)).await
    }

    /// With L1 not trusted: read through L2 and the store, and keep nothing in L1.
    async fn read_past_l1<F, Fut>(
        &self,
        key: &EntryKey,
        digest: KeyDigest,
        load: F,
    ) -> Result<Lookup<T>, StoreError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Loaded<T>, StoreError>>,
    {
        Ok(self.read_through(key, digest, load).await?.into_lookup())
    }

    /// After an L1 miss: one read through L2 and the store, shared by concurrent callers for the
    /// digest and kept in L1 if it may be. A caller that joins a read begun before an eviction
    /// it has seen (the read may hold the state from before the change) reads again on its own.
    async fn load_into_l1<F, Fut>(
        &self,
        key: EntryKey,
        digest: KeyDigest,
        load: F,
    ) -> Result<Lookup<T>, StoreError>
    where
        F: FnOnce() -> Fut + Clone,
        Fut: Future<Output = Result<Loaded<T>, StoreError>>,
    {
        let seen = self.generations.of(&digest);
        let again = load.clone();
        // Coalesced: concurrent callers for one digest wait for this single load.
        let loaded = self
            .l1
            .try_get_with(key.clone(), async {
                let generation = self.generations.of(&digest);
                let miss = |why| Miss { generation, why };
                let through = self
                    .read_through(&key, digest, load)
                    .await
                    .map_err(|err| miss(NotCached::Failed(err)))?;
                // Evicted while the read was in flight: L1 keeps nothing of it.
                if self.generations.of(&digest) != generation {
                    return Err(miss(NotCached::Overlapped(through.into_lookup())));
                }
                through.into_l1(generation).map_err(miss)
            })
            .await;
        let read_from = match &loaded {
            Ok(entry) => entry.generation,
            Err(miss) => miss.generation,
        };
        if read_from != seen {
            if loaded.is_ok() {
                self.l1.invalidate(&key).await;
            }
            return Box::pin(self.read_past_l1(&key, digest, again)).await;
        }
        match loaded {
            Ok(entry) => Ok(entry.lookup()),
            Err(miss) => match &miss.why {
                NotCached::Stale(record) => Ok(Lookup::Stale(record.clone())),
                NotCached::Uncacheable(record) => Ok(Lookup::Found(record.clone())),
                NotCached::Overlapped(lookup) => Ok(lookup.clone()),
                NotCached::Failed(err) => Err(err.shared()),
            },
        }
    }

    /// Reloads a hot entry through L2 and the store while requests go on being answered from
    /// L1; replaces it if nothing was evicted meanwhile. A reload that fails leaves the entry to
    /// expire, after which requests read through as on any miss.
    fn refresh_in_background<F, Fut>(&self, key: EntryKey, digest: KeyDigest, load: F)
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = Result<Loaded<T>, StoreError>> + Send + 'static,
    {
        if !lock(&self.refreshing).insert(key.clone()) {
            return;
        }
        let tiers = self.clone();
        tokio::spawn(async move {
            // Frees the digest for the next reload however this task ends.
            let _reloading = Reloading {
                set: tiers.refreshing.clone(),
                key: key.clone(),
            };
            let generation = tiers.generations.of(&digest);
            let entry = match tiers.read_through(&key, digest, load).await {
                Ok(through) => through.into_l1(generation).ok(),
                Err(_) => None,
            };
            // An eviction after this check leaves the entry behind its digest's generation,
            // and no hit takes it.
            if let Some(entry) = entry
                && tiers.generations.of(&digest) == generation
                && tiers.l1_trusted()
            {
                tiers.l1.insert(key, entry).await;
            }
        });
    }

    /// L2, then the store; fills L2 (and the stale copy) on the way back.
    async fn read_through<F, Fut>(
        &self,
        key: &EntryKey,
        digest: KeyDigest,
        load: F,
    ) -> Result<Through<T>, StoreError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Loaded<T>, StoreError>>,
    {
        let generation = self.generations.of(&digest);
        let l2_key = Self::l2_key(&key.0, &digest);
        // What L2 held when we looked: the write below happens only if it still does.
        let mut seen: Option<Vec<u8>> = None;
        if let Some(redis) = self.l2() {
            match redis.get(&l2_key).await {
                Some(bytes) if bytes == b"-" => {
                    self.metrics.cache_lookup(T::KIND, Tier::L2, true);
                    return Ok(Through::NotFound);
                }
                // A tombstone: evicted recently, read the store.
                Some(bytes) if bytes.starts_with(b"~") => seen = Some(bytes),
                Some(bytes) => match serde_json::from_slice::<T>(&bytes) {
                    Ok(record) => {
                        self.metrics.cache_lookup(T::KIND, Tier::L2, true);
                        return Ok(Through::Found(Arc::new(record), true));
                    }
                    Err(_) => seen = Some(bytes),
                },
                None => {}
            }
            self.metrics.cache_lookup(T::KIND, Tier::L2, false);
        }
        self.metrics.store_lookups.inc();
        match load().await {
            Ok(Some((record, stored))) => {
                let record = Arc::new(record);
                if stored != digest {
                    return Ok(Through::Found(record, false));
                }
                if let Some(redis) = self.l2()
                    && let Ok(bytes) = serde_json::to_vec(&*record)
                {
                    redis
                        .set_unless_changed(&l2_key, seen.as_deref(), &bytes, self.l2_ttl)
                        .await;
                }
                self.last_known
                    .insert(key.clone(), (record.clone(), generation))
                    .await;
                Ok(Through::Found(record, true))
            }
            Ok(None) => {
                if let Some(redis) = self.l2() {
                    redis
                        .set_unless_changed(&l2_key, seen.as_deref(), b"-", NEGATIVE_TTL)
                        .await;
                }
                Ok(Through::NotFound)
            }
            Err(err) => match self.last_known.get(key).await {
                Some((record, read)) if read == self.generations.of(&digest) => {
                    Ok(Through::Stale(record))
                }
                _ => Err(err),
            },
        }
    }

    /// Evicts digests from this node's tiers (L1 and the stale copy), in every scope: each
    /// digest's generation moves on, so no entry read before now answers again (an entry is
    /// dropped on its next hit, or expires). An eviction names digests only, as a peer hears
    /// it, and reaches every tenant's entries for them.
    pub fn evict_local(&self, digests: &[KeyDigest]) {
        for digest in digests {
            self.generations.evicted(digest);
        }
    }

    /// What this node keeps for `digest` in `scope` (L1 or the stale copy): `Some(true)` a
    /// record, `Some(false)` only "not found", `None` nothing.
    #[cfg(test)]
    pub(crate) async fn holds(&self, scope: &LookupFor, digest: &KeyDigest) -> Option<bool> {
        let key = (scope.clone(), *digest.as_bytes());
        if self.last_known.get(&key).await.is_some() {
            return Some(true);
        }
        self.l1.get(&key).await.map(|entry| entry.record.is_some())
    }

    pub fn clear_l1(&self) {
        self.generations.evicted_all();
        self.l1.invalidate_all();
    }
}

/// An entry's place in [`TieredCache::refreshing`], released when its reload task ends.
struct Reloading {
    set: Arc<Mutex<HashSet<EntryKey>>>,
    key: EntryKey,
}

impl Drop for Reloading {
    fn drop(&mut self) {
        lock(&self.set).remove(&self.key);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicU32;

    use tokio::time::Instant;

    use super::*;

    #[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    struct Record(u32);

    impl Cached for Record {
        const NAMESPACE: &'static str = "test";
        const KIND: crate::metrics::CacheKind = crate::metrics::CacheKind::Key;
    }

    const DIGEST: [u8; 32] = [7; 32];

    /// A single-node cache (L1 always trusted) whose entries live 1 s and are reloaded after 0.2
    /// to 0.4 s ([`DIGEST`]: after 0.395 s).
    fn cache() -> TieredCache<Record> {
        let timing = L1Timing {
            ttl: Duration::from_millis(1000),
            refresh_after: Duration::from_millis(400),
            refresh_spread: Duration::from_millis(200),
            negative_ttl: Duration::from_millis(100),
        };
        TieredCache::with_timing(
            None,
            Arc::new(Metrics::new()),
            Duration::from_secs(60),
            timing,
        )
    }

    /// The store: counts its loads, answers the version current when a load starts, after `delay`.
    #[derive(Clone, Default)]
    struct Store {
        loads: Arc<AtomicU32>,
        version: Arc<AtomicU32>,
    }

    impl Store {
        async fn get(&self, cache: &TieredCache<Record>, delay: Duration) -> Record {
            let store = self.clone();
            let load = move || async move {
                store.loads.fetch_add(1, Ordering::SeqCst);
                let version = store.version.load(Ordering::SeqCst);
                tokio::time::sleep(delay).await;
                Ok(Some((
                    Record(version),
                    KeyDigest::from_slice(&DIGEST).unwrap(),
                )))
            };
            match cache
                .get(
                    LookupFor::Anyone,
                    KeyDigest::from_slice(&DIGEST).unwrap(),
                    load,
                )
                .await
            {
                Ok(Lookup::Found(record)) => (*record).clone(),
                other => panic!("expected a record, got {other:?}"),
            }
        }

        fn loads(&self) -> u32 {
            self.loads.load(Ordering::SeqCst)
        }
    }

    /// A cache that has read version 1 of the record, and when it did.
    async fn loaded_once() -> (TieredCache<Record>, Store, Instant) {
        let (cache, store, start) = (cache(), Store::default(), Instant::now());
        store.version.store(1, Ordering::SeqCst);
        assert_eq!(store.get(&cache, Duration::ZERO).await, Record(1));
        (cache, store, start)
    }

    /// Moves the paused clock to `at_ms` after `start`; a task whose timer comes due on the way
    /// runs at its time.
    async fn move_to(start: Instant, at_ms: u64) {
        tokio::time::sleep_until(start + Duration::from_millis(at_ms)).await;
    }

    #[tokio::test(start_paused = true)]
    async fn a_hot_entry_is_reloaded_in_the_background_without_a_request_waiting() {
        let (cache, store, start) = loaded_once().await;

        // Past the reload age: the hit answers from L1 at once and starts a slow reload.
        move_to(start, 450).await;
        store.version.store(2, Ordering::SeqCst);
        let hit = Instant::now();
        assert_eq!(
            store.get(&cache, Duration::from_millis(300)).await,
            Record(1)
        );
        // Paused time moves only while every task waits: a hit that waited for the 300 ms
        // reload would have moved it.
        assert_eq!(
            hit.elapsed(),
            Duration::ZERO,
            "the hit waited for the reload"
        );

        // After the reload: the reloaded entry answers, with no further load.
        move_to(start, 1100).await;
        assert_eq!(store.loads(), 2, "the hit started a reload");
        assert_eq!(store.get(&cache, Duration::ZERO).await, Record(2));
        assert_eq!(store.loads(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_reload_that_overlaps_an_eviction_is_dropped() {
        let (cache, store, start) = loaded_once().await;

        // The reload reads version 1; the key changes and is evicted before the reload ends.
        move_to(start, 450).await;
        assert_eq!(
            store.get(&cache, Duration::from_millis(300)).await,
            Record(1)
        );
        move_to(start, 500).await;
        store.version.store(2, Ordering::SeqCst);
        cache.evict_local(&[KeyDigest::from_slice(&DIGEST).unwrap()]);

        move_to(start, 900).await;
        assert_eq!(store.loads(), 2, "the reload ran");
        assert_eq!(store.get(&cache, Duration::ZERO).await, Record(2));
        assert_eq!(store.loads(), 3);
    }

    /// A first lookup that reads version 1 and takes 100 ms; 50 ms in, version 2 is stored and
    /// the digest evicted (a revocation committing while the read is in flight).
    async fn evicted_during_a_slow_first_lookup()
    -> (TieredCache<Record>, Store, tokio::task::JoinHandle<Record>) {
        let (cache, store) = (cache(), Store::default());
        store.version.store(1, Ordering::SeqCst);
        let first = {
            let (cache, store) = (cache.clone(), store.clone());
            tokio::spawn(async move { store.get(&cache, Duration::from_millis(100)).await })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        store.version.store(2, Ordering::SeqCst);
        cache.evict_local(&[KeyDigest::from_slice(&DIGEST).unwrap()]);
        (cache, store, first)
    }

    /// The race the fault tests found: a key's first lookup reads the store, the key is revoked
    /// and evicted while that read is in flight, and the read then filled L1 with the old state.
    #[tokio::test(start_paused = true)]
    async fn a_first_lookup_that_overlaps_an_eviction_is_not_kept() {
        let (cache, store, first) = evicted_during_a_slow_first_lookup().await;
        assert_eq!(first.await.unwrap(), Record(1), "it read before the change");

        assert_eq!(store.get(&cache, Duration::ZERO).await, Record(2));
        assert_eq!(store.loads(), 2, "the overlapping load was not kept");
    }

    /// The stale copy served while the store is down must not be one a load put there after the
    /// eviction of a change it read before (a revoked key would come back in the next outage).
    #[tokio::test(start_paused = true)]
    async fn a_read_overtaken_by_an_eviction_is_not_kept_as_the_stale_copy() {
        let (cache, _store, first) = evicted_during_a_slow_first_lookup().await;
        assert_eq!(first.await.unwrap(), Record(1));
        let down = || async { Err(StoreError::Unavailable("the store is down".into())) };
        let answer = cache
            .get(
                LookupFor::Anyone,
                KeyDigest::from_slice(&DIGEST).unwrap(),
                down,
            )
            .await;
        assert!(
            matches!(answer, Err(StoreError::Unavailable(_))),
            "served {answer:?} from before the eviction"
        );
    }

    /// A lookup made after the eviction must not join the read that began before it.
    #[tokio::test(start_paused = true)]
    async fn a_lookup_after_an_eviction_does_not_share_the_read_from_before_it() {
        let (cache, store, first) = evicted_during_a_slow_first_lookup().await;
        // The revocation has answered; this lookup comes after it, while the old read waits.
        assert_eq!(
            store.get(&cache, Duration::from_millis(10)).await,
            Record(2)
        );
        assert_eq!(first.await.unwrap(), Record(1));
    }

    /// An eviction of one digest does not stop another digest's load from being kept.
    #[tokio::test(start_paused = true)]
    async fn an_eviction_of_another_digest_does_not_stop_caching() {
        let (cache, store) = (cache(), Store::default());
        let first = {
            let (cache, store) = (cache.clone(), store.clone());
            tokio::spawn(async move { store.get(&cache, Duration::from_millis(100)).await })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        cache.evict_local(&[KeyDigest::from_slice(&[8; 32]).unwrap()]);
        first.await.unwrap();
        store.get(&cache, Duration::ZERO).await;
        assert_eq!(store.loads(), 1, "kept in L1");
    }

    #[tokio::test(start_paused = true)]
    async fn entries_read_together_are_reloaded_at_different_times() {
        let cache = cache();
        let start = Instant::now();
        // 64 digests whose first bytes spread evenly, all read at once.
        let digests: Vec<KeyDigest> = (0..64u8)
            .map(|i| KeyDigest::from_slice(&[i * 4; 32]).unwrap())
            .collect();
        // Each digest's first load after `start`, by digest.
        let reloads = Arc::new(Mutex::new(std::collections::HashMap::new()));
        let get = |digest: KeyDigest| {
            let reloads = reloads.clone();
            let cache = &cache;
            async move {
                let load = move || async move {
                    let at = start.elapsed();
                    lock(&reloads).entry(*digest.as_bytes()).or_insert(at);
                    Ok(Some((Record(0), digest)))
                };
                assert!(matches!(
                    cache.get(LookupFor::Anyone, digest, load).await,
                    Ok(Lookup::Found(_))
                ));
            }
        };
        for &digest in &digests {
            get(digest).await;
        }
        lock(&reloads).clear();

        // Every key is hit every 5 ms until well past the latest reload age (400 ms).
        let every = Duration::from_millis(5);
        while start.elapsed() < Duration::from_millis(600) {
            for &digest in &digests {
                get(digest).await;
            }
            tokio::time::sleep(every).await;
        }

        let reloads = lock(&reloads).clone();
        assert_eq!(reloads.len(), digests.len(), "every key was reloaded");
        for digest in &digests {
            let (age, at) = (
                cache.timing.refresh_after(digest),
                reloads[digest.as_bytes()],
            );
            assert!(
                age <= at && at < age + every,
                "reloaded on the first hit past its age {age:?}: {at:?}"
            );
        }
        let (first, last) = (
            reloads.values().min().unwrap(),
            reloads.values().max().unwrap(),
        );
        // Spread evenly they span about 200 ms; in one burst, a few.
        assert!(
            *last - *first >= Duration::from_millis(100),
            "reloads spread over the window, not in one burst: {first:?} .. {last:?}"
        );
    }
}
