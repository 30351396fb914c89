//! API keys: create (plaintext shown once), list, read, update, rotate with grace, revoke.

use actix_web::http::StatusCode;
use chrono::{DateTime, NaiveDateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use super::{Page, PageRequest, double_option, parse_filter};
use crate::audit::AuditContext;
use crate::domain::ids::{TenantId, new_id};
use crate::domain::inputs::{
    Credits, IpAllowlist, Meta, RateLimit, Refill, RefillInterval, parse_expiry, parse_name,
    parse_owner_id,
};
use crate::domain::key::{KeyDigest, KeyPrefix};
use crate::domain::key_status::KeyStatus;
use crate::domain::scope::Scopes;
use crate::domain::time::utc;
use crate::error::ApiError;
use crate::events::{Change, Event, Source, Subject};
use crate::routes::state::AppState;
use crate::store::api_keys::{self, KeyFilter, RevokeTarget};
use crate::store::models::{ApiKeyChanges, ApiKeyRow};
use crate::store::{DbConnection, StoreError, keyspaces};

/// Longest rotation grace period: 30 days.
pub const MAX_GRACE_SECONDS: i64 = 30 * 24 * 3600;
/// Most keys one bulk revocation names.
pub const MAX_BULK: usize = 1000;

#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"keyspace_id": "019a5f0e-7c1d-7b2a-9d4e-3f2a1b0c9d8e", "name": "Acme Corp production",
    "owner_id": "customer_42", "scopes": ["documents:read", "documents:write"],
    "meta": {"plan": "pro"}, "ttl_seconds": 2592000, "ip_allowlist": ["203.0.113.0/24"],
    "ratelimit": {"limit": 100, "window_seconds": 60},
    "credits": {"remaining": 1000, "refill": {"amount": 1000, "interval": "monthly"}}}))]
pub struct CreateKey {
    pub keyspace_id: String,
    pub name: Option<String>,
    /// Your own identifier for whoever holds the key (a user or customer id).
    pub owner_id: Option<String>,
    /// Defaults to the keyspace's default scopes.
    pub scopes: Option<Vec<String>>,
    /// A JSON object of at most 8 KiB, returned with every verification.
    #[schema(value_type = Option<Object>)]
    pub meta: Option<Value>,
    /// Absolute expiry (RFC 3339, in the future). Give this or `ttl_seconds`, not both.
    pub expires_at: Option<DateTime<Utc>>,
    /// Lifetime from now; defaults to the keyspace's default ttl.
    pub ttl_seconds: Option<i64>,
    /// CIDRs or addresses the key may be used from; empty means anywhere.
    pub ip_allowlist: Option<Vec<String>>,
    /// Defaults to the keyspace's default rate limit.
    pub ratelimit: Option<RateLimit>,
    pub credits: Option<Credits>,
    /// Default true.
    pub enabled: Option<bool>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"scopes": ["documents:read"], "enabled": false}))]
pub struct UpdateKey {
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub name: Option<Option<String>>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub owner_id: Option<Option<String>>,
    pub scopes: Option<Vec<String>>,
    #[schema(value_type = Option<Object>)]
    pub meta: Option<Value>,
    /// `null` removes the expiry.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<DateTime<Utc>>)]
    pub expires_at: Option<Option<DateTime<Utc>>>,
    pub ip_allowlist: Option<Vec<String>>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<RateLimit>)]
    pub ratelimit: Option<Option<RateLimit>>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<Credits>)]
    pub credits: Option<Option<Credits>>,
    /// Disabling is reversible (unlike revoking).
    pub enabled: Option<bool>,
}

/// A key as the API shows it: never the secret, never its digest.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct KeyView {
    pub id: String,
    pub keyspace_id: String,
    pub name: Option<String>,
    pub owner_id: Option<String>,
    /// The prefix and the first characters of the secret, to recognise the key.
    #[schema(example = "acme_live_8Hq2")]
    pub start: String,
    pub status: KeyStatus,
    pub enabled: bool,
    pub scopes: Vec<String>,
    #[schema(value_type = Object)]
    pub meta: Value,
    pub ip_allowlist: Vec<String>,
    pub ratelimit: Option<RateLimit>,
    pub credits: Option<Credits>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub revoked_reason: Option<String>,
    pub rotated_from: Option<String>,
    pub family_id: String,
}

