//! `POST /oauth/token`: the client credentials grant and every RFC 6749 §5.2 error that applies.

use jsonwebtoken::{DecodingKey, Validation};
use serde_json::{Value, json};

use super::{assert_oauth_error, customer, documents_client, parts};
use crate::helpers::{TestApp, TestKey, World};

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
    let mut validation = Validation::new(alg);
    validation.set_issuer(&[issuer]);
    validation.set_audience(&[world.audience()]);
    validation.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
    jsonwebtoken::decode::<Value>(token, &DecodingKey::from_jwk(jwk).unwrap(), &validation)
        .expect("the token verifies with the published key")
        .claims
}

#[tokio::test]
async fn basic_auth_issues_an_rfc9068_token_that_verifies_with_the_jwks() {
    let world = TestApp::spawn().await.with_space("acme").await;
    let client = world.create_key(documents_client).await;
    let response = world
        .app
        .token_request(&client, &[("grant_type", "client_credentials")])
        .await;
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
    assert!(!token.contains(&client.key));

    let checked = check_with_jwks(&world, token, jsonwebtoken::Algorithm::EdDSA).await;
    assert_eq!(
        checked["iss"],
        world.issuer(),
        "each tenant is its own issuer"
    );
    assert_eq!(
        checked["aud"],
        world.audience(),
        "the audience defaults to the keyspace below the issuer"
    );
    assert_eq!(checked["tenant_id"], world.tenant.id);
    assert_eq!(checked["keyspace_id"], world.space().keyspace_id);
}

