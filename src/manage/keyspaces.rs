//! Keyspaces: create, list, read, update defaults.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::json;
use utoipa::ToSchema;

use super::{Page, PageRequest};
use crate::audit::AuditContext;
use crate::auth::root_key::ROOT_KEY_PREFIX;
use crate::domain::commands::{Environment, KeyspaceChanges, NewKeyspace};
use crate::domain::error_code::ErrorCode;
use crate::domain::ids::{KeyspaceId, TenantId, new_id};
use crate::domain::inputs::RateLimit;
use crate::domain::scope::Scopes;
use crate::domain::time::utc;
use crate::events::{Change, Event, Subject};
use crate::manage::{Context, ManageError};
use crate::store::keyspaces;
use crate::store::models::{self, KeyspaceRow};

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
            environment: Environment::from_stored(&row.environment),
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

pub async fn create(
    cx: &Context<'_>,
    audit: &AuditContext,
    tenant: &TenantId,
    new: NewKeyspace,
) -> Result<KeyspaceView, ManageError> {
    if new.prefix.as_str() == ROOT_KEY_PREFIX {
        return Err(ManageError::invalid("prefix", "is reserved for root keys"));
    }
    let default_ratelimit = new.default_ratelimit;
    let at = cx.clock.now();
    let row = KeyspaceRow {
        id: new_id(),
        tenant_id: tenant.as_str().to_owned(),
        name: new.name,
        prefix: new.prefix.as_str().to_owned(),
        environment: new.environment.as_str().to_owned(),
        default_ttl_seconds: new.default_ttl_seconds,
        default_scopes: new.default_scopes.to_json(),
        default_ratelimit_limit: default_ratelimit.map(|l| l.limit),
        default_ratelimit_window: default_ratelimit.map(|l| l.window_seconds),
        token_exchange_enabled: new.token_exchange_enabled,
        created_at: at,
        updated_at: at,
        token_audience: None,
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
            let subject = Subject::Keyspace {
                id: KeyspaceId::from_trusted(row.id.clone()),
            };
            let fields =
                json!({ "name": row.name, "prefix": row.prefix, "environment": row.environment });
            let event = Event::record(conn, &audit, &tenant, subject, Change::Created, fields)?;
            Ok::<_, ManageError>((row, event))
        })
        .await?;
    let (row, event) = row;
    cx.events.dispatch(&[event]).await;
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
    id: &KeyspaceId,
) -> Result<KeyspaceView, ManageError> {
    let (tenant, id) = (tenant.clone(), id.clone());
    cx.store
        .run(move |conn| keyspaces::find(conn, &tenant, id.as_str()))
        .await?
        .map(KeyspaceView::from)
        .ok_or_else(|| ManageError::NotFound("keyspace"))
}

pub async fn update(
    cx: &Context<'_>,
    audit: &AuditContext,
    tenant: &TenantId,
    id: &KeyspaceId,
    input: KeyspaceChanges,
) -> Result<KeyspaceView, ManageError> {
    let mut changes = models::KeyspaceChanges {
        updated_at: Some(cx.clock.now()),
        ..Default::default()
    };
    let mut changed = serde_json::Map::new();
    if let Some(name) = input.name {
        changed.insert("name".into(), json!(name));
        changes.name = Some(name);
    }
    if let Some(ttl) = input.default_ttl_seconds {
        changes.default_ttl_seconds = Some(ttl);
        changed.insert("default_ttl_seconds".into(), json!(ttl));
    }
    if let Some(scopes) = input.default_scopes {
        changed.insert("default_scopes".into(), json!(scopes.to_strings()));
        changes.default_scopes = Some(scopes.to_json());
    }
    if let Some(limit) = input.default_ratelimit {
        changes.default_ratelimit_limit = Some(limit.map(|l| l.limit));
        changes.default_ratelimit_window = Some(limit.map(|l| l.window_seconds));
        changed.insert("default_ratelimit".into(), json!(limit));
    }
    if let Some(enabled) = input.token_exchange_enabled {
        changes.token_exchange_enabled = Some(enabled);
        changed.insert("token_exchange_enabled".into(), json!(enabled));
    }
    let (audit, tenant, id) = (audit.clone(), tenant.clone(), id.clone());
    let (view, event) = cx
        .store
        .transaction(move |conn| {
            if keyspaces::update(conn, &tenant, id.as_str(), &changes)? == 0 {
                return Err(ManageError::NotFound("keyspace"));
            }
            let event = if changed.is_empty() {
                None
            } else {
                let subject = Subject::Keyspace { id: id.clone() };
                let fields = serde_json::Value::Object(changed);
                Some(Event::record(
                    conn,
                    &audit,
                    &tenant,
                    subject,
                    Change::Updated,
                    fields,
                )?)
            };
            let view = keyspaces::find(conn, &tenant, id.as_str())?
                .map(KeyspaceView::from)
                .ok_or(ManageError::NotFound("keyspace"))?;
            Ok((view, event))
        })
        .await?;
    cx.events.dispatch(event.as_slice()).await;
    Ok(view)
}
