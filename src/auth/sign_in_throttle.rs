//! Sign-in throttling per account and per client address.
//!
//! Attempts are counted in a fixed window that starts with the first one; once an account or
//! an address has used its tries, attempts are refused until the window ends, before any
//! password work is done. An attempt is counted when it starts, not when its password turns out
//! wrong, so a burst of parallel guesses gets no more tries than a sequence; a correct password
//! clears the account's count and gives the address its try back.
//!
//! With Redis the counts are shared by every node (one script call per attempt), so a load
//! balancer that spreads one guesser over N nodes does not give it N times the tries. While
//! Redis does not answer, each node counts by itself.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use crate::auth::session::SessionKeys;
use crate::redis::RedisTier;
use crate::sync::lock;

/// Failed sign-ins allowed per account in one window.
pub const ACCOUNT_FAILURES: u32 = 5;
/// Failed sign-ins allowed per client address in one window (many accounts behind one NAT).
pub const ADDRESS_FAILURES: u32 = 20;
pub const WINDOW: Duration = Duration::from_secs(15 * 60);
/// Above this many tracked keys, expired entries are swept on the next attempt.
const SWEEP_ABOVE: usize = 10_000;

/// Counts one attempt against the account (KEYS[1]) and the address (KEYS[2]), atomically.
/// ARGV: window in ms, account limit, address limit. A counter gets the window as its lifetime
/// when it has none (so it can never be left without one). Answers 0 when the attempt may go
/// ahead, else the milliseconds to wait; a refused attempt is not counted.
const ATTEMPT_SCRIPT: &str = r#"
local wait = 0
for i = 1, 2 do
  local count = redis.call('INCR', KEYS[i])
  local ttl = redis.call('PTTL', KEYS[i])
  if ttl < 0 then
    redis.call('PEXPIRE', KEYS[i], ARGV[1])
    ttl = tonumber(ARGV[1])
  end
  if count > tonumber(ARGV[i + 1]) and ttl > wait then
    wait = ttl
  end
end
if wait > 0 then
  redis.call('DECR', KEYS[1])
  redis.call('DECR', KEYS[2])
end
return wait
"#;

/// After a correct password: clears the account (KEYS[1]) and gives the address (KEYS[2]) its
/// try back, unless its window already ended.
const SUCCEEDED_SCRIPT: &str = r#"
redis.call('DEL', KEYS[1])
if redis.call('EXISTS', KEYS[2]) == 1 then
  redis.call('DECR', KEYS[2])
end
return 0
"#;

pub struct SignInThrottle {
    accounts: Limiter,
    addresses: Limiter,
    window: Duration,
    shared: Option<Shared>,
}

/// The counts in Redis, named by an HMAC of the account or address: Redis never holds an
/// e-mail address, nor a name anyone without the deployment's secret could match to one.
struct Shared {
    redis: RedisTier,
    names: SessionKeys,
    attempt: redis::Script,
    succeeded: redis::Script,
}

impl Shared {
    fn counters(&self, account: &str, address: &str) -> [String; 2] {
        let name = |kind: &str, value: &str| {
            let mac = self.names.keyed(&format!("sign-in-{kind}"), value);
            crate::redis::keys::sign_in(kind, &hex::encode(&mac[..16]))
        };
        [name("account", account), name("address", address)]
    }
}

impl SignInThrottle {
    /// The limits in service; counts shared through `redis` when given.
    pub fn with_redis(redis: Option<RedisTier>, names: SessionKeys) -> Self {
        Self::new(ACCOUNT_FAILURES, ADDRESS_FAILURES, WINDOW, redis, names)
    }

    pub fn new(
        account_failures: u32,
        address_failures: u32,
        window: Duration,
        redis: Option<RedisTier>,
        names: SessionKeys,
    ) -> Self {
        Self {
            accounts: Limiter::new(account_failures, window),
            addresses: Limiter::new(address_failures, window),
            window,
            shared: redis.map(|redis| Shared {
                redis,
                names,
                attempt: redis::Script::new(ATTEMPT_SCRIPT),
                succeeded: redis::Script::new(SUCCEEDED_SCRIPT),
            }),
        }
    }

    /// Counts one sign-in attempt; `Err(seconds)` when the account or the address must wait
    /// that long first (and then the attempt is not counted).
    pub async fn attempt(&self, account: &str, address: &str) -> Result<(), u64> {
        let shared = match &self.shared {
            Some(shared) => {
                let args = [
                    self.window.as_millis() as i64,
                    i64::from(self.accounts.max),
                    i64::from(self.addresses.max),
                ];
                let [a, b] = shared.counters(account, address);
                shared
                    .redis
                    .eval::<i64>(&shared.attempt, &[&a, &b], &args)
                    .await
                    .map(|ms| (ms > 0).then(|| Duration::from_millis(ms as u64)))
            }
            None => None,
        };
        // The node counts by itself only while Redis does not answer: a count kept beside
        // Redis's would miss the successes other nodes see, and lock out the user later.
        let wait = shared.unwrap_or_else(|| self.attempt_locally(account, address));
        match wait {
            Some(wait) => Err(wait.as_secs().max(1)),
            None => Ok(()),
        }
    }

