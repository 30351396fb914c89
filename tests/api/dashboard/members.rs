//! Members, invitations and the tenant switcher.

use super::support::{
    PASSWORD, Visitor, add_member, audit_actions, role_of, session_count, user_id,
};
use crate::helpers::TestApp;

/// The invite link on a members page (shown once).
pub(crate) fn invite_link(body: &str) -> Option<String> {
    let at = body.find("id=\"invite-link\"")?;
    let rest = &body[at..];
    let start = rest.find("value=\"")? + "value=\"".len();
    let rest = &rest[start..];
    Some(rest[..rest.find('"')?].to_owned())
}

#[tokio::test]
async fn an_invitation_link_is_shown_once_and_makes_a_new_member() {
    let app = TestApp::spawn().await;
    let tenant = app.tenant("acme").await;
    let owner = Visitor::signed_in(&app, "owner@acme.example.com").await;

    let response = owner
        .submit(
            "/members",
            "/members/invite",
            &[("email", "Dev@Acme.example.com"), ("role", "developer")],
        )
        .await;
    assert_eq!(response.status(), 200);
    let body = response.text().await.unwrap();
    let link = invite_link(&body).expect("the link is on the page");
    let token = link.rsplit('/').next().unwrap().to_owned();
    assert!(link.starts_with("http://127.0.0.1:"), "{link}");
    assert!(body.contains("It is shown only now"));
    // Not on the page again, and not in the store.
    let (_, again) = owner.page("/members").await;
    assert!(!again.contains(&token));
    assert!(again.contains("dev@acme.example.com"), "listed as pending");
    let stored = super::support::with_conn(&app, |conn| {
        use diesel::prelude::*;
        latchkey::store::schema::invitations::table
            .select(latchkey::store::schema::invitations::token_digest)
            .load::<Vec<u8>>(conn)
            .unwrap()
    })
    .await;
    assert_eq!(stored.len(), 1);
    assert_ne!(stored[0], token.as_bytes());

    // The invitee opens the link, chooses a password and is in.
    let path = format!("/invitations/{token}");
    let dev = Visitor::new(&app);
    let (status, page) = dev.page(&path).await;
    assert_eq!(status, 200);
    assert!(page.contains("Join acme"));
    let response = dev.submit(&path, &path, &[("password", "short")]).await;
    assert_eq!(response.status(), 422);
    let response = dev.submit(&path, &path, &[("password", PASSWORD)]).await;
    assert_eq!(response.status(), 303);
    let (status, home) = dev.page("/").await;
    assert_eq!(status, 200);
    assert!(home.contains("Developer"), "{home}");
    let dev_id = user_id(&app, "dev@acme.example.com").await;
    assert_eq!(
        role_of(&app, &tenant.id, &dev_id).await.as_deref(),
        Some("developer")
    );

    // The link works once.
    let (status, page) = Visitor::new(&app).page(&path).await;
    assert_eq!(status, 410);
    assert!(page.contains("This invitation is not valid"));
    let actions = audit_actions(&app, &tenant.id).await;
    assert!(actions.ends_with(&["invitation.create".into(), "membership.create".into()]));
}

#[tokio::test]
async fn an_existing_user_signs_in_to_accept_and_then_switches_tenants() {
    let app = TestApp::spawn().await;
    let acme = app.tenant("acme").await;
    let globex = app.tenant("globex").await;
    let owner = Visitor::signed_in(&app, "owner@acme.example.com").await;
    let response = owner
        .submit(
            "/members",
            "/members/invite",
            &[("email", "owner@globex.example.com"), ("role", "viewer")],
        )
        .await;
    let link = invite_link(&response.text().await.unwrap()).unwrap();
    let path = link.trim_start_matches(&app.address).to_owned();

    // Not signed in: the page asks them to sign in and come back.
    let them = Visitor::new(&app);
    let (_, page) = them.page(&path).await;
    assert!(page.contains("Sign in as owner@globex.example.com"));
    // Someone else signed in cannot use it.
    let (_, page) = owner.page(&path).await;
    assert!(page.contains("You are signed in as owner@acme.example.com"));
    let response = owner.submit(&path, &path, &[]).await;
    assert_eq!(response.status(), 303);
    let owner_id = user_id(&app, "owner@acme.example.com").await;
    assert_eq!(role_of(&app, &globex.id, &owner_id).await, None);

    let them = Visitor::signed_in(&app, "owner@globex.example.com").await;
    let response = them.submit(&path, &path, &[]).await;
    assert_eq!(response.status(), 303);
    let their_id = user_id(&app, "owner@globex.example.com").await;
    assert_eq!(
        role_of(&app, &acme.id, &their_id).await.as_deref(),
        Some("viewer")
    );

    // Two tenants: the switcher lists both; switching changes the role shown.
    let (_, home) = them.page("/").await;
    assert!(home.contains("name=\"tenant_id\""), "switcher shown");
    assert!(
        home.contains("<h1>acme</h1>"),
        "accepting switched to acme: {home}"
    );
    let response = them
        .submit("/", "/tenants/switch", &[("tenant_id", &globex.id)])
        .await;
    assert_eq!(response.status(), 303);
    let (_, home) = them.page("/").await;
    assert!(home.contains("<h1>globex</h1>"));
    assert!(home.contains("You are Owner"));
    // A tenant they are not in is "not found".
    let response = owner
        .submit("/", "/tenants/switch", &[("tenant_id", &globex.id)])
        .await;
    assert_eq!(response.status(), 404);
}

