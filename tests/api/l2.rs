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
