//! The shared L2 tier on a real Redis, driven through the library: a record read from the store
//! before a change never lands in L2 after that change's invalidation, however late its write
//! arrives (as it does when Redis hangs and then answers everything queued meanwhile).

use std::sync::Arc;
use std::time::Duration;

use latchkey::cache::{Cached, Caches, Lookup, LookupFor};
use latchkey::domain::ids::TenantId;
use latchkey::domain::key::KeyDigest;
use latchkey::metrics::Metrics;
use latchkey::redis::RedisTier;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Record(u32);

impl Cached for Record {
    const NAMESPACE: &'static str = "l2-test";
    const KIND: latchkey::metrics::CacheKind = latchkey::metrics::CacheKind::Key;
}

/// One node's tiers over the shared Redis (never subscribed: L1 is bypassed, L2 is used).
fn node(url: &str) -> Caches<Record, Record> {
    let metrics = Arc::new(Metrics::new());
    let redis = RedisTier::new(url, Duration::from_secs(2), metrics.clone()).expect("redis url");
    Caches::new(Some(redis), metrics, Duration::from_secs(60))
}

/// The tenant whose record the test reads and changes.
fn owner() -> TenantId {
    TenantId::from_trusted("tenant-l2".into())
}

async fn lookup(node: &Caches<Record, Record>, digest: KeyDigest, version: u32) -> Record {
    let load = move || async move { Ok(Some((Record(version), digest))) };
    let found = node
        .keys
        .get(LookupFor::Tenant(owner()), digest, load)
        .await;
    match found.expect("lookup") {
        Lookup::Found(record) => (*record).clone(),
        other => panic!("expected a record, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_from_before_a_change_cannot_write_l2_after_its_invalidation() {
    let Ok(url) = std::env::var("LATCHKEY_TEST_REDIS_URL") else {
        skip!("needs Redis: set LATCHKEY_TEST_REDIS_URL");
    };
    let (a, b, c) = (node(&url), node(&url), node(&url));
    let digest = KeyDigest::from_slice(uuid::Uuid::now_v7().as_bytes().repeat(2).as_slice())
        .expect("32 bytes");

    // B misses L2 and reads the store: version 1, and its read is slow.
    let (release, released) = watch::channel(false);
    let slow = {
        let keys = b.keys.clone();
        tokio::spawn(async move {
            let load = move || async move {
                let mut released = released;
                let _ = released.wait_for(|done| *done).await;
                Ok(Some((Record(1), digest)))
            };
            keys.get(LookupFor::Tenant(owner()), digest, load)
                .await
                .map(|_| ())
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    // Meanwhile the record changes and A invalidates it everywhere.
    a.invalidate_keys(&[(owner(), digest)]).await;
    // B's read finishes after the invalidation and writes what it read.
    release.send(true).unwrap();
    slow.await.unwrap().unwrap();

    assert_eq!(
        lookup(&c, digest, 2).await,
        Record(2),
        "another node read the record from before the change out of L2"
    );
}

/// The Redis keys that name `digest_hex`, with what each holds.
async fn l2_entries(redis: &crate::nodes::RedisServer, digest_hex: &str) -> Vec<(String, String)> {
    let client = redis::Client::open(redis.url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let mut names: Vec<String> = redis::cmd("KEYS")
        .arg(format!("*{digest_hex}*"))
        .query_async(&mut conn)
        .await
        .unwrap();
    names.sort();
    let mut entries = Vec::new();
    for name in names {
        let value: Vec<u8> = redis::cmd("GET")
            .arg(&name)
            .query_async(&mut conn)
            .await
            .unwrap();
        entries.push((name, String::from_utf8_lossy(&value).into_owned()));
    }
    entries
}

/// A verification looks in the calling tenant only, L2 included: another tenant's key leaves
/// in Redis exactly what a key that exists nowhere leaves (a short "not found" under the
/// caller's tenant), never its owner's record. A change to the key still tombstones the
/// owner's entry.
#[tokio::test]
async fn another_tenants_key_leaves_in_l2_what_a_key_that_exists_nowhere_leaves() {
    let redis = crate::nodes::RedisServer::start().await;
    let app = crate::helpers::TestApp::spawn_with(&[("REDIS_URL", &redis.url())]).await;
    let (acme, bravo) = (app.space("acme").await, app.space("bravo").await);
    let hex = |raw: &str| app.hasher.digests_of(raw)[0].to_hex();
    let l2_name = |tenant: &str, raw: &str| format!("latchkey:key:{tenant}:{}", hex(raw));

    // Once L2 is in use (the node settles on Redis at start), acme's own lookups fill it.
    let warm = app.create_key(&acme, |k| k).await;
    let filled = crate::helpers::within(Duration::from_secs(10), || async {
        assert_eq!(app.verify_code(acme.token(), &warm.key).await, "VALID");
        !l2_entries(&redis, &hex(&warm.key)).await.is_empty()
    })
    .await;
    assert!(filled.is_some(), "acme's lookup never reached L2");
    let filled = l2_entries(&redis, &hex(&warm.key)).await;
    assert_eq!(filled.len(), 1, "{filled:?}");
    assert_eq!(filled[0].0, l2_name(&acme.tenant.id, &warm.key));

    let key = app.create_key(&acme, |k| k).await;
    let nowhere = app
        .hasher
        .generate(&latchkey::domain::key::KeyPrefix::parse("acme_live").unwrap());
    let nowhere = nowhere.key.expose_secret().to_owned();
    for raw in [&key.key, &nowhere] {
        assert_eq!(app.verify_code(bravo.token(), raw).await, "NOT_FOUND");
        // Creating the key left a tombstone under acme's name; nothing else may be there.
        let held: Vec<_> = l2_entries(&redis, &hex(raw))
            .await
            .into_iter()
            .filter(|(_, value)| !value.starts_with('~'))
            .collect();
        assert_eq!(
            held,
            [(l2_name(&bravo.tenant.id, raw), "-".to_owned())],
            "only bravo's own \"not found\""
        );
    }

    assert_eq!(app.verify_code(acme.token(), &key.key).await, "VALID");
    app.revoke(acme.token(), &key.id).await;
    assert_eq!(app.verify_code(acme.token(), &key.key).await, "REVOKED");
    let after = l2_entries(&redis, &hex(&key.key)).await;
    let owners = after
        .iter()
        .find(|(name, _)| *name == l2_name(&acme.tenant.id, &key.key))
        .map(|(_, value)| value.as_str());
    assert!(
        owners.is_some_and(|v| v.starts_with('~') || v.contains("\"revoked\":true")),
        "acme's entry is a tombstone or the revoked record: {after:?}"
    );
}
