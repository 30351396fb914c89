//! Which users belong to which tenant, and with what role.

use diesel::prelude::*;

use super::models::{Membership, Tenant};
use super::schema::{memberships, tenants, users};
use super::{DbConnection, StoreError};
use crate::domain::ids::TenantId;

pub fn insert(conn: &mut DbConnection, membership: &Membership) -> Result<(), StoreError> {
    diesel::insert_into(memberships::table)
        .values(membership)
        .execute(conn)?;
    Ok(())
}

pub fn find(
    conn: &mut DbConnection,
    tenant: &TenantId,
    user_id: &str,
) -> Result<Option<Membership>, StoreError> {
    Ok(memberships::table
        .filter(memberships::tenant_id.eq(tenant.as_str()))
        .filter(memberships::user_id.eq(user_id))
        .select(Membership::as_select())
        .first(conn)
        .optional()?)
}

/// Every tenant a user belongs to, by tenant name (then id: names may repeat).
pub fn list_for_user(
    conn: &mut DbConnection,
    user_id: &str,
) -> Result<Vec<(Membership, Tenant)>, StoreError> {
    Ok(memberships::table
        .inner_join(tenants::table)
        .filter(memberships::user_id.eq(user_id))
        .order((tenants::name.asc(), tenants::id.asc()))
        .select((Membership::as_select(), Tenant::as_select()))
        .load(conn)?)
}

/// Every member of a tenant with their e-mail address, oldest first.
pub fn list_for_tenant(
    conn: &mut DbConnection,
    tenant: &TenantId,
) -> Result<Vec<(Membership, String)>, StoreError> {
    Ok(memberships::table
        .inner_join(users::table)
        .filter(memberships::tenant_id.eq(tenant.as_str()))
        .order((memberships::created_at.asc(), users::email.asc()))
        .select((Membership::as_select(), users::email))
        .load(conn)?)
}

pub fn set_role(
    conn: &mut DbConnection,
    tenant: &TenantId,
    user_id: &str,
    role: &str,
) -> Result<(), StoreError> {
    diesel::update(
        memberships::table
            .filter(memberships::tenant_id.eq(tenant.as_str()))
            .filter(memberships::user_id.eq(user_id)),
    )
    .set(memberships::role.eq(role))
    .execute(conn)?;
    Ok(())
}

pub fn delete(conn: &mut DbConnection, tenant: &TenantId, user_id: &str) -> Result<(), StoreError> {
    diesel::delete(
        memberships::table
            .filter(memberships::tenant_id.eq(tenant.as_str()))
            .filter(memberships::user_id.eq(user_id)),
    )
    .execute(conn)?;
    Ok(())
}

pub fn count_owners(conn: &mut DbConnection, tenant: &TenantId) -> Result<i64, StoreError> {
    Ok(memberships::table
        .filter(memberships::tenant_id.eq(tenant.as_str()))
        .filter(memberships::role.eq("owner"))
        .count()
        .get_result(conn)?)
}
