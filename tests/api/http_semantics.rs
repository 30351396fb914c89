//! HTTP as its RFCs say: 405 with `Allow` (RFC 9110 §15.5.6), bearer challenges (RFC 6750 §3),
//! rate-limit fields (draft-ietf-httpapi-ratelimit-headers), `Location` on 201 (RFC 9110
//! §15.3.2), and problem `type`s that lead to their code's documentation (RFC 9457 §3.1.1).

use reqwest::Method;
use serde_json::json;

use crate::helpers::{TestApp, assert_problem};

fn header(response: &reqwest::Response, name: &str) -> Option<String> {
    response
        .headers()
        .get(name)
        .map(|v| v.to_str().expect("a visible header").to_owned())
}

#[tokio::test]
async fn a_known_path_asked_with_another_method_is_405_with_allow() {
    let world = TestApp::spawn().await.with_space("acme").await;
    let key = world.create_key(|k| k).await;
    let (app, token) = (&world.app, world.token());
    for (method, path, allow) in [
        // Not "key not found": `verify` is no key id.
        (Method::GET, "/v1/keys/verify".to_owned(), "POST"),
        (
            Method::PUT,
            format!("/v1/keys/{}", key.id),
            "GET, PATCH, DELETE",
        ),
        (Method::PUT, "/v1/keyspaces".to_owned(), "POST, GET"),
        (Method::GET, "/v1/root-keys/x/revoke".to_owned(), "POST"),
        (Method::GET, "/oauth/token".to_owned(), "POST"),
        (Method::GET, "/oauth/introspect".to_owned(), "POST"),
        (Method::GET, "/oauth/revoke".to_owned(), "POST"),
        (Method::POST, "/healthz".to_owned(), "GET"),
    ] {
        let response = app.call(method.clone(), &path, Some(token), None).await;
        assert_eq!(
            header(&response, "allow").as_deref(),
            Some(allow),
            "{method} {path}"
        );
        let problem = assert_problem(response, 405, "method_not_allowed").await;
        assert!(
            problem["detail"]
                .as_str()
                .unwrap()
                .contains(method.as_str())
        );
    }
    // The key was not touched, and an unknown path is still 404.
    assert_eq!(app.get_key(token, &key.id).await["status"], "active");
    let unknown = app
        .call(Method::GET, "/v1/nothing", Some(token), None)
        .await;
    assert_problem(unknown, 404, "not_found").await;
}

#[tokio::test]
async fn refused_bearer_credentials_carry_rfc_6750_challenges() {
    let world = TestApp::spawn().await.with_space("acme").await;
    let app = &world.app;
    // No credential: the bare challenge, no error code (§3).
    let none = app.get("/v1/keys").await;
    assert_eq!(
        header(&none, "www-authenticate").as_deref(),
        Some("Bearer realm=\"latchkey\"")
    );
    assert_problem(none, 401, "unauthorized").await;
    // A credential that is not valid.
    for bad in ["lk_root_not_a_real_key", "garbage"] {
        let response = app.get_as("/v1/keys", bad).await;
        assert_eq!(
            header(&response, "www-authenticate").as_deref(),
            Some("Bearer realm=\"latchkey\", error=\"invalid_token\"")
        );
        assert_problem(response, 401, "unauthorized").await;
    }
    // A valid root key without the scope: 403 naming it.
    let reader = app.create_root_key(world.token(), &["keys:read"]).await;
    let reader = reader["key"].as_str().unwrap();
    let body = json!({"keyspace_id": world.space().keyspace_id});
    let response = app.post_json("/v1/keys", reader, &body).await;
    assert_eq!(
        header(&response, "www-authenticate").as_deref(),
        Some("Bearer realm=\"latchkey\", error=\"insufficient_scope\", scope=\"keys:create\"")
    );
    assert_problem(response, 403, "forbidden").await;
    // What it may do carries no challenge.
    let listed = app.get_as("/v1/keys", reader).await;
    assert_eq!(listed.status(), 200);
    assert_eq!(header(&listed, "www-authenticate"), None);
}

