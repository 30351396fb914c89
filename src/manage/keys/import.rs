//! Importing keys made by another system (issue 19 §3): by plaintext, digested here and never
//! stored, or by the SHA-256 digest that system kept. Idempotent per item by `external_ref`;
//! each item is imported, a duplicate, or invalid, and the valid ones are written in one
//! transaction with their audit events.

use std::collections::{HashMap, HashSet};

use secrecy::SecretString;

use super::create::{StoredSecret, new_row};
use super::*;
use crate::domain::commands::Invalid;
use crate::domain::key::KeyFormatError;
use crate::domain::legacy::ForeignKey;
use crate::store::deleted_keys;

/// The secret of an imported key, as the other system can give it.
pub enum ImportedSecret {
    /// The key itself: digested on arrival, never stored.
    Plaintext(SecretString),
    /// `SHA-256(key)`, as crates.io, GitLab and Unkey store keys.
    Sha256(KeyDigest),
}

impl std::fmt::Debug for ImportedSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Plaintext(_) => "Plaintext(<redacted>)",
            Self::Sha256(_) => "Sha256(<redacted>)",
        })
    }
}

/// One key to import, validated.
#[derive(Debug)]
pub struct ImportItem {
    pub external_ref: String,
    pub secret: ImportedSecret,
    /// How to show a key imported by digest (its first characters, if the other system kept
    /// them); a plaintext's own start is used otherwise.
    pub start: Option<String>,
    /// The field that carried the secret, to name in a refusal.
    pub secret_field: &'static str,
    pub key: NewKey,
}

/// What became of one item.
#[derive(Debug)]
pub enum ImportOutcome {
    Imported(Key),
    /// Already here: `existing` is the key imported earlier with the same `external_ref` (a
    /// retry), `None` when the secret itself is known, or belonged to a deleted key (whose
    /// tombstone refuses it for good).
    Duplicate {
        field: &'static str,
        existing: Option<Key>,
    },
    Invalid(Invalid),
}

/// An item digested and ready to store.
struct Digested {
    external_ref: String,
    stored: StoredSecret,
    /// For another system's plaintext: its SHA-256, under which the same key may already be
    /// imported (by digest) or deleted.
    sha256: Option<KeyDigest>,
    secret_field: &'static str,
    explicit_expiry: Option<NaiveDateTime>,
    key: NewKey,
}

