//! Usage: verifications per hour by outcome over the last day, drawn as a server-rendered
//! SVG bar chart (no script), for the tenant and per key, with the busiest keys.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use chrono::{DurationRound, NaiveDateTime, TimeDelta};

use super::context::{Layout, Member};
use super::{PageError, render};
use crate::domain::ids::{KeyId, TenantId};
use crate::routes::state::AppState;
use crate::store::{StoreError, api_keys, usage};

const HOURS: i64 = 24;
/// Chart geometry, in SVG user units.
const WIDTH: f64 = 720.0;
const HEIGHT: f64 = 200.0;
const LEFT: f64 = 44.0;
const BOTTOM: f64 = 24.0;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/usage", web::get().to(page));
}

/// How outcomes are grouped in the chart (the table below lists each one).
fn series_of(outcome: &str) -> usize {
    match outcome {
        "VALID" => 0,
        "RATE_LIMITED" | "USAGE_EXCEEDED" => 1,
        _ => 2,
    }
}

pub const SERIES: [(&str, &str); 3] = [
    ("Valid", "bar-valid"),
    ("Limited", "bar-limited"),
    ("Refused", "bar-refused"),
];

pub struct Segment {
    pub y: f64,
    pub height: f64,
    pub class: &'static str,
}

pub struct Bar {
    pub x: f64,
    pub width: f64,
    /// Tooltip: the hour and its counts.
    pub title: String,
    pub segments: Vec<Segment>,
}

pub struct Tick {
    pub y: f64,
    pub label: String,
}

pub struct HourLabel {
    pub x: f64,
    pub label: String,
}

/// A chart ready for the `_chart.html` template.
pub struct Chart {
    pub bars: Vec<Bar>,
    pub ticks: Vec<Tick>,
    pub hours: Vec<HourLabel>,
    /// `(outcome, total)` over the whole window, most first.
    pub outcomes: Vec<(String, i64)>,
    pub total: i64,
    pub width: f64,
    pub height: f64,
    pub baseline: f64,
    pub left: f64,
}

impl Chart {
    pub fn series(&self) -> &'static [(&'static str, &'static str)] {
        &SERIES
    }

    /// Draws counts `(hour, outcome, count)` for the `HOURS` hours ending with `end_hour`.
    pub fn draw(rows: &[(NaiveDateTime, String, i64)], end_hour: NaiveDateTime) -> Chart {
        let start = end_hour - TimeDelta::hours(HOURS - 1);
        let mut per_hour = vec![[0i64; 3]; HOURS as usize];
        let mut outcomes: Vec<(String, i64)> = Vec::new();
        for (hour, outcome, count) in rows {
            let index = (*hour - start).num_hours();
            if !(0..HOURS).contains(&index) {
                continue;
            }
            per_hour[index as usize][series_of(outcome)] += count;
            match outcomes.iter_mut().find(|(o, _)| o == outcome) {
                Some((_, total)) => *total += count,
                None => outcomes.push((outcome.clone(), *count)),
            }
        }
        outcomes.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        let peak = per_hour
            .iter()
            .map(|h| h.iter().sum::<i64>())
            .max()
            .unwrap_or(0);
        let scale_max = nice_ceiling(peak.max(1));
        let plot_height = HEIGHT - BOTTOM - 8.0;
        let baseline = HEIGHT - BOTTOM;
        let slot = (WIDTH - LEFT) / HOURS as f64;
        let bars = per_hour
            .iter()
            .enumerate()
            .map(|(i, counts)| {
                let hour = start + TimeDelta::hours(i as i64);
                let mut y = baseline;
                let segments = counts
                    .iter()
                    .zip(SERIES)
                    .filter(|(count, _)| **count > 0)
                    .map(|(count, (_, class))| {
                        let height = *count as f64 / scale_max as f64 * plot_height;
                        y -= height;
                        Segment { y, height, class }
                    })
                    .collect();
                Bar {
                    x: LEFT + i as f64 * slot + 2.0,
                    width: slot - 4.0,
                    title: format!(
                        "{}: {} valid, {} limited, {} refused",
                        hour.format("%H:00"),
                        counts[0],
                        counts[1],
                        counts[2]
                    ),
                    segments,
                }
            })
            .collect();
        // Steps that divide the round maximum evenly, so every label is a whole number.
        let steps = if scale_max % 4 == 0 && scale_max >= 4 {
            4
        } else if scale_max % 5 == 0 {
            5
        } else {
            scale_max
        };
        let ticks = (0..=steps)
            .map(|i| Tick {
                y: baseline - plot_height * i as f64 / steps as f64,
                label: (scale_max * i / steps).to_string(),
            })
            .collect();
        let hours = (0..HOURS)
            .step_by(6)
            .map(|i| HourLabel {
                x: LEFT + i as f64 * slot + slot / 2.0,
                label: (start + TimeDelta::hours(i)).format("%H:00").to_string(),
            })
            .collect();
        Chart {
            bars,
            ticks,
            hours,
            total: outcomes.iter().map(|(_, n)| n).sum(),
            outcomes,
            width: WIDTH,
            height: HEIGHT,
            baseline,
            left: LEFT,
        }
    }
}

