//! Locking that survives a panic elsewhere.

use std::sync::{Mutex, MutexGuard};

/// Locks `mutex`, taking it over if a thread panicked while holding it. Every mutex this is used
/// for guards counters or caches that are whole after each statement (an insert, an increment),
/// so a panic cannot leave them half-changed; refusing every later request would be worse.
pub fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
