//! The verification engine: one place that decides whether a key is valid, in the order of
//! DESIGN §5. Callers (the REST verify route, OAuth, the dashboard) never re-implement a check.

pub mod ratelimit;
pub mod usage;

use std::net::IpAddr;
use std::sync::Arc;

use chrono::{DateTime, NaiveDateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::cache::{Lookup, LookupFor};
use crate::domain::ids::TenantId;
use crate::domain::inputs::{IpAllowlist, Meta, RateLimit, RefillInterval};
use crate::domain::key::KeyDigest;
use crate::domain::key_status::KeyStatus;
use crate::domain::legacy::{DigestKind, ForeignKey};
use crate::domain::scope::{Scope, Scopes};
use crate::domain::scope_query::{ScopeQuery, ScopeQueryError};
use crate::domain::time::Clock;
use crate::domain::token::{AccessTokenClaims, looks_like_jwt, token_scopes};
use crate::domain::verify_code::VerifyCode;

use crate::cache::TieredCache;
use crate::domain::key::KeyHasher;
use crate::metrics::Metrics;
use crate::store::api_keys;
use crate::store::models::{ApiKeyRow, KeyWithRoles};
use crate::store::{Store, StoreError, key_roles};
use crate::tokens::TokenService;
use ratelimit::RateLimiter;
use usage::UsageRecorder;

/// Largest cost one verification may charge.
pub const MAX_COST: i64 = 1_000_000;

/// What a verification asks, validated.
#[derive(Clone, Debug)]
pub struct VerifyInput {
    pub key: String,
    pub keyspace_id: Option<String>,
    /// Scopes the request needs, all of them.
    pub scopes: Vec<Scope>,
    /// A permission query the key's scopes must also satisfy.
    pub scope_query: Option<Arc<ScopeQuery>>,
    pub ip: Option<IpAddr>,
    pub cost: i64,
}

/// A key as verification needs it: everything the checks read, parsed once. This is what the
/// cache tiers hold.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct KeyRecord {
    pub id: String,
    pub tenant_id: String,
    pub keyspace_id: String,
    pub name: Option<String>,
    pub owner_id: Option<String>,
    /// Effective scopes: the key's own and its roles'.
    #[serde(deserialize_with = "Scopes::deserialize_unbounded")]
    pub scopes: Scopes,
    /// The names of the roles it holds.
    #[serde(default)]
    pub roles: Vec<String>,
    pub meta: Value,
    pub expires_at: Option<NaiveDateTime>,
    pub revoked: bool,
    pub enabled: bool,
    pub ip_allowlist: IpAllowlist,
    pub ratelimit: Option<RateLimit>,
    pub credits: Option<CreditPlan>,
    pub created_at: NaiveDateTime,
    /// An imported key still stored under its plain SHA-256 digest: its first successful
    /// verification stores the HMAC digest instead.
    #[serde(default)]
    pub awaits_upgrade: bool,
}

impl crate::cache::Cached for KeyRecord {
    const NAMESPACE: &'static str = "key";
    const KIND: crate::metrics::CacheKind = crate::metrics::CacheKind::Key;
}

#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub struct CreditPlan {
    pub refill: Option<(i64, RefillInterval)>,
}

impl From<KeyWithRoles> for KeyRecord {
    fn from(loaded: KeyWithRoles) -> Self {
        let KeyWithRoles { key, roles } = loaded;
        let own = Scopes::from_json(&key.scopes);
        let granted: Vec<Scopes> = roles.iter().map(|r| Scopes::from_json(&r.scopes)).collect();
        let mut record = KeyRecord::from(key);
        record.scopes = Scopes::union(std::iter::once(&own).chain(&granted));
        record.roles = roles.into_iter().map(|r| r.name).collect();
        record
    }
}

impl From<ApiKeyRow> for KeyRecord {
    fn from(row: ApiKeyRow) -> Self {
        Self {
            roles: Vec::new(),
            scopes: Scopes::from_json(&row.scopes),
            meta: Meta::from_stored(&row.meta).to_value(),
            ip_allowlist: IpAllowlist::from_stored(&row.ip_allowlist),
            ratelimit: RateLimit::from_stored(row.ratelimit_limit, row.ratelimit_window),
            credits: row.credits_remaining.map(|_| CreditPlan {
                refill: row.credits_refill_amount.zip(
                    row.credits_refill_interval
                        .as_deref()
                        .and_then(RefillInterval::from_stored),
                ),
            }),
            revoked: row.revoked_at.is_some(),
            awaits_upgrade: DigestKind::from_stored(&row.digest_kind) == DigestKind::LegacySha256,
            id: row.id,
            tenant_id: row.tenant_id,
            keyspace_id: row.keyspace_id,
            name: row.name,
            owner_id: row.owner_id,
            expires_at: row.expires_at,
            enabled: row.enabled,
            created_at: row.created_at,
        }
    }
}

/// The answer to a verification: `valid` with everything a service needs, or the reason not.
pub struct VerifyOutcome {
    pub valid: bool,
    pub code: VerifyCode,
    /// The key the answer is about, when it is the caller's. A refusal may show its ids and
    /// expiry; only a valid answer shows the rest ([`VerifyOutcome::valid_key`]).
    pub key: Option<Arc<KeyRecord>>,
    pub ratelimit: Option<RateLimitState>,
    pub credits_remaining: Option<i64>,
    /// With `INSUFFICIENT_SCOPE`: the required scopes the key lacks (for a `scope_query`, those
    /// of its first failing branch).
    pub missing_scopes: Vec<Scope>,
}

