//! Usage without a write per request: verification outcomes are counted in memory per key,
//! hour and outcome, and flushed to `usage_rollups` (and `last_used_at`) in batches.

use std::collections::HashMap;
use std::sync::Mutex;

use chrono::{NaiveDateTime, Timelike};

use crate::domain::ids::TenantId;
use crate::domain::verify_code::VerifyCode;
use crate::store::{Store, StoreError, usage};
use crate::sync::lock;

/// What one key did since the last flush.
#[derive(Debug)]
struct KeyUsage {
    tenant_id: String,
    /// Counts by hour and outcome.
    counts: HashMap<(NaiveDateTime, VerifyCode), i64>,
    last_used: Option<NaiveDateTime>,
}

impl KeyUsage {
    fn merge(&mut self, other: KeyUsage) {
        for (bucket, count) in other.counts {
            *self.counts.entry(bucket).or_default() += count;
        }
        self.last_used = self.last_used.max(other.last_used);
    }
}

/// In-memory counts waiting for the next flush, by key id. Recording a key seen before
/// allocates nothing.
#[derive(Default)]
pub struct UsageRecorder {
    pending: Mutex<HashMap<String, KeyUsage>>,
}

fn hour_of(at: NaiveDateTime) -> NaiveDateTime {
    at.date().and_hms_opt(at.hour(), 0, 0).unwrap_or(at)
}

impl UsageRecorder {
    /// Counts one verification of a known key, made at `at` (cheap: one short lock, no I/O).
    pub fn record(&self, tenant: &TenantId, key_id: &str, outcome: VerifyCode, at: NaiveDateTime) {
        let mut pending = lock(&self.pending);
        let usage = match pending.get_mut(key_id) {
            Some(usage) => usage,
            None => pending
                .entry(key_id.to_owned())
                .or_insert_with(|| KeyUsage {
                    tenant_id: tenant.as_str().to_owned(),
                    counts: HashMap::new(),
                    last_used: None,
                }),
        };
        *usage.counts.entry((hour_of(at), outcome)).or_default() += 1;
        if outcome == VerifyCode::Valid {
            usage.last_used = Some(at);
        }
    }

    /// Writes everything counted so far in one transaction. On failure the counts are put back
    /// and retried at the next flush, so nothing is counted twice or lost while the process runs.
    pub async fn flush(&self, store: &Store) -> Result<usize, StoreError> {
        let taken = std::mem::take(&mut *lock(&self.pending));
        if taken.is_empty() {
            return Ok(0);
        }
        let mut rows: Vec<usage::UsageIncrement> = taken
            .iter()
            .flat_map(|(key_id, usage)| {
                usage
                    .counts
                    .iter()
                    .map(|((hour, outcome), count)| usage::UsageIncrement {
                        tenant_id: usage.tenant_id.clone(),
                        key_id: key_id.clone(),
                        hour: *hour,
                        outcome: outcome.as_str().to_owned(),
                        count: *count,
                    })
            })
            .collect();
        let mut last_used: Vec<(String, NaiveDateTime)> = taken
            .iter()
            .filter_map(|(key_id, usage)| Some((key_id.clone(), usage.last_used?)))
            .collect();
        // Sorted by key: two nodes flushing the same keys at once send them in the same order,
        // which makes deadlocks between them unlikely (the plan, not the list, decides the lock
        // order). A flush that still fails is put back and retried.
        rows.sort_unstable_by(|a, b| {
            (&a.key_id, a.hour, &a.outcome).cmp(&(&b.key_id, b.hour, &b.outcome))
        });
        last_used.sort_unstable();
        let written = rows.len();
        let result = store
            .run(move |conn| {
                use diesel::Connection;
                conn.transaction(|conn| {
                    usage::add(conn, &rows)?;
                    usage::touch_last_used(conn, &last_used)?;
                    Ok::<_, StoreError>(())
                })
            })
            .await;
        if let Err(err) = result {
            let mut pending = lock(&self.pending);
            for (key_id, usage) in taken {
                match pending.get_mut(&key_id) {
                    Some(existing) => existing.merge(usage),
                    None => {
                        pending.insert(key_id, usage);
                    }
                }
            }
            return Err(err);
        }
        Ok(written)
    }
}
