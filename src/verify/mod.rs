//! The verification engine: one place that decides whether a key is valid, in the order of
//! DESIGN §5. Callers (the REST verify route, OAuth, the dashboard) never re-implement a check.

pub mod ratelimit;
pub mod usage;

use std::net::IpAddr;
use std::sync::Arc;

use chrono::{DateTime, NaiveDateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::cache::Lookup;
use crate::domain::ids::TenantId;
use crate::domain::inputs::{IpAllowlist, Meta, RateLimit, RefillInterval};
use crate::domain::key::KeyDigest;
use crate::domain::scope::{Scope, Scopes};
use crate::domain::token::{AccessTokenClaims, looks_like_jwt, token_scopes};
use crate::domain::verify_code::VerifyCode;
use crate::error::ApiError;

use crate::domain::time::utc;
use crate::routes::state::AppState;
use crate::store::models::ApiKeyRow;
use crate::store::{api_keys, now};

/// Largest cost one verification may charge.
pub const MAX_COST: i64 = 1_000_000;

/// What a verification asks, validated.
#[derive(Clone, Debug)]
pub struct VerifyInput {
    pub key: String,
    pub keyspace_id: Option<String>,
    pub scopes: Vec<Scope>,
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
    pub scopes: Scopes,
    pub meta: Value,
    pub expires_at: Option<NaiveDateTime>,
    pub revoked: bool,
    pub enabled: bool,
    pub ip_allowlist: IpAllowlist,
    pub ratelimit: Option<RateLimit>,
    pub credits: Option<CreditPlan>,
    pub created_at: NaiveDateTime,
}

impl crate::cache::Cached for KeyRecord {
    const NAMESPACE: &'static str = "key";
}

#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub struct CreditPlan {
    pub refill: Option<(i64, RefillInterval)>,
}

impl From<ApiKeyRow> for KeyRecord {
    fn from(row: ApiKeyRow) -> Self {
        Self {
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
/// Sent as [`VerifyOutcomeBody`].
pub struct VerifyOutcome {
    pub valid: bool,
    pub code: VerifyCode,
    /// The key the answer is about, when it is the caller's: a refusal shows its ids and expiry,
    /// a valid answer everything ([`VerifyOutcomeBody`]).
    pub key: Option<Arc<KeyRecord>>,
    pub ratelimit: Option<RateLimitState>,
    pub credits_remaining: Option<i64>,
}

// A `VerifyOutcome` as sent, borrowed from the key's cached record: answering a verification
// copies none of the key's fields. Its doc comment is the schema's description.
/// The answer to a verification: `valid` with everything a service needs, or the reason not.
#[derive(Serialize, ToSchema)]
#[schema(as = VerifyOutcome)]
pub struct VerifyOutcomeBody<'a> {
    pub valid: bool,
    pub code: VerifyCode,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keyspace_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<String>>)]
    pub scopes: Option<&'a Scopes>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub meta: Option<&'a Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ratelimit: Option<RateLimitState>,
    /// Credits left after this verification; with `USAGE_EXCEEDED`, the balance that was
    /// smaller than the cost (nothing was taken).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credits_remaining: Option<i64>,
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

impl Serialize for VerifyOutcome {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let key = self.key.as_deref();
        let valid_key = key.filter(|_| self.valid);
        VerifyOutcomeBody {
            valid: self.valid,
            code: self.code,
            key_id: key.map(|k| k.id.as_str()),
            keyspace_id: key.map(|k| k.keyspace_id.as_str()),
            owner_id: key.and_then(|k| k.owner_id.as_deref()),
            name: valid_key.and_then(|k| k.name.as_deref()),
            scopes: valid_key.map(|k| &k.scopes),
            meta: valid_key.map(|k| &k.meta),
            expires_at: key.and_then(|k| k.expires_at).map(utc),
            ratelimit: self.ratelimit,
            credits_remaining: self.credits_remaining,
        }
        .serialize(serializer)
    }
}

#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
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
        }
    }

    pub fn key_id(&self) -> Option<&str> {
        self.key.as_deref().map(|k| k.id.as_str())
    }
}