/// Shows what a refusal may show: the whole record (metadata, allowlist) stays out of logs.
impl std::fmt::Debug for VerifyOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifyOutcome")
            .field("valid", &self.valid)
            .field("code", &self.code)
            .field("key_id", &self.key_id())
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, Copy)]
pub struct RateLimitState {
    pub limit: i32,
    pub remaining: i64,
    pub reset_at: DateTime<Utc>,
}

impl VerifyOutcome {
    pub fn not_found() -> Self {
        Self::refused(VerifyCode::NotFound, None)
    }

    pub fn refused(code: VerifyCode, key: Option<&Arc<KeyRecord>>) -> Self {
        Self {
            valid: false,
            code,
            key: key.cloned(),
            ratelimit: None,
            credits_remaining: None,
            missing_scopes: Vec::new(),
        }
    }

    pub fn key_id(&self) -> Option<&str> {
        self.key.as_deref().map(|k| k.id.as_str())
    }

    /// The key's whole record (name, scopes, metadata), for a valid answer only.
    pub fn valid_key(&self) -> Option<&KeyRecord> {
        self.key.as_deref().filter(|_| self.valid)
    }
}

/// The checks on a key's own state, in order: revoked, disabled, expired. Shared by verification
/// and introspection.
pub fn status_check(key: &KeyRecord, at: NaiveDateTime) -> Option<VerifyCode> {
    KeyStatus::of(key.revoked, key.enabled, key.expires_at, at).refusal()
}

/// The checks that need no counters, in order: tenant, keyspace, revoked, disabled, expired,
/// IP, scopes. `None` means they all passed.
pub fn static_checks(
    key: &KeyRecord,
    tenant: &TenantId,
    input: &VerifyInput,
    at: NaiveDateTime,
) -> Option<VerifyCode> {
    if key.tenant_id != tenant.as_str() {
        return Some(VerifyCode::NotFound);
    }
    if input
        .keyspace_id
        .as_ref()
        .is_some_and(|ks| *ks != key.keyspace_id)
    {
        return Some(VerifyCode::NotFound);
    }
    if let Some(code) = status_check(key, at) {
        return Some(code);
    }
    if !key.ip_allowlist.is_empty() && !input.ip.is_some_and(|ip| key.ip_allowlist.allows(ip)) {
        return Some(VerifyCode::IpNotAllowed);
    }
    if !key.scopes.grants_all(&input.scopes)
        || input
            .scope_query
            .as_ref()
            .is_some_and(|query| !query.is_granted_by(&key.scopes))
    {
        return Some(VerifyCode::InsufficientScope);
    }
    None
}

/// The required scopes `key` lacks: of `scopes`, and of the first failing branch of the query.
pub fn missing_scopes(key: &KeyRecord, input: &VerifyInput) -> Vec<Scope> {
    let mut missing: Vec<Scope> = input
        .scopes
        .iter()
        .filter(|s| !key.scopes.grants(s))
        .cloned()
        .collect();
    if let Some(query) = &input.scope_query {
        missing.extend(query.missing(&key.scopes).unwrap_or_default());
    }
    missing.sort_unstable();
    missing.dedup();
    missing
}

/// What a presented credential stands for: the key, as the checks must see it.
#[derive(Clone, Debug)]
pub struct Resolved {
    /// For an access token: its key, narrowed to the token's scopes and lifetime, and revoked if
    /// the token was.
    pub key: Arc<KeyRecord>,
    /// The claims, when the credential is an access token minted here.
    pub token: Option<AccessTokenClaims>,
}

/// Where a key lives: its tenant and the digest it is stored under. Neither ever changes.
#[derive(Clone)]
struct KeyHome {
    tenant: TenantId,
    digest: KeyDigest,
}

/// Why a key id has no home to offer.
enum NoDigest {
    Unknown,
    Store(crate::store::StoreError),
}

/// Most key ids whose home a node remembers for access tokens and OAuth clients (about 150
/// bytes each).
const KEY_DIGESTS_CAPACITY: u64 = 200_000;
/// Most distinct scope queries a node keeps parsed (each at most 1,000 characters and its tree:
/// a few MiB at worst). Services send the same few queries on every request.
const SCOPE_QUERIES_CAPACITY: u64 = 1_000;

/// The verification engine: everything a verification reads, and nothing else. Its only error
/// is the store's (unavailable, or failed): every answer about a key is a [`VerifyOutcome`].
pub struct Verifier {
    store: Store,
    hasher: KeyHasher,
    keys: Arc<TieredCache<KeyRecord>>,
    tokens: Arc<TokenService>,
    ratelimiter: RateLimiter,
    usage: Arc<UsageRecorder>,
    metrics: Arc<Metrics>,
    /// Each key's tenant and stored digest by key id, for access tokens and OAuth clients
    /// (which name their key by id).
    key_homes: moka::future::Cache<String, KeyHome>,
    /// Parsed scope queries by their text, so a repeated query is not parsed again.
    scope_queries: moka::future::Cache<String, Arc<ScopeQuery>>,
    /// Whether each tenant holds imported keys in another system's format, remembered briefly:
    /// a tenant without any pays no lookup for values that are not in latchkey's format.
    foreign_holders: moka::future::Cache<TenantId, bool>,
    clock: Clock,
}

/// What a [`Verifier`] is built from.
pub struct Collaborators {
    pub store: Store,
    pub hasher: KeyHasher,
    pub keys: Arc<TieredCache<KeyRecord>>,
    pub tokens: Arc<TokenService>,
    pub ratelimiter: RateLimiter,
    pub usage: Arc<UsageRecorder>,
    pub metrics: Arc<Metrics>,
    pub clock: Clock,
}