#[tokio::test]
async fn invite_form_errors_keep_the_values() {
    let app = TestApp::spawn().await;
    let tenant = app.tenant("acme").await;
    add_member(&app, &tenant.id, "admin@acme.example.com", "admin").await;
    let owner = Visitor::signed_in(&app, "owner@acme.example.com").await;
    let response = owner
        .submit(
            "/members",
            "/members/invite",
            &[("email", "nope"), ("role", "developer")],
        )
        .await;
    assert_eq!(response.status(), 422);
    let body = response.text().await.unwrap();
    assert!(body.contains("value=\"nope\""));
    assert!(body.contains("id=\"email-error\""));

    let response = owner
        .submit(
            "/members",
            "/members/invite",
            &[("email", "admin@acme.example.com"), ("role", "viewer")],
        )
        .await;
    assert_eq!(response.status(), 422);
    assert!(response.text().await.unwrap().contains("already a member"));

    // Admins cannot invite owners.
    let admin = Visitor::signed_in(&app, "admin@acme.example.com").await;
    let response = admin
        .submit(
            "/members",
            "/members/invite",
            &[("email", "x@example.com"), ("role", "owner")],
        )
        .await;
    assert_eq!(response.status(), 422);
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("Only owners can invite owners.")
    );
}

#[tokio::test]
async fn the_last_owner_can_be_neither_demoted_nor_removed() {
    let app = TestApp::spawn().await;
    let tenant = app.tenant("acme").await;
    let owner_id = user_id(&app, "owner@acme.example.com").await;
    let owner = Visitor::signed_in(&app, "owner@acme.example.com").await;
    // The sole owner is offered neither a role menu nor "Leave" for themself.
    let (_, page) = owner.page("/members").await;
    assert!(
        !page.contains(&format!("/members/{owner_id}/role"))
            && !page.contains(&format!("/members/{owner_id}/remove")),
        "{page}"
    );

    let response = owner
        .submit(
            "/members",
            &format!("/members/{owner_id}/role"),
            &[("role", "admin")],
        )
        .await;
    assert_eq!(response.status(), 409);
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("A tenant needs at least one owner.")
    );
    let response = owner
        .submit("/members", &format!("/members/{owner_id}/remove"), &[])
        .await;
    assert_eq!(response.status(), 409);
    assert_eq!(
        role_of(&app, &tenant.id, &owner_id).await.as_deref(),
        Some("owner")
    );

    // With a second owner, the first may step down.
    let second = add_member(&app, &tenant.id, "second@acme.example.com", "owner").await;
    let (_, page) = owner.page("/members").await;
    assert!(
        page.contains(&format!("/members/{owner_id}/remove")),
        "{page}"
    );
    let response = owner
        .submit(
            "/members",
            &format!("/members/{owner_id}/role"),
            &[("role", "admin")],
        )
        .await;
    assert_eq!(response.status(), 303);
    assert_eq!(
        role_of(&app, &tenant.id, &owner_id).await.as_deref(),
        Some("admin")
    );
    // Now an admin, they cannot touch the remaining owner.
    let response = owner
        .submit("/members", &format!("/members/{second}/remove"), &[])
        .await;
    assert_eq!(response.status(), 403);
    assert_eq!(
        role_of(&app, &tenant.id, &second).await.as_deref(),
        Some("owner")
    );
}

