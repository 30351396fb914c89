//! Sign up, sign in, sign out, and the overview page.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::context::{Layout, Member};
use super::forms::FormState;
use super::guard::Visit;
use super::{Dashboard, PageError, render, see_other};
use crate::audit::Actor;
use crate::auth::password::{Password, PasswordError};
use crate::auth::session;
use crate::domain::account::{Email, TenantName};
use crate::manage::ManageError;
use crate::manage::accounts::{self, SignIn, SignUp};
use crate::metrics::SignInOutcome;
use crate::routes::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/", web::get().to(home))
        .route("/sign-up", web::get().to(sign_up_page))
        .route("/sign-up", web::post().to(sign_up))
        .route("/sign-in", web::get().to(sign_in_page))
        .route("/sign-in", web::post().to(sign_in))
        .route("/sign-out", web::post().to(sign_out));
}

#[derive(Template)]
#[template(path = "home.html")]
struct HomePage {
    layout: Layout,
    member_count: usize,
    keyspace_count: usize,
    can_manage_keys: bool,
}

async fn home(member: Member, state: web::Data<AppState>) -> Result<HttpResponse, PageError> {
    let members = crate::manage::members::list(&state.manage(), member.tenant_id()).await?;
    let keyspaces = super::keyspaces::all(&state, member.tenant_id()).await?;
    Ok(render(
        StatusCode::OK,
        &HomePage {
            layout: member.layout("home"),
            member_count: members.len(),
            keyspace_count: keyspaces.len(),
            can_manage_keys: member.can(crate::domain::role::Action::ManageKeys),
        },
    ))
}

#[derive(Template)]
#[template(path = "sign_up.html")]
struct SignUpPage {
    layout: Layout,
    form: FormState,
}

async fn sign_up_page(visit: Visit) -> HttpResponse {
    if visit.signed_in.is_some() {
        return see_other("/");
    }
    render(
        StatusCode::OK,
        &SignUpPage {
            layout: Layout::anonymous(&visit),
            form: FormState::new(),
        },
    )
}

#[derive(Deserialize)]
pub struct SignUpForm {
    #[serde(default)]
    email: String,
    /// Never kept or shown back.
    #[serde(default)]
    password: secrecy::SecretString,
    #[serde(default)]
    tenant: String,
}

/// Creates user, tenant and owner membership (with audit events) in one transaction, then
/// signs the new owner in.
async fn sign_up(
    req: HttpRequest,
    visit: Visit,
    state: web::Data<AppState>,
    dashboard: web::Data<Dashboard>,
    form: web::Form<SignUpForm>,
) -> Result<HttpResponse, PageError> {
    let form = form.into_inner();
    let mut shown = FormState::new();
    shown
        .keep("email", &form.email)
        .keep("tenant", &form.tenant);
    let email = Email::parse(&form.email);
    if email.is_none() {
        shown.error("email", "Enter an e-mail address, like you@example.com.");
    }
    let password = match Password::parse_new(form.password) {
        Ok(password) => Some(password),
        Err(err) => {
            shown.error("password", password_message(err));
            None
        }
    };
    let tenant_name = TenantName::parse(&form.tenant);
    if tenant_name.is_none() {
        shown.error("tenant", "Enter a name of 1 to 100 characters.");
    }
    let (Some(email), Some(password), Some(tenant_name), false) =
        (email, password, tenant_name, shown.has_errors())
    else {
        return Ok(sign_up_again(&visit, shown));
    };

    // The actor is the user about to be created; the service names them once their id exists.
    let audit = crate::routes::audit_context(&req, Actor::Cli);
    let new = SignUp {
        email,
        password,
        tenant: tenant_name,
        address: client_address(&req),
    };
    match accounts::sign_up(&state.manage(), dashboard.credentials(), &audit, new).await {
        Ok(Some(signed_up)) => Ok(signed_in_response(&dashboard, signed_up.session, "/")),
        // The address has an account: answered like a new one, with a session cookie of the
        // same shape that names no session (the dashboard then asks to sign in).
        Ok(None) => Ok(signed_in_response(
            &dashboard,
            session::SessionToken::generate(),
            "/",
        )),
        Err(ManageError::Throttled { retry_after }) => {
            shown.summary = Some(format!("Too many attempts; try again in {retry_after} s."));
            Ok(throttled(
                sign_up_form(&visit, shown, StatusCode::TOO_MANY_REQUESTS),
                retry_after,
            ))
        }
        Err(err) => Err(err.into()),
    }
}

/// The client's IP address, for the throttle (empty when unknown).
fn client_address(req: &HttpRequest) -> String {
    crate::routes::client_addr::of(req)
        .map(|ip| ip.to_string())
        .unwrap_or_default()
}

/// A 429 page with `Retry-After`.
fn throttled(mut response: HttpResponse, retry_after: u64) -> HttpResponse {
    if let Ok(value) = retry_after.to_string().parse() {
        response
            .headers_mut()
            .insert(actix_web::http::header::RETRY_AFTER, value);
    }
    response
}

fn sign_up_form(visit: &Visit, form: FormState, status: StatusCode) -> HttpResponse {
    render(
        status,
        &SignUpPage {
            layout: Layout::anonymous(visit),
            form,
        },
    )
}

