//! What operators and their tools ask every cat2 service: `/metrics` (Prometheus) and
//! `/healthz`.
//!
//! Each service builds one [`Ops`] with an explicit registry (no global state: tests run
//! several services in one process), registers its own metrics in it, and says what
//! "healthy" means for it beyond a live NATS connection. [`router`] serves both endpoints;
//! services merge it into their HTTP API or serve it alone.
//!
//! - `/metrics`: OpenMetrics text for clients that ask for it (`Accept:
//!   application/openmetrics-text`, as Prometheus does), the classic text format
//!   (`text/plain; version=0.0.4`, which older tools and `promtool check metrics` read)
//!   otherwise. Besides the service's own metrics: the NATS connection (state, reconnects,
//!   bytes and messages each way) and the process (resident memory, CPU seconds, open file
//!   descriptors), read at scrape time.
//! - `/healthz`: `200 {"status":"ok"}` when NATS is connected and the service's own check
//!   passes, `503 {"status":"unavailable","detail":…}` otherwise.

mod process;
mod text;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

pub use prometheus_client;

/// The service's own health check: `Err(why)` when it cannot do its job.
pub type Check = Box<dyn Fn() -> Result<(), String> + Send + Sync>;

/// A service's metrics registry and health check.
pub struct Ops {
    registry: Registry,
    nats: Option<async_nats::Client>,
    check: Check,
    conn: ConnMetrics,
    process: process::Metrics,
    on_scrape: Vec<Box<dyn Fn() + Send + Sync>>,
}

impl std::fmt::Debug for Ops {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ops").finish_non_exhaustive()
    }
}

/// The NATS connection, as counters that follow the client's own statistics.
#[derive(Default)]
struct ConnMetrics {
    connected: Gauge,
    reconnects: Synced,
    in_bytes: Synced,
    out_bytes: Synced,
    in_messages: Synced,
    out_messages: Synced,
}

/// A counter that follows an absolute value read elsewhere (it only ever adds the growth).
#[derive(Default)]
struct Synced {
    counter: Counter,
    seen: AtomicU64,
}

impl Synced {
    fn follow(&self, now: u64) {
        let before = self.seen.swap(now, Ordering::Relaxed);
        self.counter.inc_by(now.saturating_sub(before));
    }
}

impl Ops {
    /// A registry for `service` (`cat2bro`, `cat2pub`, `cat2sub`) on `nats` (`None` where
    /// there is no connection to watch, as in tests of a service's core), healthy when
    /// connected and when `check` passes.
    pub fn new(nats: Option<async_nats::Client>, check: Check) -> Self {
        let mut registry = Registry::default();
        let conn = ConnMetrics::default();
        let r = registry.sub_registry_with_prefix("cat2_nats");
        r.register(
            "connected",
            "1 when the NATS connection is up",
            conn.connected.clone(),
        );
        for (name, help, m) in [
            (
                "connects",
                "NATS connections made (1 + reconnections)",
                &conn.reconnects,
            ),
            ("in_bytes", "bytes received from NATS", &conn.in_bytes),
            ("out_bytes", "bytes sent to NATS", &conn.out_bytes),
            (
                "in_messages",
                "messages received from NATS",
                &conn.in_messages,
            ),
            ("out_messages", "messages sent to NATS", &conn.out_messages),
        ] {
            r.register(name, help, m.counter.clone());
        }
        let process = process::Metrics::register(&mut registry);
        Self {
            registry,
            nats,
            check,
            conn,
            process,
            on_scrape: Vec::new(),
        }
    }

    /// Runs `f` before every scrape: where gauges read from the service's state are set.
    pub fn on_scrape(&mut self, f: impl Fn() + Send + Sync + 'static) {
        self.on_scrape.push(Box::new(f));
    }

    /// Where the service registers its own metrics (under its own prefix, by
    /// `sub_registry_with_prefix`).
    pub fn registry(&mut self) -> &mut Registry {
        &mut self.registry
    }

    /// Whether the service is healthy now, and why not.
    pub fn health(&self) -> Result<(), String> {
        if let Some(n) = &self.nats
            && n.connection_state() != async_nats::connection::State::Connected
        {
            return Err("not connected to NATS".to_owned());
        }
        (self.check)()
    }

