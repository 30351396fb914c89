//! Discovery (RFC 8414 metadata, RFC 7517 JWKS) and signing-key rotation.

use std::process::Command;
use std::time::Duration;

use diesel::prelude::*;
use serde_json::{Value, json};

use super::{documents_client, parts};
use crate::helpers::{TEST_SECRET_KEY, TestApp};

/// Longer than a node trusts its cached key set (the app's clock is moved by it, not waited).
const KEYRING_REFRESH: Duration = Duration::from_millis(5_300);

#[tokio::test]
async fn each_tenant_is_an_issuer_with_metadata_at_both_well_known_addresses() {
    let world = TestApp::spawn_with(&[("LATCHKEY_PUBLIC_URL", "https://auth.acme.example/")])
        .await
        .with_space("acme")
        .await;
    let issuer = format!("https://auth.acme.example/oauth/{}", world.tenant.id);
    // RFC 8414 §3.1 path insertion, and below the issuer where many libraries look.
    let inserted = format!(
        "/.well-known/oauth-authorization-server/oauth/{}",
        world.tenant.id
    );
    let below = format!(
        "{}/.well-known/oauth-authorization-server",
        world.issuer_path()
    );
    for path in [inserted, below] {
        let response = world.app.get(&path).await;
        assert_eq!(response.status(), 200, "{path}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["issuer"], issuer, "{path}");
        assert_eq!(body["token_endpoint"], format!("{issuer}/token"));
        assert_eq!(
            body["introspection_endpoint"],
            format!("{issuer}/introspect")
        );
        assert_eq!(body["revocation_endpoint"], format!("{issuer}/revoke"));
        assert_eq!(body["jwks_uri"], format!("{issuer}/jwks.json"));
        assert_eq!(body["grant_types_supported"], json!(["client_credentials"]));
        // Every endpoint's methods are names in IANA's "OAuth Token Endpoint Authentication
        // Methods" registry, which clients match on (`bearer` is none: it was listed before).
        for endpoint in ["token", "revocation", "introspection"] {
            assert_eq!(
                body[format!("{endpoint}_endpoint_auth_methods_supported")],
                json!(["client_secret_basic", "client_secret_post"]),
                "{endpoint}"
            );
        }
        assert_eq!(
            body["access_token_signing_alg_values_supported"],
            json!(["EdDSA"])
        );
    }

    let client = world.create_key(documents_client).await;
    let claims = parts(&world.access_token(&client, None).await).1;
    assert_eq!(
        claims["iss"], issuer,
        "the tokens' issuer is the metadata's"
    );
    assert_eq!(
        claims["aud"],
        format!("{issuer}/keyspaces/{}", world.space().keyspace_id)
    );
}

/// Without LATCHKEY_PUBLIC_URL the issuer is below the address the server listens on, with the
/// port it actually bound when asked for port 0 (as every test app is), not `:0`.
#[tokio::test]
async fn the_default_issuer_names_the_bound_port() {
    let world = TestApp::spawn().await.with_space("acme").await;
    let body = world.metadata().await;
    let issuer = world.issuer();
    assert!(!world.app.address.ends_with(":0"), "{issuer}");
    assert_eq!(body["issuer"], issuer);
    assert_eq!(body["token_endpoint"], format!("{issuer}/token"));
    let client = world.create_key(documents_client).await;
    let claims = parts(&world.access_token(&client, None).await).1;
    assert_eq!(claims["iss"], issuer);
}

/// A deployment-wide metadata document would name an issuer no token carries, and an issuer of
/// no tenant gets no signing key made for it.
#[tokio::test]
async fn there_is_no_deployment_wide_issuer_and_no_issuer_of_nobody() {
    let world = TestApp::spawn().await.with_space("acme").await;
    let nobody = "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b";
    for path in [
        "/.well-known/oauth-authorization-server".to_owned(),
        "/.well-known/jwks.json".to_owned(),
        format!("/.well-known/oauth-authorization-server/oauth/{nobody}"),
        format!("/oauth/{nobody}/jwks.json"),
        "/oauth/not-a-tenant/jwks.json".to_owned(),
        format!("/oauth/{}/jwks.json", world.tenant.id.to_uppercase()),
    ] {
        let response = world.app.get(&path).await;
        assert_eq!(response.status(), 404, "{path}");
    }
    let store = world.app.store.clone();
    let rows: i64 = tokio::task::spawn_blocking(move || {
        use latchkey::store::schema::signing_keys::dsl::*;
        let mut conn = store.conn().unwrap();
        signing_keys.count().get_result(&mut conn).unwrap()
    })
    .await
    .unwrap();
    assert_eq!(rows, 0, "no signing key was made for an issuer of nobody");
}

#[tokio::test]
async fn the_jwks_publishes_public_keys_only_and_may_be_cached() {
    let world = TestApp::spawn().await.with_space("acme").await;
    let response = world
        .app
        .get(&format!("{}/jwks.json", world.issuer_path()))
        .await;
    assert_eq!(response.status(), 200);
    let cache = response.headers()["cache-control"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(cache.contains("max-age="), "{cache}");
    let body: Value = response.json().await.unwrap();
    let keys = body["keys"].as_array().unwrap();
    assert_eq!(
        keys.len(),
        1,
        "one key, generated when first needed: {body}"
    );
    let key = &keys[0];
    assert_eq!(key["kty"], "OKP");
    assert_eq!(key["crv"], "Ed25519");
    assert_eq!(key["alg"], "EdDSA");
    assert_eq!(key["use"], "sig");
    assert!(key["kid"].as_str().is_some_and(|k| !k.is_empty()));
    assert!(key.get("d").is_none(), "no private part");

    // Stored encrypted: the private key is not in the row in clear (it is 32 bytes of a
    // ciphertext that also carries a nonce and a tag).
    let store = world.app.store.clone();
    let sealed: Vec<u8> = tokio::task::spawn_blocking(move || {
        use latchkey::store::schema::signing_keys::dsl::*;
        let mut conn = store.conn().unwrap();
        signing_keys
            .select(private_key_encrypted)
            .first(&mut conn)
            .unwrap()
    })
    .await
    .unwrap();
    assert_eq!(sealed.len(), 12 + 32 + 16);

    // Tokens are signed with the published key.
    let client = world.create_key(documents_client).await;
    let token = world.access_token(&client, None).await;
    assert_eq!(parts(&token).0["kid"], key["kid"]);
}

#[tokio::test]
async fn rotation_keeps_old_tokens_verifying_until_the_old_key_is_removed() {
    let world = TestApp::spawn().await.with_space("acme").await;
    let client = world.create_key(documents_client).await;
    let old_token = world.access_token(&client, None).await;
    let old_kid = parts(&old_token).0["kid"].as_str().unwrap().to_owned();

    let out = Command::new(env!("CARGO_BIN_EXE_latchkey"))
        .args(["signing-keys", "rotate", "--json"])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATABASE_URL", world.app.db.url())
        .env("LATCHKEY_SECRET_KEY", TEST_SECRET_KEY)
        .env("RUST_LOG", "warn")
        .output()
        .expect("run latchkey");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(out["rotated"].as_array().unwrap().len(), 1, "{out}");
    let rotated = &out["rotated"][0];
    assert_eq!(rotated["tenant_id"], world.tenant.id);
    let new_kid = rotated["kid"].as_str().unwrap().to_owned();
    assert_ne!(new_kid, old_kid);
    assert_eq!(rotated["retired"], 1);

    world.app.clock.advance(KEYRING_REFRESH);
    let new_token = world.access_token(&client, None).await;
    assert_eq!(parts(&new_token).0["kid"], new_kid.as_str());
    let kids = world.published_kids().await;
    assert!(
        kids.contains(&old_kid) && kids.contains(&new_kid),
        "{kids:?}"
    );
    assert_eq!(world.verify(&old_token, json!({})).await["code"], "VALID");
    assert_eq!(world.verify(&new_token, json!({})).await["code"], "VALID");

    // Fast-forward to the end of the old key's retirement (every token it signed has expired).
    let store = world.app.store.clone();
    let retired_kid = old_kid.clone();
    tokio::task::spawn_blocking(move || {
        use latchkey::store::schema::signing_keys::dsl::*;
        let mut conn = store.conn().unwrap();
        let past = latchkey::store::now() - chrono::TimeDelta::seconds(1);
        diesel::update(signing_keys.filter(kid.eq(retired_kid)))
            .set(remove_after.eq(Some(past)))
            .execute(&mut conn)
            .unwrap();
    })
    .await
    .unwrap();
    world.app.clock.advance(KEYRING_REFRESH);
    let kids = world.published_kids().await;
    assert_eq!(kids, vec![new_kid.clone()]);
    assert_eq!(
        world.verify(&old_token, json!({})).await["code"],
        "NOT_FOUND"
    );
    assert_eq!(world.verify(&new_token, json!({})).await["code"], "VALID");
}
