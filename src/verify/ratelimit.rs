//! Rate limits as sliding windows: at most `limit` admissions in **any** interval of
//! `window_seconds`, not just in windows aligned to the clock (a fixed window admits up to twice
//! its limit across a boundary). Counted atomically in Redis (one script call per check, exact
//! across nodes), or on this node when Redis is absent or down.
//!
//! A window is split into [`BUCKETS`] buckets. A check counts every bucket that overlaps the
//! window ending now, the oldest one whole, so nothing admitted in the last `window_seconds` is
//! ever left out: the bound holds in every interval, and a client is refused at most one
//! bucket's width (1 % of the window) earlier than an exact log of timestamps would refuse it.
//! Several limits are checked together: if any would be exceeded, none is charged, and a
//! refused check charges nothing.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use chrono::{DateTime, Utc};

use super::RateLimitState;
use crate::domain::inputs::RateLimit;
use crate::redis::RedisTier;
use crate::sync::lock;

/// Buckets per window: the bound's slack, as a fraction of the window.
pub const BUCKETS: i64 = 100;

/// Counts in Redis when it answers, else on this node.
pub struct RateLimiter {
    redis: Option<RedisTier>,
    local: LocalRateLimiter,
    script: redis::Script,
}

/// One limit a check must respect, and what the check costs against it.
#[derive(Clone, Copy, Debug)]
pub struct Charge<'a> {
    /// Names the counter: the same id on every node counts together.
    pub counter: &'a str,
    pub limit: RateLimit,
    pub cost: u32,
}

/// Checks and charges every limit of one verification, atomically. `KEYS[i]` is the hash of
/// limit i: field `t` is its total over live buckets, `o` the oldest bucket that may be nonzero,
/// and each bucket's index holds its count. `ARGV[1]` is now in milliseconds, then per limit:
/// bucket width in ms, limit, cost. Answers `{allowed, t1, reset1_ms, t2, reset2_ms, …}` where
/// `t` is the total after the check and `reset` when the oldest counted bucket leaves the window.
const SLIDING_WINDOW_SCRIPT: &str = r#"
local now, buckets = tonumber(ARGV[1]), 100
local totals, oldest, current, widths = {}, {}, {}, {}
local allowed = 1
for i, key in ipairs(KEYS) do
  local width = tonumber(ARGV[(i - 1) * 3 + 2])
  local limit = tonumber(ARGV[(i - 1) * 3 + 3])
  local cost = tonumber(ARGV[(i - 1) * 3 + 4])
  local cur = math.floor(now / width)
  local first_live = cur - buckets
  local t = tonumber(redis.call('HGET', key, 't') or '0')
  local o = tonumber(redis.call('HGET', key, 'o') or cur)
  if o < first_live - buckets then
    redis.call('DEL', key)
    t, o = 0, cur
  end
  while o < cur and (o < first_live or not redis.call('HGET', key, o)) do
    local gone = redis.call('HGET', key, o)
    if gone then
      t = t - tonumber(gone)
      redis.call('HDEL', key, o)
    end
    o = o + 1
  end
  totals[i], oldest[i], current[i], widths[i] = t, o, cur, width
  if t + cost > limit then allowed = 0 end
