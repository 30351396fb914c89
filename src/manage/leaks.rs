//! Leaked keys. Intake: a secret scanner's report of tokens found in public places; every
//! reported token that is a latchkey key, in any tenant, is revoked at once (reason `leaked`),
//! with where it leaked in the audit event; the answer says which tokens were ours. And a key a
//! member pastes into the dashboard, revoked if it is one of that member's tenant's.

use std::collections::{BTreeMap, HashMap};

use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};

use crate::audit::AuditContext;
use crate::domain::error_code::ErrorCode;
use crate::domain::ids::{KeyId, TenantId};
use crate::domain::key::KeyDigest;
use crate::domain::legacy::ForeignKey;
use crate::events::{Change, Event, Subject};
use crate::manage::keys::{self, Key};
use crate::manage::root_keys as manage_root_keys;
use crate::manage::{Context, ManageError};
use crate::store::api_keys::{self, RevokeTarget};
use crate::store::models::{ApiKeyRow, RootKeyRow};
use crate::store::root_keys as store_root_keys;
use crate::tokens::TokenService;

/// Most tokens one report may carry.
pub const MAX_REPORTED: usize = 5_000;
/// Reason recorded on keys revoked by a leak report.
pub const LEAKED: &str = "leaked";
/// Longest `url`/`source` kept in the audit event.
const MAX_LOCATION_CHARS: usize = 2_048;
/// Reason recorded on a key pasted into the dashboard without one.
pub(super) const REPORTED_IN_DASHBOARD: &str = "reported as leaked in the dashboard";

/// One token a secret scanner found, and where.
#[derive(Debug)]
pub struct LeakedToken {
    pub token: SecretString,
    /// The token type the scanner matched (its pattern's name).
    pub token_type: String,
    /// Where it was found.
    pub url: Option<String>,
    /// What kind of place (`content`, `commit`, `issue`, ...).
    pub source: Option<String>,
}

/// What intake found one reported token to be.
#[derive(Debug)]
pub struct LeakVerdict {
    pub report: LeakedToken,
    /// Whether it is a key of this deployment (revoked now, or before).
    pub ours: bool,
}

fn clip(value: Option<&str>) -> Option<String> {
    value.map(|v| v.chars().take(MAX_LOCATION_CHARS).collect())
}

/// What one tenant had among the reported tokens: live keys and root keys, each with the
/// indices of the reports naming it.
#[derive(Default)]
struct Exposed {
    keys: Vec<(ApiKeyRow, Vec<usize>)>,
    root_keys: Vec<(RootKeyRow, Vec<usize>)>,
}

