//! Deleting keys (issue 19 §4): a revoked or expired key, or a live one when forced (revoked
//! first). What stays is a tombstone of its digest, so it can never be stored (imported) again,
//! and its audit trail.

use super::*;
use crate::store::deleted_keys;

/// The reason a forced deletion revokes a live key with.
const FORCED_REASON: &str = "deleted";

/// Deletes one key; a live one (active or disabled) only with `force`.
pub async fn delete(
    cx: &Context<'_>,
    audit: &AuditContext,
    tenant: &TenantId,
    id: &KeyId,
    force: bool,
) -> Result<(), ManageError> {
    let at = cx.clock.now();
    let (audit, tenant, id) = (audit.clone(), tenant.clone(), id.clone());
    let events = cx
        .store
        .transaction(move |conn| {
            let row = api_keys::find(conn, &tenant, id.as_str())?.ok_or_else(key_not_found)?;
            delete_rows(conn, &audit, &tenant, vec![row], force, at)
        })
        .await?;
    cx.events.dispatch(&events).await;
    Ok(())
}

/// Deletes `rows` (keys of `tenant`) inside the caller's transaction: refused whole if one is
/// live and not `force`d; otherwise live ones are revoked (audited and announced as any
/// revocation), then each is replaced by its tombstone and audited as `key.delete`. Answers the
/// events to dispatch after commit (they evict the keys from every node's caches).
pub(in crate::manage) fn delete_rows(
    conn: &mut DbConnection,
    audit: &AuditContext,
    tenant: &TenantId,
    rows: Vec<ApiKeyRow>,
    force: bool,
    at: NaiveDateTime,
) -> Result<Vec<Event>, ManageError> {
    let live: Vec<KeyId> = rows
        .iter()
        .filter(|row| matches!(row.status(at), KeyStatus::Active | KeyStatus::Disabled))
        .map(|row| KeyId::from_trusted(row.id.clone()))
        .collect();
    if !live.is_empty() && !force {
        return Err(ManageError::refused(
            ErrorCode::KeyActive,
            "only revoked or expired keys are deleted; add ?force=true to revoke live ones first",
        ));
    }
    let mut events = Vec::new();
    if !live.is_empty() {
        let reason = Some(FORCED_REASON.to_owned());
        let revoked = api_keys::revoke(
            conn,
            tenant,
            RevokeTarget::Ids(&live),
            reason.as_deref(),
            at,
        )?;
        for row in &revoked {
            let change = Change::Revoked {
                reason: reason.clone(),
            };
            let event = Event::record(
                conn,
                audit,
                tenant,
                Subject::key(row),
                change,
                json!({ "reason": reason }),
            )?;
            events.push(event);
        }
    }
    for row in &rows {
        deleted_keys::insert(conn, tenant, &row.id, &row.digest, at)?;
        let fields = json!({ "keyspace_id": row.keyspace_id, "forced": force });
        let event = Event::record(
            conn,
            audit,
            tenant,
            Subject::key(row),
            Change::Removed,
            fields,
        )?;
        events.push(event);
    }
    let ids: Vec<&str> = rows.iter().map(|row| row.id.as_str()).collect();
    api_keys::delete(conn, tenant, &ids)?;
    Ok(events)
}
