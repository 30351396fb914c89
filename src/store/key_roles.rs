//! Key roles (`roles`) and the keys that hold them (`key_roles`). Every query is tenant-scoped.

use std::collections::HashMap;

use diesel::prelude::*;

use super::models::{ApiKeyRow, KeyRoleGrantRow, KeyRoleRow, KeyRoleRowChanges, KeyWithRoles};
use super::schema::{api_keys, key_roles, roles};
use super::{DbConnection, StoreError};
use crate::domain::ids::TenantId;
use crate::domain::key::KeyDigest;
use crate::domain::key_role::{KeyRoleRef, KeyRoleRefs};

pub fn insert(conn: &mut DbConnection, row: &KeyRoleRow) -> Result<(), StoreError> {
    diesel::insert_into(roles::table)
        .values(row)
        .execute(conn)?;
    Ok(())
}

pub fn find(
    conn: &mut DbConnection,
    tenant: &TenantId,
    id: &str,
) -> Result<Option<KeyRoleRow>, StoreError> {
    Ok(roles::table
        .filter(roles::tenant_id.eq(tenant.as_str()))
        .filter(roles::id.eq(id))
        .select(KeyRoleRow::as_select())
        .first(conn)
        .optional()?)
}

/// The tenant's roles, newest first.
pub fn list(
    conn: &mut DbConnection,
    tenant: &TenantId,
    before: Option<&str>,
    limit: i64,
) -> Result<Vec<KeyRoleRow>, StoreError> {
    let mut query = roles::table
        .filter(roles::tenant_id.eq(tenant.as_str()))
        .select(KeyRoleRow::as_select())
        .order(roles::id.desc())
        .limit(limit)
        .into_boxed();
    if let Some(before) = before {
        query = query.filter(roles::id.lt(before.to_owned()));
    }
    Ok(query.load(conn)?)
}

pub fn update(
    conn: &mut DbConnection,
    tenant: &TenantId,
    id: &str,
    changes: &KeyRoleRowChanges,
) -> Result<usize, StoreError> {
    Ok(diesel::update(
        roles::table
            .filter(roles::tenant_id.eq(tenant.as_str()))
            .filter(roles::id.eq(id)),
    )
    .set(changes)
    .execute(conn)?)
}

/// Deletes a role; the keys holding it lose it (`key_roles` cascades, and is cleared here too
/// so SQLite without foreign keys agrees).
pub fn delete(conn: &mut DbConnection, tenant: &TenantId, id: &str) -> Result<usize, StoreError> {
    diesel::delete(
        key_roles::table
            .filter(key_roles::tenant_id.eq(tenant.as_str()))
            .filter(key_roles::role_id.eq(id)),
    )
    .execute(conn)?;
    Ok(diesel::delete(
        roles::table
            .filter(roles::tenant_id.eq(tenant.as_str()))
            .filter(roles::id.eq(id)),
    )
    .execute(conn)?)
}

/// The tenant's roles that `refs` name, by id or name; `Err` with how many named none.
pub fn resolve(
    conn: &mut DbConnection,
    tenant: &TenantId,
    refs: &KeyRoleRefs,
) -> Result<Result<Vec<KeyRoleRow>, usize>, StoreError> {
    if refs.is_empty() {
        return Ok(Ok(Vec::new()));
    }
    let (mut ids, mut names) = (Vec::new(), Vec::new());
    for r in refs.iter() {
        match r {
            KeyRoleRef::Id(id) => ids.push(id.as_str()),
            KeyRoleRef::Name(name) => names.push(name.as_str()),
        }
    }
    let found: Vec<KeyRoleRow> = roles::table
        .filter(roles::tenant_id.eq(tenant.as_str()))
        .filter(roles::id.eq_any(&ids).or(roles::name.eq_any(&names)))
        .select(KeyRoleRow::as_select())
        .order(roles::name.asc())
        .load(conn)?;
    let names_row = |r: &KeyRoleRef, row: &KeyRoleRow| match r {
        KeyRoleRef::Id(id) => row.id == id.as_str(),
        KeyRoleRef::Name(name) => row.name == name.as_str(),
    };
    let unknown = refs
        .iter()
        .filter(|r| !found.iter().any(|row| names_row(r, row)))
        .count();
    if unknown > 0 {
        return Ok(Err(unknown));
    }
    Ok(Ok(found))
}

