//! Accepting an invitation: the link is the credential (no mail server is assumed), bound to
//! the invited e-mail address. New people choose a password; existing users sign in first.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;
use serde_json::json;

use super::account::{password_message, signed_in_response};
use super::context::Layout;
use super::forms::FormState;
use super::guard::Visit;
use super::{Dashboard, PageError, render, see_other, urlencode};
use crate::audit::Actor;
use crate::auth::password::Password;
use crate::auth::session::{self, INVITE_PURPOSE, SessionToken};
use crate::domain::ids::TenantId;
use crate::events::{Change, Event, Subject};
use crate::routes::state::AppState;
use crate::store::models::{InvitationRow, Membership, User};
use chrono::NaiveDateTime;

use crate::store::{StoreError, invitations, memberships, sessions, tenants, users};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/invitations/{token}", web::get().to(show))
        .route("/invitations/{token}", web::post().to(accept));
}

/// What the invitee can do on this page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Step {
    /// Signed in as the invited address: one button.
    Accept,
    /// Signed in as someone else.
    WrongUser,
    /// The address has an account: sign in first.
    SignIn,
    /// New person: choose a password.
    Create,
}

#[derive(Template)]
#[template(path = "invitation.html")]
struct InvitationPage {
    layout: Layout,
    /// `None` when the link is not (or no longer) valid.
    invitation: Option<Offer>,
    form: FormState,
}

struct Offer {
    tenant_name: String,
    email: String,
    role: String,
    step: Step,
    signed_in_as: String,
    sign_in_link: String,
}

impl Offer {
    fn is(&self, step: &str) -> bool {
        let current = match self.step {
            Step::Accept => "accept",
            Step::WrongUser => "wrong_user",
            Step::SignIn => "sign_in",
            Step::Create => "create",
        };
        current == step
    }
}

/// A pending invitation with its tenant's name and whether its address has an account.
struct Found {
    row: InvitationRow,
    tenant_name: String,
    account: Option<User>,
}

fn find_valid(
    conn: &mut crate::store::DbConnection,
    digest: &[u8],
    at: NaiveDateTime,
) -> Result<Option<Found>, StoreError> {
    let Some(row) = invitations::find_by_digest(conn, digest)? else {
        return Ok(None);
    };
    if row.accepted_at.is_some() || row.expires_at <= at {
        return Ok(None);
    }
    let Some(tenant) = tenants::find(conn, &TenantId::from_trusted(row.tenant_id.clone()))? else {
        return Ok(None);
    };
    let account = users::find_by_email(conn, &row.email)?;
    Ok(Some(Found {
        row,
        tenant_name: tenant.name,
        account,
    }))
}

async fn lookup(
    state: &AppState,
    dashboard: &Dashboard,
    raw: &str,
) -> Result<Option<Found>, PageError> {
    let Some(token) = SessionToken::parse(raw) else {
        return Ok(None);
    };
    let digest = dashboard.keys.digest(INVITE_PURPOSE, &token);
    let at = state.clock.now();
    Ok(state
        .store
        .run(move |conn| find_valid(conn, &digest, at))
        .await?)
}

fn step_for(visit: &Visit, found: &Found) -> Step {
    match (&visit.signed_in, &found.account) {
        (Some(s), _) if s.email == found.row.email => Step::Accept,
        (Some(_), _) => Step::WrongUser,
        (None, Some(_)) => Step::SignIn,
        (None, None) => Step::Create,
    }
}

fn page(visit: &Visit, token: &str, found: Option<Found>, form: FormState) -> InvitationPage {
    let invitation = found.map(|found| Offer {
        step: step_for(visit, &found),
        tenant_name: found.tenant_name,
        email: found.row.email,
        role: found.row.role,
        signed_in_as: visit
            .signed_in
            .as_ref()
            .map(|s| s.email.clone())
            .unwrap_or_default(),
        sign_in_link: format!(
            "/sign-in?next={}",
            urlencode(&format!("/invitations/{token}"))
        ),
    });
    InvitationPage {
        layout: Layout::anonymous(visit),
        invitation,
        form,
    }
}

