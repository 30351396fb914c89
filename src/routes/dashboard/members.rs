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
use crate::domain::ids::{UserId, new_id};
use crate::domain::role::{Action, Role};
use crate::manage::{ManageError, members};
use crate::routes::state::AppState;
use crate::store::models::InvitationRow;
use crate::store::{StoreError, invitations, memberships};

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
    let pending = state
        .store
        .run(move |conn| invitations::list_pending(conn, &tenant, at))
        .await?;
    let role = member.role();
    let members = members::list(&state.manage(), member.tenant_id())
        .await?
        .into_iter()
        .map(|m| MemberRow {
            is_you: m.user_id.as_str() == member.user_id(),
            manageable: role.may_manage(m.role),
            user_id: m.user_id.into_string(),
            email: m.email,
            role: m.role,
            joined: m.joined_at.format("%Y-%m-%d").to_string(),
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
    let id = path.into_inner();
    let tenant = member.tenant_id().clone();
    let audit = member.audit.clone();
    let actor = member.role();
    let withdrawn = state
        .store
        .transaction(move |conn| -> Result<(), ManageError> {
            let found = invitations::delete_pending(conn, &tenant, &id)?
                .ok_or(ManageError::NotFound("invitation"))?;
            if !Role::parse(&found.role).is_some_and(|r| actor.may_manage(r)) {
                return Err(ManageError::Forbidden(
                    "Only owners can withdraw an invitation to become owner.".into(),
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
