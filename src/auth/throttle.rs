//! An in-process GCRA limiter keyed by string (root key id, IP, account). Per node: with N nodes
//! a caller may get up to N times the rate, which is fine for abuse limits.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::sync::lock;

pub struct Throttle {
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
            interval,
            tolerance: interval * per_minute.saturating_sub(1),
            state: Mutex::new(HashMap::new()),
        }
    }

    /// Admits one request for `key`, or says how many seconds to wait.
    pub fn check(&self, key: &str) -> Result<(), u64> {
        let now = Instant::now();
        let mut state = lock(&self.state);
        if state.len() > 100_000 {
            // Forget callers whose schedule is already in the past: they start fresh anyway.
            state.retain(|_, tat| *tat > now);
        }
        let tat = state.get(key).copied().unwrap_or(now).max(now);
        if tat > now + self.tolerance {
            let wait = tat - (now + self.tolerance);
            return Err(wait.as_secs().max(1));
        }
        state.insert(key.to_owned(), tat + self.interval);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::Throttle;

    #[test]
    fn admits_the_burst_then_refuses_with_a_wait() {
        let throttle = Throttle::per_minute(5);
        for _ in 0..5 {
            assert!(throttle.check("a").is_ok());
        }
        let wait = throttle.check("a").unwrap_err();
        assert!((1..=12).contains(&wait), "{wait}");
        assert!(throttle.check("b").is_ok(), "callers are independent");
    }
}
