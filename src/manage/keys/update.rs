//! Changing a key: name, owner, scopes, meta, expiry, allowlist, limits, credits, enabled.

use super::*;

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"scopes": ["documents:read"], "enabled": false}))]
pub struct UpdateKey {
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub name: Option<Option<String>>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub owner_id: Option<Option<String>>,
    pub scopes: Option<Vec<String>>,
    #[schema(value_type = Option<Object>)]
    pub meta: Option<Value>,
    /// `null` removes the expiry.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<DateTime<Utc>>)]
    pub expires_at: Option<Option<DateTime<Utc>>>,
    pub ip_allowlist: Option<Vec<String>>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<RateLimit>)]
    pub ratelimit: Option<Option<RateLimit>>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<Credits>)]
    pub credits: Option<Option<Credits>>,
    /// Disabling is reversible (unlike revoking).
    pub enabled: Option<bool>,
}

pub async fn update(
    cx: &Context<'_>,
    audit: &AuditContext,
    tenant: &TenantId,
    id: String,
    input: UpdateKey,
) -> Result<KeyView, ManageError> {
    let at = cx.clock.now();
    let mut changes = ApiKeyChanges {
        updated_at: Some(at),
        ..Default::default()
    };
    let mut changed = serde_json::Map::new();
    if let Some(name) = input.name {
        let name = name
            .as_deref()
            .map(parse_name)
            .transpose()
            .map_err(|e| ManageError::invalid("name", e))?;
        changed.insert("name".into(), json!(name));
        changes.name = Some(name);
    }
    if let Some(owner) = input.owner_id {
        let owner = owner
            .as_deref()
            .map(parse_owner_id)
            .transpose()
            .map_err(|e| ManageError::invalid("owner_id", e))?;
        changed.insert("owner_id".into(), json!(owner));
        changes.owner_id = Some(owner);
    }
    if let Some(scopes) = input.scopes {
        let scopes = parse_scopes(&scopes)?;
        changed.insert("scopes".into(), json!(scopes.to_strings()));
        changes.scopes = Some(scopes.to_json());
    }
    if let Some(meta) = input.meta {
        let meta = Meta::parse(meta).map_err(field("meta"))?;
        changed.insert("meta".into(), json!("(changed)"));
        changes.meta = Some(meta.to_json_string());
    }
    if let Some(expires_at) = input.expires_at {
        let expires_at = match expires_at {
            Some(at_value) => parse_expiry(Some(at_value), None, at)
                .map_err(|(f, m)| ManageError::invalid(f, m))?,
            None => None,
        };
        changed.insert("expires_at".into(), json!(expires_at.map(utc)));
        changes.expires_at = Some(expires_at);
    }
    if let Some(list) = input.ip_allowlist {
        let list = IpAllowlist::parse(&list).map_err(field("ip_allowlist"))?;
        changed.insert("ip_allowlist".into(), json!(list.to_strings()));
        changes.ip_allowlist = Some(list.to_json_string());
    }
    if let Some(limit) = input.ratelimit {
        let limit = limit.map(parse_ratelimit).transpose()?;
        changed.insert("ratelimit".into(), json!(limit));
        changes.ratelimit_limit = Some(limit.map(|l| l.limit));
        changes.ratelimit_window = Some(limit.map(|l| l.window_seconds));
    }
    if let Some(credits) = input.credits {
        let credits = credits.map(parse_credits).transpose()?;
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
    let (audit, tenant) = (audit.clone(), tenant.clone());
    let row = cx
        .store
        .transaction(move |conn| {
            let current = api_keys::find(conn, &tenant, &id)?.ok_or_else(key_not_found)?;
            if current.revoked_at.is_some() && !changed.is_empty() {
                return Err(ManageError::refused(
                    ErrorCode::KeyRevoked,
                    "a revoked key cannot be changed; revoking is permanent",
                ));
            }
            api_keys::update(conn, &tenant, &id, &changes)?;
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
            let row = api_keys::find(conn, &tenant, &id)?.ok_or_else(key_not_found)?;
            Ok::<_, ManageError>((row, event))
        })
        .await?;
    let (row, event) = row;
    cx.events.dispatch(event.as_slice()).await;
    Ok(KeyView::from_row(row, at))
}
