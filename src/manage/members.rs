//! Members of a tenant: listing, changing roles, removing. Only owners touch owners, and the
//! last owner can be neither demoted nor removed.

use chrono::{DateTime, Utc};
use serde_json::json;

use crate::audit::AuditContext;
use crate::domain::error_code::ErrorCode;
use crate::domain::ids::{TenantId, UserId};
use crate::domain::role::Role;
use crate::domain::time::utc;
use crate::events::{Change, Event, Subject};
use crate::manage::{Context, ManageError};
use crate::store::{DbConnection, memberships, sessions, tenants};

/// One member of the tenant.
#[derive(Clone, Debug)]
pub struct MemberView {
    pub user_id: UserId,
    pub email: String,
    pub role: Role,
    pub joined_at: DateTime<Utc>,
}

/// Every member of the tenant, oldest first.
pub async fn list(cx: &Context<'_>, tenant: &TenantId) -> Result<Vec<MemberView>, ManageError> {
    let tenant = tenant.clone();
    let rows = cx
        .store
        .run(move |conn| memberships::list_for_tenant(conn, &tenant))
        .await?;
    Ok(rows
        .into_iter()
        .filter_map(|(m, email)| {
            Some(MemberView {
                role: Role::parse(&m.role)?,
                user_id: UserId::from_trusted(m.user_id),
                email,
                joined_at: utc(m.created_at),
            })
        })
        .collect())
}

/// Gives `user` the role `role`, as a member whose role is `actor`.
pub async fn change_role(
    cx: &Context<'_>,
    audit: &AuditContext,
    tenant: &TenantId,
    actor: Role,
    user: &UserId,
    role: Role,
) -> Result<(), ManageError> {
    if !actor.may_manage(role) {
        return Err(ManageError::Forbidden(
            "Only owners can make someone an owner.".into(),
        ));
    }
    let (audit, tenant, user) = (audit.clone(), tenant.clone(), user.clone());
    let event = cx
        .store
        .transaction(move |conn| {
            let current = lock_target(conn, &tenant, actor, &user, role != Role::Owner)?;
            if current == role {
                return Ok(None);
            }
            memberships::set_role(conn, &tenant, user.as_str(), role.as_str())?;
            let fields = json!({ "role": { "from": current.as_str(), "to": role.as_str() } });
            let subject = Subject::Member { user_id: user };
            let event = Event::record(conn, &audit, &tenant, subject, Change::Updated, fields)?;
            Ok::<_, ManageError>(Some(event))
        })
        .await?;
    cx.events.dispatch(event.as_slice()).await;
    Ok(())
}

/// Removes `user` from the tenant and ends their sessions in it at once.
pub async fn remove(
    cx: &Context<'_>,
    audit: &AuditContext,
    tenant: &TenantId,
    actor: Role,
    user: &UserId,
) -> Result<(), ManageError> {
    let (audit, tenant, user) = (audit.clone(), tenant.clone(), user.clone());
    let event = cx
        .store
        .transaction(move |conn| {
            let current = lock_target(conn, &tenant, actor, &user, true)?;
            memberships::delete(conn, &tenant, user.as_str())?;
            let ended = sessions::delete_in_tenant(conn, &tenant, user.as_str())?;
            let fields = json!({ "role": current.as_str(), "sessions_ended": ended });
            let subject = Subject::Member { user_id: user };
            let event = Event::record(conn, &audit, &tenant, subject, Change::Removed, fields)?;
            Ok::<_, ManageError>(event)
        })
        .await?;
    cx.events.dispatch(&[event]).await;
    Ok(())
}

/// Checks, under the tenant's lock, that `actor` may change `user` (and, when the member would
/// stop being an owner, that another owner remains); returns the member's current role.
fn lock_target(
    conn: &mut DbConnection,
    tenant: &TenantId,
    actor: Role,
    user: &UserId,
    losing_owner: bool,
) -> Result<Role, ManageError> {
    tenants::lock(conn, tenant)?;
    let current = memberships::find(conn, tenant, user.as_str())?
        .and_then(|m| Role::parse(&m.role))
        .ok_or(ManageError::NotFound("member"))?;
    if !actor.may_manage(current) {
        return Err(ManageError::Forbidden(
            "Only owners can change or remove an owner.".into(),
        ));
    }
    if current == Role::Owner && losing_owner && memberships::count_owners(conn, tenant)? <= 1 {
        return Err(ManageError::refused(
            ErrorCode::LastOwner,
            "A tenant needs at least one owner. Make someone else an owner first.",
        ));
    }
    Ok(current)
}
