//! Webhook endpoints and the outbox of their deliveries (one row per event and endpoint).

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::sql_types::{Integer, Text, Timestamp};

use super::models::{WebhookDeliveryRow, WebhookEndpointChanges, WebhookEndpointRow};
use super::schema::{webhook_deliveries, webhook_endpoints};
use super::{DbConnection, StoreError, numbered};
use crate::domain::ids::TenantId;

/// A delivery waiting for its next attempt.
pub const PENDING: &str = "pending";
/// The endpoint answered 2xx.
pub const SUCCEEDED: &str = "succeeded";
/// Every attempt for three days failed: no more attempts unless redelivered.
pub const FAILED: &str = "failed";

pub fn insert_endpoint(
    conn: &mut DbConnection,
    row: &WebhookEndpointRow,
) -> Result<(), StoreError> {
    diesel::insert_into(webhook_endpoints::table)
        .values(row)
        .execute(conn)?;
    Ok(())
}

pub fn find_endpoint(
    conn: &mut DbConnection,
    tenant: &TenantId,
    id: &str,
) -> Result<Option<WebhookEndpointRow>, StoreError> {
    Ok(webhook_endpoints::table
        .filter(webhook_endpoints::tenant_id.eq(tenant.as_str()))
        .filter(webhook_endpoints::id.eq(id))
        .select(WebhookEndpointRow::as_select())
        .first(conn)
        .optional()?)
}

/// The tenant's endpoints, newest first.
pub fn list_endpoints(
    conn: &mut DbConnection,
    tenant: &TenantId,
    before: Option<&str>,
    limit: i64,
) -> Result<Vec<WebhookEndpointRow>, StoreError> {
    let mut query = webhook_endpoints::table
        .filter(webhook_endpoints::tenant_id.eq(tenant.as_str()))
        .select(WebhookEndpointRow::as_select())
        .order(webhook_endpoints::id.desc())
        .limit(limit)
        .into_boxed();
    if let Some(before) = before {
        query = query.filter(webhook_endpoints::id.lt(before.to_owned()));
    }
    Ok(query.load(conn)?)
}

/// The tenant's enabled endpoints (each announces the events its own list names).
pub fn enabled_endpoints(
    conn: &mut DbConnection,
    tenant: &TenantId,
) -> Result<Vec<WebhookEndpointRow>, StoreError> {
    Ok(webhook_endpoints::table
        .filter(webhook_endpoints::tenant_id.eq(tenant.as_str()))
        .filter(webhook_endpoints::enabled.eq(true))
        .select(WebhookEndpointRow::as_select())
        .order(webhook_endpoints::id.asc())
        .load(conn)?)
}

pub fn update_endpoint(
    conn: &mut DbConnection,
    tenant: &TenantId,
    id: &str,
    changes: &WebhookEndpointChanges,
) -> Result<usize, StoreError> {
    Ok(diesel::update(
        webhook_endpoints::table
            .filter(webhook_endpoints::tenant_id.eq(tenant.as_str()))
            .filter(webhook_endpoints::id.eq(id)),
    )
    .set(changes)
    .execute(conn)?)
}

/// Deletes the endpoint and (by cascade) its deliveries; whether it existed.
pub fn delete_endpoint(
    conn: &mut DbConnection,
    tenant: &TenantId,
    id: &str,
) -> Result<bool, StoreError> {
    diesel::delete(
        webhook_deliveries::table
            .filter(webhook_deliveries::tenant_id.eq(tenant.as_str()))
            .filter(webhook_deliveries::endpoint_id.eq(id)),
    )
    .execute(conn)?;
    let deleted = diesel::delete(
        webhook_endpoints::table
            .filter(webhook_endpoints::tenant_id.eq(tenant.as_str()))
            .filter(webhook_endpoints::id.eq(id)),
    )
    .execute(conn)?;
    Ok(deleted > 0)
}

