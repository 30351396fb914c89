//! Behind a load balancer: the client's address comes from `X-Forwarded-For` when, and only when,
//! the connection comes from a peer in `LATCHKEY_TRUSTED_PROXIES`. The test client connects
//! from 127.0.0.1, so trusting 127.0.0.1 makes it the balancer.

use reqwest::Method;
use serde_json::json;

use crate::dashboard::support::Visitor;
use crate::helpers::{PASSWORD, TestApp, s};
use crate::oauth::{assert_oauth_error, customer};

const BALANCER: (&str, &str) = ("LATCHKEY_TRUSTED_PROXIES", "127.0.0.1");

/// Creates a keyspace with `forwarded_for` sent, and returns the audit event's `ip`.
async fn audited_ip(app: &TestApp, forwarded_for: &str) -> String {
    let tenant = app.tenant("acme").await;
    let response = app
        .client
        .request(Method::POST, app.url("/v1/keyspaces"))
        .bearer_auth(&tenant.root_key)
        .header("x-forwarded-for", forwarded_for)
        .json(&json!({"name": "live", "prefix": "acme_live"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let events = app.audit(&tenant.root_key, "action=keyspace.create").await;
    assert_eq!(events.len(), 1, "{events:?}");
    s(&events[0], "ip")
}

#[tokio::test]
async fn audit_records_the_forwarded_client_only_from_a_trusted_proxy() {
    let direct = TestApp::spawn().await;
    assert_eq!(audited_ip(&direct, "203.0.113.7").await, "127.0.0.1");

    let behind = TestApp::spawn_with(&[BALANCER]).await;
    // What the client wrote itself is left of what the balancer appended.
    assert_eq!(
        audited_ip(&behind, "198.51.100.1, 203.0.113.7").await,
        "203.0.113.7"
    );
}

#[tokio::test]
async fn sign_in_throttle_counts_each_client_behind_the_balancer() {
    let app = TestApp::spawn_with(&[BALANCER]).await;
    app.tenant("acme").await;
    let guesser = Visitor::forwarded_for(&app, "198.51.100.1");
    for i in 0..latchkey::auth::sign_in_throttle::ADDRESS_FAILURES {
        let email = format!("guess{i}@example.com");
        assert_eq!(
            guesser.sign_in(&email, "not the password").await.status(),
            401
        );
    }
    assert_eq!(
        guesser
            .sign_in("owner@acme.example.com", PASSWORD)
            .await
            .status(),
        429
    );
    // Another client through the same balancer is not locked out by the guesser.
    let owner = Visitor::forwarded_for(&app, "203.0.113.7");
    assert_eq!(
        owner
            .sign_in("owner@acme.example.com", PASSWORD)
            .await
            .status(),
        303
    );
}

#[tokio::test]
async fn token_endpoint_checks_the_allowlist_against_the_forwarded_client() {
    let world = TestApp::spawn_with(&[BALANCER])
        .await
        .with_space("acme")
        .await;
    let client = world
        .create_key(|k| customer(k).ip_allowlist(["203.0.113.0/24"]))
        .await;
    let token_from = |address: &'static str| {
        world
            .app
            .client
            .post(world.app.url("/oauth/token"))
            .basic_auth(&client.id, Some(&client.key))
            .header("x-forwarded-for", address)
            .form(&[("grant_type", "client_credentials")])
            .send()
    };
    assert_eq!(token_from("203.0.113.7").await.unwrap().status(), 200);
    assert_oauth_error(
        token_from("198.51.100.1").await.unwrap(),
        400,
        "unauthorized_client",
    )
    .await;
}