/// Imports `items` (at most [`MAX_BULK`], which the caller checks) in one transaction: a
/// concurrent import of the same keys makes this one fail with a conflict, and a retry then
/// answers them as duplicates.
pub async fn import(
    cx: &Context<'_>,
    audit: &AuditContext,
    tenant: &TenantId,
    items: Vec<Result<ImportItem, Invalid>>,
) -> Result<Vec<ImportOutcome>, ManageError> {
    let at = cx.clock.now();
    let prepared: Vec<Result<Digested, Invalid>> = items
        .into_iter()
        .map(|item| item.and_then(|item| digest(cx.hasher, item, at)))
        .collect();
    let (audit, tenant) = (audit.clone(), tenant.clone());
    let (outcomes, events) = cx
        .store
        .transaction(move |conn| {
            let mut keyspaces_seen: HashMap<String, Option<KeyspaceRow>> = HashMap::new();
            let (mut refs, mut digests) = (HashSet::new(), HashSet::new());
            let (mut outcomes, mut events) = (Vec::new(), Vec::new());
            for item in prepared {
                let item = match item {
                    Ok(item) => item,
                    Err(invalid) => {
                        outcomes.push(ImportOutcome::Invalid(invalid));
                        continue;
                    }
                };
                if let Some(existing) =
                    api_keys::find_by_external_ref(conn, &tenant, &item.external_ref)?
                {
                    outcomes.push(ImportOutcome::Duplicate {
                        field: "external_ref",
                        existing: Some(Key::from_row(existing, at)),
                    });
                    continue;
                }
                let digest = item.stored.digest;
                if refs.contains(&item.external_ref) {
                    outcomes.push(ImportOutcome::Duplicate {
                        field: "external_ref",
                        existing: None,
                    });
                    continue;
                }
                if digests.contains(&digest) || known(conn, &digest)? || {
                    match &item.sha256 {
                        Some(sha256) => digests.contains(sha256) || known(conn, sha256)?,
                        None => false,
                    }
                } {
                    outcomes.push(ImportOutcome::Duplicate {
                        field: item.secret_field,
                        existing: None,
                    });
                    continue;
                }
                let keyspace_id = item.key.keyspace_id.as_str().to_owned();
                if !keyspaces_seen.contains_key(&keyspace_id) {
                    let found = keyspaces::find(conn, &tenant, &keyspace_id)?;
                    keyspaces_seen.insert(keyspace_id.clone(), found);
                }
                let Some(Some(keyspace)) = keyspaces_seen.get(&keyspace_id) else {
                    outcomes.push(ImportOutcome::Invalid(Invalid::new(
                        "keyspace_id",
                        "no such keyspace",
                    )));
                    continue;
                };
                // Only what is imported makes a later item of the batch a duplicate.
                refs.insert(item.external_ref.clone());
                digests.insert(digest);
                digests.extend(item.sha256);
                let how = match item.stored.kind {
                    DigestKind::LegacySha256 => "sha256",
                    DigestKind::Hmac | DigestKind::LegacyHmac => "plaintext",
                };
                let mut row = new_row(
                    keyspace,
                    item.key,
                    item.explicit_expiry,
                    item.stored,
                    &audit,
                    at,
                );
                row.external_ref = Some(item.external_ref);
                api_keys::insert(conn, &row).map_err(|e| {
                    if e.is_unique_violation() {
                        ManageError::refused(
                            ErrorCode::ImportConflict,
                            "another import of these keys is in progress; retry this one",
                        )
                    } else {
                        e.into()
                    }
                })?;
                let mut fields = creation_fields(&row);
                fields["external_ref"] = json!(row.external_ref);
                fields["imported_from"] = json!(how);
                let event = Event::new(&audit, &tenant, Subject::key(&row), Change::Created)
                    .with_source(Source::Import)
                    .write(conn, &audit, fields)?;
                events.push(event);
                outcomes.push(ImportOutcome::Imported(Key::from_row(row, at)));
            }
            Ok::<_, ManageError>((outcomes, events))
        })
        .await?;
    cx.events.dispatch(&events).await;
    Ok(outcomes)
}

/// Digests an item's secret on arrival: a key in latchkey's format as a created one, another
/// system's plaintext with the pepper, an imported SHA-256 as it is (until first verified).
fn digest(
    hasher: &crate::domain::key::KeyHasher,
    item: ImportItem,
    at: NaiveDateTime,
) -> Result<Digested, Invalid> {
    let explicit_expiry = match item.key.expiry {
        Some(expiry) => Some(expiry.from(at, "expires_at")?),
        None => None,
    };
    let field = item.secret_field;
    let mut sha256 = None;
    let stored = match &item.secret {
        ImportedSecret::Plaintext(plain) => {
            let raw = plain.expose_secret();
            match hasher.parse(raw) {
                Ok(parsed) => StoredSecret {
                    digest: hasher.digest(&parsed),
                    start: parsed.start(),
                    kind: DigestKind::Hmac,
                },
                Err(KeyFormatError::BadCheck) => {
                    return Err(Invalid::new(
                        field,
                        "has latchkey's key format but a check tag this deployment did not make",
                    ));
                }
                Err(_) => {
                    let foreign = ForeignKey::parse(hasher, raw).ok_or_else(|| {
                        Invalid::new(field, "must be 16 to 256 printable characters, no spaces")
                    })?;
                    sha256 = Some(foreign.sha256());
                    StoredSecret {
                        digest: hasher.foreign_digest(&foreign),
                        start: foreign.start(),
                        kind: DigestKind::LegacyHmac,
                    }
                }
            }
        }
        ImportedSecret::Sha256(digest) => StoredSecret {
            digest: *digest,
            start: item.start.clone().unwrap_or_default(),
            kind: DigestKind::LegacySha256,
        },
    };
    Ok(Digested {
        external_ref: item.external_ref,
        stored,
        sha256,
        secret_field: field,
        explicit_expiry,
        key: item.key,
    })
}

/// Whether a key is stored under `digest`, or was and is deleted.
fn known(conn: &mut DbConnection, digest: &KeyDigest) -> Result<bool, StoreError> {
    Ok(api_keys::digest_taken(conn, digest)? || deleted_keys::is_deleted(conn, digest)?)
}
