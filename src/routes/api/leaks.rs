//! `POST /v1/leaks`: the secret-scanning partner endpoint (GitHub's format). Only reports signed
//! by a configured reporter key are read; anything else is 401 and changes nothing.

use actix_web::{HttpRequest, HttpResponse, web};
use secrecy::SecretString;
use serde::Deserialize;

use crate::audit::Actor;
use crate::auth::leak_signature::{KEY_IDENTIFIER_HEADER, SIGNATURE_HEADER};
use crate::error::{ApiError, ProblemDoc};
use crate::manage::leaks::{self, LeakedToken};
use crate::routes::api::views::LeakFeedback;
use crate::routes::no_store;
use crate::routes::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/leaks").post(report));
}

/// One found token, as GitHub's secret scanning sends it.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct LeakReport {
    /// The secret found.
    #[schema(value_type = String)]
    pub token: SecretString,
    /// The token type the scanner matched (its pattern's name).
    #[serde(rename = "type", default)]
    pub token_type: String,
    /// Where it was found.
    #[serde(default)]
    pub url: Option<String>,
    /// What kind of place (`content`, `commit`, `issue`, ...).
    #[serde(default)]
    pub source: Option<String>,
}

impl From<LeakReport> for LeakedToken {
    fn from(report: LeakReport) -> Self {
        let LeakReport {
            token,
            token_type,
            url,
            source,
        } = report;
        Self {
            token,
            token_type,
            url,
            source,
        }
    }
}

fn header_str<'a>(req: &'a HttpRequest, name: &str) -> Option<&'a str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

/// Report leaked tokens
///
/// GitHub's secret-scanning partner format, signed by the scanner (not by a root key). Every
/// reported token that is a live API key or root key is revoked at once (a tenant's last
/// `root_keys:*` key too), and every access token is denied until it expires.
#[utoipa::path(post, path = "/v1/leaks", tag = "leaks", operation_id = "leaks.report", request_body = Vec<LeakReport>,
    security(()),
    params(
        ("Github-Public-Key-Identifier" = String, Header, description = "The reporter key that signed the body"),
        ("Github-Public-Key-Signature" = String, Header, description = "Base64 DER ECDSA P-256 signature over SHA-256 of the raw body"),
    ),
    responses(
        (status = 200, description = "Feedback per token: `true_positive` with `token_raw` for keys, root keys and access tokens that existed (each time a token is reported), `false_positive` with `token_hash` otherwise", body = Vec<LeakFeedback>),
        (status = 400, description = "Not a JSON array of reports (`invalid_body`) or too many (`too_many_tokens`)", body = ProblemDoc),
        (status = 401, description = "Unsigned or badly signed; nothing changed", body = ProblemDoc),
    ))]
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
            crate::domain::error_code::ErrorCode::InvalidBody,
            "expected a JSON array of {token, type, url, source}",
        )
    })?;
    let audit = crate::routes::audit_context(
        &req,
        Actor::LeakReporter(identifier.unwrap_or_default().chars().take(200).collect()),
    );
    let reports = reports.into_iter().map(LeakedToken::from).collect();
    let verdicts = leaks::intake(&state.manage(), &state.tokens, &audit, reports).await?;
    let feedback: Vec<LeakFeedback> = verdicts.into_iter().map(LeakFeedback::from).collect();
    Ok(no_store(HttpResponse::Ok()).json(feedback))
}