impl KeyView {
    pub fn from_row(row: ApiKeyRow, at: NaiveDateTime) -> Self {
        let status = row.status(at);
        let credits = row.credits_remaining.map(|remaining| Credits {
            remaining,
            refill: match (
                row.credits_refill_amount,
                row.credits_refill_interval.as_deref(),
            ) {
                (Some(amount), Some(interval)) => RefillInterval::from_stored(interval)
                    .map(|interval| Refill { amount, interval }),
                _ => None,
            },
        });
        Self {
            scopes: Scopes::from_json(&row.scopes).to_strings(),
            meta: Meta::from_stored(&row.meta).to_value(),
            ip_allowlist: IpAllowlist::from_stored(&row.ip_allowlist).to_strings(),
            ratelimit: RateLimit::from_stored(row.ratelimit_limit, row.ratelimit_window),
            credits,
            status,
            id: row.id,
            keyspace_id: row.keyspace_id,
            name: row.name,
            owner_id: row.owner_id,
            start: row.start,
            enabled: row.enabled,
            created_at: utc(row.created_at),
            updated_at: utc(row.updated_at),
            last_used_at: row.last_used_at.map(utc),
            expires_at: row.expires_at.map(utc),
            revoked_at: row.revoked_at.map(utc),
            revoked_reason: row.revoked_reason,
            rotated_from: row.rotated_from,
            family_id: row.family_id,
        }
    }
}

/// The answer to a create: the key as stored plus, the first time only, its plaintext.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedKey {
    #[serde(flatten)]
    pub view: KeyView,
    /// The plaintext key. Shown only in this response; store it now. `null` on an idempotent replay.
    #[schema(example = "acme_live_8Hq2vR0dXk3N7bYc1LmQ5sTf9WpZ4gJe6UaOiE2x")]
    pub key: Option<String>,
    /// Present on an idempotent replay, explaining why `key` is null.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// The answer to a rotation: the new key (plaintext once) and the old key's new expiry.
