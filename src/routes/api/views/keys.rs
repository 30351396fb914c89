//! A key as the API shows it (never the secret, never its digest), and the answers that carry
//! a plaintext once: a new key and a rotated one; the bulk revocation count; a usage report.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use super::HeldRoleView;
use crate::domain::inputs::{Credits, IpAllowlist, Meta, RateLimit, Refill, RefillInterval};
use crate::domain::key::PlainKey;
use crate::domain::key_status::KeyStatus;
use crate::domain::scope::Scopes;
use crate::domain::time::utc;
use crate::domain::verify_code::VerifyCode;
use crate::manage::keys::{Created, HourlyUsage, ImportOutcome, Key, Rotated, Usage};
use crate::store::models::ApiKeyRow;
#[allow(unused_imports)] // named by the schemas only
use std::collections::HashMap;

/// Said on an idempotent replay, where `key` is null.
const REPLAY_NOTE: &str = "this Idempotency-Key already created this key; its plaintext was \
                           shown only in the first response and cannot be shown again";

/// A key as the API shows it: never the secret, never its digest.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct KeyView {
    #[schema(format = Uuid)]
    pub id: String,
    #[schema(format = Uuid)]
    pub keyspace_id: String,
    #[schema(required)]
    pub name: Option<String>,
    #[schema(required)]
    pub owner_id: Option<String>,
    /// The prefix and the first characters of the secret, to recognise the key.
    #[schema(example = "acme_live_8Hq2")]
    pub start: String,
    pub status: KeyStatus,
    pub enabled: bool,
    /// The key's own scopes; verification grants these and its roles' scopes.
    pub scopes: Vec<String>,
    /// The key roles it holds, by name.
    pub roles: Vec<HeldRoleView>,
    /// The JSON object given at creation, returned as it was stored.
    #[schema(value_type = HashMap<String, Value>)]
    pub meta: Value,
    pub ip_allowlist: Vec<String>,
    #[schema(required)]
    pub ratelimit: Option<RateLimit>,
    #[schema(required)]
    pub credits: Option<Credits>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    #[schema(required)]
    pub last_used_at: Option<DateTime<Utc>>,
    #[schema(required)]
    pub expires_at: Option<DateTime<Utc>>,
    #[schema(required)]
    pub revoked_at: Option<DateTime<Utc>>,
    #[schema(required)]
    pub revoked_reason: Option<String>,
    /// The key this one replaced by rotation.
    #[schema(required, format = Uuid)]
    pub rotated_from: Option<String>,
    /// The importing system's id for a key brought in by `POST /v1/keys/import`.
    #[schema(required)]
    pub external_ref: Option<String>,
    /// Shared by a key and every key rotated from it.
    #[schema(format = Uuid)]
    pub family_id: String,
}

impl From<Key> for KeyView {
    fn from(key: Key) -> Self {
        let Key { row, status, roles } = key;
        let roles = roles.iter().map(HeldRoleView::from).collect();
        // Every column, so that a new one is a decision here: shown, or deliberately not.
        let ApiKeyRow {
            id,
            tenant_id: _,
            keyspace_id,
            name,
            owner_id,
            scopes,
            meta,
            digest: _,
            start,
            created_at,
            updated_at,
            last_used_at,
            expires_at,
            revoked_at,
            revoked_reason,
            enabled,
            ip_allowlist,
            ratelimit_limit,
            ratelimit_window,
            credits_remaining,
            credits_refill_amount,
            credits_refill_interval,
            credits_refilled_at: _,
            rotated_from,
            family_id,
            idempotency_key: _,
            created_by: _,
            idempotency_fingerprint: _,
            digest_kind: _,
            external_ref,
        } = row;
        let credits = credits_remaining.map(|remaining| Credits {
            remaining,
            refill: match (credits_refill_amount, credits_refill_interval.as_deref()) {
                (Some(amount), Some(interval)) => RefillInterval::from_stored(interval)
                    .map(|interval| Refill { amount, interval }),
                _ => None,
            },
        });
        Self {
            id,
            keyspace_id,
            name,
            owner_id,
            start,
            status,
            enabled,
            scopes: Scopes::from_json(&scopes).to_strings(),
            roles,
            meta: Meta::from_stored(&meta).to_value(),
            ip_allowlist: IpAllowlist::from_stored(&ip_allowlist).to_strings(),
            ratelimit: RateLimit::from_stored(ratelimit_limit, ratelimit_window),
            credits,
            created_at: utc(created_at),
            updated_at: utc(updated_at),
            last_used_at: last_used_at.map(utc),
            expires_at: expires_at.map(utc),
            revoked_at: revoked_at.map(utc),
            revoked_reason,
            rotated_from,
            external_ref,
            family_id,
        }
    }
}

/// The answer to a create: the key as stored plus, the first time only, its plaintext.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedKey {
    #[serde(flatten)]
    pub view: KeyView,
    /// The plaintext key. Shown only in this response; store it now. `null` on an idempotent replay.
    #[schema(required, value_type = Option<String>, example = "acme_live_8Hq2vR0dXk3N7bYc1LmQ5sTf9WpZ4gJe6UaOiE2x")]
    #[serde(serialize_with = "PlainKey::serialize_exposed_opt")]
    pub key: Option<PlainKey>,
    /// Present on an idempotent replay, explaining why `key` is null.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub note: Option<String>,
}

impl From<Created> for CreatedKey {
    fn from(created: Created) -> Self {
        let Created { key, plaintext } = created;
        Self {
            view: key.into(),
            note: plaintext.is_none().then(|| REPLAY_NOTE.to_owned()),
            key: plaintext,
        }
    }
}

