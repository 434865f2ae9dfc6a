//! Prometheus metrics: every series notarium exports, their names, labels and buckets, and the text
//! rendering `GET /metrics` serves.
//!
//! Owns: the metrics registry. Must not touch: HTTP routing or domain logic; callers report into it, and
//! labels never carry secrets or unbounded values (routes are templates, keys are configured ids).

use std::sync::LazyLock;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HttpLabels {
    pub method: String,
    pub route: String,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    pub route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KeyLabels {
    pub key: String,
    pub backend: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WrittenLabels {
    pub key: String,
    /// `signature` or `attestation`.
    pub kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StateLabels {
    /// A sign-on-push job's state: `pending`, `running`, `signed` or `failed`.
    pub state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    pub outcome: String,
}

pub struct Metrics {
    registry: Registry,
    pub http_requests: Family<HttpLabels, Counter>,
    pub http_seconds: Family<RouteLabels, Histogram>,
    pub written: Family<WrittenLabels, Counter>,
    pub key_sign_seconds: Family<KeyLabels, Histogram>,
    pub key_errors: Family<KeyLabels, Counter>,
    pub registry_requests: Family<OutcomeLabels, Counter>,
    pub register_batches: Family<OutcomeLabels, Counter>,
    pub register_batch_seconds: Histogram,
    pub register_batch_entries: Histogram,
    pub register_size: Gauge,
    pub verify_decisions: Family<OutcomeLabels, Counter>,
    pub verify_cache: Family<OutcomeLabels, Counter>,
    pub sign_queue_jobs: Family<StateLabels, Gauge>,
    pub sign_queue_oldest_seconds: Gauge,
}

fn seconds() -> Histogram {
    Histogram::new(exponential_buckets(0.0005, 2.0, 16))
}

impl Metrics {
    fn new() -> Self {
        let mut registry = Registry::with_prefix("notarium");
        let http_requests = Family::default();
        registry.register("http_requests", "HTTP requests by method, route template and status", http_requests.clone());
        let http_seconds = Family::new_with_constructor(seconds as fn() -> Histogram);
        registry.register("http_request_duration_seconds", "HTTP request latency by route", http_seconds.clone());
        let written = Family::default();
        registry.register("written", "Signatures and attestations written to registries", written.clone());
        let key_sign_seconds = Family::new_with_constructor(seconds as fn() -> Histogram);
        registry.register("key_sign_duration_seconds", "Key backend sign latency", key_sign_seconds.clone());
        let key_errors = Family::default();
        registry.register("key_errors", "Key backend sign failures", key_errors.clone());
        let registry_requests = Family::default();
        registry.register("registry_writes", "Signature and attestation writes by outcome", registry_requests.clone());
        let register_batches = Family::default();
        registry.register("register_batches", "Register group commits by outcome", register_batches.clone());
        let register_batch_seconds = seconds();
        registry.register(
            "register_append_duration_seconds",
            "Time to make one batch of register entries durable",
            register_batch_seconds.clone(),
        );
        let register_batch_entries = Histogram::new(exponential_buckets(1.0, 2.0, 9));
        registry.register(
            "register_batch_entries",
            "Entries per register group commit",
            register_batch_entries.clone(),
        );
        let register_size = Gauge::default();
        registry.register("register_entries", "Entries in the register (tree size)", register_size.clone());
        let verify_decisions = Family::default();
        registry.register("verify_decisions", "Verification decisions by result", verify_decisions.clone());
        let verify_cache = Family::default();
        registry.register("verify_cache_lookups", "Decision cache lookups: hit or miss", verify_cache.clone());
        let sign_queue_jobs = Family::default();
        registry.register("sign_queue_jobs", "Sign-on-push jobs by state", sign_queue_jobs.clone());
        let sign_queue_oldest_seconds = Gauge::default();
        registry.register(
            "sign_queue_oldest_pending_seconds",
            "Age of the oldest sign-on-push job not yet signed or failed (0: none)",
            sign_queue_oldest_seconds.clone(),
        );
        Self {
            registry,
            sign_queue_jobs,
            sign_queue_oldest_seconds,
            verify_decisions,
            verify_cache,
            http_requests,
            http_seconds,
            written,
            key_sign_seconds,
            key_errors,
            registry_requests,
            register_batches,
            register_batch_seconds,
            register_batch_entries,
            register_size,
        }
    }

    /// The sign-on-push queue as the database counts it: jobs per state (every state reported, absent ones as
    /// 0) and the age in seconds of the oldest unfinished job.
    pub fn report_sign_queue(&self, depth: &[(String, i64)], oldest_age_secs: i64) {
        for state in ["pending", "running", "signed", "failed"] {
            let count = depth.iter().find(|(s, _)| s == state).map_or(0, |(_, n)| *n);
            self.sign_queue_jobs.get_or_create(&StateLabels { state: state.into() }).set(count);
        }
        self.sign_queue_oldest_seconds.set(oldest_age_secs);
    }

    /// The OpenMetrics text exposition of every series.
    pub fn render_openmetrics(&self) -> String {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry).expect("writing to a String");
        text
    }

    /// The classic Prometheus text format (0.0.4), which promtool and older scrapers parse: counters are
    /// named with their `_total` suffix in HELP and TYPE too, and there is no `# EOF`.
    pub fn render_prometheus(&self) -> String {
        to_prometheus_text(&self.render_openmetrics())
    }
}

/// The process's metrics.
pub fn metrics() -> &'static Metrics {
    static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);
    &METRICS
}

pub fn key_labels(key: &str, backend: &str) -> KeyLabels {
    KeyLabels { key: key.to_owned(), backend: backend.to_owned() }
}

fn to_prometheus_text(openmetrics: &str) -> String {
    let counters: Vec<&str> =
        openmetrics.lines().filter_map(|l| l.strip_prefix("# TYPE ")?.strip_suffix(" counter")).collect();
    let mut out = String::with_capacity(openmetrics.len());
    for line in openmetrics.lines().filter(|l| *l != "# EOF") {
        let renamed = counters.iter().find_map(|name| {
            ["# HELP ", "# TYPE "].iter().find_map(|prefix| {
                let rest = line.strip_prefix(prefix)?.strip_prefix(name)?.strip_prefix(' ')?;
                Some(format!("{prefix}{name}_total {rest}"))
            })
        });
        out.push_str(renamed.as_deref().unwrap_or(line));
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_carry_their_total_suffix_in_help_and_type_and_eof_goes() {
        let open = "# HELP a_x Things.\n# TYPE a_x counter\na_x_total{k=\"v\"} 1\n# HELP a_g G.\n# TYPE a_g gauge\na_g 2\n# EOF\n";
        let expected = "# HELP a_x_total Things.\n# TYPE a_x_total counter\na_x_total{k=\"v\"} 1\n# HELP a_g G.\n# TYPE a_g gauge\na_g 2\n";
        assert_eq!(to_prometheus_text(open), expected);
    }
}