    /// The metrics now, as OpenMetrics text.
    pub fn encode(&self) -> String {
        if let Some(n) = &self.nats {
            let up = n.connection_state() == async_nats::connection::State::Connected;
            self.conn.connected.set(i64::from(up));
            let s = n.statistics();
            self.conn
                .reconnects
                .follow(s.connects.load(Ordering::Relaxed));
            self.conn
                .in_bytes
                .follow(s.in_bytes.load(Ordering::Relaxed));
            self.conn
                .out_bytes
                .follow(s.out_bytes.load(Ordering::Relaxed));
            self.conn
                .in_messages
                .follow(s.in_messages.load(Ordering::Relaxed));
            self.conn
                .out_messages
                .follow(s.out_messages.load(Ordering::Relaxed));
        }
        self.process.update();
        for f in &self.on_scrape {
            f();
        }
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// `/metrics` and `/healthz` for `ops`.
pub fn router(ops: Arc<Ops>) -> axum::Router {
    let m = ops.clone();
    axum::Router::new()
        .route("/metrics", get(move |h: HeaderMap| metrics(m.clone(), h)))
        .route("/healthz", get(move || healthz(ops.clone())))
}

async fn metrics(ops: Arc<Ops>, headers: HeaderMap) -> Response {
    let openmetrics = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("application/openmetrics-text"));
    // Scrape hooks read /proc and state directories: off the async workers.
    let body = tokio::task::spawn_blocking(move || ops.encode())
        .await
        .unwrap_or_default();
    if openmetrics {
        let ct = "application/openmetrics-text; version=1.0.0; charset=utf-8";
        ([(header::CONTENT_TYPE, ct)], body).into_response()
    } else {
        let ct = "text/plain; version=0.0.4; charset=utf-8";
        ([(header::CONTENT_TYPE, ct)], text::classic(&body)).into_response()
    }
}

async fn healthz(ops: Arc<Ops>) -> Response {
    match ops.health() {
        Ok(()) => (StatusCode::OK, axum::Json(Health::ok())).into_response(),
        Err(detail) => (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(Health::unavailable(detail)),
        )
            .into_response(),
    }
}

/// The `/healthz` reply.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Health {
    /// `ok` or `unavailable`.
    pub status: String,
    /// Why not healthy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl Health {
    fn ok() -> Self {
        Self {
            status: "ok".into(),
            detail: None,
        }
    }

    fn unavailable(detail: String) -> Self {
        Self {
            status: "unavailable".into(),
            detail: Some(detail),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::Request;
    use std::sync::atomic::AtomicBool;
    use tower::ServiceExt;

    async fn get(
        app: &axum::Router,
        uri: &str,
        accept: Option<&str>,
    ) -> (StatusCode, String, String) {
        let mut req = Request::builder().uri(uri);
        if let Some(a) = accept {
            req = req.header(header::ACCEPT, a);
        }
        let resp = app
            .clone()
            .oneshot(req.body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = resp.status();
        let ct = resp.headers()[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .to_owned();
        let body = axum::body::to_bytes(resp.into_body(), usize::MAX)
            .await
            .unwrap();
        (status, ct, String::from_utf8(body.to_vec()).unwrap())
    }

    #[tokio::test]
    async fn metrics_in_both_formats_and_health() {
        let sick = Arc::new(AtomicBool::new(false));
        let s = sick.clone();
        let mut ops = Ops::new(
            None,
            Box::new(move || {
                if s.load(Ordering::Relaxed) {
                    Err("the broker does not answer".into())
                } else {
                    Ok(())
                }
            }),
        );
        let served: Counter = Counter::default();
        ops.registry()
            .sub_registry_with_prefix("cat2_sub")
            .register("chunks_fetched", "chunks fetched", served.clone());
        served.inc_by(3);
        let app = router(Arc::new(ops));

        let (status, ct, body) = get(&app, "/metrics", None).await;
        assert_eq!(status, StatusCode::OK);
        assert!(ct.starts_with("text/plain; version=0.0.4"), "{ct}");
        assert!(
            body.contains("# TYPE cat2_sub_chunks_fetched_total counter\n"),
            "{body}"
        );
        assert!(body.contains("cat2_sub_chunks_fetched_total 3\n"), "{body}");
        assert!(body.contains("process_resident_memory_bytes "), "{body}");
        assert!(!body.contains("# EOF"), "{body}");
        let (_, ct, body) = get(&app, "/metrics", Some("application/openmetrics-text")).await;
        assert!(ct.starts_with("application/openmetrics-text"), "{ct}");
        assert!(body.ends_with("# EOF\n"), "{body}");

        assert_eq!(get(&app, "/healthz", None).await.0, StatusCode::OK);
        sick.store(true, Ordering::Relaxed);
        let (status, _, body) = get(&app, "/healthz", None).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(body.contains("the broker does not answer"), "{body}");
    }
}
