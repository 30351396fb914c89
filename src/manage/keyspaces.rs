//! Keyspaces: create, list, read, update defaults.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use super::{Page, PageRequest, double_option};
use crate::audit::AuditContext;
use crate::auth::root_key::ROOT_KEY_PREFIX;
use crate::domain::error_code::ErrorCode;
use crate::domain::ids::{TenantId, new_id};
use crate::domain::inputs::{MAX_TTL_SECONDS, RateLimit, parse_name};
use crate::domain::key::KeyPrefix;
use crate::domain::scope::Scopes;
use crate::domain::time::utc;
use crate::manage::{Context, ManageError};
use crate::store::keyspaces;
use crate::store::models::{KeyspaceChanges, KeyspaceRow};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Environment {
    #[default]
    Live,
    Test,
}

impl Environment {
    fn as_str(self) -> &'static str {
        match self {
            Self::Live => "live",
            Self::Test => "test",
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "Production", "prefix": "acme_live", "environment": "live",
    "default_ttl_seconds": 7776000, "default_scopes": ["documents:read"],
    "default_ratelimit": {"limit": 100, "window_seconds": 60}}))]
pub struct CreateKeyspace {
    pub name: String,
    /// Start of every key in this keyspace: 2–24 of `[a-z0-9_]`, starting with a letter.
    pub prefix: String,
    #[serde(default)]
    pub environment: Environment,
    pub default_ttl_seconds: Option<i64>,
    #[serde(default)]
    pub default_scopes: Vec<String>,
    pub default_ratelimit: Option<RateLimit>,
    /// Whether keys of this keyspace may be exchanged for OAuth access tokens (default true).
    pub token_exchange_enabled: Option<bool>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "Production (EU)", "default_ttl_seconds": null}))]
