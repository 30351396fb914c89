//! `POST /oauth/introspect` (RFC 7662): active credentials of the caller's tenant describe
//! themselves; anything else is exactly `{"active": false}`.

use serde_json::{Value, json};

use super::{assert_oauth_error, customer, documents_client, parts};
use crate::helpers::{TestApp, World, s};

#[tokio::test]
async fn an_active_token_and_an_active_key_describe_themselves() {
    let world = TestApp::spawn().await.with_space("acme").await;
    let client = world.create_key(documents_client).await;
    let token = world.access_token(&client, Some("documents:read")).await;
    let response = world.introspect(&token).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let body: Value = response.json().await.unwrap();
    let claims = parts(&token).1;
    assert_eq!(body["active"], true, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["scope"], "documents:read");
    assert_eq!(body["client_id"], client.id);
    assert_eq!(body["sub"], "customer_42");
    assert_eq!(body["exp"], claims["exp"]);
    assert_eq!(body["iat"], claims["iat"]);
    assert_eq!(body["jti"], claims["jti"]);
    assert_eq!(body["iss"], claims["iss"]);

    let body: Value = world.introspect(&client.key).await.json().await.unwrap();
    assert_eq!(body["active"], true, "{body}");
    assert_eq!(body["token_type"], "api_key");
    assert_eq!(body["client_id"], client.id);
    assert_eq!(body["scope"], "documents:read documents:write");
    assert_eq!(body["sub"], "customer_42");
    assert!(body["iat"].as_i64().is_some());
    assert!(body.get("exp").is_none(), "a key without expiry has no exp");
    assert!(
        !body.to_string().contains(&client.key),
        "the answer never echoes the key"
    );
}

#[tokio::test]
async fn everything_else_is_exactly_inactive() {
    let world = TestApp::spawn().await.with_space("acme").await;
    let revoked = world.create_key(documents_client).await;
    let revoked_token = world.access_token(&revoked, None).await;
    world
        .post_json(&format!("/v1/keys/{}/revoke", revoked.id), json!({}))
        .await;
    let disabled = world.create_key(|k| customer(k).enabled(false)).await;

    // Another tenant's key and token.
    let other = world.app.space("globex").await;
    let foreign = world
        .app
        .create_key(&other, |k| customer(k).scopes(["a:b"]))
        .await;
    let foreign_token = world.access_token(&foreign, None).await;

    for (what, token) in [
        (
            "unknown key",
            "acme_live_8Hq2vR0dXk3N7bYc1LmQ5sTf9WpZ4gJe6UaOiE2x".to_owned(),
        ),
        ("garbage", "not a token at all".to_owned()),
        ("revoked key", revoked.key.clone()),
        ("token of a revoked key", revoked_token),
        ("disabled key", disabled.key.clone()),
        ("another tenant's key", foreign.key.clone()),
        ("another tenant's token", foreign_token.clone()),
    ] {
        let response = world.introspect(&token).await;
        assert_eq!(response.status(), 200, "{what}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body, json!({"active": false}), "{what}");
    }
    // The other tenant sees its own token as active.
    let response = world
        .app
        .client
        .post(world.app.url("/oauth/introspect"))
        .bearer_auth(other.token())
        .form(&[("token", foreign_token.as_str())])
        .send()
        .await
        .unwrap();
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["active"], true);
}

