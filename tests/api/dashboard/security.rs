//! Cookie flags, security headers and CSRF: the protections every page relies on.

use super::support::{PASSWORD, Visitor, role_of, set_cookies, user_id};
use crate::helpers::TestApp;

const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   frame-ancestors 'none'; form-action 'self'; base-uri 'none'";

#[tokio::test]
async fn pages_carry_the_security_headers_and_api_paths_do_not_change() {
    let app = TestApp::spawn().await;
    app.tenant("acme").await;
    let owner = Visitor::signed_in(&app, "owner@acme.example.com").await;
    for path in [
        "/sign-in",
        "/sign-up",
        "/",
        "/members",
        "/members/no-such-page",
    ] {
        let visitor = if path == "/sign-in" || path == "/sign-up" {
            Visitor::new(&app)
        } else {
            Visitor::signed_in(&app, "owner@acme.example.com").await
        };
        let response = visitor.get(path).await;
        let headers = response.headers();
        assert_eq!(headers["content-security-policy"], CSP, "{path}");
        assert_eq!(headers["x-frame-options"], "DENY");
        assert_eq!(headers["x-content-type-options"], "nosniff");
        assert_eq!(headers["referrer-policy"], "same-origin");
        assert_eq!(headers["cache-control"], "no-store");
        if path != "/members/no-such-page" {
            assert!(
                headers["content-type"]
                    .to_str()
                    .unwrap()
                    .starts_with("text/html")
            );
        }
    }
    let (status, body) = owner.page("/members/no-such-page").await;
    assert_eq!(status, 404);
    assert!(body.contains("There is nothing here"));
    // No inline script anywhere: every script is a file under /static.
    let (_, body) = owner.page("/members").await;
    assert!(!body.contains("<script>"));
    assert!(!body.contains(" style=\""));

    // The API keeps its own answers (JSON problems, no dashboard cookies).
    let response = app.get("/v1/nothing-here").await;
    assert_eq!(response.status(), 404);
    assert!(response.headers().get("content-security-policy").is_none());
    assert!(set_cookies(&response).is_empty());
    crate::helpers::assert_problem(response, 404, "not_found").await;

    let response = app.get("/static/app.css").await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/css");
    assert_eq!(response.headers()["cache-control"], "public, max-age=3600");
    let etag = response.headers()["etag"].to_str().unwrap().to_owned();
    let again = app
        .client
        .get(app.url("/static/app.css"))
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 304);
}

#[tokio::test]
async fn cookies_are_http_only_same_site_lax_and_host_only() {
    let app = TestApp::spawn().await;
    app.tenant("acme").await;
    let visitor = Visitor::new(&app);
    let response = visitor.get("/sign-in").await;
    let csrf = set_cookies(&response);
    assert_eq!(csrf.len(), 1);
    assert_cookie_flags(&csrf[0], "latchkey_csrf=", false);

    let response = visitor.sign_in("owner@acme.example.com", PASSWORD).await;
    let cookies = set_cookies(&response);
    let session = cookies
        .iter()
        .find(|c| c.starts_with("latchkey_session="))
        .expect("session cookie");
    assert_cookie_flags(session, "latchkey_session=", false);
    assert!(!session.contains("Domain="), "host-only cookie");
}

