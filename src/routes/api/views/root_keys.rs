//! A root key as the API shows it: never the secret, never its digest; and, once, a new one's
//! plaintext.

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use crate::auth::root_key::IssuedRootKey;
use crate::domain::key::PlainKey;
use crate::domain::scope::Scopes;
use crate::domain::time::utc;
use crate::store::models::RootKeyRow;

#[derive(Debug, Serialize, ToSchema)]
pub struct RootKeyView {
    #[schema(format = Uuid)]
    pub id: String,
    pub name: String,
    #[schema(example = "lk_root_Xy3Q")]
    pub start: String,
    pub scopes: Vec<String>,
    pub created_at: DateTime<Utc>,
    #[schema(required)]
    pub expires_at: Option<DateTime<Utc>>,
    #[schema(required)]
    pub revoked_at: Option<DateTime<Utc>>,
    /// Who created it: `root_key:<id>`, `user:<id>` or `cli`.
    pub created_by: String,
}

impl From<RootKeyRow> for RootKeyView {
    fn from(row: RootKeyRow) -> Self {
        let RootKeyRow {
            id,
            tenant_id: _,
            name,
            scopes,
            digest: _,
            start,
            created_at,
            expires_at,
            revoked_at,
            last_used_at: _,
            created_by,
        } = row;
        Self {
            id,
            name,
            start,
            scopes: Scopes::from_json(&scopes).to_strings(),
            created_at: utc(created_at),
            expires_at: expires_at.map(utc),
            revoked_at: revoked_at.map(utc),
            created_by,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedRootKey {
    #[serde(flatten)]
    pub view: RootKeyView,
    /// The plaintext root key, shown only in this response.
    #[schema(value_type = String)]
    #[serde(serialize_with = "PlainKey::serialize_exposed")]
    pub key: PlainKey,
}

impl From<IssuedRootKey> for CreatedRootKey {
    fn from(issued: IssuedRootKey) -> Self {
        let IssuedRootKey { row, key } = issued;
        Self {
            view: row.into(),
            key,
        }
    }
}
