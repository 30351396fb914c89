//! The services without an HTTP server: a real SQLite file, the app's clock moved by hand, and
//! a subscriber that writes down what the dispatcher hands it.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::future::BoxFuture;

use super::{Context, ManageError};
use crate::audit::AuditContext;
use crate::domain::commands::{Expiry, KeyChanges, KeyspaceChanges, NewKey, NewKeyspace};
use crate::domain::error_code::ErrorCode;
use crate::domain::ids::TenantId;
use crate::domain::inputs::{IpAllowlist, Meta};
use crate::domain::key::{KeyHasher, KeyPrefix};
use crate::domain::key_status::KeyStatus;
use crate::domain::scope::Scopes;
use crate::domain::secrets::MasterKey;
use crate::domain::time::Clock;
use crate::events::{Dispatcher, Event, Subscriber};
use crate::manage::{PageRequest, keys, keyspaces};
use crate::store::models::Tenant;
use crate::store::url::DatabaseUrl;
use crate::store::{Store, audit_events, tenants};

/// Every event handed over after a commit, as its audit action.
#[derive(Default)]
struct Seen(Mutex<Vec<String>>);

impl Subscriber for Seen {
    fn after_commit<'a>(&'a self, events: &'a [Event]) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let mut seen = self.0.lock().unwrap();
            seen.extend(events.iter().map(|e| e.action().to_owned()));
        })
    }
}

struct World {
    store: Store,
    hasher: KeyHasher,
    events: Dispatcher,
    clock: Clock,
    seen: Arc<Seen>,
    tenant: TenantId,
    audit: AuditContext,
    _dir: tempfile::TempDir,
}

impl World {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::connect(&DatabaseUrl::Sqlite(dir.path().join("m.db")), 2).unwrap();
        store.migrate().unwrap();
        let secrets = MasterKey::from_bytes(vec![7; 32]).unwrap().derive();
        let seen = Arc::new(Seen::default());
        let tenant = TenantId::new();
        let clock = Clock::system();
        tenants::insert(
            &mut store.conn().unwrap(),
            &Tenant {
                id: tenant.as_str().to_owned(),
                name: "acme".into(),
                created_at: clock.now(),
            },
        )
        .unwrap();
        Self {
            hasher: KeyHasher::new(&secrets, &[]),
            events: Dispatcher::new(vec![seen.clone()]),
            store,
            clock,
            seen,
            tenant,
            audit: AuditContext::cli(),
            _dir: dir,
        }
    }

    fn cx(&self) -> Context<'_> {
        Context {
            store: &self.store,
            hasher: &self.hasher,
            events: &self.events,
            clock: &self.clock,
        }
    }

    /// What the dispatcher handed over since the last call.
    fn dispatched(&self) -> Vec<String> {
        std::mem::take(&mut *self.seen.0.lock().unwrap())
    }

    async fn audited(&self) -> Vec<String> {
        let tenant = self.tenant.clone();
        let filter = audit_events::AuditFilter::default();
        let rows = self
            .store
            .run(move |conn| audit_events::list(conn, &tenant, &filter, None, 100))
            .await
            .unwrap();
        rows.into_iter().rev().map(|r| r.action).collect()
    }

    async fn keyspace(&self) -> String {
        keyspaces::create(&self.cx(), &self.audit, &self.tenant, plain_keyspace())
            .await
            .unwrap()
            .id
    }
}

/// A keyspace `acme_live` without defaults.
fn plain_keyspace() -> NewKeyspace {
    NewKeyspace {
        name: "Production".into(),
        prefix: KeyPrefix::parse("acme_live").unwrap(),
        environment: Default::default(),
        default_ttl_seconds: None,
        default_scopes: Scopes::default(),
        default_ratelimit: None,
        token_exchange_enabled: true,
    }
}

fn new_key(keyspace_id: &str) -> NewKey {
    NewKey {
        keyspace_id: keyspace_id.to_owned(),
        name: Some("k".into()),
        owner_id: None,
        scopes: None,
        meta: Meta::empty(),
        expiry: None,
        ip_allowlist: IpAllowlist::parse::<&str>(&[]).unwrap(),
        ratelimit: None,
        credits: None,
        enabled: true,
    }
}

