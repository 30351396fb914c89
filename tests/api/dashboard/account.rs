//! Sign up, sign in, sign out, sessions and throttling.

use diesel::prelude::*;
use latchkey::store::schema::sessions;

use super::support::{PASSWORD, Visitor, audit_actions, session_count, set_cookies, user_id};
use crate::helpers::TestApp;

#[tokio::test]
async fn sign_up_creates_a_tenant_with_its_owner_and_signs_in() {
    let app = TestApp::spawn().await;
    let ada = Visitor::new(&app);

    let response = ada.sign_up("Ada@Example.com", "Analytical").await;
    assert_eq!(response.status(), 303);
    assert_eq!(response.headers()["location"], "/");

    let (status, body) = ada.page("/").await;
    assert_eq!(status, 200);
    assert!(body.contains("Analytical"), "{body}");
    assert!(body.contains("ada@example.com"));
    assert!(body.contains("Owner"));

    let id = user_id(&app, "ada@example.com").await;
    let tenant_id = with_tenant_id(&app, "Analytical").await;
    assert_eq!(
        super::support::role_of(&app, &tenant_id, &id)
            .await
            .as_deref(),
        Some("owner")
    );
    assert_eq!(
        audit_actions(&app, &tenant_id).await,
        ["tenant.create", "membership.create"]
    );
    // A new tenant has no root key yet, and its page says what one is for.
    let (_, root_keys) = ada.page("/root-keys").await;
    assert!(root_keys.contains("No root keys yet"), "{root_keys}");
}

async fn with_tenant_id(app: &TestApp, name: &str) -> String {
    let name = name.to_owned();
    super::support::with_conn(app, move |conn| {
        let mut named = latchkey::store::tenants::named(conn, &name).expect("query");
        assert_eq!(named.len(), 1, "one tenant named {name}");
        named.remove(0).id
    })
    .await
}

#[tokio::test]
async fn sign_up_errors_are_shown_next_to_the_field_and_keep_what_was_typed() {
    let app = TestApp::spawn().await;
    let visitor = Visitor::new(&app);

    let response = visitor
        .submit(
            "/sign-up",
            "/sign-up",
            &[
                ("email", "not-an-address"),
                ("password", "too short"),
                ("tenant", "  "),
            ],
        )
        .await;
    assert_eq!(response.status(), 422);
    let body = response.text().await.unwrap();
    assert!(body.contains("value=\"not-an-address\""), "kept the e-mail");
    assert!(body.contains("id=\"email-error\""));
    assert!(body.contains("Use at least 12 characters"));
    assert!(body.contains("id=\"tenant-error\""));
    assert!(!body.contains("too short"), "never echoes a password");
}

