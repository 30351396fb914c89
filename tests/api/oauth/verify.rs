//! Access tokens at `/v1/keys/verify`: the same codes and fields as keys; the key's status, the
//! `jti` denylist and the signature decide; forged tokens are `NOT_FOUND`.

use std::time::Duration;

use ed25519_dalek::pkcs8::EncodePrivateKey;
use jsonwebtoken::{EncodingKey, Header};
use serde_json::{Value, json};

use super::{customer, documents_client, encode_part, parts};
use crate::helpers::TestApp;

#[tokio::test]
async fn a_token_verifies_like_its_key_narrowed_to_its_scopes() {
    let world = TestApp::spawn().await.with_space("acme").await;
    let client = world
        .create_key(|k| {
            documents_client(k)
                .name("Acme prod")
                .meta(json!({"plan": "pro"}))
        })
        .await;
    let token = world.access_token(&client, Some("documents:read")).await;
    let outcome = world
        .verify(&token, json!({"scopes": ["documents:read"]}))
        .await;
    assert_eq!(outcome["valid"], true, "{outcome}");
    assert_eq!(outcome["code"], "VALID");
    assert_eq!(outcome["key_id"], client.id);
    assert_eq!(outcome["keyspace_id"], world.space().keyspace_id);
    assert_eq!(outcome["owner_id"], "customer_42");
    assert_eq!(outcome["name"], "Acme prod");
    assert_eq!(outcome["meta"], json!({"plan": "pro"}));
    assert_eq!(outcome["scopes"], json!(["documents:read"]));
    let exp = parts(&token).1["exp"].as_i64().unwrap();
    let expires_at = chrono::DateTime::parse_from_rfc3339(outcome["expires_at"].as_str().unwrap())
        .unwrap()
        .timestamp();
    assert_eq!(expires_at, exp, "a token's answer expires with the token");

    // The key could write, but this token cannot.
    let outcome = world
        .verify(&token, json!({"scopes": ["documents:write"]}))
        .await;
    assert_eq!(outcome["code"], "INSUFFICIENT_SCOPE");
    // The keyspace filter applies as for keys.
    let outcome = world
        .verify(
            &token,
            json!({"keyspace_id": "019a5f0e-7c1d-7b2a-9d4e-3f2a1b0c9d8e"}),
        )
        .await;
    assert_eq!(outcome["code"], "NOT_FOUND");
}

#[tokio::test]
async fn revoking_or_disabling_the_key_ends_its_tokens() {
    let world = TestApp::spawn().await.with_space("acme").await;
    let disabled = world.create_key(documents_client).await;
    let token = world.access_token(&disabled, None).await;
    let disable = json!({"enabled": false});
    world
        .app
        .patch_key(world.token(), &disabled.id, disable)
        .await;
    assert_eq!(world.verify(&token, json!({})).await["code"], "DISABLED");

    let revoked = world.create_key(documents_client).await;
    let token = world.access_token(&revoked, None).await;
    assert_eq!(world.verify(&token, json!({})).await["code"], "VALID");
    let response = world
        .post_json(
            &format!("/v1/keys/{}/revoke", revoked.id),
            json!({"reason": "test"}),
        )
        .await;
    assert_eq!(response.status(), 200);
    let outcome = world.verify(&token, json!({})).await;
    assert_eq!(outcome["code"], "REVOKED");
    assert_eq!(outcome["valid"], false);
}

#[tokio::test]
async fn tokens_expire() {
    let world = TestApp::spawn_with(&[("LATCHKEY_TOKEN_TTL_SECONDS", "60")])
        .await
        .with_space("acme")
        .await;
    let client = world.create_key(documents_client).await;
    let token = world.access_token(&client, None).await;
    assert_eq!(world.verify(&token, json!({})).await["code"], "VALID");
    // The app's clock passes the token's end; nothing waits for it.
    world.app.clock.advance(Duration::from_secs(61));
    let outcome = world.verify(&token, json!({})).await;
    assert_eq!(outcome["code"], "EXPIRED", "{outcome}");
    let introspected: Value = world.introspect(&token).await.json().await.unwrap();
    assert_eq!(introspected, json!({"active": false}));
}