#[tokio::test]
async fn client_secret_post_works_and_the_sub_falls_back_to_the_key_id() {
    let world = TestApp::spawn().await.with_space("acme").await;
    let client = world.create_key(|k| k.scopes(["documents:read"])).await;
    let response = world
        .app
        .client
        .post(world.app.url("/oauth/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", client.id.as_str()),
            ("client_secret", client.key.as_str()),
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
    let world = TestApp::spawn_with(&[
        ("LATCHKEY_SIGNING_ALGORITHM", "ES256"),
        ("LATCHKEY_TOKEN_TTL_SECONDS", "120"),
    ])
    .await
    .with_space("acme")
    .await;
    let client = world.create_key(documents_client).await;
    let token = world.access_token(&client, None).await;
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
    let world = TestApp::spawn().await.with_space("acme").await;
    let client = world.create_key(documents_client).await;
    let token = world.access_token(&client, Some("documents:read")).await;
    assert_eq!(parts(&token).1["scope"], "documents:read");

    for scope in ["documents:delete", "documents:read billing:read"] {
        let response = world
            .app
            .token_request(
                &client,
                &[("grant_type", "client_credentials"), ("scope", scope)],
            )
            .await;
        assert_oauth_error(response, 400, "invalid_scope").await;
    }
    let response = world
        .app
        .token_request(
            &client,
            &[
                ("grant_type", "client_credentials"),
                ("scope", "Not A Scope"),
            ],
        )
        .await;
    assert_oauth_error(response, 400, "invalid_scope").await;

    let wildcard = world
        .create_key(|k| customer(k).scopes(["documents:*"]))
        .await;
    let token = world
        .access_token(&wildcard, Some("documents:delete"))
        .await;
    assert_eq!(parts(&token).1["scope"], "documents:delete");
}

#[tokio::test]
async fn request_and_client_errors_follow_rfc6749() {
    let world = TestApp::spawn().await.with_space("acme").await;
    let client = world.create_key(documents_client).await;
    let other = world.create_key(documents_client).await;
    let app = &world.app;
    let url = app.url("/oauth/token");

    // invalid_request: grant_type missing, a parameter repeated, not a form, two auth methods.
    let response = app
        .token_request(&client, &[("scope", "documents:read")])
        .await;
    assert_oauth_error(response, 400, "invalid_request").await;
    let response = app
        .client
        .post(&url)
        .basic_auth(&client.id, Some(&client.key))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("grant_type=client_credentials&grant_type=client_credentials")
        .send()
        .await
        .unwrap();
    assert_oauth_error(response, 400, "invalid_request").await;
    let response = app
        .client
        .post(&url)
        .basic_auth(&client.id, Some(&client.key))
        .json(&json!({"grant_type": "client_credentials"}))
        .send()
        .await
        .unwrap();
    assert_oauth_error(response, 400, "invalid_request").await;
    let response = app
        .client
        .post(&url)
        .basic_auth(&client.id, Some(&client.key))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_secret", client.key.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_oauth_error(response, 400, "invalid_request").await;

    // unsupported_grant_type, once the client is known.
    for grant in ["password", "authorization_code", "refresh_token"] {
        let response = app.token_request(&client, &[("grant_type", grant)]).await;
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
        (client.id.as_str(), other.key.as_str()),
        ("019a5f0e-7c1d-7b2a-9d4e-3f2a1b0c9d8e", client.key.as_str()),
        (client.id.as_str(), ""),
    ] {
        let wrong = TestKey::credentials(id, secret);
        let response = app.token_request(&wrong, &cc).await;
        assert_oauth_error(response, 401, "invalid_client").await;
    }
    let response = app
        .client
        .post(&url)
        .bearer_auth(&client.key)
        .form(&cc)
        .send()
        .await
        .unwrap();
    assert_oauth_error(response, 401, "invalid_client").await;
    // An access token is not a client secret.
    let token = world.access_token(&client, None).await;
    let response = app
        .token_request(&TestKey::credentials(&client.id, &token), &cc)
        .await;
    assert_oauth_error(response, 401, "invalid_client").await;
}

#[tokio::test]
async fn keys_that_would_not_verify_get_no_token() {
    let world = TestApp::spawn().await.with_space("acme").await;
    let cc = [("grant_type", "client_credentials")];

    let revoked = world.create_key(documents_client).await;
    let response = world
        .post_json(&format!("/v1/keys/{}/revoke", revoked.id), json!({}))
        .await;
    assert_eq!(response.status(), 200);
    assert_oauth_error(
        world.app.token_request(&revoked, &cc).await,
        401,
        "invalid_client",
    )
    .await;

    let disabled = world.create_key(|k| customer(k).enabled(false)).await;
    assert_oauth_error(
        world.app.token_request(&disabled, &cc).await,
        401,
        "invalid_client",
    )
    .await;

    let expiring = world.create_key(|k| customer(k).expires_in(1)).await;
    world.app.clock.advance(std::time::Duration::from_secs(2));
    assert_oauth_error(
        world.app.token_request(&expiring, &cc).await,
        401,
        "invalid_client",
    )
    .await;

    let elsewhere = world
        .create_key(|k| customer(k).ip_allowlist(["203.0.113.0/24"]))
        .await;
    assert_oauth_error(
        world.app.token_request(&elsewhere, &cc).await,
        400,
        "unauthorized_client",
    )
    .await;

    let limited = world.create_key(|k| customer(k).ratelimit(1, 3600)).await;
    assert_eq!(world.app.token_request(&limited, &cc).await.status(), 200);
    let response = world.app.token_request(&limited, &cc).await;
    assert!(response.headers().contains_key("retry-after"));
    assert_oauth_error(response, 429, "temporarily_unavailable").await;

    let broke = world.create_key(|k| customer(k).credits(1)).await;
    assert_eq!(world.app.token_request(&broke, &cc).await.status(), 200);
    assert_oauth_error(
        world.app.token_request(&broke, &cc).await,
        400,
        "unauthorized_client",
    )
    .await;
}

#[tokio::test]
async fn a_keyspace_can_switch_the_exchange_off() {
    let world = TestApp::spawn().await.with_space("acme").await;
    let client = world.create_key(documents_client).await;
    let path = format!("/v1/keyspaces/{}", world.space().keyspace_id);
    let switch_off = json!({"token_exchange_enabled": false});
    let response = world
        .app
        .patch_json(&path, world.token(), &switch_off)
        .await;
    assert_eq!(response.status(), 200);
    let response = world
        .app
        .token_request(&client, &[("grant_type", "client_credentials")])
        .await;
    assert_oauth_error(response, 400, "unauthorized_client").await;
}

#[tokio::test]
async fn a_token_never_outlives_its_key() {
    let world = TestApp::spawn().await.with_space("acme").await;
    let client = world.create_key(|k| customer(k).expires_in(120)).await;
    let response = world
        .app
        .token_request(&client, &[("grant_type", "client_credentials")])
        .await;
    let body: Value = response.json().await.unwrap();
    let expires_in = body["expires_in"].as_i64().unwrap();
    // Capped by the key's 120 s (the token TTL is 600 s), less the time since it was made.
    assert!((60..=120).contains(&expires_in), "{expires_in}");
}

/// Each keyspace may name the audience of its tokens (its API); `null` goes back to the default
/// below the tenant's issuer. A bad value is a 422 naming the field, never echoing it.
#[tokio::test]
async fn a_keyspace_sets_the_audience_of_its_tokens() {
    let world = TestApp::spawn().await.with_space("acme").await;
    let path = format!("/v1/keyspaces/{}", world.space().keyspace_id);
    let set = world
        .app
        .patch_json(
            &path,
            world.token(),
            &json!({"token_audience": "https://api.acme.example"}),
        )
        .await;
    let keyspace = crate::helpers::expect_json(set, 200).await;
    assert_eq!(keyspace["token_audience"], "https://api.acme.example");
    let client = world.create_key(documents_client).await;
    let token = world.access_token(&client, None).await;
    assert_eq!(parts(&token).1["aud"], "https://api.acme.example");
    assert_eq!(world.verify(&token, json!({})).await["code"], "VALID");

    let reset = world
        .app
        .patch_json(&path, world.token(), &json!({"token_audience": null}))
        .await;
    assert_eq!(
        crate::helpers::expect_json(reset, 200).await["token_audience"],
        Value::Null
    );
    let token = world.access_token(&client, None).await;
    assert_eq!(parts(&token).1["aud"], world.audience());

    for bad in ["not a uri", "billing", "https://a b"] {
        let response = world
            .app
            .patch_json(&path, world.token(), &json!({"token_audience": bad}))
            .await;
        let problem = crate::helpers::assert_problem(response, 422, "validation_failed").await;
        assert_eq!(problem["errors"][0]["field"], "token_audience", "{problem}");
        assert!(!problem.to_string().contains(bad), "{problem}");
    }
    let created = world
        .app
        .post_json(
            "/v1/keyspaces",
            world.token(),
            &json!({"name": "Billing", "prefix": "billing", "token_audience": "api://billing"}),
        )
        .await;
    let created = crate::helpers::expect_json(created, 201).await;
    assert_eq!(created["token_audience"], "api://billing");
}
