//! Which users belong to which tenant, and with what role.

use diesel::prelude::*;

use super::models::Membership;
use super::schema::memberships;
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
