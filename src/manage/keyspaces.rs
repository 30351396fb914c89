//! Keyspaces: create, list, read, update defaults.

use serde_json::json;

use super::{Page, PageRequest};
use crate::audit::AuditContext;
use crate::auth::root_key::ROOT_KEY_PREFIX;
use crate::domain::commands::{KeyspaceChanges, NewKeyspace};
use crate::domain::error_code::ErrorCode;
use crate::domain::ids::{KeyspaceId, TenantId, new_id};
use crate::domain::token::TokenAudience;
use crate::events::{Change, Event, Subject};
use crate::manage::{Context, ManageError};
use crate::store::models::{self, KeyspaceRow};
use crate::store::{api_keys, keyspaces};

pub async fn create(
    cx: &Context<'_>,
    audit: &AuditContext,
    tenant: &TenantId,
    new: NewKeyspace,
) -> Result<KeyspaceRow, ManageError> {
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
        token_audience: new.token_audience.map(TokenAudience::into_string),
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
    Ok(row)
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
) -> Result<Page<KeyspaceRow>, ManageError> {
    let tenant = tenant.clone();
    let rows = {
        let page = page.clone();
        cx.store
            .run(move |conn| {
                keyspaces::list(conn, &tenant, page.before.as_deref(), page.fetch_limit())
            })
            .await?
    };
    Ok(page.page(rows, |r| &r.id, |row| row))
}

pub async fn get(
    cx: &Context<'_>,
    tenant: &TenantId,
    id: &KeyspaceId,
) -> Result<KeyspaceRow, ManageError> {
    let (tenant, id) = (tenant.clone(), id.clone());
    cx.store
        .run(move |conn| keyspaces::find(conn, &tenant, id.as_str()))
        .await?
        .ok_or_else(|| ManageError::NotFound("keyspace"))
}

pub async fn update(
    cx: &Context<'_>,
    audit: &AuditContext,
    tenant: &TenantId,
    id: &KeyspaceId,
    input: KeyspaceChanges,
) -> Result<KeyspaceRow, ManageError> {
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
    if let Some(audience) = input.token_audience {
        let audience = audience.map(TokenAudience::into_string);
        changed.insert("token_audience".into(), json!(audience));
        changes.token_audience = Some(audience);
    }
    let (audit, tenant, id) = (audit.clone(), tenant.clone(), id.clone());
    let (row, event) = cx
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
            let row = keyspaces::find(conn, &tenant, id.as_str())?
                .ok_or(ManageError::NotFound("keyspace"))?;
            Ok((row, event))
        })
        .await?;
    cx.events.dispatch(event.as_slice()).await;
    Ok(row)
}

/// Deletes a keyspace and its keys, with the rule of `DELETE /v1/keys/{id}` for each: refused
/// if one is live, unless `force` (which revokes live ones first). Each key leaves a tombstone.
pub async fn delete(
    cx: &Context<'_>,
    audit: &AuditContext,
    tenant: &TenantId,
    id: &KeyspaceId,
    force: bool,
) -> Result<(), ManageError> {
    let at = cx.clock.now();
    let (audit, tenant, id) = (audit.clone(), tenant.clone(), id.clone());
    let events = cx
        .store
        .transaction(move |conn| {
            keyspaces::find(conn, &tenant, id.as_str())?
                .ok_or(ManageError::NotFound("keyspace"))?;
            let keys = api_keys::in_keyspace(conn, &tenant, id.as_str())?;
            let count = keys.len();
            let mut events =
                crate::manage::keys::delete_rows(conn, &audit, &tenant, keys, force, at)?;
            keyspaces::delete(conn, &tenant, id.as_str())?;
            let subject = Subject::Keyspace { id: id.clone() };
            let fields = json!({ "deleted_keys": count, "forced": force });
            events.push(Event::record(
                conn,
                &audit,
                &tenant,
                subject,
                Change::Removed,
                fields,
            )?);
            Ok::<_, ManageError>(events)
        })
        .await?;
    cx.events.dispatch(&events).await;
    Ok(())
}
