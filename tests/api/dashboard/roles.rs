//! Every role × every dashboard action, checked on the server (the README's matrix).

use super::support::{Visitor, add_member, role_of};
use crate::helpers::TestApp;

const ROLES: [&str; 4] = ["owner", "admin", "developer", "viewer"];

/// What a role may do with members (`true` = allowed) for: view, invite, change a
/// developer's role, remove a developer, withdraw an invitation.
fn expected(role: &str) -> [bool; 5] {
    match role {
        "owner" | "admin" => [true, true, true, true, true],
        _ => [true, false, false, false, false],
    }
}

#[tokio::test]
async fn every_role_can_do_exactly_what_the_matrix_says_with_members() {
    let app = TestApp::spawn().await;
    let tenant = app.tenant("acme").await;
    for role in ROLES {
        let actor = format!("{role}-actor@acme.example.com");
        add_member(&app, &tenant.id, &actor, role).await;
    }
    for role in ROLES {
        let visitor = Visitor::signed_in(&app, &format!("{role}-actor@acme.example.com")).await;
        let allowed = expected(role);
        let target = add_member(
            &app,
            &tenant.id,
            &format!("target-of-{role}@acme.example.com"),
            "developer",
        )
        .await;

        let (status, page) = visitor.page("/members").await;
        assert_eq!(status == 200, allowed[0], "{role} views members");
        // The page offers only what the role may do.
        assert_eq!(
            page.contains("Invite someone"),
            allowed[1],
            "{role} sees the invite form"
        );

        let response = visitor
            .submit(
                "/members",
                "/members/invite",
                &[
                    ("email", &format!("invitee-of-{role}@example.com")),
                    ("role", "viewer"),
                ],
            )
            .await;
        assert_eq!(response.status() == 200, allowed[1], "{role} invites");
        if !allowed[1] {
            assert_eq!(response.status(), 403);
        }

        let response = visitor
            .submit(
                "/members",
                &format!("/members/{target}/role"),
                &[("role", "viewer")],
            )
            .await;
        assert_eq!(
            response.status() == 303,
            allowed[2],
            "{role} changes a role"
        );
        let now = role_of(&app, &tenant.id, &target).await;
        assert_eq!(now.as_deref() == Some("viewer"), allowed[2]);

        let response = visitor
            .submit("/members", &format!("/members/{target}/remove"), &[])
            .await;
        assert_eq!(
            response.status() == 303,
            allowed[3],
            "{role} removes a member"
        );
        assert_eq!(
            role_of(&app, &tenant.id, &target).await.is_none(),
            allowed[3]
        );

        let invitation = pending_invitation(&app, &tenant.id).await;
        let response = visitor
            .submit(
                "/members",
                &format!("/members/invitations/{invitation}/revoke"),
                &[],
            )
            .await;
        assert_eq!(
            response.status() == 303,
            allowed[4],
            "{role} withdraws an invitation"
        );
        if !allowed[4] {
            assert_eq!(response.status(), 403);
        }
    }
}

/// Some pending invitation's id (made by the owner when none is left).
async fn pending_invitation(app: &TestApp, tenant_id: &str) -> String {
    let tenant = tenant_id.to_owned();
    let found = super::support::with_conn(app, move |conn| {
        latchkey::store::invitations::list_pending(
            conn,
            &latchkey::domain::ids::TenantId::from_trusted(tenant),
            latchkey::store::now(),
        )
        .unwrap()
        .into_iter()
        .next()
        .map(|i| i.id)
    })
    .await;
    if let Some(id) = found {
        return id;
    }
    let owner = Visitor::signed_in(app, "owner-actor@acme.example.com").await;
    let email = format!("pending-{}@example.com", uuid::Uuid::now_v7().simple());
    let response = owner
        .submit(
            "/members",
            "/members/invite",
            &[("email", &email), ("role", "viewer")],
        )
        .await;
    assert_eq!(response.status(), 200);
    Box::pin(pending_invitation(app, tenant_id)).await
}

#[tokio::test]
async fn admins_never_touch_owners() {
    let app = TestApp::spawn().await;
    let tenant = app.tenant("acme").await;
    add_member(&app, &tenant.id, "admin@acme.example.com", "admin").await;
    let dev = add_member(&app, &tenant.id, "dev@acme.example.com", "developer").await;
    let owner_id = super::support::user_id(&app, "owner@acme.example.com").await;
    let admin = Visitor::signed_in(&app, "admin@acme.example.com").await;

    for (action, fields) in [
        (
            format!("/members/{owner_id}/role"),
            vec![("role", "viewer")],
        ),
        (format!("/members/{owner_id}/remove"), vec![]),
        (format!("/members/{dev}/role"), vec![("role", "owner")]),
    ] {
        let response = admin.submit("/members", &action, &fields).await;
        assert_eq!(response.status(), 403, "{action}");
    }
    assert_eq!(
        role_of(&app, &tenant.id, &owner_id).await.as_deref(),
        Some("owner")
    );
    assert_eq!(
        role_of(&app, &tenant.id, &dev).await.as_deref(),
        Some("developer")
    );
}
