//! What every request handler shares: the store, the cache tiers, the key hasher, the
//! verification engine, the token service and metrics.

use std::sync::Arc;

use crate::auth::leak_signature::LeakReporters;
use crate::auth::root_key::{RootKeyAuthenticator, RootKeyRecord};
use crate::auth::throttle::Throttle;
use crate::cache::Caches;
use crate::domain::key::{KeyDigest, KeyHasher};
use crate::metrics::Metrics;
use crate::routes::client_addr::TrustedProxies;
use crate::store::Store;
use crate::tokens::TokenService;
use crate::verify::KeyRecord;
use crate::verify::Verifier;

pub struct AppState {
    pub store: Store,
    pub caches: Arc<Caches<KeyRecord, RootKeyRecord>>,
    pub keys: KeyHasher,
    pub public_url: String,
    /// Per-root-key limit on management requests.
    pub management_throttle: Throttle,
    /// Recognises the root keys that call the API.
    pub root_keys: RootKeyAuthenticator,
    /// The verification engine (keys and access tokens).
    pub verifier: Verifier,
    pub metrics: Arc<Metrics>,
    /// Access tokens: signing keys, minting, checking, the denylist.
    pub tokens: Arc<TokenService>,
    /// Public keys of the secret scanners allowed to report leaks.
    pub leak_reporters: LeakReporters,
    /// Load balancers whose `X-Forwarded-For` names the client.
    pub trusted_proxies: TrustedProxies,
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
