//! `/v1/audit-events`: who did what, newest first; `?format=ndjson` exports everything matching.

use actix_web::{HttpResponse, web};
use bytes::Bytes;

use crate::error::{ApiError, ProblemDoc};
use crate::manage::Page;
use crate::manage::audit::{self, AuditEventView, AuditQuery};
use crate::routes::extractor::{AuditRead, Authorized};
use crate::routes::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/audit-events", web::get().to(list));
}

/// Rows fetched per chunk of an NDJSON export.
const EXPORT_CHUNK: i64 = 500;

/// Read the audit log, newest first, filtered; `format=ndjson` streams every matching event.
#[utoipa::path(get, path = "/v1/audit-events", tag = "audit", params(AuditQuery),
    responses(
        (status = 200, description = "One page (JSON), or every event as NDJSON", body = Page<AuditEventView>,
            content_type = "application/json"),
        (status = 422, description = "Invalid filter", body = ProblemDoc),
    ),
    security(("root_key" = ["audit:read"])))]
pub async fn list(
    auth: Authorized<AuditRead>,
    state: web::Data<AppState>,
    query: crate::routes::input::Query<AuditQuery>,
) -> Result<HttpResponse, ApiError> {
    match query.format.as_deref() {
        None | Some("json") => {
            Ok(HttpResponse::Ok().json(audit::list(&state.manage(), &auth.tenant, &query).await?))
        }
        Some("ndjson") => Ok(export(state, auth.caller.tenant.clone(), query.filter()?)),
        Some(_) => Err(ApiError::invalid_field("format", "must be json or ndjson")),
    }
}

/// Streams events chunk by chunk, so an export of any size uses bounded memory.
fn export(
    state: web::Data<AppState>,
    tenant: crate::domain::ids::TenantId,
    filter: crate::store::audit_events::AuditFilter,
) -> HttpResponse {
    let stream = futures_util::stream::unfold(Some(None::<String>), move |cursor| {
        let (state, tenant, filter) = (state.clone(), tenant.clone(), filter.clone());
        async move {
            let before = cursor?;
            let chunk =
                match audit::export_chunk(&state.manage(), &tenant, filter, before, EXPORT_CHUNK)
                    .await
                {
                    Ok(chunk) => chunk,
                    Err(err) => {
                        tracing::error!(error = %err, "audit export failed mid-stream");
                        return Some((
                            Err(actix_web::error::ErrorInternalServerError("export failed")),
                            None,
                        ));
                    }
                };
            if chunk.is_empty() {
                return None;
            }
            let next = (chunk.len() as i64 == EXPORT_CHUNK)
                .then(|| chunk.last().map(|e| e.id.clone()))
                .flatten();
            let mut body = Vec::new();
            for event in &chunk {
                if serde_json::to_writer(&mut body, event).is_ok() {
                    body.push(b'\n');
                }
            }
            Some((Ok::<_, actix_web::Error>(Bytes::from(body)), next.map(Some)))
        }
    });
    HttpResponse::Ok()
        .content_type("application/x-ndjson")
        .streaming(stream)
}
