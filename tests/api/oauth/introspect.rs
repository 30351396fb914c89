//! `POST /oauth/introspect` (RFC 7662): active credentials of the caller's tenant describe
//! themselves; anything else is exactly `{"active": false}`.

use serde_json::{Value, json};

use super::{assert_oauth_error, customer, documents_client, parts};
use crate::helpers::TestApp;

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

#[tokio::test]
async fn the_caller_must_hold_keys_verify_and_send_a_token() {
    let world = TestApp::spawn().await.with_space("acme").await;
    let url = world.app.url("/oauth/introspect");
    let response = world
        .app
        .client
        .post(&url)
        .form(&[("token", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);

    let response = world
        .post_json(
            "/v1/root-keys",
            json!({"name": "reader", "scopes": ["keys:read"]}),
        )
        .await;
    assert_eq!(response.status(), 201);
    let reader: Value = response.json().await.unwrap();
    let response = world
        .app
        .client
        .post(&url)
        .bearer_auth(reader["key"].as_str().unwrap())
        .form(&[("token", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);

    let response = world
        .app
        .client
        .post(&url)
        .bearer_auth(&world.tenant.root_key)
        .form(&[("token_type_hint", "access_token")])
        .send()
        .await
        .unwrap();
    assert_oauth_error(response, 400, "invalid_request").await;
}
