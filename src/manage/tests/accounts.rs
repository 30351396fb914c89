//! Accounts: signing up opens a tenant, signing in checks the password and is throttled.

use super::World;
use crate::audit::AuditContext;
use crate::auth::password::Password;
use crate::auth::session::SessionToken;
use crate::auth::sign_in_throttle::ACCOUNT_FAILURES;
use crate::domain::account::{Email, TenantName};
use crate::domain::error_code::ErrorCode;
use crate::domain::role::Role;
use crate::manage::accounts::{self, SignIn, SignUp, SignedUp};
use crate::manage::{ManageError, members};

const PASSWORD: &str = "correct horse battery staple";

impl World {
    async fn sign_up(&self, email: &str, tenant: &str) -> Result<SignedUp, ManageError> {
        self.sign_up_quietly(email, tenant)
            .await?
            .ok_or_else(|| ManageError::refused(ErrorCode::EmailTaken, "taken"))
    }

    /// `Ok(None)` when the address already had an account.
    async fn sign_up_quietly(
        &self,
        email: &str,
        tenant: &str,
    ) -> Result<Option<SignedUp>, ManageError> {
        let new = SignUp {
            email: Email::parse(email).unwrap(),
            password: Password::parse_new(PASSWORD.into()).unwrap(),
            tenant: TenantName::parse(tenant).unwrap(),
            address: "192.0.2.1".into(),
        };
        accounts::sign_up(&self.cx(), self.credentials(), &AuditContext::cli(), new).await
    }

    async fn sign_in(&self, email: &str, password: &str) -> Result<SessionToken, ManageError> {
        let attempt = SignIn {
            email,
            password: Password::candidate(password.to_owned().into()),
            address: "192.0.2.1",
            replacing: None,
        };
        accounts::sign_in(&self.cx(), self.credentials(), attempt).await
    }
}

fn refused_with<T>(result: &Result<T, ManageError>, expected: ErrorCode) -> bool {
    matches!(result, Err(ManageError::Refused { code, .. }) if *code == expected)
}

#[tokio::test]
async fn signing_up_opens_a_tenant_with_its_owner_and_makes_nothing_for_a_taken_address() {
    let w = World::new();
    let signed_up = w.sign_up("Ada@Example.com", "Initech").await.unwrap();
    assert_eq!(w.dispatched(), ["membership.create"]);
    assert_eq!(
        w.audited_in(&signed_up.tenant).await,
        ["tenant.create", "membership.create"]
    );
    let owners = members::list(&w.cx(), &signed_up.tenant).await.unwrap();
    assert_eq!(owners.len(), 1);
    assert_eq!(
        (&owners[0].user_id, owners[0].email.as_str(), owners[0].role),
        (&signed_up.user_id, "ada@example.com", Role::Owner)
    );
    let signed_in = w.session(&signed_up.session).unwrap();
    assert_eq!(signed_in.tenant().map(|t| &t.id), Some(&signed_up.tenant));

    // A taken address is not refused (that would tell anyone who asks): nothing is made.
    let email = w.sign_up_quietly("ada@example.com", "Hooli").await;
    assert!(matches!(email, Ok(None)), "{email:?}");
    assert!(
        w.dispatched().is_empty(),
        "a sign-up that makes nothing dispatches nothing"
    );
}

/// Sign-up does not tell which tenant names exist: a name already in use opens another tenant
/// of that name, with its own owner, and neither owner belongs to the other's.
#[tokio::test]
async fn a_tenant_name_in_use_opens_another_tenant_of_that_name() {
    let w = World::new();
    let ada = w.sign_up("ada@example.com", "Initech").await.unwrap();
    let bob = w.sign_up("bob@example.com", "Initech").await.unwrap();
    assert_ne!(ada.tenant, bob.tenant);
    for (owner, other) in [(&ada, &bob), (&bob, &ada)] {
        let members = members::list(&w.cx(), &owner.tenant).await.unwrap();
        let ids: Vec<_> = members.iter().map(|m| &m.user_id).collect();
        assert_eq!(ids, [&owner.user_id], "only its own owner");
        let signed_in = w.session(&owner.session).unwrap();
        let tenants: Vec<_> = signed_in.tenants.iter().map(|t| &t.id).collect();
        assert_eq!(tenants, [&owner.tenant], "not {:?}", other.tenant);
    }
}

#[tokio::test]
async fn signing_in_checks_the_password_and_stops_a_guesser() {
    let w = World::new();
    let signed_up = w.sign_up("ada@example.com", "Initech").await.unwrap();
    for (email, password) in [
        ("ada@example.com", "wrong horse battery"),
        ("nobody@example.com", PASSWORD),
    ] {
        let refused = w.sign_in(email, password).await;
        assert!(
            refused_with(&refused, ErrorCode::Unauthorized),
            "{email}: {refused:?}"
        );
    }
    let token = w.sign_in(" ADA@example.com ", PASSWORD).await.unwrap();
    let signed_in = w.session(&token).unwrap();
    assert_eq!(signed_in.tenant().map(|t| &t.id), Some(&signed_up.tenant));

    // The right password cleared the count; a guesser gets the account's tries, then waits,
    // even with the right password.
    for _ in 0..ACCOUNT_FAILURES {
        let refused = w.sign_in("ada@example.com", "wrong horse battery").await;
        assert!(
            refused_with(&refused, ErrorCode::Unauthorized),
            "{refused:?}"
        );
    }
    let throttled = w.sign_in("ada@example.com", PASSWORD).await;
    assert!(
        matches!(throttled, Err(ManageError::Throttled { retry_after }) if retry_after > 0),
        "{throttled:?}"
    );
}

#[tokio::test]
async fn a_member_switches_to_their_tenants_only_and_signs_out() {
    let w = World::new();
    let signed_up = w.sign_up("ada@example.com", "Initech").await.unwrap();
    let token = w.sign_up("bob@example.com", "Hooli").await.unwrap().session;
    let bob = w.session(&token).unwrap();
    let cx = w.cx();

    let elsewhere = accounts::switch_tenant(&cx, &bob, &signed_up.tenant).await;
    assert!(
        matches!(elsewhere, Err(ManageError::NotFound(_))),
        "{elsewhere:?}"
    );
    let hooli = bob.tenant().unwrap().id.clone();
    accounts::switch_tenant(&cx, &bob, &hooli).await.unwrap();
    assert_eq!(
        w.session(&token).unwrap().tenant().map(|t| &t.id),
        Some(&hooli)
    );

    accounts::sign_out(&cx, bob.digest.clone()).await.unwrap();
    assert!(w.session(&token).is_none());
}