async fn show(
    visit: Visit,
    state: web::Data<AppState>,
    dashboard: web::Data<Dashboard>,
    path: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    let found = lookup(&state, &dashboard, &path).await?;
    let status = if found.is_some() {
        StatusCode::OK
    } else {
        StatusCode::GONE
    };
    Ok(render(
        status,
        &page(&visit, &path, found, FormState::new()),
    ))
}

#[derive(Deserialize)]
pub struct AcceptForm {
    /// Never kept or shown back.
    #[serde(default)]
    password: secrecy::SecretString,
}

/// Joins the tenant: as the signed-in invitee, or as a new account with the chosen password.
async fn accept(
    req: HttpRequest,
    visit: Visit,
    state: web::Data<AppState>,
    dashboard: web::Data<Dashboard>,
    path: web::Path<String>,
    form: web::Form<AcceptForm>,
) -> Result<HttpResponse, PageError> {
    let token = path.into_inner();
    let Some(found) = lookup(&state, &dashboard, &token).await? else {
        return Ok(render(
            StatusCode::GONE,
            &page(&visit, &token, None, FormState::new()),
        ));
    };
    let step = step_for(&visit, &found);
    let password_hash = match step {
        Step::Accept => None,
        Step::Create => match Password::parse_new(form.into_inner().password) {
            Ok(password) => Some(dashboard.passwords.hash(password).await?),
            Err(err) => {
                let mut shown = FormState::new();
                shown.error("password", password_message(err));
                return Ok(render(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    &page(&visit, &token, Some(found), shown),
                ));
            }
        },
        Step::SignIn | Step::WrongUser => return Ok(see_other(&format!("/invitations/{token}"))),
    };

    let invitation_id = found.row.id.clone();
    let keys = dashboard.keys.clone();
    let signed_in = visit.signed_in.clone();
    let mut audit = crate::routes::audit_context(&req, Actor::Cli);
    let digest = found.row.token_digest.clone();
    let at = state.clock.now();
    let joined = state
        .store
        .transaction(
            move |conn| -> Result<(Option<session::SessionToken>, Option<Event>), StoreError> {
                // Re-read inside the transaction: the link works once.
                let Some(found) = find_valid(conn, &digest, at)? else {
                    return Ok((None, None));
                };
                let tenant = TenantId::from_trusted(found.row.tenant_id.clone());
                let user_id = match (found.account, password_hash) {
                    (Some(user), None) => user.id,
                    (None, Some(password_hash)) => {
                        users::create(conn, &found.row.email, password_hash, at)?
                    }
                    // The account appeared or vanished since the page was shown: start over.
                    _ => return Ok((None, None)),
                };
                let mut joined = None;
                if memberships::find(conn, &tenant, &user_id)?.is_none() {
                    memberships::insert(
                        conn,
                        &Membership {
                            tenant_id: tenant.as_str().to_owned(),
                            user_id: user_id.clone(),
                            role: found.row.role.clone(),
                            created_at: at,
                        },
                    )?;
                    audit.actor =
                        Actor::User(crate::domain::ids::UserId::from_trusted(user_id.clone()));
                    let fields = json!({
                        "email": found.row.email,
                        "role": found.row.role,
                        "invitation_id": invitation_id,
                    });
                    let subject = Subject::Member {
                        user_id: crate::domain::ids::UserId::from_trusted(user_id.clone()),
                    };
                    let event =
                        Event::record(conn, &audit, &tenant, subject, Change::Created, fields)?;
                    joined = Some(event);
                }
                invitations::mark_accepted(conn, &found.row.id, at)?;
                let started = match signed_in {
                    Some(s) => {
                        sessions::set_tenant(conn, &s.digest, &tenant)?;
                        None
                    }
                    None => Some(session::start(conn, &keys, &user_id, Some(&tenant), at)?),
                };
                Ok((started, joined))
            },
        )
        .await?;
    let (started, joined) = joined;
    state.events.dispatch(joined.as_slice()).await;
    Ok(match started {
        Some(token) => signed_in_response(&dashboard, token, "/"),
        None => see_other("/"),
    })
}
