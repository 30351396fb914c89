//! The dashboard: server-rendered pages (askama templates in `templates/`) for people.
//!
//! Every page and form goes through [`guard::guard`], which resolves the session, checks the
//! CSRF token of every state-changing request and adds the security headers. Handlers state
//! the permission they need with the [`context::Member`] extractor.

pub mod account;
pub mod assets;
pub mod audit;
pub mod context;
pub mod forms;
pub mod guard;
pub mod invitations;
pub mod keys;
pub mod keyspaces;
pub mod members;
pub mod reveal;
pub mod root_keys;
pub mod tenants;
pub mod usage;
pub mod webhooks;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::from_fn;
use actix_web::{HttpResponse, ResponseError, web};
use askama::Template;

use self::context::Layout;
use crate::auth::password::PasswordWorkers;
use crate::auth::session::SessionKeys;
use crate::auth::sign_in_throttle::SignInThrottle;
use crate::error::ApiError;
use crate::redis::RedisTier;

/// At most this many password hashes run at once (each holds ~19 MiB for ~tens of ms).
pub const PASSWORD_PERMITS: usize = 4;

/// What the dashboard needs beside [`crate::routes::state::AppState`].
pub struct Dashboard {
    pub keys: SessionKeys,
    pub passwords: PasswordWorkers,
    pub throttle: SignInThrottle,
    /// Served over HTTPS: cookies get `Secure` and the `__Host-` prefix.
    pub https: bool,
    pub public_url: String,
    /// Carries a new secret to the one page that shows it.
    pub reveals: reveal::Reveals,
}

impl Dashboard {
    pub fn new(
        keys: SessionKeys,
        reveals: reveal::Reveals,
        public_url: &str,
        redis: Option<RedisTier>,
    ) -> Self {
        Self {
            throttle: SignInThrottle::with_redis(redis, keys.clone()),
            keys,
            reveals,
            passwords: PasswordWorkers::new(PASSWORD_PERMITS),
            https: public_url.starts_with("https://"),
            public_url: public_url.to_owned(),
        }
    }

    /// What the account and invitation services work with.
    pub fn credentials(&self) -> crate::manage::accounts::Credentials<'_> {
        crate::manage::accounts::Credentials {
            keys: &self.keys,
            passwords: &self.passwords,
            throttle: &self.throttle,
        }
    }

    pub fn session_cookie_name(&self) -> &'static str {
        if self.https {
            "__Host-latchkey_session"
        } else {
            "latchkey_session"
        }
    }

    pub fn csrf_cookie_name(&self) -> &'static str {
        if self.https {
            "__Host-latchkey_csrf"
        } else {
            "latchkey_csrf"
        }
    }

    /// A cookie with the flags every dashboard cookie carries.
    pub fn cookie(&self, name: &'static str, value: String) -> actix_web::cookie::Cookie<'static> {
        actix_web::cookie::Cookie::build(name, value)
            .path("/")
            .http_only(true)
            .secure(self.https)
            .same_site(actix_web::cookie::SameSite::Lax)
            .finish()
    }

    /// A cookie that tells the browser to forget `name`.
    pub fn removal(&self, name: &'static str) -> actix_web::cookie::Cookie<'static> {
        let mut cookie = self.cookie(name, String::new());
        cookie.make_removal();
        cookie
    }
}

/// Mounts the dashboard. Each section is its own scope so the guard never sees API paths.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/static/{path:.*}")
            .route(web::get().to(assets::serve))
            .route(web::head().to(assets::serve)),
    );
    cfg.service(
        web::scope("")
            .guard(actix_web::guard::fn_guard(|ctx| {
                is_dashboard_path(ctx.head().uri.path())
            }))
            .wrap(from_fn(guard::guard))
            .configure(account::configure)
            .configure(tenants::configure)
            .configure(members::configure)
            .configure(invitations::configure)
            .configure(keyspaces::configure)
            .configure(keys::configure)
            .configure(root_keys::configure)
            .configure(audit::configure)
            .configure(usage::configure)
            .configure(webhooks::configure)
            .default_service(web::to(page_not_found)),
    );
}

/// The first path segments the dashboard owns; everything else (API, OAuth, health) is never
/// routed through the dashboard guard.
const SECTIONS: &[&str] = &[
    "",
    "sign-up",
    "sign-in",
    "sign-out",
    "tenants",
    "members",
    "invitations",
    "keyspaces",
    "keys",
    "root-keys",
    "webhooks",
    "leaks",
    "audit",
    "usage",
];

fn is_dashboard_path(path: &str) -> bool {
    let first = path.trim_start_matches('/').split('/').next().unwrap_or("");
    SECTIONS.contains(&first)
}

async fn page_not_found() -> Result<HttpResponse, PageError> {
    Err(PageError::NotFound)
}