pub struct UpdateKeyspace {
    pub name: Option<String>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<i64>)]
    pub default_ttl_seconds: Option<Option<i64>>,
    pub default_scopes: Option<Vec<String>>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<RateLimit>)]
    pub default_ratelimit: Option<Option<RateLimit>>,
    pub token_exchange_enabled: Option<bool>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct KeyspaceView {
    pub id: String,
    pub name: String,
    pub prefix: String,
    pub environment: Environment,
    pub default_ttl_seconds: Option<i64>,
    pub default_scopes: Vec<String>,
    pub default_ratelimit: Option<RateLimit>,
    pub token_exchange_enabled: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<KeyspaceRow> for KeyspaceView {
    fn from(row: KeyspaceRow) -> Self {
        Self {
            default_scopes: Scopes::from_json(&row.default_scopes).to_strings(),
            default_ratelimit: RateLimit::from_stored(
                row.default_ratelimit_limit,
                row.default_ratelimit_window,
            ),
            environment: if row.environment == "test" {
                Environment::Test
            } else {
                Environment::Live
            },
            id: row.id,
            name: row.name,
            prefix: row.prefix,
            default_ttl_seconds: row.default_ttl_seconds,
            token_exchange_enabled: row.token_exchange_enabled,
            created_at: utc(row.created_at),
            updated_at: utc(row.updated_at),
        }
    }
}

fn validate_ttl(ttl: Option<i64>) -> Result<Option<i64>, ManageError> {
    match ttl {
        Some(ttl) if !(1..=MAX_TTL_SECONDS).contains(&ttl) => Err(ManageError::invalid(
            "default_ttl_seconds",
            format!("must be between 1 and {MAX_TTL_SECONDS}"),
        )),
        other => Ok(other),
    }
}

fn validate_scopes(field: &str, scopes: &[String]) -> Result<Scopes, ManageError> {
    Scopes::parse(scopes).map_err(|e| ManageError::invalid(field, e.to_string()))
}

fn validate_ratelimit(limit: Option<RateLimit>) -> Result<Option<RateLimit>, ManageError> {
    limit
        .map(|l| l.validate())
        .transpose()
        .map_err(|e| ManageError::invalid("default_ratelimit", e))
}

pub async fn create(
    cx: &Context<'_>,
    audit: &AuditContext,
    tenant: &TenantId,
    input: CreateKeyspace,
) -> Result<KeyspaceView, ManageError> {
    let name = parse_name(&input.name).map_err(|e| ManageError::invalid("name", e))?;
    let prefix = KeyPrefix::parse(&input.prefix)
        .map_err(|e| ManageError::invalid("prefix", e.to_string()))?;
    if prefix.as_str() == ROOT_KEY_PREFIX {
        return Err(ManageError::invalid("prefix", "is reserved for root keys"));
    }
    let default_ttl_seconds = validate_ttl(input.default_ttl_seconds)?;
    let default_scopes = validate_scopes("default_scopes", &input.default_scopes)?;
    let default_ratelimit = validate_ratelimit(input.default_ratelimit)?;
    let at = cx.clock.now();
    let row = KeyspaceRow {
        id: new_id(),
        tenant_id: tenant.as_str().to_owned(),
        name,
        prefix: prefix.as_str().to_owned(),
        environment: input.environment.as_str().to_owned(),
        default_ttl_seconds,
        default_scopes: default_scopes.to_json(),
        default_ratelimit_limit: default_ratelimit.map(|l| l.limit),
        default_ratelimit_window: default_ratelimit.map(|l| l.window_seconds),
        token_exchange_enabled: input.token_exchange_enabled.unwrap_or(true),
        created_at: at,
        updated_at: at,
    };
    let (audit, tenant) = (audit.clone(), tenant.clone());
    let row = cx
        .store
        .transaction(move |conn| {
            if keyspaces::prefix_taken(conn, &tenant, &row.prefix)? {
                return Err(prefix_taken());
            }
            // Two concurrent creates with one prefix: the unique index decides.
            keyspaces::insert(conn, &row).map_err(|e| {
                if e.is_unique_violation() {
                    prefix_taken()
                } else {
                    e.into()
                }
            })?;
            audit.record(
                conn,
                &tenant,
                "keyspace.create",
                ("keyspace", &row.id),
                json!({ "name": row.name, "prefix": row.prefix, "environment": row.environment }),
            )?;
            Ok::<_, ManageError>(row)
        })
        .await?;
    Ok(row.into())
}

fn prefix_taken() -> ManageError {
    ManageError::refused(
        ErrorCode::PrefixTaken,
        "this tenant already has a keyspace with that prefix",
    )
}

pub async fn list(
    cx: &Context<'_>,
    tenant: &TenantId,
    page: PageRequest,
) -> Result<Page<KeyspaceView>, ManageError> {
    let tenant = tenant.clone();
    let rows = {
        let page = page.clone();
        cx.store
            .run(move |conn| {
                keyspaces::list(conn, &tenant, page.before.as_deref(), page.fetch_limit())
            })
            .await?
    };
    Ok(page.page(rows, |r| &r.id, KeyspaceView::from))
}

pub async fn get(
    cx: &Context<'_>,
    tenant: &TenantId,
    id: String,
) -> Result<KeyspaceView, ManageError> {
    let tenant = tenant.clone();
    cx.store
        .run(move |conn| keyspaces::find(conn, &tenant, &id))
        .await?
        .map(KeyspaceView::from)
        .ok_or_else(|| ManageError::NotFound("keyspace"))
}

pub async fn update(
    cx: &Context<'_>,
    audit: &AuditContext,
    tenant: &TenantId,
    id: String,
    input: UpdateKeyspace,
) -> Result<KeyspaceView, ManageError> {
    let mut changes = KeyspaceChanges {
        updated_at: Some(cx.clock.now()),
        ..Default::default()
    };
    let mut changed = serde_json::Map::new();
    if let Some(name) = &input.name {
        let name = parse_name(name).map_err(|e| ManageError::invalid("name", e))?;
        changed.insert("name".into(), json!(name));
        changes.name = Some(name);
    }
    if let Some(ttl) = input.default_ttl_seconds {
        changes.default_ttl_seconds = Some(validate_ttl(ttl)?);
        changed.insert("default_ttl_seconds".into(), json!(ttl));
    }
    if let Some(scopes) = &input.default_scopes {
        let scopes = validate_scopes("default_scopes", scopes)?;
        changed.insert("default_scopes".into(), json!(scopes.to_strings()));
        changes.default_scopes = Some(scopes.to_json());
    }
    if let Some(limit) = input.default_ratelimit {
        let limit = validate_ratelimit(limit)?;
        changes.default_ratelimit_limit = Some(limit.map(|l| l.limit));
        changes.default_ratelimit_window = Some(limit.map(|l| l.window_seconds));
        changed.insert("default_ratelimit".into(), json!(limit));
    }
    if let Some(enabled) = input.token_exchange_enabled {
        changes.token_exchange_enabled = Some(enabled);
        changed.insert("token_exchange_enabled".into(), json!(enabled));
    }
    let (audit, tenant) = (audit.clone(), tenant.clone());
    cx.store
        .transaction(move |conn| {
            if keyspaces::update(conn, &tenant, &id, &changes)? == 0 {
                return Err(ManageError::NotFound("keyspace"));
            }
            if !changed.is_empty() {
                audit.record(
                    conn,
                    &tenant,
                    "keyspace.update",
                    ("keyspace", &id),
                    serde_json::Value::Object(changed),
                )?;
            }
            keyspaces::find(conn, &tenant, &id)?
                .map(KeyspaceView::from)
                .ok_or_else(|| ManageError::NotFound("keyspace"))
        })
        .await
}
