//! Tenants: the isolation boundary.

use diesel::prelude::*;

use super::models::Tenant;
use super::schema::tenants;
use super::{DbConnection, StoreError};
use crate::domain::ids::TenantId;

pub fn insert(conn: &mut DbConnection, tenant: &Tenant) -> Result<(), StoreError> {
    diesel::insert_into(tenants::table)
        .values(tenant)
        .execute(conn)?;
    Ok(())
}

pub fn find(conn: &mut DbConnection, id: &TenantId) -> Result<Option<Tenant>, StoreError> {
    Ok(tenants::table
        .find(id.as_str())
        .select(Tenant::as_select())
        .first(conn)
        .optional()?)
}

/// Every tenant called `name`, oldest first. Names are not unique (sign-up must not tell which
/// are taken): a tenant is identified by its id, and the name is what people read.
pub fn named(conn: &mut DbConnection, name: &str) -> Result<Vec<Tenant>, StoreError> {
    Ok(tenants::table
        .filter(tenants::name.eq(name))
        .order((tenants::created_at.asc(), tenants::id.asc()))
        .select(Tenant::as_select())
        .load(conn)?)
}

/// Holds the tenant's row lock until the transaction ends, so transactions that check a
/// tenant-wide rule (such as "an admin root key remains" or "an owner remains") run one after
/// the other. Writing the row takes the lock on PostgreSQL; SQLite write transactions are
/// exclusive already.
pub fn lock(conn: &mut DbConnection, id: &TenantId) -> Result<(), StoreError> {
    diesel::update(tenants::table.find(id.as_str()))
        .set(tenants::name.eq(tenants::name))
        .execute(conn)?;
    Ok(())
}
