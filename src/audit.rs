//! Audit events: who did what to which target, written in the same transaction as the change.

use serde_json::Value;

use crate::domain::ids::{KeyId, RootKeyId, TenantId, UserId, new_id};
use crate::domain::time::Clock;
use crate::store::models::AuditEventRow;
use crate::store::{DbConnection, StoreError, audit_events};

/// Who performed an action.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Actor {
    RootKey(RootKeyId),
    User(UserId),
    /// The operator, through the `latchkey` command line.
    Cli,
    /// A secret scanner's signed leak report.
    LeakReporter(String),
    /// An OAuth client (an API key, by id) acting on itself, e.g. revoking itself (RFC 7009).
    Client(KeyId),
    /// latchkey itself, acting on a rule (an endpoint disabled after days of failures).
    System,
}

impl Actor {
    /// Its kind and id, as the audit log and webhook payloads name it.
    pub fn parts(&self) -> (&'static str, &str) {
        match self {
            Self::RootKey(id) => ("root_key", id.as_str()),
            Self::User(id) => ("user", id.as_str()),
            Self::Cli => ("cli", "cli"),
            Self::LeakReporter(id) => ("leak_reporter", id),
            Self::Client(id) => ("oauth_client", id.as_str()),
            Self::System => ("system", "latchkey"),
        }
    }

    /// How a row names who made it (`created_by`): `root_key:<id>`, `user:<id>`, `cli`, ...
    pub fn label(&self) -> String {
        match self {
            Self::Cli => "cli".into(),
            other => {
                let (kind, id) = other.parts();
                format!("{kind}:{id}")
            }
        }
    }
}

/// The request a change came from: actor, where it came from, and when.
#[derive(Clone, Debug)]
pub struct AuditContext {
    pub actor: Actor,
    /// The app's clock: each event is stamped when it is written, inside its transaction.
    pub clock: Clock,
    /// Formatted only when an event is recorded (most authenticated requests record none).
    pub ip: Option<std::net::IpAddr>,
    pub user_agent: Option<String>,
    pub request_id: Option<String>,
}

impl AuditContext {
    pub fn cli() -> Self {
        Self {
            actor: Actor::Cli,
            clock: Clock::system(),
            ip: None,
            user_agent: None,
            request_id: None,
        }
    }

    /// Appends one event; call it inside the transaction that makes the change.
    pub fn record(
        &self,
        conn: &mut DbConnection,
        tenant: &TenantId,
        action: &str,
        target: (&str, &str),
        changes: Value,
    ) -> Result<(), StoreError> {
        let (actor_type, actor_id) = self.actor.parts();
        audit_events::insert(
            conn,
            &AuditEventRow {
                id: new_id(),
                tenant_id: tenant.as_str().to_owned(),
                occurred_at: self.clock.now(),
                actor_type: actor_type.to_owned(),
                actor_id: actor_id.to_owned(),
                action: action.to_owned(),
                target_type: target.0.to_owned(),
                target_id: target.1.to_owned(),
                changes: changes.to_string(),
                ip: self.ip.map(|ip| ip.to_string()),
                user_agent: self.user_agent.clone(),
                request_id: self.request_id.clone(),
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::Actor;
    use crate::domain::ids::{KeyId, RootKeyId, UserId};

    #[test]
    fn labels_name_the_kind_and_id() {
        let root_key = Actor::RootKey(RootKeyId::from_trusted("r1".into()));
        assert_eq!(root_key.label(), "root_key:r1");
        let user = Actor::User(UserId::from_trusted("u1".into()));
        assert_eq!(user.label(), "user:u1");
        assert_eq!(Actor::Cli.label(), "cli");
        assert_eq!(
            Actor::LeakReporter("github".into()).label(),
            "leak_reporter:github"
        );
        let client = Actor::Client(KeyId::from_trusted("k1".into()));
        assert_eq!(client.label(), "oauth_client:k1");
    }
}
