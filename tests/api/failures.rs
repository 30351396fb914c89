//! Redis or the store going away under real `latchkey` processes: verification keeps giving
//! correct answers (Redis down), serves recent answers for a bounded time and then fails closed
//! (store down), and everything converges once the dependency is back.
//!
//! Runs only in the PostgreSQL pass (`LATCHKEY_TEST_BACKEND=postgres`): these tests always use
//! PostgreSQL, so the SQLite pass would repeat the same work.

use std::time::{Duration, Instant};

use diesel::RunQueryDsl;
use diesel::pg::PgConnection;
use diesel::{Connection, sql_query};
use serde_json::json;

use crate::helpers::within;
use crate::helpers::{Backend, TestDatabase};
use crate::nodes::{Api, Cluster, Node, RedisServer, cluster_tests_enabled};

/// L1's hard staleness bound (5 s) plus a margin for a loaded CI machine.
const L1_BOUND: Duration = Duration::from_millis(6_500);

/// Every verification of these keys on every node answers 200 with the expected code.
async fn answers(nodes: &[&Api], token: &str, expected: &[(&str, &str)]) {
    for node in nodes {
        for (key, code) in expected {
            assert_eq!(node.code(token, key).await, *code, "on {}", node.base);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_outage_keeps_answers_correct_and_everything_converges_after_restart() {
    if !cluster_tests_enabled() {
        return;
    }
    let mut cluster = Cluster::start(2, &[]).await;
    let space = cluster.space("outage").await;
    let token = space.token.as_str();
    let (a, b) = (cluster.nodes[0].api.clone(), cluster.nodes[1].api.clone());

    let (_, valid) = a.create_key(&space, json!({"name": "valid"})).await;
    let (revoked_id, revoked) = a.create_key(&space, json!({"name": "revoked"})).await;
    let (later_id, later) = a.create_key(&space, json!({"name": "revoked later"})).await;
    a.revoke(token, &revoked_id).await;
    let before = [
        (valid.as_str(), "VALID"),
        (revoked.as_str(), "REVOKED"),
        (later.as_str(), "VALID"),
    ];
    for _ in 0..2 {
        answers(&[&a, &b], token, &before).await;
    }

    cluster.redis.kill();
    // No 5xx while Redis is gone: `code` asserts every answer is a 200.
    answers(&[&a, &b], token, &before).await;
    for node in [&a, &b] {
        let degraded = within(Duration::from_secs(5), || async {
            let (status, body) = node.readyz().await;
            status == 200
                && body["status"] == "degraded"
                && body["checks"]["redis"] == "unavailable"
                && body["checks"]["store"] == "ok"
        })
        .await;
        assert!(degraded.is_some(), "readyz: {:?}", node.readyz().await);
    }

    // A revocation through A while Redis is down reaches B within the L1 bound.
    a.revoke(token, &later_id).await;
    let took = within(L1_BOUND, || async {
        b.code(token, &later).await == "REVOKED"
    })
    .await;
    assert!(took.is_some(), "B still accepts a key revoked on A");
    eprintln!(
        "revocation without Redis reached B after {:?}",
        took.unwrap()
    );
    // A key made while Redis is down works everywhere.
    let (new_id, new) = a
        .create_key(&space, json!({"name": "made while down"}))
        .await;
    let during = [
        (valid.as_str(), "VALID"),
        (revoked.as_str(), "REVOKED"),
        (later.as_str(), "REVOKED"),
        (new.as_str(), "VALID"),
    ];
    answers(&[&a, &b], token, &during).await;
    let errors = b.metric("latchkey_redis_errors_total").await;
    assert!(errors >= 1.0, "B counted {errors} Redis errors");

    cluster.redis.restart();
    let restarted = Instant::now();
    for node in [&a, &b] {
        let ready = within(Duration::from_secs(8), || async {
            let (status, body) = node.readyz().await;
            status == 200
                && body["status"] == "ready"
                && body["checks"]["redis"] == "ok"
                && body["checks"]["invalidations"] == "subscribed"
        })
        .await;
        assert!(ready.is_some(), "readyz: {:?}", node.readyz().await);
    }
    eprintln!(
        "both nodes ready {:?} after Redis restarted",
        restarted.elapsed()
    );
    answers(&[&a, &b], token, &during).await;

    // Revocations propagate again (within the bound of cluster.rs).
    for _ in 0..3 {
        assert_eq!(b.code(token, &new).await, "VALID");
    }
    a.revoke(token, &new_id).await;
    let took = within(Duration::from_millis(1_800), || async {
        b.code(token, &new).await == "REVOKED"
    })
    .await;
    assert!(took.is_some(), "no propagation after Redis came back");
    eprintln!(
        "revocation after the restart reached B after {:?}",
        took.unwrap()
    );
}

/// An admin connection to the PostgreSQL server (not to the test's database).
fn admin() -> PgConnection {
    let url = std::env::var("LATCHKEY_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    PgConnection::establish(&url).expect("admin connection")
}

fn database_name(db: &TestDatabase) -> String {
    match db {
        TestDatabase::Postgres { name, .. } => name.clone(),
        TestDatabase::Sqlite { .. } => unreachable!("a PostgreSQL database"),
    }
}

/// Makes `db` unreachable: no new connections, existing ones terminated. Undone on drop, so the
/// database can be dropped afterwards.
struct StoreOutage {
    name: String,
}

impl StoreOutage {
    fn begin(db: &TestDatabase) -> Self {
        let name = database_name(db);
        let mut conn = admin();
        sql_query(format!(
            "ALTER DATABASE {name} WITH ALLOW_CONNECTIONS false"
        ))
        .execute(&mut conn)
        .expect("disallow connections");
        sql_query(format!(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"
        ))
        .execute(&mut conn)
        .expect("terminate connections");
        Self { name }
    }
}

impl Drop for StoreOutage {
    fn drop(&mut self) {
        let mut conn = admin();
        let _ = sql_query(format!(
            "ALTER DATABASE {} WITH ALLOW_CONNECTIONS true",
            self.name
        ))
        .execute(&mut conn);
    }
}

/// How long verify takes, and what it answers: (status, problem code or verify code).
async fn timed_verify(node: &Api, token: &str, key: &str) -> (Duration, u16, String, String) {
    let started = Instant::now();
    let (status, content_type, body) = node
        .send(
            reqwest::Method::POST,
            "/v1/keys/verify",
            Some(token),
            Some(&json!({"key": key})),
        )
        .await;
    let code = body["code"].as_str().unwrap_or_default().to_owned();
    (started.elapsed(), status, content_type, code)
}

/// With `LATCHKEY_STALE_SECONDS=3`, a key verified just before the store went away answers
/// VALID for a while and then 503 `store_unavailable`; a key never seen fails closed at once.
async fn store_outage(redis: Option<&RedisServer>) {
    let db = TestDatabase::create(Backend::Postgres);
    let node = Node::start(
        &db.url(),
        redis.map(RedisServer::url).as_deref(),
        &[
            ("LATCHKEY_STALE_SECONDS", "3"),
            ("LATCHKEY_DB_POOL_SIZE", "2"),
        ],
    )
    .await;
    if redis.is_some() {
        node.wait_ready(Duration::from_secs(10)).await;
    }
    let store = crate::nodes::store_of(&db);
    let space = crate::nodes::space(&store, &crate::nodes::hasher(), &node, "storedown").await;
    drop(store);
    let token = space.token.as_str();
    let received = "latchkey_invalidations_received_total";
    let received_before = node.metric(received).await;
    let (seen_id, seen) = node.create_key(&space, json!({"name": "seen"})).await;
    let (_, unseen) = node
        .create_key(&space, json!({"name": "never verified"}))
        .await;
    // With Redis, a new key's digest is evicted again 500 ms after the create (closing a
    // load-vs-change race); that eviction also drops the stale copy, so verify only after it:
    // after the node has heard both evictions of both keys.
    if redis.is_some() {
        let heard = within(Duration::from_secs(10), || async {
            node.metric(received).await >= received_before + 4.0
        })
        .await;
        assert!(heard.is_some(), "the node never heard the second evictions");
    }
    assert_eq!(node.code(token, &seen).await, "VALID");
    let access_token = node.mint_token(&seen_id, &seen).await;
    assert_eq!(node.code(token, &access_token).await, "VALID");

    let outage = StoreOutage::begin(&db);
    let started = Instant::now();
    let (took, status, _, code) = timed_verify(&node, token, &seen).await;
    assert_eq!((status, code.as_str()), (200, "VALID"), "served from cache");
    eprintln!("cached key right after the outage: {status} {code} in {took:?}");
    // An access token of that key: its key is read through the cache like the key itself. Its
    // `jti` must still be checked against the denylist, which without Redis only the store holds,
    // so then it fails closed.
    let (_, status, _, code) = timed_verify(&node, token, &access_token).await;
    let expected = if redis.is_some() {
        (200, "VALID")
    } else {
        (503, "store_unavailable")
    };
    assert_eq!(
        (status, code.as_str()),
        expected,
        "access token during the outage"
    );

    let (took, status, content_type, code) = timed_verify(&node, token, &unseen).await;
    eprintln!("unknown key during the outage: {status} {code} in {took:?}");
    assert_eq!(status, 503);
    assert_eq!(content_type, "application/problem+json");
    assert_eq!(code, "store_unavailable");
    assert!(
        took < Duration::from_secs(2),
        "an unknown key fails closed at once, not after {took:?}"
    );

    // The seen key is served for a while, at most until the stale bound (3 s) or L1's hard bound
    // (5 s) passed, then refused.
    let mut last_valid = Duration::ZERO;
    let refused = loop {
        let (took, status, content_type, code) = timed_verify(&node, token, &seen).await;
        match status {
            200 => {
                assert_eq!(code, "VALID");
                last_valid = started.elapsed();
            }
            503 => {
                assert_eq!(content_type, "application/problem+json");
                assert_eq!(code, "store_unavailable");
                assert!(took < Duration::from_secs(2), "503 took {took:?}");
                break started.elapsed();
            }
            other => panic!("verify answered {other} {code} during the store outage"),
        }
        assert!(
            started.elapsed() < Duration::from_secs(9),
            "still VALID {:?} into the outage with LATCHKEY_STALE_SECONDS=3",
            started.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    eprintln!("seen key: last VALID at {last_valid:?}, 503 from {refused:?}");
    // The log names the real cause, not a confusion between backends.
    let log = node.log_text();
    assert!(log.contains("not currently accepting connections"), "{log}");
    assert!(!log.contains("Invalid connection url"), "{log}");
    assert!(
        last_valid >= Duration::from_millis(1_500),
        "a key verified just before the outage is served within the stale bound"
    );

    // The store comes back: verification recovers by itself.
    drop(outage);
    let recovered = within(Duration::from_secs(10), || async {
        timed_verify(&node, token, &seen).await.1 == 200
    })
    .await;
    assert!(
        recovered.is_some(),
        "verify did not recover after the store came back"
    );
    assert_eq!(node.code(token, &unseen).await, "VALID");
    drop(node);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_outage_serves_recent_answers_for_the_stale_bound_then_fails_closed() {
    if !cluster_tests_enabled() {
        return;
    }
    store_outage(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_outage_with_redis_is_bounded_by_the_stale_bound_too() {
    if !cluster_tests_enabled() {
        return;
    }
    let redis = RedisServer::start();
    store_outage(Some(&redis)).await;
}
