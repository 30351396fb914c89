//! HTTP routes: health, the REST API, OAuth and the dashboard.

pub mod api;
pub mod client_addr;
pub mod dashboard;
pub mod drain;
pub mod extractor;
pub mod health;
pub mod input;
pub mod oauth;
pub mod request_log;
pub mod request_metrics;
pub mod semantics;
pub mod state;

use actix_web::web;

use crate::audit::{Actor, AuditContext};

/// Mounts every route on an app.
pub fn configure(cfg: &mut web::ServiceConfig) {
    // The dashboard's scope only claims its own paths (see `dashboard::SECTIONS`).
    cfg.configure(health::configure)
        .configure(semantics::configure)
        .configure(api::configure)
        .configure(oauth::configure)
        .configure(dashboard::configure);
}

/// For requests that match no route.
pub async fn not_found(
    req: actix_web::HttpRequest,
) -> Result<actix_web::HttpResponse, crate::error::ApiError> {
    Err(crate::error::ApiError::new(
        actix_web::http::StatusCode::NOT_FOUND,
        crate::domain::error_code::ErrorCode::NotFound,
        format!("no route matches {} on this path", req.method()),
    ))
}

/// The audit context of a request made by `actor`: the client's address (through trusted
/// proxies), its user agent (first 256 characters), the request id, and the app's clock.
/// Answers that carry a credential (a new key's plaintext, a token) or its state are cached
/// nowhere: `Cache-Control: no-store`, and `Pragma: no-cache` for HTTP/1.0 caches (RFC 6749
/// §5.1 asks for both).
pub fn no_store(mut builder: actix_web::HttpResponseBuilder) -> actix_web::HttpResponseBuilder {
    use actix_web::http::header::{CACHE_CONTROL, HeaderValue, PRAGMA};
    builder
        .insert_header((CACHE_CONTROL, HeaderValue::from_static("no-store")))
        .insert_header((PRAGMA, HeaderValue::from_static("no-cache")));
    builder
}

pub fn audit_context(req: &actix_web::HttpRequest, actor: Actor) -> AuditContext {
    let state = req.app_data::<web::Data<state::AppState>>();
    AuditContext {
        actor,
        clock: state.map_or_else(crate::domain::time::Clock::system, |s| s.clock.clone()),
        ip: client_addr::of(req),
        user_agent: req
            .headers()
            .get(actix_web::http::header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|ua| ua.chars().take(256).collect()),
        request_id: crate::telemetry::current_request_id(),
    }
}
