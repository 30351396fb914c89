//! The dashboard's leak report: a pasted key of the member's tenant is revoked once; anything
//! else changes nothing.

use secrecy::{ExposeSecret, SecretString};

use super::World;
use crate::audit::AuditContext;
use crate::domain::ids::{KeyId, TenantId};
use crate::domain::key_status::KeyStatus;
use crate::manage::leaks::{PastedLeak, REPORTED_IN_DASHBOARD, report_pasted};
use crate::manage::{PageRequest, keys};
use crate::store::audit_events::AuditFilter;

impl World {
    async fn report(&self, tenant: &TenantId, pasted: &str, reason: &str) -> PastedLeak {
        let pasted = SecretString::from(pasted.to_owned());
        let reason = Some(reason.to_owned());
        report_pasted(
            &self.cx(),
            &AuditContext::cli(),
            tenant,
            &pasted,
            reason,
            true,
        )
        .await
        .unwrap()
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
    let w = World::new();
    let acme = w.tenant.clone();
    let (id, key) = w.live_key(&acme, "acme").await;
    w.dispatched_keys();

    // Pasted with the whitespace a copy from a chat adds.
    let pasted = format!("  {}\n", key.expose_secret());
    let PastedLeak::Revoked(view) = w.report(&acme, &pasted, "in a public gist").await else {
        panic!("a live key of this tenant is revoked");
    };
    assert_eq!(view.row.id, id);
    assert_eq!(view.status, KeyStatus::Revoked);
    assert_eq!(view.row.revoked_reason.as_deref(), Some("in a public gist"));
    assert_eq!(w.dispatched_keys(), [format!("key.revoke {id}")]);
    assert_eq!(w.revocations_audited(&acme, &id).await, 1);

    let again = w.report(&acme, key.expose_secret(), "seen again").await;
    let PastedLeak::AlreadyRevoked(view) = again else {
        panic!("a second report finds the key revoked already: {again:?}");
    };
    assert_eq!(view.row.id, id);
    assert_eq!(view.row.revoked_reason.as_deref(), Some("in a public gist"));
    assert!(
        w.dispatched_keys().is_empty(),
        "nothing changed, nothing follows"
    );
    assert_eq!(w.revocations_audited(&acme, &id).await, 1);
}

#[tokio::test]
async fn without_a_reason_the_report_itself_is_the_reason() {
    let w = World::new();
    let acme = w.tenant.clone();
    let (_, key) = w.live_key(&acme, "acme").await;
    let PastedLeak::Revoked(view) = w.report(&acme, key.expose_secret(), " ").await else {
        panic!("a live key of this tenant is revoked");
    };
    assert_eq!(
        view.row.revoked_reason.as_deref(),
        Some(REPORTED_IN_DASHBOARD)
    );
}

#[tokio::test]
async fn another_tenants_key_or_no_key_at_all_is_not_ours_and_changes_nothing() {
    let w = World::new();
    let acme = w.tenant.clone();
    w.live_key(&acme, "acme").await;
    let globex = w.add_tenant("globex");
    let (globex_id, globex_key) = w.live_key(&globex, "globex").await;
    w.dispatched_keys();

    let forged = format!("{}x", &globex_key.expose_secret()[1..]);
    for pasted in [globex_key.expose_secret(), forged.as_str(), "not a key"] {
        let found = w.report(&acme, pasted, "leaked").await;
        assert!(matches!(found, PastedLeak::NotOurs), "{found:?}");
    }
    let still = keys::get(&w.cx(), &globex, &KeyId::from_trusted(globex_id))
        .await
        .unwrap();
    assert_eq!(still.status, KeyStatus::Active);
    assert!(w.dispatched_keys().is_empty());
}
