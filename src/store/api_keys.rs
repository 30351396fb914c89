//! API keys: the rows behind every verification. Every query but the digest lookup is tenant-scoped.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text, Timestamp};

use super::models::{ApiKeyChanges, ApiKeyRow};
use super::schema::api_keys;
use super::{DbConnection, StoreError, numbered};
use crate::domain::ids::{KeyId, KeyspaceId, TenantId};
use crate::domain::key::KeyDigest;
use crate::domain::key_status::KeyStatus;
use crate::domain::legacy::DigestKind;

/// Which keys a list shows.
#[derive(Clone, Debug, Default)]
pub struct KeyFilter {
    pub keyspace_id: Option<String>,
    pub owner_id: Option<String>,
    pub status: Option<KeyStatus>,
    /// Case-insensitive substring of the name.
    pub name_contains: Option<String>,
}

impl ApiKeyRow {
    /// This key's state as of `at`.
    pub fn status(&self, at: NaiveDateTime) -> KeyStatus {
        KeyStatus::of(self.revoked_at.is_some(), self.enabled, self.expires_at, at)
    }
}

pub fn insert(conn: &mut DbConnection, row: &ApiKeyRow) -> Result<(), StoreError> {
    diesel::insert_into(api_keys::table)
        .values(row)
        .execute(conn)?;
    Ok(())
}

pub fn find(
    conn: &mut DbConnection,
    tenant: &TenantId,
    id: &str,
) -> Result<Option<ApiKeyRow>, StoreError> {
    Ok(api_keys::table
        .filter(api_keys::tenant_id.eq(tenant.as_str()))
        .filter(api_keys::id.eq(id))
        .select(ApiKeyRow::as_select())
        .first(conn)
        .optional()?)
}

/// The verification lookup: `tenant`'s key stored under any of the live-pepper digests. Another
/// tenant's key is not found, at the cost of a key that exists nowhere: the row is not read.
pub fn find_by_digests_in(
    conn: &mut DbConnection,
    tenant: &TenantId,
    digests: &[KeyDigest],
) -> Result<Option<ApiKeyRow>, StoreError> {
    let digests: Vec<&[u8]> = digests.iter().map(|d| d.as_bytes().as_slice()).collect();
    Ok(api_keys::table
        .filter(api_keys::digest.eq_any(digests))
        .filter(api_keys::tenant_id.eq(tenant.as_str()))
        .select(ApiKeyRow::as_select())
        .first(conn)
        .optional()?)
}

/// The verification lookup of a value in another system's format: `tenant`'s imported key
/// stored under one of `peppered` (its HMAC digests) or, not yet upgraded, under `sha256`. Each
/// digest is matched only with the kind it was stored as.
pub fn find_foreign_in(
    conn: &mut DbConnection,
    tenant: &TenantId,
    peppered: &[KeyDigest],
    sha256: &KeyDigest,
) -> Result<Option<ApiKeyRow>, StoreError> {
    let peppered: Vec<&[u8]> = peppered.iter().map(|d| d.as_bytes().as_slice()).collect();
    let legacy_hmac = DigestKind::LegacyHmac.as_str();
    let legacy_sha256 = DigestKind::LegacySha256.as_str();
    Ok(api_keys::table
        .filter(
            api_keys::digest
                .eq_any(peppered)
                .and(api_keys::digest_kind.eq(legacy_hmac))
                .or(api_keys::digest
                    .eq(sha256.as_bytes().as_slice())
                    .and(api_keys::digest_kind.eq(legacy_sha256))),
        )
        .filter(api_keys::tenant_id.eq(tenant.as_str()))
        .select(ApiKeyRow::as_select())
        .first(conn)
        .optional()?)
}

/// Whether `tenant` holds any imported key in another system's format: only then does a value
/// not in latchkey's format cost a lookup.
pub fn has_foreign_keys(conn: &mut DbConnection, tenant: &TenantId) -> Result<bool, StoreError> {
    let found: Option<String> = api_keys::table
        .filter(api_keys::tenant_id.eq(tenant.as_str()))
        .filter(api_keys::digest_kind.ne(DigestKind::Hmac.as_str()))
        .select(api_keys::id)
        .first(conn)
        .optional()?;
    Ok(found.is_some())
}