impl Verifier {
    pub fn new(with: Collaborators) -> Self {
        Self {
            store: with.store,
            hasher: with.hasher,
            keys: with.keys,
            tokens: with.tokens,
            ratelimiter: with.ratelimiter,
            usage: with.usage,
            metrics: with.metrics,
            clock: with.clock,
            key_homes: moka::future::Cache::builder()
                .max_capacity(KEY_DIGESTS_CAPACITY)
                .time_to_idle(std::time::Duration::from_secs(3600))
                .build(),
            scope_queries: moka::future::Cache::builder()
                .max_capacity(SCOPE_QUERIES_CAPACITY)
                .build(),
            foreign_holders: moka::future::Cache::builder()
                .max_capacity(KEY_DIGESTS_CAPACITY)
                .time_to_live(crate::cache::NEGATIVE_TTL)
                .build(),
        }
    }

    /// Parses a `scope_query`, or finds it parsed by an earlier request (the parse is the
    /// costly part: about 8,000 instructions for 10 terms, against 2,000 to evaluate it).
    pub async fn scope_query(&self, text: &str) -> Result<Arc<ScopeQuery>, ScopeQueryError> {
        if let Some(query) = self.scope_queries.get(text).await {
            return Ok(query);
        }
        let query = Arc::new(ScopeQuery::parse(text)?);
        self.scope_queries
            .insert(text.to_owned(), query.clone())
            .await;
        Ok(query)
    }

    /// Finds what an API key or an access token of `tenant` stands for; `None` if it is nothing
    /// of theirs. Both are looked for among `tenant`'s only (an access token: its issuer and
    /// signing keys; an API key: the tenant's keys), so another tenant's is nothing at all.
    pub async fn resolve(
        &self,
        tenant: &TenantId,
        raw: &str,
    ) -> Result<Option<Resolved>, StoreError> {
        if looks_like_jwt(raw) {
            // Boxed: an API key's lookup, the common case, need not carry this path's future.
            return Box::pin(self.resolve_token(tenant, raw)).await;
        }
        Ok(self
            .resolve_key(tenant, raw)
            .await?
            .map(|key| Resolved { key, token: None }))
    }

    /// Finds `tenant`'s API key by its value. Shape and check tag first: a forged or mistyped
    /// key costs no I/O. Another tenant's key costs what a key that exists nowhere does.
    pub async fn resolve_key(
        &self,
        tenant: &TenantId,
        raw: &str,
    ) -> Result<Option<Arc<KeyRecord>>, StoreError> {
        let digests = self.hasher.digests_of(raw);
        if digests.is_empty() {
            return match ForeignKey::parse(&self.hasher, raw) {
                Some(foreign) => self.lookup_foreign(tenant, foreign).await,
                None => Ok(None),
            };
        }
        self.lookup(tenant, digests).await
    }

    /// Finds `tenant`'s imported key by a value in another system's format: by its HMAC digest
    /// or, before its first verification, by its plain SHA-256. Only tenants that hold such keys
    /// pay for the lookup, and an unknown value is remembered as such like any other.
    async fn lookup_foreign(
        &self,
        tenant: &TenantId,
        foreign: ForeignKey<'_>,
    ) -> Result<Option<Arc<KeyRecord>>, StoreError> {
        if !self.holds_foreign_keys(tenant).await? {
            return Ok(None);
        }
        let sha256 = foreign.sha256();
        let owner = tenant.clone();
        let find = move |conn: &mut _, peppered: &[KeyDigest]| {
            let Some(key) = api_keys::find_foreign_in(conn, &owner, peppered, &sha256)? else {
                return Ok(None);
            };
            let roles = key_roles::of_key(conn, &owner, &key.id)?;
            Ok(Some(KeyWithRoles { key, roles }))
        };
        self.lookup_with(tenant, self.hasher.foreign_digests(&foreign), find)
            .await
    }

    async fn holds_foreign_keys(&self, tenant: &TenantId) -> Result<bool, StoreError> {
        let (store, metrics, owner) = (self.store.clone(), self.metrics.clone(), tenant.clone());
        self.foreign_holders
            .try_get_with(tenant.clone(), async move {
                metrics.store_lookups.inc();
                store
                    .run(move |conn| api_keys::has_foreign_keys(conn, &owner))
                    .await
            })
            .await
            .map_err(|err| err.shared())
    }

    /// After an imported key's first successful verification: stores its HMAC digest in place
    /// of the plain SHA-256 (which stops being stored), audited, in one transaction. A node
    /// that finds it already done does nothing. A failure is logged and tried again next time:
    /// the verification's answer stands.
    async fn upgrade_digest(&self, tenant: &TenantId, key: &KeyRecord, raw: &str) {
        let Some(foreign) = ForeignKey::parse(&self.hasher, raw) else {
            return;
        };
        let (sha256, peppered) = (foreign.sha256(), self.hasher.foreign_digest(&foreign));
        let (tenant, id) = (tenant.clone(), key.id.clone());
        let audit = crate::audit::AuditContext {
            actor: crate::audit::Actor::System,
            clock: self.clock.clone(),
            ip: None,
            user_agent: None,
            request_id: None,
        };
        let at = self.clock.now();
        let upgraded = self
            .store
            .transaction(move |conn| -> Result<(), StoreError> {
                if api_keys::upgrade_digest(conn, &tenant, &id, &sha256, &peppered, at)? {
                    let changes = serde_json::json!({"digest": "upgraded to HMAC-SHA256"});
                    audit.record(conn, &tenant, "key.digest_upgrade", ("key", &id), changes)?;
                }
                Ok(())
            })
            .await;
        if let Err(err) = upgraded {
            tracing::warn!(key_id = %key.id, error = %err, "an imported key's digest was not upgraded");
        }
    }

