//! Roles and removals: only owners touch owners, the last owner stays, each change is an event.

use super::World;
use crate::domain::error_code::ErrorCode;
use crate::domain::ids::UserId;
use crate::domain::role::Role;
use crate::manage::{ManageError, members};

impl World {
    /// The role `user` has in the world's tenant, if they are a member.
    async fn role_of(&self, user: &UserId) -> Option<Role> {
        let listed = members::list(&self.cx(), &self.tenant).await.unwrap();
        listed
            .into_iter()
            .find(|m| m.user_id == *user)
            .map(|m| m.role)
    }
}

fn is_last_owner<T>(result: &Result<T, ManageError>) -> bool {
    matches!(
        result,
        Err(ManageError::Refused {
            code: ErrorCode::LastOwner,
            ..
        })
    )
}

#[tokio::test]
async fn the_last_owner_can_be_neither_demoted_nor_removed() {
    let w = World::new();
    let (cx, audit, tenant) = (w.cx(), &w.audit, &w.tenant);
    let first = w.member("first@acme.example.com", Role::Owner);

    let demoted = members::change_role(&cx, audit, tenant, Role::Owner, &first, Role::Admin).await;
    assert!(is_last_owner(&demoted), "{demoted:?}");
    let removed = members::remove(&cx, audit, tenant, Role::Owner, &first).await;
    assert!(is_last_owner(&removed), "{removed:?}");
    assert_eq!(w.role_of(&first).await, Some(Role::Owner));
    assert!(
        w.dispatched().is_empty(),
        "a refused change dispatches nothing"
    );

    // With a second owner, the first may step down; then the second is the last one.
    let second = w.member("second@acme.example.com", Role::Owner);
    members::change_role(&cx, audit, tenant, Role::Owner, &first, Role::Admin)
        .await
        .unwrap();
    assert_eq!(w.role_of(&first).await, Some(Role::Admin));
    let removed = members::remove(&cx, audit, tenant, Role::Owner, &second).await;
    assert!(is_last_owner(&removed), "{removed:?}");
    assert_eq!(w.dispatched(), ["membership.update"]);
}

#[tokio::test]
async fn an_admin_can_neither_touch_an_owner_nor_make_one() {
    let w = World::new();
    let (cx, audit, tenant) = (w.cx(), &w.audit, &w.tenant);
    let owner = w.member("owner@acme.example.com", Role::Owner);
    w.member("other-owner@acme.example.com", Role::Owner);
    let dev = w.member("dev@acme.example.com", Role::Developer);

    let demoted = members::change_role(&cx, audit, tenant, Role::Admin, &owner, Role::Viewer).await;
    assert!(
        matches!(demoted, Err(ManageError::Forbidden(_))),
        "{demoted:?}"
    );
    let removed = members::remove(&cx, audit, tenant, Role::Admin, &owner).await;
    assert!(
        matches!(removed, Err(ManageError::Forbidden(_))),
        "{removed:?}"
    );
    let promoted = members::change_role(&cx, audit, tenant, Role::Admin, &dev, Role::Owner).await;
    assert!(
        matches!(promoted, Err(ManageError::Forbidden(_))),
        "{promoted:?}"
    );
    assert_eq!(w.role_of(&owner).await, Some(Role::Owner));
    assert_eq!(w.role_of(&dev).await, Some(Role::Developer));
    assert!(w.dispatched().is_empty());

    // Anyone below owner is theirs to manage.
    members::change_role(&cx, audit, tenant, Role::Admin, &dev, Role::Viewer)
        .await
        .unwrap();
    assert_eq!(w.role_of(&dev).await, Some(Role::Viewer));
}

#[tokio::test]
async fn each_member_change_is_audited_and_dispatched_and_a_removal_ends_sessions() {
    let w = World::new();
    let (cx, audit, tenant) = (w.cx(), &w.audit, &w.tenant);
    w.member("owner@acme.example.com", Role::Owner);
    let dev = w.member("dev@acme.example.com", Role::Developer);
    let token = w.start_session(dev.as_str(), Some(tenant));
    assert!(w.session(&token).is_some());

    members::change_role(&cx, audit, tenant, Role::Owner, &dev, Role::Viewer)
        .await
        .unwrap();
    // The role it has already: nothing changes, nothing is recorded.
    members::change_role(&cx, audit, tenant, Role::Owner, &dev, Role::Viewer)
        .await
        .unwrap();
    members::remove(&cx, audit, tenant, Role::Owner, &dev)
        .await
        .unwrap();
    assert_eq!(w.dispatched(), ["membership.update", "membership.delete"]);
    assert_eq!(
        w.audited().await,
        ["membership.update", "membership.delete"]
    );
    assert_eq!(w.role_of(&dev).await, None);
    assert!(w.session(&token).is_none(), "their session ended with it");

    // Someone who is not (or no longer) a member is not found.
    let gone = members::remove(&cx, audit, tenant, Role::Owner, &dev).await;
    assert!(matches!(gone, Err(ManageError::NotFound(_))), "{gone:?}");
}
