//! Time as the domain reads it: UTC timestamps, stored without a zone, and the [`Clock`] they
//! come from.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use chrono::{DurationRound, NaiveDateTime, TimeDelta};

/// A stored (naive, UTC) timestamp as UTC, for answers (RFC 3339 with a `Z`).
pub fn utc(at: chrono::NaiveDateTime) -> chrono::DateTime<chrono::Utc> {
    at.and_utc()
}

/// The system's UTC time at the precision both backends store (microseconds).
pub fn system_now() -> NaiveDateTime {
    let now = chrono::Utc::now().naive_utc();
    now.duration_trunc(TimeDelta::microseconds(1))
        .unwrap_or(now)
}

/// Where "now" comes from: the system's UTC time, moved forward by however much [`advance`]
/// moved it (never, outside tests). Clones share one offset, so a test that moves its app's
/// clock moves every engine's at once instead of waiting for time to pass.
///
/// [`advance`]: Clock::advance
#[derive(Clone, Debug, Default)]
pub struct Clock {
    offset_us: Arc<AtomicI64>,
}

impl Clock {
    /// The system's time.
    pub fn system() -> Self {
        Self::default()
    }

    /// Now, at the precision both backends store (microseconds).
    pub fn now(&self) -> NaiveDateTime {
        // Outside tests the clock is never moved: skip the date arithmetic (it showed in the
        // warm-verify instruction count).
        match self.offset_us.load(Ordering::Relaxed) {
            0 => system_now(),
            offset => system_now() + TimeDelta::microseconds(offset),
        }
    }

    /// Moves this clock and all its clones forward by `by`.
    pub fn advance(&self, by: std::time::Duration) {
        let by =
            i64::try_from(by.as_micros()).expect("a test moves the clock by less than 292k years");
        self.offset_us.fetch_add(by, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clones_move_together_and_never_back() {
        let clock = Clock::system();
        let other = clock.clone();
        let before = clock.now();
        other.advance(std::time::Duration::from_secs(3_600));
        let after = clock.now();
        assert!(
            after - before >= TimeDelta::seconds(3_600),
            "{before} .. {after}"
        );
        assert!(after - before < TimeDelta::seconds(3_660));
        assert_eq!(
            after.and_utc().timestamp_subsec_nanos() % 1_000,
            0,
            "microseconds"
        );
        assert!(Clock::system().now() < after, "a fresh clock is not moved");
    }
}
