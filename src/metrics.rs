//! Prometheus metrics, served as text at `/metrics`: latchkey's own (`latchkey_*`) and the
//! process's (`process_*`: CPU, memory, open file descriptors, start time).

use std::time::Duration;

use prometheus::process_collector::ProcessCollector;
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

/// What a cache holds, as the `kind` label names it: API keys (looked up by verification and
/// the OAuth endpoints) or root keys (looked up to authenticate management calls), so each
/// has its own hit ratio.
#[derive(Clone, Copy, Debug)]
pub enum CacheKind {
    Key,
    RootKey,
}

impl CacheKind {
    const ALL: [Self; 2] = [Self::Key, Self::RootKey];

    fn label(self) -> &'static str {
        match self {
            Self::Key => "key",
            Self::RootKey => "root_key",
        }
    }
}

/// The `route` of a request that matched no route: never its raw path (ids and anything a
/// client typed would each become a series of their own).
pub const UNMATCHED_ROUTE: &str = "unmatched";

pub struct Metrics {
    registry: Registry,
    /// The process collector's: its `process_*` names take no `latchkey_` prefix.
    process: Registry,
    /// Verifications and their latency, per [`VerifyCode`] (indexed by `code as usize`): the
    /// series of `verifications_total` and `verify_duration_seconds`, resolved once, since a
    /// label lookup hashes and locks on every call.
    by_code: Vec<(IntCounter, Histogram)>,
    /// The series of `cache_lookups_total`, `[kind][tier][hit]`: per kind, L1 miss, L1 hit, L2
    /// miss, L2 hit.
    lookups: [[[IntCounter; 2]; 2]; 2],
    /// HTTP requests by method, route pattern and status, and their latency.
    http_requests: IntCounterVec,
    http_seconds: HistogramVec,
    /// Token requests at the token endpoint by outcome: `issued` or the OAuth error code.
    token_requests: IntCounterVec,
    /// Dashboard sign-ins by outcome.
    sign_ins: IntCounterVec,
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
                "Cache lookups by kind (key: verification and OAuth, root_key: management \
                 authentication), tier and result",
            ),
            &["kind", "tier", "result"],
        )
        .expect("valid metric");
        let http_requests = IntCounterVec::new(
            Opts::new(
                "http_requests_total",
                "HTTP requests by method, route pattern and status (verification is counted by \
                 verifications_total instead)",
            ),
            &["method", "route", "status"],
        )
        .expect("valid metric");
        let http_seconds = HistogramVec::new(
            HistogramOpts::new(
                "http_request_duration_seconds",
                "HTTP request latency inside the server by method, route pattern and status",
            )
            .buckets(vec![
                0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            ]),
            &["method", "route", "status"],
        )
        .expect("valid metric");
        let token_requests = IntCounterVec::new(
            Opts::new(
                "token_requests_total",
                "Token endpoint requests by outcome: issued, or the OAuth error code",
            ),
            &["outcome"],
        )
        .expect("valid metric");
        let sign_ins = IntCounterVec::new(
            Opts::new("sign_ins_total", "Dashboard sign-ins by outcome"),
            &["outcome"],
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
            Box::new(http_requests.clone()),
            Box::new(http_seconds.clone()),
            Box::new(token_requests.clone()),
            Box::new(sign_ins.clone()),
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
        let process = Registry::new();
        process
            .register(Box::new(ProcessCollector::for_self()))
            .expect("one process collector");
        // Known outcomes are exported from the start, at 0, so their rates exist before the
        // first one happens.
        token_requests.with_label_values(&["issued"]);
        for outcome in SignInOutcome::ALL {
            sign_ins.with_label_values(&[outcome.label()]);
        }
        let lookups = CacheKind::ALL.map(|kind| {
            let lookup =
                |tier, result| cache_lookups.with_label_values(&[kind.label(), tier, result]);
            [
                [lookup("l1", "miss"), lookup("l1", "hit")],
                [lookup("l2", "miss"), lookup("l2", "hit")],
            ]
        });
        Self {
            registry,
            process,
            by_code,
            lookups,
            http_requests,
            http_seconds,
            token_requests,
            sign_ins,
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

    pub fn cache_lookup(&self, kind: CacheKind, tier: Tier, hit: bool) {
        self.lookups[kind as usize][tier as usize][usize::from(hit)].inc();
    }

    /// Counts one HTTP request. `route` is the matched pattern or [`UNMATCHED_ROUTE`]; a method
    /// outside the standard ones is counted as `other`.
    pub fn http_request(&self, method: &str, route: &str, status: u16, took: Duration) {
        const METHODS: [&str; 7] = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"];
        let method = METHODS
            .into_iter()
            .find(|m| *m == method)
            .unwrap_or("other");
        let status = status.to_string();
        let labels = [method, route, status.as_str()];
        self.http_requests.with_label_values(&labels).inc();
        self.http_seconds
            .with_label_values(&labels)
            .observe(took.as_secs_f64());
    }

    /// Counts one token request: `issued`, or the OAuth error code it was refused with.
    pub fn token_request(&self, outcome: &'static str) {
        self.token_requests.with_label_values(&[outcome]).inc();
    }

    /// Counts one dashboard sign-in attempt.
    pub fn sign_in(&self, outcome: SignInOutcome) {
        self.sign_ins.with_label_values(&[outcome.label()]).inc();
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut families = self.registry.gather();
        families.extend(self.process.gather());
        let mut out = Vec::new();
        let _ = TextEncoder::new().encode(&families, &mut out);
        String::from_utf8(out).unwrap_or_default()
    }
}

/// How a dashboard sign-in ended.
#[derive(Clone, Copy, Debug)]
pub enum SignInOutcome {
    Success,
    /// Unknown e-mail or wrong password (one answer for both).
    Refused,
    Throttled,
    Error,
}

impl SignInOutcome {
    const ALL: [Self; 4] = [Self::Success, Self::Refused, Self::Throttled, Self::Error];

    fn label(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Refused => "refused",
            Self::Throttled => "throttled",
            Self::Error => "error",
        }
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
        metrics.cache_lookup(CacheKind::Key, Tier::L2, true);
        metrics.cache_lookup(CacheKind::RootKey, Tier::L1, false);
        metrics.http_request("BREW", "/v1/keys/{id}", 404, Duration::from_millis(2));
        let text = metrics.render();
        for line in [
            "latchkey_verifications_total{code=\"REVOKED\"} 2",
            "latchkey_verifications_total{code=\"VALID\"} 0",
            "latchkey_verify_duration_seconds_count{code=\"REVOKED\"} 2",
            "latchkey_verify_duration_seconds_bucket{code=\"REVOKED\",le=\"0.00005\"} 2",
            "latchkey_cache_lookups_total{kind=\"key\",result=\"hit\",tier=\"l2\"} 1",
            "latchkey_cache_lookups_total{kind=\"root_key\",result=\"miss\",tier=\"l1\"} 1",
            "latchkey_cache_lookups_total{kind=\"key\",result=\"miss\",tier=\"l1\"} 0",
            "latchkey_cache_lookups_total{kind=\"root_key\",result=\"hit\",tier=\"l2\"} 0",
            "latchkey_http_requests_total{method=\"other\",route=\"/v1/keys/{id}\",status=\"404\"} 1",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in\n{text}"
            );
        }
        assert!(
            text.contains("\n# TYPE process_cpu_seconds_total counter\n"),
            "the process's own metrics, unprefixed:\n{text}"
        );
    }
}
