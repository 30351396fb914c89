//! Dashboard sessions, looked up by the digest of the cookie value.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::models::SessionRow;
use super::schema::sessions;
use super::{DbConnection, StoreError};
use crate::domain::ids::TenantId;

pub fn insert(conn: &mut DbConnection, row: &SessionRow) -> Result<(), StoreError> {
    diesel::insert_into(sessions::table)
        .values(row)
        .execute(conn)?;
    Ok(())
}

pub fn find(conn: &mut DbConnection, digest: &[u8]) -> Result<Option<SessionRow>, StoreError> {
    Ok(sessions::table
        .find(digest)
        .select(SessionRow::as_select())
        .first(conn)
        .optional()?)
}

pub fn touch(conn: &mut DbConnection, digest: &[u8], at: NaiveDateTime) -> Result<(), StoreError> {
    diesel::update(sessions::table.find(digest))
        .set(sessions::last_seen_at.eq(at))
        .execute(conn)?;
    Ok(())
}

/// Points a session at the tenant the user is working in.
pub fn set_tenant(
    conn: &mut DbConnection,
    digest: &[u8],
    tenant: &TenantId,
) -> Result<(), StoreError> {
    diesel::update(sessions::table.find(digest))
        .set(sessions::tenant_id.eq(tenant.as_str()))
        .execute(conn)?;
    Ok(())
}

pub fn delete(conn: &mut DbConnection, digest: &[u8]) -> Result<(), StoreError> {
    diesel::delete(sessions::table.find(digest)).execute(conn)?;
    Ok(())
}

/// Ends every session a user has open in a tenant (when they are removed from it).
pub fn delete_in_tenant(
    conn: &mut DbConnection,
    tenant: &TenantId,
    user_id: &str,
) -> Result<usize, StoreError> {
    Ok(diesel::delete(
        sessions::table
            .filter(sessions::tenant_id.eq(tenant.as_str()))
            .filter(sessions::user_id.eq(user_id)),
    )
    .execute(conn)?)
}

/// Removes sessions past their absolute expiry.
pub fn delete_expired(conn: &mut DbConnection, now: NaiveDateTime) -> Result<usize, StoreError> {
    Ok(diesel::delete(sessions::table.filter(sessions::expires_at.le(now))).execute(conn)?)
}
