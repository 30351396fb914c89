//! Reading the audit log: filtered, newest first, in pages or as an export.

use super::{Page, PageRequest};
use crate::domain::ids::TenantId;
use crate::manage::{Context, ManageError};
use crate::store::audit_events::{self, AuditFilter};
use crate::store::models::AuditEventRow;

pub async fn list(
    cx: &Context<'_>,
    tenant: &TenantId,
    filter: AuditFilter,
    page: PageRequest,
) -> Result<Page<AuditEventRow>, ManageError> {
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
    Ok(page.page(rows, |r| &r.id, |row| row))
}

/// One chunk of an export: the events after the previous chunk's last id, newest first.
pub async fn export_chunk(
    cx: &Context<'_>,
    tenant: &TenantId,
    filter: AuditFilter,
    before: Option<String>,
    size: i64,
) -> Result<Vec<AuditEventRow>, ManageError> {
    let tenant = tenant.clone();
    let rows = cx
        .store
        .run(move |conn| audit_events::list(conn, &tenant, &filter, before.as_deref(), size))
        .await?;
    Ok(rows)
}
