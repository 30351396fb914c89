//! `POST /oauth/token`: the client credentials grant and every RFC 6749 §5.2 error that applies.

use jsonwebtoken::{DecodingKey, Validation};
use serde_json::{Value, json};

use super::{Client, World, assert_oauth_error, parts, token_request};

/// Checks a token the way an independent resource server would: `jsonwebtoken` with the key
/// from the JWKS the tenant's metadata names, requiring its issuer and the keyspace's audience.
async fn check_with_jwks(world: &World, token: &str, alg: jsonwebtoken::Algorithm) -> Value {
    let metadata = world.metadata().await;
    let issuer = metadata["issuer"].as_str().expect("issuer");
    let jwks = world.jwks_of_metadata(&metadata).await;
    let header = jsonwebtoken::decode_header(token).expect("header");
    let jwk = jwks
        .find(header.kid.as_deref().expect("kid"))
        .expect("the token's kid is published");
    let audience = format!("{issuer}/keyspaces/{}", world.keyspace_id);
    let mut validation = Validation::new(alg);
    validation.set_issuer(&[issuer]);
    validation.set_audience(&[audience]);
    validation.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
    jsonwebtoken::decode::<Value>(token, &DecodingKey::from_jwk(jwk).unwrap(), &validation)
        .expect("the token verifies with the published key")
        .claims
}

#[tokio::test]
async fn basic_auth_issues_an_rfc9068_token_that_verifies_with_the_jwks() {
    let world = World::new().await;
    let client = world.default_client().await;
    let response =
        token_request(&world.app, &client, &[("grant_type", "client_credentials")]).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "no-store");
    assert_eq!(response.headers()["pragma"], "no-cache");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 600);
    assert_eq!(body["scope"], "documents:read documents:write");
    let token = body["access_token"].as_str().unwrap();

    let (header, claims) = parts(token);
    assert_eq!(header["typ"], "at+jwt");
    assert_eq!(header["alg"], "EdDSA");
    assert!(header["kid"].as_str().is_some_and(|k| !k.is_empty()));
    assert_eq!(claims["client_id"], client.id);
    assert_eq!(claims["sub"], "customer_42");
    assert_eq!(claims["scope"], "documents:read documents:write");
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        600
    );
    assert!(claims["jti"].as_str().is_some_and(|j| !j.is_empty()));
    assert!(!token.contains(&client.secret));

    let checked = check_with_jwks(&world, token, jsonwebtoken::Algorithm::EdDSA).await;
    assert_eq!(
        checked["iss"],
        world.issuer(),
        "each tenant is its own issuer"
    );
    assert_eq!(
        checked["aud"],
        format!("{}/keyspaces/{}", world.issuer(), world.keyspace_id),
        "the audience defaults to the keyspace below the issuer"
    );
    assert_eq!(checked["tenant_id"], world.tenant.id);
    assert_eq!(checked["keyspace_id"], world.keyspace_id);
}

