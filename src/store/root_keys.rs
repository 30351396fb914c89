//! Root keys: a tenant's credentials for the management API and verify calls.

use diesel::prelude::*;

use super::models::RootKeyRow;
use super::schema::root_keys;
use super::{DbConnection, StoreError};
use chrono::NaiveDateTime;

use crate::domain::ids::TenantId;
use crate::domain::key::KeyDigest;

pub fn insert(conn: &mut DbConnection, row: &RootKeyRow) -> Result<(), StoreError> {
    diesel::insert_into(root_keys::table)
        .values(row)
        .execute(conn)?;
    Ok(())
}

/// Finds a root key by any of its candidate digests (one per live pepper). Not tenant-scoped:
/// this is how a caller's tenant is learned in the first place.
pub fn find_by_digests(
    conn: &mut DbConnection,
    digests: &[KeyDigest],
) -> Result<Option<RootKeyRow>, StoreError> {
    let digests: Vec<&[u8]> = digests.iter().map(|d| d.as_bytes().as_slice()).collect();
    Ok(root_keys::table
        .filter(root_keys::digest.eq_any(digests))
        .select(RootKeyRow::as_select())
        .first(conn)
        .optional()?)
}

/// `tenant`'s root key with one of `digests`: another tenant's is not found, at the cost of one
/// that exists nowhere (a pasted value tells its tenant nothing about other tenants).
pub fn find_by_digests_in(
    conn: &mut DbConnection,
    tenant: &TenantId,
    digests: &[KeyDigest],
) -> Result<Option<RootKeyRow>, StoreError> {
    let digests: Vec<&[u8]> = digests.iter().map(|d| d.as_bytes().as_slice()).collect();
    Ok(root_keys::table
        .filter(root_keys::digest.eq_any(digests))
        .filter(root_keys::tenant_id.eq(tenant.as_str()))
        .select(RootKeyRow::as_select())
        .first(conn)
        .optional()?)
}

/// Every root key, of any tenant, with one of `digests`: the root keys among reported or pasted
/// values.
pub fn find_all_by_digests(
    conn: &mut DbConnection,
    digests: &[KeyDigest],
) -> Result<Vec<RootKeyRow>, StoreError> {
    let mut rows = Vec::new();
    for chunk in digests.chunks(500) {
        let chunk: Vec<&[u8]> = chunk.iter().map(|d| d.as_bytes().as_slice()).collect();
        rows.extend(
            root_keys::table
                .filter(root_keys::digest.eq_any(chunk))
                .select(RootKeyRow::as_select())
                .load(conn)?,
        );
    }
    Ok(rows)
}

pub fn find(
    conn: &mut DbConnection,
    tenant: &TenantId,
    id: &str,
) -> Result<Option<RootKeyRow>, StoreError> {
    Ok(root_keys::table
        .filter(root_keys::tenant_id.eq(tenant.as_str()))
        .filter(root_keys::id.eq(id))
        .select(RootKeyRow::as_select())
        .first(conn)
        .optional()?)
}

/// One page, newest first, of ids below `before`.
pub fn list(
    conn: &mut DbConnection,
    tenant: &TenantId,
    before: Option<&str>,
    limit: i64,
) -> Result<Vec<RootKeyRow>, StoreError> {
    let mut query = root_keys::table
        .filter(root_keys::tenant_id.eq(tenant.as_str()))
        .select(RootKeyRow::as_select())
        .order(root_keys::id.desc())
        .limit(limit)
        .into_boxed();
    if let Some(before) = before {
        query = query.filter(root_keys::id.lt(before.to_owned()));
    }
    Ok(query.load(conn)?)
}

/// The tenant's root keys that are neither revoked nor expired.
pub fn active(
    conn: &mut DbConnection,
    tenant: &TenantId,
    now: NaiveDateTime,
) -> Result<Vec<RootKeyRow>, StoreError> {
    Ok(root_keys::table
        .filter(root_keys::tenant_id.eq(tenant.as_str()))
        .filter(root_keys::revoked_at.is_null())
        .filter(
            root_keys::expires_at
                .is_null()
                .or(root_keys::expires_at.gt(now)),
        )
        .select(RootKeyRow::as_select())
        .load(conn)?)
}

pub fn revoke(
    conn: &mut DbConnection,
    tenant: &TenantId,
    id: &str,
    now: NaiveDateTime,
) -> Result<usize, StoreError> {
    Ok(diesel::update(
        root_keys::table
            .filter(root_keys::tenant_id.eq(tenant.as_str()))
            .filter(root_keys::id.eq(id))
            .filter(root_keys::revoked_at.is_null()),
    )
    .set(root_keys::revoked_at.eq(Some(now)))
    .execute(conn)?)
}
