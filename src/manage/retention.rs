//! Retention (issue 19 §4): audit events and usage rollups older than the configured number of
//! days are purged by a job every node runs, in batches, so no purge holds a long transaction
//! and nodes running it at once only share the work.

use chrono::{NaiveDateTime, TimeDelta};

use crate::store::{Store, StoreError, audit_events, usage};

/// Rows one batch deletes (each batch is its own short statement).
pub const PURGE_BATCH: i64 = 500;

/// What one purge removed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Purged {
    pub audit_events: usize,
    pub usage_rollups: usize,
}

/// Deletes what is older than `retention_days` before `now`, `batch` rows at a time, until
/// nothing is left to delete. Idempotent: running it again (or on another node) finds nothing.
pub async fn purge(
    store: &Store,
    now: NaiveDateTime,
    retention_days: u32,
    batch: i64,
) -> Result<Purged, StoreError> {
    let cutoff = now - TimeDelta::days(i64::from(retention_days));
    let mut purged = Purged::default();
    loop {
        let (events, rollups) = store
            .run(move |conn| {
                Ok::<_, StoreError>((
                    audit_events::purge_before(conn, cutoff, batch)?,
                    usage::purge_before(conn, cutoff, batch)?,
                ))
            })
            .await?;
        purged.audit_events += events;
        purged.usage_rollups += rollups;
        // A batch short of full means nothing older is left (or another node took it).
        if (events as i64) < batch && (rollups as i64) < batch {
            return Ok(purged);
        }
    }
}
