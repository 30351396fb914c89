//! Rotating a key: a successor with the same configuration, the old key valid until the grace
//! ends; rotating a revoked key revokes its whole family (reuse detection).

use super::*;

/// Longest rotation grace period: 30 days.
pub const MAX_GRACE_SECONDS: i64 = 30 * 24 * 3600;

/// A rotation: the new key (its plaintext, once) and the old key's new expiry.
#[derive(Debug)]
pub struct Rotated {
    pub key: Key,
    pub plaintext: PlainKey,
    pub previous_key_id: KeyId,
    /// The old key keeps working until this moment (now plus the grace period, or sooner if
    /// it already expired earlier).
    pub previous_expires_at: DateTime<Utc>,
}

pub async fn rotate(
    cx: &Context<'_>,
    audit: &AuditContext,
    tenant: &TenantId,
    id: &KeyId,
    grace_period_seconds: i64,
) -> Result<Rotated, ManageError> {
    if !(0..=MAX_GRACE_SECONDS).contains(&grace_period_seconds) {
        return Err(ManageError::invalid(
            "grace_period_seconds",
            format!("must be between 0 and {MAX_GRACE_SECONDS}"),
        ));
    }
    let at = cx.clock.now();
    let hasher = cx.hasher.clone();
    let (audit, tenant, id) = (audit.clone(), tenant.clone(), id.clone());
    let outcome = cx
        .store
        .transaction(move |conn| {
            // Rotations and family revocations of a tenant take turns: on PostgreSQL a family
            // revocation would not see a successor inserted by a rotation still in flight.
            tenants::lock(conn, &tenant)?;
            let old = api_keys::find(conn, &tenant, id.as_str())?.ok_or_else(key_not_found)?;
            if old.revoked_at.is_some() {
                // Someone is rotating a key that was revoked: whoever holds it is not who we
                // think. Revoke the whole family and refuse (reuse detection).
                let revoked = api_keys::revoke(
                    conn,
                    &tenant,
                    RevokeTarget::Family(&old.family_id),
                    Some("rotation_reuse_detected"),
                    at,
                )?;
                // One audit event for the family; one event per key it revoked.
                audit.record(
                    conn,
                    &tenant,
                    "key.family_revoke",
                    ("key", &old.id),
                    json!({
                        "reason": "rotation_reuse_detected",
                        "family_id": old.family_id,
                        "revoked_key_ids": revoked.iter().map(|r| &r.id).collect::<Vec<_>>(),
                    }),
                )?;
                let reason = Some("rotation_reuse_detected".to_owned());
                let fields = json!({ "reason": reason });
                let events: Vec<Event> = revoked
                    .iter()
                    .map(|row| {
                        let change = Change::Revoked {
                            reason: reason.clone(),
                        };
                        let event = Event::new(&audit, &tenant, Subject::key(row), change)
                            .with_source(Source::ReuseDetection);
                        event.enqueue_webhooks(conn, &audit, &fields)?;
                        Ok(event)
                    })
                    .collect::<Result<_, StoreError>>()?;
                return Ok(Err(events));
            }
            if old.status(at) == KeyStatus::Expired {
                return Err(ManageError::refused(
                    ErrorCode::KeyExpired,
                    "an expired key cannot be rotated; create a new key instead",
                ));
            }
            let already_rotated = || {
                ManageError::refused(
                    ErrorCode::KeyAlreadyRotated,
                    "this key was already rotated; rotate its newest successor instead",
                )
            };
            if api_keys::has_successor(conn, &tenant, &old.id)? {
                return Err(already_rotated());
            }
            // An imported key's start is another system's: its successor takes the keyspace's
            // prefix, in latchkey's format.
            let prefix = if DigestKind::from_stored(&old.digest_kind).is_legacy() {
                keyspaces::find(conn, &tenant, &old.keyspace_id)?.map(|ks| ks.prefix)
            } else {
                old.start
                    .rsplit_once('_')
                    .map(|(prefix, _)| prefix.to_owned())
            };
            let prefix = prefix
                .and_then(|prefix| KeyPrefix::parse(&prefix).ok())
                .ok_or_else(|| {
                    ManageError::Internal(anyhow::anyhow!("stored key start is malformed"))
                })?;
            let generated = hasher.generate(&prefix);
            let new = ApiKeyRow {
                id: new_id(),
                digest: generated.digest.as_bytes().to_vec(),
                start: generated.start,
                created_at: at,
                updated_at: at,
                last_used_at: None,
                rotated_from: Some(old.id.clone()),
                idempotency_key: None,
                idempotency_fingerprint: None,
                digest_kind: DigestKind::Hmac.as_str().to_owned(),
                external_ref: None,
                created_by: audit.actor.label(),
                ..old.clone()
            };
            // The unique index on `rotated_from` is the last word if anything raced past the lock.
            api_keys::insert(conn, &new).map_err(|e| {
                if e.is_unique_violation() {
                    already_rotated()
                } else {
                    e.into()
                }
            })?;
            key_roles::copy(conn, &tenant, &old, &new)?;
            let grace_end = at + TimeDelta::seconds(grace_period_seconds);
            let old_expires_at = old.expires_at.map_or(grace_end, |e| e.min(grace_end));
            api_keys::set_expiry(conn, &tenant, &old.id, old_expires_at, at)?;
            // The old key's expiry changed: its event evicts it so every node sees the grace end.
            let rotated = Event::record(
                conn,
                &audit,
                &tenant,
                Subject::key(&old),
                Change::Rotated {
                    successor_id: KeyId::from_trusted(new.id.clone()),
                },
                json!({
                    "new_key_id": new.id,
                    "grace_period_seconds": grace_period_seconds,
                    "expires_at": utc(old_expires_at),
                }),
            )?;
            let fields = creation_fields(&new);
            let created = Event::record(
                conn,
                &audit,
                &tenant,
                Subject::key(&new),
                Change::Created,
                fields,
            )?;
            let changed = [rotated, created];
            Ok(Ok((
                Rotated {
                    key: Key::load(conn, &tenant, new, at)?,
                    plaintext: generated.key,
                    previous_key_id: KeyId::from_trusted(old.id),
                    previous_expires_at: utc(old_expires_at),
                },
                changed,
            )))
        })
        .await?;
    match outcome {
        Ok((rotated, changed)) => {
            cx.events.dispatch(&changed).await;
            Ok(rotated)
        }
        Err(revoked) => {
            cx.events.dispatch(&revoked).await;
            Err(ManageError::refused(
                ErrorCode::KeyRevokedReuseDetected,
                format!(
                    "this key was revoked, so rotating it means someone else may hold it; every \
                     active key of its rotation family ({} keys) has been revoked",
                    revoked.len()
                ),
            ))
        }
    }
}