#[derive(Debug, Serialize, ToSchema)]
pub struct RotatedKey {
    #[serde(flatten)]
    pub view: KeyView,
    /// The new key's plaintext, shown only in this response.
    pub key: String,
    pub previous_key: PreviousKey,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PreviousKey {
    pub id: String,
    /// The old key keeps working until this moment (now plus the grace period, or sooner if
    /// it already expired earlier).
    pub expires_at: DateTime<Utc>,
}

/// What a caller may ask to see in a list.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    pub keyspace_id: Option<String>,
    pub owner_id: Option<String>,
    pub status: Option<KeyStatus>,
    pub q: Option<String>,
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

fn field(name: &'static str) -> impl FnOnce(String) -> ApiError {
    move |message| ApiError::invalid_field(name, message)
}

fn parse_scopes(raw: &[String]) -> Result<Scopes, ApiError> {
    Scopes::parse(raw).map_err(|e| ApiError::invalid_field("scopes", e.to_string()))
}

fn parse_credits(credits: Credits) -> Result<Credits, ApiError> {
    credits.validate().map_err(field("credits"))
}

fn parse_ratelimit(limit: RateLimit) -> Result<RateLimit, ApiError> {
    limit.validate().map_err(field("ratelimit"))
}

/// Reads a key id from a path or body; malformed ids are simply not found.
fn key_not_found() -> ApiError {
    ApiError::not_found("key")
}

pub async fn create(
    state: &AppState,
    audit: &AuditContext,
    tenant: &TenantId,
    input: CreateKey,
    idempotency_key: Option<String>,
) -> Result<CreatedKey, ApiError> {
    if let Some(key) = &idempotency_key
        && (key.is_empty() || key.len() > 200 || key.chars().any(char::is_control))
    {
        return Err(ApiError::bad_request(
            "invalid_idempotency_key",
            "Idempotency-Key must be 1 to 200 printable characters",
        ));
    }
    // Only compared with the fingerprint stored with the key the Idempotency-Key made.
    let fingerprint = idempotency_key.as_ref().map(|_| fingerprint(&input));
    let at = state.clock.now();
    let name = input
        .name
        .as_deref()
        .map(parse_name)
        .transpose()
        .map_err(|e| ApiError::invalid_field("name", e))?;
    let owner_id = input
        .owner_id
        .as_deref()
        .map(parse_owner_id)
        .transpose()
        .map_err(|e| ApiError::invalid_field("owner_id", e))?;
    let scopes = input.scopes.as_deref().map(parse_scopes).transpose()?;
    let meta = match input.meta {
        Some(value) => Meta::parse(value).map_err(field("meta"))?,
        None => Meta::empty(),
    };
    let explicit_expiry = parse_expiry(input.expires_at, input.ttl_seconds, at)
        .map_err(|(f, m)| ApiError::invalid_field(f, m))?;
    let ip_allowlist = IpAllowlist::parse(input.ip_allowlist.as_deref().unwrap_or_default())
        .map_err(field("ip_allowlist"))?;
    let ratelimit = input.ratelimit.map(parse_ratelimit).transpose()?;
    let credits = input.credits.map(parse_credits).transpose()?;
    let keyspace_id = crate::domain::ids::parse_id(&input.keyspace_id)
        .ok_or_else(|| ApiError::invalid_field("keyspace_id", "no such keyspace"))?;

    let hasher = state.keys.clone();
    let (audit, tenant) = (audit.clone(), tenant.clone());
    let explicit_ttl = input.expires_at.is_some() || input.ttl_seconds.is_some();
    let enabled = input.enabled.unwrap_or(true);
    let created = state
        .store
        .transaction(move |conn| {
            if let Some(idem) = &idempotency_key
                && let Some(existing) = api_keys::find_by_idempotency_key(conn, &tenant, idem)?
            {
                // Keys made before fingerprints were kept have none: replayed as before.
                if existing
                    .idempotency_fingerprint
                    .as_ref()
                    .is_some_and(|stored| Some(stored) != fingerprint.as_ref())
                {
                    return Err(ApiError::new(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        "idempotency_key_reused",
                        "this Idempotency-Key was already used with a different request body",
                    ));
                }
                return Ok((replayed(existing, at), None));
            }
            let keyspace = keyspaces::find(conn, &tenant, &keyspace_id)?
                .ok_or_else(|| ApiError::invalid_field("keyspace_id", "no such keyspace"))?;
            let prefix = KeyPrefix::parse(&keyspace.prefix).map_err(ApiError::internal)?;
            let scopes = scopes.unwrap_or_else(|| Scopes::from_json(&keyspace.default_scopes));
            let expires_at = if explicit_ttl {
                explicit_expiry
            } else {
                keyspace
                    .default_ttl_seconds
                    .map(|ttl| at + TimeDelta::seconds(ttl))
            };
            let ratelimit = ratelimit.or_else(|| {
                RateLimit::from_stored(
                    keyspace.default_ratelimit_limit,
                    keyspace.default_ratelimit_window,
                )
            });
            let generated = hasher.generate(&prefix);
            let id = new_id();
            let row = ApiKeyRow {
                family_id: id.clone(),
                id,
                tenant_id: tenant.as_str().to_owned(),
                keyspace_id: keyspace.id,
                name,
                owner_id,
                scopes: scopes.to_json(),
                meta: meta.to_json_string(),
                digest: generated.digest.as_bytes().to_vec(),
                start: generated.start,
                created_at: at,
                updated_at: at,
                last_used_at: None,
                expires_at,
                revoked_at: None,
                revoked_reason: None,
                enabled,
                ip_allowlist: ip_allowlist.to_json_string(),
                ratelimit_limit: ratelimit.map(|l| l.limit),
                ratelimit_window: ratelimit.map(|l| l.window_seconds),
                credits_remaining: credits.map(|c| c.remaining),
                credits_refill_amount: credits.and_then(|c| c.refill).map(|r| r.amount),
                credits_refill_interval: credits
                    .and_then(|c| c.refill)
                    .map(|r| r.interval.as_str().to_owned()),
                credits_refilled_at: credits
                    .and_then(|c| c.refill)
                    .map(|r| r.interval.period_start(at)),
                rotated_from: None,
                idempotency_key: idempotency_key.clone(),
                created_by: audit_actor_label(&audit),
                idempotency_fingerprint: fingerprint.clone(),
            };
            match api_keys::insert(conn, &row) {
                Ok(()) => {}
                // A concurrent retry with the same Idempotency-Key won the race: answer as it did.
                Err(e) if e.is_unique_violation() && idempotency_key.is_some() => {
                    return Err(ApiError::conflict(
                        "idempotency_conflict",
                        "a request with this Idempotency-Key is being processed; retry it",
                    ));
                }
                Err(e) => return Err(e.into()),
            }
            // The event also makes every node forget an "unknown" it may have cached for this
            // digest moments ago.
            let event = Event::record(
                conn,
                &audit,
                &tenant,
                Subject::key(&row),
                Change::Created,
                creation_fields(&row),
            )?;
            Ok((
                CreatedKey {
                    view: KeyView::from_row(row, at),
                    key: Some(generated.key.expose_secret().to_owned()),
                    note: None,
                },
                Some(event),
            ))
        })
        .await?;
    state.events.dispatch(created.1.as_slice()).await;
    Ok(created.0)
}

/// What makes two create requests the same: SHA-256 of the parsed request as JSON, with every
/// object's keys sorted and absent fields left out. Whitespace, the order of fields (in `meta`
/// too) and `null` for an absent field do not count, and a field added to [`CreateKey`] later
/// does not change the fingerprint of requests without it. The prefix names this form.
fn fingerprint(input: &CreateKey) -> Vec<u8> {
    let mut request = serde_json::to_value(input).unwrap_or(Value::Null);
    if let Value::Object(fields) = &mut request {
        fields.retain(|_, value| !value.is_null());
    }
    let mut hash = Sha256::new();
    hash.update(b"create-key-v1\0");
    hash.update(sorted(request).to_string().as_bytes());
    hash.finalize().to_vec()
}

/// `value` with the keys of every object in order (whatever order the map type keeps).
fn sorted(value: Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut fields: Vec<(String, Value)> = map.into_iter().collect();
            fields.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(fields.into_iter().map(|(k, v)| (k, sorted(v))).collect())
        }
        Value::Array(items) => Value::Array(items.into_iter().map(sorted).collect()),
        other => other,
    }
}

