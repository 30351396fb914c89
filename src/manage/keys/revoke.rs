//! Revoking keys: one, or many by ids, owner, keyspace or raw values.

use super::*;
use crate::manage::root_keys;
use crate::store::models::RootKeyRow;
use crate::store::root_keys as store_root_keys;

/// A key after a request to revoke it.
#[derive(Debug)]
pub struct Revocation {
    pub key: Key,
    /// Whether this request revoked it; false when it had been revoked before. Decided inside
    /// the transaction, so of two concurrent requests exactly one is told it revoked the key.
    pub revoked_now: bool,
}

/// Revokes one key. Revoking an already revoked key changes nothing and answers the key as it is.
pub async fn revoke(
    cx: &Context<'_>,
    audit: &AuditContext,
    tenant: &TenantId,
    id: &KeyId,
    reason: Option<String>,
) -> Result<Revocation, ManageError> {
    let reason = parse_reason(reason)?;
    let at = cx.clock.now();
    let (audit, tenant, id) = (audit.clone(), tenant.clone(), id.clone());
    let (row, revoked) = cx
        .store
        .transaction(move |conn| {
            api_keys::find(conn, &tenant, id.as_str())?.ok_or_else(key_not_found)?;
            let revoked = api_keys::revoke(
                conn,
                &tenant,
                RevokeTarget::Ids(std::slice::from_ref(&id)),
                reason.as_deref(),
                at,
            )?;
            let fields = json!({ "reason": reason });
            let events = record_revocations(conn, &audit, &tenant, &revoked, &reason, &fields)?;
            let row = api_keys::find(conn, &tenant, id.as_str())?.ok_or_else(key_not_found)?;
            Ok::<_, ManageError>((Key::load(conn, &tenant, row, at)?, events))
        })
        .await?;
    cx.events.dispatch(&revoked).await;
    Ok(Revocation {
        key: row,
        revoked_now: !revoked.is_empty(),
    })
}

/// The audit event (with `fields`) and the after-commit event of each key just revoked.
fn record_revocations(
    conn: &mut DbConnection,
    audit: &AuditContext,
    tenant: &TenantId,
    revoked: &[ApiKeyRow],
    reason: &Option<String>,
    fields: &Value,
) -> Result<Vec<Event>, StoreError> {
    revoked
        .iter()
        .map(|row| {
            let change = Change::Revoked {
                reason: reason.clone(),
            };
            Event::record(
                conn,
                audit,
                tenant,
                Subject::key(row),
                change,
                fields.clone(),
            )
        })
        .collect()
}

pub(in crate::manage) fn parse_reason(
    reason: Option<String>,
) -> Result<Option<String>, ManageError> {
    match reason {
        Some(r) if r.chars().count() > 500 || r.chars().any(char::is_control) => {
            Err(ManageError::invalid(
                "reason",
                "must be at most 500 characters, without control characters",
            ))
        }
        Some(r) if r.trim().is_empty() => Ok(None),
        other => Ok(other.map(|r| r.trim().to_owned())),
    }
}

/// What a bulk revocation did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct BulkRevocation {
    /// This tenant's API keys this request revoked.
    pub keys: usize,
    /// This tenant's live root keys among raw values, revoked by this request.
    pub root_keys: usize,
    /// This tenant's live root keys among raw values, left alone: the caller may not revoke
    /// root keys.
    pub root_keys_left: usize,
}

/// Revokes the keys `selection` names; answers how many of this tenant's keys this request
/// revoked. Raw values may be root keys too: revoked (whatever the last-admin rule says, as for
/// a leak: the value is out) when `root_keys_allowed`, else left alone and counted.
pub async fn revoke_bulk(
    cx: &Context<'_>,
    audit: &AuditContext,
    tenant: &TenantId,
    selection: RevokeSelection,
    reason: Option<String>,
    root_keys_allowed: bool,
) -> Result<BulkRevocation, ManageError> {
    let reason = parse_reason(reason)?;
    // Whoever built the selection, one request revokes at most MAX_BULK named keys. (Malformed
    // ids were dropped already, so an empty list is no error: it names nothing.)
    match &selection {
        RevokeSelection::Ids(ids) if ids.len() > MAX_BULK => {
            return Err(ManageError::invalid(
                "ids",
                format!("give 1 to {MAX_BULK} ids"),
            ));
        }
        RevokeSelection::Keys(keys) if keys.len() > MAX_BULK => {
            return Err(ManageError::invalid(
                "keys",
                format!("give 1 to {MAX_BULK} keys"),
            ));
        }
        _ => {}
    }
    let selector_audit = match &selection {
        RevokeSelection::Ids(ids) => json!({ "ids": ids }),
        RevokeSelection::Owner(owner) => json!({ "owner_id": owner }),
        RevokeSelection::Keyspace(keyspace) => json!({ "keyspace_id": keyspace }),
        RevokeSelection::Keys(keys) => json!({ "keys": keys.len() }),
    };
    // Values that are not well-formed keys of this deployment cannot exist; they match nothing.
    let digests: Vec<KeyDigest> = match &selection {
        RevokeSelection::Keys(keys) => keys
            .iter()
            .flat_map(|raw| cx.hasher.digests_of(raw.expose_secret().trim()))
            .collect(),
        _ => Vec::new(),
    };
    if let RevokeSelection::Keyspace(None) = selection {
        return Ok(BulkRevocation::default());
    }
    let at = cx.clock.now();
    let (audit, tenant) = (audit.clone(), tenant.clone());
    let (revoked, root_keys_left) = cx
        .store
        .transaction(move |conn| {
            let target = match &selection {
                RevokeSelection::Ids(ids) => RevokeTarget::Ids(ids),
                RevokeSelection::Owner(owner) => RevokeTarget::Owner(owner),
                RevokeSelection::Keyspace(Some(ks)) => RevokeTarget::Keyspace(ks),
                RevokeSelection::Keyspace(None) | RevokeSelection::Keys(_) => {
                    RevokeTarget::Digests(&digests)
                }
            };
            let revoked = revoke_rows(conn, &tenant, target, reason.as_deref(), at)?;
            let fields = json!({ "reason": reason, "bulk": true, "selector": selector_audit });
            let mut events = record_revocations(conn, &audit, &tenant, &revoked, &reason, &fields)?;
            let exposed: Vec<(RootKeyRow, Value)> =
                store_root_keys::find_all_by_digests(conn, &digests)?
                    .into_iter()
                    .filter(|r| r.tenant_id == tenant.as_str() && r.revoked_at.is_none())
                    .map(|r| (r, json!({ "bulk": true, "selector": selector_audit })))
                    .collect();
            if !root_keys_allowed {
                return Ok::<_, ManageError>((events, exposed.len()));
            }
            let root =
                root_keys::revoke_exposed(conn, &audit, &tenant, &exposed, reason.as_deref(), at)?;
            events.extend(root);
            Ok((events, 0))
        })
        .await?;
    cx.events.dispatch(&revoked).await;
    let root_keys = revoked
        .iter()
        .filter(|e| matches!(e.subject, Subject::RootKey { .. }))
        .count();
    Ok(BulkRevocation {
        keys: revoked.len() - root_keys,
        root_keys,
        root_keys_left,
    })
}

fn revoke_rows(
    conn: &mut DbConnection,
    tenant: &TenantId,
    target: RevokeTarget<'_>,
    reason: Option<&str>,
    at: NaiveDateTime,
) -> Result<Vec<ApiKeyRow>, ManageError> {
    Ok(api_keys::revoke(conn, tenant, target, reason, at)?)
}