pub fn insert_deliveries(
    conn: &mut DbConnection,
    rows: &[WebhookDeliveryRow],
) -> Result<(), StoreError> {
    // One statement per row: SQLite's bind limit is far from a batch, but the batch is small
    // (one per endpoint) and both backends take it the same way.
    for row in rows {
        diesel::insert_into(webhook_deliveries::table)
            .values(row)
            .execute(conn)?;
    }
    Ok(())
}

/// Due deliveries of enabled endpoints that no live claim holds, oldest due first, claimed until
/// `lease_until`. Call it inside a write transaction: on PostgreSQL the rows are locked with
/// `SKIP LOCKED`, so nodes claiming at once take different rows; on SQLite the transaction holds
/// the write lock. A node that dies holding a claim loses it at `lease_until`.
pub fn claim_due(
    conn: &mut DbConnection,
    now: NaiveDateTime,
    lease_until: NaiveDateTime,
    limit: i32,
) -> Result<Vec<WebhookDeliveryRow>, StoreError> {
    #[derive(QueryableByName)]
    struct Due {
        #[diesel(sql_type = Text)]
        id: String,
    }
    const DUE: &str = "SELECT d.id FROM webhook_deliveries d \
        JOIN webhook_endpoints e ON e.id = d.endpoint_id \
        WHERE d.status = 'pending' AND d.next_attempt_at <= :now \
        AND (d.claimed_until IS NULL OR d.claimed_until < :now) AND e.enabled \
        ORDER BY d.next_attempt_at, d.id LIMIT :limit";
    let mut sql = numbered(conn, DUE, &["now", "limit"]);
    if let DbConnection::Postgres(_) = conn {
        sql.push_str(" FOR UPDATE OF d SKIP LOCKED");
    }
    let due: Vec<Due> = diesel::sql_query(sql)
        .bind::<Timestamp, _>(now)
        .bind::<Integer, _>(limit)
        .load(conn)?;
    if due.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<String> = due.into_iter().map(|d| d.id).collect();
    diesel::update(webhook_deliveries::table.filter(webhook_deliveries::id.eq_any(&ids)))
        .set(webhook_deliveries::claimed_until.eq(lease_until))
        .execute(conn)?;
    Ok(webhook_deliveries::table
        .filter(webhook_deliveries::id.eq_any(&ids))
        .select(WebhookDeliveryRow::as_select())
        .order((
            webhook_deliveries::next_attempt_at.asc(),
            webhook_deliveries::id.asc(),
        ))
        .load(conn)?)
}

/// What one attempt came to.
#[derive(Debug)]
pub struct AttemptRecord<'a> {
    pub at: NaiveDateTime,
    pub status_code: Option<i32>,
    pub latency_ms: i32,
    pub error: Option<&'a str>,
    /// `None`: succeeded. `Some(Some(t))`: try again at `t`. `Some(None)`: give up.
    pub retry: Option<Option<NaiveDateTime>>,
}

/// Records an attempt of a delivery this worker claimed until `lease`; false (nothing written)
/// if the claim was lost meanwhile (another node took the row over after the lease ran out).
pub fn record_attempt(
    conn: &mut DbConnection,
    id: &str,
    lease: NaiveDateTime,
    attempt: &AttemptRecord<'_>,
) -> Result<bool, StoreError> {
    let (status, next, delivered) = match attempt.retry {
        None => (SUCCEEDED, None, Some(attempt.at)),
        Some(Some(next)) => (PENDING, Some(next), None),
        Some(None) => (FAILED, None, None),
    };
    let updated = diesel::update(
        webhook_deliveries::table
            .filter(webhook_deliveries::id.eq(id))
            .filter(webhook_deliveries::claimed_until.eq(lease)),
    )
    .set((
        webhook_deliveries::status.eq(status),
        webhook_deliveries::attempts.eq(webhook_deliveries::attempts + 1),
        webhook_deliveries::next_attempt_at.eq(next),
        webhook_deliveries::claimed_until.eq(None::<NaiveDateTime>),
        webhook_deliveries::last_attempt_at.eq(Some(attempt.at)),
        webhook_deliveries::last_status_code.eq(attempt.status_code),
        webhook_deliveries::last_latency_ms.eq(Some(attempt.latency_ms)),
        webhook_deliveries::last_error.eq(attempt.error),
        webhook_deliveries::delivered_at.eq(delivered),
    ))
    .execute(conn)?;
    Ok(updated > 0)
}