fn replayed(existing: ApiKeyRow, at: NaiveDateTime) -> CreatedKey {
    CreatedKey {
        view: KeyView::from_row(existing, at),
        key: None,
        note: Some(
            "this Idempotency-Key already created this key; its plaintext was shown only in the \
             first response and cannot be shown again"
                .into(),
        ),
    }
}

fn audit_actor_label(audit: &AuditContext) -> String {
    match &audit.actor {
        crate::audit::Actor::RootKey(id) => format!("root_key:{id}"),
        crate::audit::Actor::User(id) => format!("user:{id}"),
        crate::audit::Actor::Cli => "cli".into(),
        crate::audit::Actor::LeakReporter(id) => format!("leak_reporter:{id}"),
        crate::audit::Actor::Client(id) => format!("oauth_client:{id}"),
    }
}

/// The configuration of a new key, for the audit log (never the secret or digest).
fn creation_fields(row: &ApiKeyRow) -> Value {
    json!({
        "keyspace_id": row.keyspace_id,
        "name": row.name,
        "owner_id": row.owner_id,
        "scopes": Scopes::from_json(&row.scopes).to_strings(),
        "expires_at": row.expires_at.map(utc),
        "ip_allowlist": IpAllowlist::from_stored(&row.ip_allowlist).to_strings(),
        "ratelimit": RateLimit::from_stored(row.ratelimit_limit, row.ratelimit_window),
        "credits_remaining": row.credits_remaining,
        "enabled": row.enabled,
        "rotated_from": row.rotated_from,
    })
}

pub async fn list(
    state: &AppState,
    tenant: &TenantId,
    query: ListQuery,
) -> Result<Page<KeyView>, ApiError> {
    let page = PageRequest::parse(query.limit, query.cursor.as_deref())?;
    let filter = KeyFilter {
        keyspace_id: parse_filter("keyspace_id", query.keyspace_id)?,
        owner_id: parse_filter("owner_id", query.owner_id)?,
        status: query.status,
        name_contains: parse_filter("q", query.q)?
            .map(|q| q.trim().to_owned())
            .filter(|q| !q.is_empty()),
    };
    let tenant = tenant.clone();
    let at = state.clock.now();
    let rows = {
        let page = page.clone();
        state
            .store
            .run(move |conn| {
                api_keys::list(
                    conn,
                    &tenant,
                    &filter,
                    page.before.as_deref(),
                    page.fetch_limit(),
                    at,
                )
            })
            .await?
    };
    Ok(page.page(rows, |r| &r.id, |r| KeyView::from_row(r, at)))
}

pub async fn get(state: &AppState, tenant: &TenantId, id: String) -> Result<KeyView, ApiError> {
    let tenant = tenant.clone();
    state
        .store
        .run(move |conn| api_keys::find(conn, &tenant, &id))
        .await?
        .map(|row| KeyView::from_row(row, state.clock.now()))
        .ok_or_else(key_not_found)
}

/// Every key of `id`'s rotation family, oldest first.
pub async fn family(
    state: &AppState,
    tenant: &TenantId,
    id: String,
) -> Result<Vec<KeyView>, ApiError> {
    let tenant = tenant.clone();
    let at = state.clock.now();
    state
        .store
        .run(move |conn| {
            let key = api_keys::find(conn, &tenant, &id)?.ok_or_else(key_not_found)?;
            let rows = api_keys::family(conn, &tenant, &key.family_id)?;
            Ok(rows.into_iter().map(|r| KeyView::from_row(r, at)).collect())
        })
        .await
}

