//! Revoking keys: one, or many by ids, owner, keyspace or raw values.

use super::*;

/// Most keys one bulk revocation names.
pub const MAX_BULK: usize = 1000;

/// Revokes one key. Revoking an already revoked key changes nothing and answers the key as it is.
pub async fn revoke(
    cx: &Context<'_>,
    audit: &AuditContext,
    tenant: &TenantId,
    id: String,
    reason: Option<String>,
) -> Result<KeyView, ManageError> {
    let reason = parse_reason(reason)?;
    let at = cx.clock.now();
    let (audit, tenant) = (audit.clone(), tenant.clone());
    let (row, revoked) = cx
        .store
        .transaction(move |conn| {
            api_keys::find(conn, &tenant, &id)?.ok_or_else(key_not_found)?;
            let revoked = api_keys::revoke(
                conn,
                &tenant,
                RevokeTarget::Ids(std::slice::from_ref(&id)),
                reason.as_deref(),
                at,
            )?;
            let fields = json!({ "reason": reason });
            let events = record_revocations(conn, &audit, &tenant, &revoked, &reason, &fields)?;
            let row = api_keys::find(conn, &tenant, &id)?.ok_or_else(key_not_found)?;
            Ok::<_, ManageError>((row, events))
        })
        .await?;
    cx.events.dispatch(&revoked).await;
    Ok(KeyView::from_row(row, at))
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

fn parse_reason(reason: Option<String>) -> Result<Option<String>, ManageError> {
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

/// A bulk revocation: exactly one of the selectors.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"owner_id": "customer_42", "reason": "customer offboarded"}))]
pub struct BulkRevoke {
    /// Key ids (at most 1,000).
    pub ids: Option<Vec<String>>,
    /// Every key of this owner.
    pub owner_id: Option<String>,
    /// Every key of this keyspace.
    pub keyspace_id: Option<String>,
    /// Raw key values, e.g. found in a leak (at most 1,000). The answer does not say which existed.
    pub keys: Option<Vec<String>>,
    pub reason: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BulkRevoked {
    /// How many of this tenant's keys were revoked by this request.
    pub revoked: usize,
}

pub async fn revoke_bulk(
    cx: &Context<'_>,
    audit: &AuditContext,
    tenant: &TenantId,
    input: BulkRevoke,
) -> Result<BulkRevoked, ManageError> {
    let reason = parse_reason(input.reason)?;
    let selectors = [
        input.ids.is_some(),
        input.owner_id.is_some(),
        input.keyspace_id.is_some(),
        input.keys.is_some(),
    ];
    if selectors.iter().filter(|s| **s).count() != 1 {
        return Err(ManageError::refused(
            ErrorCode::InvalidSelector,
            "give exactly one of ids, owner_id, keyspace_id or keys",
        ));
    }
    enum Selector {
        Ids(Vec<String>),
        Owner(String),
        Keyspace(String),
        Digests(Vec<KeyDigest>),
    }
    let (selector, selector_audit) = if let Some(ids) = input.ids {
        if ids.is_empty() || ids.len() > MAX_BULK {
            return Err(ManageError::invalid(
                "ids",
                format!("give 1 to {MAX_BULK} ids"),
            ));
        }
        // Malformed ids cannot match anything; drop them rather than fail the batch.
        let ids: Vec<String> = ids
            .iter()
            .filter_map(|id| crate::domain::ids::parse_id(id))
            .collect();
        let audit_value = json!({ "ids": ids });
        (Selector::Ids(ids), audit_value)
    } else if let Some(owner) = input.owner_id {
        let owner = parse_owner_id(&owner).map_err(|e| ManageError::invalid("owner_id", e))?;
        let audit_value = json!({ "owner_id": owner });
        (Selector::Owner(owner), audit_value)
    } else if let Some(keyspace) = input.keyspace_id {
        // A malformed id names no keyspace (and must not reach the store): nothing to revoke.
        let Some(keyspace) = crate::domain::ids::parse_id(&keyspace) else {
            return Ok(BulkRevoked { revoked: 0 });
        };
        let audit_value = json!({ "keyspace_id": keyspace });
        (Selector::Keyspace(keyspace), audit_value)
    } else {
        let keys = input.keys.unwrap_or_default();
        if keys.is_empty() || keys.len() > MAX_BULK {
            return Err(ManageError::invalid(
                "keys",
                format!("give 1 to {MAX_BULK} keys"),
            ));
        }
        // Values that are not well-formed keys of this deployment cannot exist; skip them.
        let digests: Vec<KeyDigest> = keys
            .iter()
            .filter_map(|raw| cx.hasher.parse(raw.trim()).ok())
            .flat_map(|parsed| cx.hasher.digests(&parsed))
            .collect();
        let audit_value = json!({ "keys": keys.len() });
        (Selector::Digests(digests), audit_value)
    };
    let at = cx.clock.now();
    let (audit, tenant) = (audit.clone(), tenant.clone());
    let revoked = cx
        .store
        .transaction(move |conn| {
            let target = match &selector {
                Selector::Ids(ids) => RevokeTarget::Ids(ids),
                Selector::Owner(owner) => RevokeTarget::Owner(owner),
                Selector::Keyspace(ks) => RevokeTarget::Keyspace(ks),
                Selector::Digests(digests) => RevokeTarget::Digests(digests),
            };
            let revoked = revoke_rows(conn, &tenant, target, reason.as_deref(), at)?;
            let fields = json!({ "reason": reason, "bulk": true, "selector": selector_audit });
            Ok::<_, ManageError>(record_revocations(
                conn, &audit, &tenant, &revoked, &reason, &fields,
            )?)
        })
        .await?;
    cx.events.dispatch(&revoked).await;
    Ok(BulkRevoked {
        revoked: revoked.len(),
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