#[tokio::test]
async fn client_secret_post_works_and_the_sub_falls_back_to_the_key_id() {
    let world = World::new().await;
    let client = world
        .client(json!({"owner_id": null, "scopes": ["documents:read"]}))
        .await;
    let response = world
        .app
        .client
        .post(world.app.url("/oauth/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", client.id.as_str()),
            ("client_secret", client.secret.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    let (_, claims) = parts(body["access_token"].as_str().unwrap());
    assert_eq!(claims["sub"], client.id);
}

#[tokio::test]
async fn es256_is_available_and_the_lifetime_is_configurable() {
    let world = World::with(&[
        ("LATCHKEY_SIGNING_ALGORITHM", "ES256"),
        ("LATCHKEY_TOKEN_TTL_SECONDS", "120"),
    ])
    .await;
    let client = world.default_client().await;
    let token = world.token(&client, None).await;
    let (header, claims) = parts(&token);
    assert_eq!(header["alg"], "ES256");
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        120
    );
    check_with_jwks(&world, &token, jsonwebtoken::Algorithm::ES256).await;
    assert_eq!(world.verify(&token, json!({})).await["code"], "VALID");
}

#[tokio::test]
async fn a_scope_narrows_the_token_and_must_stay_within_the_key() {
    let world = World::new().await;
    let client = world.default_client().await;
    let token = world.token(&client, Some("documents:read")).await;
    assert_eq!(parts(&token).1["scope"], "documents:read");

    for scope in ["documents:delete", "documents:read billing:read"] {
        let response = token_request(
            &world.app,
            &client,
            &[("grant_type", "client_credentials"), ("scope", scope)],
        )
        .await;
        assert_oauth_error(response, 400, "invalid_scope").await;
    }
    let response = token_request(
        &world.app,
        &client,
        &[
            ("grant_type", "client_credentials"),
            ("scope", "Not A Scope"),
        ],
    )
    .await;
    assert_oauth_error(response, 400, "invalid_scope").await;

    let wildcard = world.client(json!({"scopes": ["documents:*"]})).await;
    let token = world.token(&wildcard, Some("documents:delete")).await;
    assert_eq!(parts(&token).1["scope"], "documents:delete");
}

#[tokio::test]
async fn request_and_client_errors_follow_rfc6749() {
    let world = World::new().await;
    let client = world.default_client().await;
    let other = world.default_client().await;
    let app = &world.app;
    let url = app.url("/oauth/token");

    // invalid_request: grant_type missing, a parameter repeated, not a form, two auth methods.
    let response = token_request(app, &client, &[("scope", "documents:read")]).await;
    assert_oauth_error(response, 400, "invalid_request").await;
    let response = app
        .client
        .post(&url)
        .basic_auth(&client.id, Some(&client.secret))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("grant_type=client_credentials&grant_type=client_credentials")
        .send()
        .await
        .unwrap();
    assert_oauth_error(response, 400, "invalid_request").await;
    let response = app
        .client
        .post(&url)
        .basic_auth(&client.id, Some(&client.secret))
        .json(&json!({"grant_type": "client_credentials"}))
        .send()
        .await
        .unwrap();
    assert_oauth_error(response, 400, "invalid_request").await;
    let response = app
        .client
        .post(&url)
        .basic_auth(&client.id, Some(&client.secret))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_secret", client.secret.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_oauth_error(response, 400, "invalid_request").await;

    // unsupported_grant_type, once the client is known.
    for grant in ["password", "authorization_code", "refresh_token"] {
        let response = token_request(app, &client, &[("grant_type", grant)]).await;
        assert_oauth_error(response, 400, "unsupported_grant_type").await;
    }

    // invalid_client: no credentials, wrong secret, another key's secret, unknown id, Bearer.
    let cc = [("grant_type", "client_credentials")];
    let response = app.client.post(&url).form(&cc).send().await.unwrap();
    assert_oauth_error(response, 401, "invalid_client").await;
    for (id, secret) in [
        (
            client.id.as_str(),
            "acme_live_nottherightsecretatallxxxxxxxxxxxxx",
        ),
        (client.id.as_str(), other.secret.as_str()),
        (
            "019a5f0e-7c1d-7b2a-9d4e-3f2a1b0c9d8e",
            client.secret.as_str(),
        ),
        (client.id.as_str(), ""),
    ] {
        let wrong = Client {
            id: id.into(),
            secret: secret.into(),
        };
        let response = token_request(app, &wrong, &cc).await;
        assert_oauth_error(response, 401, "invalid_client").await;
    }
    let response = app
        .client
        .post(&url)
        .bearer_auth(&client.secret)
        .form(&cc)
        .send()
        .await
        .unwrap();
    assert_oauth_error(response, 401, "invalid_client").await;
    // An access token is not a client secret.
    let token = world.token(&client, None).await;
    let response = token_request(
        app,
        &Client {
            id: client.id.clone(),
            secret: token,
        },
        &cc,
    )
    .await;
    assert_oauth_error(response, 401, "invalid_client").await;
}

#[tokio::test]
async fn keys_that_would_not_verify_get_no_token() {
    let world = World::new().await;
    let cc = [("grant_type", "client_credentials")];

    let revoked = world.default_client().await;
    let response = world
        .post_json(&format!("/v1/keys/{}/revoke", revoked.id), json!({}))
        .await;
    assert_eq!(response.status(), 200);
    assert_oauth_error(
        token_request(&world.app, &revoked, &cc).await,
        401,
        "invalid_client",
    )
    .await;

    let disabled = world.client(json!({"enabled": false})).await;
    assert_oauth_error(
        token_request(&world.app, &disabled, &cc).await,
        401,
        "invalid_client",
    )
    .await;

    let expiring = world.client(json!({"ttl_seconds": 1})).await;
    world.app.clock.advance(std::time::Duration::from_secs(2));
    assert_oauth_error(
        token_request(&world.app, &expiring, &cc).await,
        401,
        "invalid_client",
    )
    .await;

    let elsewhere = world
        .client(json!({"ip_allowlist": ["203.0.113.0/24"]}))
        .await;
    assert_oauth_error(
        token_request(&world.app, &elsewhere, &cc).await,
        400,
        "unauthorized_client",
    )
    .await;

    let limited = world
        .client(json!({"ratelimit": {"limit": 1, "window_seconds": 3600}}))
        .await;
    assert_eq!(token_request(&world.app, &limited, &cc).await.status(), 200);
    let response = token_request(&world.app, &limited, &cc).await;
    assert!(response.headers().contains_key("retry-after"));
    assert_oauth_error(response, 429, "temporarily_unavailable").await;

    let broke = world.client(json!({"credits": {"remaining": 1}})).await;
    assert_eq!(token_request(&world.app, &broke, &cc).await.status(), 200);
    assert_oauth_error(
        token_request(&world.app, &broke, &cc).await,
        400,
        "unauthorized_client",
    )
    .await;
}

#[tokio::test]
async fn a_keyspace_can_switch_the_exchange_off() {
    let world = World::new().await;
    let client = world.default_client().await;
    let response = world
        .app
        .client
        .patch(
            world
                .app
                .url(&format!("/v1/keyspaces/{}", world.keyspace_id)),
        )
        .bearer_auth(&world.tenant.root_key)
        .json(&json!({"token_exchange_enabled": false}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let response =
        token_request(&world.app, &client, &[("grant_type", "client_credentials")]).await;
    assert_oauth_error(response, 400, "unauthorized_client").await;
}

#[tokio::test]
async fn a_token_never_outlives_its_key() {
    let world = World::new().await;
    let client = world.client(json!({"ttl_seconds": 120})).await;
    let response =
        token_request(&world.app, &client, &[("grant_type", "client_credentials")]).await;
    let body: Value = response.json().await.unwrap();
    let expires_in = body["expires_in"].as_i64().unwrap();
    // Capped by the key's 120 s (the token TTL is 600 s), less the time since it was made.
    assert!((60..=120).contains(&expires_in), "{expires_in}");
}
