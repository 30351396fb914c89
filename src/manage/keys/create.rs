//! Creating a key: its plaintext is in this one answer, and an `Idempotency-Key` retry answers
//! the same key again without it.

use super::*;

#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"keyspace_id": "019a5f0e-7c1d-7b2a-9d4e-3f2a1b0c9d8e", "name": "Acme Corp production",
    "owner_id": "customer_42", "scopes": ["documents:read", "documents:write"],
    "meta": {"plan": "pro"}, "ttl_seconds": 2592000, "ip_allowlist": ["203.0.113.0/24"],
    "ratelimit": {"limit": 100, "window_seconds": 60},
    "credits": {"remaining": 1000, "refill": {"amount": 1000, "interval": "monthly"}}}))]
pub struct CreateKey {
    pub keyspace_id: String,
    pub name: Option<String>,
    /// Your own identifier for whoever holds the key (a user or customer id).
    pub owner_id: Option<String>,
    /// Defaults to the keyspace's default scopes.
    pub scopes: Option<Vec<String>>,
    /// A JSON object of at most 8 KiB, returned with every verification.
    #[schema(value_type = Option<Object>)]
    pub meta: Option<Value>,
    /// Absolute expiry (RFC 3339, in the future). Give this or `ttl_seconds`, not both.
    pub expires_at: Option<DateTime<Utc>>,
    /// Lifetime from now; defaults to the keyspace's default ttl.
    pub ttl_seconds: Option<i64>,
    /// CIDRs or addresses the key may be used from; empty means anywhere.
    pub ip_allowlist: Option<Vec<String>>,
    /// Defaults to the keyspace's default rate limit.
    pub ratelimit: Option<RateLimit>,
    pub credits: Option<Credits>,
    /// Default true.
    pub enabled: Option<bool>,
}

/// The answer to a create: the key as stored plus, the first time only, its plaintext.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedKey {
    #[serde(flatten)]
    pub view: KeyView,
    /// The plaintext key. Shown only in this response; store it now. `null` on an idempotent replay.
    #[schema(value_type = Option<String>, example = "acme_live_8Hq2vR0dXk3N7bYc1LmQ5sTf9WpZ4gJe6UaOiE2x")]
    #[serde(serialize_with = "PlainKey::serialize_exposed_opt")]
    pub key: Option<PlainKey>,
    /// Present on an idempotent replay, explaining why `key` is null.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

