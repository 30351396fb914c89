//! JWT signing keys, shared by every node (not tenant-owned: one issuer per deployment).

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::models::SigningKeyRow;
use super::schema::signing_keys;
use super::{DbConnection, StoreError};

pub fn insert(conn: &mut DbConnection, row: &SigningKeyRow) -> Result<(), StoreError> {
    diesel::insert_into(signing_keys::table)
        .values(row)
        .execute(conn)?;
    Ok(())
}

/// Keys still published at `now` (never retired, or retired but still verifying), newest first.
pub fn published(
    conn: &mut DbConnection,
    now: NaiveDateTime,
) -> Result<Vec<SigningKeyRow>, StoreError> {
    Ok(signing_keys::table
        .filter(
            signing_keys::remove_after
                .is_null()
                .or(signing_keys::remove_after.gt(now)),
        )
        .select(SigningKeyRow::as_select())
        .order((signing_keys::created_at.desc(), signing_keys::kid.desc()))
        .load(conn)?)
}

/// Retires every active key but `keep`: they stop signing now and stay published until
/// `remove_after`. Returns how many were retired.
pub fn retire_all_but(
    conn: &mut DbConnection,
    keep: &str,
    at: NaiveDateTime,
    remove_after: NaiveDateTime,
) -> Result<usize, StoreError> {
    Ok(diesel::update(
        signing_keys::table
            .filter(signing_keys::kid.ne(keep))
            .filter(signing_keys::retired_at.is_null()),
    )
    .set((
        signing_keys::retired_at.eq(Some(at)),
        signing_keys::remove_after.eq(Some(remove_after)),
    ))
    .execute(conn)?)
}

/// Deletes keys that left the JWKS before `before`.
pub fn delete_removed(conn: &mut DbConnection, before: NaiveDateTime) -> Result<usize, StoreError> {
    Ok(
        diesel::delete(signing_keys::table.filter(signing_keys::remove_after.lt(before)))
            .execute(conn)?,
    )
}
