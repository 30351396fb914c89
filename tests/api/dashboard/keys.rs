//! Keys, keyspaces, root keys and leaks through the dashboard: every role × action on the
//! server, other tenants out of reach, and forms that keep what was typed.

use super::support::{Visitor, add_member, csrf_in, shown_secret};
use crate::helpers::{KeySpec, TestApp, TestKey, TestTenant, s};
use serde_json::{Value, json};

/// The keys these tests make through the REST API.
fn a_key(k: KeySpec) -> KeySpec {
    k.name("k").scopes(["a:b"])
}

/// A fresh root key to revoke (never the tenant's last `root_keys:*` key).
async fn spare_root_key(app: &TestApp, tenant: &TestTenant) -> String {
    s(
        &app.create_root_key(&tenant.root_key, &["keys:verify"])
            .await,
        "id",
    )
}

const ROLES: [&str; 4] = ["owner", "admin", "developer", "viewer"];

/// A form post: action, fields, the status expected, and what it does (for messages).
type Case = (String, Vec<(&'static str, String)>, u16, &'static str);

#[tokio::test]
async fn every_role_can_do_exactly_what_the_matrix_says_with_keys() {
    let world = TestApp::spawn().await.with_space("acme").await;
    world.create_key(a_key).await;
    let (app, tenant, space) = (&world.app, &world.tenant, world.space());
    let keyspace_id = &space.keyspace_id;
    for role in ROLES {
        add_member(app, &tenant.id, &format!("{role}-m@acme.example.com"), role).await;
    }
    for role in ROLES {
        let manages = role != "viewer";
        let revokes_root = role == "owner" || role == "admin";
        let who = Visitor::signed_in(app, &format!("{role}-m@acme.example.com")).await;
        let TestKey {
            id: key_id, key, ..
        } = app.create_key(space, a_key).await;
        let bulk = app.create_key(space, a_key).await;
        let (bulk_id, bulk_key) = (bulk.id, bulk.key);
        let leaked = app.create_key(space, a_key).await.key;
        let expect = |allowed: bool, ok: u16| if allowed { ok } else { 403 };

        // Every page reads for every role; forms that change things only for some.
        for path in [
            "/".to_owned(),
            "/keys".to_owned(),
            format!("/keys/{key_id}"),
            "/keyspaces".to_owned(),
            format!("/keyspaces/{keyspace_id}"),
            "/root-keys".to_owned(),
            "/audit".to_owned(),
            "/usage".to_owned(),
            "/members".to_owned(),
        ] {
            assert_eq!(who.get(&path).await.status(), 200, "{role} reads {path}");
        }
        for path in ["/keys/new", "/leaks"] {
            let response = who.get(path).await;
            assert_eq!(response.status(), expect(manages, 200), "{role} {path}");
            // A refusal is said inside the dashboard, with its navigation, naming the role.
            let page = response.text().await.unwrap();
            if !manages {
                assert!(page.contains("aria-label=\"Sections\""), "{page}");
                assert!(
                    page.contains(&format!("As {role} in this tenant")),
                    "{page}"
                );
            }
        }

        let cases: Vec<Case> = vec![
            (
                "/keyspaces".into(),
                vec![
                    ("name", format!("{role} space")),
                    ("prefix", format!("{role}_ks")),
                ],
                expect(manages, 303),
                "create a keyspace",
            ),
            (
                format!("/keyspaces/{keyspace_id}"),
                vec![
                    ("name", "acme_live".into()),
                    ("default_scopes", "a:b".into()),
                ],
                expect(manages, 303),
                "edit keyspace defaults",
            ),
            (
                "/keys".into(),
                vec![
                    ("keyspace_id", keyspace_id.clone()),
                    ("name", format!("by {role}")),
                ],
                expect(manages, 303),
                "create a key",
            ),
            (
                format!("/keys/{key_id}/rotate"),
                vec![("grace_hours", "1".into())],
                expect(manages, 303),
                "rotate a key",
            ),
            (
                format!("/keys/{key_id}/revoke"),
                vec![("reason", "test".into()), ("confirm", "yes".into())],
                expect(manages, 303),
                "revoke a key",
            ),
            (
                "/keys/revoke".into(),
                vec![("ids", bulk_id.clone()), ("confirm", "yes".into())],
                expect(manages, 303),
                "bulk revoke",
            ),
            (
                "/leaks".into(),
                vec![("key", leaked.clone())],
                expect(manages, 200),
                "report a leaked key",
            ),
            (
                "/root-keys".into(),
                vec![
                    ("name", format!("{role} ci")),
                    ("scopes", "keys:verify".into()),
                ],
                expect(manages, 303),
                "create a root key",
            ),
            (
                "/root-keys".into(),
                vec![
                    ("name", format!("{role} admin")),
                    ("scopes", "root_keys:*".into()),
                ],
                match role {
                    "owner" | "admin" => 303,
                    "developer" => 422,
                    _ => 403,
                },
                "create a root key that manages root keys",
            ),
        ];
        for (action, fields, status, what) in cases {
            let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let response = who.submit("/keys", &action, &fields).await;
            assert_eq!(response.status(), status, "{role}: {what}");
        }
        assert_eq!(
            app.verify_code(&tenant.root_key, &key).await,
            if manages { "REVOKED" } else { "VALID" }
        );
        let bulk_expected = if manages { "REVOKED" } else { "VALID" };
        assert_eq!(
            app.verify_code(&tenant.root_key, &bulk_key).await,
            bulk_expected,
            "{role} bulk"
        );
        assert_eq!(
            app.verify_code(&tenant.root_key, &leaked).await,
            bulk_expected,
            "{role} leak"
        );

        // Revoking a root key: owners and admins only.
        let response = who
            .submit(
                "/root-keys",
                &format!("/root-keys/{}/revoke", spare_root_key(app, tenant).await),
                &[],
            )
            .await;
        assert_eq!(
            response.status(),
            expect(revokes_root, 303),
            "{role}: revoke a root key"
        );
    }
}

#[tokio::test]
async fn another_tenants_keys_are_not_found_and_their_leaks_not_revoked() {
    let app = TestApp::spawn().await;
    app.tenant("acme").await;
    let globex = app.space("globex").await;
    let TestKey {
        id: key_id, key, ..
    } = app.create_key(&globex, a_key).await;
    let keyspace_id = &globex.keyspace_id;
    let acme = Visitor::signed_in(&app, "owner@acme.example.com").await;

    for path in [
        format!("/keys/{key_id}"),
        format!("/keyspaces/{keyspace_id}"),
    ] {
        assert_eq!(acme.get(&path).await.status(), 404, "{path}");
    }
    let response = acme
        .submit(
            "/keys",
            &format!("/keys/{key_id}/revoke"),
            &[("confirm", "yes")],
        )
        .await;
    assert_eq!(response.status(), 404);
    let response = acme
        .submit(
            "/keys",
            "/keys/revoke",
            &[("ids", &key_id), ("confirm", "yes")],
        )
        .await;
    assert_eq!(response.status(), 303);
    assert_eq!(response.headers()["location"], "/keys?revoked=0");
    let body = report_leak(&acme, &key, "").await;
    assert!(body.contains("Nothing found"), "{body}");
    assert!(!body.contains("globex"));
    assert_eq!(app.verify_code(globex.token(), &key).await, "VALID");
    let (_, list) = acme.page("/keys").await;
    assert!(!list.contains(&key_id));
}

/// Pastes `key` into the leak report page; answers the page, which never shows the key back.
async fn report_leak(who: &Visitor, key: &str, reason: &str) -> String {
    let response = who
        .submit("/leaks", "/leaks", &[("key", key), ("reason", reason)])
        .await;
    assert_eq!(response.status(), 200);
    let body = response.text().await.unwrap();
    assert!(!body.contains(key), "the pasted key is not shown back");
    body
}

#[tokio::test]
async fn a_leaked_key_is_revoked_once_and_a_second_report_says_it_was_already() {
    let world = TestApp::spawn().await.with_space("acme").await;
    let (app, tenant) = (&world.app, &world.tenant);
    let TestKey {
        id: key_id, key, ..
    } = &world.create_key(a_key).await;
    let owner = Visitor::signed_in(app, "owner@acme.example.com").await;

    let body = report_leak(&owner, key, "in a public gist").await;
    let link = format!("href=\"/keys/{key_id}\"");
    assert!(body.contains(&format!("Revoked <a {link}>")), "{body}");
    assert!(body.contains("It no longer verifies anywhere"), "{body}");
    assert_eq!(app.verify_code(&tenant.root_key, key).await, "REVOKED");

    // Reported again (or revoked some other way before): nothing changes, and the page says so.
    let body = report_leak(&owner, key, "again").await;
    assert!(body.contains("was already revoked"), "{body}");
    assert!(body.contains(&link), "{body}");
    assert!(!body.contains("It no longer verifies anywhere"), "{body}");
    let shown = app.get_key(&tenant.root_key, key_id).await;
    assert_eq!(shown["revoked_reason"], "in a public gist");
}

#[tokio::test]
async fn key_form_errors_stay_next_to_their_fields() {
    let world = TestApp::spawn().await.with_space("acme").await;
    world.create_key(a_key).await;
    let (app, tenant, space) = (&world.app, &world.tenant, world.space());
    let keyspace_id = &space.keyspace_id;
    let owner = Visitor::signed_in(app, "owner@acme.example.com").await;
    let response = owner
        .submit(
            "/keys/new",
            "/keys",
            &[
                ("keyspace_id", keyspace_id),
                ("name", "Customer 7"),
                ("scopes", "not a scope!"),
                ("ip_allowlist", "10.0.0.0/99"),
                ("ttl_days", "soon"),
                ("meta", "[1, 2]"),
            ],
        )
        .await;
    assert_eq!(response.status(), 422);
    let body = response.text().await.unwrap();
    assert!(body.contains("value=\"Customer 7\""), "kept the name");
    assert!(body.contains("id=\"ttl_days-error\""), "{body}");

    // Fix the number fields: the service's own validation speaks next to the fields.
    let response = owner
        .submit(
            "/keys/new",
            "/keys",
            &[
                ("keyspace_id", keyspace_id),
                ("name", "Customer 7"),
                ("scopes", "not a scope!"),
                ("ttl_days", "30"),
            ],
        )
        .await;
    assert_eq!(response.status(), 422);
    let body = response.text().await.unwrap();
    assert!(body.contains("id=\"scopes-error\""), "{body}");
    assert!(body.contains("value=\"not a scope!\""));

    // Numbers out of range: every one is named beside its own form field, all at once.
    let response = owner
        .submit(
            "/keys/new",
            "/keys",
            &[
                ("keyspace_id", keyspace_id),
                ("ttl_days", "99999"),
                ("ratelimit_limit", "0"),
                ("ratelimit_window", "60"),
                ("credits_remaining", "-1"),
            ],
        )
        .await;
    assert_eq!(response.status(), 422);
    let body = response.text().await.unwrap();
    for field in ["ttl_days", "ratelimit_limit", "credits_remaining"] {
        assert!(
            body.contains(&format!("id=\"{field}-error\"")),
            "{field}: {body}"
        );
    }
    let listed = app.get_ok("/v1/keys", &tenant.root_key).await;
    assert_eq!(
        listed["data"].as_array().map(Vec::len),
        Some(1),
        "no key was made"
    );

    // The same for a keyspace's default lifetime.
    let response = owner
        .submit(
            "/keyspaces",
            "/keyspaces",
            &[
                ("name", "Short"),
                ("prefix", "short"),
                ("default_ttl_days", "0"),
            ],
        )
        .await;
    assert_eq!(response.status(), 422);
    let body = response.text().await.unwrap();
    assert!(body.contains("id=\"default_ttl_days-error\""), "{body}");

    // Keyspace prefix taken: the error is on the prefix field.
    let response = owner
        .submit(
            "/keyspaces",
            "/keyspaces",
            &[("name", "Again"), ("prefix", "acme_live")],
        )
        .await;
    assert_eq!(response.status(), 422);
    let body = response.text().await.unwrap();
    assert!(body.contains("id=\"prefix-error\""), "{body}");
    assert!(body.contains("value=\"Again\""));
}

/// The text of element `id` on a page, as a browser shows it (entities decoded).
fn snippet_in(body: &str, id: &str) -> String {
    let start = body.find(&format!("id=\"{id}\">")).expect("the snippet") + id.len() + 6;
    let end = start + body[start..].find("</pre>").expect("its end");
    body[start..end]
        .replace("&#34;", "\"")
        .replace("&#39;", "'")
        .replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// A key's secret is on the page the create form redirects to (Post/Redirect/Get), once: a
/// reload, Back or the same form sent again never shows it again and never makes another key.
#[tokio::test]
async fn the_secret_is_shown_once_after_a_redirect_and_never_stored_or_cached() {
    let world = TestApp::spawn().await.with_space("acme").await;
    world.create_key(a_key).await;
    let (app, tenant, space) = (&world.app, &world.tenant, world.space());
    let keyspace_id = &space.keyspace_id;
    let owner = Visitor::signed_in(app, "owner@acme.example.com").await;
    let (_, form) = owner.page("/keys/new").await;
    let token_at = form.find("name=\"form_token\" value=\"").unwrap() + 26;
    let form_token = &form[token_at..token_at + form[token_at..].find('"').unwrap()];
    assert!(form_token.len() >= 20, "a token per form: {form_token}");
    let fields = [
        ("csrf_token", csrf_in(&form).unwrap()),
        ("form_token", form_token.to_owned()),
        ("keyspace_id", keyspace_id.clone()),
        ("name", "Once".to_owned()),
    ];
    let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let response = owner.post_raw("/keys", &fields).await;
    assert_eq!(response.status(), 303);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    assert!(
        location.starts_with("/keys/") && location.ends_with("/secret"),
        "{location}"
    );
    let id = &location["/keys/".len()..location.len() - "/secret".len()];
    let cookie = response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    assert!(
        !cookie.contains("acme_live_"),
        "the cookie is sealed: {cookie}"
    );
    assert!(
        !cookie.contains("Max-Age") && !cookie.contains("Expires"),
        "kept in the browser's memory only: {cookie}"
    );

    let shown = owner.get(&location).await;
    assert_eq!(shown.status(), 200);
    assert_eq!(shown.headers()["cache-control"], "no-store");
    let body = shown.text().await.unwrap();
    let secret = shown_secret(&body).expect("the secret is shown");
    assert!(secret.starts_with("acme_live_"));
    assert_eq!(app.verify_code(&tenant.root_key, &secret).await, "VALID");
    // The "verify it" snippet works as shown, pasted into a shell.
    let snippet = snippet_in(&body, "verify-snippet");
    assert!(snippet.contains(keyspace_id.as_str()), "{snippet}");
    let ran = std::process::Command::new("bash")
        .args(["-c", &snippet])
        .env("LATCHKEY_ROOT_KEY", &tenant.root_key)
        .env("API_KEY", &secret)
        .output()
        .expect("run the snippet");
    let answer: Value = serde_json::from_slice(&ran.stdout).expect("JSON from the snippet");
    assert_eq!(answer["code"], "VALID", "{answer}");

    // A reload: the same page, without the secret, and nothing made.
    let (status, again) = owner.page(&location).await;
    assert_eq!(status, 200);
    assert!(shown_secret(&again).is_none() && !again.contains(&secret));
    assert!(again.contains("shown once"), "{again}");
    let keys_named_once = || async {
        let listed = app.get_as("/v1/keys?limit=100", &tenant.root_key).await;
        let listed: serde_json::Value = listed.json().await.unwrap();
        let named = listed["data"].as_array().unwrap().iter();
        named.filter(|k| k["name"] == "Once").count()
    };
    assert_eq!(keys_named_once().await, 1);

    // The form sent again as it was (Back, then "resend"): the same key, no new secret.
    let resent = owner.post_raw("/keys", &fields).await;
    assert_eq!(resent.status(), 303);
    assert_eq!(resent.headers()["location"], location.as_str());
    assert!(resent.headers().get("set-cookie").is_none());
    assert_eq!(keys_named_once().await, 1, "no second key");
    // Changed and sent again with the same token: refused, and what was typed is kept.
    let mut changed = fields.clone();
    changed[3] = ("name", "Twice");
    let refused = owner.post_raw("/keys", &changed).await;
    assert_eq!(refused.status(), 422);
    let page = refused.text().await.unwrap();
    assert!(page.contains("already used to create a key"), "{page}");
    assert!(page.contains("value=\"Twice\""));

    let (_, list) = owner.page("/keys").await;
    assert!(!list.contains(&secret));
    let (_, detail) = owner.page(&format!("/keys/{id}")).await;
    assert!(!detail.contains(&secret));
    assert!(
        detail.contains("key.create"),
        "the audit trail shows the creation"
    );
}

/// Rotating and creating a root key answer the same way: the secret on the redirected page,
/// once.
#[tokio::test]
async fn rotated_and_root_key_secrets_are_shown_once_after_a_redirect() {
    let world = TestApp::spawn().await.with_space("acme").await;
    let key = world.create_key(a_key).await;
    let (app, tenant) = (&world.app, &world.tenant);
    let owner = Visitor::signed_in(app, "owner@acme.example.com").await;
    let detail = format!("/keys/{}", key.id);
    let rotated = owner
        .submit(
            &detail,
            &format!("{detail}/rotate"),
            &[("grace_hours", "1")],
        )
        .await;
    assert_eq!(rotated.status(), 303);
    let location = rotated.headers()["location"].to_str().unwrap().to_owned();
    let (_, body) = owner.page(&location).await;
    let successor = shown_secret(&body).expect("the successor's secret");
    assert!(
        body.contains("The previous key keeps working until"),
        "{body}"
    );
    assert_eq!(app.verify_code(&tenant.root_key, &successor).await, "VALID");
    let (_, again) = owner.page(&location).await;
    assert!(shown_secret(&again).is_none() && again.contains("shown once"));

    let created = owner
        .submit(
            "/root-keys",
            "/root-keys",
            &[("name", "ci"), ("scopes", "keys:verify")],
        )
        .await;
    assert_eq!(created.status(), 303);
    let location = created.headers()["location"].to_str().unwrap().to_owned();
    assert!(location.starts_with("/root-keys/"), "{location}");
    let (_, body) = owner.page(&location).await;
    let root = shown_secret(&body).expect("the root key");
    assert!(root.starts_with("lk_root_"), "{root}");
    assert_eq!(
        app.get_as("/v1/keys", &root).await.status(),
        403,
        "works, with its scope"
    );
    let (_, again) = owner.page(&location).await;
    assert!(
        shown_secret(&again).is_none() && again.contains("shown once"),
        "{again}"
    );
    // Another member's session cannot open it, even on the right address.
    let other = Visitor::signed_in(app, "owner@acme.example.com").await;
    let (_, elsewhere) = other.page(&location).await;
    assert!(shown_secret(&elsewhere).is_none());
}

/// A keyspace's page tells its services what to check tokens against (issuer, metadata, JWKS,
/// audience), and its audience is edited there, keeping what was typed when it is refused.
#[tokio::test]
async fn a_keyspace_page_shows_its_issuer_and_edits_its_token_audience() {
    let app = TestApp::spawn().await;
    let space = app.space("acme").await;
    let owner = Visitor::signed_in(&app, "owner@acme.example.com").await;
    let page = format!("/keyspaces/{}", space.keyspace_id);
    let issuer = app.url(&format!("/oauth/{}", space.tenant.id));
    let (status, body) = owner.page(&page).await;
    assert_eq!(status, 200);
    for shown in [
        issuer.clone(),
        format!("{issuer}/jwks.json"),
        app.url(&format!(
            "/.well-known/oauth-authorization-server/oauth/{}",
            space.tenant.id
        )),
        format!("{issuer}/keyspaces/{}", space.keyspace_id),
        // The id POST /v1/keys needs, with a copy button.
        format!(
            "<code id=\"keyspace-id\">{}</code> <button type=\"button\" class=\"button small secondary\" data-copy=\"keyspace-id\">",
            space.keyspace_id
        ),
    ] {
        assert!(body.contains(&shown), "{shown} on the keyspace page");
    }

    let fields = |audience: &'static str| {
        [
            ("name", "acme"),
            ("default_ttl_days", ""),
            ("default_scopes", ""),
            ("ratelimit_limit", ""),
            ("ratelimit_window", ""),
            ("token_audience", audience),
        ]
    };
    let refused = owner.submit(&page, &page, &fields("no uri here")).await;
    assert_eq!(refused.status(), 422);
    let body = refused.text().await.unwrap();
    assert!(body.contains("absolute URI"), "the reason is said");
    assert!(
        body.contains("value=\"no uri here\""),
        "what was typed is kept"
    );

    let saved = owner
        .submit(&page, &page, &fields("https://api.acme.example"))
        .await;
    assert_eq!(saved.status(), 303);
    let keyspace = app
        .get_ok(
            &format!("/v1/keyspaces/{}", space.keyspace_id),
            space.token(),
        )
        .await;
    assert_eq!(keyspace["token_audience"], "https://api.acme.example");
    let (_, body) = owner.page(&page).await;
    assert!(body.contains("https://api.acme.example"));
    assert!(!body.contains("(the default)"));
}

#[tokio::test]
async fn a_pasted_root_key_is_revoked_by_those_who_may_revoke_root_keys() {
    let world = TestApp::spawn().await.with_space("acme").await;
    let (app, tenant) = (&world.app, &world.tenant);
    add_member(app, &tenant.id, "dev@acme.example.com", "developer").await;
    let leaked = app.create_root_key(&tenant.root_key, &["keys:read"]).await;
    let leaked = s(&leaked, "key");

    let developer = Visitor::signed_in(app, "dev@acme.example.com").await;
    let body = report_leak(&developer, &leaked, "in a log").await;
    assert!(body.contains("is a root key of this tenant"), "{body}");
    assert!(!body.contains("Nothing found"), "{body}");
    assert_eq!(app.get_as("/v1/keys", &leaked).await.status(), 200);

    let owner = Visitor::signed_in(app, "owner@acme.example.com").await;
    let body = report_leak(&owner, &leaked, "in a log").await;
    assert!(body.contains("Revoked root key"), "{body}");
    assert_eq!(app.get_as("/v1/keys", &leaked).await.status(), 401);
    let events = app.audit(&tenant.root_key, "action=root_key.revoke").await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["changes"]["reason"], "in a log");

    let body = report_leak(&owner, &leaked, "again").await;
    assert!(body.contains("was already revoked"), "{body}");
}

