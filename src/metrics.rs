//! Prometheus metrics, served as text at `/metrics`.

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, Opts, Registry, TextEncoder,
};

pub struct Metrics {
    registry: Registry,
    /// Verifications by outcome code.
    pub verifications: IntCounterVec,
    /// Time spent in the verification engine, by outcome code.
    pub verify_seconds: HistogramVec,
    /// Cache lookups by tier (`l1`, `l2`) and result (`hit`, `miss`).
    pub cache_lookups: IntCounterVec,
    /// Store lookups made because no cache tier answered.
    pub store_lookups: IntCounter,
    pub redis_errors: IntCounter,
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
            Box::new(invalidations_received.clone()),
        ] {
            registry
                .register(collector)
                .expect("metric names are unique");
        }
        Self {
            registry,
            verifications,
            verify_seconds,
            cache_lookups,
            store_lookups,
            redis_errors,
            invalidations_received,
        }
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
