//! The services without an HTTP server: a real SQLite file, the app's clock moved by hand, and
//! a subscriber that writes down what the dispatcher hands it. One world for every service;
//! the tests of a service that need more than a few lines have a file in `tests/`.

mod accounts;
mod invitations;
mod leaks;
mod members;
mod webhooks;

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use futures_util::future::BoxFuture;

use secrecy::SecretString;

use super::accounts::Credentials;
use super::{Context, ManageError};
use crate::audit::AuditContext;
use crate::auth::password::PasswordWorkers;
use crate::auth::session::{self, SESSION_PURPOSE, SessionKeys, SessionToken, SignedIn};
use crate::auth::sign_in_throttle::SignInThrottle;
use crate::domain::commands::{Expiry, KeyChanges, KeyspaceChanges, NewKey, NewKeyspace};
use crate::domain::error_code::ErrorCode;
use crate::domain::ids::{KeyId, KeyspaceId, TenantId, UserId};
use crate::domain::inputs::{IpAllowlist, Meta};
use crate::domain::key::{KeyHasher, KeyPrefix};
use crate::domain::key_status::KeyStatus;
use crate::domain::role::Role;
use crate::domain::scope::Scopes;
use crate::domain::secrets::MasterKey;
use crate::domain::time::Clock;
use crate::events::{Dispatcher, Event, Subject, Subscriber};
use crate::manage::{PageRequest, keys, keyspaces};
use crate::store::models::{Membership, Tenant};
use crate::store::url::DatabaseUrl;
use crate::store::{Store, audit_events, memberships, tenants, users};

/// Every event handed over after a commit.
#[derive(Default)]
struct Seen(Mutex<Vec<Event>>);

impl Subscriber for Seen {
    fn after_commit<'a>(&'a self, events: &'a [Event]) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            self.0.lock().unwrap().extend_from_slice(events);
        })
    }
}

struct World {
    store: Store,
    hasher: KeyHasher,
    events: Dispatcher,
    clock: Clock,
    seen: Arc<Seen>,
    /// The tenant `acme`, made with the world.
    tenant: TenantId,
    audit: AuditContext,
    keys: SessionKeys,
    /// Made on first use: it computes a password hash.
    passwords: OnceLock<PasswordWorkers>,
    throttle: SignInThrottle,
    _dir: tempfile::TempDir,
}

impl World {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::connect(&DatabaseUrl::Sqlite(dir.path().join("m.db")), 2).unwrap();
        store.migrate().unwrap();
        let secrets = MasterKey::from_bytes(vec![7; 32]).unwrap().derive();
        let seen = Arc::new(Seen::default());
        let keys = SessionKeys::new(&secrets);
        let mut world = Self {
            hasher: KeyHasher::new(&secrets, &[]),
            events: Dispatcher::new(vec![seen.clone()]),
            store,
            clock: Clock::system(),
            seen,
            tenant: TenantId::new(),
            audit: AuditContext::cli(),
            throttle: SignInThrottle::with_redis(None, keys.clone()),
            keys,
            passwords: OnceLock::new(),
            _dir: dir,
        };
        world.tenant = world.add_tenant("acme");
        world
    }

    /// Another tenant, without members or keyspaces.
    fn add_tenant(&self, name: &str) -> TenantId {
        let tenant = TenantId::new();
        let row = Tenant {
            id: tenant.as_str().to_owned(),
            name: name.to_owned(),
            created_at: self.clock.now(),
        };
        tenants::insert(&mut self.store.conn().unwrap(), &row).unwrap();
        tenant
    }

    fn cx(&self) -> Context<'_> {
        Context {
            store: &self.store,
            hasher: &self.hasher,
            events: &self.events,
            clock: &self.clock,
        }
    }

    fn credentials(&self) -> Credentials<'_> {
        Credentials {
            keys: &self.keys,
            passwords: self.passwords.get_or_init(|| PasswordWorkers::new(1)),
            throttle: &self.throttle,
        }
    }

    /// What the dispatcher handed over since the last call, as audit actions.
    fn dispatched(&self) -> Vec<String> {
        let seen = std::mem::take(&mut *self.seen.0.lock().unwrap());
        seen.iter().map(|e| e.action().to_owned()).collect()
    }

    /// The events about keys the dispatcher handed over since the last call, as
    /// `<action> <key id>`; the others are dropped.
    fn dispatched_keys(&self) -> Vec<String> {
        let seen = std::mem::take(&mut *self.seen.0.lock().unwrap());
        seen.iter()
            .filter_map(|e| match &e.subject {
                Subject::Key { id, .. } => Some(format!("{} {id}", e.action())),
                _ => None,
            })
            .collect()
    }

    /// A new session for `user_id`, working in `tenant`.
    fn start_session(&self, user_id: &str, tenant: Option<&TenantId>) -> SessionToken {
        let conn = &mut self.store.conn().unwrap();
        session::start(conn, &self.keys, user_id, tenant, self.clock.now()).unwrap()
    }

    /// The live session a cookie with `token` stands for.
    fn session(&self, token: &SessionToken) -> Option<SignedIn> {
        let digest = self.keys.digest(SESSION_PURPOSE, token);
        let conn = &mut self.store.conn().unwrap();
        session::resolve(conn, &digest, self.clock.now()).unwrap()
    }

    /// A user with `email` in the world's tenant, with `role`, made straight in the store.
    fn member(&self, email: &str, role: Role) -> UserId {
        let conn = &mut self.store.conn().unwrap();
        let at = self.clock.now();
        let id = users::create(conn, email, "not a password hash".into(), at).unwrap();
        let membership = Membership {
            tenant_id: self.tenant.as_str().to_owned(),
            user_id: id.clone(),
            role: role.as_str().to_owned(),
            created_at: at,
        };
        memberships::insert(conn, &membership).unwrap();
        UserId::from_trusted(id)
    }

    async fn audited(&self) -> Vec<String> {
        self.audited_in(&self.tenant).await
    }

    /// What the audit log of `tenant` holds, oldest first, as actions.
    async fn audited_in(&self, tenant: &TenantId) -> Vec<String> {
        let tenant = tenant.clone();
        let filter = audit_events::AuditFilter::default();
        let rows = self
            .store
            .run(move |conn| audit_events::list(conn, &tenant, &filter, None, 100))
            .await
            .unwrap();
        rows.into_iter().rev().map(|r| r.action).collect()
    }

    async fn keyspace(&self) -> KeyspaceId {
        let cx = self.cx();
        let view = keyspaces::create(&cx, &self.audit, &self.tenant, plain_keyspace());
        KeyspaceId::from_trusted(view.await.unwrap().id)
    }

    /// A keyspace `<prefix>_live` in `tenant` with one live key: the key's id and its value.
    async fn live_key(&self, tenant: &TenantId, prefix: &str) -> (String, SecretString) {
        let keyspace = NewKeyspace {
            prefix: KeyPrefix::parse(&format!("{prefix}_live")).unwrap(),
            token_exchange_enabled: false,
            ..plain_keyspace()
        };
        let cx = self.cx();
        let keyspace = keyspaces::create(&cx, &self.audit, tenant, keyspace)
            .await
            .unwrap();
        let mut new = new_key(&KeyspaceId::from_trusted(keyspace.id));
        new.name = Some("ci".into());
        let created = keys::create(&cx, &self.audit, tenant, new, None)
            .await
            .unwrap();
        let key = created
            .plaintext
            .expect("a key made without idempotency has its value");
        let value = SecretString::from(key.expose_secret().to_owned());
        (created.key.row.id, value)
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
        token_audience: None,
    }
}

