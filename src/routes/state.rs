//! What every request handler shares: the store, the cache tiers, the key hasher, the
//! verification engine, the token service and metrics.

use std::sync::Arc;

use crate::auth::leak_signature::LeakReporters;
use crate::auth::root_key::{RootKeyAuthenticator, RootKeyRecord};
use crate::auth::throttle::Throttle;
use crate::cache::Caches;
use crate::domain::key::KeyHasher;
use crate::domain::time::Clock;
use crate::events::Dispatcher;
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
    /// Hands committed changes to what must follow them (cache eviction everywhere).
    pub events: Dispatcher,
    /// Recognises the root keys that call the API.
    pub root_keys: RootKeyAuthenticator,
    /// The verification engine (keys and access tokens).
    pub verifier: Verifier,
    /// What "now" is for expiry decisions and key views (the system's, outside tests).
    pub clock: Clock,
    pub metrics: Arc<Metrics>,
    /// Access tokens: signing keys, minting, checking, the denylist.
    pub tokens: Arc<TokenService>,
    /// Public keys of the secret scanners allowed to report leaks.
    pub leak_reporters: LeakReporters,
    /// Load balancers whose `X-Forwarded-For` names the client.
    pub trusted_proxies: TrustedProxies,
    /// The bearer token `/metrics` requires, if any.
    pub metrics_token: Option<secrecy::SecretString>,
    /// Seals webhook endpoint secrets at rest (as it seals signing keys).
    pub webhook_cipher: crate::tokens::signing::KeyCipher,
    /// Which endpoint URLs are acceptable.
    pub webhook_policy: crate::domain::webhook::OutboundPolicy,
}

impl AppState {
    /// What the management services need, borrowed from the state.
    pub fn manage(&self) -> crate::manage::Context<'_> {
        crate::manage::Context {
            store: &self.store,
            hasher: &self.keys,
            events: &self.events,
            clock: &self.clock,
        }
    }
}
