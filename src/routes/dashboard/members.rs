//! Members of a tenant: invite (link shown once), change roles, remove. Only owners touch
//! owners, and the last owner can be neither demoted nor removed.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use chrono::TimeDelta;
use serde::Deserialize;
use serde_json::json;

use super::context::{Layout, Member, Notice, Permission, can};
use super::forms::FormState;
use super::{Dashboard, PageError, render, see_other};
use crate::auth::session::{INVITE_PURPOSE, SessionToken};
use crate::domain::account::parse_email;
use crate::domain::ids::{TenantId, new_id};
use crate::domain::role::{Action, Role};
use crate::events::{Change, Event, Subject};
use crate::routes::state::AppState;
use crate::store::models::InvitationRow;
use crate::store::{StoreError, invitations, memberships, sessions, tenants};

/// How long an invite link stays valid.
pub const INVITATION_LIFETIME: TimeDelta = TimeDelta::days(7);

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/members", web::get().to(list))
        .route("/members/invite", web::post().to(invite))
        .route("/members/{user_id}/role", web::post().to(change_role))
        .route("/members/{user_id}/remove", web::post().to(remove))
        .route(
            "/members/invitations/{id}/revoke",
            web::post().to(revoke_invitation),
        );
}

struct MemberRow {
    user_id: String,
    email: String,
    role: Role,
    joined: String,
    is_you: bool,
    /// Whether the viewer may change or remove this member.
    manageable: bool,
}

struct InvitationView {
    id: String,
    email: String,
    role: Role,
    expires: String,
}

#[derive(Template)]
#[template(path = "members.html")]
struct MembersPage {
    layout: Layout,
    members: Vec<MemberRow>,
    invitations: Vec<InvitationView>,
    can_manage: bool,
    /// Roles the viewer may give.
    grantable: Vec<Role>,
    form: FormState,
    /// The invite link just created: shown on this response only.
    invite_link: Option<String>,
    invited_email: String,
    notice: Option<&'static str>,
    problem: Option<String>,
}

async fn list(
    member: Member,
    state: web::Data<AppState>,
    query: web::Query<Notice>,
) -> Result<HttpResponse, PageError> {
    let notice = match query.notice.as_deref() {
        Some("role_changed") => Some("The role was changed."),
        Some("removed") => {
            Some("The member was removed. Their sessions in this tenant have ended.")
        }
        Some("invitation_revoked") => {
            Some("The invitation was withdrawn; its link no longer works.")
        }
        _ => None,
    };
    let page = members_page(&member, &state, FormState::new(), None, notice, None).await?;
    Ok(render(StatusCode::OK, &page))
}

async fn members_page<P: Permission>(
    member: &Member<P>,
    state: &AppState,
    form: FormState,
    invite: Option<(String, String)>,
    notice: Option<&'static str>,
    problem: Option<String>,
) -> Result<MembersPage, PageError> {
    let tenant = member.tenant_id().clone();
    let at = state.clock.now();
    let (rows, pending) = state
        .store
        .run(move |conn| -> Result<_, StoreError> {
            Ok((
                memberships::list_for_tenant(conn, &tenant)?,
                invitations::list_pending(conn, &tenant, at)?,
            ))
        })
        .await?;
    let role = member.role();
    let members = rows
        .into_iter()
        .filter_map(|(m, email)| {
            let target = Role::parse(&m.role)?;
            Some(MemberRow {
                is_you: m.user_id == member.user_id(),
                manageable: role.may_manage(target),
                user_id: m.user_id,
                email,
                role: target,
                joined: m.created_at.format("%Y-%m-%d").to_string(),
            })
        })
        .collect();
    let invitations = pending
        .into_iter()
        .filter_map(|i| {
            Some(InvitationView {
                role: Role::parse(&i.role)?,
                id: i.id,
                email: i.email,
                expires: i.expires_at.format("%Y-%m-%d %H:%M UTC").to_string(),
            })
        })
        .collect();
    let (invite_link, invited_email) = match invite {
        Some((link, email)) => (Some(link), email),
        None => (None, String::new()),
    };
    Ok(MembersPage {
        layout: member.layout("members"),
        members,
        invitations,
        can_manage: member.can(Action::ManageMembers),
        grantable: Role::ALL
            .into_iter()
            .filter(|r| role.may_manage(*r))
            .collect(),
        form,
        invite_link,
        invited_email,
        notice,
        problem,
    })
}

#[derive(Deserialize)]
pub struct InviteForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    role: String,
}

enum InviteError {
    AlreadyMember,
    Store(StoreError),
}

impl From<StoreError> for InviteError {
    fn from(err: StoreError) -> Self {
        Self::Store(err)
    }
}