/// Revokes every live key and root key among `reports`, denies every access token among them,
/// and says which reports were ours. A token reported several times is ours in each report, and
/// its audit event lists every place it was found (`leaks`; `leak` is the first).
pub async fn intake(
    cx: &Context<'_>,
    tokens: &TokenService,
    audit: &AuditContext,
    reports: Vec<LeakedToken>,
) -> Result<Vec<LeakVerdict>, ManageError> {
    if reports.len() > MAX_REPORTED {
        return Err(ManageError::refused(
            ErrorCode::TooManyTokens,
            format!("a report may carry at most {MAX_REPORTED} tokens"),
        ));
    }
    // digest -> indices of the reports naming it; tokens that are not well-formed keys of this
    // deployment cannot exist and cost no lookup.
    let mut by_digest: HashMap<KeyDigest, Vec<usize>> = HashMap::new();
    for (index, report) in reports.iter().enumerate() {
        for digest in cx.hasher.digests_of(report.token.expose_secret().trim()) {
            by_digest.entry(digest).or_default().push(index);
        }
    }
    let digests: Vec<KeyDigest> = by_digest.keys().cloned().collect();
    let (keys_found, root_keys_found) = cx
        .store
        .run(move |conn| {
            let keys = api_keys::find_all_by_digests(conn, &digests)?;
            Ok::<_, ManageError>((keys, store_root_keys::find_all_by_digests(conn, &digests)?))
        })
        .await?;
    let mut ours = vec![false; reports.len()];
    let mut reported = |digest: &[u8]| {
        let indices = KeyDigest::from_slice(digest).and_then(|d| by_digest.get(&d))?;
        indices.iter().for_each(|&i| ours[i] = true);
        Some(indices.clone())
    };
    // Ordered by tenant, so concurrent reports lock tenants in the same order.
    let mut exposed: BTreeMap<String, Exposed> = BTreeMap::new();
    for row in root_keys_found {
        if let Some(indices) = reported(&row.digest)
            && row.revoked_at.is_none()
        {
            let tenant = exposed.entry(row.tenant_id.clone()).or_default();
            tenant.root_keys.push((row, indices));
        }
    }
    for row in keys_found {
        if let Some(indices) = reported(&row.digest)
            && row.revoked_at.is_none()
        {
            let tenant = exposed.entry(row.tenant_id.clone()).or_default();
            tenant.keys.push((row, indices));
        }
    }

    if !exposed.is_empty() {
        let locations: Vec<Value> = reports
            .iter()
            .map(|r| {
                json!({
                    "type": r.token_type.chars().take(100).collect::<String>(),
                    "url": clip(r.url.as_deref()),
                    "source": clip(r.source.as_deref()),
                })
            })
            .collect();
        let leak_fields = move |indices: &[usize]| {
            let leaks: Vec<&Value> = indices.iter().map(|&i| &locations[i]).collect();
            json!({ "reason": LEAKED, "leak": leaks[0], "leaks": leaks })
        };
        let audit = audit.clone();
        let at = cx.clock.now();
        let revoked = cx
            .store
            .transaction(move |conn| {
                let mut revoked = Vec::new();
                for (tenant, Exposed { keys, root_keys }) in exposed {
                    let tenant = TenantId::from_trusted(tenant);
                    // The most powerful credentials first.
                    let root_keys: Vec<(RootKeyRow, Value)> = root_keys
                        .into_iter()
                        .map(|(row, indices)| (row, leak_fields(&indices)))
                        .collect();
                    revoked.extend(manage_root_keys::revoke_exposed(
                        conn,
                        &audit,
                        &tenant,
                        &root_keys,
                        Some(LEAKED),
                        at,
                    )?);
                    let ids: Vec<KeyId> = keys
                        .iter()
                        .map(|(row, _)| KeyId::from_trusted(row.id.clone()))
                        .collect();
                    let done =
                        api_keys::revoke(conn, &tenant, RevokeTarget::Ids(&ids), Some(LEAKED), at)?;
                    for row in &done {
                        let indices = keys
                            .iter()
                            .find(|(r, _)| r.id == row.id)
                            .map(|(_, indices)| indices.as_slice())
                            .unwrap_or(&[0]);
                        let change = Change::Revoked {
                            reason: Some(LEAKED.to_owned()),
                        };
                        let subject = Subject::key(row);
                        let fields = leak_fields(indices);
                        revoked.push(Event::record(
                            conn, &audit, &tenant, subject, change, fields,
                        )?);
                    }
                }
                Ok::<_, ManageError>(revoked)
            })
            .await?;
        tracing::warn!(count = revoked.len(), "revoked keys reported as leaked");
        cx.events.dispatch(&revoked).await;
    }

    // Access tokens: verified with the keys of the tenant they claim, then denied until they
    // expire (denying twice is harmless, so a repeat is ours again).
    for (index, report) in reports.iter().enumerate() {
        let raw = report.token.expose_secret().trim();
        if ours[index] || raw.split('.').count() != 3 {
            continue;
        }
        if let Some((tenant, claims)) = tokens.check_any(raw).await? {
            tokens.revoke(audit, &tenant, &claims).await?;
            ours[index] = true;
        }
    }

    Ok(reports
        .into_iter()
        .zip(ours)
        .map(|(report, ours)| LeakVerdict { report, ours })
        .collect())
}

