//! Sign-in throttling per account and per client address.
//!
//! Failures are counted in a fixed window; once an account or address reaches its limit,
//! attempts are refused until the window ends, before any password work is done. With Redis
//! the counts are shared by every node, so a load balancer that spreads one guesser over N
//! nodes does not give it N times the tries. Each node also counts in process, which decides
//! alone while Redis is unreachable; the stricter of the two answers counts.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use crate::cache::redis::RedisTier;
use crate::sync::lock;

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
    shared: Option<RedisTier>,
}

impl SignInThrottle {
    /// The limits in service; counts shared through `redis` when given.
    pub fn with_redis(redis: Option<RedisTier>) -> Self {
        Self::new(ACCOUNT_FAILURES, ADDRESS_FAILURES, WINDOW, redis)
    }

    pub fn new(
        account_failures: u32,
        address_failures: u32,
        window: Duration,
        shared: Option<RedisTier>,
    ) -> Self {
        Self {
            accounts: Limiter::new("account", account_failures, window),
            addresses: Limiter::new("address", address_failures, window),
            shared,
        }
    }

    /// `Err(seconds)` when the account or the address must wait that long before trying again.
    pub async fn check(&self, account: &str, address: &str) -> Result<(), u64> {
        let mut waits = vec![self.accounts.wait(account), self.addresses.wait(address)];
        if let Some(redis) = &self.shared {
            waits.push(self.accounts.shared_wait(redis, account).await);
            waits.push(self.addresses.shared_wait(redis, address).await);
        }
        match waits.into_iter().flatten().max() {
            Some(wait) => Err(wait.as_secs().max(1)),
            None => Ok(()),
        }
    }

    pub async fn failed(&self, account: &str, address: &str) {
        self.accounts.fail(account);
        self.addresses.fail(address);
        if let Some(redis) = &self.shared {
            let mut pipe = redis::pipe();
            self.accounts.shared_fail(&mut pipe, account);
            self.addresses.shared_fail(&mut pipe, address);
            redis.pipeline::<()>(&pipe).await;
        }
    }

    /// A correct password clears the account's count (not the address's).
    pub async fn succeeded(&self, account: &str) {
        self.accounts.clear(account);
        if let Some(redis) = &self.shared {
            let mut pipe = redis::pipe();
            pipe.del(self.accounts.shared_key(account)).ignore();
            redis.pipeline::<()>(&pipe).await;
        }
    }
}

struct Limiter {
    /// Names the counter in Redis keys.
    kind: &'static str,
    max: u32,
    window: Duration,
    entries: Mutex<HashMap<String, Entry>>,
}

struct Entry {
    failures: u32,
    since: Instant,
}

impl Limiter {
    fn new(kind: &'static str, max: u32, window: Duration) -> Self {
        Self {
            kind,
            max,
            window,
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn wait(&self, key: &str) -> Option<Duration> {
        let entries = lock(&self.entries);
        let entry = entries.get(key)?;
        let elapsed = entry.since.elapsed();
        (entry.failures >= self.max && elapsed < self.window).then(|| self.window - elapsed)
    }

    fn fail(&self, key: &str) {
        let mut entries = lock(&self.entries);
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
        lock(&self.entries).remove(key);
    }

    /// The Redis counter of `key`: hashed, so no e-mail address is written to Redis, and
    /// whatever the user typed makes a key of fixed length.
    fn shared_key(&self, key: &str) -> String {
        let digest = Sha256::digest(key.as_bytes());
        format!(
            "latchkey:sign-in:{}:{}",
            self.kind,
            hex::encode(&digest[..16])
        )
    }

    /// The wait the shared count imposes; `None` also when Redis cannot be asked.
    async fn shared_wait(&self, redis: &RedisTier, key: &str) -> Option<Duration> {
        let mut pipe = redis::pipe();
        let shared_key = self.shared_key(key);
        pipe.get(&shared_key).pttl(&shared_key);
        let (failures, ttl_ms) = redis.pipeline::<(Option<u32>, i64)>(&pipe).await?;
        (failures? >= self.max && ttl_ms > 0).then(|| Duration::from_millis(ttl_ms as u64))
    }

    /// Adds one failure to the shared count. The first failure creates it with the window as
    /// its lifetime (`SET … NX`), and `INCR` keeps that lifetime.
    fn shared_fail(&self, pipe: &mut redis::Pipeline, key: &str) {
        let shared_key = self.shared_key(key);
        pipe.cmd("SET")
            .arg(&shared_key)
            .arg(0)
            .arg("PX")
            .arg(self.window.as_millis() as u64)
            .arg("NX")
            .ignore();
        pipe.incr(&shared_key, 1).ignore();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn blocks_after_the_limit_until_the_window_ends() {
        let throttle = SignInThrottle::new(2, 3, Duration::from_secs(60), None);
        assert_eq!(throttle.check("a@x.io", "1.2.3.4").await, Ok(()));
        throttle.failed("a@x.io", "1.2.3.4").await;
        assert_eq!(throttle.check("a@x.io", "1.2.3.4").await, Ok(()));
        throttle.failed("a@x.io", "1.2.3.4").await;
        let wait = throttle.check("a@x.io", "1.2.3.4").await.unwrap_err();
        assert!((59..=60).contains(&wait), "{wait}");
        // Another account from the same address still has one try before the address limit.
        assert_eq!(throttle.check("b@x.io", "1.2.3.4").await, Ok(()));
        throttle.failed("b@x.io", "1.2.3.4").await;
        assert!(throttle.check("b@x.io", "1.2.3.4").await.is_err());
        assert_eq!(throttle.check("b@x.io", "5.6.7.8").await, Ok(()));
    }

    #[tokio::test]
    async fn success_clears_the_account() {
        let throttle = SignInThrottle::new(1, 10, Duration::from_secs(60), None);
        throttle.failed("a@x.io", "1.2.3.4").await;
        assert!(throttle.check("a@x.io", "9.9.9.9").await.is_err());
        throttle.succeeded("a@x.io").await;
        assert_eq!(throttle.check("a@x.io", "9.9.9.9").await, Ok(()));
    }

    #[tokio::test]
    async fn windows_expire() {
        let throttle = SignInThrottle::new(1, 10, Duration::from_millis(20), None);
        throttle.failed("a@x.io", "1.2.3.4").await;
        assert!(throttle.check("a@x.io", "1.2.3.4").await.is_err());
        tokio::time::sleep(Duration::from_millis(30)).await;
        assert_eq!(throttle.check("a@x.io", "1.2.3.4").await, Ok(()));
    }
}