pub async fn update(
    state: &AppState,
    audit: &AuditContext,
    tenant: &TenantId,
    id: String,
    input: UpdateKey,
) -> Result<KeyView, ApiError> {
    let at = state.clock.now();
    let mut changes = ApiKeyChanges {
        updated_at: Some(at),
        ..Default::default()
    };
    let mut changed = serde_json::Map::new();
    if let Some(name) = input.name {
        let name = name
            .as_deref()
            .map(parse_name)
            .transpose()
            .map_err(|e| ApiError::invalid_field("name", e))?;
        changed.insert("name".into(), json!(name));
        changes.name = Some(name);
    }
    if let Some(owner) = input.owner_id {
        let owner = owner
            .as_deref()
            .map(parse_owner_id)
            .transpose()
            .map_err(|e| ApiError::invalid_field("owner_id", e))?;
        changed.insert("owner_id".into(), json!(owner));
        changes.owner_id = Some(owner);
    }
    if let Some(scopes) = input.scopes {
        let scopes = parse_scopes(&scopes)?;
        changed.insert("scopes".into(), json!(scopes.to_strings()));
        changes.scopes = Some(scopes.to_json());
    }
    if let Some(meta) = input.meta {
        let meta = Meta::parse(meta).map_err(field("meta"))?;
        changed.insert("meta".into(), json!("(changed)"));
        changes.meta = Some(meta.to_json_string());
    }
    if let Some(expires_at) = input.expires_at {
        let expires_at = match expires_at {
            Some(at_value) => parse_expiry(Some(at_value), None, at)
                .map_err(|(f, m)| ApiError::invalid_field(f, m))?,
            None => None,
        };
        changed.insert("expires_at".into(), json!(expires_at.map(utc)));
        changes.expires_at = Some(expires_at);
    }
    if let Some(list) = input.ip_allowlist {
        let list = IpAllowlist::parse(&list).map_err(field("ip_allowlist"))?;
        changed.insert("ip_allowlist".into(), json!(list.to_strings()));
        changes.ip_allowlist = Some(list.to_json_string());
    }
    if let Some(limit) = input.ratelimit {
        let limit = limit.map(parse_ratelimit).transpose()?;
        changed.insert("ratelimit".into(), json!(limit));
        changes.ratelimit_limit = Some(limit.map(|l| l.limit));
        changes.ratelimit_window = Some(limit.map(|l| l.window_seconds));
    }
    if let Some(credits) = input.credits {
        let credits = credits.map(parse_credits).transpose()?;
        changed.insert("credits".into(), json!(credits));
        let refill = credits.and_then(|c| c.refill);
        changes.credits_remaining = Some(credits.map(|c| c.remaining));
        changes.credits_refill_amount = Some(refill.map(|r| r.amount));
        changes.credits_refill_interval = Some(refill.map(|r| r.interval.as_str().to_owned()));
    }
    if let Some(enabled) = input.enabled {
        changed.insert("enabled".into(), json!(enabled));
        changes.enabled = Some(enabled);
    }
    let (audit, tenant) = (audit.clone(), tenant.clone());
    let row = state
        .store
        .transaction(move |conn| {
            let current = api_keys::find(conn, &tenant, &id)?.ok_or_else(key_not_found)?;
            if current.revoked_at.is_some() && !changed.is_empty() {
                return Err(ApiError::conflict(
                    "key_revoked",
                    "a revoked key cannot be changed; revoking is permanent",
                ));
            }
            api_keys::update(conn, &tenant, &id, &changes)?;
            let event = if changed.is_empty() {
                None
            } else {
                let change = match changes.enabled {
                    Some(false) if current.enabled => Change::Disabled,
                    Some(true) if !current.enabled => Change::Enabled,
                    _ => Change::Updated,
                };
                let subject = Subject::key(&current);
                let fields = Value::Object(changed);
                Some(Event::record(
                    conn, &audit, &tenant, subject, change, fields,
                )?)
            };
            let row = api_keys::find(conn, &tenant, &id)?.ok_or_else(key_not_found)?;
            Ok::<_, ApiError>((row, event))
        })
        .await?;
    let (row, event) = row;
    state.events.dispatch(event.as_slice()).await;
    Ok(KeyView::from_row(row, at))
}

