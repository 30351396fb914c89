//! Reading the hourly usage rollups (verifications per key, hour and outcome).

use chrono::NaiveDateTime;
use diesel::dsl::sql;
use diesel::prelude::*;
use diesel::sql_types::BigInt;

use super::schema::usage_rollups;
use super::{DbConnection, StoreError};
use crate::domain::ids::TenantId;

/// `SUM(BIGINT)` is NUMERIC on PostgreSQL; cast it back so both backends read an i64.
const TOTAL: &str = "CAST(COALESCE(SUM(count), 0) AS BIGINT)";

/// Verifications per hour and outcome since `since`, for the tenant or one of its keys.
pub fn hourly(
    conn: &mut DbConnection,
    tenant: &TenantId,
    key_id: Option<&str>,
    since: NaiveDateTime,
) -> Result<Vec<(NaiveDateTime, String, i64)>, StoreError> {
    let mut query = usage_rollups::table
        .filter(usage_rollups::tenant_id.eq(tenant.as_str()))
        .filter(usage_rollups::hour.ge(since))
        .group_by((usage_rollups::hour, usage_rollups::outcome))
        .select((
            usage_rollups::hour,
            usage_rollups::outcome,
            sql::<BigInt>(TOTAL),
        ))
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
    Ok(usage_rollups::table
        .filter(usage_rollups::tenant_id.eq(tenant.as_str()))
        .filter(usage_rollups::hour.ge(since))
        .group_by(usage_rollups::key_id)
        .select((usage_rollups::key_id, sql::<BigInt>(TOTAL)))
        .order(sql::<BigInt>(TOTAL).desc())
        .limit(limit)
        .load(conn)?)
}
