//! Root keys: create (never more power than the creator), list, revoke.

use chrono::NaiveDateTime;
use serde_json::{Value, json};

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
use crate::store::{DbConnection, root_keys, tenants};

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
            if is_admin(&row) && other_admins(conn, &tenant, &row, at)? == 0 {
                return Err(ManageError::refused(ErrorCode::LastRootAdminKey,
                    "this is the last active root key with root_keys:*; create its replacement first",
                ));
            }
            root_keys::revoke(conn, &tenant, id.as_str(), at)?;
            let fields = json!({ "name": row.name });
            let event = record_revocation(conn, &audit, &tenant, &row, None, fields)?;
            let row =
                root_keys::find(conn, &tenant, id.as_str())?.ok_or_else(|| ManageError::NotFound("root key"))?;
            Ok((row, Some(event)))
        })
        .await?;
    cx.events.dispatch(event.as_slice()).await;
    Ok(row)
}

/// Revokes root keys whose values are out (a leak report, a pasted value, a bulk revocation by
/// value) for `reason`, each with its own extra audit `fields`, inside the caller's transaction;
/// already revoked keys are skipped. Unlike [`revoke`], the last `root_keys:*` key is revoked too:
/// whoever holds its value can do anything, and an owner or admin can issue a replacement in the
/// dashboard. Its audit event says `last_admin_key: true`.
pub(crate) fn revoke_exposed(
    conn: &mut DbConnection,
    audit: &AuditContext,
    tenant: &TenantId,
    exposed: &[(RootKeyRow, Value)],
    reason: Option<&str>,
    at: NaiveDateTime,
) -> Result<Vec<Event>, ManageError> {
    if exposed.is_empty() {
        return Ok(Vec::new());
    }
    tenants::lock(conn, tenant)?;
    let mut events = Vec::new();
    for (row, extra) in exposed {
        let last_admin_key = is_admin(row) && other_admins(conn, tenant, row, at)? == 0;
        if root_keys::revoke(conn, tenant, &row.id, at)? == 0 {
            continue;
        }
        let mut fields = json!({
            "name": row.name, "reason": reason, "last_admin_key": last_admin_key,
        });
        if let (Some(fields), Some(extra)) = (fields.as_object_mut(), extra.as_object()) {
            fields.extend(extra.clone());
        }
        if last_admin_key {
            tracing::warn!(root_key = %row.id, "revoked a tenant's last root_keys:* key: its value was exposed");
        }
        events.push(record_revocation(conn, audit, tenant, row, reason, fields)?);
    }
    Ok(events)
}

fn is_admin(row: &RootKeyRow) -> bool {
    static ADMIN: std::sync::LazyLock<Scope> =
        std::sync::LazyLock::new(|| Scope::parse("root_keys:*").expect("valid scope literal"));
    Scopes::from_json(&row.scopes).grants(&ADMIN)
}

/// How many of `tenant`'s active `root_keys:*` keys are not `row`.
fn other_admins(
    conn: &mut DbConnection,
    tenant: &TenantId,
    row: &RootKeyRow,
    at: NaiveDateTime,
) -> Result<usize, ManageError> {
    Ok(root_keys::active(conn, tenant, at)?
        .iter()
        .filter(|r| r.id != row.id && is_admin(r))
        .count())
}

fn record_revocation(
    conn: &mut DbConnection,
    audit: &AuditContext,
    tenant: &TenantId,
    row: &RootKeyRow,
    reason: Option<&str>,
    fields: Value,
) -> Result<Event, ManageError> {
    let change = Change::Revoked {
        reason: reason.map(str::to_owned),
    };
    Ok(Event::record(
        conn,
        audit,
        tenant,
        Subject::root_key(row),
        change,
        fields,
    )?)
}
