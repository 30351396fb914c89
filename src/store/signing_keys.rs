//! JWT signing keys, shared by every node; each tenant is its own issuer with keys of its own.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::models::SigningKeyRow;
use super::schema::signing_keys;
use super::{DbConnection, StoreError};
use crate::domain::ids::TenantId;

pub fn insert(conn: &mut DbConnection, row: &SigningKeyRow) -> Result<(), StoreError> {
    diesel::insert_into(signing_keys::table)
        .values(row)
        .execute(conn)?;
    Ok(())
}

/// The tenant's keys still published at `now` (never retired, or retired but still verifying),
/// newest first.
pub fn published(
    conn: &mut DbConnection,
    tenant: &TenantId,
    now: NaiveDateTime,
) -> Result<Vec<SigningKeyRow>, StoreError> {
    Ok(signing_keys::table
        .filter(signing_keys::tenant_id.eq(tenant.as_str()))
        .filter(
            signing_keys::remove_after
                .is_null()
                .or(signing_keys::remove_after.gt(now)),
        )
        .select(SigningKeyRow::as_select())
        .order((signing_keys::created_at.desc(), signing_keys::kid.desc()))
        .load(conn)?)
}

/// Tenants with a key that still signs.
pub fn tenants_signing(conn: &mut DbConnection) -> Result<Vec<TenantId>, StoreError> {
    Ok(signing_keys::table
        .filter(signing_keys::retired_at.is_null())
        .select(signing_keys::tenant_id)
        .distinct()
        .order(signing_keys::tenant_id)
        .load::<String>(conn)?
        .into_iter()
        .map(TenantId::from_trusted)
        .collect())
}

/// Retires every active key of the tenant but `keep`: they stop signing now and stay published
/// until `remove_after`. Returns how many were retired.
pub fn retire_all_but(
    conn: &mut DbConnection,
    tenant: &TenantId,
    keep: &str,
    at: NaiveDateTime,
    remove_after: NaiveDateTime,
) -> Result<usize, StoreError> {
    Ok(diesel::update(
        signing_keys::table
            .filter(signing_keys::tenant_id.eq(tenant.as_str()))
            .filter(signing_keys::kid.ne(keep))
            .filter(signing_keys::retired_at.is_null()),
    )
    .set((
        signing_keys::retired_at.eq(Some(at)),
        signing_keys::remove_after.eq(Some(remove_after)),
    ))
    .execute(conn)?)
}

/// Deletes keys (of every tenant) that left the JWKS before `before`.
pub fn delete_removed(conn: &mut DbConnection, before: NaiveDateTime) -> Result<usize, StoreError> {
    Ok(
        diesel::delete(signing_keys::table.filter(signing_keys::remove_after.lt(before)))
            .execute(conn)?,
    )
}
