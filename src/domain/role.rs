//! Dashboard roles and what each may do: the one permission matrix every dashboard action checks.

use std::fmt;

/// A member's role in a tenant, most powerful first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    Owner,
    Admin,
    Developer,
    Viewer,
}

/// Something a member may try to do in the dashboard.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    /// Read every page of the tenant (keys, keyspaces, root keys, members, audit, usage).
    View,
    /// Create, edit, rotate and revoke API keys, bulk revoke, report a leaked key.
    ManageKeys,
    /// Create keyspaces and edit their defaults.
    ManageKeyspaces,
    /// Create root keys (never with `root_keys:*` unless the role may also revoke them).
    CreateRootKeys,
    /// Revoke root keys, and grant root-key management scopes to new ones.
    RevokeRootKeys,
    /// Invite members, change roles, remove members (admins never touch owners).
    ManageMembers,
    /// Create, change and delete webhook endpoints, send test events, redeliver.
    ManageWebhooks,
}

impl Action {
    pub const ALL: [Action; 7] = [
        Action::View,
        Action::ManageKeys,
        Action::ManageKeyspaces,
        Action::CreateRootKeys,
        Action::RevokeRootKeys,
        Action::ManageMembers,
        Action::ManageWebhooks,
    ];
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Owner, Role::Admin, Role::Developer, Role::Viewer];

    pub fn parse(raw: &str) -> Option<Role> {
        match raw {
            "owner" => Some(Role::Owner),
            "admin" => Some(Role::Admin),
            "developer" => Some(Role::Developer),
            "viewer" => Some(Role::Viewer),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Admin => "admin",
            Role::Developer => "developer",
            Role::Viewer => "viewer",
        }
    }

    /// Capitalised, for display.
    pub fn label(self) -> &'static str {
        match self {
            Role::Owner => "Owner",
            Role::Admin => "Admin",
            Role::Developer => "Developer",
            Role::Viewer => "Viewer",
        }
    }

    /// The permission matrix (documented in the README). Deny by default: every new action
    /// must be listed here for each role that may do it.
    pub fn allows(self, action: Action) -> bool {
        use Action::*;
        match self {
            Role::Owner | Role::Admin => true,
            Role::Developer => {
                matches!(action, View | ManageKeys | ManageKeyspaces | CreateRootKeys)
            }
            Role::Viewer => matches!(action, View),
        }
    }

    /// Whether a member with this role may give `target` to someone, or change or remove a
    /// member who has `target`: only owners touch owners.
    pub fn may_manage(self, target: Role) -> bool {
        self.allows(Action::ManageMembers) && (target != Role::Owner || self == Role::Owner)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matrix() {
        let expected = [
            (Role::Owner, [true, true, true, true, true, true, true]),
            (Role::Admin, [true, true, true, true, true, true, true]),
            (
                Role::Developer,
                [true, true, true, true, false, false, false],
            ),
            (
                Role::Viewer,
                [true, false, false, false, false, false, false],
            ),
        ];
        for (role, allowed) in expected {
            for (action, allowed) in Action::ALL.into_iter().zip(allowed) {
                assert_eq!(role.allows(action), allowed, "{role} {action:?}");
            }
        }
    }

    #[test]
    fn only_owners_touch_owners() {
        assert!(Role::Owner.may_manage(Role::Owner));
        assert!(!Role::Admin.may_manage(Role::Owner));
        assert!(Role::Admin.may_manage(Role::Admin));
        assert!(!Role::Developer.may_manage(Role::Viewer));
        for role in Role::ALL {
            assert_eq!(Role::parse(role.as_str()), Some(role));
        }
        assert_eq!(Role::parse("root"), None);
    }
}