/// Replaces an imported key's SHA-256 digest with its HMAC digest, once: `false` when it is no
/// longer stored under `sha256` (another node upgraded it first, or it was deleted).
pub fn upgrade_digest(
    conn: &mut DbConnection,
    tenant: &TenantId,
    id: &str,
    sha256: &KeyDigest,
    peppered: &KeyDigest,
    at: NaiveDateTime,
) -> Result<bool, StoreError> {
    let changed = diesel::update(
        api_keys::table
            .filter(api_keys::tenant_id.eq(tenant.as_str()))
            .filter(api_keys::id.eq(id))
            .filter(api_keys::digest_kind.eq(DigestKind::LegacySha256.as_str()))
            .filter(api_keys::digest.eq(sha256.as_bytes().as_slice())),
    )
    .set((
        api_keys::digest.eq(peppered.as_bytes().as_slice()),
        api_keys::digest_kind.eq(DigestKind::LegacyHmac.as_str()),
        api_keys::updated_at.eq(at),
    ))
    .execute(conn)?;
    Ok(changed == 1)
}

/// `tenant`'s key imported with `external_ref`.
pub fn find_by_external_ref(
    conn: &mut DbConnection,
    tenant: &TenantId,
    external_ref: &str,
) -> Result<Option<ApiKeyRow>, StoreError> {
    Ok(api_keys::table
        .filter(api_keys::tenant_id.eq(tenant.as_str()))
        .filter(api_keys::external_ref.eq(external_ref))
        .select(ApiKeyRow::as_select())
        .first(conn)
        .optional()?)
}

/// Whether any key, in any tenant, is stored under `digest` (digests are unique deployment-wide).
pub fn digest_taken(conn: &mut DbConnection, digest: &KeyDigest) -> Result<bool, StoreError> {
    let found: Option<String> = api_keys::table
        .filter(api_keys::digest.eq(digest.as_bytes().as_slice()))
        .select(api_keys::id)
        .first(conn)
        .optional()?;
    Ok(found.is_some())
}

/// Every key of `tenant`'s keyspace `keyspace_id`.
pub fn in_keyspace(
    conn: &mut DbConnection,
    tenant: &TenantId,
    keyspace_id: &str,
) -> Result<Vec<ApiKeyRow>, StoreError> {
    Ok(api_keys::table
        .filter(api_keys::tenant_id.eq(tenant.as_str()))
        .filter(api_keys::keyspace_id.eq(keyspace_id))
        .select(ApiKeyRow::as_select())
        .load(conn)?)
}

/// Removes `tenant`'s keys `ids` (their usage rollups go with them).
pub fn delete(conn: &mut DbConnection, tenant: &TenantId, ids: &[&str]) -> Result<(), StoreError> {
    for chunk in ids.chunks(500) {
        diesel::delete(
            api_keys::table
                .filter(api_keys::tenant_id.eq(tenant.as_str()))
                .filter(api_keys::id.eq_any(chunk)),
        )
        .execute(conn)?;
    }
    Ok(())
}

/// A key by id in any tenant, for access tokens, whose `client_id` names the key they were
/// minted from. The caller compares the row's tenant with its own.
pub fn find_by_id(conn: &mut DbConnection, id: &str) -> Result<Option<ApiKeyRow>, StoreError> {
    Ok(api_keys::table
        .filter(api_keys::id.eq(id))
        .select(ApiKeyRow::as_select())
        .first(conn)
        .optional()?)
}

/// The tenant key `id` belongs to and the digest it is stored under, in any tenant (an access
/// token or an OAuth client names its key by id).
pub fn home_of(conn: &mut DbConnection, id: &str) -> Result<Option<(String, Vec<u8>)>, StoreError> {
    Ok(api_keys::table
        .filter(api_keys::id.eq(id))
        .select((api_keys::tenant_id, api_keys::digest))
        .first(conn)
        .optional()?)
}