pub async fn create(
    cx: &Context<'_>,
    audit: &AuditContext,
    tenant: &TenantId,
    input: CreateKey,
    idempotency_key: Option<String>,
) -> Result<CreatedKey, ManageError> {
    if let Some(key) = &idempotency_key
        && (key.is_empty() || key.len() > 200 || key.chars().any(char::is_control))
    {
        return Err(ManageError::refused(
            ErrorCode::InvalidIdempotencyKey,
            "Idempotency-Key must be 1 to 200 printable characters",
        ));
    }
    // Only compared with the fingerprint stored with the key the Idempotency-Key made.
    let fingerprint = idempotency_key.as_ref().map(|_| fingerprint(&input));
    let at = cx.clock.now();
    let name = input
        .name
        .as_deref()
        .map(parse_name)
        .transpose()
        .map_err(|e| ManageError::invalid("name", e))?;
    let owner_id = input
        .owner_id
        .as_deref()
        .map(parse_owner_id)
        .transpose()
        .map_err(|e| ManageError::invalid("owner_id", e))?;
    let scopes = input.scopes.as_deref().map(parse_scopes).transpose()?;
    let meta = match input.meta {
        Some(value) => Meta::parse(value).map_err(field("meta"))?,
        None => Meta::empty(),
    };
    let explicit_expiry = parse_expiry(input.expires_at, input.ttl_seconds, at)
        .map_err(|(f, m)| ManageError::invalid(f, m))?;
    let ip_allowlist = IpAllowlist::parse(input.ip_allowlist.as_deref().unwrap_or_default())
        .map_err(field("ip_allowlist"))?;
    let ratelimit = input.ratelimit.map(parse_ratelimit).transpose()?;
    let credits = input.credits.map(parse_credits).transpose()?;
    let keyspace_id = crate::domain::ids::parse_id(&input.keyspace_id)
        .ok_or_else(|| ManageError::invalid("keyspace_id", "no such keyspace"))?;

    let hasher = cx.hasher.clone();
    let (audit, tenant) = (audit.clone(), tenant.clone());
    let explicit_ttl = input.expires_at.is_some() || input.ttl_seconds.is_some();
    let enabled = input.enabled.unwrap_or(true);
    let created = cx
        .store
        .transaction(move |conn| {
            if let Some(idem) = &idempotency_key
                && let Some(existing) = api_keys::find_by_idempotency_key(conn, &tenant, idem)?
            {
                // Keys made before fingerprints were kept have none: replayed as before.
                if existing
                    .idempotency_fingerprint
                    .as_ref()
                    .is_some_and(|stored| Some(stored) != fingerprint.as_ref())
                {
                    return Err(ManageError::refused(
                        ErrorCode::IdempotencyKeyReused,
                        "this Idempotency-Key was already used with a different request body",
                    ));
                }
                return Ok((replayed(existing, at), None));
            }
            let keyspace = keyspaces::find(conn, &tenant, &keyspace_id)?
                .ok_or_else(|| ManageError::invalid("keyspace_id", "no such keyspace"))?;
            let prefix =
                KeyPrefix::parse(&keyspace.prefix).map_err(|e| ManageError::Internal(e.into()))?;
            let scopes = scopes.unwrap_or_else(|| Scopes::from_json(&keyspace.default_scopes));
            let expires_at = if explicit_ttl {
                explicit_expiry
            } else {
                keyspace
                    .default_ttl_seconds
                    .map(|ttl| at + TimeDelta::seconds(ttl))
            };
            let ratelimit = ratelimit.or_else(|| {
                RateLimit::from_stored(
                    keyspace.default_ratelimit_limit,
                    keyspace.default_ratelimit_window,
                )
            });
            let generated = hasher.generate(&prefix);
            let id = new_id();
            let row = ApiKeyRow {
                family_id: id.clone(),
                id,
                tenant_id: tenant.as_str().to_owned(),
                keyspace_id: keyspace.id,
                name,
                owner_id,
                scopes: scopes.to_json(),
                meta: meta.to_json_string(),
                digest: generated.digest.as_bytes().to_vec(),
                start: generated.start,
                created_at: at,
                updated_at: at,
                last_used_at: None,
                expires_at,
                revoked_at: None,
                revoked_reason: None,
                enabled,
                ip_allowlist: ip_allowlist.to_json_string(),
                ratelimit_limit: ratelimit.map(|l| l.limit),
                ratelimit_window: ratelimit.map(|l| l.window_seconds),
                credits_remaining: credits.map(|c| c.remaining),
                credits_refill_amount: credits.and_then(|c| c.refill).map(|r| r.amount),
                credits_refill_interval: credits
                    .and_then(|c| c.refill)
                    .map(|r| r.interval.as_str().to_owned()),
                credits_refilled_at: credits
                    .and_then(|c| c.refill)
                    .map(|r| r.interval.period_start(at)),
                rotated_from: None,
                idempotency_key: idempotency_key.clone(),
                created_by: audit.actor.label(),
                idempotency_fingerprint: fingerprint.clone(),
            };
            match api_keys::insert(conn, &row) {
                Ok(()) => {}
                // A concurrent retry with the same Idempotency-Key won the race: answer as it did.
                Err(e) if e.is_unique_violation() && idempotency_key.is_some() => {
                    return Err(ManageError::refused(
                        ErrorCode::IdempotencyConflict,
                        "a request with this Idempotency-Key is being processed; retry it",
                    ));
                }
                Err(e) => return Err(e.into()),
            }
            // The event also makes every node forget an "unknown" it may have cached for this
            // digest moments ago.
            let event = Event::record(
                conn,
                &audit,
                &tenant,
                Subject::key(&row),
                Change::Created,
                creation_fields(&row),
            )?;
            Ok((
                CreatedKey {
                    view: KeyView::from_row(row, at),
                    key: Some(generated.key),
                    note: None,
                },
                Some(event),
            ))
        })
        .await?;
    cx.events.dispatch(created.1.as_slice()).await;
    Ok(created.0)
}

/// What makes two create requests the same: SHA-256 of the parsed request as JSON, with every
/// object's keys sorted and absent fields left out. Whitespace, the order of fields (in `meta`
/// too) and `null` for an absent field do not count, and a field added to [`CreateKey`] later
/// does not change the fingerprint of requests without it. The prefix names this form.
fn fingerprint(input: &CreateKey) -> Vec<u8> {
    let mut request = serde_json::to_value(input).unwrap_or(Value::Null);
    if let Value::Object(fields) = &mut request {
        fields.retain(|_, value| !value.is_null());
    }
    let mut hash = Sha256::new();
    hash.update(b"create-key-v1\0");
    hash.update(sorted(request).to_string().as_bytes());
    hash.finalize().to_vec()
}

/// `value` with the keys of every object in order (whatever order the map type keeps).
fn sorted(value: Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut fields: Vec<(String, Value)> = map.into_iter().collect();
            fields.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(fields.into_iter().map(|(k, v)| (k, sorted(v))).collect())
        }
        Value::Array(items) => Value::Array(items.into_iter().map(sorted).collect()),
        other => other,
    }
}

fn replayed(existing: ApiKeyRow, at: NaiveDateTime) -> CreatedKey {
    CreatedKey {
        view: KeyView::from_row(existing, at),
        key: None,
        note: Some(
            "this Idempotency-Key already created this key; its plaintext was shown only in the \
             first response and cannot be shown again"
                .into(),
        ),
    }
}
