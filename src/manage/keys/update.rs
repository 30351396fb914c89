//! Changing a key: name, owner, scopes, roles, meta, expiry, allowlist, limits, credits, enabled.

use super::*;

pub async fn update(
    cx: &Context<'_>,
    audit: &AuditContext,
    tenant: &TenantId,
    id: &KeyId,
    input: KeyChanges,
) -> Result<Key, ManageError> {
    let at = cx.clock.now();
    let mut changes = ApiKeyChanges {
        updated_at: Some(at),
        ..Default::default()
    };
    let mut changed = serde_json::Map::new();
    if let Some(name) = input.name {
        changed.insert("name".into(), json!(name));
        changes.name = Some(name);
    }
    if let Some(owner) = input.owner_id {
        changed.insert("owner_id".into(), json!(owner));
        changes.owner_id = Some(owner);
    }
    if let Some(scopes) = input.scopes {
        changed.insert("scopes".into(), json!(scopes.to_strings()));
        changes.scopes = Some(scopes.to_json());
    }
    if let Some(meta) = input.meta {
        changed.insert("meta".into(), json!("(changed)"));
        changes.meta = Some(meta.to_json_string());
    }
    if let Some(expires_at) = input.expires_at {
        let expires_at = match expires_at {
            Some(moment) => Some(Expiry::At(moment).from(at, "expires_at")?),
            None => None,
        };
        changed.insert("expires_at".into(), json!(expires_at.map(utc)));
        changes.expires_at = Some(expires_at);
    }
    if let Some(list) = input.ip_allowlist {
        changed.insert("ip_allowlist".into(), json!(list.to_strings()));
        changes.ip_allowlist = Some(list.to_json_string());
    }
    if let Some(limit) = input.ratelimit {
        changed.insert("ratelimit".into(), json!(limit));
        changes.ratelimit_limit = Some(limit.map(|l| l.limit));
        changes.ratelimit_window = Some(limit.map(|l| l.window_seconds));
    }
    if let Some(credits) = input.credits {
        changed.insert("credits".into(), json!(credits));
        let refill = credits.and_then(|c| c.refill);
        changes.credits_remaining = Some(credits.map(|c| c.remaining));
        changes.credits_refill_amount = Some(refill.map(|r| r.amount));
        changes.credits_refill_interval = Some(refill.map(|r| r.interval.as_str().to_owned()));
    }
    if let Some(enabled) = input.enabled {
        changed.insert("enabled".into(), json!(enabled));
        changes.enabled = Some(enabled);
    }
    let roles = input.roles;
    let (audit, tenant, id) = (audit.clone(), tenant.clone(), id.clone());
    let row = cx
        .store
        .transaction(move |conn| {
            let current = api_keys::find(conn, &tenant, id.as_str())?.ok_or_else(key_not_found)?;
            if let Some(refs) = &roles {
                let roles = resolve_for_key(conn, &tenant, refs)?;
                changed.insert("roles".into(), json!(role_names(&roles)));
                // Rolled back with the rest if the key turns out to be revoked.
                key_roles::set_for_key(conn, &tenant, &current.id, &roles)?;
            }
            if current.revoked_at.is_some() && !changed.is_empty() {
                return Err(ManageError::refused(
                    ErrorCode::KeyRevoked,
                    "a revoked key cannot be changed; revoking is permanent",
                ));
            }
            api_keys::update(conn, &tenant, id.as_str(), &changes)?;
            let event = if changed.is_empty() {
                None
            } else {
                let change = match changes.enabled {
                    Some(false) if current.enabled => Change::Disabled,
                    Some(true) if !current.enabled => Change::Enabled,
                    _ => Change::Updated,
                };
                let subject = Subject::key(&current);
                let fields = Value::Object(changed);
                Some(Event::record(
                    conn, &audit, &tenant, subject, change, fields,
                )?)
            };
            let row = api_keys::find(conn, &tenant, id.as_str())?.ok_or_else(key_not_found)?;
            Ok::<_, ManageError>((Key::load(conn, &tenant, row, at)?, event))
        })
        .await?;
    let (key, event) = row;
    cx.events.dispatch(event.as_slice()).await;
    Ok(key)
}
