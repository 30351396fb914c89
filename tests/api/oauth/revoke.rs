//! `POST /oauth/revoke` (RFC 7009): clients revoke their tokens or their own key; unknown tokens
//! answer 200; revoked tokens stay refused everywhere.

use serde_json::{Value, json};

use super::{Client, World, assert_oauth_error};

async fn revoke(world: &World, client: &Client, form: &[(&str, &str)]) -> reqwest::Response {
    world
        .app
        .client
        .post(world.app.url("/oauth/revoke"))
        .basic_auth(&client.id, Some(&client.secret))
        .form(form)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_revoked_token_is_refused_until_it_expires_and_revoking_again_is_fine() {
    let world = World::new().await;
    let client = world.default_client().await;
    let token = world.token(&client, None).await;
    let sibling = world.token(&client, None).await;

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
        .get_json(&format!(
            "/v1/audit-events?action=token.revoke&target={jti}"
        ))
        .await;
    let revocations = events["data"].as_array().unwrap();
    assert!(!revocations.is_empty(), "{events}");
    assert_eq!(revocations[0]["actor"]["type"], "oauth_client");
    assert_eq!(revocations[0]["changes"]["client_id"], client.id);
    // Only that token: its sibling and the key itself still work.
    assert_eq!(world.verify(&sibling, json!({})).await["code"], "VALID");
    assert_eq!(
        world.verify(&client.secret, json!({})).await["code"],
        "VALID"
    );
}

#[tokio::test]
async fn unknown_and_invalid_tokens_answer_200() {
    let world = World::new().await;
    let client = world.default_client().await;
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
    assert_eq!(
        world.verify(&client.secret, json!({})).await["code"],
        "VALID"
    );
}

#[tokio::test]
async fn a_client_revokes_its_own_key_and_with_it_every_token() {
    let world = World::new().await;
    let client = world.default_client().await;
    let token = world.token(&client, None).await;
    let response = revoke(&world, &client, &[("token", &client.secret)]).await;
    assert_eq!(response.status(), 200);

    let key = world.get_json(&format!("/v1/keys/{}", client.id)).await;
    assert_eq!(key["status"], "revoked");
    assert_eq!(
        world.verify(&client.secret, json!({})).await["code"],
        "REVOKED"
    );
    assert_eq!(world.verify(&token, json!({})).await["code"], "REVOKED");
    let events = world
        .get_json(&format!(
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
    let world = World::new().await;
    let alice = world.default_client().await;
    let mallory = world.default_client().await;
    let alice_token = world.token(&alice, None).await;

    let response = revoke(&world, &mallory, &[("token", &alice_token)]).await;
    assert_oauth_error(response, 400, "unauthorized_client").await;
    let response = revoke(&world, &mallory, &[("token", &alice.secret)]).await;
    assert_oauth_error(response, 400, "unauthorized_client").await;
    assert_eq!(world.verify(&alice_token, json!({})).await["code"], "VALID");
    assert_eq!(
        world.verify(&alice.secret, json!({})).await["code"],
        "VALID"
    );

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
    let wrong = Client {
        id: alice.id.clone(),
        secret: mallory.secret.clone(),
    };
    assert_oauth_error(
        revoke(&world, &wrong, &[("token", &alice_token)]).await,
        401,
        "invalid_client",
    )
    .await;
    assert_oauth_error(revoke(&world, &alice, &[]).await, 400, "invalid_request").await;
    assert_eq!(world.verify(&alice_token, json!({})).await["code"], "VALID");
}