#[tokio::test]
async fn removing_a_member_ends_their_sessions_at_once() {
    let app = TestApp::spawn().await;
    let tenant = app.tenant("acme").await;
    let dev_id = add_member(&app, &tenant.id, "dev@acme.example.com", "developer").await;
    let dev = Visitor::signed_in(&app, "dev@acme.example.com").await;
    assert_eq!(dev.get("/members").await.status(), 200);

    let owner = Visitor::signed_in(&app, "owner@acme.example.com").await;
    let response = owner
        .submit("/members", &format!("/members/{dev_id}/remove"), &[])
        .await;
    assert_eq!(response.status(), 303);
    assert_eq!(role_of(&app, &tenant.id, &dev_id).await, None);
    assert_eq!(session_count(&app, &dev_id).await, 0);
    let response = dev.get("/members").await;
    assert_eq!(response.status(), 303, "signed out");
    assert!(
        audit_actions(&app, &tenant.id)
            .await
            .contains(&"membership.delete".to_owned())
    );
}

#[tokio::test]
async fn another_tenants_members_are_out_of_reach() {
    let app = TestApp::spawn().await;
    app.tenant("acme").await;
    let globex = app.tenant("globex").await;
    let victim = user_id(&app, "owner@globex.example.com").await;
    let attacker = Visitor::signed_in(&app, "owner@acme.example.com").await;
    for action in [
        format!("/members/{victim}/role"),
        format!("/members/{victim}/remove"),
    ] {
        let response = attacker
            .submit("/members", &action, &[("role", "viewer")])
            .await;
        assert_eq!(response.status(), 404, "{action}");
    }
    assert_eq!(
        role_of(&app, &globex.id, &victim).await.as_deref(),
        Some("owner")
    );
    let (_, page) = attacker.page("/members").await;
    assert!(!page.contains("globex"));
}

/// An invitation opened in several tabs and accepted in all of them at once: one tab joins,
/// the others get a page (never a 5xx), and the invitee is a member once.
#[tokio::test]
async fn an_invitation_accepted_in_several_tabs_at_once_never_answers_5xx() {
    let app = TestApp::spawn().await;
    let acme = app.tenant("acme").await;
    app.tenant("globex").await;
    let owner = Visitor::signed_in(&app, "owner@acme.example.com").await;
    let mut paths = Vec::new();
    for email in ["new@acme.example.com", "owner@globex.example.com"] {
        let response = owner
            .submit(
                "/members",
                "/members/invite",
                &[("email", email), ("role", "viewer")],
            )
            .await;
        let link = invite_link(&response.text().await.unwrap()).unwrap();
        paths.push(link.trim_start_matches(&app.address).to_owned());
    }

    // A new person, and a signed-in user: each with five tabs posting at once.
    let new = Visitor::new(&app);
    let existing = Visitor::signed_in(&app, "owner@globex.example.com").await;
    for (visitor, path, fields) in [
        (&new, &paths[0], vec![("password", PASSWORD)]),
        (&existing, &paths[1], vec![]),
    ] {
        let token = visitor.csrf(path).await;
        let mut all = vec![("csrf_token", token.as_str())];
        all.extend_from_slice(&fields);
        let posts = (0..5).map(|_| async { visitor.post_raw(path, &all).await.status().as_u16() });
        let gets = (0..5).map(|_| async { visitor.page(path).await.0 });
        let (posted, got) = futures_util::future::join(
            futures_util::future::join_all(posts),
            futures_util::future::join_all(gets),
        )
        .await;
        // Joined or used already (a tab that read the link after the winner wrote it).
        assert!(
            posted.iter().all(|s| *s == 303 || *s == 410),
            "{path}: {posted:?}"
        );
        assert!(posted.contains(&303), "{path}: {posted:?}");
        assert!(
            got.iter().all(|s| *s == 200 || *s == 410),
            "{path}: {got:?}"
        );
    }
    for email in ["new@acme.example.com", "owner@globex.example.com"] {
        let id = user_id(&app, email).await;
        assert_eq!(
            role_of(&app, &acme.id, &id).await.as_deref(),
            Some("viewer")
        );
    }
    let actions = audit_actions(&app, &acme.id).await;
    // The owner's own, then one per invitee.
    let joins = actions.iter().filter(|a| *a == "membership.create").count();
    assert_eq!(joins, 3, "{actions:?}");
}
