//! Leaked keys. Intake: a secret scanner's report of tokens found in public places; every
//! reported token that is a latchkey key, in any tenant, is revoked at once (reason `leaked`),
//! with where it leaked in the audit event; the answer says which tokens were ours. And a key a
//! member pastes into the dashboard, revoked if it is one of that member's tenant's.

use std::collections::HashMap;

use secrecy::{ExposeSecret, SecretString};
use serde_json::json;

use crate::audit::AuditContext;
use crate::domain::error_code::ErrorCode;
use crate::domain::ids::TenantId;
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
const REPORTED_IN_DASHBOARD: &str = "reported as leaked in the dashboard";

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
                    let ids: Vec<String> = rows.iter().map(|(row, _)| row.id.clone()).collect();
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
    let done = keys::revoke(cx, audit, tenant, row.id, Some(reason)).await?;
    Ok(if done.revoked_now {
        PastedLeak::Revoked(done.key)
    } else {
        PastedLeak::AlreadyRevoked(done.key)
    })
}

#[cfg(test)]
mod tests {
    //! The dashboard's leak report on its own: a real SQLite store in a temporary folder, no
    //! server, no Redis; a subscriber stands in for the after-commit consumers.

    use std::sync::{Arc, Mutex};

    use futures_util::future::BoxFuture;

    use super::*;
    use crate::domain::commands::{Environment, NewKey, NewKeyspace};
    use crate::domain::inputs::{IpAllowlist, Meta};
    use crate::domain::key::{KeyHasher, KeyPrefix};
    use crate::domain::key_status::KeyStatus;
    use crate::domain::scope::Scopes;
    use crate::domain::secrets::MasterKey;
    use crate::domain::time::Clock;
    use crate::events::{Dispatcher, Subscriber};
    use crate::manage::PageRequest;
    use crate::store::audit_events::AuditFilter;
    use crate::store::models::Tenant;
    use crate::store::url::DatabaseUrl;
    use crate::store::{Store, now, tenants};

    /// Remembers the ids of the keys each dispatched event is about, with its action.
    struct Dispatched(Arc<Mutex<Vec<String>>>);

    impl Subscriber for Dispatched {
        fn after_commit<'a>(&'a self, events: &'a [Event]) -> BoxFuture<'a, ()> {
            Box::pin(async move {
                let mut seen = self.0.lock().unwrap();
                for event in events {
                    if let Subject::Key { id, .. } = &event.subject {
                        seen.push(format!("{} {id}", event.action()));
                    }
                }
            })
        }
    }

    struct World {
        store: Store,
        hasher: KeyHasher,
        events: Dispatcher,
        clock: Clock,
        dispatched: Arc<Mutex<Vec<String>>>,
        _dir: tempfile::TempDir,
    }

    fn world() -> World {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::connect(&DatabaseUrl::Sqlite(dir.path().join("l.db")), 2).unwrap();
        store.migrate().unwrap();
        let secrets = MasterKey::from_bytes(vec![7; 32]).unwrap().derive();
        let dispatched = Arc::new(Mutex::new(Vec::new()));
        World {
            store,
            hasher: KeyHasher::new(&secrets, &[]),
            events: Dispatcher::new(vec![Arc::new(Dispatched(dispatched.clone()))]),
            clock: Clock::system(),
            dispatched,
            _dir: dir,
        }
    }

    impl World {
        fn cx(&self) -> Context<'_> {
            Context {
                store: &self.store,
                hasher: &self.hasher,
                events: &self.events,
                clock: &self.clock,
            }
        }

        /// A tenant with one keyspace and one live key: the tenant, the key's id and its value.
        async fn tenant_with_key(&self, name: &str) -> (TenantId, String, SecretString) {
            let tenant = TenantId::new();
            let row = Tenant {
                id: tenant.as_str().to_owned(),
                name: name.to_owned(),
                created_at: now(),
            };
            tenants::insert(&mut self.store.conn().unwrap(), &row).unwrap();
            let cx = self.cx();
            let keyspace = NewKeyspace {
                name: "live".into(),
                prefix: KeyPrefix::parse(&format!("{name}_live")).unwrap(),
                environment: Environment::Live,
                default_ttl_seconds: None,
                default_scopes: Scopes::default(),
                default_ratelimit: None,
                token_exchange_enabled: false,
            };
            let audit = AuditContext::cli();
            let keyspace = crate::manage::keyspaces::create(&cx, &audit, &tenant, keyspace)
                .await
                .unwrap();
            let new = NewKey {
                keyspace_id: keyspace.id,
                name: Some("ci".into()),
                owner_id: None,
                scopes: None,
                meta: Meta::empty(),
                expiry: None,
                ip_allowlist: IpAllowlist::parse::<&str>(&[]).unwrap(),
                ratelimit: None,
                credits: None,
                enabled: true,
            };
            let created = keys::create(&cx, &audit, &tenant, new, None).await.unwrap();
            let key = created
                .plaintext
                .expect("a key made without idempotency has its value");
            let value = SecretString::from(key.expose_secret().to_owned());
            (tenant, created.key.row.id, value)
        }

