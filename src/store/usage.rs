//! Usage rollups: verification counts per key, hour and outcome.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text, Timestamp};

use super::schema::usage_rollups;
use super::{DbConnection, StoreError};
use crate::domain::ids::TenantId;

pub struct UsageIncrement {
    pub tenant_id: String,
    pub key_id: String,
    pub hour: NaiveDateTime,
    pub outcome: String,
    pub count: i64,
}

/// Rows per statement. A flush can hold one row per key verified in the last seconds; one
/// statement per row made a flush of 10,000 keys cost seconds of store time.
const ROWS_PER_STATEMENT: usize = 500;

/// `(…), (…)` with `rows` tuples of `width` placeholders, numbered for PostgreSQL.
fn values_list(conn: &DbConnection, rows: usize, width: usize) -> String {
    let mut sql = String::with_capacity(rows * width * 5);
    for row in 0..rows {
        sql.push_str(if row == 0 { "(" } else { ", (" });
        for column in 0..width {
            if column > 0 {
                sql.push_str(", ");
            }
            match conn {
                DbConnection::Postgres(_) => {
                    sql.push('$');
                    sql.push_str(&(row * width + column + 1).to_string());
                }
                DbConnection::Sqlite(_) => sql.push('?'),
            }
        }
        sql.push(')');
    }
    sql
}

/// Adds counts, creating rows as needed, in statements of [`ROWS_PER_STATEMENT`] rows. Counts
/// of a key deleted meanwhile (with its tenant) are dropped: they have nowhere to go.
pub fn add(conn: &mut DbConnection, rows: &[UsageIncrement]) -> Result<(), StoreError> {
    for chunk in rows.chunks(ROWS_PER_STATEMENT) {
        // `WHERE` before `ON CONFLICT` also keeps SQLite from reading the latter as a join's.
        let sql = format!(
            "INSERT INTO usage_rollups (tenant_id, key_id, hour, outcome, count) \
             SELECT v.column1, v.column2, v.column3, v.column4, v.column5 FROM (VALUES {}) AS v \
             WHERE EXISTS (SELECT 1 FROM api_keys k WHERE k.id = v.column2) \
             ON CONFLICT (key_id, hour, outcome) \
             DO UPDATE SET count = usage_rollups.count + excluded.count",
            values_list(conn, chunk.len(), 5)
        );
        let mut query = diesel::sql_query(sql).into_boxed();
        for row in chunk {
            query = query
                .bind::<Text, _>(&row.tenant_id)
                .bind::<Text, _>(&row.key_id)
                .bind::<Timestamp, _>(row.hour)
                .bind::<Text, _>(&row.outcome)
                .bind::<BigInt, _>(row.count);
        }
        query.execute(conn)?;
    }
    Ok(())
}

/// Moves each key's `last_used_at` forward (never back), [`ROWS_PER_STATEMENT`] keys per statement.
pub fn touch_last_used(
    conn: &mut DbConnection,
    entries: &[(String, NaiveDateTime)],
) -> Result<(), StoreError> {
    for chunk in entries.chunks(ROWS_PER_STATEMENT) {
        let sql = format!(
            "UPDATE api_keys SET last_used_at = v.column2 FROM (VALUES {}) AS v \
             WHERE api_keys.id = v.column1 \
             AND (api_keys.last_used_at IS NULL OR api_keys.last_used_at < v.column2)",
            values_list(conn, chunk.len(), 2)
        );
        let mut query = diesel::sql_query(sql).into_boxed();
        for (key_id, at) in chunk {
            query = query.bind::<Text, _>(key_id).bind::<Timestamp, _>(*at);
        }
        query.execute(conn)?;
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

/// Deletes up to `limit` hourly rollups (of any tenant) of hours before `cutoff`; answers how
/// many went. Safe to run on many nodes at once, like [`super::audit_events::purge_before`].
pub fn purge_before(
    conn: &mut DbConnection,
    cutoff: NaiveDateTime,
    limit: i64,
) -> Result<usize, StoreError> {
    let rows: Vec<(String, NaiveDateTime, String)> = usage_rollups::table
        .filter(usage_rollups::hour.lt(cutoff))
        .select((
            usage_rollups::key_id,
            usage_rollups::hour,
            usage_rollups::outcome,
        ))
        .limit(limit)
        .load(conn)?;
    let mut purged = 0;
    for (key_id, hour, outcome) in rows {
        purged += diesel::delete(
            usage_rollups::table
                .filter(usage_rollups::key_id.eq(key_id))
                .filter(usage_rollups::hour.eq(hour))
                .filter(usage_rollups::outcome.eq(outcome)),
        )
        .execute(conn)?;
    }
    Ok(purged)
}