/// The answer to a rotation: the new key (plaintext once) and the old key's new expiry.
#[derive(Debug, Serialize, ToSchema)]
pub struct RotatedKey {
    #[serde(flatten)]
    pub view: KeyView,
    /// The new key's plaintext, shown only in this response.
    #[schema(value_type = String)]
    #[serde(serialize_with = "PlainKey::serialize_exposed")]
    pub key: PlainKey,
    pub previous_key: PreviousKey,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PreviousKey {
    #[schema(format = Uuid)]
    pub id: String,
    /// The old key keeps working until this moment (now plus the grace period, or sooner if
    /// it already expired earlier).
    pub expires_at: DateTime<Utc>,
}

impl From<Rotated> for RotatedKey {
    fn from(rotated: Rotated) -> Self {
        let Rotated {
            key,
            plaintext,
            previous_key_id,
            previous_expires_at,
        } = rotated;
        Self {
            view: key.into(),
            key: plaintext,
            previous_key: PreviousKey {
                id: previous_key_id.into_string(),
                expires_at: previous_expires_at,
            },
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BulkRevoked {
    /// How many of this tenant's API keys were revoked by this request.
    pub revoked: usize,
    /// Only when raw `keys` named live root keys of this tenant: how many this request revoked
    /// (the caller holds `root_keys:revoke`)...
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub root_keys_revoked: Option<usize>,
    /// ... and how many it left alone (the caller lacks `root_keys:revoke`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub root_keys_not_revoked: Option<usize>,
}

impl From<crate::manage::keys::BulkRevocation> for BulkRevoked {
    fn from(done: crate::manage::keys::BulkRevocation) -> Self {
        let named_root_keys = done.root_keys + done.root_keys_left > 0;
        let shown = |count: usize| named_root_keys.then_some(count);
        Self {
            revoked: done.keys,
            root_keys_revoked: shown(done.root_keys),
            root_keys_not_revoked: shown(done.root_keys_left),
        }
    }
}

/// Verifications of one hour, by outcome code.
#[derive(Debug, Serialize, ToSchema)]
pub struct UsageHour {
    pub hour: DateTime<Utc>,
    #[schema(value_type = BTreeMap<VerifyCode, i64>, example = json!({"VALID": 120, "RATE_LIMITED": 3}))]
    pub outcomes: BTreeMap<String, i64>,
}

impl From<HourlyUsage> for UsageHour {
    fn from(hour: HourlyUsage) -> Self {
        let HourlyUsage { hour, outcomes } = hour;
        Self { hour, outcomes }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct KeyUsage {
    #[schema(format = Uuid)]
    pub key_id: String,
    pub since: DateTime<Utc>,
    pub until: DateTime<Utc>,
    #[schema(required)]
    pub last_used_at: Option<DateTime<Utc>>,
    /// Totals over the period, by outcome code.
    #[schema(value_type = BTreeMap<VerifyCode, i64>)]
    pub totals: BTreeMap<String, i64>,
    pub hours: Vec<UsageHour>,
}

impl From<Usage> for KeyUsage {
    fn from(usage: Usage) -> Self {
        let Usage {
            key_id,
            since,
            until,
            last_used_at,
            totals,
            hours,
        } = usage;
        Self {
            key_id: key_id.into_string(),
            since,
            until,
            last_used_at,
            totals,
            hours: hours.into_iter().map(UsageHour::from).collect(),
        }
    }
}

/// What became of one imported item.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ImportStatus {
    Imported,
    /// Its `external_ref` was imported before (`key` is that key), or its secret is already
    /// known or was deleted (no `key`).
    Duplicate,
    Invalid,
}

/// The answer about one item, in the order they were sent.
#[derive(Debug, Serialize, ToSchema)]
pub struct ImportResult {
    /// The item's position in `keys`, from 0.
    pub index: usize,
    pub status: ImportStatus,
    /// The key imported, or imported before with the same `external_ref`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub key: Option<KeyView>,
    /// For `duplicate` and `invalid`: the field of the item that decided.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub field: Option<String>,
    /// For `invalid`: what is wrong (never the value).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub detail: Option<String>,
}

/// The answer to an import.
#[derive(Debug, Serialize, ToSchema)]
pub struct ImportedKeys {
    pub results: Vec<ImportResult>,
    pub imported: usize,
    pub duplicates: usize,
    pub invalid: usize,
}

impl From<Vec<ImportOutcome>> for ImportedKeys {
    fn from(outcomes: Vec<ImportOutcome>) -> Self {
        let results: Vec<ImportResult> = outcomes
            .into_iter()
            .enumerate()
            .map(|(index, outcome)| {
                let (status, key, field, detail) = match outcome {
                    ImportOutcome::Imported(key) => (ImportStatus::Imported, Some(key), None, None),
                    ImportOutcome::Duplicate { field, existing } => (
                        ImportStatus::Duplicate,
                        existing,
                        Some(field.to_owned()),
                        None,
                    ),
                    ImportOutcome::Invalid(invalid) => (
                        ImportStatus::Invalid,
                        None,
                        Some(invalid.field.to_owned()),
                        Some(invalid.message),
                    ),
                };
                ImportResult {
                    index,
                    status,
                    key: key.map(KeyView::from),
                    field,
                    detail,
                }
            })
            .collect();
        let count = |wanted: fn(&ImportStatus) -> bool| {
            results.iter().filter(|r| wanted(&r.status)).count()
        };
        Self {
            imported: count(|s| matches!(s, ImportStatus::Imported)),
            duplicates: count(|s| matches!(s, ImportStatus::Duplicate)),
            invalid: count(|s| matches!(s, ImportStatus::Invalid)),
            results,
        }
    }
}
