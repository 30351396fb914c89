//! API keys, one file per job: create (plaintext shown once, idempotent), read and list, update,
//! rotate with grace, revoke, and the usage report. Here: the key as the API shows it and what
//! the jobs share.

mod create;
mod delete;
mod import;
mod read;
mod revoke;
mod rotate;
mod update;
mod usage;

pub use create::{Created, Idempotency, create};
pub use delete::delete;
pub(in crate::manage) use delete::delete_rows;
pub use import::{ImportItem, ImportOutcome, ImportedSecret, import};
pub use read::{KeyListFilter, family, get, list};
pub(in crate::manage) use revoke::parse_reason;
pub use revoke::{BulkRevocation, Revocation, revoke, revoke_bulk};
pub use rotate::{MAX_GRACE_SECONDS, Rotated, rotate};
pub use update::update;
pub use usage::{HourlyUsage, Usage, UsagePeriod, usage};

use chrono::{DateTime, NaiveDateTime, TimeDelta, Utc};
use secrecy::ExposeSecret;
use serde_json::{Value, json};

use crate::audit::AuditContext;
use crate::domain::commands::{Expiry, KeyChanges, MAX_BULK, NewKey, RevokeSelection};
use crate::domain::error_code::ErrorCode;
use crate::domain::ids::{KeyId, KeyspaceId, TenantId, new_id};
use crate::domain::inputs::{IpAllowlist, RateLimit};
use crate::domain::key::{KeyDigest, KeyPrefix, PlainKey};
use crate::domain::key_status::KeyStatus;
use crate::domain::legacy::DigestKind;
use crate::domain::scope::Scopes;
use crate::domain::time::utc;
use crate::events::{Change, Event, Source, Subject};
use crate::manage::key_roles::resolve_for_key;
use crate::manage::{Context, ManageError};
use crate::manage::{Page, PageRequest, parse_filter};
use crate::store::api_keys::{self, KeyFilter, RevokeTarget};
use crate::store::models::{ApiKeyChanges, ApiKeyRow, KeyRoleRow, KeyspaceRow};
use crate::store::{DbConnection, StoreError, key_roles, keyspaces, tenants};

/// A key as an operation found or left it: its stored row (which holds the secret's digest, so
/// it is never shown as it is) and its state when the operation ran.
#[derive(Debug, Clone)]
pub struct Key {
    pub row: ApiKeyRow,
    pub status: KeyStatus,
    /// The key roles it holds, by name.
    pub roles: Vec<KeyRoleRow>,
}

impl Key {
    /// A key without its roles (see [`Key::load`] for one with them).
    pub fn from_row(row: ApiKeyRow, at: NaiveDateTime) -> Self {
        Self {
            status: row.status(at),
            row,
            roles: Vec::new(),
        }
    }

    /// A key with the roles it holds.
    pub fn load(
        conn: &mut DbConnection,
        tenant: &TenantId,
        row: ApiKeyRow,
        at: NaiveDateTime,
    ) -> Result<Self, StoreError> {
        let roles = key_roles::of_key(conn, tenant, &row.id)?;
        Ok(Self {
            roles,
            ..Self::from_row(row, at)
        })
    }

    /// Keys with the roles each holds, read at once.
    pub fn load_all(
        conn: &mut DbConnection,
        tenant: &TenantId,
        rows: Vec<ApiKeyRow>,
        at: NaiveDateTime,
    ) -> Result<Vec<Self>, StoreError> {
        let ids: Vec<&str> = rows.iter().map(|r| r.id.as_str()).collect();
        let mut held = key_roles::of_keys(conn, tenant, &ids)?;
        Ok(rows
            .into_iter()
            .map(|row| Self {
                roles: held.remove(&row.id).unwrap_or_default(),
                ..Self::from_row(row, at)
            })
            .collect())
    }
}

/// Role names, for the audit log.
fn role_names(roles: &[KeyRoleRow]) -> Vec<&str> {
    roles.iter().map(|r| r.name.as_str()).collect()
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
