//! Liveness and readiness probes.

use std::time::Duration;

use actix_web::{HttpRequest, HttpResponse, web};
use secrecy::ExposeSecret;
use serde_json::json;

use crate::auth::session::tokens_match;
use crate::error::ApiError;
use crate::routes::drain::Drain;
use crate::routes::extractor::bearer_token;
use crate::routes::state::AppState;
use crate::store::StoreError;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/healthz").get(healthz))
        .service(web::resource("/readyz").get(readyz))
        .service(web::resource("/metrics").get(metrics));
}

/// The process is alive and serving HTTP.
async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "ok" }))
}

/// The store (and Redis, once configured) answers; 503 otherwise, and 503 `draining` once the
/// node is shutting down. While the store's breaker is open the answer is "unavailable" at once,
/// without asking it.
async fn readyz(state: web::Data<AppState>, drain: web::Data<Drain>) -> HttpResponse {
    if drain.is_draining() {
        return HttpResponse::ServiceUnavailable().json(json!({ "status": "draining" }));
    }
    let store = match tokio::time::timeout(Duration::from_secs(2), state.store.ping()).await {
        Ok(Ok(())) => "ok",
        Ok(Err(StoreError::Down)) => "unavailable",
        Ok(Err(err)) => {
            tracing::warn!(error = %err, "readiness: store check failed");
            "unavailable"
        }
        Err(_) => "timeout",
    };
    let ready = store == "ok";
    let mut checks = json!({ "store": store });
    let mut degraded = false;
    if let Some(redis) = &state.caches.redis {
        let up = tokio::time::timeout(Duration::from_secs(1), redis.ping())
            .await
            .unwrap_or(false);
        // Without Redis this node still answers correctly from the store: degraded, not down.
        degraded = !up || !redis.is_subscribed();
        checks["redis"] = json!(if up { "ok" } else { "unavailable" });
        checks["invalidations"] = json!(if redis.is_subscribed() {
            "subscribed"
        } else {
            "not subscribed"
        });
    }
    let status = match (ready, degraded) {
        (false, _) => "unavailable",
        (true, true) => "degraded",
        (true, false) => "ready",
    };
    let body = json!({ "status": status, "checks": checks });
    if ready {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}

/// Prometheus metrics in the text exposition format; with `LATCHKEY_METRICS_TOKEN` set, only
/// for `Authorization: Bearer <that token>`.
async fn metrics(state: web::Data<AppState>, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    if let Some(expected) = &state.metrics_token {
        let given = bearer_token(&req).unwrap_or_default();
        if !tokens_match(expected.expose_secret(), given) {
            return Err(ApiError::unauthorized(
                "send the metrics token as `Authorization: Bearer <LATCHKEY_METRICS_TOKEN>`",
            ));
        }
    }
    Ok(HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(state.metrics.render()))
}
