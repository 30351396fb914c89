//! A key's usage report: hourly verification counts by outcome.

use super::*;

/// The period of a usage report (default: the last 24 hours; at most 31 days).
#[derive(Clone, Copy, Debug, Default)]
pub struct UsagePeriod {
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
}

/// Verifications of one hour, by outcome code.
#[derive(Debug)]
pub struct HourlyUsage {
    pub hour: DateTime<Utc>,
    pub outcomes: std::collections::BTreeMap<String, i64>,
}

/// A key's verifications over a period, by hour and outcome code.
#[derive(Debug)]
pub struct Usage {
    pub key_id: KeyId,
    pub since: DateTime<Utc>,
    pub until: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    /// Totals over the period, by outcome code.
    pub totals: std::collections::BTreeMap<String, i64>,
    /// The hours with verifications, oldest first.
    pub hours: Vec<HourlyUsage>,
}

/// Hourly verification counts of a key (flushed from every node every few seconds).
pub async fn usage(
    cx: &Context<'_>,
    tenant: &TenantId,
    id: &KeyId,
    period: UsagePeriod,
) -> Result<Usage, ManageError> {
    let until = period.until.unwrap_or_else(|| cx.clock.now().and_utc());
    let since = period.since.unwrap_or(until - TimeDelta::hours(24));
    if since >= until {
        return Err(ManageError::invalid("since", "must be before until"));
    }
    if until - since > TimeDelta::days(31) {
        return Err(ManageError::invalid(
            "since",
            "the period may span at most 31 days",
        ));
    }
    let (tenant, id) = (tenant.clone(), id.clone());
    let (key, rows) = cx
        .store
        .run(move |conn| {
            let key = api_keys::find(conn, &tenant, id.as_str())?.ok_or_else(key_not_found)?;
            let rows = crate::store::usage::hourly(
                conn,
                &tenant,
                Some(&key.id),
                since.naive_utc(),
                until.naive_utc(),
            )?;
            Ok::<_, ManageError>((key, rows))
        })
        .await?;
    let mut totals = std::collections::BTreeMap::new();
    let mut hours: Vec<HourlyUsage> = Vec::new();
    for row in rows {
        *totals.entry(row.outcome.clone()).or_default() += row.count;
        let hour = utc(row.hour);
        match hours.last_mut() {
            Some(last) if last.hour == hour => {
                last.outcomes.insert(row.outcome, row.count);
            }
            _ => hours.push(HourlyUsage {
                hour,
                outcomes: [(row.outcome, row.count)].into_iter().collect(),
            }),
        }
    }
    Ok(Usage {
        key_id: KeyId::from_trusted(key.id),
        since,
        until,
        last_used_at: key.last_used_at.map(utc),
        totals,
        hours,
    })
}
