//! A keyspace as the API shows it.

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use crate::domain::commands::Environment;
use crate::domain::inputs::RateLimit;
use crate::domain::scope::Scopes;
use crate::domain::time::utc;
use crate::store::models::KeyspaceRow;

#[derive(Debug, Serialize, ToSchema)]
pub struct KeyspaceView {
    #[schema(format = Uuid)]
    pub id: String,
    pub name: String,
    pub prefix: String,
    pub environment: Environment,
    #[schema(required)]
    pub default_ttl_seconds: Option<i64>,
    pub default_scopes: Vec<String>,
    #[schema(required)]
    pub default_ratelimit: Option<RateLimit>,
    pub token_exchange_enabled: bool,
    /// The `aud` of access tokens minted from this keyspace's keys; `null`: the default,
    /// `{issuer}/keyspaces/{id}` below the tenant's issuer.
    #[schema(required)]
    pub token_audience: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<KeyspaceRow> for KeyspaceView {
    fn from(row: KeyspaceRow) -> Self {
        let KeyspaceRow {
            id,
            tenant_id: _,
            name,
            prefix,
            environment,
            default_ttl_seconds,
            default_scopes,
            default_ratelimit_limit,
            default_ratelimit_window,
            token_exchange_enabled,
            created_at,
            updated_at,
            token_audience,
        } = row;
        Self {
            id,
            name,
            prefix,
            environment: Environment::from_stored(&environment),
            default_ttl_seconds,
            default_scopes: Scopes::from_json(&default_scopes).to_strings(),
            default_ratelimit: RateLimit::from_stored(
                default_ratelimit_limit,
                default_ratelimit_window,
            ),
            token_exchange_enabled,
            token_audience,
            created_at: utc(created_at),
            updated_at: utc(updated_at),
        }
    }
}