    /// Finds the API key an OAuth client presents as its secret, with the key id it names as
    /// `client_id`: in the issuer's tenant, or (at a deployment-wide endpoint, which names no
    /// issuer) in the tenant of the key with that id. The caller still compares the key's id.
    pub async fn resolve_client(
        &self,
        issuer: Option<&TenantId>,
        client_id: &str,
        raw: &str,
    ) -> Result<Option<Arc<KeyRecord>>, StoreError> {
        if self.hasher.digests_of(raw).is_empty() {
            return Ok(None);
        }
        let tenant = match issuer {
            Some(tenant) => tenant.clone(),
            None => {
                let Some(key_id) = crate::domain::ids::parse_id(client_id) else {
                    return Ok(None);
                };
                match self.key_home(key_id).await? {
                    Some(home) => home.tenant,
                    None => return Ok(None),
                }
            }
        };
        self.resolve_key(&tenant, raw).await
    }

    /// An access token stands for the key it was minted from, whose current state decides:
    /// revoking or disabling the key ends its tokens too. That state is read through the cache
    /// tiers, as for the key itself, so every node refuses the token as soon as it refuses the key.
    async fn resolve_token(
        &self,
        tenant: &TenantId,
        raw: &str,
    ) -> Result<Option<Resolved>, StoreError> {
        let Some(claims) = self.tokens.check(tenant, raw).await? else {
            return Ok(None);
        };
        let Some(key_id) = crate::domain::ids::parse_id(&claims.client_id) else {
            return Ok(None);
        };
        let Some(home) = self.key_home(key_id).await? else {
            return Ok(None);
        };
        if home.tenant != *tenant {
            return Ok(None);
        }
        let Some(record) = self.lookup(tenant, vec![home.digest]).await? else {
            return Ok(None);
        };
        // The token names the tenant and keyspace its key had: they never change.
        if record.tenant_id != claims.tenant_id || record.keyspace_id != claims.keyspace_id {
            return Ok(None);
        }
        let mut key = KeyRecord::clone(&record);
        // A token grants its own scopes, and only those its key still holds.
        let granted = token_scopes(&claims.scope)
            .into_iter()
            .filter(|scope| key.scopes.grants(scope));
        key.scopes = Scopes::from_scopes(granted).unwrap_or_default();
        key.revoked |= self.tokens.is_revoked(tenant, &claims.jti).await?;
        let token_end = crate::tokens::expiry(&claims);
        key.expires_at = Some(key.expires_at.map_or(token_end, |end| end.min(token_end)));
        Ok(Some(Resolved {
            key: Arc::new(key),
            token: Some(claims),
        }))
    }

    /// The tenant and digest of a key, by its id. They never change (rotating makes a new key),
    /// so each node remembers them and reads the store for them once; concurrent first lookups
    /// of one id share that read.
    async fn key_home(&self, key_id: String) -> Result<Option<KeyHome>, StoreError> {
        let (store, metrics, id) = (self.store.clone(), self.metrics.clone(), key_id.clone());
        let found = self
            .key_homes
            .try_get_with(key_id, async move {
                metrics.store_lookups.inc();
                let stored = store
                    .run(move |conn| api_keys::home_of(conn, &id))
                    .await
                    .map_err(NoDigest::Store)?;
                let (tenant, digest) = stored.ok_or(NoDigest::Unknown)?;
                Ok(KeyHome {
                    tenant: TenantId::from_trusted(tenant),
                    digest: KeyDigest::from_slice(&digest).ok_or(NoDigest::Unknown)?,
                })
            })
            .await;
        match found {
            Ok(home) => Ok(Some(home)),
            Err(missing) => match &*missing {
                NoDigest::Unknown => Ok(None),
                // Shared with every request that waited on the same read: answered by its message.
                NoDigest::Store(err) => Err(err.shared()),
            },
        }
    }

    /// Verifies a key or an access token for the calling tenant, and counts the outcome (metrics
    /// and usage).
    pub async fn verify(
        &self,
        tenant: &TenantId,
        input: VerifyInput,
    ) -> Result<VerifyOutcome, StoreError> {
        let started = std::time::Instant::now();
        let resolved = self.resolve(tenant, &input.key).await?;
        // After the lookup, which may have waited for the store: expiry is judged as of now.
        let at = self.clock.now();
        let outcome = match resolved {
            Some(resolved) => self.decide(tenant, &resolved.key, &input, at).await?,
            None => VerifyOutcome::not_found(),
        };
        if let Some(key) = outcome.valid_key().filter(|key| key.awaits_upgrade) {
            self.upgrade_digest(tenant, key, &input.key).await;
        }
        self.metrics.verification(outcome.code, started.elapsed());
        if let Some(key_id) = outcome.key_id() {
            self.usage.record(tenant, key_id, outcome.code, at);
        }
        Ok(outcome)
    }

