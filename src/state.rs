//! What every request handler shares: the store, the key hasher and the settings they need.

use crate::auth::throttle::Throttle;
use crate::domain::key::KeyHasher;
use crate::store::Store;
use crate::verify::ratelimit::LocalRateLimiter;

pub struct AppState {
    pub store: Store,
    pub keys: KeyHasher,
    pub public_url: String,
    /// Per-root-key limit on management requests.
    pub management_throttle: Throttle,
    /// Per-key verification rate limits.
    pub ratelimiter: LocalRateLimiter,
}

impl AppState {
    /// Called after keys changed (revoked, rotated, updated) with their digests, once the change
    /// is committed. Verification reads the store directly, so nothing is cached that could go
    /// stale yet; the cache tiers evict here.
    pub async fn keys_changed(&self, digests: impl Iterator<Item = crate::domain::key::KeyDigest>) {
        let count = digests.count();
        if count > 0 {
            tracing::debug!(count, "keys changed");
        }
    }

    /// Called after a root key was revoked; root-key authentication reads the store directly
    /// for now, so there is nothing to evict yet.
    pub async fn root_keys_changed(&self) {}
}