impl From<diesel::result::Error> for InviteError {
    fn from(err: diesel::result::Error) -> Self {
        Self::Store(err.into())
    }
}

/// Creates an invitation and shows its link once; only the link's digest is stored.
async fn invite(
    member: Member<can::ManageMembers>,
    state: web::Data<AppState>,
    dashboard: web::Data<Dashboard>,
    form: web::Form<InviteForm>,
) -> Result<HttpResponse, PageError> {
    let mut shown = FormState::new();
    shown.keep("email", &form.email).keep("role", &form.role);
    let email = parse_email(&form.email);
    if email.is_none() {
        shown.error("email", "Enter an e-mail address, like dev@example.com.");
    }
    let role = Role::parse(&form.role);
    match role {
        None => {
            shown.error("role", "Choose a role.");
        }
        Some(r) if !member.role().may_manage(r) => {
            shown.error("role", "Only owners can invite owners.");
        }
        Some(_) => {}
    }
    let (Some(email), Some(role), false) = (email, role, shown.has_errors()) else {
        let page = members_page(&member, &state, shown, None, None, None).await?;
        return Ok(render(StatusCode::UNPROCESSABLE_ENTITY, &page));
    };

    let token = SessionToken::generate();
    let digest = dashboard.keys.digest(INVITE_PURPOSE, &token);
    let tenant = member.tenant_id().clone();
    let invited_by = member.user_id().to_owned();
    let audit = member.audit.clone();
    let invited = email.clone();
    let at = state.clock.now();
    let created = state
        .store
        .transaction(move |conn| -> Result<(), InviteError> {
            let already = memberships::list_for_tenant(conn, &tenant)?
                .into_iter()
                .any(|(_, e)| e == invited);
            if already {
                return Err(InviteError::AlreadyMember);
            }
            invitations::delete_pending_for_email(conn, &tenant, &invited)?;
            let row = InvitationRow {
                id: new_id(),
                tenant_id: tenant.as_str().to_owned(),
                email: invited.clone(),
                role: role.as_str().to_owned(),
                token_digest: digest,
                invited_by,
                created_at: at,
                expires_at: at + INVITATION_LIFETIME,
                accepted_at: None,
            };
            invitations::insert(conn, &row)?;
            audit.record(
                conn,
                &tenant,
                "invitation.create",
                ("invitation", &row.id),
                json!({ "email": invited, "role": role.as_str() }),
            )?;
            Ok(())
        })
        .await;
    match created {
        Ok(()) => {
            let link = format!("{}/invitations/{}", dashboard.public_url, token.expose());
            let page = members_page(
                &member,
                &state,
                FormState::new(),
                Some((link, email)),
                None,
                None,
            )
            .await?;
            Ok(render(StatusCode::OK, &page))
        }
        Err(InviteError::AlreadyMember) => {
            shown.error("email", "This person is already a member of this tenant.");
            let page = members_page(&member, &state, shown, None, None, None).await?;
            Ok(render(StatusCode::UNPROCESSABLE_ENTITY, &page))
        }
        Err(InviteError::Store(err)) => Err(err.into()),
    }
}

