//! The publisher's own metrics (registered in its service's [`cat2_ops::Ops`]).

use std::sync::Arc;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;

use crate::limits::Limits;

/// Which endpoint a request came to.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct Endpoint {
    pub(crate) endpoint: &'static str,
}

/// What the publisher counts.
#[derive(Debug, Default)]
pub(crate) struct Metrics {
    /// Requests, by endpoint.
    pub(crate) requests: Family<Endpoint, Counter>,
    /// Datasets served (set at scrape time).
    pub(crate) datasets: Gauge,
    /// Requests being served (set at scrape time).
    pub(crate) serving: Gauge,
}

impl Metrics {
    pub(crate) fn request(&self, endpoint: &'static str) {
        self.requests.get_or_create(&Endpoint { endpoint }).inc();
    }

    /// Registers these and the bounds' refusals in `ops`.
    pub(crate) fn register(
        self: &Arc<Self>,
        ops: &mut cat2_ops::Ops,
        limits: &Arc<Limits>,
        max_requests: usize,
        datasets: Arc<crate::state::Datasets>,
    ) {
        let r = ops.registry().sub_registry_with_prefix("cat2_pub");
        r.register("requests", "requests, by endpoint", self.requests.clone());
        r.register(
            "busy",
            "requests told busy (at the request or send-buffer bound)",
            limits.refused.clone(),
        );
        r.register("datasets", "datasets served", self.datasets.clone());
        r.register(
            "requests_in_flight",
            "requests being served",
            self.serving.clone(),
        );
        let (m, l) = (self.clone(), limits.clone());
        ops.on_scrape(move || {
            m.datasets
                .set(i64::try_from(datasets.list().len()).unwrap_or(i64::MAX));
            m.serving
                .set(i64::try_from(l.busy_slots(max_requests)).unwrap_or(i64::MAX));
        });
    }
}
