//! After-commit events: every change to a key, root key, keyspace, membership or invitation is
//! one typed event, built in the
//! change's transaction together with the audit event it records, and handed after commit to
//! one dispatcher whose subscribers do what must follow (today: evicting caches on every node).
//!
//! A new consumer is one more [`Subscriber`], not an edit in every path that changes a key.
//! Webhooks need durability an after-commit hook cannot give, so [`Event::record`] also writes
//! the change's webhook deliveries (the outbox) in its transaction; the after-commit
//! [`WebhookNudge`] only wakes this node's delivery worker so they go out at once.

pub mod delivery;
pub mod outbox;

use std::sync::Arc;

use futures_util::future::BoxFuture;
use serde_json::Value;

use crate::audit::{Actor, AuditContext};
use crate::auth::root_key::RootKeyRecord;
use crate::cache::Caches;
use crate::domain::ids::{
    InvitationId, KeyId, KeyRoleId, KeyspaceId, RootKeyId, TenantId, UserId, WebhookEndpointId,
};
use crate::domain::key::KeyDigest;
use crate::store::models::{ApiKeyRow, RootKeyRow};
use crate::store::{DbConnection, StoreError};
use crate::verify::KeyRecord;

/// What a change was made to. Digests are for the caches only and never leave the process.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Subject {
    Key {
        id: KeyId,
        digest: Option<KeyDigest>,
    },
    RootKey {
        id: RootKeyId,
        digest: Option<KeyDigest>,
    },
    Keyspace {
        id: KeyspaceId,
    },
    /// A user's membership of the tenant.
    Member {
        user_id: UserId,
    },
    /// An invitation to join the tenant.
    Invitation {
        id: InvitationId,
    },
    /// One of the tenant's webhook endpoints.
    WebhookEndpoint {
        id: WebhookEndpointId,
    },
    /// A key role, with the digests of the keys that held it when it changed: their effective
    /// scopes changed with it.
    KeyRole {
        id: KeyRoleId,
        holders: Vec<KeyDigest>,
    },
}

impl Subject {
    pub fn key(row: &ApiKeyRow) -> Self {
        Self::Key {
            id: KeyId::from_trusted(row.id.clone()),
            digest: KeyDigest::from_slice(&row.digest),
        }
    }

    pub fn root_key(row: &RootKeyRow) -> Self {
        Self::RootKey {
            id: RootKeyId::from_trusted(row.id.clone()),
            digest: KeyDigest::from_slice(&row.digest),
        }
    }

    /// The audit log's target: kind and id.
    fn target(&self) -> (&'static str, &str) {
        match self {
            Self::Key { id, .. } => ("key", id.as_str()),
            Self::RootKey { id, .. } => ("root_key", id.as_str()),
            Self::Keyspace { id } => ("keyspace", id.as_str()),
            Self::Member { user_id } => ("user", user_id.as_str()),
            Self::Invitation { id } => ("invitation", id.as_str()),
            Self::WebhookEndpoint { id } => ("webhook_endpoint", id.as_str()),
            Self::KeyRole { id, .. } => ("role", id.as_str()),
        }
    }
}

/// What happened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    Created,
    Updated,
    Disabled,
    Enabled,
    /// The key was rotated: a successor exists and this key expires at the grace's end.
    Rotated {
        successor_id: KeyId,
    },
    Revoked {
        reason: Option<String>,
    },
    /// The subject is gone (a member removed from the tenant).
    Removed,
}

/// Where a change came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    Api,
    Dashboard,
    Cli,
    /// A secret scanner's report of a leaked key.
    LeakReport,
    /// An OAuth client acting on its own key (RFC 7009).
    OAuth,
    /// A revoked key was rotated, so its whole family was revoked.
    ReuseDetection,
    /// latchkey itself (an endpoint disabled after days of failed deliveries).
    System,
    /// Brought in from another system by `POST /v1/keys/import`.
    Import,
}

impl Source {
    fn of(actor: &Actor) -> Self {
        match actor {
            Actor::RootKey(_) => Self::Api,
            Actor::User(_) => Self::Dashboard,
            Actor::Cli => Self::Cli,
            Actor::LeakReporter(_) => Self::LeakReport,
            Actor::Client(_) => Self::OAuth,
            Actor::System => Self::System,
        }
    }

    /// How webhook payloads name it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Api => "api",
            Self::Dashboard => "dashboard",
            Self::Cli => "cli",
            Self::LeakReport => "leak_report",
            Self::OAuth => "oauth",
            Self::ReuseDetection => "reuse_detection",
            Self::System => "system",
            Self::Import => "import",
        }
    }
}

/// One committed change.
#[derive(Clone, Debug)]
pub struct Event {
    pub tenant: TenantId,
    pub subject: Subject,
    pub change: Change,
    pub actor: Actor,
    pub source: Source,
}

impl Event {
    /// The change, with the source its actor implies.
    pub fn new(audit: &AuditContext, tenant: &TenantId, subject: Subject, change: Change) -> Self {
        Self {
            tenant: tenant.clone(),
            subject,
            change,
            actor: audit.actor.clone(),
            source: Source::of(&audit.actor),
        }
    }

