//! Key roles as the API shows them, and the short form a key view lists.

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use crate::domain::scope::Scopes;
use crate::domain::time::utc;
use crate::store::models::KeyRoleRow;

/// A key role: a named bundle of scopes that keys hold besides their own.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Role)]
pub struct KeyRoleView {
    #[schema(format = Uuid)]
    pub id: String,
    #[schema(example = "billing-reader")]
    pub name: String,
    #[schema(example = json!(["billing:read", "invoices:read"]))]
    pub scopes: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<KeyRoleRow> for KeyRoleView {
    fn from(row: KeyRoleRow) -> Self {
        let KeyRoleRow {
            id,
            tenant_id: _,
            name,
            scopes,
            created_at,
            updated_at,
        } = row;
        Self {
            id,
            name,
            scopes: Scopes::from_json(&scopes).to_strings(),
            created_at: utc(created_at),
            updated_at: utc(updated_at),
        }
    }
}

/// A role a key holds, as the key shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = HeldRole)]
pub struct HeldRoleView {
    #[schema(format = Uuid)]
    pub id: String,
    #[schema(example = "billing-reader")]
    pub name: String,
}

impl From<&KeyRoleRow> for HeldRoleView {
    fn from(row: &KeyRoleRow) -> Self {
        Self {
            id: row.id.clone(),
            name: row.name.clone(),
        }
    }
}