    /// Every check after the lookup, counters included: the one place that says whether a key
    /// (or what a token makes of it) may be used now.
    pub async fn decide(
        &self,
        tenant: &TenantId,
        key: &Arc<KeyRecord>,
        input: &VerifyInput,
        at: NaiveDateTime,
    ) -> Result<VerifyOutcome, StoreError> {
        if let Some(code) = static_checks(key, tenant, input, at) {
            return Ok(match code {
                VerifyCode::NotFound => VerifyOutcome::not_found(),
                VerifyCode::InsufficientScope => {
                    let mut outcome = VerifyOutcome::refused(code, Some(key));
                    outcome.missing_scopes = missing_scopes(key, input);
                    outcome
                }
                _ => VerifyOutcome::refused(code, Some(key)),
            });
        }

        let ratelimit = match key.ratelimit {
            Some(limit) => {
                let decision = self.ratelimiter.check(&key.id, limit, at.and_utc()).await;
                if !decision.allowed {
                    let mut outcome = VerifyOutcome::refused(VerifyCode::RateLimited, Some(key));
                    outcome.ratelimit = Some(decision.state);
                    return Ok(outcome);
                }
                Some(decision.state)
            }
            None => None,
        };

        let credits_remaining = match key.credits {
            Some(plan) => match self.charge_credits(&key.id, plan, input.cost, at).await? {
                Ok(remaining) => Some(remaining),
                Err(balance) => {
                    let mut outcome = VerifyOutcome::refused(VerifyCode::UsageExceeded, Some(key));
                    outcome.ratelimit = ratelimit;
                    outcome.credits_remaining = Some(balance);
                    return Ok(outcome);
                }
            },
            None => None,
        };

        Ok(VerifyOutcome {
            valid: true,
            code: VerifyCode::Valid,
            key: Some(key.clone()),
            ratelimit,
            credits_remaining,
            missing_scopes: Vec::new(),
        })
    }

    /// Finds `tenant`'s key through the cache tiers, which keep it for `tenant`'s lookups only.
    /// While the store is down, a record it returned within the stale bound is still served;
    /// with none, verification fails closed (503).
    async fn lookup(
        &self,
        tenant: &TenantId,
        digests: Vec<KeyDigest>,
    ) -> Result<Option<Arc<KeyRecord>>, StoreError> {
        let owner = tenant.clone();
        // The key's roles come with it: a verification never reads roles on its own.
        let find = move |conn: &mut _, digests: &[KeyDigest]| {
            key_roles::find_key_with_roles(conn, &owner, digests)
        };
        self.lookup_with(tenant, digests, find).await
    }

    /// [`Verifier::lookup`] with the store query `find`, which must look in `tenant` only.
    async fn lookup_with<F>(
        &self,
        tenant: &TenantId,
        digests: Vec<KeyDigest>,
        find: F,
    ) -> Result<Option<Arc<KeyRecord>>, StoreError>
    where
        F: FnOnce(
                &mut crate::store::DbConnection,
                &[KeyDigest],
            ) -> Result<Option<KeyWithRoles>, StoreError>
            + Clone
            + Send
            + 'static,
    {
        let scope = LookupFor::Tenant(tenant.clone());
        let found = self
            .keys
            .get_stored(&self.store, scope, digests, find)
            .await;
        match found {
            Ok(Lookup::Found(record)) => Ok(Some(record)),
            Ok(Lookup::NotFound) => Ok(None),
            // Not logged per request: the store's breaker logs the outage once.
            Ok(Lookup::Stale(record)) => Ok(Some(record)),
            Err(err) => Err(err.shared()),
        }
    }

