//! HTTP routes: health, the REST API, OAuth and the dashboard.

pub mod api;
pub mod dashboard;
pub mod health;
pub mod oauth;

use actix_web::web;

/// Mounts every route on an app.
pub fn configure(cfg: &mut web::ServiceConfig) {
    // The dashboard's scope only claims its own paths (see `dashboard::SECTIONS`).
    cfg.configure(health::configure)
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
        "not_found",
        format!("no route matches {} on this path", req.method()),
    ))
}