    /// Builds the event, appends the audit event it records (with `changes`) and writes its
    /// webhook deliveries; call it inside the transaction that makes the change, after the
    /// change, and dispatch what it returns after the commit.
    pub fn record(
        conn: &mut DbConnection,
        audit: &AuditContext,
        tenant: &TenantId,
        subject: Subject,
        change: Change,
        changes: Value,
    ) -> Result<Self, StoreError> {
        Self::new(audit, tenant, subject, change).write(conn, audit, changes)
    }

    /// What [`Event::record`] does, for an event built with [`Event::new`] (say, with another
    /// source): appends its audit event and writes its webhook deliveries.
    pub fn write(
        self,
        conn: &mut DbConnection,
        audit: &AuditContext,
        changes: Value,
    ) -> Result<Self, StoreError> {
        audit.record(
            conn,
            &self.tenant,
            self.action(),
            self.subject.target(),
            changes.clone(),
        )?;
        self.enqueue_webhooks(conn, audit, &changes)?;
        Ok(self)
    }

    /// Writes this event's webhook deliveries (see [`outbox::enqueue`]); [`Event::record`] does
    /// it, so only an event whose audit event is written otherwise calls it.
    pub fn enqueue_webhooks(
        &self,
        conn: &mut DbConnection,
        audit: &AuditContext,
        changes: &Value,
    ) -> Result<(), StoreError> {
        outbox::enqueue(conn, self, changes, audit.clock.now())
    }

    pub fn with_source(mut self, source: Source) -> Self {
        self.source = source;
        self
    }

    /// The audit log's name for this change.
    pub fn action(&self) -> &'static str {
        match (&self.subject, &self.change) {
            (Subject::Key { .. }, Change::Created) => "key.create",
            (Subject::Key { .. }, Change::Updated) => "key.update",
            (Subject::Key { .. }, Change::Disabled) => "key.disable",
            (Subject::Key { .. }, Change::Enabled) => "key.enable",
            (Subject::Key { .. }, Change::Rotated { .. }) => "key.rotate",
            (Subject::Key { .. }, Change::Revoked { .. }) => "key.revoke",
            (Subject::Key { .. }, Change::Removed) => "key.delete",
            (Subject::RootKey { .. }, Change::Created) => "root_key.create",
            (Subject::RootKey { .. }, Change::Revoked { .. }) => "root_key.revoke",
            (Subject::RootKey { .. }, _) => "root_key.update",
            (Subject::Keyspace { .. }, Change::Created) => "keyspace.create",
            (Subject::Keyspace { .. }, Change::Removed) => "keyspace.delete",
            (Subject::Keyspace { .. }, _) => "keyspace.update",
            (Subject::Member { .. }, Change::Created) => "membership.create",
            (Subject::Member { .. }, Change::Removed) => "membership.delete",
            (Subject::Member { .. }, _) => "membership.update",
            (Subject::Invitation { .. }, Change::Created) => "invitation.create",
            (Subject::Invitation { .. }, Change::Removed) => "invitation.delete",
            (Subject::Invitation { .. }, _) => "invitation.update",
            (Subject::WebhookEndpoint { .. }, Change::Created) => "webhook_endpoint.create",
            (Subject::WebhookEndpoint { .. }, Change::Removed) => "webhook_endpoint.delete",
            (Subject::WebhookEndpoint { .. }, Change::Disabled) => "webhook_endpoint.disable",
            (Subject::WebhookEndpoint { .. }, _) => "webhook_endpoint.update",
            (Subject::KeyRole { .. }, Change::Created) => "role.create",
            (Subject::KeyRole { .. }, Change::Removed) => "role.delete",
            (Subject::KeyRole { .. }, _) => "role.update",
        }
    }
}

/// Something that must follow committed changes. It runs after the commit, so it cannot undo
/// one; what it does must be safe to repeat.
pub trait Subscriber: Send + Sync {
    fn after_commit<'a>(&'a self, events: &'a [Event]) -> BoxFuture<'a, ()>;
}

/// Hands committed events to every subscriber, in order.
#[derive(Clone, Default)]
pub struct Dispatcher {
    subscribers: Vec<Arc<dyn Subscriber>>,
}

impl Dispatcher {
    pub fn new(subscribers: Vec<Arc<dyn Subscriber>>) -> Self {
        Self { subscribers }
    }

    pub async fn dispatch(&self, events: &[Event]) {
        if events.is_empty() {
            return;
        }
        for subscriber in &self.subscribers {
            subscriber.after_commit(events).await;
        }
    }
}

/// Evicts changed keys and root keys from this node's caches and from every other node's
/// (through Redis), so no node answers from a record older than the change.
pub struct CacheEviction {
    caches: Arc<Caches<KeyRecord, RootKeyRecord>>,
}

impl CacheEviction {
    pub fn new(caches: Arc<Caches<KeyRecord, RootKeyRecord>>) -> Self {
        Self { caches }
    }
}

