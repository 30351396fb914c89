//! L1, the in-process tier: what it holds for a digest, how long, and when a hit reloads it.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use moka::Expiry;

use super::Lookup;
use crate::domain::key::KeyDigest;

/// Hard bound on how long an L1 entry is trusted without hearing from the store or Redis.
pub const L1_TTL: Duration = Duration::from_secs(5);
/// A positive L1 entry read this long ago (at most; see [`L1_REFRESH_SPREAD`]) is reloaded in
/// the background on its next hit, so a key used at least once a second is never reloaded while
/// a request waits.
pub const L1_REFRESH_AFTER: Duration = Duration::from_secs(4);
/// Each digest is reloaded up to this much before [`L1_REFRESH_AFTER`], at a point its bytes
/// fix. Entries read together (at a node's start, or in any burst) would otherwise all come up
/// for reload together, and stay in step: on the benchmark's 1,000 hot keys, a thousand
/// background reloads within 0.3 s every 4 s, with the requests of the same worker threads
/// queued behind them. The price: a hot key is reloaded every 3 s on average instead of 4.
pub const L1_REFRESH_SPREAD: Duration = Duration::from_secs(2);
/// Unknown digests are remembered this long (a new key also evicts its digest explicitly).
pub const NEGATIVE_TTL: Duration = Duration::from_secs(2);
pub(super) const L1_CAPACITY: u64 = 200_000;

/// How long L1 keeps entries: [`L1_TTL`], [`L1_REFRESH_AFTER`], [`L1_REFRESH_SPREAD`] and
/// [`NEGATIVE_TTL`] in service.
#[derive(Clone, Copy, Debug)]
pub struct L1Timing {
    pub ttl: Duration,
    pub refresh_after: Duration,
    pub refresh_spread: Duration,
    pub negative_ttl: Duration,
}

impl L1Timing {
    /// How old `digest`'s entry may get before a hit reloads it: `refresh_after`, less a share
    /// of `refresh_spread` set by the digest's first two bytes (uniform: the digest is an HMAC).
    pub(super) fn refresh_after(&self, digest: &KeyDigest) -> Duration {
        let [a, b, ..] = *digest.as_bytes();
        let share = u32::from(u16::from_be_bytes([a, b]));
        self.refresh_after
            .saturating_sub(self.refresh_spread * share / (u32::from(u16::MAX) + 1))
    }
}

impl Default for L1Timing {
    fn default() -> Self {
        Self {
            ttl: L1_TTL,
            refresh_after: L1_REFRESH_AFTER,
            refresh_spread: L1_REFRESH_SPREAD,
            negative_ttl: NEGATIVE_TTL,
        }
    }
}

/// What L1 holds for a digest: the record (`None`: there is none) and when it was read.
#[derive(Clone, Debug)]
pub(super) struct L1Entry<T> {
    pub(super) record: Option<Arc<T>>,
    /// On tokio's clock, like the cache's timers: a test that pauses and moves that clock ages
    /// entries without waiting.
    pub(super) read_at: tokio::time::Instant,
    /// The digest's generation when the read began: once an eviction moves it on, the entry
    /// may hold the state from before the change and answers no one.
    pub(super) generation: Generation,
}

impl<T> L1Entry<T> {
    pub(super) fn new(record: Option<Arc<T>>, generation: Generation) -> Self {
        Self {
            record,
            read_at: tokio::time::Instant::now(),
            generation,
        }
    }

    pub(super) fn lookup(self) -> Lookup<T> {
        self.record.map_or(Lookup::NotFound, Lookup::Found)
    }
}

/// Eviction counters, one per stripe of digests, plus one for "everything": a load remembers
/// its digest's [`Generation`] before it reads and is kept only if it is unchanged after. A
/// stripe shared with another digest only costs that load its place in L1.
pub(super) struct Generations {
    all: AtomicU64,
    stripes: Box<[AtomicU64]>,
}

/// What [`Generations::of`] was for a digest when a load started.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Generation(u64, u64);

const GENERATION_STRIPES: usize = 4096;

impl Generations {
    pub(super) fn new() -> Self {
        Self {
            all: AtomicU64::new(0),
            stripes: (0..GENERATION_STRIPES).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    fn stripe(&self, digest: &KeyDigest) -> &AtomicU64 {
        // Uniform: the digest is an HMAC.
        let [a, b, ..] = *digest.as_bytes();
        &self.stripes[usize::from(u16::from_le_bytes([a, b])) % GENERATION_STRIPES]
    }

    pub(super) fn of(&self, digest: &KeyDigest) -> Generation {
        Generation(
            self.all.load(Ordering::Acquire),
            self.stripe(digest).load(Ordering::Acquire),
        )
    }

    pub(super) fn evicted(&self, digest: &KeyDigest) {
        self.stripe(digest).fetch_add(1, Ordering::AcqRel);
    }

    pub(super) fn evicted_all(&self) {
        self.all.fetch_add(1, Ordering::AcqRel);
    }
}

/// An entry lives for its timing from when it was written, a background reload included.
pub(super) struct EntryExpiry(pub(super) L1Timing);

impl EntryExpiry {
    fn ttl<T>(&self, entry: &L1Entry<T>) -> Duration {
        if entry.record.is_some() {
            self.0.ttl
        } else {
            self.0.negative_ttl
        }
    }
}

impl<K, T> Expiry<K, L1Entry<T>> for EntryExpiry {
    fn expire_after_create(
        &self,
        _key: &K,
        value: &L1Entry<T>,
        _created_at: Instant,
    ) -> Option<Duration> {
        Some(self.ttl(value))
    }

    fn expire_after_update(
        &self,
        _key: &K,
        value: &L1Entry<T>,
        _updated_at: Instant,
        _duration_until_expiry: Option<Duration>,
    ) -> Option<Duration> {
        Some(self.ttl(value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_digest_sets_its_reload_age_within_the_spread() {
        let timing = L1Timing {
            ttl: Duration::from_secs(5),
            refresh_after: Duration::from_secs(4),
            refresh_spread: Duration::from_secs(2),
            negative_ttl: Duration::from_secs(2),
        };
        let age = |first: [u8; 2]| {
            let mut bytes = [0u8; 32];
            bytes[..2].copy_from_slice(&first);
            timing.refresh_after(&KeyDigest::from_slice(&bytes).unwrap())
        };
        assert_eq!(age([0, 0]), Duration::from_secs(4));
        assert_eq!(age([0x80, 0]), Duration::from_secs(3));
        let youngest = age([0xff, 0xff]);
        assert!(youngest > Duration::from_secs(2) && youngest < Duration::from_millis(2001));
    }
}
