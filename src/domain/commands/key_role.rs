//! Commands on key roles.

use crate::domain::key_role::KeyRoleName;
use crate::domain::scope::Scopes;

/// A role to create.
#[derive(Debug)]
pub struct NewKeyRole {
    pub name: KeyRoleName,
    pub scopes: Scopes,
}

/// A change to a role; `None` leaves a field as it is.
#[derive(Debug, Default)]
pub struct KeyRoleChanges {
    pub name: Option<KeyRoleName>,
    pub scopes: Option<Scopes>,
}

impl KeyRoleChanges {
    pub fn is_empty(&self) -> bool {
        self.name.is_none() && self.scopes.is_none()
    }
}