/// OAuth libraries authenticate to introspection as a client, by default: authlib with HTTP
/// Basic, openid-client in the form. A root key does so as client_id = its id, client_secret =
/// the root key; as a bearer it works too.
#[tokio::test]
async fn a_root_key_authenticates_as_client_credentials_or_as_a_bearer() {
    let world = TestApp::spawn().await.with_space("acme").await;
    let client = world.create_key(documents_client).await;
    let token = world.access_token(&client, None).await;
    let tenant = &world.tenant;
    for (how, response) in [
        (
            "Basic",
            introspection(&world, &world.issuer_path())
                .basic_auth(&tenant.root_key_id, Some(&tenant.root_key))
                .form(&[("token", token.as_str())]),
        ),
        (
            "client_secret_post",
            introspection(&world, &world.issuer_path()).form(&[
                ("token", token.as_str()),
                ("client_id", &tenant.root_key_id),
                ("client_secret", &tenant.root_key),
            ]),
        ),
        (
            "Bearer",
            introspection(&world, "/oauth")
                .bearer_auth(&tenant.root_key)
                .form(&[("token", token.as_str())]),
        ),
    ] {
        let response = response.send().await.unwrap();
        assert_eq!(response.status(), 200, "{how}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["active"], true, "{how}: {body}");
        assert_eq!(body["client_id"], client.id, "{how}");
    }
}

/// A refused credential answers in the scheme it came in: RFC 6750 for a bearer
/// (`invalid_token`, `insufficient_scope` naming the scope), RFC 6749 §5.2 `invalid_client` with
/// a Basic challenge for client credentials; no credential at all gets both challenges.
#[tokio::test]
async fn a_refused_credential_is_answered_in_its_own_scheme() {
    let world = TestApp::spawn().await.with_space("acme").await;
    let tenant = world.tenant.clone();
    let other = world.app.tenant("globex").await;
    let reader = world
        .app
        .create_root_key(&tenant.root_key, &["keys:read"])
        .await;
    let (reader_id, reader_key) = (s(&reader, "id"), s(&reader, "key"));
    let path = world.issuer_path();
    let form = [("token", "x")];

    let bearer = |key: &str| introspection(&world, &path).bearer_auth(key).form(&form);
    for (what, request) in [
        ("an unknown root key", bearer("lk_root_not_a_real_key")),
        ("another tenant's root key", bearer(&other.root_key)),
    ] {
        let response = request.send().await.unwrap();
        assert_eq!(
            challenge(&response),
            ["Bearer realm=\"latchkey\", error=\"invalid_token\""],
            "{what}"
        );
        assert_oauth_error(response, 401, "invalid_token").await;
    }
    let response = bearer(&reader_key).send().await.unwrap();
    assert_eq!(
        challenge(&response),
        ["Bearer realm=\"latchkey\", error=\"insufficient_scope\", scope=\"keys:verify\""]
    );
    assert_oauth_error(response, 403, "insufficient_scope").await;

    let basic = |id: &str, key: &str| {
        introspection(&world, &path)
            .basic_auth(id, Some(key))
            .form(&form)
    };
    for (what, request) in [
        (
            "a wrong secret",
            basic(&tenant.root_key_id, "lk_root_not_a_real_key"),
        ),
        ("another root key's id", basic(&reader_id, &tenant.root_key)),
        (
            "another tenant's root key",
            basic(&other.root_key_id, &other.root_key),
        ),
        (
            "a wrong secret in the form",
            introspection(&world, &path).form(&[
                ("token", "x"),
                ("client_id", &tenant.root_key_id),
                ("client_secret", "lk_root_not_a_real_key"),
            ]),
        ),
    ] {
        let response = request.send().await.unwrap();
        assert_eq!(challenge(&response), [BASIC], "{what}");
        assert_oauth_error(response, 401, "invalid_client").await;
    }
    let response = basic(&reader_id, &reader_key).send().await.unwrap();
    assert!(challenge(&response).is_empty());
    assert_oauth_error(response, 403, "insufficient_scope").await;

    let response = introspection(&world, &path)
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(
        challenge(&response),
        [BASIC, "Bearer realm=\"latchkey\""],
        "no credential: either scheme will do"
    );
    assert_oauth_error(response, 401, "invalid_client").await;

    // Two methods at once, and a valid caller without a token.
    let response = introspection(&world, &path)
        .bearer_auth(&tenant.root_key)
        .form(&[
            ("token", "x"),
            ("client_id", &tenant.root_key_id),
            ("client_secret", &tenant.root_key),
        ])
        .send()
        .await
        .unwrap();
    assert_oauth_error(response, 400, "invalid_request").await;
    let response = introspection(&world, &path)
        .basic_auth(&tenant.root_key_id, Some(&tenant.root_key))
        .form(&[("token_type_hint", "access_token")])
        .send()
        .await
        .unwrap();
    assert_oauth_error(response, 400, "invalid_request").await;
}

const BASIC: &str = "Basic realm=\"latchkey\", charset=\"UTF-8\"";

/// A `POST {base}/introspect` to build on.
fn introspection(world: &World, base: &str) -> reqwest::RequestBuilder {
    world
        .app
        .client
        .post(world.app.url(&format!("{base}/introspect")))
}

/// Every `WWW-Authenticate` challenge of an answer, in order.
fn challenge(response: &reqwest::Response) -> Vec<String> {
    response
        .headers()
        .get_all("www-authenticate")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect()
}