impl Subscriber for CacheEviction {
    fn after_commit<'a>(&'a self, events: &'a [Event]) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let (mut keys, mut root_keys) = (Vec::new(), Vec::new());
            for event in events {
                match &event.subject {
                    Subject::Key { digest, .. } => {
                        keys.extend(digest.map(|digest| (event.tenant.clone(), digest)));
                    }
                    Subject::RootKey { digest, .. } => root_keys.extend(*digest),
                    // Every key holding the role re-reads its effective scopes, as after a
                    // change to the key itself (same channel, same bound).
                    Subject::KeyRole { holders, .. } => {
                        keys.extend(holders.iter().map(|d| (event.tenant.clone(), *d)));
                    }
                    // Nothing cached is read from them: keys copy a keyspace's defaults when
                    // made, and sessions check memberships in the store.
                    Subject::Keyspace { .. }
                    | Subject::Member { .. }
                    | Subject::Invitation { .. }
                    | Subject::WebhookEndpoint { .. } => {}
                }
            }
            if !keys.is_empty() {
                self.caches.invalidate_keys(&keys).await;
            }
            if !root_keys.is_empty() {
                self.caches.invalidate_root_keys(&root_keys).await;
            }
        })
    }
}

/// Wakes this node's webhook delivery worker after a commit, so the deliveries it wrote go out
/// within a moment instead of at the next poll.
pub struct WebhookNudge(pub Arc<tokio::sync::Notify>);

impl Subscriber for WebhookNudge {
    fn after_commit<'a>(&'a self, _events: &'a [Event]) -> BoxFuture<'a, ()> {
        Box::pin(async move { self.0.notify_one() })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    struct Seen(&'static str, Arc<Mutex<Vec<String>>>);

    impl Subscriber for Seen {
        fn after_commit<'a>(&'a self, events: &'a [Event]) -> BoxFuture<'a, ()> {
            Box::pin(async move {
                let mut seen = self.1.lock().unwrap();
                seen.extend(events.iter().map(|e| format!("{} {}", self.0, e.action())));
            })
        }
    }

    fn event(actor: Actor, change: Change) -> Event {
        let audit = AuditContext {
            actor,
            ..AuditContext::cli()
        };
        let subject = Subject::Key {
            id: KeyId::from_trusted("k".into()),
            digest: None,
        };
        Event::new(&audit, &TenantId::from_trusted("t".into()), subject, change)
    }

    #[tokio::test]
    async fn every_subscriber_sees_every_event_in_order() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let dispatcher = Dispatcher::new(vec![
            Arc::new(Seen("a", seen.clone())),
            Arc::new(Seen("b", seen.clone())),
        ]);
        let events = [
            event(Actor::Cli, Change::Created),
            event(Actor::Cli, Change::Revoked { reason: None }),
        ];
        dispatcher.dispatch(&events).await;
        dispatcher.dispatch(&[]).await;
        assert_eq!(
            *seen.lock().unwrap(),
            [
                "a key.create",
                "a key.revoke",
                "b key.create",
                "b key.revoke"
            ]
        );
    }

    #[test]
    fn keyspace_and_membership_events_keep_their_audit_names() {
        let audit = AuditContext::cli();
        let tenant = TenantId::from_trusted("t".into());
        let action =
            |subject: Subject, change| Event::new(&audit, &tenant, subject, change).action();
        let keyspace = || Subject::Keyspace {
            id: KeyspaceId::from_trusted("ks".into()),
        };
        let member = || Subject::Member {
            user_id: UserId::from_trusted("u".into()),
        };
        assert_eq!(action(keyspace(), Change::Created), "keyspace.create");
        assert_eq!(action(keyspace(), Change::Updated), "keyspace.update");
        assert_eq!(action(member(), Change::Created), "membership.create");
        assert_eq!(action(member(), Change::Updated), "membership.update");
        assert_eq!(action(member(), Change::Removed), "membership.delete");
        let invitation = || Subject::Invitation {
            id: InvitationId::from_trusted("i".into()),
        };
        assert_eq!(action(invitation(), Change::Created), "invitation.create");
        assert_eq!(action(invitation(), Change::Removed), "invitation.delete");
    }

    #[test]
    fn the_source_follows_the_actor_unless_set() {
        let root_key = || RootKeyId::from_trusted("r".into());
        let cases = [
            (Actor::RootKey(root_key()), Source::Api),
            (
                Actor::User(UserId::from_trusted("u".into())),
                Source::Dashboard,
            ),
            (Actor::LeakReporter("github".into()), Source::LeakReport),
            (
                Actor::Client(KeyId::from_trusted("k".into())),
                Source::OAuth,
            ),
            (Actor::Cli, Source::Cli),
        ];
        for (actor, source) in cases {
            assert_eq!(event(actor, Change::Updated).source, source);
        }
        let reuse = event(Actor::RootKey(root_key()), Change::Revoked { reason: None })
            .with_source(Source::ReuseDetection);
        assert_eq!(reuse.source, Source::ReuseDetection);
    }
}