/// The checks on a key's own state, in order: revoked, disabled, expired. Shared by verification
/// and introspection.
pub fn status_check(key: &KeyRecord, at: NaiveDateTime) -> Option<VerifyCode> {
    if key.revoked {
        return Some(VerifyCode::Revoked);
    }
    if !key.enabled {
        return Some(VerifyCode::Disabled);
    }
    if key.expires_at.is_some_and(|e| e <= at) {
        return Some(VerifyCode::Expired);
    }
    None
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
    if !key.scopes.grants_all(&input.scopes) {
        return Some(VerifyCode::InsufficientScope);
    }
    None
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

/// Finds what an API key or an access token stands for; `None` if it is nothing of ours.
pub async fn resolve(state: &AppState, raw: &str) -> Result<Option<Resolved>, ApiError> {
    if looks_like_jwt(raw) {
        // Boxed: an API key's lookup, the common case, need not carry this path's future.
        return Box::pin(resolve_token(state, raw)).await;
    }
    Ok(resolve_key(state, raw)
        .await?
        .map(|key| Resolved { key, token: None }))
}

/// Finds an API key by its value. Shape and check tag first: a forged or mistyped key costs no I/O.
pub async fn resolve_key(state: &AppState, raw: &str) -> Result<Option<Arc<KeyRecord>>, ApiError> {
    let Ok(parsed) = state.keys.parse(raw) else {
        return Ok(None);
    };
    let digests = state.keys.digests(&parsed);
    lookup(state, digests).await
}

/// An access token stands for the key it was minted from, whose current state decides:
/// revoking or disabling the key ends its tokens too. That state is read through the cache
/// tiers, as for the key itself, so every node refuses the token as soon as it refuses the key.
async fn resolve_token(state: &AppState, raw: &str) -> Result<Option<Resolved>, ApiError> {
    let Some(claims) = state.tokens.check(raw).await? else {
        return Ok(None);
    };
    let Some(key_id) = crate::domain::ids::parse_id(&claims.client_id) else {
        return Ok(None);
    };
    let Some(digest) = stored_digest(state, key_id).await? else {
        return Ok(None);
    };
    let Some(record) = lookup(state, vec![digest]).await? else {
        return Ok(None);
    };
    let mut key = KeyRecord::clone(&record);
    // A token grants its own scopes, and only those its key still holds.
    let granted = token_scopes(&claims.scope)
        .into_iter()
        .filter(|scope| key.scopes.grants(scope));
    key.scopes = Scopes::from_scopes(granted).unwrap_or_default();
    let tenant = TenantId::from_trusted(key.tenant_id.clone());
    key.revoked |= state.tokens.is_revoked(&tenant, &claims.jti).await?;
    let token_end = crate::tokens::expiry(&claims);
    key.expires_at = Some(key.expires_at.map_or(token_end, |end| end.min(token_end)));
    Ok(Some(Resolved {
        key: Arc::new(key),
        token: Some(claims),
    }))
}

/// Why a key id has no digest to offer.
enum NoDigest {
    Unknown,
    Store(crate::store::StoreError),
}

/// The digest a key is stored under, by its id. It never changes (rotating makes a new key),
/// so each node remembers it and reads the store for it once; concurrent first lookups of one
/// id share that read.
async fn stored_digest(state: &AppState, key_id: String) -> Result<Option<KeyDigest>, ApiError> {
    let (store, metrics, id) = (state.store.clone(), state.metrics.clone(), key_id.clone());
    let found = state
        .key_digests
        .try_get_with(key_id, async move {
            metrics.store_lookups.inc();
            let stored = store
                .run(move |conn| api_keys::digest_of(conn, &id))
                .await
                .map_err(NoDigest::Store)?;
            stored
                .as_deref()
                .and_then(KeyDigest::from_slice)
                .ok_or(NoDigest::Unknown)
        })
        .await;
    match found {
        Ok(digest) => Ok(Some(digest)),
        Err(missing) => match &*missing {
            NoDigest::Unknown => Ok(None),
            // Shared with every request that waited on the same read: answered by its message.
            NoDigest::Store(err) => Err(ApiError::from(crate::store::StoreError::Unavailable(
                err.to_string(),
            ))),
        },
    }
}

/// Verifies a key or an access token for the calling tenant, and counts the outcome (metrics
/// and usage).
pub async fn verify(
    state: &AppState,
    tenant: &TenantId,
    input: VerifyInput,
) -> Result<VerifyOutcome, ApiError> {
    let started = std::time::Instant::now();
    let resolved = resolve(state, &input.key).await?;
    // After the lookup, which may have waited for the store: expiry is judged as of now.
    let at = now();
    let outcome = match resolved {
        Some(resolved) => decide(state, tenant, &resolved.key, &input, at).await?,
        None => VerifyOutcome::not_found(),
    };
    state.metrics.verification(outcome.code, started.elapsed());
    if let Some(key_id) = outcome.key_id() {
        state.usage.record(tenant, key_id, outcome.code, at);
    }
    Ok(outcome)
}

/// Every check after the lookup, counters included: the one place that says whether a key
/// (or what a token makes of it) may be used now.
pub async fn decide(
    state: &AppState,
    tenant: &TenantId,
    key: &Arc<KeyRecord>,
    input: &VerifyInput,
    at: NaiveDateTime,
) -> Result<VerifyOutcome, ApiError> {
    if let Some(code) = static_checks(key, tenant, input, at) {
        return Ok(if code == VerifyCode::NotFound {
            VerifyOutcome::not_found()
        } else {
            VerifyOutcome::refused(code, Some(key))
        });
    }

    let ratelimit = match key.ratelimit {
        Some(limit) => {
            let decision = state.ratelimiter.check(&key.id, limit).await;
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
        Some(plan) => match charge_credits(state, &key.id, plan, input.cost, at).await? {
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
    })
}

/// Finds a key through the cache tiers. While the store is down, a record it returned within
/// the stale bound is still served; with none, verification fails closed (503).
async fn lookup(
    state: &AppState,
    digests: Vec<KeyDigest>,
) -> Result<Option<Arc<KeyRecord>>, ApiError> {
    let current = digests[0];
    let store = state.store.clone();
    let found = state
        .caches
        .keys
        .get(current, move || async move {
            let row = store
                .run(move |conn| api_keys::find_by_digests(conn, &digests))
                .await?;
            Ok(row.and_then(|row| {
                let stored = KeyDigest::from_slice(&row.digest)?;
                Some((KeyRecord::from(row), stored))
            }))
        })
        .await;
    match found {
        Ok(Lookup::Found(record)) => Ok(Some(record)),
        Ok(Lookup::NotFound) => Ok(None),
        Ok(Lookup::Stale(record)) => {
            tracing::warn!("store unavailable; serving a cached key record within the stale bound");
            Ok(Some(record))
        }
        Err(err) => Err(ApiError::from(crate::store::StoreError::Unavailable(
            err.to_string(),
        ))),
    }
}

/// Refills the balance if a new period began, then takes `cost` atomically: the balance left,
/// or `Err` with the balance there is when it is less than `cost`.
async fn charge_credits(
    state: &AppState,
    key_id: &str,
    plan: CreditPlan,
    cost: i64,
    at: NaiveDateTime,
) -> Result<Result<i64, i64>, ApiError> {
    let key_id = key_id.to_owned();
    state
        .store
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
