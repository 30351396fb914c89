//! Several real `latchkey` processes on one PostgreSQL database and one Redis: a change made
//! through one node reaches every other node's in-process cache within a second (the test's
//! bound; `bench/` measures the real figure).
//!
//! Runs only in the PostgreSQL pass (`LATCHKEY_TEST_BACKEND=postgres`): a cluster always uses
//! PostgreSQL, so the SQLite pass would repeat the same work.

use std::time::Duration;

use serde_json::json;

use crate::dashboard::support::Visitor;
use crate::helpers::{Api, NEEDS_POSTGRES, PASSWORD, postgres_pass, within};
use crate::nodes::Cluster;

/// The test's bound on propagation between nodes while Redis is up: under the 2 s age at which
/// L1 starts reloading entries by itself, with room for a loaded CI machine (the goal, about a
/// millisecond, is measured in bench/).
const PROPAGATION: Duration = Duration::from_millis(1_800);

/// Verifies `key` on `node` a few times, so it is certainly in that node's L1.
async fn warm(node: &Api, token: &str, key: &str, expected: &str) {
    for _ in 0..3 {
        assert_eq!(node.verify_code(token, key).await, expected);
    }
}

/// Waits until `node` answers `expected` for `key`; panics after [`PROPAGATION`].
async fn propagates(node: &Api, token: &str, key: &str, expected: &str, what: &str) {
    let took = within(PROPAGATION, || async {
        node.verify_code(token, key).await == expected
    })
    .await;
    let last = node.verify_code(token, key).await;
    assert!(
        took.is_some(),
        "{what}: node B still answers {last} after {PROPAGATION:?} (wanted {expected})"
    );
    eprintln!(
        "{what}: node B answered {expected} after {:?}",
        took.unwrap()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoke_rotate_and_disable_through_one_node_reach_the_other_within_a_second() {
    skip_unless!(postgres_pass(), NEEDS_POSTGRES);
    let world = Cluster::start(2, &[]).await.with_space("propagate").await;
    let (a, b) = (&world.app.nodes[0].api, &world.app.nodes[1].api);
    let (space, token) = (world.space(), world.token());

    let revoked = a.create_key(space, |k| k.name("to revoke")).await;
    let rotated = a.create_key(space, |k| k.name("to rotate")).await;
    let disabled = a.create_key(space, |k| k.name("to disable")).await;
    let received_before = b.metric("latchkey_invalidations_received_total").await;

    // Each key is warmed in B's L1 just before its change, so the entry is far younger than the
    // 2 s at which L1 reloads by itself: only the eviction can make B answer within the bound.
    warm(b, token, &revoked.key, "VALID").await;
    a.revoke(token, &revoked.id).await;
    propagates(b, token, &revoked.key, "REVOKED", "revoke").await;

    warm(b, token, &rotated.key, "VALID").await;
    let path = format!("/v1/keys/{}/rotate", rotated.id);
    let body = json!({"grace_period_seconds": 0});
    let new = a
        .expect(reqwest::Method::POST, &path, token, Some(&body), 201)
        .await;
    let new_key = new["key"].as_str().expect("new key").to_owned();
    propagates(b, token, &rotated.key, "EXPIRED", "rotate with zero grace").await;
    assert_eq!(b.verify_code(token, &new_key).await, "VALID");

    warm(b, token, &disabled.key, "VALID").await;
    a.patch_key(token, &disabled.id, json!({"enabled": false}))
        .await;
    propagates(b, token, &disabled.key, "DISABLED", "disable").await;
    warm(b, token, &disabled.key, "DISABLED").await;
    a.patch_key(token, &disabled.id, json!({"enabled": true}))
        .await;
    propagates(b, token, &disabled.key, "VALID", "re-enable").await;

    // Node A answers the same, and B counted the evictions it received.
    assert_eq!(a.verify_code(token, &revoked.key).await, "REVOKED");
    assert_eq!(a.verify_code(token, &rotated.key).await, "EXPIRED");
    assert_eq!(a.verify_code(token, &disabled.key).await, "VALID");
    let received = b.metric("latchkey_invalidations_received_total").await - received_before;
    assert!(received >= 4.0, "B received {received} evictions");
}

/// A key role changed or deleted through node A changes, on node B, the verification of every
/// key holding it (cached there) within the bound of a revocation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_role_changed_through_one_node_changes_its_keys_on_the_other() {
    skip_unless!(postgres_pass(), NEEDS_POSTGRES);
    let world = Cluster::start(2, &[]).await.with_space("roles").await;
    let (a, b) = (&world.app.nodes[0].api, &world.app.nodes[1].api);
    let (space, token) = (world.space(), world.token());
    let body = json!({"name": "reader", "scopes": ["docs:read"]});
    let role = a
        .expect(reqwest::Method::POST, "/v1/roles", token, Some(&body), 201)
        .await;
    let path = format!("/v1/roles/{}", role["id"].as_str().unwrap());
    let holders = [
        a.create_key(space, |k| k.set("roles", json!(["reader"])))
            .await,
        a.create_key(space, |k| k.set("roles", json!(["reader"])))
            .await,
    ];
    let code = |key: &str, scope: &str| {
        let body = json!({"key": key, "scopes": [scope]});
        async move { b.verify_with(token, body).await["code"].clone() }
    };
    let propagates = |scope: &'static str, expected: &'static str, what: &'static str| {
        let holders = &holders;
        async move {
            let took = within(PROPAGATION, || async {
                let mut all = true;
                for key in holders {
                    all &= code(&key.key, scope).await == expected;
                }
                all
            })
            .await;
            assert!(
                took.is_some(),
                "{what}: B did not answer {expected} in time"
            );
            eprintln!(
                "{what}: node B answered {expected} after {:?}",
                took.unwrap()
            );
        }
    };
    for key in &holders {
        for _ in 0..3 {
            assert_eq!(code(&key.key, "docs:read").await, "VALID");
        }
    }
    let change = json!({"scopes": ["docs:write"]});
    a.expect(reqwest::Method::PATCH, &path, token, Some(&change), 200)
        .await;
    propagates("docs:read", "INSUFFICIENT_SCOPE", "role scopes changed").await;
    propagates("docs:write", "VALID", "role scopes changed").await;

    let forced = format!("{path}?force=true");
    let response = a
        .call(reqwest::Method::DELETE, &forced, Some(token), None)
        .await;
    assert_eq!(response.status(), 204);
    propagates("docs:write", "INSUFFICIENT_SCOPE", "role deleted").await;
}

