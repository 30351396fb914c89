//! The middleware in front of every dashboard page: session, CSRF, security headers.

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{Error, HttpMessage, ResponseError, web};

use super::{Dashboard, PageError};
use crate::auth::session::{self, SESSION_PURPOSE, SessionToken, SignedIn};
use crate::routes::state::AppState;

/// What the guard learned about the visitor, for the handlers (see `context.rs`).
#[derive(Clone, Debug)]
pub struct Visit {
    pub signed_in: Option<SignedIn>,
    /// The token every form on the page must send back as `csrf_token`.
    pub csrf_token: String,
}

const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   frame-ancestors 'none'; form-action 'self'; base-uri 'none'";

pub async fn guard(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, Error> {
    let dashboard = req
        .app_data::<web::Data<Dashboard>>()
        .cloned()
        .expect("the dashboard state is registered with the app");
    let state = req
        .app_data::<web::Data<AppState>>()
        .cloned()
        .expect("the app state is registered with the app");

    let token = req
        .cookie(dashboard.session_cookie_name())
        .and_then(|c| SessionToken::parse(c.value()));
    let had_cookie = req.cookie(dashboard.session_cookie_name()).is_some();
    let signed_in = match token {
        Some(token) => {
            let digest = dashboard.keys.digest(SESSION_PURPOSE, &token);
            let at = state.clock.now();
            match state
                .store
                .run(move |conn| session::resolve(conn, &digest, at))
                .await
            {
                Ok(found) => found,
                Err(err) => {
                    return Ok(finish(
                        req.into_response(PageError::from(err).error_response())
                            .map_into_right_body(),
                        &dashboard,
                        None,
                        false,
                    ));
                }
            }
        }
        None => None,
    };

    // Visitors who are not signed in (sign-in, sign-up, invitations) get a signed
    // double-submit token: a random cookie, and its HMAC in every form.
    let anonymous_cookie = req
        .cookie(dashboard.csrf_cookie_name())
        .map(|c| c.value().to_owned())
        .filter(|v| SessionToken::parse(v).is_some());
    let mut new_anonymous_cookie = None;
    let csrf_token = match (&signed_in, &anonymous_cookie) {
        (Some(s), _) => s.csrf_token.clone(),
        (None, Some(value)) => dashboard.keys.anonymous_csrf(value),
        (None, None) => {
            let value = session::random_token();
            let token = dashboard.keys.anonymous_csrf(&value);
            new_anonymous_cookie = Some(value);
            token
        }
    };
    let stale_session = had_cookie && signed_in.is_none();

    if !matches!(*req.method(), Method::GET | Method::HEAD)
        && let Err(err) = check_csrf(&mut req, &csrf_token, &dashboard.public_url).await
    {
        let response = req
            .into_response(err.error_response())
            .map_into_right_body();
        return Ok(finish(response, &dashboard, None, stale_session));
    }

    req.extensions_mut().insert(Visit {
        signed_in,
        csrf_token,
    });
    let response = next.call(req).await?.map_into_left_body();
    Ok(finish(
        response,
        &dashboard,
        new_anonymous_cookie,
        stale_session,
    ))
}

/// Reads the form body, compares its `csrf_token` with the expected one in constant time,
/// and puts the body back for the handler. Also refuses requests a browser marks as coming
/// from another origin than `public_url`'s. The host the request names (`Host`,
/// `X-Forwarded-Host`, `Forwarded`) is not consulted: a client can write any of them.
async fn check_csrf(
    req: &mut ServiceRequest,
    expected: &str,
    public_url: &str,
) -> Result<(), PageError> {
    if let Some(origin) = req.headers().get(header::ORIGIN) {
        let same = origin
            .to_str()
            .ok()
            .and_then(origin_of)
            .is_some_and(|origin| Some(origin) == origin_of(public_url));
        if !same {
            return Err(PageError::Csrf);
        }
    }
    let is_form = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if !is_form {
        return Err(PageError::Csrf);
    }
    let body = req
        .extract::<web::Bytes>()
        .await
        .map_err(|_| PageError::Csrf)?;
    let sent = serde_urlencoded::from_bytes::<Vec<(String, String)>>(&body)
        .ok()
        .and_then(|pairs| pairs.into_iter().find(|(k, _)| k == "csrf_token"))
        .map(|(_, v)| v);
    match sent {
        Some(sent) if session::tokens_match(expected, &sent) => {
            req.set_payload(Payload::from(body));
            Ok(())
        }
        _ => Err(PageError::Csrf),
    }
}

/// The origin (RFC 6454) of an absolute http(s) URL: scheme and host in lower case, and the
/// port unless it is the scheme's default.
fn origin_of(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "http" => ":80",
        "https" => ":443",
        _ => return None,
    };
    let authority = rest.split(['/', '?', '#']).next()?.to_ascii_lowercase();
    if authority.is_empty() || authority.contains('@') {
        return None;
    }
    let authority = authority.strip_suffix(default_port).unwrap_or(&authority);
    Some(format!("{scheme}://{authority}"))
}

fn finish<B>(
    mut response: ServiceResponse<B>,
    dashboard: &Dashboard,
    new_anonymous_cookie: Option<String>,
    stale_session: bool,
) -> ServiceResponse<B> {
    let headers = response.headers_mut();
    for (name, value) in [
        (header::CONTENT_SECURITY_POLICY, CSP),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        // same-origin, not no-referrer: browsers then send a real `Origin` on form posts
        // (no-referrer makes it `null`), and invite links never leave the site.
        (header::REFERRER_POLICY, "same-origin"),
        (header::CACHE_CONTROL, "no-store"),
        (
            HeaderName::from_static("cross-origin-opener-policy"),
            "same-origin",
        ),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    if let Some(value) = new_anonymous_cookie {
        let cookie = dashboard.cookie(dashboard.csrf_cookie_name(), value);
        let _ = response.response_mut().add_cookie(&cookie);
    }
    if stale_session {
        let already_set = response
            .response()
            .cookies()
            .any(|c| c.name() == dashboard.session_cookie_name());
        if !already_set {
            let removal = dashboard.removal(dashboard.session_cookie_name());
            let _ = response.response_mut().add_cookie(&removal);
        }
    }
    response
}

#[cfg(test)]
mod tests {
    use super::origin_of;

    #[test]
    fn origins_compare_scheme_host_and_port() {
        let public = origin_of("https://Keys.Example.com/base");
        assert_eq!(public.as_deref(), Some("https://keys.example.com"));
        assert_eq!(origin_of("https://keys.example.com:443"), public);
        assert_ne!(origin_of("http://keys.example.com"), public);
        assert_ne!(origin_of("https://keys.example.com:8443"), public);
        assert_ne!(origin_of("https://keys.example.com.evil.example"), public);
        assert_eq!(origin_of("null"), None);
        assert_eq!(origin_of("https://user@keys.example.com"), None);
    }
}