/// An endpoint's deliveries, newest first.
pub fn list_deliveries(
    conn: &mut DbConnection,
    tenant: &TenantId,
    endpoint_id: &str,
    before: Option<&str>,
    limit: i64,
) -> Result<Vec<WebhookDeliveryRow>, StoreError> {
    let mut query = webhook_deliveries::table
        .filter(webhook_deliveries::tenant_id.eq(tenant.as_str()))
        .filter(webhook_deliveries::endpoint_id.eq(endpoint_id))
        .select(WebhookDeliveryRow::as_select())
        .order(webhook_deliveries::id.desc())
        .limit(limit)
        .into_boxed();
    if let Some(before) = before {
        query = query.filter(webhook_deliveries::id.lt(before.to_owned()));
    }
    Ok(query.load(conn)?)
}

pub fn find_delivery(
    conn: &mut DbConnection,
    tenant: &TenantId,
    endpoint_id: &str,
    id: &str,
) -> Result<Option<WebhookDeliveryRow>, StoreError> {
    Ok(webhook_deliveries::table
        .filter(webhook_deliveries::tenant_id.eq(tenant.as_str()))
        .filter(webhook_deliveries::endpoint_id.eq(endpoint_id))
        .filter(webhook_deliveries::id.eq(id))
        .select(WebhookDeliveryRow::as_select())
        .first(conn)
        .optional()?)
}

/// Makes a delivery due again now (a redelivery): pending, unclaimed, with its attempts kept.
pub fn reschedule(
    conn: &mut DbConnection,
    tenant: &TenantId,
    id: &str,
    at: NaiveDateTime,
) -> Result<(), StoreError> {
    diesel::update(
        webhook_deliveries::table
            .filter(webhook_deliveries::tenant_id.eq(tenant.as_str()))
            .filter(webhook_deliveries::id.eq(id)),
    )
    .set((
        webhook_deliveries::status.eq(PENDING),
        webhook_deliveries::next_attempt_at.eq(Some(at)),
        webhook_deliveries::claimed_until.eq(None::<NaiveDateTime>),
    ))
    .execute(conn)?;
    Ok(())
}

/// Notes a failed attempt on the endpoint: the first failure since the last success starts its
/// failing period. Answers when that period started.
pub fn note_failure(
    conn: &mut DbConnection,
    tenant: &TenantId,
    id: &str,
    at: NaiveDateTime,
) -> Result<Option<NaiveDateTime>, StoreError> {
    diesel::update(
        webhook_endpoints::table
            .filter(webhook_endpoints::tenant_id.eq(tenant.as_str()))
            .filter(webhook_endpoints::id.eq(id))
            .filter(webhook_endpoints::failing_since.is_null()),
    )
    .set(webhook_endpoints::failing_since.eq(Some(at)))
    .execute(conn)?;
    Ok(find_endpoint(conn, tenant, id)?.and_then(|e| e.failing_since))
}

/// A success ends the endpoint's failing period.
pub fn note_success(
    conn: &mut DbConnection,
    tenant: &TenantId,
    id: &str,
) -> Result<(), StoreError> {
    diesel::update(
        webhook_endpoints::table
            .filter(webhook_endpoints::tenant_id.eq(tenant.as_str()))
            .filter(webhook_endpoints::id.eq(id))
            .filter(webhook_endpoints::failing_since.is_not_null()),
    )
    .set(webhook_endpoints::failing_since.eq(None::<NaiveDateTime>))
    .execute(conn)?;
    Ok(())
}