    /// Refills the balance if a new period began, then takes `cost` atomically: the balance left,
    /// or `Err` with the balance there is when it is less than `cost`.
    async fn charge_credits(
        &self,
        key_id: &str,
        plan: CreditPlan,
        cost: i64,
        at: NaiveDateTime,
    ) -> Result<Result<i64, i64>, StoreError> {
        let key_id = key_id.to_owned();
        self.store
            .run(move |conn| {
                let refill = plan
                    .refill
                    .map(|(amount, interval)| (amount, interval.period_start(at)));
                match api_keys::charge_credits(conn, &key_id, cost, refill)? {
                    Some(left) => Ok(Ok(left)),
                    None => Ok(Err(api_keys::credit_balance(conn, &key_id)?)),
                }
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    //! The engine on its own: a real SQLite store in a temporary folder, no Redis, no server.

    use chrono::TimeDelta;
    use serde_json::json;

    use super::*;
    use crate::domain::ids::new_id;
    use crate::domain::key::KeyPrefix;
    use crate::domain::secrets::MasterKey;
    use crate::store::models::{KeyspaceRow, Tenant};
    use crate::store::url::DatabaseUrl;
    use crate::store::{keyspaces, now, tenants};
    use crate::tokens::denylist::Denylist;
    use crate::tokens::signing::{KeyCipher, Keyring};

    struct World {
        verifier: Verifier,
        clock: Clock,
        store: Store,
        hasher: KeyHasher,
        metrics: Arc<Metrics>,
        tenant: TenantId,
        keyspace_id: String,
        _dir: tempfile::TempDir,
    }

    async fn world() -> World {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::connect(&DatabaseUrl::Sqlite(dir.path().join("v.db")), 2).unwrap();
        store.migrate().unwrap();
        let secrets = MasterKey::from_bytes(vec![9; 32]).unwrap().derive();
        let hasher = KeyHasher::new(&secrets, &[]);
        let metrics = Arc::new(Metrics::new());
        let clock = Clock::system();
        let keyring = Keyring::new(
            store.clone(),
            KeyCipher::new(&secrets, &[]),
            crate::domain::token::SigningAlgorithm::EdDSA,
            600,
            clock.clone(),
        );
        let tokens = TokenService::new(
            store.clone(),
            "http://issuer.test".into(),
            600,
            keyring,
            Arc::new(Denylist::new(store.clone(), None, clock.clone())),
            clock.clone(),
        );
        let keys = TieredCache::new(None, metrics.clone(), std::time::Duration::from_secs(60));
        let verifier = Verifier::new(Collaborators {
            store: store.clone(),
            hasher: hasher.clone(),
            keys: Arc::new(keys),
            tokens: Arc::new(tokens),
            ratelimiter: RateLimiter::new(None),
            usage: Arc::new(UsageRecorder::default()),
            metrics: metrics.clone(),
            clock: clock.clone(),
        });
        let (tenant, keyspace_id) = (new_id(), new_id());
        let mut conn = store.conn().unwrap();
        let at = now();
        tenants::insert(
            &mut conn,
            &Tenant {
                id: tenant.clone(),
                name: "acme".into(),
                created_at: at,
            },
        )
        .unwrap();
        keyspaces::insert(
            &mut conn,
            &KeyspaceRow {
                id: keyspace_id.clone(),
                tenant_id: tenant.clone(),
                name: "live".into(),
                prefix: "acme_live".into(),
                environment: "live".into(),
                default_ttl_seconds: None,
                default_scopes: "[]".into(),
                default_ratelimit_limit: None,
                default_ratelimit_window: None,
                token_exchange_enabled: true,
                created_at: at,
                updated_at: at,
                token_audience: None,
            },
        )
        .unwrap();
        drop(conn);
        World {
            verifier,
            clock,
            store,
            hasher,
            metrics,
            tenant: TenantId::from_trusted(tenant),
            keyspace_id,
            _dir: dir,
        }
    }

    impl World {
        /// Stores a key (adjusted by `edit`) and answers its plaintext.
        fn key(&self, edit: impl FnOnce(&mut ApiKeyRow)) -> String {
            let generated = self
                .hasher
                .generate(&KeyPrefix::parse("acme_live").unwrap());
            let at = now();
            let id = new_id();
            let mut row = ApiKeyRow {
                id: id.clone(),
                tenant_id: self.tenant.as_str().to_owned(),
                keyspace_id: self.keyspace_id.clone(),
                name: Some("svc".into()),
                owner_id: Some("user_1".into()),
                scopes: r#"["docs:read"]"#.into(),
                meta: r#"{"plan":"pro"}"#.into(),
                digest: generated.digest.as_bytes().to_vec(),
                start: generated.start.clone(),
                created_at: at,
                updated_at: at,
                last_used_at: None,
                expires_at: None,
                revoked_at: None,
                revoked_reason: None,
                enabled: true,
                ip_allowlist: "[]".into(),
                ratelimit_limit: None,
                ratelimit_window: None,
                credits_remaining: None,
                credits_refill_amount: None,
                credits_refill_interval: None,
                credits_refilled_at: None,
                rotated_from: None,
                family_id: id,
                idempotency_key: None,
                created_by: "test".into(),
                idempotency_fingerprint: None,
                digest_kind: "hmac".into(),
                external_ref: None,
            };
            edit(&mut row);
            api_keys::insert(&mut self.store.conn().unwrap(), &row).unwrap();
            generated.key.expose_secret().to_owned()
        }

        async fn verify(&self, key: &str, edit: impl FnOnce(&mut VerifyInput)) -> VerifyOutcome {
            self.verify_as(&self.tenant, key, edit).await
        }

        async fn verify_as(
            &self,
            tenant: &TenantId,
            key: &str,
            edit: impl FnOnce(&mut VerifyInput),
        ) -> VerifyOutcome {
            let mut input = VerifyInput {
                key: key.to_owned(),
                keyspace_id: None,
                scopes: Vec::new(),
                scope_query: None,
                ip: None,
                cost: 1,
            };
            edit(&mut input);
            self.verifier.verify(tenant, input).await.unwrap()
        }
    }

    fn scope(s: &str) -> Scope {
        Scope::parse(s).unwrap()
    }

    #[tokio::test]
    async fn a_valid_key_answers_everything_a_service_needs() {
        let w = world().await;
        let key = w.key(|_| {});
        let outcome = w
            .verify(&key, |i| i.scopes = vec![scope("docs:read")])
            .await;
        assert_eq!((outcome.valid, outcome.code), (true, VerifyCode::Valid));
        let key = outcome.valid_key().expect("a valid answer shows its key");
        assert_eq!(key.owner_id.as_deref(), Some("user_1"));
        assert_eq!(key.name.as_deref(), Some("svc"));
        assert_eq!(key.scopes.to_strings(), ["docs:read"]);
        assert_eq!(key.meta, json!({"plan": "pro"}));
        assert_eq!(key.keyspace_id, w.keyspace_id.as_str());
    }

    #[tokio::test]
    async fn another_tenants_key_and_a_forged_one_are_not_found_and_show_nothing() {
        let w = world().await;
        let key = w.key(|_| {});
        let stranger = TenantId::from_trusted(new_id());
        let outcome = w.verify_as(&stranger, &key, |_| {}).await;
        assert_eq!((outcome.valid, outcome.code), (false, VerifyCode::NotFound));
        assert!(outcome.key.is_none(), "nothing of the key is shown");
        let elsewhere = w.verify(&key, |i| i.keyspace_id = Some(new_id())).await;
        assert_eq!(elsewhere.code, VerifyCode::NotFound);

        // A forged key of the right shape is refused on its check tag, without any lookup.
        let lookups = w.metrics.store_lookups.get();
        let mut forged = key.clone();
        let last = forged.pop().unwrap();
        forged.push(if last == 'A' { 'B' } else { 'A' });
        assert_eq!(w.verify(&forged, |_| {}).await.code, VerifyCode::NotFound);
        assert_eq!(w.metrics.store_lookups.get(), lookups);
    }

    /// Values not in latchkey's format cost a tenant without imported keys one remembered
    /// question, not a lookup each; a tenant with some pays a lookup, and an unknown value is
    /// then remembered like an unknown key. Forgeries of latchkey's format never cost I/O.
    #[tokio::test]
    async fn values_in_other_formats_cost_lookups_only_where_keys_were_imported() {
        let w = world().await;
        let key = w.key(|_| {});
        let lookups = || w.metrics.store_lookups.get();
        let before = lookups();
        for value in ["glpat-aaaaaaaaaaaaaaaaaaaa", "glpat-bbbbbbbbbbbbbbbbbbbb"] {
            assert_eq!(w.verify(value, |_| {}).await.code, VerifyCode::NotFound);
        }
        assert_eq!(
            lookups(),
            before + 1,
            "one question for the tenant, remembered"
        );

        let imported = "uk_3ZkPsQkTvTcUQr4hdR1n8B";
        let sha256 = ForeignKey::parse(&w.hasher, imported).unwrap().sha256();
        w.key(|row| {
            row.digest = sha256.as_bytes().to_vec();
            row.digest_kind = DigestKind::LegacySha256.as_str().into();
        });
        w.verifier.foreign_holders.invalidate_all();
        assert_eq!(w.verify(imported, |_| {}).await.code, VerifyCode::Valid);
        assert_eq!(w.verify(imported, |_| {}).await.code, VerifyCode::Valid);
        let before = lookups();
        assert_eq!(w.verify(imported, |_| {}).await.code, VerifyCode::Valid);
        assert_eq!(lookups(), before, "upgraded, then served from L1");

        let before = lookups();
        for _ in 0..3 {
            let unknown = w.verify("glpat-cccccccccccccccccccc", |_| {}).await;
            assert_eq!(unknown.code, VerifyCode::NotFound);
        }
        assert_eq!(lookups(), before + 1, "an unknown value is remembered");

        let mut forged = key.clone();
        let last = forged.pop().unwrap();
        forged.push(if last == 'A' { 'B' } else { 'A' });
        let before = lookups();
        assert_eq!(w.verify(&forged, |_| {}).await.code, VerifyCode::NotFound);
        assert_eq!(
            lookups(),
            before,
            "a forgery of latchkey's format costs no I/O"
        );
    }

    /// Another tenant's key is looked for in the caller's tenant only: found nowhere, it leaves
    /// what a key that exists nowhere leaves (a "not found" in the caller's scope), and neither
    /// tenant's cache holds its record for the caller. The owner's own lookups still find it.
    #[tokio::test]
    async fn another_tenants_key_is_not_found_in_the_callers_tenant_and_not_cached() {
        let w = world().await;
        let key = w.key(|_| {});
        let digest = w.hasher.digests_of(&key)[0];
        let stranger = TenantId::from_trusted(new_id());
        let (theirs, owners) = (
            LookupFor::Tenant(stranger.clone()),
            LookupFor::Tenant(w.tenant.clone()),
        );
        let lookups = w.metrics.store_lookups.get();
        let outcome = w.verify_as(&stranger, &key, |_| {}).await;
        assert_eq!(
            (outcome.code, outcome.key_id()),
            (VerifyCode::NotFound, None)
        );
        assert_eq!(
            w.metrics.store_lookups.get(),
            lookups + 1,
            "the store was asked"
        );
        assert_eq!(w.verifier.keys.holds(&theirs, &digest).await, Some(false));
        assert_eq!(w.verifier.keys.holds(&owners, &digest).await, None);
        assert_eq!(
            w.verifier.keys.holds(&LookupFor::Anyone, &digest).await,
            None
        );

        assert_eq!(w.verify(&key, |_| {}).await.code, VerifyCode::Valid);
        assert_eq!(w.verifier.keys.holds(&owners, &digest).await, Some(true));
        // The owner's record in memory changes nothing for the stranger.
        let outcome = w.verify_as(&stranger, &key, |_| {}).await;
        assert_eq!(
            (outcome.code, outcome.key_id()),
            (VerifyCode::NotFound, None)
        );
        assert_eq!(w.verifier.keys.holds(&theirs, &digest).await, Some(false));

        // A revocation's eviction names the digest only, and retires every scope's entry.
        w.verifier.keys.evict_local(&[digest]);
        let lookups = w.metrics.store_lookups.get();
        assert_eq!(w.verify(&key, |_| {}).await.code, VerifyCode::Valid);
        assert_eq!(
            w.metrics.store_lookups.get(),
            lookups + 1,
            "read again, not from L1"
        );
    }

    /// A scope query is parsed once per node: a repeat is the same tree; a bad one is refused
    /// each time and kept nowhere.
    #[tokio::test]
    async fn a_repeated_scope_query_is_parsed_once_and_decides_with_the_key() {
        let w = world().await;
        let key = w.key(|_| {});
        let text = "docs:read AND (billing:read OR docs:*)";
        let first = w.verifier.scope_query(text).await.unwrap();
        let again = w.verifier.scope_query(text).await.unwrap();
        assert!(Arc::ptr_eq(&first, &again));
        assert!(w.verifier.scope_query("docs:read AND").await.is_err());
        let outcome = w.verify(&key, |i| i.scope_query = Some(first)).await;
        assert_eq!(outcome.code, VerifyCode::InsufficientScope);
        assert_eq!(
            outcome.missing_scopes,
            [scope("billing:read")],
            "the first branch of the failing OR"
        );
        let either = w.verifier.scope_query("x:y OR docs:read").await.unwrap();
        let outcome = w.verify(&key, |i| i.scope_query = Some(either)).await;
        assert_eq!(outcome.code, VerifyCode::Valid);
    }

    /// DESIGN §5's order: the first check that fails names the answer.
    #[tokio::test]
    async fn the_first_failing_check_wins() {
        let w = world().await;
        type Edit = fn(&mut ApiKeyRow);
        let cases: [(VerifyCode, Edit); 5] = [
            (VerifyCode::Revoked, |k| {
                k.revoked_at = Some(now());
                k.enabled = false;
                k.expires_at = Some(now() - TimeDelta::minutes(1));
            }),
            (VerifyCode::Disabled, |k| {
                k.enabled = false;
                k.expires_at = Some(now() - TimeDelta::minutes(1));
            }),
            (VerifyCode::Expired, |k| {
                k.expires_at = Some(now() - TimeDelta::minutes(1));
                k.ip_allowlist = r#"["10.0.0.0/8"]"#.into();
            }),
            (VerifyCode::IpNotAllowed, |k| {
                k.ip_allowlist = r#"["10.0.0.0/8"]"#.into();
                k.scopes = "[]".into();
            }),
            (VerifyCode::InsufficientScope, |k| k.scopes = "[]".into()),
        ];
        for (expected, edit) in cases {
            let key = w.key(edit);
            let outcome = w
                .verify(&key, |i| {
                    i.ip = Some("192.0.2.1".parse().unwrap());
                    i.scopes = vec![scope("docs:read")];
                })
                .await;
            assert_eq!((outcome.valid, outcome.code), (false, expected));
            assert!(outcome.key_id().is_some(), "a refusal names the key");
            assert!(
                outcome.valid_key().is_none(),
                "a refusal shows no metadata: {outcome:?}"
            );
        }
    }

    /// Expiry is judged by the engine's clock, also for a record the cache holds: moving the
    /// clock past the end is enough, with no store change and no wait.
    #[tokio::test]
    async fn a_key_expires_when_its_clock_passes_the_end() {
        let w = world().await;
        let key = w.key(|k| k.expires_at = Some(now() + TimeDelta::seconds(60)));
        assert_eq!(w.verify(&key, |_| {}).await.code, VerifyCode::Valid);
        w.clock.advance(std::time::Duration::from_secs(61));
        let outcome = w.verify(&key, |_| {}).await;
        assert_eq!((outcome.valid, outcome.code), (false, VerifyCode::Expired));
    }

    #[tokio::test]
    async fn credits_are_taken_exactly_and_a_cost_too_high_takes_nothing() {
        let w = world().await;
        let key = w.key(|k| k.credits_remaining = Some(3));
        let outcome = w.verify(&key, |i| i.cost = 2).await;
        assert_eq!(
            (outcome.code, outcome.credits_remaining),
            (VerifyCode::Valid, Some(1))
        );
        let outcome = w.verify(&key, |i| i.cost = 2).await;
        assert_eq!(
            (outcome.code, outcome.credits_remaining),
            (VerifyCode::UsageExceeded, Some(1)),
            "the balance that was too small, untouched"
        );
        let outcome = w.verify(&key, |_| {}).await;
        assert_eq!(
            (outcome.code, outcome.credits_remaining),
            (VerifyCode::Valid, Some(0))
        );
    }

    /// Rate-limit windows slide with the engine's clock: a verification is counted for one
    /// window (and at most one bucket, 1 % of it, more), whatever the wall clock says.
    #[tokio::test]
    async fn a_rate_limit_window_slides_with_its_clock() {
        let w = world().await;
        let key = w.key(|k| {
            k.ratelimit_limit = Some(1);
            k.ratelimit_window = Some(3600);
        });
        assert_eq!(w.verify(&key, |_| {}).await.code, VerifyCode::Valid);
        assert_eq!(w.verify(&key, |_| {}).await.code, VerifyCode::RateLimited);
        w.clock.advance(std::time::Duration::from_secs(3599));
        assert_eq!(w.verify(&key, |_| {}).await.code, VerifyCode::RateLimited);
        w.clock.advance(std::time::Duration::from_secs(37));
        assert_eq!(w.verify(&key, |_| {}).await.code, VerifyCode::Valid);
    }

    #[tokio::test]
    async fn a_rate_limit_refuses_past_its_limit_with_its_state() {
        let w = world().await;
        let key = w.key(|k| {
            k.ratelimit_limit = Some(2);
            k.ratelimit_window = Some(86_400);
        });
        let first = w.verify(&key, |_| {}).await;
        let second = w.verify(&key, |_| {}).await;
        let third = w.verify(&key, |_| {}).await;
        assert_eq!(
            [first.code, second.code, third.code],
            [
                VerifyCode::Valid,
                VerifyCode::Valid,
                VerifyCode::RateLimited
            ]
        );
        let state = third
            .ratelimit
            .expect("a refusal carries the limit's state");
        assert_eq!((state.limit, state.remaining), (2, 0));
    }

    #[tokio::test]
    #[ignore = "a timing probe, run by hand"]
    async fn probe_cold_other_tenant_vs_nowhere() {
        let w = world().await;
        let other = w.key(|_| {});
        let nowhere = w.key(|r| r.digest = vec![7; 32]);
        let stranger = TenantId::from_trusted(new_id());
        let (mut a, mut b, mut la, mut lb) = (Vec::new(), Vec::new(), 0, 0);
        for i in 0..4000 {
            for (key, times, lookups) in [(&other, &mut a, &mut la), (&nowhere, &mut b, &mut lb)] {
                w.verifier.keys.clear_l1();
                let before = w.metrics.store_lookups.get();
                let started = std::time::Instant::now();
                let outcome = w.verify_as(&stranger, key, |_| {}).await;
                let took = started.elapsed().as_nanos();
                assert_eq!(outcome.code, VerifyCode::NotFound);
                if i >= 200 {
                    times.push(took);
                    *lookups += w.metrics.store_lookups.get() - before;
                }
            }
        }
        a.sort();
        b.sort();
        println!(
            "other tenant: median {} ns, {} lookups; nowhere: median {} ns, {} lookups",
            a[a.len() / 2],
            la,
            b[b.len() / 2],
            lb
        );
    }
}