/// Renders a page with a status; HTML pages are never cached (they carry CSRF tokens and,
/// on some pages, secrets shown once).
pub fn render(status: StatusCode, page: &impl Template) -> HttpResponse {
    match page.render() {
        Ok(body) => HttpResponse::build(status)
            .insert_header((
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            ))
            .body(body),
        Err(err) => ApiError::internal(err).error_response(),
    }
}

/// A 303 to another dashboard page (the answer to every successful form post).
pub fn see_other(location: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, location.to_owned()))
        .finish()
}

/// Why a page could not be shown.
#[derive(Debug)]
pub enum PageError {
    /// Not signed in: go to the sign-in page, then come back to `next`.
    SignIn {
        next: String,
    },
    /// Signed in, but in no tenant.
    NoTenant,
    /// The member's role does not allow this: said in the dashboard's layout (its navigation,
    /// the member's role).
    Forbidden(Box<Layout>),
    NotFound,
    /// The CSRF token was missing or wrong, or the request came from another site.
    Csrf,
    /// Anything else: shown as a calm message; 5xx causes go to the log only.
    Api(ApiError),
}

impl From<ApiError> for PageError {
    fn from(err: ApiError) -> Self {
        Self::Api(err)
    }
}

impl From<crate::manage::ManageError> for PageError {
    fn from(err: crate::manage::ManageError) -> Self {
        Self::Api(err.into())
    }
}

impl From<crate::store::StoreError> for PageError {
    fn from(err: crate::store::StoreError) -> Self {
        Self::Api(err.into())
    }
}

impl From<diesel::result::Error> for PageError {
    fn from(err: diesel::result::Error) -> Self {
        Self::Api(err.into())
    }
}

impl From<anyhow::Error> for PageError {
    fn from(err: anyhow::Error) -> Self {
        Self::Api(ApiError::internal(err))
    }
}

impl std::fmt::Display for PageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Api(err) => write!(f, "{err}"),
            other => write!(f, "{other:?}"),
        }
    }
}

/// A member asked for something their role does not allow.
#[derive(Template)]
#[template(path = "forbidden.html")]
struct ForbiddenPage<'a> {
    layout: &'a Layout,
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    title: &'a str,
    message: &'a str,
    request_id: Option<String>,
}

impl ResponseError for PageError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::SignIn { .. } => StatusCode::SEE_OTHER,
            Self::NoTenant | Self::Forbidden(_) | Self::Csrf => StatusCode::FORBIDDEN,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::Api(err) => err.status,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let (title, message) = match self {
            Self::SignIn { next } => {
                let location = if next == "/" {
                    "/sign-in".to_owned()
                } else {
                    format!("/sign-in?next={}", urlencode(next))
                };
                return see_other(&location);
            }
            Self::NoTenant => (
                "No tenant",
                "You are not a member of any tenant. Ask an owner or admin for an invitation.",
            ),
            Self::Forbidden(layout) => {
                let page = ForbiddenPage { layout };
                return render(self.status_code(), &page);
            }
            Self::NotFound => (
                "Not found",
                "There is nothing here. Check the address, or go back.",
            ),
            Self::Csrf => (
                "Form expired",
                "This form has expired or did not come from this site. Go back, reload the page and try again.",
            ),
            Self::Api(err) if err.status.is_server_error() => {
                if err.status == StatusCode::INTERNAL_SERVER_ERROR {
                    tracing::error!(error = %err, "dashboard request failed");
                }
                (
                    "Something went wrong",
                    "The request could not be completed. Try again in a moment; if it keeps happening, give the request id below to your operator.",
                )
            }
            Self::Api(err) => ("Could not do that", err.message.as_str()),
        };
        let page = ErrorPage {
            title,
            message,
            request_id: crate::telemetry::current_request_id(),
        };
        let mut response = render(self.status_code(), &page);
        if let Self::Api(err) = self
            && let Some(seconds) = err.retry_after
            && let Ok(value) = HeaderValue::from_str(&seconds.to_string())
        {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        response
    }
}

/// Percent-encodes a query value.
pub fn urlencode(value: &str) -> String {
    serde_urlencoded::to_string([("", value)])
        .map(|s| s.trim_start_matches('=').to_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    #[test]
    fn dashboard_paths() {
        for path in [
            "/",
            "/sign-in",
            "/members",
            "/members/x/role",
            "/invitations/t",
        ] {
            assert!(super::is_dashboard_path(path), "{path}");
        }
        for path in [
            "/v1/keys",
            "/healthz",
            "/oauth/token",
            "/oauth/0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b/jwks.json",
            "/.well-known/oauth-authorization-server/oauth/0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b",
        ] {
            assert!(!super::is_dashboard_path(path), "{path}");
        }
        assert_eq!(super::urlencode("/members?a=b"), "%2Fmembers%3Fa%3Db");
    }
}
