//! `POST /oauth/revoke` (RFC 7009): clients revoke their tokens or their own key; unknown tokens
//! answer 200; revoked tokens stay refused everywhere.

use std::time::Duration;

use latchkey::domain::ids::TenantId;
use latchkey::store::models::RevokedTokenRow;
use latchkey::store::revoked_tokens;
use latchkey::tokens::denylist;
use redis::AsyncCommands;
use serde_json::{Value, json};

use super::{assert_oauth_error, documents_client};
use crate::helpers::{TestApp, TestKey, World, within};
use crate::nodes::RedisServer;

async fn revoke(world: &World, client: &TestKey, form: &[(&str, &str)]) -> reqwest::Response {
    world
        .app
        .client
        .post(world.app.url("/oauth/revoke"))
        .basic_auth(&client.id, Some(&client.key))
        .form(form)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_revoked_token_is_refused_until_it_expires_and_revoking_again_is_fine() {
    let world = TestApp::spawn().await.with_space("acme").await;
    let client = world.create_key(documents_client).await;
    let token = world.access_token(&client, None).await;
    let sibling = world.access_token(&client, None).await;

    let response = revoke(
        &world,
        &client,
        &[("token", &token), ("token_type_hint", "access_token")],
    )
    .await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "no-store");

    let outcome = world.verify(&token, json!({})).await;
    assert_eq!(outcome["code"], "REVOKED", "{outcome}");
    let body: Value = world.introspect(&token).await.json().await.unwrap();
    assert_eq!(body, json!({"active": false}));
    // Reusing the revoked token keeps failing, and revoking it again is not an error.
    assert_eq!(world.verify(&token, json!({})).await["code"], "REVOKED");
    assert_eq!(
        revoke(&world, &client, &[("token", &token)]).await.status(),
        200
    );
    let jti = super::parts(&token).1["jti"].as_str().unwrap().to_owned();
    let events = world
        .get_ok(&format!(
            "/v1/audit-events?action=token.revoke&target={jti}"
        ))
        .await;
    let revocations = events["data"].as_array().unwrap();
    assert!(!revocations.is_empty(), "{events}");
    assert_eq!(revocations[0]["actor"]["type"], "oauth_client");
    assert_eq!(revocations[0]["changes"]["client_id"], client.id);
    // Only that token: its sibling and the key itself still work.
    assert_eq!(world.verify(&sibling, json!({})).await["code"], "VALID");
    assert_eq!(world.verify(&client.key, json!({})).await["code"], "VALID");
}

#[tokio::test]
async fn unknown_and_invalid_tokens_answer_200() {
    let world = TestApp::spawn().await.with_space("acme").await;
    let client = world.create_key(documents_client).await;
    for token in [
        "acme_live_8Hq2vR0dXk3N7bYc1LmQ5sTf9WpZ4gJe6UaOiE2x",
        "eyJhbGciOi.eyJzdWIi.c2ln",
        "whatever",
    ] {
        let response = revoke(
            &world,
            &client,
            &[("token", token), ("token_type_hint", "refresh_token")],
        )
        .await;
        assert_eq!(response.status(), 200, "{token}");
    }
    assert_eq!(world.verify(&client.key, json!({})).await["code"], "VALID");
}

#[tokio::test]
async fn a_client_revokes_its_own_key_and_with_it_every_token() {
    let world = TestApp::spawn().await.with_space("acme").await;
    let client = world.create_key(documents_client).await;
    let token = world.access_token(&client, None).await;
    let response = revoke(&world, &client, &[("token", &client.key)]).await;
    assert_eq!(response.status(), 200);

    let key = world.get_ok(&format!("/v1/keys/{}", client.id)).await;
    assert_eq!(key["status"], "revoked");
    assert_eq!(
        world.verify(&client.key, json!({})).await["code"],
        "REVOKED"
    );
    assert_eq!(world.verify(&token, json!({})).await["code"], "REVOKED");
    let events = world
        .get_ok(&format!(
            "/v1/audit-events?action=key.revoke&target={}",
            client.id
        ))
        .await;
    let event = &events["data"][0];
    assert_eq!(event["actor"]["type"], "oauth_client", "{events}");
    assert_eq!(event["actor"]["id"], client.id);
}

#[tokio::test]
async fn a_client_cannot_revoke_what_is_not_its_own() {
    let world = TestApp::spawn().await.with_space("acme").await;
    let alice = world.create_key(documents_client).await;
    let mallory = world.create_key(documents_client).await;
    let alice_token = world.access_token(&alice, None).await;

    let response = revoke(&world, &mallory, &[("token", &alice_token)]).await;
    assert_oauth_error(response, 400, "unauthorized_client").await;
    let response = revoke(&world, &mallory, &[("token", &alice.key)]).await;
    assert_oauth_error(response, 400, "unauthorized_client").await;
    assert_eq!(world.verify(&alice_token, json!({})).await["code"], "VALID");
    assert_eq!(world.verify(&alice.key, json!({})).await["code"], "VALID");

    // No client authentication, a wrong secret, no token.
    let response = world
        .app
        .client
        .post(world.app.url("/oauth/revoke"))
        .form(&[("token", alice_token.as_str())])
        .send()
        .await
        .unwrap();
    assert_oauth_error(response, 401, "invalid_client").await;
    let wrong = TestKey::credentials(&alice.id, &mallory.key);
    assert_oauth_error(
        revoke(&world, &wrong, &[("token", &alice_token)]).await,
        401,
        "invalid_client",
    )
    .await;
    assert_oauth_error(revoke(&world, &alice, &[]).await, 400, "invalid_request").await;
    assert_eq!(world.verify(&alice_token, json!({})).await["code"], "VALID");
}

