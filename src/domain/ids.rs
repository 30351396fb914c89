//! Identifier newtypes. A tenant id is required by every query on tenant-owned rows, so an
//! unscoped query does not type-check; the other ids keep a key's id from being passed where a
//! keyspace's is expected.

use std::fmt;

/// Generates a new time-ordered id (UUIDv7), so ids sort by creation time.
pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// Parses a public id: a UUID in canonical lower-case form. Anything else is rejected.
pub fn parse_id(raw: &str) -> Option<String> {
    let parsed = uuid::Uuid::try_parse(raw).ok()?;
    let canonical = parsed.to_string();
    (canonical == raw).then_some(canonical)
}

/// An id a client may name (in a path or a body): generic code parses any of them the same way.
pub trait PublicId: Sized {
    /// The id, if `raw` is its canonical form.
    fn parse(raw: &str) -> Option<Self>;
}

/// One id newtype: `new()` mints a UUIDv7, `parse` accepts only the canonical form a client
/// may send, `from_trusted` wraps what the store returned. There is no `Default`: an id is
/// always one on purpose.
macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// A new, time-ordered id.
            #[allow(clippy::new_without_default)]
            pub fn new() -> Self {
                Self(new_id())
            }

            /// The id a client sent, if it is a canonical UUID.
            pub fn parse(raw: &str) -> Option<Self> {
                parse_id(raw).map(Self)
            }

            /// Wraps an id read from the store (already trusted).
            pub fn from_trusted(id: String) -> Self {
                Self(id)
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }

            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl PublicId for $name {
            fn parse(raw: &str) -> Option<Self> {
                // The inherent `parse` (it takes precedence), so callers need not import the trait.
                Self::parse(raw)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

id_type!(
    /// The isolation boundary: every row a tenant owns carries this.
    TenantId
);
id_type!(
    /// An API key (`api_keys.id`).
    KeyId
);
id_type!(
    /// A key role: a named bundle of scopes (`roles.id`).
    KeyRoleId
);
id_type!(
    /// A keyspace (`keyspaces.id`).
    KeyspaceId
);
id_type!(
    /// A root key (`root_keys.id`).
    RootKeyId
);
id_type!(
    /// A dashboard user (`users.id`).
    UserId
);
id_type!(
    /// An invitation to join a tenant (`invitations.id`).
    InvitationId
);

id_type!(
    /// A tenant's webhook endpoint (`webhook_endpoints.id`).
    WebhookEndpointId
);
id_type!(
    /// One event's delivery to one endpoint (`webhook_deliveries.id`).
    WebhookDeliveryId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_canonical_and_ordered() {
        let a = new_id();
        let b = new_id();
        assert!(a < b, "UUIDv7 strings sort by creation time");
        assert_eq!(parse_id(&a).as_deref(), Some(a.as_str()));
        assert_eq!(parse_id(&a.to_uppercase()), None);
        assert_eq!(parse_id("not-a-uuid"), None);
        assert_eq!(parse_id(""), None);
    }

    #[test]
    fn typed_ids_accept_only_canonical_uuids_and_serialise_as_strings() {
        let key = KeyId::new();
        assert_eq!(KeyId::parse(key.as_str()), Some(key.clone()));
        assert_eq!(KeyId::parse(&key.as_str().to_uppercase()), None);
        assert_eq!(KeyspaceId::parse("ks_1"), None);
        assert_eq!(serde_json::to_string(&key).unwrap(), format!("\"{key}\""));
    }
}
