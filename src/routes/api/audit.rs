//! `/v1/audit-events`: who did what, newest first; `?format=ndjson` exports everything matching.

use actix_web::{HttpResponse, web};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde::Deserialize;

use crate::error::{ApiError, ProblemDoc};
use crate::manage::audit;
use crate::manage::{ManageError, PageRequest, parse_filter};
use crate::routes::api::views::{AuditEventView, Page};
use crate::routes::extractor::{AuditRead, Authorized};
use crate::routes::state::AppState;
use crate::store::audit_events::AuditFilter;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/audit-events").get(list));
}

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    pub action: Option<String>,
    pub actor: Option<String>,
    pub target: Option<String>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    /// Items per page, 1 to 100 (default 50).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
    pub cursor: Option<String>,
    /// `ndjson` streams every matching event, one JSON object per line.
    #[param(value_type = Option<ExportFormat>, inline)]
    pub format: Option<String>,
}

/// The answer's format (the schema of [`AuditQuery::format`]).
#[derive(utoipa::ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)] // named by the schema only
pub enum ExportFormat {
    Json,
    Ndjson,
}

/// The events a query asks for. (Its page is read only for a JSON answer: an export has none.)
impl TryFrom<&AuditQuery> for AuditFilter {
    type Error = ManageError;

    fn try_from(query: &AuditQuery) -> Result<Self, ManageError> {
        let AuditQuery {
            action,
            actor,
            target,
            since,
            until,
            limit: _,
            cursor: _,
            format: _,
        } = query;
        Ok(Self {
            action: parse_filter("action", action.clone())?,
            actor_id: parse_filter("actor", actor.clone())?,
            target_id: parse_filter("target", target.clone())?,
            since: since.map(|t| t.naive_utc()),
            until: until.map(|t| t.naive_utc()),
        })
    }
}

/// Rows fetched per chunk of an NDJSON export.
const EXPORT_CHUNK: i64 = 500;

/// Read the audit log
///
/// Who did what, newest first, filtered by action, actor, target and time; one page of JSON, or
/// with `format=ndjson` every matching event as one JSON object per line. Needs `audit:read`.
#[utoipa::path(get, path = "/v1/audit-events", tag = "auditEvents", operation_id = "auditEvents.list", params(AuditQuery),
    responses(
        (status = 200, description = "One page (JSON), or with `format=ndjson` every matching event, one `AuditEvent` object per line (NDJSON)",
            content((Page<AuditEventView> = "application/json"), (String = "application/x-ndjson"))),
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
            let page = PageRequest::parse(query.limit, query.cursor.as_deref())?;
            let filter = AuditFilter::try_from(&*query)?;
            let listed = audit::list(&state.manage(), &auth.tenant, filter, page).await?;
            Ok(HttpResponse::Ok().json(Page::<AuditEventView>::from(listed)))
        }
        Some("ndjson") => {
            let filter = AuditFilter::try_from(&*query)?;
            Ok(export(state, auth.caller.tenant.clone(), filter))
        }
        Some(_) => Err(ApiError::invalid_field("format", "must be json or ndjson")),
    }
}

/// Streams events chunk by chunk, so an export of any size uses bounded memory.
fn export(
    state: web::Data<AppState>,
    tenant: crate::domain::ids::TenantId,
    filter: AuditFilter,
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
            for event in chunk {
                if serde_json::to_writer(&mut body, &AuditEventView::from(event)).is_ok() {
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