/// The smallest 1, 2 or 5 × 10ⁿ at or above `n`, so axis labels are round.
fn nice_ceiling(n: i64) -> i64 {
    let mut base = 1;
    loop {
        for step in [1, 2, 5] {
            if step * base >= n {
                return step * base;
            }
        }
        base *= 10;
    }
}

/// The start of the hour `at` is in.
fn hour_of(at: NaiveDateTime) -> NaiveDateTime {
    at.duration_trunc(TimeDelta::hours(1)).unwrap_or(at)
}

/// The tenant's chart: every key's rollups, summed per hour and outcome.
async fn tenant_chart(state: &AppState, tenant: &TenantId) -> Result<Chart, PageError> {
    let end = hour_of(state.clock.now());
    let since = end - TimeDelta::hours(HOURS - 1);
    let until = end + TimeDelta::hours(1);
    let tenant = tenant.clone();
    let rows = state
        .store
        .run(move |conn| usage::hourly(conn, &tenant, None, since, until))
        .await?;
    let rows: Vec<_> = rows
        .into_iter()
        .map(|r| (r.hour, r.outcome, r.count))
        .collect();
    Ok(Chart::draw(&rows, end))
}

/// One key's chart, from the same service the REST API's `/v1/keys/{id}/usage` uses.
pub async fn key_chart(
    state: &AppState,
    tenant: &TenantId,
    key_id: &KeyId,
) -> Result<Chart, PageError> {
    let end = hour_of(state.clock.now());
    let period = crate::manage::keys::UsagePeriod {
        since: Some((end - TimeDelta::hours(HOURS - 1)).and_utc()),
        until: Some((end + TimeDelta::hours(1)).and_utc()),
    };
    let found = crate::manage::keys::usage(&state.manage(), tenant, key_id, period).await?;
    let rows: Vec<_> = found
        .hours
        .into_iter()
        .flat_map(|h| {
            let hour = h.hour.naive_utc();
            h.outcomes
                .into_iter()
                .map(move |(outcome, count)| (hour, outcome, count))
        })
        .collect();
    Ok(Chart::draw(&rows, end))
}

pub struct TopKey {
    pub id: String,
    pub name: String,
    pub start: String,
    pub count: i64,
}

#[derive(Template)]
#[template(path = "usage.html")]
struct UsagePage {
    layout: Layout,
    chart: Chart,
    top: Vec<TopKey>,
}

async fn page(member: Member, state: web::Data<AppState>) -> Result<HttpResponse, PageError> {
    let tenant = member.tenant_id().clone();
    let chart = tenant_chart(&state, &tenant).await?;
    let since = hour_of(state.clock.now()) - TimeDelta::hours(HOURS - 1);
    let top = state
        .store
        .run(move |conn| -> Result<Vec<TopKey>, StoreError> {
            let mut top = Vec::new();
            for (id, count) in usage::top_keys(conn, &tenant, since, 10)? {
                let key = api_keys::find(conn, &tenant, &id)?;
                top.push(TopKey {
                    name: key
                        .as_ref()
                        .and_then(|k| k.name.clone())
                        .unwrap_or_else(|| "(unnamed)".into()),
                    start: key.map(|k| format!("{}…", k.start)).unwrap_or_default(),
                    id,
                    count,
                });
            }
            Ok(top)
        })
        .await?;
    Ok(render(
        StatusCode::OK,
        &UsagePage {
            layout: member.layout("usage"),
            chart,
            top,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_stacked_bars_on_a_round_scale() {
        let end =
            NaiveDateTime::parse_from_str("2026-11-23 12:00:00", "%Y-%m-%d %H:%M:%S").unwrap();
        let rows = vec![
            (end, "VALID".to_owned(), 30),
            (end, "REVOKED".to_owned(), 10),
            (end - TimeDelta::hours(1), "RATE_LIMITED".to_owned(), 5),
            (end - TimeDelta::hours(48), "VALID".to_owned(), 1000),
        ];
        let chart = Chart::draw(&rows, end);
        assert_eq!(chart.bars.len(), 24);
        assert_eq!(chart.total, 45, "rows outside the window are left out");
        assert_eq!(chart.ticks.last().unwrap().label, "50");
        let last = chart.bars.last().unwrap();
        assert_eq!(last.segments.len(), 2);
        assert!(last.title.contains("30 valid") && last.title.contains("10 refused"));
        assert_eq!(chart.outcomes[0], ("VALID".to_owned(), 30));
        assert_eq!(nice_ceiling(1), 1);
        assert_eq!(nice_ceiling(3), 5);
        assert_eq!(nice_ceiling(101), 200);
    }
}
