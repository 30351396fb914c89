//! The rate limiter's Redis script, on a real Redis: sliding windows that hold in any interval
//! (no burst across a boundary), several limits charged together or not at all, refusals that
//! charge nothing, and four nodes sharing one count. Time is the argument of each check, so the
//! tests move it instead of waiting.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use latchkey::domain::inputs::RateLimit;
use latchkey::metrics::Metrics;
use latchkey::redis::RedisTier;
use latchkey::verify::ratelimit::{Charge, RateLimiter};

use crate::nodes::RedisServer;

const LIMIT: RateLimit = RateLimit {
    limit: 10,
    window_seconds: 60,
};

/// A node's limiter over `redis` (each with its own connection, as each node has).
fn limiter(redis: &RedisServer) -> RateLimiter {
    let tier = RedisTier::new(
        &redis.url(),
        Duration::from_secs(2),
        Arc::new(Metrics::new()),
    )
    .expect("redis url");
    RateLimiter::new(Some(tier))
}

/// A boundary of the fixed windows that came before (a multiple of 60 s).
fn t0() -> DateTime<Utc> {
    DateTime::from_timestamp(1_799_999_940, 0).unwrap()
}

fn one(counter: &str) -> [Charge<'_>; 1] {
    [Charge {
        counter,
        limit: LIMIT,
        cost: 1,
    }]
}

async fn admitted(limiter: &RateLimiter, counter: &str, at: DateTime<Utc>) -> bool {
    limiter.check_all(&one(counter), at).await.0
}

#[tokio::test]
async fn a_burst_straddling_a_boundary_gets_the_limit_once_and_refusals_charge_nothing() {
    let redis = RedisServer::start().await;
    let limiter = limiter(&redis);
    // Buckets are 600 ms here (1 % of the window), aligned to the epoch, as `before` is.
    let before = t0() - TimeDelta::milliseconds(1_200);
    let mut remaining = Vec::new();
    for _ in 0..10 {
        let (allowed, states) = limiter.check_all(&one("k"), before).await;
        assert!(allowed);
        remaining.push(states[0].remaining);
    }
    assert_eq!(remaining, (0..10).rev().collect::<Vec<i64>>());
    for at in [before, t0(), t0() + TimeDelta::seconds(30)] {
        assert!(
            !admitted(&limiter, "k", at).await,
            "a fixed window admitted ten more at {at}"
        );
    }
    let (_, states) = limiter.check_all(&one("k"), t0()).await;
    assert_eq!(
        states[0].reset_at,
        before + TimeDelta::milliseconds(60_600),
        "free again when the oldest bucket leaves the window"
    );
    // The refusals were not counted: all ten come back together, then it is full again.
    let free = before + TimeDelta::milliseconds(60_600);
    for _ in 0..10 {
        assert!(admitted(&limiter, "k", free).await);
    }
    assert!(!admitted(&limiter, "k", free).await);
    assert!(
        admitted(&limiter, "another", free).await,
        "counters are separate"
    );
}

/// Four nodes take turns verifying one key every 37 ms for ten windows; admissions are counted
/// in every interval of one window.
#[tokio::test]
async fn four_nodes_admit_at_most_the_limit_in_any_interval_of_one_window() {
    let redis = RedisServer::start().await;
    let nodes: Vec<RateLimiter> = (0..4).map(|_| limiter(&redis)).collect();
    let limit = RateLimit {
        limit: 50,
        window_seconds: 2,
    };
    let charge = [Charge {
        counter: "shared",
        limit,
        cost: 1,
    }];
    let mut times = Vec::new();
    for i in 0..540 {
        let at = t0() + TimeDelta::milliseconds(i * 37);
        if nodes[i as usize % 4].check_all(&charge, at).await.0 {
            times.push(at.timestamp_millis());
        }
    }
    let most = times
        .iter()
        .map(|start| {
            times
                .iter()
                .filter(|t| (*start..start + 2_000).contains(*t))
                .count()
        })
        .max()
        .unwrap();
    assert_eq!(most, 50, "at most the limit in any two seconds");
    let expected = 540.0 * 37.0 / 2_000.0 * 50.0;
    assert!(
        times.len() as f64 >= expected * 0.97,
        "{} admitted of about {expected:.0}: the slack is one bucket",
        times.len()
    );
}

#[tokio::test]
async fn limits_checked_together_are_charged_together_or_not_at_all() {
    let redis = RedisServer::start().await;
    let limiter = limiter(&redis);
    let tight = RateLimit {
        limit: 2,
        window_seconds: 60,
    };
    let both = [
        Charge {
            counter: "wide",
            limit: LIMIT,
            cost: 1,
        },
        Charge {
            counter: "tight",
            limit: tight,
            cost: 1,
        },
    ];
    assert!(limiter.check_all(&both, t0()).await.0);
    assert!(limiter.check_all(&both, t0()).await.0);
    let (allowed, states) = limiter.check_all(&both, t0()).await;
    assert!(!allowed, "the tight limit is reached");
    assert_eq!(
        (states[0].remaining, states[1].remaining),
        (8, 0),
        "the wide limit was not charged for the refusal"
    );
    let costly = [Charge {
        counter: "wide",
        limit: LIMIT,
        cost: 9,
    }];
    assert!(!limiter.check_all(&costly, t0()).await.0, "9 more than fit");
    assert_eq!(
        limiter.check_all(&one("wide"), t0()).await.1[0].remaining,
        7
    );
}

#[tokio::test]
async fn counting_continues_on_the_node_from_the_shared_count_while_redis_is_down() {
    let mut redis = RedisServer::start().await;
    let limiter = limiter(&redis);
    for _ in 0..10 {
        assert!(admitted(&limiter, "k", t0()).await);
    }
    redis.kill();
    assert!(
        !admitted(&limiter, "k", t0() + TimeDelta::seconds(1)).await,
        "refused on this node too: it counted ten in Redis"
    );
    assert!(admitted(&limiter, "k", t0() + TimeDelta::seconds(61)).await);
}
