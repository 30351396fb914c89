//! Usage counts and `last_used_at` are written in batches (every few seconds and at a graceful
//! shutdown), and `/metrics` exposes what an operator needs. A real `latchkey` process over the
//! suite's backend (both passes), so SIGTERM is a real signal.

use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::{Api, Deployment, TestDatabase, backend, metric, within};
use crate::nodes::{Node, RedisServer};

async fn usage(api: &Api, token: &str, id: &str) -> Value {
    let path = format!("/v1/keys/{id}/usage");
    api.expect(reqwest::Method::GET, &path, token, None, 200)
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_is_flushed_within_seconds_and_at_graceful_shutdown() {
    let db = TestDatabase::create(backend());
    let mut a = Node::start(&db.url(), None, &[]).await;
    let space = Deployment::over(&a, &db).space("usage").await;
    let token = space.token();
    let created = a.create_key(&space, |k| k.scopes(["docs:read"])).await;
    let (id, key) = (&created.id, &created.key);
    assert!(a.get_key(token, id).await["last_used_at"].is_null());

    for _ in 0..5 {
        assert_eq!(a.verify_code(token, key).await, "VALID");
    }
    for _ in 0..2 {
        let answer = a
            .verify_with(token, json!({"key": key, "scopes": ["docs:write"]}))
            .await;
        assert_eq!(answer["code"], "INSUFFICIENT_SCOPE");
    }
    let expected = json!({"VALID": 5, "INSUFFICIENT_SCOPE": 2});
    let flushed = within(Duration::from_secs(15), || async {
        usage(&a, token, id).await["totals"] == expected
    })
    .await;
    let seen = usage(&a, token, id).await;
    assert!(flushed.is_some(), "usage after 15 s: {seen}");
    eprintln!("usage flushed after {:?}", flushed.unwrap());
    // One hourly bucket, or two if the clock passed the hour in between: the same counts.
    let hours = seen["hours"].as_array().expect("hours");
    assert!((1..=2).contains(&hours.len()), "{seen}");
    let mut summed = serde_json::Map::new();
    for hour in hours {
        for (code, count) in hour["outcomes"].as_object().expect("outcomes") {
            let total = summed.get(code).and_then(Value::as_i64).unwrap_or(0);
            summed.insert(code.clone(), json!(total + count.as_i64().unwrap()));
        }
    }
    assert_eq!(Value::Object(summed), expected, "{seen}");
    assert!(seen["last_used_at"].is_string(), "{seen}");
    let read = a.get_key(token, id).await;
    assert!(read["last_used_at"].is_string(), "{read}");

    // Counted, then SIGTERM before the next periodic flush: the shutdown flush writes them.
    let b = Node::start(&db.url(), None, &[]).await;
    for _ in 0..3 {
        assert_eq!(a.verify_code(token, key).await, "VALID");
    }
    let status = a.terminate(Duration::from_secs(15)).await;
    assert!(status.success(), "graceful shutdown exits 0, got {status}");
    assert!(
        a.log_text().contains("flushed usage at shutdown"),
        "{}",
        a.log_tail(10)
    );
    let after = usage(&b, token, id).await;
    assert_eq!(
        after["totals"],
        json!({"VALID": 8, "INSUFFICIENT_SCOPE": 2}),
        "{after}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_expose_outcomes_latency_cache_redis_and_invalidations() {
    let db = TestDatabase::create(backend());
    let redis = RedisServer::start().await;
    let node = Node::start(&db.url(), Some(&redis.url()), &[]).await;
    node.wait_ready(Duration::from_secs(10)).await;
    let space = Deployment::over(&node, &db).space("metrics").await;
    let token = space.token();
    let created = node.create_key(&space, |k| k).await;
    let key = &created.key;
    for _ in 0..3 {
        assert_eq!(node.verify_code(token, key).await, "VALID");
    }
    node.revoke(token, &created.id).await;
    let revoked = within(Duration::from_secs(2), || async {
        node.verify_code(token, key).await == "REVOKED"
    })
    .await;
    assert!(revoked.is_some());
    let unknown = node.create_key(&space, |k| k).await.key;
    // The same key with another last character: its check tag fails, no lookup happens.
    let last = if unknown.ends_with('x') { "y" } else { "x" };
    let forged = format!("{}{last}", &unknown[..unknown.len() - 1]);
    assert_eq!(node.verify_code(token, &forged).await, "NOT_FOUND");

    let text = node.metrics().await;
    let sample = |name: &str| metric(&text, name);
    assert!(
        sample(r#"latchkey_verifications_total{code="VALID"}"#) >= 3.0,
        "{text}"
    );
    assert!(sample(r#"latchkey_verifications_total{code="REVOKED"}"#) >= 1.0);
    assert_eq!(
        sample(r#"latchkey_verifications_total{code="NOT_FOUND"}"#),
        1.0
    );
    assert!(sample(r#"latchkey_verify_duration_seconds_count{code="VALID"}"#) >= 3.0);
    assert!(
        text.contains(r#"latchkey_verify_duration_seconds_bucket{code="VALID",le="0.001"}"#),
        "{text}"
    );
    assert!(sample(r#"latchkey_cache_lookups_total{kind="key",result="hit",tier="l1"}"#) >= 1.0);
    assert!(sample(r#"latchkey_cache_lookups_total{kind="key",result="miss",tier="l1"}"#) >= 1.0);
    assert!(sample(r#"latchkey_cache_lookups_total{kind="key",result="miss",tier="l2"}"#) >= 1.0);
    assert!(sample("latchkey_store_lookups_total") >= 1.0);
    // Its own revocation comes back on the channel.
    assert!(sample("latchkey_invalidations_received_total") >= 1.0);
    assert!(text.contains("# TYPE latchkey_redis_errors_total counter"));
    assert_eq!(sample("latchkey_redis_errors_total"), 0.0);

    drop(redis);
    let errors = within(Duration::from_secs(5), || async {
        node.verify_code(token, key).await == "REVOKED"
            && node.metric("latchkey_redis_errors_total").await >= 1.0
    })
    .await;
    assert!(errors.is_some(), "Redis errors are counted");
}

/// A flush holds one row per key and outcome verified since the last one. Each statement
/// carries 500 rows (this batch takes three); the counts of a key that no longer exists are
/// dropped without losing the rest (on PostgreSQL its foreign-key error used to abort the
/// flush's transaction, so every later flush failed too), and `last_used_at` only moves forward.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flush_of_many_keys_writes_every_count_and_drops_those_of_missing_keys() {
    use chrono::{NaiveDate, TimeDelta};
    use latchkey::domain::ids::TenantId;
    use latchkey::store::usage::{self as rollups, UsageIncrement};

    let db = TestDatabase::create(backend());
    let node = Node::start(&db.url(), None, &[]).await;
    let setup = Deployment::over(&node, &db);
    let (store, space) = (&setup.store, setup.space("bulk").await);
    let mut ids = Vec::new();
    for _ in 0..11 {
        let batch = (0..50).map(|_| node.create_key(&space, |k| k));
        let created = futures_util::future::join_all(batch).await;
        ids.extend(created.into_iter().map(|key| key.id));
    }
    let hour = NaiveDate::from_ymd_opt(2026, 1, 2)
        .and_then(|d| d.and_hms_opt(3, 0, 0))
        .expect("a valid hour");
    let used_at = hour + TimeDelta::minutes(10);
    let missing = "01900000-0000-7000-8000-000000000000".to_owned();
    let increment = |key_id: &String, outcome: &str, count: i64| UsageIncrement {
        tenant_id: space.tenant.id.clone(),
        key_id: key_id.clone(),
        hour,
        outcome: outcome.to_owned(),
        count,
    };
    let mut rows = Vec::new();
    let mut last_used = Vec::new();
    for (i, id) in ids.iter().enumerate() {
        rows.push(increment(id, "VALID", i as i64 + 1));
        rows.push(increment(id, "REVOKED", 1));
        last_used.push((id.clone(), used_at));
        if i == 300 {
            rows.push(increment(&missing, "VALID", 1));
            last_used.push((missing.clone(), used_at));
        }
    }
    // Twice, as two flushes: the second adds to the rows the first created.
    for _ in 0..2 {
        let (rows, last_used) = (
            rows.iter()
                .map(|r| increment(&r.key_id, &r.outcome, r.count))
                .collect::<Vec<_>>(),
            last_used.clone(),
        );
        // In one transaction, as the flush does: on PostgreSQL a failed statement (the missing
        // key's) would abort the whole transaction.
        store
            .run(move |conn| {
                use diesel::Connection;
                conn.transaction(|conn| {
                    rollups::add(conn, &rows)?;
                    rollups::touch_last_used(conn, &last_used)
                })
            })
            .await
            .expect("the flush succeeds");
    }
    // An older time does not move `last_used_at` back.
    let earlier = vec![(ids[0].clone(), hour)];
    store
        .run(move |conn| rollups::touch_last_used(conn, &earlier))
        .await
        .expect("touch");

    let tenant = TenantId::from_trusted(space.tenant.id.clone());
    let written = store
        .run(move |conn| rollups::hourly(conn, &tenant, None, hour, used_at))
        .await
        .expect("read usage");
    assert_eq!(written.len(), ids.len() * 2, "one row per key and outcome");
    assert!(written.iter().all(|row| row.key_id != missing));
    for (i, id) in ids.iter().enumerate() {
        let count = |outcome: &str| {
            written
                .iter()
                .find(|row| row.key_id == *id && row.outcome == outcome)
                .map(|row| row.count)
        };
        assert_eq!(count("VALID"), Some(2 * (i as i64 + 1)), "key {i}");
        assert_eq!(count("REVOKED"), Some(2), "key {i}");
    }
    for id in [&ids[0], &ids[300], &ids[549]] {
        let read = node.get_key(space.token(), id).await;
        assert_eq!(
            read["last_used_at"],
            json!("2026-01-02T03:10:00Z"),
            "{read}"
        );
    }
}