/// One click disables a key everywhere and another enables it again, audited; a viewer may not.
#[tokio::test]
async fn a_key_is_disabled_and_enabled_from_its_page() {
    let world = TestApp::spawn().await.with_space("acme").await;
    let key = world.create_key(a_key).await;
    let (app, tenant) = (&world.app, &world.tenant);
    let page = format!("/keys/{}", key.id);
    let action = format!("{page}/enabled");
    add_member(app, &tenant.id, "viewer@acme.example.com", "viewer").await;
    let viewer = Visitor::signed_in(app, "viewer@acme.example.com").await;
    let refused = viewer.submit(&page, &action, &[("enabled", "false")]).await;
    assert_eq!(refused.status(), 403);
    assert_eq!(app.verify_code(&tenant.root_key, &key.key).await, "VALID");

    let owner = Visitor::signed_in(app, "owner@acme.example.com").await;
    let (_, body) = owner.page(&page).await;
    assert!(body.contains("Disable key"), "{body}");
    let disabled = owner.submit(&page, &action, &[("enabled", "false")]).await;
    assert_eq!(disabled.status(), 303);
    assert_eq!(
        disabled.headers()["location"],
        format!("{page}?notice=disabled").as_str()
    );
    assert_eq!(
        app.verify_code(&tenant.root_key, &key.key).await,
        "DISABLED"
    );
    let (_, body) = owner.page(&format!("{page}?notice=disabled")).await;
    assert!(
        body.contains("The key was disabled.") && body.contains("Enable key"),
        "{body}"
    );
    assert!(body.contains("key.disable"), "audited");

    let enabled = owner.submit(&page, &action, &[("enabled", "true")]).await;
    assert_eq!(enabled.status(), 303);
    assert_eq!(app.verify_code(&tenant.root_key, &key.key).await, "VALID");
    assert!(owner.page(&page).await.1.contains("key.enable"), "audited");
    let nonsense = owner.submit(&page, &action, &[("enabled", "maybe")]).await;
    assert_eq!(nonsense.status(), 422);
    assert_eq!(app.verify_code(&tenant.root_key, &key.key).await, "VALID");
}