/// Every key matching one of `digests`, in any tenant (leak reports name keys, not tenants).
pub fn find_all_by_digests(
    conn: &mut DbConnection,
    digests: &[KeyDigest],
) -> Result<Vec<ApiKeyRow>, StoreError> {
    let mut rows = Vec::new();
    for chunk in digests.chunks(500) {
        let chunk: Vec<&[u8]> = chunk.iter().map(|d| d.as_bytes().as_slice()).collect();
        rows.extend(
            api_keys::table
                .filter(api_keys::digest.eq_any(chunk))
                .select(ApiKeyRow::as_select())
                .load(conn)?,
        );
    }
    Ok(rows)
}

pub fn find_by_idempotency_key(
    conn: &mut DbConnection,
    tenant: &TenantId,
    idempotency_key: &str,
) -> Result<Option<ApiKeyRow>, StoreError> {
    Ok(api_keys::table
        .filter(api_keys::tenant_id.eq(tenant.as_str()))
        .filter(api_keys::idempotency_key.eq(idempotency_key))
        .select(ApiKeyRow::as_select())
        .first(conn)
        .optional()?)
}

/// One page, newest first, of ids below `before` (the cursor).
pub fn list(
    conn: &mut DbConnection,
    tenant: &TenantId,
    filter: &KeyFilter,
    before: Option<&str>,
    limit: i64,
    now: NaiveDateTime,
) -> Result<Vec<ApiKeyRow>, StoreError> {
    let mut query = api_keys::table
        .filter(api_keys::tenant_id.eq(tenant.as_str()))
        .select(ApiKeyRow::as_select())
        .order(api_keys::id.desc())
        .limit(limit)
        .into_boxed();
    if let Some(before) = before {
        query = query.filter(api_keys::id.lt(before.to_owned()));
    }
    if let Some(keyspace_id) = &filter.keyspace_id {
        query = query.filter(api_keys::keyspace_id.eq(keyspace_id.clone()));
    }
    if let Some(owner_id) = &filter.owner_id {
        query = query.filter(api_keys::owner_id.eq(owner_id.clone()));
    }
    if let Some(needle) = &filter.name_contains {
        let pattern = format!("%{}%", escape_like(&needle.to_lowercase()));
        query = query.filter(
            diesel::dsl::sql::<diesel::sql_types::Bool>("LOWER(COALESCE(name, '')) LIKE ")
                .bind::<diesel::sql_types::Text, _>(pattern)
                .sql(" ESCAPE '\\'"),
        );
    }
    query = match filter.status {
        None => query,
        Some(KeyStatus::Revoked) => query.filter(api_keys::revoked_at.is_not_null()),
        Some(KeyStatus::Disabled) => query
            .filter(api_keys::revoked_at.is_null())
            .filter(api_keys::enabled.eq(false)),
        Some(KeyStatus::Expired) => query
            .filter(api_keys::revoked_at.is_null())
            .filter(api_keys::enabled.eq(true))
            .filter(api_keys::expires_at.le(now)),
        Some(KeyStatus::Active) => query
            .filter(api_keys::revoked_at.is_null())
            .filter(api_keys::enabled.eq(true))
            .filter(
                api_keys::expires_at
                    .is_null()
                    .or(api_keys::expires_at.gt(now)),
            ),
    };
    Ok(query.load(conn)?)
}

