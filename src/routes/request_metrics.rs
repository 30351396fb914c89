//! Per-route request metrics: counts and latency by method, route pattern and status.

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::ServiceRequest;
use actix_web::middleware::Next;
use actix_web::{Error, web};

use crate::metrics::UNMATCHED_ROUTE;
use crate::routes::state::AppState;

/// Verification is the hot path and has metrics of its own (`verifications_total`,
/// `verify_duration_seconds`): it pays one string comparison here, never the route match.
const VERIFY_PATH: &str = "/v1/keys/verify";

/// Counts each request under its route pattern (`/v1/keys/{id}`), never its raw path, so ids
/// and whatever a client puts in a URL neither multiply the series nor reach the metrics.
pub async fn observe(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<actix_web::dev::ServiceResponse<impl MessageBody>, Error> {
    if req.path() == VERIFY_PATH {
        return next.call(req).await;
    }
    let started = Instant::now();
    let metrics = req
        .app_data::<web::Data<AppState>>()
        .map(|state| state.metrics.clone());
    // Matches the path against the routes a second time: only off the verification path.
    let route = req.match_pattern();
    let method = req.method().clone();
    let response = next.call(req).await?;
    if let Some(metrics) = metrics {
        metrics.http_request(
            method.as_str(),
            route.as_deref().unwrap_or(UNMATCHED_ROUTE),
            response.status().as_u16(),
            started.elapsed(),
        );
    }
    Ok(response)
}
