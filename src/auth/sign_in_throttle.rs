//! Sign-in throttling per account and per client address, in process (one node's view).
//!
//! Failures are counted in a fixed window; once an account or address reaches its limit,
//! attempts are refused until the window ends, before any password work is done.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failed sign-ins allowed per account in one window.
pub const ACCOUNT_FAILURES: u32 = 5;
/// Failed sign-ins allowed per client address in one window (many accounts behind one NAT).
pub const ADDRESS_FAILURES: u32 = 20;
pub const WINDOW: Duration = Duration::from_secs(15 * 60);
/// Above this many tracked keys, expired entries are swept on the next failure.
const SWEEP_ABOVE: usize = 10_000;

pub struct SignInThrottle {
    accounts: Limiter,
    addresses: Limiter,
}

impl Default for SignInThrottle {
    fn default() -> Self {
        Self::new(ACCOUNT_FAILURES, ADDRESS_FAILURES, WINDOW)
    }
}

impl SignInThrottle {
    pub fn new(account_failures: u32, address_failures: u32, window: Duration) -> Self {
        Self {
            accounts: Limiter::new(account_failures, window),
            addresses: Limiter::new(address_failures, window),
        }
    }

    /// `Err(seconds)` when the account or the address must wait that long before trying again.
    pub fn check(&self, account: &str, address: &str) -> Result<(), u64> {
        let wait = [self.accounts.wait(account), self.addresses.wait(address)]
            .into_iter()
            .flatten()
            .max();
        match wait {
            Some(wait) => Err(wait.as_secs().max(1)),
            None => Ok(()),
        }
    }

    pub fn failed(&self, account: &str, address: &str) {
        self.accounts.fail(account);
        self.addresses.fail(address);
    }

    /// A correct password clears the account's count (not the address's).
    pub fn succeeded(&self, account: &str) {
        self.accounts.clear(account);
    }
}

struct Limiter {
    max: u32,
    window: Duration,
    entries: Mutex<HashMap<String, Entry>>,
}

struct Entry {
    failures: u32,
    since: Instant,
}

impl Limiter {
    fn new(max: u32, window: Duration) -> Self {
        Self {
            max,
            window,
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        // A panic while holding this lock leaves only counters behind; keep using them.
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn wait(&self, key: &str) -> Option<Duration> {
        let entries = self.entries();
        let entry = entries.get(key)?;
        let elapsed = entry.since.elapsed();
        (entry.failures >= self.max && elapsed < self.window).then(|| self.window - elapsed)
    }

    fn fail(&self, key: &str) {
        let mut entries = self.entries();
        if entries.len() > SWEEP_ABOVE {
            let window = self.window;
            entries.retain(|_, e| e.since.elapsed() < window);
        }
        let entry = entries.entry(key.to_owned()).or_insert(Entry {
            failures: 0,
            since: Instant::now(),
        });
        if entry.since.elapsed() >= self.window {
            *entry = Entry {
                failures: 0,
                since: Instant::now(),
            };
        }
        entry.failures += 1;
    }

    fn clear(&self, key: &str) {
        self.entries().remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_after_the_limit_until_the_window_ends() {
        let throttle = SignInThrottle::new(2, 3, Duration::from_secs(60));
        assert_eq!(throttle.check("a@x.io", "1.2.3.4"), Ok(()));
        throttle.failed("a@x.io", "1.2.3.4");
        assert_eq!(throttle.check("a@x.io", "1.2.3.4"), Ok(()));
        throttle.failed("a@x.io", "1.2.3.4");
        let wait = throttle.check("a@x.io", "1.2.3.4").unwrap_err();
        assert!((59..=60).contains(&wait), "{wait}");
        // Another account from the same address still has one try before the address limit.
        assert_eq!(throttle.check("b@x.io", "1.2.3.4"), Ok(()));
        throttle.failed("b@x.io", "1.2.3.4");
        assert!(throttle.check("b@x.io", "1.2.3.4").is_err());
        assert_eq!(throttle.check("b@x.io", "5.6.7.8"), Ok(()));
    }

    #[test]
    fn success_clears_the_account() {
        let throttle = SignInThrottle::new(1, 10, Duration::from_secs(60));
        throttle.failed("a@x.io", "1.2.3.4");
        assert!(throttle.check("a@x.io", "9.9.9.9").is_err());
        throttle.succeeded("a@x.io");
        assert_eq!(throttle.check("a@x.io", "9.9.9.9"), Ok(()));
    }

    #[test]
    fn windows_expire() {
        let throttle = SignInThrottle::new(1, 10, Duration::from_millis(20));
        throttle.failed("a@x.io", "1.2.3.4");
        assert!(throttle.check("a@x.io", "1.2.3.4").is_err());
        std::thread::sleep(Duration::from_millis(30));
        assert_eq!(throttle.check("a@x.io", "1.2.3.4"), Ok(()));
    }
}