fn sign_up_again(visit: &Visit, form: FormState) -> HttpResponse {
    sign_up_form(visit, form, StatusCode::UNPROCESSABLE_ENTITY)
}

pub fn password_message(err: PasswordError) -> String {
    match err {
        PasswordError::TooShort => format!(
            "Use at least {} characters. A few unrelated words make a strong password.",
            crate::auth::password::MIN_PASSWORD_CHARS
        ),
        PasswordError::TooLong => format!(
            "Use at most {} characters.",
            crate::auth::password::MAX_PASSWORD_CHARS
        ),
    }
}

#[derive(Template)]
#[template(path = "sign_in.html")]
struct SignInPage {
    layout: Layout,
    form: FormState,
    next: String,
    notice: Option<&'static str>,
}

#[derive(Deserialize)]
pub struct SignInQuery {
    next: Option<String>,
    notice: Option<String>,
}

async fn sign_in_page(visit: Visit, query: web::Query<SignInQuery>) -> HttpResponse {
    let next = safe_next(query.next.as_deref());
    if visit.signed_in.is_some() {
        return see_other(&next);
    }
    let notice = match query.notice.as_deref() {
        Some("signed_out") => Some("You are signed out."),
        _ => None,
    };
    render(
        StatusCode::OK,
        &SignInPage {
            layout: Layout::anonymous(&visit),
            form: FormState::new(),
            next,
            notice,
        },
    )
}

#[derive(Deserialize)]
pub struct SignInForm {
    #[serde(default)]
    email: String,
    /// Never kept or shown back.
    #[serde(default)]
    password: secrecy::SecretString,
    next: Option<String>,
}

/// Checks the password (throttled per account and per address, same work for unknown
/// e-mails) and starts a new session, ending the one the browser had.
async fn sign_in(
    req: HttpRequest,
    visit: Visit,
    state: web::Data<AppState>,
    dashboard: web::Data<Dashboard>,
    form: web::Form<SignInForm>,
) -> Result<HttpResponse, PageError> {
    let form = form.into_inner();
    let next = safe_next(form.next.as_deref());
    let mut shown = FormState::new();
    shown.keep("email", &form.email);
    let address = client_address(&req);
    let again = |shown: FormState, status| {
        render(
            status,
            &SignInPage {
                layout: Layout::anonymous(&visit),
                form: shown,
                next: next.clone(),
                notice: None,
            },
        )
    };

    let attempt = SignIn {
        email: &form.email,
        password: Password::candidate(form.password),
        address: &address,
        replacing: visit.signed_in.as_ref().map(|s| s.digest.clone()),
    };
    let outcome = accounts::sign_in(&state.manage(), dashboard.credentials(), attempt).await;
    state.metrics.sign_in(match &outcome {
        Ok(_) => SignInOutcome::Success,
        Err(ManageError::Throttled { .. }) => SignInOutcome::Throttled,
        Err(ManageError::Refused { .. }) => SignInOutcome::Refused,
        Err(_) => SignInOutcome::Error,
    });
    match outcome {
        Ok(token) => Ok(signed_in_response(&dashboard, token, &next)),
        Err(ManageError::Throttled { retry_after }) => {
            shown.summary = Some(format!("Too many attempts; try again in {retry_after} s."));
            Ok(throttled(
                again(shown, StatusCode::TOO_MANY_REQUESTS),
                retry_after,
            ))
        }
        Err(ManageError::Refused { message, .. }) => {
            shown.summary = Some(message);
            Ok(again(shown, StatusCode::UNAUTHORIZED))
        }
        Err(err) => Err(err.into()),
    }
}

/// Ends the session on the server and in the browser.
async fn sign_out(
    visit: Visit,
    state: web::Data<AppState>,
    dashboard: web::Data<Dashboard>,
) -> Result<HttpResponse, PageError> {
    if let Some(signed_in) = visit.signed_in {
        accounts::sign_out(&state.manage(), signed_in.digest).await?;
    }
    let mut response = see_other("/sign-in?notice=signed_out");
    let _ = response.add_cookie(&dashboard.removal(dashboard.session_cookie_name()));
    Ok(response)
}

pub fn signed_in_response(
    dashboard: &Dashboard,
    token: session::SessionToken,
    location: &str,
) -> HttpResponse {
    let mut response = see_other(location);
    let cookie = dashboard.cookie(dashboard.session_cookie_name(), token.expose().to_owned());
    let _ = response.add_cookie(&cookie);
    response
}

/// Only a path on this site: `/x`, never `//host` or `/\host` (open redirects).
pub fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n)
            if n.starts_with('/')
                && !n.starts_with("//")
                && !n.starts_with("/\\")
                && !n.chars().any(|c| c.is_control()) =>
        {
            n.to_owned()
        }
        _ => "/".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn next_stays_on_site() {
        assert_eq!(super::safe_next(Some("/members")), "/members");
        assert_eq!(super::safe_next(Some("//evil.example")), "/");
        assert_eq!(super::safe_next(Some("/\\evil.example")), "/");
        assert_eq!(super::safe_next(Some("https://evil.example")), "/");
        assert_eq!(super::safe_next(None), "/");
    }
}
