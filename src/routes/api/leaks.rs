//! `POST /v1/leaks`: the secret-scanning partner endpoint (GitHub's format). Only reports signed
//! by a configured reporter key are read; anything else is 401 and changes nothing.

use actix_web::http::header::{self, CACHE_CONTROL};
use actix_web::{HttpRequest, HttpResponse, web};

use crate::audit::{Actor, AuditContext};
use crate::auth::leak_signature::{KEY_IDENTIFIER_HEADER, SIGNATURE_HEADER};
use crate::error::ApiError;
use crate::manage::leaks::{self, LeakReport};
use crate::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/leaks", web::post().to(report));
}

fn header_str<'a>(req: &'a HttpRequest, name: &str) -> Option<&'a str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

pub async fn report(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let identifier = header_str(&req, KEY_IDENTIFIER_HEADER);
    if let Err(err) =
        state
            .leak_reporters
            .verify(identifier, header_str(&req, SIGNATURE_HEADER), &body)
    {
        tracing::warn!(error = %err, "refused an unsigned or badly signed leak report");
        return Err(ApiError::unauthorized(
            "leak reports must be signed by a configured reporter key",
        ));
    }
    let reports: Vec<LeakReport> = serde_json::from_slice(&body).map_err(|_| {
        ApiError::bad_request(
            "invalid_body",
            "expected a JSON array of {token, type, url, source}",
        )
    })?;
    let audit = AuditContext {
        actor: Actor::LeakReporter(identifier.unwrap_or_default().chars().take(200).collect()),
        ip: req.peer_addr().map(|a| a.ip().to_string()),
        user_agent: header_str(&req, header::USER_AGENT.as_str())
            .map(|ua| ua.chars().take(256).collect()),
        request_id: crate::telemetry::current_request_id(),
    };
    let feedback = leaks::intake(&state, &audit, reports).await?;
    Ok(HttpResponse::Ok()
        .insert_header((CACHE_CONTROL, "no-store"))
        .json(feedback))
}
