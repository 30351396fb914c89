//! The cache tiers under verification: L1 in process (moka), L2 in Redis, and the invalidation
//! channel that keeps every node's L1 honest.
//!
//! Reads go L1 → L2 → store. L1 entries live at most a few seconds (the hard staleness bound);
//! concurrent loads of one digest are coalesced into one, and an entry still in use near the end
//! of its life is reloaded in the background, so a hot key never makes a request wait. Every
//! change to a key evicts it from L2 and publishes its digest; every node evicts it from L1. A
//! node that is not subscribed (Redis down, or reconnecting) does not trust its L1 and reads
//! through.

mod invalidation;
mod l1;
mod tiered;

pub use invalidation::Caches;
pub use l1::{L1_REFRESH_AFTER, L1_REFRESH_SPREAD, L1_TTL, L1Timing, NEGATIVE_TTL};
pub use tiered::{Cached, L2_TTL, Loaded, Lookup, LookupFor, TieredCache};
