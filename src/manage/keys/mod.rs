//! API keys, one file per job: create (plaintext shown once, idempotent), read and list, update,
//! rotate with grace, revoke, and the usage report. Here: the key as the API shows it and what
//! the jobs share.

mod create;
mod read;
mod revoke;
mod rotate;
mod update;
mod usage;

pub use create::{CreatedKey, Idempotency, create};
pub use read::{KeyListFilter, family, get, list};
pub use revoke::{BulkRevoked, Revocation, revoke, revoke_bulk};
pub use rotate::{MAX_GRACE_SECONDS, PreviousKey, RotatedKey, rotate};
pub use update::update;
pub use usage::{KeyUsage, UsageHour, UsagePeriod, usage};

use chrono::{DateTime, NaiveDateTime, TimeDelta, Utc};
use secrecy::ExposeSecret;
use serde::Serialize;
use serde_json::{Value, json};
use utoipa::ToSchema;

use crate::audit::AuditContext;
use crate::domain::commands::{Expiry, KeyChanges, MAX_BULK, NewKey, RevokeSelection};
use crate::domain::error_code::ErrorCode;
use crate::domain::ids::{KeyspaceId, TenantId, new_id};
use crate::domain::inputs::{Credits, IpAllowlist, Meta, RateLimit, Refill, RefillInterval};
use crate::domain::key::{KeyDigest, KeyPrefix, PlainKey};
use crate::domain::key_status::KeyStatus;
use crate::domain::scope::Scopes;
use crate::domain::time::utc;
use crate::events::{Change, Event, Source, Subject};
use crate::manage::{Context, ManageError};
use crate::manage::{Page, PageRequest, parse_filter};
use crate::store::api_keys::{self, KeyFilter, RevokeTarget};
use crate::store::models::{ApiKeyChanges, ApiKeyRow};
use crate::store::{DbConnection, StoreError, keyspaces};

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

/// Reads a key id from a path or body; malformed ids are simply not found.
fn key_not_found() -> ManageError {
    ManageError::NotFound("key")
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
