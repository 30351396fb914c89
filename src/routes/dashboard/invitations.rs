//! Accepting an invitation: the link is the credential (no mail server is assumed), bound to
//! the invited e-mail address. New people choose a password; existing users sign in first.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::account::{password_message, signed_in_response};
use super::context::Layout;
use super::forms::FormState;
use super::guard::Visit;
use super::{Dashboard, PageError, render, see_other, urlencode};
use crate::audit::Actor;
use crate::auth::password::Password;
use crate::auth::session::SessionToken;
use crate::manage::ManageError;
use crate::manage::invitations::{self, Invitation, Joining};
use crate::routes::state::AppState;

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

/// The valid invitation a link stands for, with the link's token; `None` for anything else.
async fn lookup(
    state: &AppState,
    dashboard: &Dashboard,
    raw: &str,
) -> Result<Option<(SessionToken, Invitation)>, PageError> {
    let Some(token) = SessionToken::parse(raw) else {
        return Ok(None);
    };
    match invitations::find(&state.manage(), &dashboard.keys, &token).await {
        Ok(found) => Ok(Some((token, found))),
        Err(ManageError::NotFound(_)) => Ok(None),
        Err(err) => Err(err.into()),
    }
}

fn step_for(visit: &Visit, found: &Invitation) -> Step {
    match (&visit.signed_in, found.has_account) {
        (Some(s), _) if s.email == found.email => Step::Accept,
        (Some(_), _) => Step::WrongUser,
        (None, true) => Step::SignIn,
        (None, false) => Step::Create,
    }
}

fn page(visit: &Visit, token: &str, found: Option<Invitation>, form: FormState) -> InvitationPage {
    let invitation = found.map(|found| Offer {
        step: step_for(visit, &found),
        tenant_name: found.tenant_name,
        email: found.email,
        role: found.role.as_str().to_owned(),
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
    let found = lookup(&state, &dashboard, &path)
        .await?
        .map(|(_, found)| found);
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
    let Some((link, found)) = lookup(&state, &dashboard, &token).await? else {
        return Ok(render(
            StatusCode::GONE,
            &page(&visit, &token, None, FormState::new()),
        ));
    };
    let joining = match step_for(&visit, &found) {
        Step::Accept => match &visit.signed_in {
            Some(signed_in) => Joining::SignedIn(signed_in),
            None => return Ok(see_other(&format!("/invitations/{token}"))),
        },
        Step::Create => match Password::parse_new(form.into_inner().password) {
            Ok(password) => Joining::NewAccount(password),
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
    // The actor is the invitee; the service names them once their account exists.
    let audit = crate::routes::audit_context(&req, Actor::Cli);
    let credentials = dashboard.credentials();
    let joined = invitations::accept(&state.manage(), credentials, &audit, &link, joining).await;
    Ok(match joined {
        Ok(joined) => match joined.session {
            Some(session) => signed_in_response(&dashboard, session, "/"),
            None => see_other("/"),
        },
        // Used, withdrawn or changed since the page was shown: start over.
        Err(ManageError::NotFound(_) | ManageError::Forbidden(_)) => see_other("/"),
        Err(err) => return Err(err.into()),
    })
}
