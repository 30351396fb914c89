//! The denylist of revoked access tokens, by `jti`, kept until the token would have expired anyway.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::models::RevokedTokenRow;
use super::schema::revoked_tokens;
use super::{DbConnection, StoreError};
use crate::domain::ids::TenantId;

/// Denies a token; denying it twice is not an error. Returns whether it was newly denied.
/// Runs under a savepoint, so a duplicate does not abort an enclosing PostgreSQL transaction.
pub fn insert(conn: &mut DbConnection, row: &RevokedTokenRow) -> Result<bool, StoreError> {
    use diesel::Connection;
    let inserted = conn.transaction(|conn| {
        diesel::insert_into(revoked_tokens::table)
            .values(row)
            .execute(conn)
    });
    match inserted {
        Ok(_) => Ok(true),
        Err(e) => {
            let err = StoreError::from(e);
            if err.is_unique_violation() {
                Ok(false)
            } else {
                Err(err)
            }
        }
    }
}

pub fn is_revoked(
    conn: &mut DbConnection,
    tenant: &TenantId,
    jti: &str,
) -> Result<bool, StoreError> {
    let count: i64 = revoked_tokens::table
        .filter(revoked_tokens::tenant_id.eq(tenant.as_str()))
        .filter(revoked_tokens::jti.eq(jti))
        .count()
        .get_result(conn)?;
    Ok(count > 0)
}

/// Every entry whose token has not expired by `now`: what a fresh copy of the denylist holds.
pub fn unexpired(
    conn: &mut DbConnection,
    now: NaiveDateTime,
) -> Result<Vec<RevokedTokenRow>, StoreError> {
    Ok(revoked_tokens::table
        .filter(revoked_tokens::expires_at.ge(now))
        .select(RevokedTokenRow::as_select())
        .load(conn)?)
}

/// Forgets entries of tokens that have expired by `now`.
pub fn purge_expired(conn: &mut DbConnection, now: NaiveDateTime) -> Result<usize, StoreError> {
    Ok(
        diesel::delete(revoked_tokens::table.filter(revoked_tokens::expires_at.lt(now)))
            .execute(conn)?,
    )
}
