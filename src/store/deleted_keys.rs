//! Tombstones of deleted keys: id, tenant, digest and when. A digest here is never stored again.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::schema::deleted_keys;
use super::{DbConnection, StoreError};
use crate::domain::ids::TenantId;
use crate::domain::key::KeyDigest;

/// Records that key `id` of `tenant`, stored under `digest`, was deleted at `at`.
pub fn insert(
    conn: &mut DbConnection,
    tenant: &TenantId,
    id: &str,
    digest: &[u8],
    at: NaiveDateTime,
) -> Result<(), StoreError> {
    diesel::insert_into(deleted_keys::table)
        .values((
            deleted_keys::id.eq(id),
            deleted_keys::tenant_id.eq(tenant.as_str()),
            deleted_keys::digest.eq(digest),
            deleted_keys::deleted_at.eq(at),
        ))
        .execute(conn)?;
    Ok(())
}

/// Whether a key stored under `digest`, in any tenant, was deleted.
pub fn is_deleted(conn: &mut DbConnection, digest: &KeyDigest) -> Result<bool, StoreError> {
    let found: Option<String> = deleted_keys::table
        .filter(deleted_keys::digest.eq(digest.as_bytes().as_slice()))
        .select(deleted_keys::id)
        .first(conn)
        .optional()?;
    Ok(found.is_some())
}
