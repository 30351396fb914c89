//! Root keys: create (never more power than the creator), list, revoke.

use serde_json::json;

use super::{Page, PageRequest};
use crate::audit::AuditContext;
use crate::auth::root_key::{self, IssuedRootKey, RootKeySpec};
use crate::domain::commands::NewRootKey;
use crate::domain::error_code::ErrorCode;
use crate::domain::ids::{RootKeyId, TenantId};
use crate::domain::scope::{Scope, Scopes};
use crate::domain::time::utc;
use crate::events::{Change, Event, Subject};
use crate::manage::{Context, ManageError};
use crate::store::models::RootKeyRow;
use crate::store::{root_keys, tenants};

/// Creates a root key. `holder` is the power of whoever asks: a root key's scopes, or every
/// root scope for a dashboard owner or admin.
pub async fn create(
    cx: &Context<'_>,
    audit: &AuditContext,
    tenant: &TenantId,
    holder: &Scopes,
    new: NewRootKey,
) -> Result<IssuedRootKey, ManageError> {
    let NewRootKey {
        name,
        scopes,
        expiry,
    } = new;
    if !scopes.is_subset_of(holder) {
        let missing: Vec<String> = scopes
            .iter()
            .filter(|s| !holder.grants(s))
            .map(ToString::to_string)
            .collect();
        return Err(ManageError::Forbidden(format!(
            "a root key cannot grant scopes its creator does not hold: {}",
            missing.join(", ")
        )));
    }
    let at = cx.clock.now();
    let expires_at = expiry.map(|e| e.from(at, "expires_at")).transpose()?;
    let hasher = cx.hasher.clone();
    let (audit, tenant) = (audit.clone(), tenant.clone());
    let (created, event) = cx.store
        .transaction(move |conn| {
            let created_by = audit.actor.label();
            let issued =
                root_key::issue(
                conn,
                &hasher,
                &tenant,
                RootKeySpec {
                    name: &name,
                    scopes: &scopes,
                    expires_at,
                    created_by: &created_by,
                    created_at: at,
                },
            )?;
            let fields = json!({ "name": name, "scopes": scopes.to_strings(), "expires_at": expires_at.map(utc) });
            let subject = Subject::root_key(&issued.row);
            let event = Event::record(conn, &audit, &tenant, subject, Change::Created, fields)?;
            Ok::<_, ManageError>((issued, event))
        })
        .await?;
    cx.events.dispatch(&[event]).await;
    Ok(created)
}

pub async fn list(
    cx: &Context<'_>,
    tenant: &TenantId,
    page: PageRequest,
) -> Result<Page<RootKeyRow>, ManageError> {
    let tenant = tenant.clone();
    let rows = {
        let page = page.clone();
        cx.store
            .run(move |conn| {
                root_keys::list(conn, &tenant, page.before.as_deref(), page.fetch_limit())
            })
            .await?
    };
    Ok(page.page(rows, |r| &r.id, |row| row))
}

/// Revokes a root key. The tenant's last active root key holding `root_keys:*` cannot be revoked:
/// create its replacement first, or nobody could manage root keys through the API again.
pub async fn revoke(
    cx: &Context<'_>,
    audit: &AuditContext,
    tenant: &TenantId,
    id: &RootKeyId,
) -> Result<RootKeyRow, ManageError> {
    let admin_scope = Scope::parse("root_keys:*").expect("valid scope literal");
    let at = cx.clock.now();
    let (audit, tenant, id) = (audit.clone(), tenant.clone(), id.clone());
    let (row, event) = cx.store
        .transaction(move |conn| {
            // Two admin keys revoking each other at once must not both see the other as the
            // remaining admin.
            tenants::lock(conn, &tenant)?;
            let row = root_keys::find(conn, &tenant, id.as_str())?
                .ok_or_else(|| ManageError::NotFound("root key"))?;
            if row.revoked_at.is_some() {
                return Ok((row, None));
            }
            let is_admin = |r: &RootKeyRow| Scopes::from_json(&r.scopes).grants(&admin_scope);
            if is_admin(&row) {
                let other_admins = root_keys::active(conn, &tenant, at)?
                    .iter()
                    .filter(|r| r.id != row.id && is_admin(r))
                    .count();
                if other_admins == 0 {
                    return Err(ManageError::refused(ErrorCode::LastRootAdminKey,
                        "this is the last active root key with root_keys:*; create its replacement first",
                    ));
                }
            }
            root_keys::revoke(conn, &tenant, id.as_str(), at)?;
            let change = Change::Revoked { reason: None };
            let fields = json!({ "name": row.name });
            let event = Event::record(conn, &audit, &tenant, Subject::root_key(&row), change, fields)?;
            let row =
                root_keys::find(conn, &tenant, id.as_str())?.ok_or_else(|| ManageError::NotFound("root key"))?;
            Ok((row, Some(event)))
        })
        .await?;
    cx.events.dispatch(event.as_slice()).await;
    Ok(row)
}
