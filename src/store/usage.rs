//! Usage rollups: verification counts per key, hour and outcome.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text, Timestamp};

use super::schema::{api_keys, usage_rollups};
use super::{DbConnection, StoreError};
use crate::domain::ids::TenantId;

pub struct UsageIncrement {
    pub tenant_id: String,
    pub key_id: String,
    pub hour: NaiveDateTime,
    pub outcome: String,
    pub count: i64,
}

/// Adds counts, creating rows as needed. The upsert is the one statement whose placeholders
/// differ between the backends.
pub fn add(conn: &mut DbConnection, rows: &[UsageIncrement]) -> Result<(), StoreError> {
    let sql = match conn {
        DbConnection::Postgres(_) => {
            "INSERT INTO usage_rollups (tenant_id, key_id, hour, outcome, count) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (key_id, hour, outcome) \
             DO UPDATE SET count = usage_rollups.count + excluded.count"
        }
        DbConnection::Sqlite(_) => {
            "INSERT INTO usage_rollups (tenant_id, key_id, hour, outcome, count) \
             VALUES (?, ?, ?, ?, ?) ON CONFLICT (key_id, hour, outcome) \
             DO UPDATE SET count = usage_rollups.count + excluded.count"
        }
    };
    for row in rows {
        let result = diesel::sql_query(sql)
            .bind::<Text, _>(&row.tenant_id)
            .bind::<Text, _>(&row.key_id)
            .bind::<Timestamp, _>(row.hour)
            .bind::<Text, _>(&row.outcome)
            .bind::<BigInt, _>(row.count)
            .execute(conn);
        match result {
            Ok(_) => {}
            // The key was deleted with its tenant meanwhile: its usage has nowhere to go.
            Err(diesel::result::Error::DatabaseError(
                diesel::result::DatabaseErrorKind::ForeignKeyViolation,
                _,
            )) => {}
            Err(err) => return Err(err.into()),
        }
    }
    Ok(())
}

pub fn touch_last_used(
    conn: &mut DbConnection,
    entries: &[(String, NaiveDateTime)],
) -> Result<(), StoreError> {
    for (key_id, at) in entries {
        diesel::update(
            api_keys::table.filter(api_keys::id.eq(key_id)).filter(
                api_keys::last_used_at
                    .is_null()
                    .or(api_keys::last_used_at.lt(*at)),
            ),
        )
        .set(api_keys::last_used_at.eq(Some(*at)))
        .execute(conn)?;
    }
    Ok(())
}

#[derive(Debug, Clone, Queryable)]
pub struct UsageRow {
    pub key_id: String,
    pub hour: NaiveDateTime,
    pub outcome: String,
    pub count: i64,
}

/// Hourly counts of one key (or, with `key_id = None`, the whole tenant) since `since`.
pub fn hourly(
    conn: &mut DbConnection,
    tenant: &TenantId,
    key_id: Option<&str>,
    since: NaiveDateTime,
    until: NaiveDateTime,
) -> Result<Vec<UsageRow>, StoreError> {
    let mut query = usage_rollups::table
        .filter(usage_rollups::tenant_id.eq(tenant.as_str()))
        .filter(usage_rollups::hour.ge(since))
        .filter(usage_rollups::hour.lt(until))
        .select((
            usage_rollups::key_id,
            usage_rollups::hour,
            usage_rollups::outcome,
            usage_rollups::count,
        ))
        .order((usage_rollups::hour.asc(), usage_rollups::outcome.asc()))
        .into_boxed();
    if let Some(key_id) = key_id {
        query = query.filter(usage_rollups::key_id.eq(key_id.to_owned()));
    }
    Ok(query.load(conn)?)
}

/// The keys with the most verifications since `since`, busiest first.
pub fn top_keys(
    conn: &mut DbConnection,
    tenant: &TenantId,
    since: NaiveDateTime,
    limit: i64,
) -> Result<Vec<(String, i64)>, StoreError> {
    // `SUM(BIGINT)` is NUMERIC on PostgreSQL; cast it back so both backends read an i64.
    const TOTAL: &str = "CAST(COALESCE(SUM(count), 0) AS BIGINT)";
    Ok(usage_rollups::table
        .filter(usage_rollups::tenant_id.eq(tenant.as_str()))
        .filter(usage_rollups::hour.ge(since))
        .group_by(usage_rollups::key_id)
        .select((usage_rollups::key_id, diesel::dsl::sql::<BigInt>(TOTAL)))
        .order(diesel::dsl::sql::<BigInt>(TOTAL).desc())
        .limit(limit)
        .load(conn)?)
}