/// A bulk revocation refused for want of confirmation shows the list again with the same keys
/// ticked and the reason as typed, and revokes nothing.
#[tokio::test]
async fn a_refused_bulk_revoke_keeps_the_ticks_and_the_reason() {
    let world = TestApp::spawn().await.with_space("acme").await;
    let (first, second, other) = (
        world.create_key(a_key).await,
        world.create_key(a_key).await,
        world.create_key(a_key).await,
    );
    let (app, tenant) = (&world.app, &world.tenant);
    let owner = Visitor::signed_in(app, "owner@acme.example.com").await;
    let fields = [
        ("ids", first.id.as_str()),
        ("ids", second.id.as_str()),
        ("reason", "laptop stolen"),
    ];
    let refused = owner.submit("/keys", "/keys/revoke", &fields).await;
    assert_eq!(refused.status(), 422);
    let page = refused.text().await.unwrap();
    assert!(page.contains("to confirm"), "{page}");
    for (key, ticked) in [(&first, true), (&second, true), (&other, false)] {
        let input = format!("value=\"{}\" checked", key.id);
        assert_eq!(page.contains(&input), ticked, "{}", key.id);
        assert_eq!(app.verify_code(&tenant.root_key, &key.key).await, "VALID");
    }
    assert!(
        page.contains("value=\"laptop stolen\""),
        "the reason is kept"
    );
}