        async fn report(&self, tenant: &TenantId, pasted: &str, reason: &str) -> PastedLeak {
            let pasted = SecretString::from(pasted.to_owned());
            let reason = Some(reason.to_owned());
            report_pasted(&self.cx(), &AuditContext::cli(), tenant, &pasted, reason)
                .await
                .unwrap()
        }

        fn dispatched(&self) -> Vec<String> {
            std::mem::take(&mut self.dispatched.lock().unwrap())
        }

        async fn revocations_audited(&self, tenant: &TenantId, id: &str) -> usize {
            let filter = AuditFilter {
                target_id: Some(id.to_owned()),
                ..AuditFilter::default()
            };
            let page = PageRequest::parse(None, None).unwrap();
            let events = crate::manage::audit::list(&self.cx(), tenant, filter, page)
                .await
                .unwrap();
            events
                .data
                .iter()
                .filter(|e| e.action == "key.revoke")
                .count()
        }
    }

    #[tokio::test]
    async fn a_pasted_key_of_this_tenant_is_revoked_once_then_said_to_be_revoked_already() {
        let w = world();
        let (acme, id, key) = w.tenant_with_key("acme").await;
        w.dispatched();

        // Pasted with the whitespace a copy from a chat adds.
        let pasted = format!("  {}\n", key.expose_secret());
        let PastedLeak::Revoked(found) = w.report(&acme, &pasted, "in a public gist").await else {
            panic!("a live key of this tenant is revoked");
        };
        assert_eq!(found.row.id, id);
        assert_eq!(found.status, KeyStatus::Revoked);
        assert_eq!(
            found.row.revoked_reason.as_deref(),
            Some("in a public gist")
        );
        assert_eq!(w.dispatched(), [format!("key.revoke {id}")]);
        assert_eq!(w.revocations_audited(&acme, &id).await, 1);

        let again = w.report(&acme, key.expose_secret(), "seen again").await;
        let PastedLeak::AlreadyRevoked(found) = again else {
            panic!("a second report finds the key revoked already: {again:?}");
        };
        assert_eq!(found.row.id, id);
        assert_eq!(
            found.row.revoked_reason.as_deref(),
            Some("in a public gist")
        );
        assert!(
            w.dispatched().is_empty(),
            "nothing changed, nothing follows"
        );
        assert_eq!(w.revocations_audited(&acme, &id).await, 1);
    }

    #[tokio::test]
    async fn without_a_reason_the_report_itself_is_the_reason() {
        let w = world();
        let (acme, _, key) = w.tenant_with_key("acme").await;
        let PastedLeak::Revoked(key) = w.report(&acme, key.expose_secret(), " ").await else {
            panic!("a live key of this tenant is revoked");
        };
        assert_eq!(
            key.row.revoked_reason.as_deref(),
            Some(REPORTED_IN_DASHBOARD)
        );
    }

    #[tokio::test]
    async fn another_tenants_key_or_no_key_at_all_is_not_ours_and_changes_nothing() {
        let w = world();
        let (acme, _, _) = w.tenant_with_key("acme").await;
        let (globex, globex_id, globex_key) = w.tenant_with_key("globex").await;
        w.dispatched();

        let forged = format!("{}x", &globex_key.expose_secret()[1..]);
        for pasted in [globex_key.expose_secret(), forged.as_str(), "not a key"] {
            let found = w.report(&acme, pasted, "leaked").await;
            assert!(matches!(found, PastedLeak::NotOurs), "{found:?}");
        }
        let still = keys::get(&w.cx(), &globex, globex_id).await.unwrap();
        assert_eq!(still.status, KeyStatus::Active);
        assert!(w.dispatched().is_empty());
    }
}
