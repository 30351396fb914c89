//! Keyspaces: a tenant's groups of keys, each with its own prefix and defaults.

use diesel::prelude::*;

use super::models::{KeyspaceChanges, KeyspaceRow};
use super::schema::keyspaces;
use super::{DbConnection, StoreError};
use crate::domain::ids::TenantId;

pub fn insert(conn: &mut DbConnection, row: &KeyspaceRow) -> Result<(), StoreError> {
    diesel::insert_into(keyspaces::table)
        .values(row)
        .execute(conn)?;
    Ok(())
}

pub fn find(
    conn: &mut DbConnection,
    tenant: &TenantId,
    id: &str,
) -> Result<Option<KeyspaceRow>, StoreError> {
    Ok(keyspaces::table
        .filter(keyspaces::tenant_id.eq(tenant.as_str()))
        .filter(keyspaces::id.eq(id))
        .select(KeyspaceRow::as_select())
        .first(conn)
        .optional()?)
}

pub fn prefix_taken(
    conn: &mut DbConnection,
    tenant: &TenantId,
    prefix: &str,
) -> Result<bool, StoreError> {
    let count: i64 = keyspaces::table
        .filter(keyspaces::tenant_id.eq(tenant.as_str()))
        .filter(keyspaces::prefix.eq(prefix))
        .count()
        .get_result(conn)?;
    Ok(count > 0)
}

/// One page, newest first, of ids below `before` (the cursor).
pub fn list(
    conn: &mut DbConnection,
    tenant: &TenantId,
    before: Option<&str>,
    limit: i64,
) -> Result<Vec<KeyspaceRow>, StoreError> {
    let mut query = keyspaces::table
        .filter(keyspaces::tenant_id.eq(tenant.as_str()))
        .select(KeyspaceRow::as_select())
        .order(keyspaces::id.desc())
        .limit(limit)
        .into_boxed();
    if let Some(before) = before {
        query = query.filter(keyspaces::id.lt(before.to_owned()));
    }
    Ok(query.load(conn)?)
}

pub fn update(
    conn: &mut DbConnection,
    tenant: &TenantId,
    id: &str,
    changes: &KeyspaceChanges,
) -> Result<usize, StoreError> {
    Ok(diesel::update(
        keyspaces::table
            .filter(keyspaces::tenant_id.eq(tenant.as_str()))
            .filter(keyspaces::id.eq(id)),
    )
    .set(changes)
    .execute(conn)?)
}

/// Removes `tenant`'s keyspace `id` (its keys must be gone already: they leave tombstones).
pub fn delete(conn: &mut DbConnection, tenant: &TenantId, id: &str) -> Result<(), StoreError> {
    diesel::delete(
        keyspaces::table
            .filter(keyspaces::tenant_id.eq(tenant.as_str()))
            .filter(keyspaces::id.eq(id)),
    )
    .execute(conn)?;
    Ok(())
}
