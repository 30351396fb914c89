//! Reading the audit log: filtered, newest first, in pages or as an export.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use super::{Page, PageRequest};
use crate::domain::ids::TenantId;
use crate::domain::time::utc;
use crate::manage::{Context, ManageError};
use crate::store::audit_events::{self, AuditFilter};
use crate::store::models::AuditEventRow;

#[derive(Debug, Serialize, ToSchema)]
pub struct AuditEventView {
    pub id: String,
    pub occurred_at: DateTime<Utc>,
    pub actor: Actor,
    #[schema(example = "key.revoke")]
    pub action: String,
    pub target: Target,
    /// Changed fields (never secrets).
    #[schema(value_type = Object)]
    pub changes: Value,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub request_id: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Actor {
    /// `root_key`, `user`, `cli`, `leak_reporter` or `oauth_client`.
    #[serde(rename = "type")]
    pub kind: String,
    pub id: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Target {
    #[serde(rename = "type")]
    pub kind: String,
    pub id: String,
}

impl From<AuditEventRow> for AuditEventView {
    fn from(row: AuditEventRow) -> Self {
        Self {
            changes: serde_json::from_str(&row.changes).unwrap_or(Value::Null),
            id: row.id,
            occurred_at: utc(row.occurred_at),
            actor: Actor {
                kind: row.actor_type,
                id: row.actor_id,
            },
            action: row.action,
            target: Target {
                kind: row.target_type,
                id: row.target_id,
            },
            ip: row.ip,
            user_agent: row.user_agent,
            request_id: row.request_id,
        }
    }
}

pub async fn list(
    cx: &Context<'_>,
    tenant: &TenantId,
    filter: AuditFilter,
    page: PageRequest,
) -> Result<Page<AuditEventView>, ManageError> {
    let tenant = tenant.clone();
    let rows = {
        let page = page.clone();
        cx.store
            .run(move |conn| {
                audit_events::list(
                    conn,
                    &tenant,
                    &filter,
                    page.before.as_deref(),
                    page.fetch_limit(),
                )
            })
            .await?
    };
    Ok(page.page(rows, |r| &r.id, AuditEventView::from))
}

/// One chunk of an export: the events after the previous chunk's last id, newest first.
pub async fn export_chunk(
    cx: &Context<'_>,
    tenant: &TenantId,
    filter: AuditFilter,
    before: Option<String>,
    size: i64,
) -> Result<Vec<AuditEventView>, ManageError> {
    let tenant = tenant.clone();
    let rows = cx
        .store
        .run(move |conn| audit_events::list(conn, &tenant, &filter, before.as_deref(), size))
        .await?;
    Ok(rows.into_iter().map(AuditEventView::from).collect())
}
