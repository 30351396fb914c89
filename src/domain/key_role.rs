//! Key roles: named bundles of scopes a tenant grants to API keys (and, later, identities) in
//! one place. Not the dashboard member roles of `domain::role` (owner, admin, …): those say what
//! a person may do in the dashboard; these say what a key may do at the tenant's service.

use std::fmt;

use super::ids::{KeyRoleId, parse_id};

/// Longest role name.
pub const MAX_ROLE_NAME_LEN: usize = 64;
/// Most roles one key holds.
pub const MAX_KEY_ROLES: usize = 16;

/// A role's name: 1 to 64 of `[a-zA-Z0-9_.:-]`, unique in its tenant, and never a UUID (a
/// reference that parses as an id is read as one).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KeyRoleName(String);

#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum KeyRoleNameError {
    #[error("must be 1 to {MAX_ROLE_NAME_LEN} characters of [a-zA-Z0-9_.:-]")]
    Malformed,
    #[error("must not have the form of an id (a UUID)")]
    LooksLikeId,
}

impl KeyRoleName {
    pub fn parse(raw: &str) -> Result<Self, KeyRoleNameError> {
        if !(1..=MAX_ROLE_NAME_LEN).contains(&raw.len())
            || !raw
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b':' | b'-'))
        {
            return Err(KeyRoleNameError::Malformed);
        }
        if parse_id(raw).is_some() {
            return Err(KeyRoleNameError::LooksLikeId);
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for KeyRoleName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// How a request names a role to attach: by id or by name.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum KeyRoleRef {
    Id(KeyRoleId),
    Name(KeyRoleName),
}

/// The roles a key is to hold: at most [`MAX_KEY_ROLES`], without repeats.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KeyRoleRefs(Vec<KeyRoleRef>);

#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum KeyRoleRefsError {
    #[error("at most {MAX_KEY_ROLES} roles are allowed")]
    TooMany,
    #[error(
        "each role is its id or its name (1 to {MAX_ROLE_NAME_LEN} characters of [a-zA-Z0-9_.:-])"
    )]
    Malformed,
}

impl KeyRoleRefs {
    pub fn parse<I, S>(raw: I) -> Result<Self, KeyRoleRefsError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut refs = Vec::new();
        for item in raw {
            if refs.len() == MAX_KEY_ROLES {
                return Err(KeyRoleRefsError::TooMany);
            }
            let item = item.as_ref();
            refs.push(match KeyRoleId::parse(item) {
                Some(id) => KeyRoleRef::Id(id),
                None => KeyRoleRef::Name(
                    KeyRoleName::parse(item).map_err(|_| KeyRoleRefsError::Malformed)?,
                ),
            });
        }
        refs.sort_unstable();
        refs.dedup();
        Ok(Self(refs))
    }

    pub fn iter(&self) -> std::slice::Iter<'_, KeyRoleRef> {
        self.0.iter()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_short_plain_and_never_ids() {
        for ok in ["billing-admin", "Support.Tier_2", "orders:reader", "a"] {
            assert_eq!(KeyRoleName::parse(ok).unwrap().as_str(), ok);
        }
        for bad in ["", "has space", "é", &"a".repeat(65), "a/b"] {
            assert_eq!(
                KeyRoleName::parse(bad),
                Err(KeyRoleNameError::Malformed),
                "{bad:?}"
            );
        }
        let id = KeyRoleId::new();
        assert_eq!(
            KeyRoleName::parse(id.as_str()),
            Err(KeyRoleNameError::LooksLikeId)
        );
    }

    #[test]
    fn references_are_ids_or_names_deduplicated_and_bounded() {
        let id = KeyRoleId::new();
        let refs = KeyRoleRefs::parse([id.as_str(), "reader", "reader"]).unwrap();
        assert_eq!(refs.iter().count(), 2);
        assert!(refs.iter().any(|r| *r == KeyRoleRef::Id(id.clone())));
        assert_eq!(
            KeyRoleRefs::parse(["no spaces"]),
            Err(KeyRoleRefsError::Malformed)
        );
        let many: Vec<String> = (0..=MAX_KEY_ROLES).map(|i| format!("r{i}")).collect();
        assert_eq!(KeyRoleRefs::parse(&many), Err(KeyRoleRefsError::TooMany));
        assert!(KeyRoleRefs::parse(Vec::<String>::new()).unwrap().is_empty());
    }
}
