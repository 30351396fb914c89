//! Invitations: a link works once, for a week, for the invited account only.

use std::time::Duration;

use super::World;
use crate::auth::password::Password;
use crate::auth::session::SessionToken;
use crate::domain::account::Email;
use crate::domain::error_code::ErrorCode;
use crate::domain::ids::UserId;
use crate::domain::role::Role;
use crate::manage::invitations::{self, INVITATION_LIFETIME, Invited, Joining, NewInvitation};
use crate::manage::{ManageError, members};

const PASSWORD: &str = "correct horse battery staple";

impl World {
    /// Invites `email` to the world's tenant with `role`, as its owner `by`.
    async fn invite(&self, by: &UserId, email: &str, role: Role) -> Result<Invited, ManageError> {
        let new = NewInvitation {
            email: Email::parse(email).unwrap(),
            role,
            invited_by: by.clone(),
        };
        let (cx, audit, tenant) = (self.cx(), &self.audit, &self.tenant);
        invitations::invite(&cx, &self.keys, audit, tenant, Role::Owner, new).await
    }

    async fn accept_as_new(
        &self,
        token: &SessionToken,
    ) -> Result<invitations::Joined, ManageError> {
        let password = Password::parse_new(PASSWORD.into()).unwrap();
        let joining = Joining::NewAccount(password);
        let cx = self.cx();
        invitations::accept(&cx, self.credentials(), &self.audit, token, joining).await
    }

    async fn find(&self, token: &SessionToken) -> Result<invitations::Invitation, ManageError> {
        invitations::find(&self.cx(), &self.keys, token).await
    }
}

fn is_not_found<T: std::fmt::Debug>(result: &Result<T, ManageError>) -> bool {
    matches!(result, Err(ManageError::NotFound("invitation")))
}

#[tokio::test]
async fn an_invitation_accepted_once_cannot_be_accepted_again() {
    let w = World::new();
    let owner = w.member("owner@acme.example.com", Role::Owner);
    let invited = w
        .invite(&owner, "Dev@Acme.example.com", Role::Developer)
        .await
        .unwrap();
    assert_eq!(w.dispatched(), ["invitation.create"]);
    let found = w.find(&invited.token).await.unwrap();
    assert_eq!(
        (found.email.as_str(), found.role, found.has_account),
        ("dev@acme.example.com", Role::Developer, false)
    );
    assert_eq!(found.tenant_name, "acme");

    let joined = w.accept_as_new(&invited.token).await.unwrap();
    let session = joined.session.expect("a new account is signed in");
    let signed_in = w.session(&session).unwrap();
    assert_eq!(signed_in.tenant().map(|t| &t.id), Some(&w.tenant));
    assert_eq!(w.dispatched(), ["membership.create"]);
    let listed = members::list(&w.cx(), &w.tenant).await.unwrap();
    assert!(
        listed
            .iter()
            .any(|m| m.user_id == joined.user_id && m.role == Role::Developer)
    );

    let again = w.accept_as_new(&invited.token).await;
    assert!(is_not_found(&again), "{again:?}");
    assert!(is_not_found(&w.find(&invited.token).await));
    assert!(w.dispatched().is_empty());
    assert_eq!(
        w.audited().await,
        ["invitation.create", "membership.create"]
    );
}

#[tokio::test]
async fn an_invitation_is_found_for_a_week_and_expired_after() {
    let w = World::new();
    let owner = w.member("owner@acme.example.com", Role::Owner);
    let invited = w.invite(&owner, "dev@acme.example.com", Role::Viewer);
    let invited = invited.await.unwrap();
    let lifetime = INVITATION_LIFETIME.to_std().unwrap();

    w.clock.advance(lifetime - Duration::from_secs(1));
    assert!(w.find(&invited.token).await.is_ok(), "still valid");
    w.clock.advance(Duration::from_secs(1));
    assert!(is_not_found(&w.find(&invited.token).await));
    assert!(is_not_found(&w.accept_as_new(&invited.token).await));
    let pending = invitations::pending(&w.cx(), &w.tenant).await.unwrap();
    assert!(pending.is_empty(), "{pending:?}");
}

