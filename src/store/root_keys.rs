//! Root keys: a tenant's credentials for the management API and verify calls.

use diesel::prelude::*;

use super::models::RootKeyRow;
use super::schema::root_keys;
use super::{DbConnection, StoreError};
use crate::domain::key::KeyDigest;

pub fn insert(conn: &mut DbConnection, row: &RootKeyRow) -> Result<(), StoreError> {
    diesel::insert_into(root_keys::table)
        .values(row)
        .execute(conn)?;
    Ok(())
}

/// Finds a root key by any of its candidate digests (one per live pepper). Not tenant-scoped:
/// this is how a caller's tenant is learned in the first place.
pub fn find_by_digests(
    conn: &mut DbConnection,
    digests: &[KeyDigest],
) -> Result<Option<RootKeyRow>, StoreError> {
    let digests: Vec<&[u8]> = digests.iter().map(|d| d.as_bytes().as_slice()).collect();
    Ok(root_keys::table
        .filter(root_keys::digest.eq_any(digests))
        .select(RootKeyRow::as_select())
        .first(conn)
        .optional()?)
}