#[tokio::test]
async fn sign_in_rotates_the_session_and_sign_out_ends_it() {
    let app = TestApp::spawn().await;
    let tenant = app.tenant("acme").await;
    let email = "owner@acme.example.com";
    let visitor = Visitor::new(&app);

    // Wrong password and unknown account: the same calm message.
    for (email, password) in [(email, "wrong password!"), ("nobody@example.com", PASSWORD)] {
        let response = visitor.sign_in(email, password).await;
        assert_eq!(response.status(), 401);
        let body = response.text().await.unwrap();
        assert!(body.contains("That e-mail address and password do not match an account."));
    }

    let first = visitor.sign_in(email, PASSWORD).await;
    assert_eq!(first.status(), 303);
    let first_cookie = session_cookie(&first);
    let id = user_id(&app, email).await;
    assert_eq!(session_count(&app, &id).await, 1);

    // Signing in again replaces the session: a new id, the old one deleted.
    let second = visitor
        .submit("/", "/sign-in", &[("email", email), ("password", PASSWORD)])
        .await;
    let second_cookie = session_cookie(&second);
    assert_ne!(first_cookie, second_cookie);
    assert_eq!(session_count(&app, &id).await, 1);
    let stale = Visitor::new(&app);
    let response = stale
        .client
        .get(format!("{}/members", app.address))
        .header("cookie", format!("latchkey_session={first_cookie}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303, "the old session no longer works");

    let (status, body) = visitor.page("/members").await;
    assert_eq!(status, 200);
    assert!(body.contains(&tenant.name));

    let response = visitor.submit("/members", "/sign-out", &[]).await;
    assert_eq!(response.status(), 303);
    assert_eq!(response.headers()["location"], "/sign-in?notice=signed_out");
    assert!(
        set_cookies(&response)
            .iter()
            .any(|c| c.starts_with("latchkey_session=;") && c.contains("Max-Age=0"))
    );
    assert_eq!(
        session_count(&app, &id).await,
        0,
        "sign-out deletes the session"
    );
    let response = stale
        .client
        .get(format!("{}/members", app.address))
        .header("cookie", format!("latchkey_session={second_cookie}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303);
    assert_eq!(response.headers()["location"], "/sign-in?next=%2Fmembers");
}

fn session_cookie(response: &reqwest::Response) -> String {
    set_cookies(response)
        .iter()
        .find_map(|c| c.strip_prefix("latchkey_session="))
        .and_then(|c| c.split(';').next())
        .expect("a session cookie")
        .to_owned()
}

#[tokio::test]
async fn sign_in_returns_to_the_page_asked_for_but_never_off_site() {
    let app = TestApp::spawn().await;
    app.tenant("acme").await;
    let visitor = Visitor::new(&app);
    let response = visitor.get("/members").await;
    assert_eq!(response.headers()["location"], "/sign-in?next=%2Fmembers");

    for (next, expected) in [("/members", "/members"), ("//evil.example/x", "/")] {
        let visitor = Visitor::new(&app);
        let response = visitor
            .submit(
                "/sign-in",
                "/sign-in",
                &[
                    ("email", "owner@acme.example.com"),
                    ("password", PASSWORD),
                    ("next", next),
                ],
            )
            .await;
        assert_eq!(response.headers()["location"], expected);
    }
}

#[tokio::test]
async fn sessions_expire_when_idle_and_absolutely() {
    let app = TestApp::spawn().await;
    app.tenant("acme").await;
    let email = "owner@acme.example.com";
    let id = user_id(&app, email).await;

    for column in ["idle", "absolute"] {
        let visitor = Visitor::signed_in(&app, email).await;
        assert_eq!(visitor.get("/members").await.status(), 200);
        let user = id.clone();
        super::support::with_conn(&app, move |conn| {
            let past = latchkey::store::now() - chrono::TimeDelta::hours(13);
            let target = sessions::table.filter(sessions::user_id.eq(user));
            if column == "idle" {
                diesel::update(target)
                    .set(sessions::last_seen_at.eq(past))
                    .execute(conn)
            } else {
                diesel::update(target)
                    .set(sessions::expires_at.eq(past))
                    .execute(conn)
            }
            .expect("age the session");
        })
        .await;
        let response = visitor.get("/members").await;
        assert_eq!(response.status(), 303, "{column} expiry");
        assert!(
            set_cookies(&response)
                .iter()
                .any(|c| c.starts_with("latchkey_session=;"))
        );
        assert_eq!(session_count(&app, &id).await, 0, "expired session deleted");
    }
}

/// Signs in to `email` with a wrong password as often as the per-account limit allows.
async fn use_up_account_tries(visitor: &Visitor, email: &str) {
    for _ in 0..latchkey::auth::sign_in_throttle::ACCOUNT_FAILURES {
        assert_eq!(
            visitor.sign_in(email, "not the password").await.status(),
            401
        );
    }
}

#[tokio::test]
async fn sign_in_is_throttled_per_account() {
    let app = TestApp::spawn().await;
    app.tenant("acme").await;
    let email = "owner@acme.example.com";
    let visitor = Visitor::new(&app);
    use_up_account_tries(&visitor, email).await;
    // Even the right password waits now, with a clear message.
    let response = visitor.sign_in(email, PASSWORD).await;
    assert_eq!(response.status(), 429);
    let retry: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry > 800 && retry <= 900, "{retry}");
    let body = response.text().await.unwrap();
    assert!(body.contains("Too many attempts; try again in"), "{body}");
    assert!(body.contains(" s."));

    // Another account from the same address is not locked by this one.
    app.tenant("other").await;
    let response = visitor.sign_in("owner@other.example.com", PASSWORD).await;
    assert_eq!(response.status(), 303);
}

#[tokio::test]
async fn parallel_wrong_passwords_get_no_more_tries_than_a_sequence() {
    let app = TestApp::spawn().await;
    app.tenant("acme").await;
    let visitor = Visitor::new(&app);
    let statuses = visitor
        .wrong_sign_ins_at_once("owner@acme.example.com", 12)
        .await;
    let tries = latchkey::auth::sign_in_throttle::ACCOUNT_FAILURES as usize;
    assert_eq!(
        statuses.iter().filter(|s| **s == 401).count(),
        tries,
        "{statuses:?}"
    );
    assert_eq!(statuses.iter().filter(|s| **s == 429).count(), 12 - tries);
}

#[tokio::test]
async fn sign_in_is_throttled_in_process_while_redis_is_unreachable() {
    // Nothing listens on port 1: every Redis call fails, and the node's own count decides.
    let app = TestApp::spawn_with(&[("REDIS_URL", "redis://127.0.0.1:1")]).await;
    app.tenant("acme").await;
    let email = "owner@acme.example.com";
    let visitor = Visitor::new(&app);
    use_up_account_tries(&visitor, email).await;
    assert_eq!(visitor.sign_in(email, PASSWORD).await.status(), 429);
}

#[tokio::test]
async fn sign_in_is_throttled_per_address() {
    let app = TestApp::spawn().await;
    app.tenant("acme").await;
    let visitor = Visitor::new(&app);
    for i in 0..latchkey::auth::sign_in_throttle::ADDRESS_FAILURES {
        let email = format!("guess{i}@example.com");
        assert_eq!(
            visitor.sign_in(&email, "not the password").await.status(),
            401
        );
    }
    let response = visitor.sign_in("owner@acme.example.com", PASSWORD).await;
    assert_eq!(response.status(), 429);
}

/// Sign-up does not tell anyone which addresses have an account: a taken address is answered
/// like a new one (303 to `/` with a session cookie), and nothing is made or signed in.
#[tokio::test]
async fn sign_up_does_not_reveal_taken_addresses_and_is_throttled() {
    let app = TestApp::spawn().await;
    app.tenant("acme").await;
    let new = Visitor::new(&app).sign_up("new@example.com", "Hooli").await;
    let taken = Visitor::new(&app)
        .sign_up("owner@acme.example.com", "Initech")
        .await;
    assert_eq!(answer_shape(new).await, answer_shape(taken).await);
    let initech = super::support::with_conn(&app, |conn| {
        latchkey::store::tenants::named(conn, "Initech").unwrap()
    })
    .await;
    assert!(initech.is_empty(), "nothing is made for a taken address");

    // Throttled per address like sign-in: the sixth try for one address waits.
    let visitor = Visitor::new(&app);
    let mut statuses = Vec::new();
    for i in 0..6 {
        let tenant = format!("Probe {i}");
        let response = visitor.sign_up("owner@acme.example.com", &tenant).await;
        statuses.push(response.status().as_u16());
    }
    assert_eq!(statuses[..4], [303; 4], "{statuses:?}");
    assert_eq!(statuses[5], 429, "{statuses:?}");
}

/// What a sign-up's answer shows anyone: status, where it sends the browser, the shape of the
/// one cookie it sets (name, value length, attributes), and the body.
async fn answer_shape(
    response: reqwest::Response,
) -> (u16, String, (String, usize, String), String) {
    let status = response.status().as_u16();
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let mut cookies = super::support::set_cookies(&response);
    assert_eq!(cookies.len(), 1, "{cookies:?}");
    let cookie = cookies.remove(0);
    let (name, rest) = cookie.split_once('=').unwrap();
    let (value, attributes) = rest.split_once(';').unwrap();
    let cookie = (name.to_owned(), value.len(), attributes.to_owned());
    (status, location, cookie, response.text().await.unwrap())
}

/// Sign-up does not tell which tenant names exist: a name in use is answered like a free one
/// (the same status, redirect, cookie shape and body, in about the same time, both hashing a
/// password), and opens a second tenant of that name: each person owns their own, and neither
/// sees or reaches the other's.
#[tokio::test]
async fn sign_up_does_not_reveal_taken_tenant_names_and_each_gets_their_own_tenant() {
    let app = TestApp::spawn().await;
    // The first sign-up of a process warms the password workers and the pool.
    Visitor::new(&app)
        .sign_up("warm@example.com", "Warm-up")
        .await;
    let (ada, bob) = (Visitor::new(&app), Visitor::new(&app));
    let started = std::time::Instant::now();
    let free = ada.sign_up("ada@example.com", "Initech").await;
    let free_took = started.elapsed();
    let started = std::time::Instant::now();
    let taken = bob.sign_up("bob@example.com", "Initech").await;
    let taken_took = started.elapsed();
    let free = answer_shape(free).await;
    assert_eq!((free.0, free.1.as_str()), (303, "/"));
    assert_eq!(free, answer_shape(taken).await);
    // The same class of time: both hash a password and write one transaction. A ratio, not a
    // bound, so a loaded machine slows both alike.
    let (fast, slow) = (free_took.min(taken_took), free_took.max(taken_took));
    assert!(slow < fast * 4, "free {free_took:?}, taken {taken_took:?}");

    let tenants = super::support::with_conn(&app, |conn| {
        latchkey::store::tenants::named(conn, "Initech").unwrap()
    })
    .await;
    assert_eq!(tenants.len(), 2, "two tenants of one name");
    let (ada_id, bob_id) = (
        user_id(&app, "ada@example.com").await,
        user_id(&app, "bob@example.com").await,
    );
    let role = |tenant: usize, user: &str| {
        let (tenant, user) = (tenants[tenant].id.clone(), user.to_owned());
        let app = &app;
        async move { super::support::role_of(app, &tenant, &user).await }
    };
    let roles = [
        role(0, &ada_id).await,
        role(0, &bob_id).await,
        role(1, &ada_id).await,
        role(1, &bob_id).await,
    ];
    assert_eq!(
        roles.each_ref().map(|r| r.is_some()),
        [true, false, false, true],
        "each owns one, in the order they signed up: {roles:?}"
    );
    for (visitor, own, other, email) in [
        (&ada, &tenants[0].id, &tenants[1].id, "ada@example.com"),
        (&bob, &tenants[1].id, &tenants[0].id, "bob@example.com"),
    ] {
        let (status, members) = visitor.page("/members").await;
        assert_eq!(status, 200);
        assert!(members.contains(email));
        let stranger = if email.starts_with("ada") {
            "bob@"
        } else {
            "ada@"
        };
        assert!(
            !members.contains(stranger),
            "{email} sees only their own tenant"
        );
        assert!(!members.contains(other.as_str()), "nor its id");
        assert_eq!(
            audit_actions(&app, own).await,
            ["tenant.create", "membership.create"]
        );
        let response = visitor
            .submit("/", "/tenants/switch", &[("tenant_id", other)])
            .await;
        assert_eq!(
            response.status(),
            404,
            "{email} cannot switch to the other Initech"
        );
    }
}