/// Why a change to a membership was refused.
enum ChangeError {
    NotFound,
    NotAllowed(&'static str),
    LastOwner(&'static str),
    Store(StoreError),
}

impl From<StoreError> for ChangeError {
    fn from(err: StoreError) -> Self {
        Self::Store(err)
    }
}

impl From<diesel::result::Error> for ChangeError {
    fn from(err: diesel::result::Error) -> Self {
        Self::Store(err.into())
    }
}

async fn refused(
    member: &Member<can::ManageMembers>,
    state: &AppState,
    err: ChangeError,
) -> Result<HttpResponse, PageError> {
    let (status, message) = match err {
        ChangeError::NotFound => return Err(PageError::NotFound),
        ChangeError::Store(err) => return Err(err.into()),
        ChangeError::NotAllowed(message) => (StatusCode::FORBIDDEN, message),
        ChangeError::LastOwner(message) => (StatusCode::CONFLICT, message),
    };
    let page = members_page(
        member,
        state,
        FormState::new(),
        None,
        None,
        Some(message.to_owned()),
    )
    .await?;
    Ok(render(status, &page))
}

/// Checks, under the tenant's lock, that `actor` may change `user_id` (and that an owner
/// leaving the owner role is not the last one); returns the member's current role.
fn lock_target(
    conn: &mut crate::store::DbConnection,
    tenant: &TenantId,
    actor: Role,
    user_id: &str,
    losing_owner: impl Fn(Role) -> bool,
) -> Result<Role, ChangeError> {
    tenants::lock(conn, tenant)?;
    let current = memberships::find(conn, tenant, user_id)?
        .and_then(|m| Role::parse(&m.role))
        .ok_or(ChangeError::NotFound)?;
    if !actor.may_manage(current) {
        return Err(ChangeError::NotAllowed(
            "Only owners can change or remove an owner.",
        ));
    }
    if current == Role::Owner
        && losing_owner(current)
        && memberships::count_owners(conn, tenant)? <= 1
    {
        return Err(ChangeError::LastOwner(
            "A tenant needs at least one owner. Make someone else an owner first.",
        ));
    }
    Ok(current)
}

#[derive(Deserialize)]
pub struct RoleForm {
    #[serde(default)]
    role: String,
}

async fn change_role(
    member: Member<can::ManageMembers>,
    state: web::Data<AppState>,
    path: web::Path<String>,
    form: web::Form<RoleForm>,
) -> Result<HttpResponse, PageError> {
    let user_id = path.into_inner();
    let Some(new_role) = Role::parse(&form.role) else {
        return refused(&member, &state, ChangeError::NotAllowed("Choose a role.")).await;
    };
    let actor = member.role();
    if !actor.may_manage(new_role) {
        return refused(
            &member,
            &state,
            ChangeError::NotAllowed("Only owners can make someone an owner."),
        )
        .await;
    }
    let tenant = member.tenant_id().clone();
    let audit = member.audit.clone();
    let changed = state
        .store
        .transaction(move |conn| -> Result<Option<Event>, ChangeError> {
            let current = lock_target(conn, &tenant, actor, &user_id, |_| new_role != Role::Owner)?;
            if current == new_role {
                return Ok(None);
            }
            memberships::set_role(conn, &tenant, &user_id, new_role.as_str())?;
            let fields = json!({ "role": { "from": current.as_str(), "to": new_role.as_str() } });
            let subject = Subject::Member {
                user_id: crate::domain::ids::UserId::from_trusted(user_id),
            };
            let event = Event::record(conn, &audit, &tenant, subject, Change::Updated, fields)?;
            Ok(Some(event))
        })
        .await;
    match changed {
        Ok(event) => {
            state.events.dispatch(event.as_slice()).await;
            Ok(see_other("/members?notice=role_changed"))
        }
        Err(err) => refused(&member, &state, err).await,
    }
}

/// Removes a member and ends their sessions in this tenant at once.
async fn remove(
    member: Member<can::ManageMembers>,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    let user_id = path.into_inner();
    let tenant = member.tenant_id().clone();
    let audit = member.audit.clone();
    let actor = member.role();
    let target = user_id.clone();
    let removed = state
        .store
        .transaction(move |conn| -> Result<Event, ChangeError> {
            let current = lock_target(conn, &tenant, actor, &target, |_| true)?;
            memberships::delete(conn, &tenant, &target)?;
            let ended = sessions::delete_in_tenant(conn, &tenant, &target)?;
            let fields = json!({ "role": current.as_str(), "sessions_ended": ended });
            let subject = Subject::Member {
                user_id: crate::domain::ids::UserId::from_trusted(target),
            };
            Ok(Event::record(
                conn,
                &audit,
                &tenant,
                subject,
                Change::Removed,
                fields,
            )?)
        })
        .await;
    if let Ok(event) = &removed {
        state.events.dispatch(std::slice::from_ref(event)).await;
    }
    match removed {
        Ok(_) if user_id == member.user_id() => Ok(see_other("/")),
        Ok(_) => Ok(see_other("/members?notice=removed")),
        Err(err) => refused(&member, &state, err).await,
    }
}

async fn revoke_invitation(
    member: Member<can::ManageMembers>,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    let id = path.into_inner();
    let tenant = member.tenant_id().clone();
    let audit = member.audit.clone();
    let actor = member.role();
    let withdrawn = state
        .store
        .transaction(move |conn| -> Result<(), ChangeError> {
            let found =
                invitations::delete_pending(conn, &tenant, &id)?.ok_or(ChangeError::NotFound)?;
            if !Role::parse(&found.role).is_some_and(|r| actor.may_manage(r)) {
                return Err(ChangeError::NotAllowed(
                    "Only owners can withdraw an invitation to become owner.",
                ));
            }
            audit.record(
                conn,
                &tenant,
                "invitation.delete",
                ("invitation", &id),
                json!({ "email": found.email, "role": found.role }),
            )?;
            Ok(())
        })
        .await;
    match withdrawn {
        Ok(()) => Ok(see_other("/members?notice=invitation_revoked")),
        Err(err) => refused(&member, &state, err).await,
    }
}