    fn attempt_locally(&self, account: &str, address: &str) -> Option<Duration> {
        let by_account = self.accounts.take(account);
        let by_address = self.addresses.take(address);
        // A refused attempt counts against neither.
        if by_account.is_some() || by_address.is_some() {
            if by_account.is_none() {
                self.accounts.give_back(account);
            }
            if by_address.is_none() {
                self.addresses.give_back(address);
            }
        }
        by_account.max(by_address)
    }

    /// A correct password: the account starts afresh, and the address gets its try back.
    pub async fn succeeded(&self, account: &str, address: &str) {
        self.accounts.clear(account);
        self.addresses.give_back(address);
        if let Some(shared) = &self.shared {
            let [a, b] = shared.counters(account, address);
            shared
                .redis
                .eval::<i64>(&shared.succeeded, &[&a, &b], &[])
                .await;
        }
    }
}

struct Limiter {
    max: u32,
    window: Duration,
    entries: Mutex<HashMap<String, Entry>>,
}

struct Entry {
    attempts: u32,
    /// On tokio's clock, so a test that pauses and moves it ends windows without waiting.
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

    /// Counts one attempt for `key`, or says how long to wait (and counts nothing).
    fn take(&self, key: &str) -> Option<Duration> {
        let mut entries = lock(&self.entries);
        if entries.len() > SWEEP_ABOVE {
            let window = self.window;
            entries.retain(|_, e| e.since.elapsed() < window);
        }
        let entry = entries.entry(key.to_owned()).or_insert(Entry {
            attempts: 0,
            since: Instant::now(),
        });
        let elapsed = entry.since.elapsed();
        if elapsed >= self.window {
            *entry = Entry {
                attempts: 0,
                since: Instant::now(),
            };
        } else if entry.attempts >= self.max {
            return Some(self.window - elapsed);
        }
        entry.attempts += 1;
        None
    }

    fn give_back(&self, key: &str) {
        if let Some(entry) = lock(&self.entries).get_mut(key) {
            entry.attempts = entry.attempts.saturating_sub(1);
        }
    }

    fn clear(&self, key: &str) {
        lock(&self.entries).remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::secrets::MasterKey;

    fn throttle(account_tries: u32, address_tries: u32, window: Duration) -> SignInThrottle {
        let master = MasterKey::parse(&"ab".repeat(32)).unwrap();
        let names = SessionKeys::new(&master.derive());
        SignInThrottle::new(account_tries, address_tries, window, None, names)
    }

    #[tokio::test]
    async fn refuses_after_the_tries_until_the_window_ends() {
        let throttle = throttle(2, 3, Duration::from_secs(60));
        assert_eq!(throttle.attempt("a@x.io", "1.2.3.4").await, Ok(()));
        assert_eq!(throttle.attempt("a@x.io", "1.2.3.4").await, Ok(()));
        let wait = throttle.attempt("a@x.io", "1.2.3.4").await.unwrap_err();
        assert!((59..=60).contains(&wait), "{wait}");
        // The refused attempt did not count against the address: one more try for another
        // account from it, then the address is used up too.
        assert_eq!(throttle.attempt("b@x.io", "1.2.3.4").await, Ok(()));
        assert!(throttle.attempt("b@x.io", "1.2.3.4").await.is_err());
        assert_eq!(throttle.attempt("b@x.io", "5.6.7.8").await, Ok(()));
    }

    #[tokio::test]
    async fn success_clears_the_account_and_gives_the_address_its_try_back() {
        let throttle = throttle(1, 1, Duration::from_secs(60));
        assert_eq!(throttle.attempt("a@x.io", "1.2.3.4").await, Ok(()));
        throttle.succeeded("a@x.io", "1.2.3.4").await;
        assert_eq!(throttle.attempt("a@x.io", "1.2.3.4").await, Ok(()));
        assert!(throttle.attempt("a@x.io", "9.9.9.9").await.is_err());
    }

    #[tokio::test]
    async fn parallel_attempts_get_no_more_tries_than_a_sequence() {
        let throttle = throttle(5, 100, Duration::from_secs(60));
        let attempts = (0..20).map(|_| throttle.attempt("a@x.io", "1.2.3.4"));
        let admitted = futures_util::future::join_all(attempts)
            .await
            .into_iter()
            .filter(Result::is_ok)
            .count();
        assert_eq!(admitted, 5);
    }

    #[tokio::test(start_paused = true)]
    async fn windows_expire() {
        let throttle = throttle(1, 10, Duration::from_secs(60));
        assert_eq!(throttle.attempt("a@x.io", "1.2.3.4").await, Ok(()));
        assert!(throttle.attempt("a@x.io", "1.2.3.4").await.is_err());
        tokio::time::advance(Duration::from_secs(59)).await;
        assert_eq!(throttle.attempt("a@x.io", "1.2.3.4").await, Err(1));
        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(throttle.attempt("a@x.io", "1.2.3.4").await, Ok(()));
    }
}