pub async fn rotate(
    state: &AppState,
    audit: &AuditContext,
    tenant: &TenantId,
    id: String,
    grace_period_seconds: i64,
) -> Result<RotatedKey, ApiError> {
    if !(0..=MAX_GRACE_SECONDS).contains(&grace_period_seconds) {
        return Err(ApiError::invalid_field(
            "grace_period_seconds",
            format!("must be between 0 and {MAX_GRACE_SECONDS}"),
        ));
    }
    let at = state.clock.now();
    let hasher = state.keys.clone();
    let (audit, tenant) = (audit.clone(), tenant.clone());
    let outcome = state
        .store
        .transaction(move |conn| {
            let old = api_keys::find(conn, &tenant, &id)?.ok_or_else(key_not_found)?;
            if old.revoked_at.is_some() {
                // Someone is rotating a key that was revoked: whoever holds it is not who we
                // think. Revoke the whole family and refuse (reuse detection).
                let revoked = api_keys::revoke(
                    conn,
                    &tenant,
                    RevokeTarget::Family(&old.family_id),
                    Some("rotation_reuse_detected"),
                    at,
                )?;
                // One audit event for the family; one event per key it revoked.
                audit.record(
                    conn,
                    &tenant,
                    "key.family_revoke",
                    ("key", &old.id),
                    json!({
                        "reason": "rotation_reuse_detected",
                        "family_id": old.family_id,
                        "revoked_key_ids": revoked.iter().map(|r| &r.id).collect::<Vec<_>>(),
                    }),
                )?;
                let reason = Some("rotation_reuse_detected".to_owned());
                let events: Vec<Event> = revoked
                    .iter()
                    .map(|row| {
                        let change = Change::Revoked {
                            reason: reason.clone(),
                        };
                        Event::new(&audit, &tenant, Subject::key(row), change)
                            .with_source(Source::ReuseDetection)
                    })
                    .collect();
                return Ok(Err(events));
            }
            if old.status(at) == KeyStatus::Expired {
                return Err(ApiError::conflict(
                    "key_expired",
                    "an expired key cannot be rotated; create a new key instead",
                ));
            }
            if api_keys::has_successor(conn, &tenant, &old.id)? {
                return Err(ApiError::conflict(
                    "key_already_rotated",
                    "this key was already rotated; rotate its newest successor instead",
                ));
            }
            let prefix = old
                .start
                .rsplit_once('_')
                .and_then(|(prefix, _)| KeyPrefix::parse(prefix).ok())
                .ok_or_else(|| {
                    ApiError::internal(anyhow::anyhow!("stored key start is malformed"))
                })?;
            let generated = hasher.generate(&prefix);
            let new = ApiKeyRow {
                id: new_id(),
                digest: generated.digest.as_bytes().to_vec(),
                start: generated.start,
                created_at: at,
                updated_at: at,
                last_used_at: None,
                rotated_from: Some(old.id.clone()),
                idempotency_key: None,
                idempotency_fingerprint: None,
                created_by: audit_actor_label(&audit),
                ..old.clone()
            };
            api_keys::insert(conn, &new)?;
            let grace_end = at + TimeDelta::seconds(grace_period_seconds);
            let old_expires_at = old.expires_at.map_or(grace_end, |e| e.min(grace_end));
            api_keys::set_expiry(conn, &tenant, &old.id, old_expires_at, at)?;
            // The old key's expiry changed: its event evicts it so every node sees the grace end.
            let rotated = Event::record(
                conn,
                &audit,
                &tenant,
                Subject::key(&old),
                Change::Rotated {
                    successor_id: new.id.clone(),
                },
                json!({
                    "new_key_id": new.id,
                    "grace_period_seconds": grace_period_seconds,
                    "expires_at": utc(old_expires_at),
                }),
            )?;
            let fields = creation_fields(&new);
            let created = Event::record(
                conn,
                &audit,
                &tenant,
                Subject::key(&new),
                Change::Created,
                fields,
            )?;
            let changed = [rotated, created];
            Ok(Ok((
                RotatedKey {
                    view: KeyView::from_row(new, at),
                    key: generated.key.expose_secret().to_owned(),
                    previous_key: PreviousKey {
                        id: old.id,
                        expires_at: utc(old_expires_at),
                    },
                },
                changed,
            )))
        })
        .await?;
    match outcome {
        Ok((rotated, changed)) => {
            state.events.dispatch(&changed).await;
            Ok(rotated)
        }
        Err(revoked) => {
            state.events.dispatch(&revoked).await;
            Err(ApiError::conflict(
                "key_revoked_reuse_detected",
                format!(
                    "this key was revoked, so rotating it means someone else may hold it; every \
                     active key of its rotation family ({} keys) has been revoked",
                    revoked.len()
                ),
            ))
        }
    }
}

