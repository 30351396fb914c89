//! Prometheus metrics, served as text at `/metrics`.

use std::time::Duration;

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts,
    Registry, TextEncoder,
};

use crate::domain::verify_code::VerifyCode;

/// A cache tier, as the `tier` label names it.
#[derive(Clone, Copy, Debug)]
pub enum Tier {
    L1,
    L2,
}

pub struct Metrics {
    registry: Registry,
    /// Verifications and their latency, per [`VerifyCode`] (indexed by `code as usize`): the
    /// series of `verifications_total` and `verify_duration_seconds`, resolved once, since a
    /// label lookup hashes and locks on every call.
    by_code: Vec<(IntCounter, Histogram)>,
    /// The series of `cache_lookups_total`, `[tier][hit]`: L1 miss, L1 hit, L2 miss, L2 hit.
    lookups: [[IntCounter; 2]; 2],
    /// Store lookups made because no cache tier answered.
    pub store_lookups: IntCounter,
    pub redis_errors: IntCounter,
    /// Store checkouts and probes that failed for want of a connection.
    pub store_errors: IntCounter,
    /// 1 while the store's breaker is open (the store is known to be down), else 0.
    pub store_breaker_open: IntGauge,
    /// Evictions received on the invalidation channel.
    pub invalidations_received: IntCounter,
}

impl Metrics {
    pub fn new() -> Self {
        let registry =
            Registry::new_custom(Some("latchkey".into()), None).expect("a valid metrics prefix");
        let verifications = IntCounterVec::new(
            Opts::new("verifications_total", "Key verifications by outcome code"),
            &["code"],
        )
        .expect("valid metric");
        let verify_seconds = HistogramVec::new(
            HistogramOpts::new(
                "verify_duration_seconds",
                "Verification latency inside the server",
            )
            .buckets(vec![
                0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01,
                0.025, 0.05, 0.1, 0.25,
            ]),
            &["code"],
        )
        .expect("valid metric");
        let cache_lookups = IntCounterVec::new(
            Opts::new(
                "cache_lookups_total",
                "Key cache lookups by tier and result",
            ),
            &["tier", "result"],
        )
        .expect("valid metric");
        let store_lookups =
            IntCounter::new("store_lookups_total", "Key lookups that reached the store")
                .expect("valid metric");
        let redis_errors =
            IntCounter::new("redis_errors_total", "Failed Redis calls").expect("valid metric");
        let store_errors = IntCounter::new(
            "store_errors_total",
            "Store checkouts and probes that found no working connection",
        )
        .expect("valid metric");
        let store_breaker_open = IntGauge::new(
            "store_breaker_open",
            "1 while the store is known to be down and requests do not wait on it",
        )
        .expect("valid metric");
        let invalidations_received = IntCounter::new(
            "invalidations_received_total",
            "Cache evictions received from other nodes",
        )
        .expect("valid metric");
        for collector in [
            Box::new(verifications.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(verify_seconds.clone()),
            Box::new(cache_lookups.clone()),
            Box::new(store_lookups.clone()),
            Box::new(redis_errors.clone()),
            Box::new(store_errors.clone()),
            Box::new(store_breaker_open.clone()),
            Box::new(invalidations_received.clone()),
        ] {
            registry
                .register(collector)
                .expect("metric names are unique");
        }
        let by_code = VerifyCode::ALL
            .iter()
            .map(|code| {
                (
                    verifications.with_label_values(&[code.as_str()]),
                    verify_seconds.with_label_values(&[code.as_str()]),
                )
            })
            .collect();
        let lookup = |tier, result| cache_lookups.with_label_values(&[tier, result]);
        Self {
            registry,
            by_code,
            lookups: [
                [lookup("l1", "miss"), lookup("l1", "hit")],
                [lookup("l2", "miss"), lookup("l2", "hit")],
            ],
            store_lookups,
            redis_errors,
            store_errors,
            store_breaker_open,
            invalidations_received,
        }
    }

    /// Counts one verification and how long the engine took.
    pub fn verification(&self, code: VerifyCode, took: Duration) {
        let (count, seconds) = &self.by_code[code as usize];
        count.inc();
        seconds.observe(took.as_secs_f64());
    }

    pub fn cache_lookup(&self, tier: Tier, hit: bool) {
        self.lookups[tier as usize][usize::from(hit)].inc();
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        String::from_utf8(out).unwrap_or_default()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_sits_at_its_own_index() {
        for (index, code) in VerifyCode::ALL.iter().enumerate() {
            assert_eq!(*code as usize, index, "{code:?}");
        }
    }

    #[test]
    fn the_resolved_series_count_under_their_labels() {
        let metrics = Metrics::new();
        metrics.verification(VerifyCode::Revoked, Duration::from_micros(30));
        metrics.verification(VerifyCode::Revoked, Duration::from_micros(30));
        metrics.cache_lookup(Tier::L2, true);
        metrics.cache_lookup(Tier::L1, false);
        let text = metrics.render();
        for line in [
            "latchkey_verifications_total{code=\"REVOKED\"} 2",
            "latchkey_verifications_total{code=\"VALID\"} 0",
            "latchkey_verify_duration_seconds_count{code=\"REVOKED\"} 2",
            "latchkey_verify_duration_seconds_bucket{code=\"REVOKED\",le=\"0.00005\"} 2",
            "latchkey_cache_lookups_total{result=\"hit\",tier=\"l2\"} 1",
            "latchkey_cache_lookups_total{result=\"miss\",tier=\"l1\"} 1",
            "latchkey_cache_lookups_total{result=\"hit\",tier=\"l1\"} 0",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in\n{text}"
            );
        }
    }
}
