//! Per-key rate limits: fixed windows aligned to the epoch, counted atomically in Redis (one
//! script call per check, exact across nodes), or in process when Redis is absent or down.

use std::collections::HashMap;
use std::sync::Mutex;

use chrono::{DateTime, Utc};

use super::RateLimitState;
use crate::domain::inputs::RateLimit;
use crate::redis::RedisTier;
use crate::sync::lock;

/// Counts in Redis when it answers, else on this node.
pub struct RateLimiter {
    redis: Option<RedisTier>,
    local: LocalRateLimiter,
    script: redis::Script,
}

/// INCR the window's counter, set its expiry on first use, return the count. Atomic in Redis.
const WINDOW_SCRIPT: &str = r#"
local count = redis.call('INCR', KEYS[1])
if count == 1 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
end
return count
"#;

impl RateLimiter {
    pub fn new(redis: Option<RedisTier>) -> Self {
        Self {
            redis,
            local: LocalRateLimiter::default(),
            script: redis::Script::new(WINDOW_SCRIPT),
        }
    }

    /// Counts one verification of `key_id`, made `at`, against `limit`.
    pub async fn check(&self, key_id: &str, limit: RateLimit, at: DateTime<Utc>) -> Decision {
        if let Some(redis) = &self.redis {
            let (start, window) = window_of(limit, at);
            let counter = crate::redis::keys::rate_limit(key_id, start);
            // The counter outlives its window a little, so late calls still see it.
            let ttl_ms = (window + 1) * 1000;
            if let Some(count) = redis
                .eval::<i64>(&self.script, &[&counter], &[ttl_ms])
                .await
            {
                // Remember the shared count: if Redis fails later in this window, counting on
                // this node continues from it instead of from zero (a key already over its limit
                // stays refused while Redis is away).
                self.local.observe(key_id, start, count);
                return decision(limit, start, window, count, at);
            }
        }
        self.local.check_at(key_id, limit, at)
    }
}

fn window_of(limit: RateLimit, at: DateTime<Utc>) -> (i64, i64) {
    let window = i64::from(limit.window_seconds.max(1));
    let now = at.timestamp();
    (now - now.rem_euclid(window), window)
}

/// The decision for the `count`-th verification of a window.
fn decision(limit: RateLimit, start: i64, window: i64, count: i64, at: DateTime<Utc>) -> Decision {
    let max = i64::from(limit.limit);
    Decision {
        allowed: count <= max,
        state: RateLimitState {
            limit: limit.limit,
            remaining: (max - count).max(0),
            reset_at: DateTime::from_timestamp(start + window, 0).unwrap_or(at),
        },
    }
}

/// The result of one check.
#[derive(Clone, Copy, Debug)]
pub struct Decision {
    pub allowed: bool,
    pub state: RateLimitState,
}

/// Counts verifications per key and window on this node.
#[derive(Default)]
pub struct LocalRateLimiter {
    /// key id -> (window start in seconds since the epoch, count in that window)
    windows: Mutex<HashMap<String, (i64, i64)>>,
}

impl LocalRateLimiter {
    /// Raises this node's count of `key_id`'s window starting at `start` to at least `count`.
    fn observe(&self, key_id: &str, start: i64, count: i64) {
        let mut windows = lock(&self.windows);
        match windows.get_mut(key_id) {
            Some(entry) if entry.0 == start => entry.1 = entry.1.max(count),
            Some(entry) if entry.0 < start => *entry = (start, count),
            Some(_) => {} // a late answer about a window that is over
            None => {
                windows.insert(key_id.to_owned(), (start, count));
            }
        }
    }

    /// Counts one verification against `limit` and says whether it is admitted.
    fn check_at(&self, key_id: &str, limit: RateLimit, at: DateTime<Utc>) -> Decision {
        let (start, window) = window_of(limit, at);
        let now = at.timestamp();
        let mut windows = lock(&self.windows);
        if windows.len() > 200_000 {
            // Forget windows that are over: their counts no longer matter.
            windows.retain(|_, (s, _)| *s + 86_400 > now);
        }
        let entry = windows.entry(key_id.to_owned()).or_insert((start, 0));
        if entry.0 != start {
            *entry = (start, 0);
        }
        entry.1 += 1;
        decision(limit, start, window, entry.1, at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admits_up_to_the_limit_per_window() {
        let limiter = LocalRateLimiter::default();
        let limit = RateLimit {
            limit: 3,
            window_seconds: 60,
        };
        let t0 = DateTime::from_timestamp(1_799_999_940, 0).unwrap();
        let remaining: Vec<i64> = (0..3)
            .map(|_| limiter.check_at("k", limit, t0).state.remaining)
            .collect();
        assert_eq!(remaining, vec![2, 1, 0]);
        let refused = limiter.check_at("k", limit, t0);
        assert!(!refused.allowed);
        assert_eq!(refused.state.reset_at, t0 + chrono::TimeDelta::seconds(60));
        assert!(limiter.check_at("other", limit, t0).allowed);
        let next = limiter.check_at("k", limit, t0 + chrono::TimeDelta::seconds(60));
        assert!(next.allowed, "a new window starts fresh");
    }

    #[test]
    fn counting_on_this_node_continues_from_the_last_shared_count() {
        let limiter = LocalRateLimiter::default();
        let limit = RateLimit {
            limit: 3,
            window_seconds: 60,
        };
        let t0 = DateTime::from_timestamp(1_799_999_940, 0).unwrap();
        let (start, _) = window_of(limit, t0);
        limiter.observe("k", start, 3);
        limiter.observe("k", start, 2);
        assert!(
            !limiter.check_at("k", limit, t0).allowed,
            "already at the limit"
        );
        limiter.observe("k", start - 60, 1);
        assert!(
            !limiter.check_at("k", limit, t0).allowed,
            "an old window changes nothing"
        );
        let next = limiter.check_at("k", limit, t0 + chrono::TimeDelta::seconds(60));
        assert!(next.allowed);
    }
}
