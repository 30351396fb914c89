//! Commands on API keys: create one, change one, revoke a selection.

use chrono::{DateTime, Utc};
use secrecy::SecretString;

use super::Expiry;
use crate::domain::ids::{KeyId, KeyspaceId};
use crate::domain::inputs::{Credits, IpAllowlist, Meta, RateLimit};
use crate::domain::key_role::KeyRoleRefs;
use crate::domain::scope::Scopes;

/// A key to create. `None` in `scopes`, `expiry` or `ratelimit` takes the keyspace's default.
#[derive(Debug)]
pub struct NewKey {
    /// A well-formed id; whether the tenant has such a keyspace is the service's to check.
    pub keyspace_id: KeyspaceId,
    pub name: Option<String>,
    pub owner_id: Option<String>,
    pub scopes: Option<Scopes>,
    pub meta: Meta,
    pub expiry: Option<Expiry>,
    pub ip_allowlist: IpAllowlist,
    pub ratelimit: Option<RateLimit>,
    pub credits: Option<Credits>,
    pub enabled: bool,
    /// Roles whose scopes the key holds besides its own; which exist is the service's to check.
    pub roles: KeyRoleRefs,
}

/// Changes to a key; `None` leaves a field alone, `Some(None)` clears it.
#[derive(Debug, Default)]
pub struct KeyChanges {
    pub name: Option<Option<String>>,
    pub owner_id: Option<Option<String>>,
    pub scopes: Option<Scopes>,
    pub meta: Option<Meta>,
    /// A new expiry must lie ahead when the change is made (checked then).
    pub expires_at: Option<Option<DateTime<Utc>>>,
    pub ip_allowlist: Option<IpAllowlist>,
    pub ratelimit: Option<Option<RateLimit>>,
    pub credits: Option<Option<Credits>>,
    pub enabled: Option<bool>,
    /// The key's whole set of roles (an empty list detaches every role).
    pub roles: Option<KeyRoleRefs>,
}

/// Which keys a bulk revocation takes.
#[derive(Debug)]
pub enum RevokeSelection {
    /// These ids (malformed ones dropped: they name no key).
    Ids(Vec<KeyId>),
    Owner(String),
    /// Every key of this keyspace; `None` when the id was malformed, so nothing matches.
    Keyspace(Option<KeyspaceId>),
    /// Pasted key values, say from a leak: secrets until they are digested.
    Keys(Vec<SecretString>),
}

/// Most keys one bulk revocation names.
pub const MAX_BULK: usize = 1000;