/// Revokes one key. Revoking an already revoked key changes nothing and answers the key as it is.
pub async fn revoke(
    state: &AppState,
    audit: &AuditContext,
    tenant: &TenantId,
    id: String,
    reason: Option<String>,
) -> Result<KeyView, ApiError> {
    let reason = parse_reason(reason)?;
    let at = state.clock.now();
    let (audit, tenant) = (audit.clone(), tenant.clone());
    let (row, revoked) = state
        .store
        .transaction(move |conn| {
            api_keys::find(conn, &tenant, &id)?.ok_or_else(key_not_found)?;
            let revoked = api_keys::revoke(
                conn,
                &tenant,
                RevokeTarget::Ids(std::slice::from_ref(&id)),
                reason.as_deref(),
                at,
            )?;
            let fields = json!({ "reason": reason });
            let events = record_revocations(conn, &audit, &tenant, &revoked, &reason, &fields)?;
            let row = api_keys::find(conn, &tenant, &id)?.ok_or_else(key_not_found)?;
            Ok::<_, ApiError>((row, events))
        })
        .await?;
    state.events.dispatch(&revoked).await;
    Ok(KeyView::from_row(row, at))
}

/// The audit event (with `fields`) and the after-commit event of each key just revoked.
fn record_revocations(
    conn: &mut DbConnection,
    audit: &AuditContext,
    tenant: &TenantId,
    revoked: &[ApiKeyRow],
    reason: &Option<String>,
    fields: &Value,
) -> Result<Vec<Event>, StoreError> {
    revoked
        .iter()
        .map(|row| {
            let change = Change::Revoked {
                reason: reason.clone(),
            };
            Event::record(
                conn,
                audit,
                tenant,
                Subject::key(row),
                change,
                fields.clone(),
            )
        })
        .collect()
}

fn parse_reason(reason: Option<String>) -> Result<Option<String>, ApiError> {
    match reason {
        Some(r) if r.chars().count() > 500 || r.chars().any(char::is_control) => {
            Err(ApiError::invalid_field(
                "reason",
                "must be at most 500 characters, without control characters",
            ))
        }
        Some(r) if r.trim().is_empty() => Ok(None),
        other => Ok(other.map(|r| r.trim().to_owned())),
    }
}