/// The score of `member` in the denylist's Redis copy, if it is there.
async fn redis_score(redis: &RedisServer, member: &str) -> Option<f64> {
    let client = redis::Client::open(redis.url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    conn.zscore(denylist::REDIS_KEY, member).await.unwrap()
}

fn revoked_row(tenant: &str, jti: &str, exp: i64) -> RevokedTokenRow {
    RevokedTokenRow {
        jti: jti.to_owned(),
        tenant_id: tenant.to_owned(),
        expires_at: chrono::DateTime::from_timestamp(exp, 0)
            .unwrap()
            .naive_utc(),
    }
}

/// With Redis, every node reads revoked tokens from one copy there. The store keeps the record:
/// a copy lost with Redis, or an entry Redis missed while it was down, comes back from it.
#[tokio::test]
async fn with_redis_revoked_tokens_are_read_from_its_copy_which_the_store_rebuilds() {
    let mut redis = RedisServer::start().await;
    let world = TestApp::spawn_with(&[("REDIS_URL", &redis.url())])
        .await
        .with_space("acme")
        .await;
    let client = world.create_key(documents_client).await;
    let token = world.access_token(&client, None).await;
    let claims = super::parts(&token).1;
    let (jti, exp) = (
        claims["jti"].as_str().unwrap(),
        claims["exp"].as_i64().unwrap(),
    );
    let member = denylist::member(&TenantId::from_trusted(world.tenant.id.clone()), jti);
    let copied = within(Duration::from_secs(5), || async {
        redis_score(&redis, denylist::LOADED).await.is_some()
    })
    .await;
    assert!(
        copied.is_some(),
        "the node never marked its Redis copy complete"
    );

    let response = revoke(&world, &client, &[("token", &token)]).await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        redis_score(&redis, &member).await,
        Some((exp * 1000) as f64)
    );
    assert_eq!(world.verify(&token, json!({})).await["code"], "REVOKED");

    // The answer comes from Redis: with the store's entry gone, the token is still refused.
    let store = world.app.store.clone();
    let (tenant, owned_jti) = (world.tenant.id.clone(), jti.to_owned());
    store
        .run(move |conn| {
            use diesel::prelude::*;
            use latchkey::store::schema::revoked_tokens::dsl;
            diesel::delete(dsl::revoked_tokens.filter(dsl::jti.eq(owned_jti)))
                .execute(conn)
                .map_err(latchkey::store::StoreError::from)
        })
        .await
        .unwrap();
    assert_eq!(world.verify(&token, json!({})).await["code"], "REVOKED");
    let row = revoked_row(&tenant, jti, exp);
    store
        .run(move |conn| revoked_tokens::insert(conn, &row))
        .await
        .map_err(|e: latchkey::store::StoreError| e)
        .unwrap();

    // Redis loses everything: the store answers meanwhile, and the copy is rebuilt from it.
    redis.kill();
    redis.restart().await;
    assert_eq!(world.verify(&token, json!({})).await["code"], "REVOKED");
    let rebuilt = within(Duration::from_secs(5), || async {
        redis_score(&redis, &member).await.is_some()
            && redis_score(&redis, denylist::LOADED).await.is_some()
    })
    .await;
    assert!(rebuilt.is_some(), "the Redis copy was not rebuilt");

    // A revocation while Redis is down is refused from the store, and reaches Redis once it is
    // back.
    let second = world.access_token(&client, None).await;
    let second_jti = super::parts(&second).1["jti"].as_str().unwrap().to_owned();
    let second_member = denylist::member(
        &TenantId::from_trusted(world.tenant.id.clone()),
        &second_jti,
    );
    redis.kill();
    assert_eq!(
        revoke(&world, &client, &[("token", &second)])
            .await
            .status(),
        200
    );
    assert_eq!(world.verify(&second, json!({})).await["code"], "REVOKED");
    redis.restart().await;
    let caught_up = within(Duration::from_secs(5), || async {
        redis_score(&redis, &second_member).await.is_some()
    })
    .await;
    assert!(
        caught_up.is_some(),
        "the revocation made without Redis never reached it"
    );
    assert_eq!(world.verify(&second, json!({})).await["code"], "REVOKED");
    assert_eq!(world.verify(&client.key, json!({})).await["code"], "VALID");
}