end
local answer = { allowed }
for i, key in ipairs(KEYS) do
  if allowed == 1 then
    local cost = tonumber(ARGV[(i - 1) * 3 + 4])
    redis.call('HINCRBY', key, current[i], cost)
    totals[i] = totals[i] + cost
  end
  redis.call('HSET', key, 't', totals[i], 'o', oldest[i])
  redis.call('PEXPIRE', key, (buckets + 2) * widths[i])
  answer[#answer + 1] = totals[i]
  answer[#answer + 1] = (oldest[i] + buckets + 1) * widths[i]
end
return answer
"#;

impl RateLimiter {
    pub fn new(redis: Option<RedisTier>) -> Self {
        Self {
            redis,
            local: LocalRateLimiter::default(),
            script: redis::Script::new(SLIDING_WINDOW_SCRIPT),
        }
    }

    /// Counts one verification of `key_id`, made `at`, against `limit`.
    pub async fn check(&self, key_id: &str, limit: RateLimit, at: DateTime<Utc>) -> Decision {
        let counter = crate::redis::keys::rate_limit(key_id, limit.window_seconds);
        let charge = Charge {
            counter: &counter,
            limit,
            cost: 1,
        };
        let (allowed, mut states) = self.check_all(&[charge], at).await;
        Decision {
            allowed,
            state: states.pop().expect("one state per charge"),
        }
    }

    /// Checks every charge against its limit and, only if none would be exceeded, charges them
    /// all; answers whether they were charged and each limit's state after the check.
    pub async fn check_all(
        &self,
        charges: &[Charge<'_>],
        at: DateTime<Utc>,
    ) -> (bool, Vec<RateLimitState>) {
        let now_ms = at.timestamp_millis();
        if let Some(redis) = &self.redis {
            let keys: Vec<&str> = charges.iter().map(|c| c.counter).collect();
            let mut args = vec![now_ms];
            for charge in charges {
                args.extend([
                    bucket_width_ms(charge.limit),
                    i64::from(charge.limit.limit),
                    i64::from(charge.cost),
                ]);
            }
            if let Some(answer) = redis
                .eval::<Vec<i64>>(&self.script, &keys, &args)
                .await
                .filter(|answer| answer.len() == 1 + 2 * charges.len())
            {
                let states: Vec<RateLimitState> = charges
                    .iter()
                    .zip(answer[1..].chunks_exact(2))
                    .map(|(charge, pair)| {
                        // Remember the shared count: if Redis fails later, counting on this
                        // node continues from it instead of from zero (a key already at its
                        // limit stays refused while Redis is away).
                        self.local.observe(charge, pair[0], now_ms);
                        state(charge.limit, pair[0], pair[1], at)
                    })
                    .collect();
                return (answer[0] == 1, states);
            }
        }
        self.local.check_all(charges, at)
    }
}

/// The width of one bucket of `limit`'s window, in milliseconds.
fn bucket_width_ms(limit: RateLimit) -> i64 {
    (i64::from(limit.window_seconds.max(1)) * 1000 / BUCKETS).max(1)
}

fn state(limit: RateLimit, total: i64, reset_ms: i64, at: DateTime<Utc>) -> RateLimitState {
    RateLimitState {
        limit: limit.limit,
        remaining: (i64::from(limit.limit) - total).max(0),
        reset_at: DateTime::from_timestamp_millis(reset_ms).unwrap_or(at),
    }
}

/// The result of one check.
#[derive(Clone, Copy, Debug)]
pub struct Decision {
    pub allowed: bool,
    pub state: RateLimitState,
}

/// One limit's buckets on this node: the same algorithm as the script.
#[derive(Debug)]
struct Window {
    /// Bucket width in milliseconds.
    width: i64,
    total: i64,
    /// (bucket index, count), oldest first; only buckets that counted something.
    buckets: VecDeque<(i64, i64)>,
}

impl Window {
    fn new(width: i64) -> Self {
        Self {
            width,
            total: 0,
            buckets: VecDeque::new(),
        }
    }

    /// Forgets the buckets that no longer overlap the window ending in bucket `current`.
    fn slide(&mut self, current: i64) {
        while let Some(&(index, count)) = self.buckets.front() {
            if index >= current - BUCKETS {
                break;
            }
            self.total -= count;
            self.buckets.pop_front();
        }
    }

    fn add(&mut self, current: i64, cost: i64) {
        match self.buckets.back_mut() {
            Some((index, count)) if *index == current => *count += cost,
            _ => self.buckets.push_back((current, cost)),
        }
        self.total += cost;
    }

    /// When the oldest counted bucket leaves the window, in ms since the epoch.
    fn reset_ms(&self, current: i64) -> i64 {
        let oldest = self.buckets.front().map_or(current, |&(index, _)| index);
        (oldest + BUCKETS + 1) * self.width
    }

    /// Whether anything counted is still in the window at `now_ms`.
    fn is_live(&self, now_ms: i64) -> bool {
        self.buckets
            .back()
            .is_some_and(|&(index, _)| (index + BUCKETS + 1) * self.width > now_ms)
    }
}

/// Counts verifications per counter on this node.
#[derive(Default)]
pub struct LocalRateLimiter {
    windows: Mutex<HashMap<String, Window>>,
}

impl LocalRateLimiter {
    /// Takes the shared `total` as this node's count of `charge`'s counter, as if all of it had
    /// been counted now (so it leaves the window no earlier than it really does).
    fn observe(&self, charge: &Charge<'_>, total: i64, now_ms: i64) {
        let width = bucket_width_ms(charge.limit);
        let mut windows = lock(&self.windows);
        let mut observed = Window::new(width);
        observed.add(now_ms.div_euclid(width), total);
        match windows.get_mut(charge.counter) {
            Some(window) => *window = observed,
            None => {
                windows.insert(charge.counter.to_owned(), observed);
            }
        }
    }

    fn check_all(&self, charges: &[Charge<'_>], at: DateTime<Utc>) -> (bool, Vec<RateLimitState>) {
        let now_ms = at.timestamp_millis();
        let mut windows = lock(&self.windows);
        if windows.len() > 200_000 {
            windows.retain(|_, window| window.is_live(now_ms));
        }
        let mut allowed = true;
        for charge in charges {
            let (limit, cost) = (i64::from(charge.limit.limit), i64::from(charge.cost));
            let total = windows.get_mut(charge.counter).map_or(0, |window| {
                window.slide(now_ms.div_euclid(window.width));
                window.total
            });
            allowed &= total + cost <= limit;
        }
        let states = charges
            .iter()
            .map(|charge| {
                let width = bucket_width_ms(charge.limit);
                let (current, cost) = (now_ms.div_euclid(width), i64::from(charge.cost));
                let (total, reset) = match windows.get_mut(charge.counter) {
                    Some(window) => {
                        if allowed {
                            window.add(current, cost);
                        }
                        (window.total, window.reset_ms(current))
                    }
                    None => {
                        let mut window = Window::new(width);
                        if allowed {
                            window.add(current, cost);
                            let answer = (window.total, window.reset_ms(current));
                            windows.insert(charge.counter.to_owned(), window);
                            answer
                        } else {
                            (0, window.reset_ms(current))
                        }
                    }
                };
                state(charge.limit, total, reset, at)
            })
            .collect();
        (allowed, states)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeDelta;

    const LIMIT: RateLimit = RateLimit {
        limit: 10,
        window_seconds: 60,
    };

    fn charge(counter: &str, limit: RateLimit) -> Charge<'_> {
        Charge {
            counter,
            limit,
            cost: 1,
        }
    }

    fn t0() -> DateTime<Utc> {
        // A window boundary of the old fixed windows (a multiple of 60 s).
        DateTime::from_timestamp(1_799_999_940, 0).unwrap()
    }

    fn check(limiter: &LocalRateLimiter, at: DateTime<Utc>) -> bool {
        limiter.check_all(&[charge("k", LIMIT)], at).0
    }

    #[test]
    fn admits_up_to_the_limit_and_refusals_charge_nothing() {
        let limiter = LocalRateLimiter::default();
        let remaining: Vec<i64> = (0..10)
            .map(|_| limiter.check_all(&[charge("k", LIMIT)], t0()).1[0].remaining)
            .collect();
        assert_eq!(remaining, (0..10).rev().collect::<Vec<i64>>());
        for _ in 0..5 {
            assert!(!check(&limiter, t0()), "over the limit");
        }
        let (_, states) = limiter.check_all(&[charge("k", LIMIT)], t0());
        assert_eq!(
            states[0].reset_at,
            t0() + TimeDelta::milliseconds(60_600),
            "the bucket of t0 leaves the window a window and a bucket later"
        );
        assert!(
            limiter.check_all(&[charge("other", LIMIT)], t0()).0,
            "counters are separate"
        );
        // Refusals were not counted: the ten admissions leave together, and ten more fit.
        let later = t0() + TimeDelta::milliseconds(60_600);
        assert!((0..10).all(|_| check(&limiter, later)));
        assert!(!check(&limiter, later));
    }

    #[test]
    fn a_burst_straddling_a_boundary_gets_the_limit_once() {
        let limiter = LocalRateLimiter::default();
        // Ten at the end of one fixed window and ten at the start of the next: a fixed window
        // admitted all twenty within two seconds.
        let before = t0() - TimeDelta::seconds(1);
        let admitted_before = (0..10).filter(|_| check(&limiter, before)).count();
        let admitted_after = (0..10).filter(|_| check(&limiter, t0())).count();
        assert_eq!((admitted_before, admitted_after), (10, 0));
    }

    /// Admissions of a client that retries every `step_ms`, counted over every interval of one
    /// window: never more than the limit, and the limit is reached (within one bucket's slack).
    #[test]
    fn no_interval_of_one_window_admits_more_than_the_limit() {
        let limiter = LocalRateLimiter::default();
        let step_ms = 137;
        let admitted: Vec<i64> = (0..5_000)
            .map(|i| t0() + TimeDelta::milliseconds(i * step_ms))
            .filter(|at| check(&limiter, *at))
            .map(|at| at.timestamp_millis())
            .collect();
        let window_ms = 60_000;
        let most = admitted
            .iter()
            .map(|start| {
                admitted
                    .iter()
                    .filter(|t| **t >= *start && **t < start + window_ms)
                    .count()
            })
            .max()
            .unwrap();
        assert_eq!(most, 10, "at most the limit in any window-long interval");
        let span_ms = 5_000 * step_ms;
        let expected = span_ms as f64 / window_ms as f64 * 10.0;
        assert!(
            admitted.len() as f64 >= expected * 0.98,
            "admitted {} of about {expected:.0}",
            admitted.len()
        );
    }

    #[test]
    fn limits_checked_together_are_charged_together_or_not_at_all() {
        let limiter = LocalRateLimiter::default();
        let tight = RateLimit {
            limit: 2,
            window_seconds: 60,
        };
        let both = [charge("wide", LIMIT), charge("tight", tight)];
        assert!(limiter.check_all(&both, t0()).0);
        assert!(limiter.check_all(&both, t0()).0);
        let (allowed, states) = limiter.check_all(&both, t0());
        assert!(!allowed, "the tight limit is reached");
        assert_eq!(
            (states[0].remaining, states[1].remaining),
            (8, 0),
            "the wide limit was not charged for the refusal"
        );
    }

    #[test]
    fn counting_on_this_node_continues_from_the_last_shared_count() {
        let limiter = LocalRateLimiter::default();
        let at_limit = charge("k", LIMIT);
        limiter.observe(&at_limit, 10, t0().timestamp_millis());
        assert!(!check(&limiter, t0()), "already at the limit");
        assert!(
            !check(&limiter, t0() + TimeDelta::seconds(59)),
            "still within the window"
        );
        assert!(check(&limiter, t0() + TimeDelta::milliseconds(60_600)));
    }
}