/// A bulk revocation: exactly one of the selectors.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"owner_id": "customer_42", "reason": "customer offboarded"}))]
pub struct BulkRevoke {
    /// Key ids (at most 1,000).
    pub ids: Option<Vec<String>>,
    /// Every key of this owner.
    pub owner_id: Option<String>,
    /// Every key of this keyspace.
    pub keyspace_id: Option<String>,
    /// Raw key values, e.g. found in a leak (at most 1,000). The answer does not say which existed.
    pub keys: Option<Vec<String>>,
    pub reason: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BulkRevoked {
    /// How many of this tenant's keys were revoked by this request.
    pub revoked: usize,
}

pub async fn revoke_bulk(
    state: &AppState,
    audit: &AuditContext,
    tenant: &TenantId,
    input: BulkRevoke,
) -> Result<BulkRevoked, ApiError> {
    let reason = parse_reason(input.reason)?;
    let selectors = [
        input.ids.is_some(),
        input.owner_id.is_some(),
        input.keyspace_id.is_some(),
        input.keys.is_some(),
    ];
    if selectors.iter().filter(|s| **s).count() != 1 {
        return Err(ApiError::bad_request(
            "invalid_selector",
            "give exactly one of ids, owner_id, keyspace_id or keys",
        ));
    }
    enum Selector {
        Ids(Vec<String>),
        Owner(String),
        Keyspace(String),
        Digests(Vec<KeyDigest>),
    }
    let (selector, selector_audit) = if let Some(ids) = input.ids {
        if ids.is_empty() || ids.len() > MAX_BULK {
            return Err(ApiError::invalid_field(
                "ids",
                format!("give 1 to {MAX_BULK} ids"),
            ));
        }
        // Malformed ids cannot match anything; drop them rather than fail the batch.
        let ids: Vec<String> = ids
            .iter()
            .filter_map(|id| crate::domain::ids::parse_id(id))
            .collect();
        let audit_value = json!({ "ids": ids });
        (Selector::Ids(ids), audit_value)
    } else if let Some(owner) = input.owner_id {
        let owner = parse_owner_id(&owner).map_err(|e| ApiError::invalid_field("owner_id", e))?;
        let audit_value = json!({ "owner_id": owner });
        (Selector::Owner(owner), audit_value)
    } else if let Some(keyspace) = input.keyspace_id {
        // A malformed id names no keyspace (and must not reach the store): nothing to revoke.
        let Some(keyspace) = crate::domain::ids::parse_id(&keyspace) else {
            return Ok(BulkRevoked { revoked: 0 });
        };
        let audit_value = json!({ "keyspace_id": keyspace });
        (Selector::Keyspace(keyspace), audit_value)
    } else {
        let keys = input.keys.unwrap_or_default();
        if keys.is_empty() || keys.len() > MAX_BULK {
            return Err(ApiError::invalid_field(
                "keys",
                format!("give 1 to {MAX_BULK} keys"),
            ));
        }
        // Values that are not well-formed keys of this deployment cannot exist; skip them.
        let digests: Vec<KeyDigest> = keys
            .iter()
            .filter_map(|raw| state.keys.parse(raw.trim()).ok())
            .flat_map(|parsed| state.keys.digests(&parsed))
            .collect();
        let audit_value = json!({ "keys": keys.len() });
        (Selector::Digests(digests), audit_value)
    };
    let at = state.clock.now();
    let (audit, tenant) = (audit.clone(), tenant.clone());
    let revoked = state
        .store
        .transaction(move |conn| {
            let target = match &selector {
                Selector::Ids(ids) => RevokeTarget::Ids(ids),
                Selector::Owner(owner) => RevokeTarget::Owner(owner),
                Selector::Keyspace(ks) => RevokeTarget::Keyspace(ks),
                Selector::Digests(digests) => RevokeTarget::Digests(digests),
            };
            let revoked = revoke_rows(conn, &tenant, target, reason.as_deref(), at)?;
            let fields = json!({ "reason": reason, "bulk": true, "selector": selector_audit });
            Ok::<_, ApiError>(record_revocations(
                conn, &audit, &tenant, &revoked, &reason, &fields,
            )?)
        })
        .await?;
    state.events.dispatch(&revoked).await;
    Ok(BulkRevoked {
        revoked: revoked.len(),
    })
}

fn revoke_rows(
    conn: &mut DbConnection,
    tenant: &TenantId,
    target: RevokeTarget<'_>,
    reason: Option<&str>,
    at: NaiveDateTime,
) -> Result<Vec<ApiKeyRow>, ApiError> {
    Ok(api_keys::revoke(conn, tenant, target, reason, at)?)
}

/// `?since=&until=` of a usage query (default: the last 24 hours, at most 31 days).
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct UsageQuery {
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
}

/// Verifications of one hour, by outcome code.
#[derive(Debug, Serialize, ToSchema)]
pub struct UsageHour {
    pub hour: DateTime<Utc>,
    #[schema(value_type = Object, example = json!({"VALID": 120, "RATE_LIMITED": 3}))]
    pub outcomes: std::collections::BTreeMap<String, i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct KeyUsage {
    pub key_id: String,
    pub since: DateTime<Utc>,
    pub until: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    /// Totals over the period, by outcome code.
    #[schema(value_type = Object)]
    pub totals: std::collections::BTreeMap<String, i64>,
    pub hours: Vec<UsageHour>,
}

/// Hourly verification counts of a key (flushed from every node every few seconds).
pub async fn usage(
    state: &AppState,
    tenant: &TenantId,
    id: String,
    query: UsageQuery,
) -> Result<KeyUsage, ApiError> {
    let until = query.until.unwrap_or_else(Utc::now);
    let since = query.since.unwrap_or(until - TimeDelta::hours(24));
    if since >= until {
        return Err(ApiError::invalid_field("since", "must be before until"));
    }
    if until - since > TimeDelta::days(31) {
        return Err(ApiError::invalid_field(
            "since",
            "the period may span at most 31 days",
        ));
    }
    let tenant = tenant.clone();
    let (key, rows) = state
        .store
        .run(move |conn| {
            let key = api_keys::find(conn, &tenant, &id)?.ok_or_else(key_not_found)?;
            let rows = crate::store::usage::hourly(
                conn,
                &tenant,
                Some(&key.id),
                since.naive_utc(),
                until.naive_utc(),
            )?;
            Ok::<_, ApiError>((key, rows))
        })
        .await?;
    let mut totals = std::collections::BTreeMap::new();
    let mut hours: Vec<UsageHour> = Vec::new();
    for row in rows {
        *totals.entry(row.outcome.clone()).or_default() += row.count;
        let hour = utc(row.hour);
        match hours.last_mut() {
            Some(last) if last.hour == hour => {
                last.outcomes.insert(row.outcome, row.count);
            }
            _ => hours.push(UsageHour {
                hour,
                outcomes: [(row.outcome, row.count)].into_iter().collect(),
            }),
        }
    }
    Ok(KeyUsage {
        key_id: key.id,
        since,
        until,
        last_used_at: key.last_used_at.map(utc),
        totals,
        hours,
    })
}