fn new_key(keyspace_id: &KeyspaceId) -> NewKey {
    NewKey {
        keyspace_id: keyspace_id.clone(),
        name: Some("k".into()),
        owner_id: None,
        scopes: None,
        meta: Meta::empty(),
        expiry: None,
        ip_allowlist: IpAllowlist::parse::<&str>(&[]).unwrap(),
        ratelimit: None,
        credits: None,
        enabled: true,
        roles: Default::default(),
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
    let view = keyspaces::update(&cx, &world.audit, &world.tenant, &id, rename).await;
    assert_eq!(view.unwrap().name, "Production EU");
    let nothing = KeyspaceChanges::default();
    keyspaces::update(&cx, &world.audit, &world.tenant, &id, nothing)
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
    let id = KeyId::from_trusted(created.key.row.id.clone());
    let disable = KeyChanges {
        enabled: Some(false),
        ..KeyChanges::default()
    };
    let view = keys::update(&cx, &world.audit, &world.tenant, &id, disable).await;
    assert_eq!(view.unwrap().status, KeyStatus::Disabled);
    let enable = KeyChanges {
        enabled: Some(true),
        ..KeyChanges::default()
    };
    let view = keys::update(&cx, &world.audit, &world.tenant, &id, enable).await;
    assert_eq!(view.unwrap().status, KeyStatus::Active);

    world.clock.advance(Duration::from_secs(61));
    let view = keys::get(&cx, &world.tenant, &id).await.unwrap();
    assert_eq!(
        view.status,
        KeyStatus::Expired,
        "expired by the app's clock"
    );
    let refused = keys::rotate(&cx, &world.audit, &world.tenant, &id, 0).await;
    assert!(matches!(
        refused,
        Err(ManageError::Refused {
            code: ErrorCode::KeyExpired,
            ..
        })
    ));
    let revoked = keys::revoke(&cx, &world.audit, &world.tenant, &id, None).await;
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
    let created = keys::create(&cx, &world.audit, &world.tenant, new_key(&keyspace), None);
    let first = KeyId::from_trusted(created.await.unwrap().key.row.id);
    let rotated = keys::rotate(&cx, &world.audit, &world.tenant, &first, 3600)
        .await
        .unwrap();
    let again = keys::rotate(&cx, &world.audit, &world.tenant, &first, 0).await;
    assert!(matches!(
        again,
        Err(ManageError::Refused {
            code: ErrorCode::KeyAlreadyRotated,
            ..
        })
    ));
    keys::revoke(&cx, &world.audit, &world.tenant, &first, None)
        .await
        .unwrap();
    world.dispatched();
    let reuse = keys::rotate(&cx, &world.audit, &world.tenant, &first, 0).await;
    assert!(matches!(
        reuse,
        Err(ManageError::Refused {
            code: ErrorCode::KeyRevokedReuseDetected,
            ..
        })
    ));
    assert_eq!(world.dispatched(), ["key.revoke"], "the successor, revoked");
    let successor = KeyId::from_trusted(rotated.key.row.id);
    let successor = keys::get(&cx, &world.tenant, &successor).await.unwrap();
    assert_eq!(successor.status, KeyStatus::Revoked);
}

#[tokio::test]
async fn a_bulk_revocation_names_at_most_a_thousand_keys_whoever_built_it() {
    let world = World::new();
    let ids = (0..=crate::domain::commands::MAX_BULK)
        .map(|_| KeyId::new())
        .collect();
    let selection = crate::domain::commands::RevokeSelection::Ids(ids);
    let cx = world.cx();
    let refused = keys::revoke_bulk(&cx, &world.audit, &world.tenant, selection, None, false).await;
    assert!(matches!(
        refused,
        Err(ManageError::Invalid { field, .. }) if field == "ids"
    ));
}