/// The edit form starts from the key's settings, changes only what was changed (so credits
/// spent meanwhile stay spent and the audit log names just that), shows every mistake at once
/// beside its field with what was typed, and is refused to a viewer.
#[tokio::test]
async fn a_key_is_edited_from_its_page() {
    let world = TestApp::spawn().await.with_space("acme").await;
    let key = world
        .create_key(|k| {
            a_key(k)
                .name("Billing")
                .owner("cus_1")
                .scopes(["docs:read"])
                .credits(100)
                .ratelimit(50, 60)
                .meta(json!({"plan": "pro"}))
        })
        .await;
    let (app, tenant) = (&world.app, &world.tenant);
    let edit = format!("/keys/{}/edit", key.id);
    add_member(app, &tenant.id, "viewer@acme.example.com", "viewer").await;
    let viewer = Visitor::signed_in(app, "viewer@acme.example.com").await;
    assert_eq!(viewer.get(&edit).await.status(), 403);

    let owner = Visitor::signed_in(app, "owner@acme.example.com").await;
    let (_, detail) = owner.page(&format!("/keys/{}", key.id)).await;
    assert!(detail.contains(&format!("href=\"{edit}\"")), "an Edit link");
    let (status, form) = owner.page(&edit).await;
    assert_eq!(status, 200);
    for shown in [
        "value=\"Billing\"",
        "value=\"cus_1\"",
        "value=\"docs:read\"",
        "value=\"100\"",
        "value=\"50\"",
        "value=\"60\"",
        "&#34;plan&#34;: &#34;pro&#34;",
    ] {
        assert!(form.contains(shown), "{shown} in {form}");
    }
    // Three verifications spend three credits while the form is open.
    for _ in 0..3 {
        assert_eq!(app.verify_code(&tenant.root_key, &key.key).await, "VALID");
    }
    let as_shown = [
        ("name", "Billing EU"),
        ("owner_id", "cus_1"),
        ("scopes", "docs:read"),
        ("expires_on", ""),
        ("ip_allowlist", ""),
        ("ratelimit_limit", "50"),
        ("ratelimit_window", "60"),
        ("credits_remaining", "100"),
        ("credits_shown", "100"),
        ("refill_amount", ""),
        ("refill_interval", "monthly"),
        ("meta", "{\n  \"plan\": \"pro\"\n}"),
    ];
    let saved = owner.submit(&edit, &edit, &as_shown).await;
    assert_eq!(saved.status(), 303);
    assert_eq!(
        saved.headers()["location"],
        format!("/keys/{}?notice=updated", key.id).as_str()
    );
    let now = app
        .get_ok(&format!("/v1/keys/{}", key.id), &tenant.root_key)
        .await;
    assert_eq!(now["name"], "Billing EU");
    assert_eq!(now["credits"]["remaining"], 97, "spent credits stay spent");
    assert_eq!(now["meta"], json!({"plan": "pro"}));
    let events = app
        .audit(&tenant.root_key, &format!("target={}", key.id))
        .await;
    let update = events
        .iter()
        .find(|e| e["action"] == "key.update")
        .expect("audited");
    let changed: Vec<&String> = update["changes"].as_object().unwrap().keys().collect();
    assert_eq!(changed, ["name"], "{update}");

    // Every mistake at once, beside its field, with what was typed kept.
    let bad = [
        ("name", "Billing EU"),
        ("scopes", "not a scope!"),
        ("expires_on", "next tuesday"),
        ("ip_allowlist", "10.0.0.0/8\nnope"),
        ("ratelimit_limit", "many"),
        ("ratelimit_window", "60"),
        ("credits_remaining", "97"),
        ("credits_shown", "97"),
        ("meta", "[1, 2]"),
    ];
    let refused = owner.submit(&edit, &edit, &bad).await;
    assert_eq!(refused.status(), 422);
    let page = refused.text().await.unwrap();
    for field in [
        "scopes",
        "expires_on",
        "ip_allowlist",
        "ratelimit_limit",
        "meta",
    ] {
        assert!(
            page.contains(&format!("id=\"{field}-error\"")),
            "{field}: {page}"
        );
    }
    assert!(
        page.contains("next tuesday") && page.contains("nope"),
        "kept"
    );
    let after = app
        .get_ok(&format!("/v1/keys/{}", key.id), &tenant.root_key)
        .await;
    assert_eq!(after["name"], "Billing EU", "nothing was changed");

    // Clearing: no scopes, no limit, no credits, an expiry; the day past is refused in words.
    let past = [("expires_on", "2001-01-01"), ("name", "Billing EU")];
    let refused = owner.submit(&edit, &edit, &past).await;
    assert_eq!(refused.status(), 422);
    assert!(refused.text().await.unwrap().contains("The expiry"));
    let day = (app.clock.now() + chrono::TimeDelta::days(30))
        .format("%Y-%m-%d")
        .to_string();
    let cleared = [("name", "Billing EU"), ("expires_on", day.as_str())];
    assert_eq!(owner.submit(&edit, &edit, &cleared).await.status(), 303);
    let after = app
        .get_ok(&format!("/v1/keys/{}", key.id), &tenant.root_key)
        .await;
    assert_eq!(after["scopes"], json!([]));
    assert_eq!(after["ratelimit"], Value::Null);
    assert_eq!(after["credits"], Value::Null);
    assert_eq!(after["owner_id"], Value::Null);
    assert!(
        after["expires_at"].as_str().unwrap().starts_with(&day),
        "{after}"
    );
}