#[tokio::test]
async fn management_answers_tell_the_root_key_where_it_stands() {
    let world = TestApp::spawn_with(&[("LATCHKEY_MANAGEMENT_RATE_LIMIT", "4")])
        .await
        .with_space("acme")
        .await;
    let key = world.create_key(|k| k).await;
    let (app, token) = (&world.app, world.token());
    // Two calls made the world (keyspace, key): two of four are left, then one, then none.
    for left in [1, 0] {
        let response = app.get_as("/v1/keys", token).await;
        assert_eq!(response.status(), 200);
        assert_eq!(
            header(&response, "ratelimit-policy").as_deref(),
            Some("\"management\";q=4;w=60")
        );
        let standing = header(&response, "ratelimit").expect("RateLimit");
        let (remaining, reset) = standing
            .strip_prefix("\"management\";r=")
            .and_then(|rest| rest.split_once(";t="))
            .unwrap_or_else(|| panic!("{standing}"));
        assert_eq!(remaining, left.to_string(), "{standing}");
        assert!(
            (1..=60).contains(&reset.parse::<u64>().unwrap()),
            "{standing}"
        );
    }
    // Spent: a 429 with Retry-After and the same fields, r=0.
    let refused = app.get_as("/v1/keys", token).await;
    let retry_after: u64 = header(&refused, "retry-after").unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry_after));
    assert_eq!(
        header(&refused, "ratelimit-policy").as_deref(),
        Some("\"management\";q=4;w=60")
    );
    let standing = header(&refused, "ratelimit").unwrap();
    assert!(standing.starts_with("\"management\";r=0;t="), "{standing}");
    assert_problem(refused, 429, "rate_limited").await;
    // Verification is not management: no quota, no fields.
    let verified = app
        .call(
            Method::POST,
            "/v1/keys/verify",
            Some(token),
            Some(&json!({"key": key.key})),
        )
        .await;
    assert_eq!(verified.status(), 200);
    assert_eq!(header(&verified, "ratelimit"), None);
    assert_eq!(header(&verified, "ratelimit-policy"), None);
}

#[tokio::test]
async fn created_resources_are_named_by_location() {
    let world = TestApp::spawn().await.with_tenant("acme").await;
    let (app, token) = (&world.app, world.token());
    let response = app
        .post_json(
            "/v1/keyspaces",
            token,
            &json!({"name": "live", "prefix": "acme_live"}),
        )
        .await;
    assert_eq!(response.status(), 201);
    let location = header(&response, "location").expect("Location");
    let keyspace: serde_json::Value = response.json().await.unwrap();
    assert_eq!(
        location,
        format!("/v1/keyspaces/{}", keyspace["id"].as_str().unwrap())
    );
    assert_eq!(app.get_ok(&location, token).await["id"], keyspace["id"]);

    let body = json!({"keyspace_id": keyspace["id"]});
    let response = app.post_json("/v1/keys", token, &body).await;
    assert_eq!(response.status(), 201);
    let location = header(&response, "location").expect("Location");
    let created: serde_json::Value = response.json().await.unwrap();
    assert_eq!(app.get_ok(&location, token).await["id"], created["id"]);

    let rotate = format!("/v1/keys/{}/rotate", created["id"].as_str().unwrap());
    let response = app.post_json(&rotate, token, &json!({})).await;
    assert_eq!(response.status(), 201);
    let location = header(&response, "location").expect("Location");
    let rotated: serde_json::Value = response.json().await.unwrap();
    assert_ne!(rotated["id"], created["id"]);
    assert_eq!(app.get_ok(&location, token).await["id"], rotated["id"]);
}

#[tokio::test]
async fn a_problem_type_leads_to_the_documentation_of_its_code() {
    let world = TestApp::spawn().await.with_tenant("acme").await;
    let app = &world.app;
    let missing = format!("/v1/keys/{}", uuid::Uuid::now_v7());
    let problem = assert_problem(app.get_as(&missing, world.token()).await, 404, "not_found").await;
    let kind = problem["type"].as_str().unwrap();
    let expected = format!("{}/docs/errors#not_found", app.address);
    assert_eq!(kind, expected);
    // The page is served where the type points (the fragment is the client's).
    let (page, anchor) = kind.split_once('#').unwrap();
    let response = app.client.get(page).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let media = header(&response, "content-type").unwrap();
    assert!(media.starts_with("text/markdown"), "{media}");
    let text = response.text().await.unwrap();
    assert!(text.contains(&format!("<a id=\"{anchor}\"></a>")), "{text}");
    // Errors read before any handler (a malformed body) point there too.
    let response = app
        .post_raw("/v1/keyspaces", world.token(), "application/json", "{")
        .await;
    let problem = assert_problem(response, 400, "invalid_json").await;
    assert_eq!(
        problem["type"],
        format!("{}/docs/errors#invalid_json", app.address)
    );
}