/// What a key pasted into the dashboard turned out to be.
#[derive(Debug)]
pub enum PastedLeak {
    /// Not one of this tenant's keys: the same answer whether or not another tenant has it, so
    /// a report tells nothing about other tenants.
    NotOurs,
    /// One of this tenant's live keys, revoked by this report.
    Revoked(Key),
    /// One of this tenant's keys that had been revoked before; nothing changed.
    AlreadyRevoked(Key),
    /// One of this tenant's live root keys, revoked by this report (the last `root_keys:*` key
    /// too: its value is out).
    RootKeyRevoked(RootKeyRow),
    /// One of this tenant's root keys that had been revoked before; nothing changed.
    RootKeyAlreadyRevoked(RootKeyRow),
    /// One of this tenant's live root keys, left alone: the reporter may not revoke root keys.
    RootKeyKept(RootKeyRow),
}

/// Revokes `pasted` if it is one of `tenant`'s keys, as every revocation of one key is done
/// (audit event, after-commit event), for `reason` or, without one, for being reported here.
/// A root key is revoked only when `root_keys_allowed` (the reporter may revoke root keys).
pub async fn report_pasted(
    cx: &Context<'_>,
    audit: &AuditContext,
    tenant: &TenantId,
    pasted: &SecretString,
    reason: Option<String>,
    root_keys_allowed: bool,
) -> Result<PastedLeak, ManageError> {
    let raw = pasted.expose_secret().trim();
    let digests = cx.hasher.digests_of(raw);
    // Looked for in `tenant` only: another tenant's key costs what one that exists nowhere does.
    let owner = tenant.clone();
    let (found, found_root) = if digests.is_empty() {
        // Not in latchkey's format: perhaps a key imported from another system.
        let Some(foreign) = ForeignKey::parse(cx.hasher, raw) else {
            return Ok(PastedLeak::NotOurs);
        };
        let (peppered, sha256) = (cx.hasher.foreign_digests(&foreign), foreign.sha256());
        let key = cx
            .store
            .run(move |conn| api_keys::find_foreign_in(conn, &owner, &peppered, &sha256))
            .await?;
        (key, None)
    } else {
        cx.store
            .run(move |conn| {
                let key = api_keys::find_by_digests_in(conn, &owner, &digests)?;
                let root = store_root_keys::find_by_digests_in(conn, &owner, &digests)?;
                Ok::<_, ManageError>((key, root))
            })
            .await?
    };
    let reason = reason
        .map(|r| r.trim().to_owned())
        .filter(|r| !r.is_empty())
        .unwrap_or_else(|| REPORTED_IN_DASHBOARD.to_owned());
    if let Some(row) = found_root.filter(|row| row.tenant_id == tenant.as_str()) {
        return report_pasted_root_key(cx, audit, tenant, row, reason, root_keys_allowed).await;
    }
    let Some(row) = found.filter(|row| row.tenant_id == tenant.as_str()) else {
        return Ok(PastedLeak::NotOurs);
    };
    let done = keys::revoke(
        cx,
        audit,
        tenant,
        &KeyId::from_trusted(row.id),
        Some(reason),
    )
    .await?;
    Ok(if done.revoked_now {
        PastedLeak::Revoked(done.key)
    } else {
        PastedLeak::AlreadyRevoked(done.key)
    })
}

async fn report_pasted_root_key(
    cx: &Context<'_>,
    audit: &AuditContext,
    tenant: &TenantId,
    row: RootKeyRow,
    reason: String,
    root_keys_allowed: bool,
) -> Result<PastedLeak, ManageError> {
    if row.revoked_at.is_some() {
        return Ok(PastedLeak::RootKeyAlreadyRevoked(row));
    }
    if !root_keys_allowed {
        return Ok(PastedLeak::RootKeyKept(row));
    }
    let reason = keys::parse_reason(Some(reason))?;
    let at = cx.clock.now();
    let (audit, tenant) = (audit.clone(), tenant.clone());
    let (row, revoked) = cx
        .store
        .transaction(move |conn| {
            let exposed = [(row, json!({}))];
            let events = manage_root_keys::revoke_exposed(
                conn,
                &audit,
                &tenant,
                &exposed,
                reason.as_deref(),
                at,
            )?;
            let [(row, _)] = exposed;
            Ok::<_, ManageError>((row, events))
        })
        .await?;
    cx.events.dispatch(&revoked).await;
    Ok(if revoked.is_empty() {
        PastedLeak::RootKeyAlreadyRevoked(row)
    } else {
        PastedLeak::RootKeyRevoked(row)
    })
}
