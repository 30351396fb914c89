//! Leaked keys. Intake: a secret scanner's report of tokens found in public places; every
//! reported token that is a latchkey key, in any tenant, is revoked at once (reason `leaked`),
//! with where it leaked in the audit event; the answer says which tokens were ours. And a key a
//! member pastes into the dashboard, revoked if it is one of that member's tenant's.

use std::collections::HashMap;

use secrecy::{ExposeSecret, SecretString};
use serde_json::json;

use crate::audit::AuditContext;
use crate::domain::error_code::ErrorCode;
use crate::domain::ids::{KeyId, TenantId};
use crate::domain::key::KeyDigest;
use crate::events::{Change, Event, Subject};
use crate::manage::keys::{self, Key};
use crate::manage::{Context, ManageError};
use crate::store::api_keys::{self, RevokeTarget};
use crate::store::models::ApiKeyRow;

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

/// Revokes every live key among `reports` and says which reports were ours.
pub async fn intake(
    cx: &Context<'_>,
    audit: &AuditContext,
    reports: Vec<LeakedToken>,
) -> Result<Vec<LeakVerdict>, ManageError> {
    if reports.len() > MAX_REPORTED {
        return Err(ManageError::refused(
            ErrorCode::TooManyTokens,
            format!("a report may carry at most {MAX_REPORTED} tokens"),
        ));
    }
    // digest -> index of the report naming it; tokens that are not well-formed keys of this
    // deployment cannot exist and cost no lookup.
    let mut by_digest: HashMap<KeyDigest, usize> = HashMap::new();
    for (index, report) in reports.iter().enumerate() {
        for digest in cx.hasher.digests_of(report.token.expose_secret().trim()) {
            by_digest.insert(digest, index);
        }
    }
    let digests: Vec<KeyDigest> = by_digest.keys().cloned().collect();
    let found = cx
        .store
        .run(move |conn| api_keys::find_all_by_digests(conn, &digests))
        .await?;
    let mut ours = vec![false; reports.len()];
    let mut to_revoke: HashMap<String, Vec<(ApiKeyRow, usize)>> = HashMap::new();
    for row in found {
        let Some(index) = KeyDigest::from_slice(&row.digest).and_then(|d| by_digest.get(&d)) else {
            continue;
        };
        ours[*index] = true;
        if row.revoked_at.is_none() {
            to_revoke
                .entry(row.tenant_id.clone())
                .or_default()
                .push((row, *index));
        }
    }

    if !to_revoke.is_empty() {
        let locations: Vec<(String, Option<String>, Option<String>)> = reports
            .iter()
            .map(|r| {
                (
                    r.token_type.chars().take(100).collect(),
                    clip(r.url.as_deref()),
                    clip(r.source.as_deref()),
                )
            })
            .collect();
        let audit = audit.clone();
        let at = cx.clock.now();
        let revoked = cx
            .store
            .transaction(move |conn| {
                let mut revoked = Vec::new();
                for (tenant, rows) in to_revoke {
                    let tenant = TenantId::from_trusted(tenant);
                    let ids: Vec<KeyId> = rows
                        .iter()
                        .map(|(row, _)| KeyId::from_trusted(row.id.clone()))
                        .collect();
                    let done =
                        api_keys::revoke(conn, &tenant, RevokeTarget::Ids(&ids), Some(LEAKED), at)?;
                    for row in &done {
                        let index = rows
                            .iter()
                            .find(|(r, _)| r.id == row.id)
                            .map(|(_, i)| *i)
                            .unwrap_or_default();
                        let (token_type, url, source) = &locations[index];
                        let change = Change::Revoked {
                            reason: Some(LEAKED.to_owned()),
                        };
                        let fields = json!({
                            "reason": LEAKED,
                            "leak": {"type": token_type, "url": url, "source": source},
                        });
                        let subject = Subject::key(row);
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
}

/// Revokes `pasted` if it is one of `tenant`'s keys, as every revocation of one key is done
/// (audit event, after-commit event), for `reason` or, without one, for being reported here.
pub async fn report_pasted(
    cx: &Context<'_>,
    audit: &AuditContext,
    tenant: &TenantId,
    pasted: &SecretString,
    reason: Option<String>,
) -> Result<PastedLeak, ManageError> {
    let digests = cx.hasher.digests_of(pasted.expose_secret().trim());
    if digests.is_empty() {
        return Ok(PastedLeak::NotOurs);
    }
    let found = cx
        .store
        .run(move |conn| api_keys::find_by_digests(conn, &digests))
        .await?
        .filter(|row| row.tenant_id == tenant.as_str());
    let Some(row) = found else {
        return Ok(PastedLeak::NotOurs);
    };
    let reason = reason
        .map(|r| r.trim().to_owned())
        .filter(|r| !r.is_empty())
        .unwrap_or_else(|| REPORTED_IN_DASHBOARD.to_owned());
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