#[tokio::test]
async fn forged_tokens_are_refused() {
    let world = TestApp::spawn().await.with_space("acme").await;
    let client = world.create_key(documents_client).await;
    let token = world.access_token(&client, Some("documents:read")).await;
    let (header, claims) = parts(&token);
    let signature = token.rsplit('.').next().unwrap();

    // alg: none, with and without a signature.
    let mut none = header.clone();
    none["alg"] = json!("none");
    let unsigned = format!("{}.{}.", encode_part(&none), encode_part(&claims));
    let none_signed = format!(
        "{}.{}.{signature}",
        encode_part(&none),
        encode_part(&claims)
    );

    // More scope in the payload, original signature.
    let mut greedy = claims.clone();
    greedy["scope"] = json!("documents:read documents:write");
    let tampered = format!(
        "{}.{}.{signature}",
        encode_part(&header),
        encode_part(&greedy)
    );

    // Signed by a key that is not ours, under our kid.
    let outsider = ed25519_dalek::SigningKey::from_bytes(&[9u8; 32]);
    let der = outsider.to_pkcs8_der().unwrap();
    let mut forged_header = Header::new(jsonwebtoken::Algorithm::EdDSA);
    forged_header.typ = Some("at+jwt".into());
    forged_header.kid = header["kid"].as_str().map(str::to_owned);
    let wrong_key = jsonwebtoken::encode(
        &forged_header,
        &claims,
        &EncodingKey::from_ed_der(der.as_bytes()),
    )
    .unwrap();

    // HS256 keyed with the published public key (algorithm confusion).
    let jwks = world.jwks().await;
    let public_x = jwks["keys"][0]["x"].as_str().unwrap().to_owned();
    let mut hs_header = Header::new(jsonwebtoken::Algorithm::HS256);
    hs_header.typ = Some("at+jwt".into());
    hs_header.kid = forged_header.kid.clone();
    let confused = jsonwebtoken::encode(
        &hs_header,
        &claims,
        &EncodingKey::from_secret(public_x.as_bytes()),
    )
    .unwrap();

    // Our key's own signature, but a plain JWT rather than an access token (typ).
    let mut untyped = header.clone();
    untyped["typ"] = json!("JWT");
    let retyped = format!(
        "{}.{}.{signature}",
        encode_part(&untyped),
        encode_part(&claims)
    );

    for (what, forged) in [
        ("alg none", unsigned),
        ("alg none with a signature", none_signed),
        ("tampered payload", tampered),
        ("wrong key", wrong_key),
        ("HS256 with the public key", confused),
        ("typ changed", retyped),
        ("garbage", "eyJhbGciOi.eyJzdWIi.c2ln".to_owned()),
    ] {
        let outcome = world.verify(&forged, json!({})).await;
        assert_eq!(outcome["code"], "NOT_FOUND", "{what}: {outcome}");
        assert!(outcome.get("key_id").is_none(), "{what}");
        let introspected: Value = world.introspect(&forged).await.json().await.unwrap();
        assert_eq!(introspected, json!({"active": false}), "{what}");
    }
    // The genuine token still works.
    assert_eq!(world.verify(&token, json!({})).await["code"], "VALID");
}

#[tokio::test]
async fn another_tenants_token_is_not_found() {
    let world = TestApp::spawn().await.with_space("acme").await;
    let client = world.create_key(documents_client).await;
    let token = world.access_token(&client, None).await;
    let other = world.app.tenant("globex").await;
    let outcome = world.app.verify(&other.root_key, &token).await;
    assert_eq!(outcome["code"], "NOT_FOUND");
    assert!(outcome.get("key_id").is_none());
}

#[tokio::test]
async fn verifying_a_token_counts_against_the_keys_limits() {
    let world = TestApp::spawn().await.with_space("acme").await;
    let client = world.create_key(|k| customer(k).credits(2)).await;
    let token = world.access_token(&client, None).await; // the exchange costs one credit
    let outcome = world.verify(&token, json!({})).await;
    assert_eq!(outcome["code"], "VALID");
    assert_eq!(outcome["credits_remaining"], 0);
    assert_eq!(
        world.verify(&token, json!({})).await["code"],
        "USAGE_EXCEEDED"
    );
}
