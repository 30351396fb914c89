//! Per-key rate limits: fixed windows aligned to the epoch, counted in process.

use std::collections::HashMap;
use std::sync::Mutex;

use chrono::{DateTime, Utc};

use super::RateLimitState;
use crate::domain::inputs::RateLimit;

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
    /// Counts one verification against `limit` and says whether it is admitted.
    pub fn check(&self, key_id: &str, limit: RateLimit, _cost: i64) -> Decision {
        self.check_at(key_id, limit, Utc::now())
    }

    fn check_at(&self, key_id: &str, limit: RateLimit, at: DateTime<Utc>) -> Decision {
        let window = i64::from(limit.window_seconds.max(1));
        let now = at.timestamp();
        let start = now - now.rem_euclid(window);
        let mut windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        if windows.len() > 200_000 {
            // Forget windows that are over: their counts no longer matter.
            windows.retain(|_, (s, _)| *s + 86_400 > now);
        }
        let entry = windows.entry(key_id.to_owned()).or_insert((start, 0));
        if entry.0 != start {
            *entry = (start, 0);
        }
        let max = i64::from(limit.limit);
        let allowed = entry.1 < max;
        if allowed {
            entry.1 += 1;
        }
        Decision {
            allowed,
            state: RateLimitState {
                limit: limit.limit,
                remaining: (max - entry.1).max(0),
                reset_at: DateTime::from_timestamp(start + window, 0).unwrap_or(at),
            },
        }
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
}
