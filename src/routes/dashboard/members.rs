//! Members of a tenant: invite (link shown once), change roles, remove. Only owners touch
//! owners, and the last owner can be neither demoted nor removed.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::context::{Layout, Member, Notice, Permission, can};
use super::forms::FormState;
use super::{Dashboard, PageError, render, see_other};
use crate::domain::account::Email;
use crate::domain::error_code::ErrorCode;
use crate::domain::ids::{InvitationId, UserId};
use crate::domain::role::{Action, Role};
use crate::manage::invitations::{self, NewInvitation};
use crate::manage::{ManageError, members};
use crate::routes::state::AppState;

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
    let role = member.role();
    let members = members::list(&state.manage(), member.tenant_id()).await?;
    // The last owner can be neither demoted nor removed: offer neither.
    let owners = members.iter().filter(|m| m.role == Role::Owner).count();
    let members = members
        .into_iter()
        .map(|m| MemberRow {
            is_you: m.user_id.as_str() == member.user_id(),
            manageable: role.may_manage(m.role) && !(m.role == Role::Owner && owners == 1),
            user_id: m.user_id.into_string(),
            email: m.email,
            role: m.role,
            joined: m.joined_at.format("%Y-%m-%d").to_string(),
        })
        .collect();
    let invitations = invitations::pending(&state.manage(), member.tenant_id())
        .await?
        .into_iter()
        .map(|i| InvitationView {
            id: i.id.into_string(),
            email: i.email,
            role: i.role,
            expires: i.expires_at.format("%Y-%m-%d %H:%M UTC").to_string(),
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

/// Creates an invitation and shows its link once; only the link's digest is stored.
async fn invite(
    member: Member<can::ManageMembers>,
    state: web::Data<AppState>,
    dashboard: web::Data<Dashboard>,
    form: web::Form<InviteForm>,
) -> Result<HttpResponse, PageError> {
    let mut shown = FormState::new();
    shown.keep("email", &form.email).keep("role", &form.role);
    let email = Email::parse(&form.email);
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

    let new = NewInvitation {
        email: email.clone(),
        role,
        invited_by: UserId::from_trusted(member.user_id().to_owned()),
    };
    let (cx, audit, tenant) = (state.manage(), &member.audit, member.tenant_id());
    match invitations::invite(&cx, &dashboard.keys, audit, tenant, member.role(), new).await {
        Ok(invited) => {
            let token = invited.token.expose();
            let link = format!("{}/invitations/{token}", dashboard.public_url);
            let invite = Some((link, email.to_string()));
            let page = members_page(&member, &state, FormState::new(), invite, None, None).await?;
            Ok(render(StatusCode::OK, &page))
        }
        Err(err) => {
            match err {
                ManageError::Refused {
                    code: ErrorCode::AlreadyMember,
                    message,
                } => shown.error("email", message),
                ManageError::Forbidden(message) => shown.error("role", message),
                err => return Err(err.into()),
            };
            let page = members_page(&member, &state, shown, None, None, None).await?;
            Ok(render(StatusCode::UNPROCESSABLE_ENTITY, &page))
        }
    }
}

/// Shows the members page again with why a change was refused.
async fn refused(
    member: &Member<can::ManageMembers>,
    state: &AppState,
    err: ManageError,
) -> Result<HttpResponse, PageError> {
    let (status, message) = match err {
        ManageError::NotFound(_) => return Err(PageError::NotFound),
        ManageError::Forbidden(message) => (StatusCode::FORBIDDEN, message),
        ManageError::Refused { message, .. } => (StatusCode::CONFLICT, message),
        err => return Err(err.into()),
    };
    problem(member, state, status, message).await
}

async fn problem(
    member: &Member<can::ManageMembers>,
    state: &AppState,
    status: StatusCode,
    message: String,
) -> Result<HttpResponse, PageError> {
    let page = members_page(member, state, FormState::new(), None, None, Some(message)).await?;
    Ok(render(status, &page))
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
    let Some(role) = Role::parse(&form.role) else {
        let choose = "Choose a role.".to_owned();
        return problem(&member, &state, StatusCode::FORBIDDEN, choose).await;
    };
    let user = UserId::parse(&path).ok_or(PageError::NotFound)?;
    let (cx, audit, tenant) = (state.manage(), &member.audit, member.tenant_id());
    match members::change_role(&cx, audit, tenant, member.role(), &user, role).await {
        Ok(()) => Ok(see_other("/members?notice=role_changed")),
        Err(err) => refused(&member, &state, err).await,
    }
}

/// Removes a member and ends their sessions in this tenant at once.
async fn remove(
    member: Member<can::ManageMembers>,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    let user = UserId::parse(&path).ok_or(PageError::NotFound)?;
    let (audit, tenant) = (&member.audit, member.tenant_id());
    match members::remove(&state.manage(), audit, tenant, member.role(), &user).await {
        Ok(()) if user.as_str() == member.user_id() => Ok(see_other("/")),
        Ok(()) => Ok(see_other("/members?notice=removed")),
        Err(err) => refused(&member, &state, err).await,
    }
}

async fn revoke_invitation(
    member: Member<can::ManageMembers>,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    let id = InvitationId::parse(&path).ok_or(PageError::NotFound)?;
    let (cx, audit, tenant) = (state.manage(), &member.audit, member.tenant_id());
    match invitations::withdraw(&cx, audit, tenant, member.role(), &id).await {
        Ok(()) => Ok(see_other("/members?notice=invitation_revoked")),
        Err(err) => refused(&member, &state, err).await,
    }
}