#[tokio::test]
async fn over_https_cookies_are_secure_with_the_host_prefix() {
    let app = TestApp::spawn_with(&[("LATCHKEY_PUBLIC_URL", "https://keys.example.com")]).await;
    app.tenant("acme").await;
    let visitor = Visitor::new(&app);
    let response = visitor.get("/sign-in").await;
    let csrf = set_cookies(&response);
    assert_cookie_flags(&csrf[0], "__Host-latchkey_csrf=", true);

    // reqwest keeps Secure cookies off plain HTTP, as a browser would: send them by hand.
    let body = response.text().await.unwrap();
    let token = super::support::csrf_in(&body).unwrap();
    let cookie_value = csrf[0].split(';').next().unwrap().to_owned();
    let response = app
        .client
        .post(app.url("/sign-in"))
        .header("cookie", cookie_value)
        .form(&[
            ("csrf_token", token.as_str()),
            ("email", "owner@acme.example.com"),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303);
    let cookies = set_cookies(&response);
    let session = cookies
        .iter()
        .find(|c| c.starts_with("__Host-latchkey_session="))
        .expect("prefixed session cookie");
    assert_cookie_flags(session, "__Host-latchkey_session=", true);
}

fn assert_cookie_flags(cookie: &str, prefix: &str, secure: bool) {
    assert!(cookie.starts_with(prefix), "{cookie}");
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.contains("SameSite=Lax"), "{cookie}");
    assert!(cookie.contains("Path=/"), "{cookie}");
    assert_eq!(cookie.contains("Secure"), secure, "{cookie}");
}

#[tokio::test]
async fn forms_without_the_right_csrf_token_change_nothing() {
    let app = TestApp::spawn().await;
    let tenant = app.tenant("acme").await;
    let dev_id =
        super::support::add_member(&app, &tenant.id, "dev@acme.example.com", "developer").await;
    let owner = Visitor::signed_in(&app, "owner@acme.example.com").await;
    let action = format!("/members/{dev_id}/role");

    // Missing token, wrong token, and another session's token.
    let other = Visitor::signed_in(&app, "dev@acme.example.com").await;
    let foreign = other.csrf("/members").await;
    for fields in [
        vec![("role", "admin")],
        vec![("csrf_token", "forged-token"), ("role", "admin")],
        vec![("csrf_token", foreign.as_str()), ("role", "admin")],
    ] {
        let response = owner.post_raw(&action, &fields).await;
        assert_eq!(response.status(), 403);
        let body = response.text().await.unwrap();
        assert!(body.contains("This form has expired or did not come from this site"));
    }
    // The right token, but the browser says the form came from another site.
    let token = owner.csrf("/members").await;
    let response = owner
        .client
        .post(format!("{}{action}", app.address))
        .header("origin", "https://evil.example")
        .form(&[("csrf_token", token.as_str()), ("role", "admin")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    // A JSON body is not a form.
    let response = owner
        .client
        .post(format!("{}{action}", app.address))
        .json(&serde_json::json!({ "csrf_token": token, "role": "admin" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    assert_eq!(
        role_of(&app, &tenant.id, &dev_id).await.as_deref(),
        Some("developer")
    );

    // Sign-in and sign-up are protected too (login CSRF).
    let visitor = Visitor::new(&app);
    let response = visitor
        .post_raw(
            "/sign-in",
            &[("email", "owner@acme.example.com"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(response.status(), 403);

    // With the right token it works.
    let response = owner
        .submit("/members", &action, &[("role", "admin")])
        .await;
    assert_eq!(response.status(), 303);
    assert_eq!(
        role_of(&app, &tenant.id, &dev_id).await.as_deref(),
        Some("admin")
    );
}

#[tokio::test]
async fn nothing_changes_state_on_get() {
    let app = TestApp::spawn().await;
    let tenant = app.tenant("acme").await;
    let dev_id =
        super::support::add_member(&app, &tenant.id, "dev@acme.example.com", "developer").await;
    let owner = Visitor::signed_in(&app, "owner@acme.example.com").await;
    for path in [
        "/sign-out".to_owned(),
        format!("/members/{dev_id}/remove"),
        format!("/members/{dev_id}/role?role=admin"),
        "/members/invite?email=x@example.com&role=owner".to_owned(),
    ] {
        let status = owner.get(&path).await.status().as_u16();
        assert!(status == 404 || status == 405, "GET {path}: {status}");
    }
    assert_eq!(
        role_of(&app, &tenant.id, &dev_id).await.as_deref(),
        Some("developer")
    );
    let owner_id = user_id(&app, "owner@acme.example.com").await;
    assert_eq!(super::support::session_count(&app, &owner_id).await, 1);
}
