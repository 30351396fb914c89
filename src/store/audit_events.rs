//! The append-only audit log.

use diesel::prelude::*;

use super::models::AuditEventRow;
use super::schema::audit_events;
use super::{DbConnection, StoreError};
use crate::domain::ids::TenantId;

pub fn insert(conn: &mut DbConnection, row: &AuditEventRow) -> Result<(), StoreError> {
    diesel::insert_into(audit_events::table)
        .values(row)
        .execute(conn)?;
    Ok(())
}

/// Which events a listing shows.
#[derive(Clone, Debug, Default)]
pub struct AuditFilter {
    pub action: Option<String>,
    pub actor_id: Option<String>,
    pub target_id: Option<String>,
    pub since: Option<chrono::NaiveDateTime>,
    pub until: Option<chrono::NaiveDateTime>,
}

/// One page, newest first, of ids below `before`.
pub fn list(
    conn: &mut DbConnection,
    tenant: &TenantId,
    filter: &AuditFilter,
    before: Option<&str>,
    limit: i64,
) -> Result<Vec<AuditEventRow>, StoreError> {
    let mut query = audit_events::table
        .filter(audit_events::tenant_id.eq(tenant.as_str()))
        .select(AuditEventRow::as_select())
        .order(audit_events::id.desc())
        .limit(limit)
        .into_boxed();
    if let Some(before) = before {
        query = query.filter(audit_events::id.lt(before.to_owned()));
    }
    if let Some(action) = &filter.action {
        query = query.filter(audit_events::action.eq(action.clone()));
    }
    if let Some(actor) = &filter.actor_id {
        query = query.filter(audit_events::actor_id.eq(actor.clone()));
    }
    if let Some(target) = &filter.target_id {
        query = query.filter(audit_events::target_id.eq(target.clone()));
    }
    if let Some(since) = filter.since {
        query = query.filter(audit_events::occurred_at.ge(since));
    }
    if let Some(until) = filter.until {
        query = query.filter(audit_events::occurred_at.lt(until));
    }
    Ok(query.load(conn)?)
}

/// Deletes up to `limit` events (of any tenant) older than `cutoff`; answers how many went. Safe
/// to run on many nodes at once: a row another node deleted first is simply not deleted twice.
pub fn purge_before(
    conn: &mut DbConnection,
    cutoff: chrono::NaiveDateTime,
    limit: i64,
) -> Result<usize, StoreError> {
    let ids: Vec<String> = audit_events::table
        .filter(audit_events::occurred_at.lt(cutoff))
        .select(audit_events::id)
        .limit(limit)
        .load(conn)?;
    Ok(diesel::delete(audit_events::table.filter(audit_events::id.eq_any(&ids))).execute(conn)?)
}