/// An access token revoked through node A is refused by node B as soon as A has answered: both
/// read the one denylist copy in Redis.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_access_token_revoked_through_one_node_is_refused_by_the_other_at_once() {
    skip_unless!(postgres_pass(), NEEDS_POSTGRES);
    // One deployment, one issuer: the nodes share the public URL behind their load balancer.
    let cluster = Cluster::start(2, &[("LATCHKEY_PUBLIC_URL", "http://latchkey.test")]).await;
    let world = cluster.with_space("tokenrevoke").await;
    let (a, b) = (&world.app.nodes[0].api, &world.app.nodes[1].api);
    let (space, token) = (world.space(), world.token());
    let client = a.create_key(space, |k| k.name("client")).await;

    let access_token = &a.access_token(&client, None).await;
    warm(b, token, access_token, "VALID").await;

    let response = a
        .client
        .post(a.url("/oauth/revoke"))
        .basic_auth(&client.id, Some(&client.key))
        .form(&[("token", access_token)])
        .send()
        .await
        .expect("revoke request");
    assert_eq!(response.status(), 200);
    assert_eq!(b.verify_code(token, access_token).await, "REVOKED");
    assert_eq!(a.verify_code(token, access_token).await, "REVOKED");
    assert_eq!(b.verify_code(token, &client.key).await, "VALID");

    // Revoking the key a token came from ends the token on the other node too: B reads the
    // key's state through its cache tiers, which the revocation evicts everywhere.
    let other = a.create_key(space, |k| k.name("other client")).await;
    let other_token = a.access_token(&other, None).await;
    warm(b, token, &other_token, "VALID").await;
    a.revoke(token, &other.id).await;
    propagates(b, token, &other_token, "REVOKED", "key revoke, token").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_failures_through_every_node_count_together() {
    skip_unless!(postgres_pass(), NEEDS_POSTGRES);
    let cluster = Cluster::start(2, &[]).await;
    // Tenants are made with an owner `owner@{tenant}.example.com` whose password is PASSWORD.
    cluster.tenant("acme").await;
    let email = "owner@acme.example.com";
    let a = Visitor::at(&cluster.nodes[0].api.base);
    let b = Visitor::at(&cluster.nodes[1].api.base);

    // One guesser, spread over both nodes by the load balancer: three tries on A, two on B.
    for node in [&a, &b, &a, &b, &a] {
        assert_eq!(node.sign_in(email, "not the password").await.status(), 401);
    }
    // Neither node saw the limit of five by itself; together they did.
    assert_eq!(
        latchkey::auth::sign_in_throttle::ACCOUNT_FAILURES,
        5,
        "the tries above are counted for a limit of 5"
    );
    assert_eq!(b.sign_in(email, PASSWORD).await.status(), 429);
    assert_eq!(a.sign_in(email, PASSWORD).await.status(), 429);

    // Guesses sent all at once through both nodes get no more tries in all.
    cluster.tenant("bravo").await;
    let other = "owner@bravo.example.com";
    let (on_a, on_b) = tokio::join!(
        a.wrong_sign_ins_at_once(other, 6),
        b.wrong_sign_ins_at_once(other, 6)
    );
    let statuses = [on_a, on_b].concat();
    assert_eq!(
        statuses.iter().filter(|s| **s == 401).count(),
        5,
        "{statuses:?}"
    );
    assert_eq!(statuses.iter().filter(|s| **s == 429).count(), 7);
}