#[tokio::test]
async fn a_signed_in_invitee_joins_with_their_session_and_nobody_else_can() {
    let w = World::new();
    let owner = w.member("owner@acme.example.com", Role::Owner);
    let globex = w.add_tenant("globex");
    let cx = w.cx();
    let them = {
        let conn = &mut w.store.conn().unwrap();
        let at = w.clock.now();
        crate::store::users::create(conn, "them@globex.example.com", "x".into(), at).unwrap()
    };
    let token = w.start_session(&them, Some(&globex));
    let someone_else = w.start_session(owner.as_str(), None);
    let invited = w.invite(&owner, "them@globex.example.com", Role::Admin);
    let invited = invited.await.unwrap();
    assert!(w.find(&invited.token).await.unwrap().has_account);
    w.dispatched();

    let wrong = w.session(&someone_else).unwrap();
    let refused = invitations::accept(
        &cx,
        w.credentials(),
        &w.audit,
        &invited.token,
        Joining::SignedIn(&wrong),
    )
    .await;
    assert!(
        matches!(refused, Err(ManageError::Forbidden(_))),
        "{refused:?}"
    );
    let refused = w.accept_as_new(&invited.token).await;
    assert!(
        matches!(refused, Err(ManageError::Forbidden(_))),
        "the address has an account"
    );
    assert!(w.dispatched().is_empty());

    let signed_in = w.session(&token).unwrap();
    let joining = Joining::SignedIn(&signed_in);
    let joined = invitations::accept(&cx, w.credentials(), &w.audit, &invited.token, joining);
    let joined = joined.await.unwrap();
    assert!(joined.session.is_none(), "the session they have moves");
    let moved = w.session(&token).unwrap();
    assert_eq!(
        moved.tenant().map(|t| (&t.id, t.role)),
        Some((&w.tenant, Role::Admin))
    );
    assert_eq!(w.dispatched(), ["membership.create"]);
}

#[tokio::test]
async fn inviting_again_replaces_the_link_and_members_are_not_invited() {
    let w = World::new();
    let owner = w.member("owner@acme.example.com", Role::Owner);
    let first = w.invite(&owner, "dev@acme.example.com", Role::Viewer);
    let first = first.await.unwrap();
    let second = w.invite(&owner, "dev@acme.example.com", Role::Developer);
    let second = second.await.unwrap();
    assert!(is_not_found(&w.find(&first.token).await));
    assert_eq!(w.find(&second.token).await.unwrap().role, Role::Developer);

    let member = w
        .invite(&owner, "owner@acme.example.com", Role::Viewer)
        .await;
    assert!(
        matches!(
            member,
            Err(ManageError::Refused {
                code: ErrorCode::AlreadyMember,
                ..
            })
        ),
        "{member:?}"
    );
    assert_eq!(w.dispatched(), ["invitation.create", "invitation.create"]);
}

#[tokio::test]
async fn an_admin_neither_invites_owners_nor_withdraws_their_invitations() {
    let w = World::new();
    let owner = w.member("owner@acme.example.com", Role::Owner);
    let admin = w.member("admin@acme.example.com", Role::Admin);
    let (cx, audit, tenant) = (w.cx(), &w.audit, &w.tenant);
    let new = |role| NewInvitation {
        email: Email::parse("new@acme.example.com").unwrap(),
        role,
        invited_by: admin.clone(),
    };
    let keys = &w.keys;
    let refused =
        invitations::invite(&cx, keys, audit, tenant, Role::Admin, new(Role::Owner)).await;
    assert!(
        matches!(refused, Err(ManageError::Forbidden(_))),
        "{refused:?}"
    );
    assert!(w.dispatched().is_empty());

    let to_own = w.invite(&owner, "next-owner@acme.example.com", Role::Owner);
    let to_own = to_own.await.unwrap();
    let refused = invitations::withdraw(&cx, audit, tenant, Role::Admin, &to_own.id).await;
    assert!(
        matches!(refused, Err(ManageError::Forbidden(_))),
        "{refused:?}"
    );
    assert!(w.find(&to_own.token).await.is_ok(), "still pending");

    invitations::withdraw(&cx, audit, tenant, Role::Owner, &to_own.id)
        .await
        .unwrap();
    assert!(is_not_found(&w.find(&to_own.token).await));
    let again = invitations::withdraw(&cx, audit, tenant, Role::Owner, &to_own.id).await;
    assert!(is_not_found(&again), "{again:?}");
    assert_eq!(w.dispatched(), ["invitation.create", "invitation.delete"]);
    assert_eq!(
        w.audited().await,
        ["invitation.create", "invitation.delete"]
    );
}
