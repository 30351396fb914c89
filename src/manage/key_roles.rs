//! Key roles: create, list, read, change, delete. A change to a role's scopes (or its deletion)
//! changes the effective scopes of every key holding it, so its event names their digests and
//! every node evicts them, as after a change to the keys themselves.

use serde_json::{Value, json};

use super::{Context, ManageError, Page, PageRequest};
use crate::audit::AuditContext;
use crate::domain::commands::{KeyRoleChanges, NewKeyRole};
use crate::domain::error_code::ErrorCode;
use crate::domain::ids::{KeyRoleId, TenantId, new_id};
use crate::domain::key_role::KeyRoleRefs;
use crate::domain::scope::Scopes;
use crate::events::{Change, Event, Subject};
use crate::store::models::{KeyRoleRow, KeyRoleRowChanges};
use crate::store::{DbConnection, StoreError, key_roles, tenants};

/// Most roles one tenant may have.
pub const MAX_ROLES: usize = 1000;

fn not_found() -> ManageError {
    ManageError::NotFound("role")
}

fn name_taken() -> ManageError {
    ManageError::refused(
        ErrorCode::RoleNameTaken,
        "the tenant already has a role with that name",
    )
}

/// Turns a unique violation on the tenant's role names into `role_name_taken`.
fn unique_name(err: StoreError) -> ManageError {
    if err.is_unique_violation() {
        name_taken()
    } else {
        err.into()
    }
}

/// The event of a change to role `id`, naming the keys that hold it.
fn record(
    conn: &mut DbConnection,
    audit: &AuditContext,
    tenant: &TenantId,
    id: &str,
    change: Change,
    fields: Value,
) -> Result<Event, StoreError> {
    let holders = key_roles::digests_of_holders(conn, tenant, id)?;
    let subject = Subject::KeyRole {
        id: KeyRoleId::from_trusted(id.to_owned()),
        holders,
    };
    Event::record(conn, audit, tenant, subject, change, fields)
}

pub async fn create(
    cx: &Context<'_>,
    audit: &AuditContext,
    tenant: &TenantId,
    new: NewKeyRole,
) -> Result<KeyRoleRow, ManageError> {
    let at = cx.clock.now();
    let row = KeyRoleRow {
        id: new_id(),
        tenant_id: tenant.as_str().to_owned(),
        name: new.name.as_str().to_owned(),
        scopes: new.scopes.to_json(),
        created_at: at,
        updated_at: at,
    };
    let (audit, tenant) = (audit.clone(), tenant.clone());
    let (row, event) = cx
        .store
        .transaction(move |conn| {
            tenants::lock(conn, &tenant)?;
            if key_roles::list(conn, &tenant, None, MAX_ROLES as i64)?.len() >= MAX_ROLES {
                return Err(ManageError::refused(
                    ErrorCode::TooManyRoles,
                    format!("a tenant may have at most {MAX_ROLES} roles"),
                ));
            }
            key_roles::insert(conn, &row).map_err(unique_name)?;
            let fields = json!({ "name": row.name, "scopes": new.scopes.to_strings() });
            let event = record(conn, &audit, &tenant, &row.id, Change::Created, fields)?;
            Ok::<_, ManageError>((row, event))
        })
        .await?;
    cx.events.dispatch(&[event]).await;
    Ok(row)
}

pub async fn list(
    cx: &Context<'_>,
    tenant: &TenantId,
    page: PageRequest,
) -> Result<Page<KeyRoleRow>, ManageError> {
    super::list_page(cx, tenant, page, key_roles::list, |r| &r.id).await
}

pub async fn get(
    cx: &Context<'_>,
    tenant: &TenantId,
    id: &KeyRoleId,
) -> Result<KeyRoleRow, ManageError> {
    let (tenant, id) = (tenant.clone(), id.clone());
    cx.store
        .run(move |conn| key_roles::find(conn, &tenant, id.as_str()))
        .await?
        .ok_or_else(not_found)
}