fn escape_like(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

pub fn update(
    conn: &mut DbConnection,
    tenant: &TenantId,
    id: &str,
    changes: &ApiKeyChanges,
) -> Result<usize, StoreError> {
    Ok(diesel::update(
        api_keys::table
            .filter(api_keys::tenant_id.eq(tenant.as_str()))
            .filter(api_keys::id.eq(id)),
    )
    .set(changes)
    .execute(conn)?)
}

/// Sets a key's expiry (rotation grace).
pub fn set_expiry(
    conn: &mut DbConnection,
    tenant: &TenantId,
    id: &str,
    expires_at: NaiveDateTime,
    now: NaiveDateTime,
) -> Result<(), StoreError> {
    diesel::update(
        api_keys::table
            .filter(api_keys::tenant_id.eq(tenant.as_str()))
            .filter(api_keys::id.eq(id)),
    )
    .set((
        api_keys::expires_at.eq(Some(expires_at)),
        api_keys::updated_at.eq(now),
    ))
    .execute(conn)?;
    Ok(())
}

/// Which keys a revocation targets.
pub enum RevokeTarget<'a> {
    Ids(&'a [KeyId]),
    Owner(&'a str),
    Keyspace(&'a KeyspaceId),
    Family(&'a str),
    Digests(&'a [KeyDigest]),
}

/// Revokes the tenant's not-yet-revoked keys matching `target`; returns the rows as they were
/// (id and digest are what callers need: for the audit log and for cache invalidation).
pub fn revoke(
    conn: &mut DbConnection,
    tenant: &TenantId,
    target: RevokeTarget<'_>,
    reason: Option<&str>,
    now: NaiveDateTime,
) -> Result<Vec<ApiKeyRow>, StoreError> {
    let mut query = api_keys::table
        .filter(api_keys::tenant_id.eq(tenant.as_str()))
        .filter(api_keys::revoked_at.is_null())
        .select(ApiKeyRow::as_select())
        .into_boxed();
    query = match target {
        RevokeTarget::Ids(ids) => {
            let ids: Vec<String> = ids.iter().map(|id| id.as_str().to_owned()).collect();
            query.filter(api_keys::id.eq_any(ids))
        }
        RevokeTarget::Owner(owner) => query.filter(api_keys::owner_id.eq(owner.to_owned())),
        RevokeTarget::Keyspace(ks) => {
            query.filter(api_keys::keyspace_id.eq(ks.as_str().to_owned()))
        }
        RevokeTarget::Family(family) => query.filter(api_keys::family_id.eq(family.to_owned())),
        RevokeTarget::Digests(digests) => query.filter(
            api_keys::digest.eq_any(
                digests
                    .iter()
                    .map(|d| d.as_bytes().to_vec())
                    .collect::<Vec<_>>(),
            ),
        ),
    };
    let rows = query.load(conn)?;
    let ids: Vec<&str> = rows.iter().map(|r| r.id.as_str()).collect();
    for chunk in ids.chunks(500) {
        diesel::update(
            api_keys::table
                .filter(api_keys::tenant_id.eq(tenant.as_str()))
                .filter(api_keys::id.eq_any(chunk))
                .filter(api_keys::revoked_at.is_null()),
        )
        .set((
            api_keys::revoked_at.eq(Some(now)),
            api_keys::revoked_reason.eq(reason),
            api_keys::updated_at.eq(now),
        ))
        .execute(conn)?;
    }
    Ok(rows)
}

/// Whether some key was rotated from `id` (a key is rotated at most once).
pub fn has_successor(
    conn: &mut DbConnection,
    tenant: &TenantId,
    id: &str,
) -> Result<bool, StoreError> {
    let count: i64 = api_keys::table
        .filter(api_keys::tenant_id.eq(tenant.as_str()))
        .filter(api_keys::rotated_from.eq(id))
        .count()
        .get_result(conn)?;
    Ok(count > 0)
}

/// Every key of a rotation family, oldest first.
pub fn family(
    conn: &mut DbConnection,
    tenant: &TenantId,
    family_id: &str,
) -> Result<Vec<ApiKeyRow>, StoreError> {
    Ok(api_keys::table
        .filter(api_keys::tenant_id.eq(tenant.as_str()))
        .filter(api_keys::family_id.eq(family_id))
        .select(ApiKeyRow::as_select())
        .order(api_keys::id.asc())
        .load(conn)?)
}

/// Takes `:cost` credits if at least that many remain.
const CHARGE: &str = "UPDATE api_keys SET credits_remaining = credits_remaining - :cost \
    WHERE id = :id AND credits_remaining >= :cost RETURNING credits_remaining";

/// [`CHARGE`] after resetting a balance last refilled before `:period` to the key's stored
/// refill amount (the stored one: a change to the plan is never undone by a cached copy). SET
/// and WHERE all read the row as it was, so each `CASE` sees the same refill time.
const REFILL_AND_CHARGE: &str = "UPDATE api_keys SET \
    credits_remaining = (CASE WHEN credits_refilled_at IS NULL OR credits_refilled_at < :period \
        THEN credits_refill_amount ELSE credits_remaining END) - :cost, \
    credits_refilled_at = CASE WHEN credits_refilled_at IS NULL OR credits_refilled_at < :period \
        THEN :period ELSE credits_refilled_at END \
    WHERE id = :id AND credits_remaining IS NOT NULL AND credits_refill_amount IS NOT NULL \
    AND (CASE WHEN credits_refilled_at IS NULL OR credits_refilled_at < :period \
        THEN credits_refill_amount ELSE credits_remaining END) >= :cost \
    RETURNING credits_remaining";

/// Takes `cost` credits if at least that many remain, in one statement that reads back the
/// balance it left: atomic by itself (its row lock orders concurrent charges), never below
/// zero, and one round trip. With `refill = (amount, period_start)` (`amount` as last cached),
/// a balance last refilled before `period_start` is first reset to the stored amount in the
/// same statement. Returns the balance after, or `None` if there were not enough. A refused
/// charge larger than `amount` still records a due refill, in a second statement.
pub fn charge_credits(
    conn: &mut DbConnection,
    id: &str,
    cost: i64,
    refill: Option<(i64, NaiveDateTime)>,
) -> Result<Option<i64>, StoreError> {
    #[derive(QueryableByName)]
    struct Left {
        #[diesel(sql_type = BigInt)]
        credits_remaining: i64,
    }
    let left: Vec<Left> = match refill {
        None => diesel::sql_query(numbered(conn, CHARGE, &["cost", "id"]))
            .bind::<BigInt, _>(cost)
            .bind::<Text, _>(id)
            .load(conn)?,
        Some((amount, period_start)) => {
            let sql = numbered(conn, REFILL_AND_CHARGE, &["cost", "id", "period"]);
            let left = diesel::sql_query(sql)
                .bind::<BigInt, _>(cost)
                .bind::<Text, _>(id)
                .bind::<Timestamp, _>(period_start)
                .load(conn)?;
            // Refused although a refill may have been due: only a charge larger than the refill
            // could be (otherwise the refill would have covered it).
            if left.is_empty() && cost > amount {
                refill_credits(conn, id, period_start)?;
            }
            left
        }
    };
    Ok(left.first().map(|l| l.credits_remaining))
}

/// A key's credit balance as stored (0 for a key without credits), to tell a refused charge
/// what is left.
pub fn credit_balance(conn: &mut DbConnection, id: &str) -> Result<i64, StoreError> {
    let balance: Option<Option<i64>> = api_keys::table
        .filter(api_keys::id.eq(id))
        .select(api_keys::credits_remaining)
        .first(conn)
        .optional()?;
    Ok(balance.flatten().unwrap_or(0))
}

/// Resets the balance to the stored refill amount if the last refill was before
/// `period_start` (compare-and-set on the refill time, so concurrent nodes refill once).
fn refill_credits(
    conn: &mut DbConnection,
    id: &str,
    period_start: NaiveDateTime,
) -> Result<bool, StoreError> {
    let updated = diesel::update(
        api_keys::table
            .filter(api_keys::id.eq(id))
            .filter(api_keys::credits_remaining.is_not_null())
            .filter(api_keys::credits_refill_amount.is_not_null())
            .filter(
                api_keys::credits_refilled_at
                    .is_null()
                    .or(api_keys::credits_refilled_at.lt(period_start)),
            ),
    )
    .set((
        api_keys::credits_remaining.eq(api_keys::credits_refill_amount),
        api_keys::credits_refilled_at.eq(Some(period_start)),
    ))
    .execute(conn)?;
    Ok(updated > 0)
}
