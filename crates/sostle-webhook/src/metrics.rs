//! The Prometheus metrics the webhook exports (`GET /metrics`).

use std::sync::Arc;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct RequestLabels {
    pub(crate) layer: &'static str,
    pub(crate) operation: &'static str,
    pub(crate) verdict: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct ResultLabels {
    result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct KindLabels {
    kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct LoopLabels {
    event_loop: u64,
}

/// Prometheus metrics.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    pub(crate) requests: Family<RequestLabels, Counter>,
    pub(crate) latency: Histogram,
    pub(crate) reloads: Family<ResultLabels, Counter>,
    pub(crate) errors: Family<KindLabels, Counter>,
    pub(crate) profiles: Gauge,
    pub(crate) connections: Family<LoopLabels, Counter>,
    /// What image signature checks do (shared with the checker).
    pub images: Arc<ImageMetrics>,
}

/// Metrics of image signature checks: cache results, registry latency and failures, verdicts.
#[derive(Debug)]
pub struct ImageMetrics {
    cache: Family<ResultLabels, Counter>,
    registry: Histogram,
    registry_errors: Counter,
    verdicts: Family<ResultLabels, Counter>,
}

impl sostle_sign::checker::Observe for ImageMetrics {
    fn cache(&self, result: &'static str) {
        self.cache
            .get_or_create(&ResultLabels {
                result: result.into(),
            })
            .inc();
    }

    fn registry(&self, seconds: f64, ok: bool) {
        self.registry.observe(seconds);
        if !ok {
            self.registry_errors.inc();
        }
    }

    fn verdict(&self, result: &'static str) {
        self.verdicts
            .get_or_create(&ResultLabels {
                result: result.into(),
            })
            .inc();
    }
}

impl Metrics {
    pub(crate) fn new() -> Metrics {
        let mut registry = Registry::with_prefix("sostle_webhook");
        let requests = Family::<RequestLabels, Counter>::default();
        let latency = Histogram::new([
            0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0,
        ]);
        let reloads = Family::<ResultLabels, Counter>::default();
        let errors = Family::<KindLabels, Counter>::default();
        let profiles = Gauge::default();
        let connections = Family::<LoopLabels, Counter>::default();
        registry.register(
            "connections",
            "Connections accepted, by the event loop that serves them",
            connections.clone(),
        );
        registry.register(
            "requests",
            "Admission requests by layer, operation and verdict",
            requests.clone(),
        );
        registry.register(
            "request_duration_seconds",
            "Time to answer an admission request",
            latency.clone(),
        );
        registry.register(
            "reloads",
            "Config/profile/certificate reloads by result",
            reloads.clone(),
        );
        registry.register("errors", "Errors by kind", errors.clone());
        let images = Arc::new(ImageMetrics {
            cache: Family::default(),
            registry: Histogram::new([
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
            ]),
            registry_errors: Counter::default(),
            verdicts: Family::default(),
        });
        registry.register(
            "image_cache",
            "Image signature verdicts by cache result (hit, miss, stale: served during an outage)",
            images.cache.clone(),
        );
        registry.register(
            "registry_request_duration_seconds",
            "Time of registry calls made to check image signatures",
            images.registry.clone(),
        );
        registry.register(
            "registry_errors",
            "Registry calls that failed",
            images.registry_errors.clone(),
        );
        registry.register(
            "image_verifications",
            "Image signature checks by result (verified, unsigned, unavailable)",
            images.verdicts.clone(),
        );
        registry.register(
            "profiles_loaded",
            "Verified MECIPOL profiles in use",
            profiles.clone(),
        );
        Metrics {
            registry,
            requests,
            latency,
            reloads,
            errors,
            profiles,
            connections,
            images,
        }
    }

    /// Counts a connection handed to event loop `event_loop`.
    pub fn connection(&self, event_loop: usize) {
        self.connections
            .get_or_create(&LoopLabels {
                event_loop: event_loop as u64,
            })
            .inc();
    }

    /// Counts an error of `kind`.
    pub fn error(&self, kind: &str) {
        self.errors
            .get_or_create(&KindLabels { kind: kind.into() })
            .inc();
    }

    /// Counts a reload with `result` (`ok`, `error`, `certificate`).
    pub fn reload(&self, result: &str) {
        self.reloads
            .get_or_create(&ResultLabels {
                result: result.into(),
            })
            .inc();
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}