#[tokio::test]
async fn each_keyspace_change_is_audited_and_dispatched_once_a_no_op_not_at_all() {
    let world = World::new();
    let id = world.keyspace().await;
    let rename = KeyspaceChanges {
        name: Some("Production EU".into()),
        ..KeyspaceChanges::default()
    };
    let cx = world.cx();
    let view = keyspaces::update(&cx, &world.audit, &world.tenant, id.clone(), rename).await;
    assert_eq!(view.unwrap().name, "Production EU");
    let nothing = KeyspaceChanges::default();
    keyspaces::update(&cx, &world.audit, &world.tenant, id, nothing)
        .await
        .unwrap();
    assert_eq!(world.dispatched(), ["keyspace.create", "keyspace.update"]);
    assert_eq!(
        world.audited().await,
        ["keyspace.create", "keyspace.update"]
    );

    let refused = keyspaces::create(&cx, &world.audit, &world.tenant, plain_keyspace()).await;
    assert!(matches!(
        refused,
        Err(ManageError::Refused {
            code: ErrorCode::PrefixTaken,
            ..
        })
    ));
    assert!(
        world.dispatched().is_empty(),
        "a refused change dispatches nothing"
    );
    let listed = keyspaces::list(&cx, &world.tenant, PageRequest::parse(None, None).unwrap());
    assert_eq!(listed.await.unwrap().data.len(), 1);
}

#[tokio::test]
async fn a_key_lives_its_whole_life_on_the_apps_clock() {
    let world = World::new();
    let cx = world.cx();
    let keyspace = world.keyspace().await;
    world.dispatched();
    let mut short = new_key(&keyspace);
    short.expiry = Some(Expiry::after_seconds(60).unwrap());
    let created = keys::create(&cx, &world.audit, &world.tenant, short, None)
        .await
        .unwrap();
    assert!(
        created.plaintext.is_some(),
        "the plaintext is in the one answer"
    );
    let id = created.key.row.id.clone();
    let disable = KeyChanges {
        enabled: Some(false),
        ..KeyChanges::default()
    };
    let view = keys::update(&cx, &world.audit, &world.tenant, id.clone(), disable).await;
    assert_eq!(view.unwrap().status, KeyStatus::Disabled);
    let enable = KeyChanges {
        enabled: Some(true),
        ..KeyChanges::default()
    };
    let view = keys::update(&cx, &world.audit, &world.tenant, id.clone(), enable).await;
    assert_eq!(view.unwrap().status, KeyStatus::Active);

    world.clock.advance(Duration::from_secs(61));
    let view = keys::get(&cx, &world.tenant, id.clone()).await.unwrap();
    assert_eq!(
        view.status,
        KeyStatus::Expired,
        "expired by the app's clock"
    );
    let refused = keys::rotate(&cx, &world.audit, &world.tenant, id.clone(), 0).await;
    assert!(matches!(
        refused,
        Err(ManageError::Refused {
            code: ErrorCode::KeyExpired,
            ..
        })
    ));
    let revoked = keys::revoke(&cx, &world.audit, &world.tenant, id, None).await;
    assert_eq!(revoked.unwrap().key.status, KeyStatus::Revoked);
    assert_eq!(
        world.dispatched(),
        ["key.create", "key.disable", "key.enable", "key.revoke"]
    );
}

#[tokio::test]
async fn rotating_a_revoked_key_revokes_its_family_and_says_why() {
    let world = World::new();
    let cx = world.cx();
    let keyspace = world.keyspace().await;
    let first = keys::create(&cx, &world.audit, &world.tenant, new_key(&keyspace), None)
        .await
        .unwrap()
        .key
        .row
        .id;
    let rotated = keys::rotate(&cx, &world.audit, &world.tenant, first.clone(), 3600)
        .await
        .unwrap();
    let again = keys::rotate(&cx, &world.audit, &world.tenant, first.clone(), 0).await;
    assert!(matches!(
        again,
        Err(ManageError::Refused {
            code: ErrorCode::KeyAlreadyRotated,
            ..
        })
    ));
    keys::revoke(&cx, &world.audit, &world.tenant, first.clone(), None)
        .await
        .unwrap();
    world.dispatched();
    let reuse = keys::rotate(&cx, &world.audit, &world.tenant, first, 0).await;
    assert!(matches!(
        reuse,
        Err(ManageError::Refused {
            code: ErrorCode::KeyRevokedReuseDetected,
            ..
        })
    ));
    assert_eq!(world.dispatched(), ["key.revoke"], "the successor, revoked");
    let successor = keys::get(&cx, &world.tenant, rotated.key.row.id)
        .await
        .unwrap();
    assert_eq!(successor.status, KeyStatus::Revoked);
}

#[tokio::test]
async fn a_bulk_revocation_names_at_most_a_thousand_keys_whoever_built_it() {
    let world = World::new();
    let ids = (0..=crate::domain::commands::MAX_BULK)
        .map(|_| crate::domain::ids::new_id())
        .collect();
    let selection = crate::domain::commands::RevokeSelection::Ids(ids);
    let cx = world.cx();
    let refused = keys::revoke_bulk(&cx, &world.audit, &world.tenant, selection, None).await;
    assert!(matches!(
        refused,
        Err(ManageError::Invalid { field, .. }) if field == "ids"
    ));
}