/// Makes `roles` the whole set of roles `key_id` holds.
pub fn set_for_key(
    conn: &mut DbConnection,
    tenant: &TenantId,
    key_id: &str,
    roles: &[KeyRoleRow],
) -> Result<(), StoreError> {
    diesel::delete(
        key_roles::table
            .filter(key_roles::tenant_id.eq(tenant.as_str()))
            .filter(key_roles::key_id.eq(key_id)),
    )
    .execute(conn)?;
    // One row at a time: batch inserts do not span both backends (and a key holds at most 16).
    for role in roles {
        let grant = KeyRoleGrantRow {
            key_id: key_id.to_owned(),
            role_id: role.id.clone(),
            tenant_id: tenant.as_str().to_owned(),
        };
        diesel::insert_into(key_roles::table)
            .values(&grant)
            .execute(conn)?;
    }
    Ok(())
}

/// The roles each of `key_ids` holds, by name.
pub fn of_keys(
    conn: &mut DbConnection,
    tenant: &TenantId,
    key_ids: &[&str],
) -> Result<HashMap<String, Vec<KeyRoleRow>>, StoreError> {
    let mut held: HashMap<String, Vec<KeyRoleRow>> = HashMap::new();
    for chunk in key_ids.chunks(500) {
        let rows: Vec<(String, KeyRoleRow)> = key_roles::table
            .inner_join(roles::table)
            .filter(key_roles::tenant_id.eq(tenant.as_str()))
            .filter(roles::tenant_id.eq(tenant.as_str()))
            .filter(key_roles::key_id.eq_any(chunk))
            .select((key_roles::key_id, KeyRoleRow::as_select()))
            .order(roles::name.asc())
            .load(conn)?;
        for (key_id, role) in rows {
            held.entry(key_id).or_default().push(role);
        }
    }
    Ok(held)
}

/// The roles one key holds, by name.
pub fn of_key(
    conn: &mut DbConnection,
    tenant: &TenantId,
    key_id: &str,
) -> Result<Vec<KeyRoleRow>, StoreError> {
    Ok(of_keys(conn, tenant, &[key_id])?
        .remove(key_id)
        .unwrap_or_default())
}

/// The verification lookup with the key's roles: see [`super::api_keys::find_by_digests_in`].
pub fn find_key_with_roles(
    conn: &mut DbConnection,
    tenant: &TenantId,
    digests: &[KeyDigest],
) -> Result<Option<KeyWithRoles>, StoreError> {
    let Some(key) = super::api_keys::find_by_digests_in(conn, tenant, digests)? else {
        return Ok(None);
    };
    let roles = of_key(conn, tenant, &key.id)?;
    Ok(Some(KeyWithRoles { key, roles }))
}

/// The digests of every key holding `role_id`, to evict them when it changes.
pub fn digests_of_holders(
    conn: &mut DbConnection,
    tenant: &TenantId,
    role_id: &str,
) -> Result<Vec<KeyDigest>, StoreError> {
    let digests: Vec<Vec<u8>> = key_roles::table
        .inner_join(api_keys::table)
        .filter(key_roles::tenant_id.eq(tenant.as_str()))
        .filter(api_keys::tenant_id.eq(tenant.as_str()))
        .filter(key_roles::role_id.eq(role_id))
        .select(api_keys::digest)
        .load(conn)?;
    Ok(digests
        .iter()
        .filter_map(|d| KeyDigest::from_slice(d))
        .collect())
}

/// Gives `to` the roles `from` holds (a rotated key keeps its configuration).
pub fn copy(
    conn: &mut DbConnection,
    tenant: &TenantId,
    from: &ApiKeyRow,
    to: &ApiKeyRow,
) -> Result<(), StoreError> {
    let roles = of_key(conn, tenant, &from.id)?;
    set_for_key(conn, tenant, &to.id, &roles)
}
