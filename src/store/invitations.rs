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

pub fn mark_accepted(
    conn: &mut DbConnection,
    id: &str,
    at: NaiveDateTime,
) -> Result<(), StoreError> {
    diesel::update(invitations::table.find(id))
        .set(invitations::accepted_at.eq(at))
        .execute(conn)?;
    Ok(())
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