/// A rotated key's page says it was superseded and until when it still works, offers to rotate
/// the newest key instead of refusing a second rotation, says when a revoked successor leaves
/// its predecessor working, and revokes the whole family in one confirmed step.
#[tokio::test]
async fn a_rotation_family_is_shown_and_revoked_from_a_key_page() {
    let world = TestApp::spawn().await.with_space("acme").await;
    let first = world.create_key(|k| a_key(k).name("first")).await;
    let (app, tenant) = (&world.app, &world.tenant);
    let second = app.rotate(&tenant.root_key, &first.id, 24 * 3600).await;
    let owner = Visitor::signed_in(app, "owner@acme.example.com").await;

    let (_, old) = owner.page(&format!("/keys/{}", first.id)).await;
    assert!(old.contains("id=\"rotation-state\""), "{old}");
    assert!(
        old.contains("grace period and keeps working until"),
        "{old}"
    );
    assert!(
        old.contains(&format!(
            "href=\"/keys/{}\" id=\"rotate-newest\"",
            second.id
        )),
        "{old}"
    );
    assert!(
        !old.contains(&format!("/keys/{}/rotate\"", first.id)),
        "no rotate form"
    );
    let (_, new) = owner.page(&format!("/keys/{}", second.id)).await;
    assert!(!new.contains("id=\"rotation-state\"") && new.contains("Rotate key"));

    // Revoking the successor leaves the predecessor working, and its page says so.
    let page = format!("/keys/{}", second.id);
    let revoke = [("reason", "leaked"), ("confirm", "yes")];
    let revoked = owner
        .submit(&page, &format!("{page}/revoke"), &revoke)
        .await;
    assert_eq!(revoked.status(), 303);
    assert_eq!(app.verify_code(&tenant.root_key, &first.key).await, "VALID");
    let (_, body) = owner.page(&page).await;
    assert!(body.contains("id=\"family-live\""), "{body}");

    // The whole family, confirmed: nothing of it verifies any more.
    let action = format!("{page}/revoke-family");
    let unconfirmed = owner.submit(&page, &action, &[("reason", "leaked")]).await;
    assert_eq!(unconfirmed.status(), 422);
    assert!(
        unconfirmed
            .text()
            .await
            .unwrap()
            .contains("value=\"leaked\"")
    );
    assert_eq!(app.verify_code(&tenant.root_key, &first.key).await, "VALID");
    let done = owner.submit(&page, &action, &revoke).await;
    assert_eq!(done.status(), 303);
    assert_eq!(
        app.verify_code(&tenant.root_key, &first.key).await,
        "REVOKED"
    );
    let (_, body) = owner.page(&format!("{page}?notice=family_revoked")).await;
    assert!(body.contains("Every key of this rotation family was revoked"));
    assert!(!body.contains("id=\"family-live\""));
    let events = app.audit(&tenant.root_key, "action=key.revoke").await;
    assert!(
        events
            .iter()
            .any(|e| e["target"]["id"] == first.id.as_str()),
        "{events:?}"
    );
}

/// The new-key form answers in its own units and words, every mistake on the first submit.
#[tokio::test]
async fn new_key_errors_are_in_the_forms_units_and_words_all_at_once() {
    let world = TestApp::spawn().await.with_space("acme").await;
    let (app, space) = (&world.app, world.space());
    let owner = Visitor::signed_in(app, "owner@acme.example.com").await;
    let fields = [
        ("keyspace_id", space.keyspace_id.as_str()),
        ("name", "Typo"),
        ("ttl_days", "99999"),
        ("ip_allowlist", "10.0.0.0/8\nnope"),
        ("scopes", "docs"),
    ];
    let refused = owner.submit("/keys/new", "/keys", &fields).await;
    assert_eq!(refused.status(), 422);
    let page = refused.text().await.unwrap();
    assert!(
        page.contains("from 1 to 3660 (10 years)"),
        "days, not seconds: {page}"
    );
    assert!(
        page.contains("Entry 2 (“nope”) is not an IP address"),
        "{page}"
    );
    assert!(
        page.contains("“resource:action”") && !page.contains('`'),
        "{page}"
    );
    assert!(page.contains("value=\"Typo\""), "kept");
}
