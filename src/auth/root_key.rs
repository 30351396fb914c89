//! Root keys: issuing them (shown once) and recognising them on requests.

use chrono::NaiveDateTime;

use crate::domain::ids::{TenantId, new_id};
use crate::domain::key::{KeyHasher, KeyPrefix, PlainKey};
use crate::domain::scope::Scopes;
use crate::store::models::RootKeyRow;
use crate::store::{DbConnection, StoreError, now, root_keys};

/// Every root key starts with this prefix; keyspaces may not use it.
pub const ROOT_KEY_PREFIX: &str = "lk_root";

/// A root key just created: the row as stored and the plaintext, which exists only here.
pub struct IssuedRootKey {
    pub row: RootKeyRow,
    pub key: PlainKey,
}

/// Creates and stores a root key. The caller checks that `scopes` do not exceed its own and
/// records the audit event in the same transaction.
pub fn issue(
    conn: &mut DbConnection,
    hasher: &KeyHasher,
    tenant: &TenantId,
    name: &str,
    scopes: &Scopes,
    expires_at: Option<NaiveDateTime>,
    created_by: &str,
) -> Result<IssuedRootKey, StoreError> {
    let prefix = KeyPrefix::parse(ROOT_KEY_PREFIX).expect("the root key prefix is a valid prefix");
    let generated = hasher.generate(&prefix);
    let row = RootKeyRow {
        id: new_id(),
        tenant_id: tenant.as_str().to_owned(),
        name: name.to_owned(),
        scopes: serde_json::to_string(&scopes.to_strings()).expect("strings serialize"),
        digest: generated.digest.as_bytes().to_vec(),
        start: generated.start,
        created_at: now(),
        expires_at,
        revoked_at: None,
        last_used_at: None,
        created_by: created_by.to_owned(),
    };
    root_keys::insert(conn, &row)?;
    Ok(IssuedRootKey {
        row,
        key: generated.key,
    })
}
