//! Invitations to join a tenant, found by the digest of the token in the invite link.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::models::InvitationRow;
use super::schema::invitations;
use super::{DbConnection, StoreError};
use crate::domain::ids::TenantId;

pub fn insert(conn: &mut DbConnection, row: &InvitationRow) -> Result<(), StoreError> {
    diesel::insert_into(invitations::table)
        .values(row)
        .execute(conn)?;
    Ok(())
}

/// Not tenant-scoped: the token is how the invitee learns which tenant invited them.
pub fn find_by_digest(
    conn: &mut DbConnection,
    digest: &[u8],
) -> Result<Option<InvitationRow>, StoreError> {
    Ok(invitations::table
        .filter(invitations::token_digest.eq(digest))
        .select(InvitationRow::as_select())
        .first(conn)
        .optional()?)
}

/// Invitations not yet accepted and not expired, newest first.
pub fn list_pending(
    conn: &mut DbConnection,
    tenant: &TenantId,
    now: NaiveDateTime,
) -> Result<Vec<InvitationRow>, StoreError> {
    Ok(invitations::table
        .filter(invitations::tenant_id.eq(tenant.as_str()))
        .filter(invitations::accepted_at.is_null())
        .filter(invitations::expires_at.gt(now))
        .order(invitations::created_at.desc())
        .select(InvitationRow::as_select())
        .load(conn)?)
}

/// Marks an invitation accepted unless it already was; answers whether this call did.
pub fn claim(conn: &mut DbConnection, id: &str, at: NaiveDateTime) -> Result<bool, StoreError> {
    // The condition is what makes the link work once: on PostgreSQL a second transaction
    // waits on the row lock, then finds it accepted and updates nothing.
    let claimed = diesel::update(
        invitations::table
            .find(id)
            .filter(invitations::accepted_at.is_null()),
    )
    .set(invitations::accepted_at.eq(at))
    .execute(conn)?;
    Ok(claimed == 1)
}

/// Withdraws pending invitations of one address (a new invitation replaces the old one).
pub fn delete_pending_for_email(
    conn: &mut DbConnection,
    tenant: &TenantId,
    email: &str,
) -> Result<usize, StoreError> {
    Ok(diesel::delete(
        invitations::table
            .filter(invitations::tenant_id.eq(tenant.as_str()))
            .filter(invitations::email.eq(email))
            .filter(invitations::accepted_at.is_null()),
    )
    .execute(conn)?)
}

/// Withdraws one pending invitation; returns its row if there was one.
pub fn delete_pending(
    conn: &mut DbConnection,
    tenant: &TenantId,
    id: &str,
) -> Result<Option<InvitationRow>, StoreError> {
    let found = invitations::table
        .filter(invitations::tenant_id.eq(tenant.as_str()))
        .filter(invitations::id.eq(id))
        .filter(invitations::accepted_at.is_null())
        .select(InvitationRow::as_select())
        .first(conn)
        .optional()?;
    if found.is_some() {
        diesel::delete(invitations::table.find(id)).execute(conn)?;
    }
    Ok(found)
}
