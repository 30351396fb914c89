//! A circuit breaker for a dependency that can go away (Redis, the store): closed (calls go
//! through), open (calls are skipped for a while after a failure), then half-open (one probe at
//! a time). Lock-free, on a monotonic clock.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Milliseconds on a monotonic clock (since the first call, plus one so that 0 means "never"):
/// a wall clock stepped back by NTP would hold the breaker open for the size of the step.
fn now_ms() -> u64 {
    static BASE: std::sync::LazyLock<Instant> = std::sync::LazyLock::new(Instant::now);
    BASE.elapsed().as_millis() as u64 + 1
}

/// How a call got past [`Breaker::admit`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admitted {
    /// The breaker is closed.
    Closed,
    /// The breaker is open and its window has passed: this call is the one probe.
    Probe,
}

pub struct Breaker {
    /// How long calls are skipped after a failure.
    open_for_ms: u64,
    /// Milliseconds (of [`now_ms`]) until which calls are skipped; 0: closed.
    open_until_ms: AtomicU64,
    /// When the half-open probe in flight started (0: none). A probe whose caller was dropped
    /// mid-call never reports back: after `probe_lapse_ms` another may start.
    probing_since_ms: AtomicU64,
    /// Longer than any call may take.
    probe_lapse_ms: u64,
    /// When the breaker last closed.
    closed_at_ms: AtomicU64,
    /// Counts outages (closed → open), so a cache can tell that one happened.
    outages: AtomicU64,
}

impl Breaker {
    /// A closed breaker that stays open for `open_for` after a failure, for calls that take at
    /// most `probe_lapse`.
    pub fn new(open_for: Duration, probe_lapse: Duration) -> Self {
        Self {
            open_for_ms: open_for.as_millis() as u64,
            open_until_ms: AtomicU64::new(0),
            probing_since_ms: AtomicU64::new(0),
            probe_lapse_ms: probe_lapse.as_millis() as u64,
            closed_at_ms: AtomicU64::new(0),
            outages: AtomicU64::new(0),
        }
    }

    /// Whether a call may go through now, and as what; `None`: skip it.
    pub fn admit(&self) -> Option<Admitted> {
        let until = self.open_until_ms.load(Ordering::Acquire);
        if until == 0 {
            return Some(Admitted::Closed);
        }
        let now = now_ms();
        if now < until {
            return None;
        }
        let since = self.probing_since_ms.load(Ordering::Acquire);
        let lapsed = since == 0 || now.saturating_sub(since) >= self.probe_lapse_ms;
        (lapsed
            && self
                .probing_since_ms
                .compare_exchange(since, now, Ordering::AcqRel, Ordering::Acquire)
                .is_ok())
        .then_some(Admitted::Probe)
    }

    /// A call succeeded: closes the breaker. `true` for the one call that closed it.
    pub fn succeeded(&self) -> bool {
        let mut closed = false;
        if self.open_until_ms.load(Ordering::Acquire) != 0 {
            // When it closed, before it is closed: a reader in between must not see an old one.
            self.closed_at_ms.store(now_ms(), Ordering::Release);
            closed = self.open_until_ms.swap(0, Ordering::AcqRel) != 0;
        }
        self.probing_since_ms.store(0, Ordering::Release);
        closed
    }

    /// A call failed: opens the breaker (or keeps it open for another window). `true` for the
    /// one call that opened it.
    pub fn failed(&self) -> bool {
        let opened = self
            .open_until_ms
            .swap(now_ms() + self.open_for_ms, Ordering::AcqRel)
            == 0;
        if opened {
            self.outages.fetch_add(1, Ordering::AcqRel);
        }
        self.probing_since_ms.store(0, Ordering::Release);
        opened
    }

    /// The last call (or probe) succeeded.
    pub fn is_closed(&self) -> bool {
        self.open_until_ms.load(Ordering::Acquire) == 0
    }

    /// How many times the breaker opened.
    pub fn outages(&self) -> u64 {
        self.outages.load(Ordering::Acquire)
    }

    /// How long it has been closed; `None` while open.
    pub fn closed_for(&self) -> Option<Duration> {
        let since = now_ms().saturating_sub(self.closed_at_ms.load(Ordering::Acquire));
        self.is_closed().then(|| Duration::from_millis(since))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn breaker() -> Breaker {
        Breaker::new(Duration::from_secs(1), Duration::from_millis(100))
    }

    #[test]
    fn a_failure_opens_the_breaker_and_one_probe_at_a_time_closes_it() {
        let breaker = breaker();
        assert_eq!(
            breaker.admit(),
            Some(Admitted::Closed),
            "closed: calls go through"
        );
        assert!(breaker.failed(), "the failure that opened it");
        assert!(!breaker.failed(), "a second failure only keeps it open");
        assert_eq!(breaker.admit(), None, "open: calls are skipped");
        assert_eq!(breaker.outages(), 1);
        assert_eq!(breaker.closed_for(), None);
        // The open window has passed: one probe goes, the others wait for its answer.
        breaker.open_until_ms.store(1, Ordering::Release);
        assert_eq!(breaker.admit(), Some(Admitted::Probe), "the probe");
        assert_eq!(
            breaker.admit(),
            None,
            "a second caller while the probe is out"
        );
        assert!(breaker.succeeded(), "the success that closed it");
        assert!(!breaker.succeeded(), "closed already");
        assert_eq!(breaker.admit(), Some(Admitted::Closed), "closed again");
        assert_eq!(breaker.outages(), 1);
        assert!(breaker.closed_for().is_some());
    }

    /// A probe whose caller was dropped mid-call never answers; the breaker must not stay open
    /// for good (every later call would be skipped).
    #[test]
    fn a_probe_that_never_answers_does_not_keep_the_breaker_open() {
        let breaker = breaker();
        breaker.failed();
        breaker.open_until_ms.store(1, Ordering::Release);
        assert_eq!(
            breaker.admit(),
            Some(Admitted::Probe),
            "a probe, then dropped"
        );
        assert_eq!(breaker.admit(), None);
        let lapsed = now_ms().saturating_sub(breaker.probe_lapse_ms + 1);
        breaker.probing_since_ms.store(lapsed, Ordering::Release);
        assert_eq!(
            breaker.admit(),
            Some(Admitted::Probe),
            "another probe once the first has lapsed"
        );
    }
}
