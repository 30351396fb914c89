//! Usage without a write per request: verification outcomes are counted in memory per key,
//! hour and outcome, and flushed to `usage_rollups` (and `last_used_at`) in batches.

use std::collections::HashMap;
use std::sync::Mutex;

use chrono::{NaiveDateTime, Timelike};

use super::VerifyCode;
use crate::domain::ids::TenantId;
use crate::store::{Store, StoreError, now, usage};

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Bucket {
    tenant_id: String,
    key_id: String,
    hour: NaiveDateTime,
    outcome: VerifyCode,
}

#[derive(Default)]
struct Pending {
    counts: HashMap<Bucket, i64>,
    last_used: HashMap<String, NaiveDateTime>,
}

/// In-memory counts waiting for the next flush.
#[derive(Default)]
pub struct UsageRecorder {
    pending: Mutex<Pending>,
}

fn hour_of(at: NaiveDateTime) -> NaiveDateTime {
    at.date().and_hms_opt(at.hour(), 0, 0).unwrap_or(at)
}

impl UsageRecorder {
    /// Counts one verification of a known key (cheap: one short lock, no I/O).
    pub fn record(&self, tenant: &TenantId, key_id: &str, outcome: VerifyCode) {
        let at = now();
        let bucket = Bucket {
            tenant_id: tenant.as_str().to_owned(),
            key_id: key_id.to_owned(),
            hour: hour_of(at),
            outcome,
        };
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        *pending.counts.entry(bucket).or_default() += 1;
        if outcome == VerifyCode::Valid {
            pending.last_used.insert(key_id.to_owned(), at);
        }
    }

    /// Writes everything counted so far in one transaction. On failure the counts are put back
    /// and retried at the next flush, so nothing is counted twice or lost while the process runs.
    pub async fn flush(&self, store: &Store) -> Result<usize, StoreError> {
        let taken = std::mem::take(&mut *self.pending.lock().unwrap_or_else(|e| e.into_inner()));
        if taken.counts.is_empty() && taken.last_used.is_empty() {
            return Ok(0);
        }
        let rows: Vec<usage::UsageIncrement> = taken
            .counts
            .iter()
            .map(|(b, count)| usage::UsageIncrement {
                tenant_id: b.tenant_id.clone(),
                key_id: b.key_id.clone(),
                hour: b.hour,
                outcome: b.outcome.as_str().to_owned(),
                count: *count,
            })
            .collect();
        let last_used: Vec<(String, NaiveDateTime)> = taken
            .last_used
            .iter()
            .map(|(k, v)| (k.clone(), *v))
            .collect();
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
            let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
            for (bucket, count) in taken.counts {
                *pending.counts.entry(bucket).or_default() += count;
            }
            for (key, at) in taken.last_used {
                let entry = pending.last_used.entry(key).or_insert(at);
                *entry = (*entry).max(at);
            }
            return Err(err);
        }
        Ok(written)
    }
}