/// Renames a role or replaces its scopes; every key holding it verifies with the new scopes on
/// every node within the bound of a revocation.
pub async fn update(
    cx: &Context<'_>,
    audit: &AuditContext,
    tenant: &TenantId,
    id: &KeyRoleId,
    edit: KeyRoleChanges,
) -> Result<KeyRoleRow, ManageError> {
    let at = cx.clock.now();
    let mut fields = serde_json::Map::new();
    let mut changes = KeyRoleRowChanges {
        updated_at: Some(at),
        ..Default::default()
    };
    if let Some(name) = &edit.name {
        fields.insert("name".into(), json!(name.as_str()));
        changes.name = Some(name.as_str().to_owned());
    }
    if let Some(scopes) = &edit.scopes {
        fields.insert("scopes".into(), json!(scopes.to_strings()));
        changes.scopes = Some(scopes.to_json());
    }
    let (audit, tenant, id) = (audit.clone(), tenant.clone(), id.clone());
    let (row, event) = cx
        .store
        .transaction(move |conn| {
            // Serialises with keys being given roles: none can take this role between the
            // holders being read and the change committing without being evicted after it.
            tenants::lock(conn, &tenant)?;
            let current = key_roles::find(conn, &tenant, id.as_str())?.ok_or_else(not_found)?;
            if edit.is_empty() {
                return Ok((current, None));
            }
            key_roles::update(conn, &tenant, id.as_str(), &changes).map_err(unique_name)?;
            let fields = Value::Object(fields);
            let event = record(conn, &audit, &tenant, id.as_str(), Change::Updated, fields)?;
            let row = key_roles::find(conn, &tenant, id.as_str())?.ok_or_else(not_found)?;
            Ok::<_, ManageError>((row, Some(event)))
        })
        .await?;
    cx.events.dispatch(event.as_slice()).await;
    Ok(row)
}

/// Deletes a role. One that keys hold is refused (`role_in_use`) unless `force`, which takes
/// it from them: they lose its scopes on every node within the bound of a revocation.
pub async fn delete(
    cx: &Context<'_>,
    audit: &AuditContext,
    tenant: &TenantId,
    id: &KeyRoleId,
    force: bool,
) -> Result<(), ManageError> {
    let (audit, tenant, id) = (audit.clone(), tenant.clone(), id.clone());
    let event = cx
        .store
        .transaction(move |conn| {
            tenants::lock(conn, &tenant)?;
            let row = key_roles::find(conn, &tenant, id.as_str())?.ok_or_else(not_found)?;
            let holders = key_roles::digests_of_holders(conn, &tenant, id.as_str())?.len();
            if holders > 0 && !force {
                return Err(ManageError::refused(
                    ErrorCode::RoleInUse,
                    format!(
                        "this role is held by {holders} key(s); detach it first, or delete \
                         with ?force=true to take it from them"
                    ),
                ));
            }
            let fields = json!({ "name": row.name, "detached_keys": holders });
            // Recorded before the delete, so the event still finds the keys that held it.
            let event = record(conn, &audit, &tenant, id.as_str(), Change::Removed, fields)?;
            key_roles::delete(conn, &tenant, id.as_str())?;
            Ok::<_, ManageError>(event)
        })
        .await?;
    cx.events.dispatch(&[event]).await;
    Ok(())
}

/// The roles `refs` name in `tenant`, for a key to hold; an unknown one is an invalid `roles`.
/// Takes the tenant's lock, so no role changes under a key being given it (see [`update`]).
pub(crate) fn resolve_for_key(
    conn: &mut DbConnection,
    tenant: &TenantId,
    refs: &KeyRoleRefs,
) -> Result<Vec<KeyRoleRow>, ManageError> {
    if refs.is_empty() {
        return Ok(Vec::new());
    }
    tenants::lock(conn, tenant)?;
    key_roles::resolve(conn, tenant, refs)?.map_err(|unknown| {
        ManageError::invalid(
            "roles",
            format!("{unknown} of the roles named do not exist"),
        )
    })
}

/// A role's scopes as stored.
pub fn scopes_of(row: &KeyRoleRow) -> Scopes {
    Scopes::from_json(&row.scopes)
}
