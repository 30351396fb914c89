//! Creating a key: its plaintext is in this one answer, and an `Idempotency-Key` retry answers
//! the same key again without it.

use super::*;

/// An `Idempotency-Key` and the fingerprint of the request that carried it: a retry with the
/// same key and fingerprint answers the key made the first time.
#[derive(Debug)]
pub struct Idempotency {
    key: String,
    fingerprint: Vec<u8>,
}

impl Idempotency {
    pub fn new(key: String, fingerprint: Vec<u8>) -> Result<Self, ManageError> {
        if key.is_empty() || key.len() > 200 || key.chars().any(char::is_control) {
            return Err(ManageError::refused(
                ErrorCode::InvalidIdempotencyKey,
                "Idempotency-Key must be 1 to 200 printable characters",
            ));
        }
        Ok(Self { key, fingerprint })
    }
}

/// A key just made or, on an idempotent replay, the key the first request made.
#[derive(Debug)]
pub struct Created {
    pub key: Key,
    /// The plaintext, the first time only: `None` on an idempotent replay (it was shown once).
    pub plaintext: Option<PlainKey>,
}

pub async fn create(
    cx: &Context<'_>,
    audit: &AuditContext,
    tenant: &TenantId,
    new: NewKey,
    idempotency: Option<Idempotency>,
) -> Result<Created, ManageError> {
    let at = cx.clock.now();
    let explicit_expiry = new
        .expiry
        .map(|expiry| expiry.from(at, "expires_at"))
        .transpose()?;
    let (idempotency_key, fingerprint) = idempotency.map(|i| (i.key, i.fingerprint)).unzip();
    let hasher = cx.hasher.clone();
    let (audit, tenant) = (audit.clone(), tenant.clone());
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
                return Ok((replayed(conn, &tenant, existing, at)?, None));
            }
            let keyspace = keyspaces::find(conn, &tenant, new.keyspace_id.as_str())?
                .ok_or_else(|| ManageError::invalid("keyspace_id", "no such keyspace"))?;
            let roles = resolve_for_key(conn, &tenant, &new.roles)?;
            let prefix =
                KeyPrefix::parse(&keyspace.prefix).map_err(|e| ManageError::Internal(e.into()))?;
            let generated = hasher.generate(&prefix);
            let secret = StoredSecret {
                digest: generated.digest,
                start: generated.start,
                kind: DigestKind::Hmac,
            };
            let mut row = new_row(&keyspace, new, explicit_expiry, secret, &audit, at);
            row.idempotency_key = idempotency_key.clone();
            row.idempotency_fingerprint = fingerprint.clone();
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
            key_roles::set_for_key(conn, &tenant, &row.id, &roles)?;
            let mut fields = creation_fields(&row);
            fields["roles"] = json!(role_names(&roles));
            // The event also makes every node forget an "unknown" it may have cached for this
            // digest moments ago.
            let event = Event::record(
                conn,
                &audit,
                &tenant,
                Subject::key(&row),
                Change::Created,
                fields,
            )?;
            Ok((
                Created {
                    key: Key {
                        roles,
                        ..Key::from_row(row, at)
                    },
                    plaintext: Some(generated.key),
                },
                Some(event),
            ))
        })
        .await?;
    cx.events.dispatch(created.1.as_slice()).await;
    Ok(created.0)
}

/// What a new key is stored under, and how it is shown.
pub(super) struct StoredSecret {
    pub digest: KeyDigest,
    pub start: String,
    pub kind: DigestKind,
}

/// The row of a new key in `keyspace`: what `new` gives, the keyspace's defaults for the rest.
/// `explicit_expiry` is `new`'s expiry, already checked against `at`.
pub(super) fn new_row(
    keyspace: &KeyspaceRow,
    new: NewKey,
    explicit_expiry: Option<NaiveDateTime>,
    secret: StoredSecret,
    audit: &AuditContext,
    at: NaiveDateTime,
) -> ApiKeyRow {
    let NewKey {
        keyspace_id: _,
        name,
        owner_id,
        scopes,
        meta,
        expiry,
        ip_allowlist,
        ratelimit,
        credits,
        enabled,
        // Set apart by the caller: they are rows of their own (`key_roles`).
        roles: _,
    } = new;
    let scopes = scopes.unwrap_or_else(|| Scopes::from_json(&keyspace.default_scopes));
    let expires_at = if expiry.is_some() {
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
    let id = new_id();
    ApiKeyRow {
        family_id: id.clone(),
        id,
        tenant_id: keyspace.tenant_id.clone(),
        keyspace_id: keyspace.id.clone(),
        name,
        owner_id,
        scopes: scopes.to_json(),
        meta: meta.to_json_string(),
        digest: secret.digest.as_bytes().to_vec(),
        start: secret.start,
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
        idempotency_key: None,
        created_by: audit.actor.label(),
        idempotency_fingerprint: None,
        digest_kind: secret.kind.as_str().to_owned(),
        external_ref: None,
    }
}

fn replayed(
    conn: &mut DbConnection,
    tenant: &TenantId,
    existing: ApiKeyRow,
    at: NaiveDateTime,
) -> Result<Created, StoreError> {
    Ok(Created {
        key: Key::load(conn, tenant, existing, at)?,
        plaintext: None,
    })
}
