//! An in-process GCRA limiter keyed by string (root key id, IP, account). Per node: with N nodes
//! a caller may get up to N times the rate, which is fine for abuse limits.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::sync::lock;

pub struct Throttle {
    /// Requests per minute at the sustained rate, and the burst.
    per_minute: u32,
    /// Time between two admitted requests at the sustained rate.
    interval: Duration,
    /// How far ahead of schedule a caller may run (the burst).
    tolerance: Duration,
    state: Mutex<HashMap<String, Instant>>,
}

impl Throttle {
    /// Allows `per_minute` requests per minute, with a burst of the same size.
    pub fn per_minute(per_minute: u32) -> Self {
        let per_minute = per_minute.max(1);
        let interval = Duration::from_secs(60) / per_minute;
        Self {
            per_minute,
            interval,
            tolerance: interval * per_minute.saturating_sub(1),
            state: Mutex::new(HashMap::new()),
        }
    }

    /// The quota: requests per minute.
    pub fn per_minute_quota(&self) -> u32 {
        self.per_minute
    }

    /// Admits one request for `key`, or refuses it; either way says where `key` stands.
    pub fn check(&self, key: &str) -> Standing {
        let now = Instant::now();
        let mut state = lock(&self.state);
        if state.len() > 100_000 {
            // Forget callers whose schedule is already in the past: they start fresh anyway.
            state.retain(|_, tat| *tat > now);
        }
        let tat = state.get(key).copied().unwrap_or(now).max(now);
        if tat > now + self.tolerance {
            let wait = tat - (now + self.tolerance);
            return Standing {
                retry_after: Some(wait.as_secs().max(1)),
                remaining: 0,
                reset_seconds: ceil_secs(tat - now),
            };
        }
        let next = tat + self.interval;
        state.insert(key.to_owned(), next);
        // Requests admitted at once from now on: each moves the schedule one interval on.
        let slack = (now + self.tolerance).saturating_duration_since(next);
        let remaining = if next <= now + self.tolerance {
            (slack.as_nanos() / self.interval.as_nanos().max(1)) as u32 + 1
        } else {
            0
        };
        Standing {
            retry_after: None,
            remaining: remaining.min(self.per_minute),
            reset_seconds: ceil_secs(next - now),
        }
    }
}

/// Where a caller stands after [`Throttle::check`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Standing {
    /// Refused: seconds until one more request is admitted.
    pub retry_after: Option<u64>,
    /// Requests that would be admitted right now.
    pub remaining: u32,
    /// Seconds until the whole quota is available again.
    pub reset_seconds: u64,
}

fn ceil_secs(duration: Duration) -> u64 {
    let secs = duration.as_secs();
    if duration.subsec_nanos() > 0 {
        secs + 1
    } else {
        secs
    }
}

#[cfg(test)]
mod tests {
    use super::Throttle;

    #[test]
    fn admits_the_burst_then_refuses_with_a_wait() {
        let throttle = Throttle::per_minute(5);
        for left in (0..5).rev() {
            let standing = throttle.check("a");
            assert_eq!(standing.retry_after, None);
            assert_eq!(standing.remaining, left, "each admission uses one");
            assert!((1..=60).contains(&standing.reset_seconds), "{standing:?}");
        }
        let refused = throttle.check("a");
        let wait = refused.retry_after.expect("the burst is spent");
        assert!((1..=12).contains(&wait), "{wait}");
        assert_eq!(refused.remaining, 0);
        assert!((48..=60).contains(&refused.reset_seconds), "{refused:?}");
        assert_eq!(throttle.check("b").remaining, 4, "callers are independent");
    }
}
