//! What every request handler shares: the store, the cache tiers, the key hasher, limiters,
//! usage counters and metrics.

use std::sync::Arc;

use crate::auth::extractor::RootKeyRecord;
use crate::auth::throttle::Throttle;
use crate::cache::Caches;
use crate::domain::key::{KeyDigest, KeyHasher};
use crate::metrics::Metrics;
use crate::store::Store;
use crate::verify::KeyRecord;
use crate::verify::ratelimit::RateLimiter;
use crate::verify::usage::UsageRecorder;

pub struct AppState {
    pub store: Store,
    pub caches: Arc<Caches<KeyRecord, RootKeyRecord>>,
    pub keys: KeyHasher,
    pub public_url: String,
    /// Per-root-key limit on management requests.
    pub management_throttle: Throttle,
    /// Per-key verification rate limits.
    pub ratelimiter: RateLimiter,
    pub usage: Arc<UsageRecorder>,
    pub metrics: Arc<Metrics>,
}

impl AppState {
    /// Called once a change to keys is committed (create, update, rotate, revoke): evicts them
    /// from every node's caches.
    pub async fn keys_changed(&self, digests: impl Iterator<Item = KeyDigest>) {
        let digests: Vec<KeyDigest> = digests.collect();
        self.caches.invalidate_keys(&digests).await;
    }

    /// Called once a root key's revocation is committed.
    pub async fn root_keys_changed(&self, digests: impl Iterator<Item = KeyDigest>) {
        let digests: Vec<KeyDigest> = digests.collect();
        self.caches.invalidate_root_keys(&digests).await;
    }
}
