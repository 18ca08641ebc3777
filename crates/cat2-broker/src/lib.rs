//! The cat2 broker: the registry of roots, served on NATS.
//!
//! Publishers register their root on `cat2.v1.broker.register.<root>` and repeat it as a heartbeat;
//! anyone asks `cat2.v1.broker.roots` for the list; root announcements (a new root, a root
//! back online, a root whose publishers all went silent) go out on `cat2.v1.broker.events`
//! (subjects and messages: `cat2-proto`). Offline roots are shown, not forgotten, and the
//! registry survives restarts (`STATEDIR/db.json`, Caterva2's format). The broker is a NATS
//! micro service (`cat2-broker`), so `$SRV.PING/INFO/STATS` find it.
//!
//! An optional HTTP listener serves Caterva2's broker route `GET /api/roots` (spec §2.1) for
//! health checks and old tools.
//!
//! # Layout
//! - `registry`: the state and its persistence.
//! - this file: [`run`], the NATS endpoints and the HTTP route.

mod registry;

use std::future::Future;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_nats::service::ServiceExt;
use axum::extract::State;
use axum::routing::get;
use cat2_client::service_error;
use cat2_proto::msg::{Register, RootEvent};
use cat2_proto::{ErrorCode, msg, subject};
use futures::StreamExt;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use tokio_util::sync::CancellationToken;

use registry::Registry;

/// Longest each shutdown step may take (the whole stop stays under 2 s).
const SHUTDOWN_STEP: std::time::Duration = std::time::Duration::from_millis(400);

/// Broker settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where the registry is kept.
    pub statedir: PathBuf,
    /// How often publishers heartbeat; a root is offline after 3.5 missed heartbeats.
    pub heartbeat: Duration,
    /// Roots whose publishers are gone for longer than this are removed (`None`: kept).
    pub forget_after: Option<Duration>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            statedir: PathBuf::from("_caterva2/bro"),
            heartbeat: Duration::from_secs(1),
            forget_after: Some(Duration::from_secs(7 * 24 * 3600)),
        }
    }
}

/// What stops the broker.
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    /// The state directory cannot be used.
    #[error("state directory {path}: {source}")]
    State {
        /// The directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The NATS service cannot start.
    #[error("nats service: {0}")]
    Nats(String),
}

/// Runs the broker until `shutdown` resolves.
///
/// # Errors
/// [`BrokerError`] when the state directory or the NATS service cannot be set up.
pub async fn run(
    cfg: Config,
    nats: async_nats::Client,
    http: Option<tokio::net::TcpListener>,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), BrokerError> {
    let registry = Registry::load(&cfg.statedir).map_err(|source| BrokerError::State {
        path: cfg.statedir.clone(),
        source,
    })?;
    let registry = Arc::new(Mutex::new(registry));
    let nats_err = |e: async_nats::Error| BrokerError::Nats(e.to_string());
    let service = nats
        .service_builder()
        .description("cat2 broker: the registry of roots")
        .start(subject::service::BROKER, env!("CARGO_PKG_VERSION"))
        .await
        .map_err(nats_err)?;
    // Every broker must hear every heartbeat (in one shared queue group, two brokers would
    // each get half of them and see roots go silent): registrations come in a queue group of
    // this instance alone, the registry's reads in the shared one (any broker answers).
    let mut register = service
        .endpoint_builder()
        .queue_group(instance_group())
        .add(subject::broker_register_any())
        .await
        .map_err(nats_err)?;
    let mut roots = service
        .endpoint(subject::broker_roots())
        .await
        .map_err(nats_err)?;

    let registrations: Counter = Counter::default();
    let (online, offline): (Gauge, Gauge) = (Gauge::default(), Gauge::default());
    let mut ops = cat2_ops::Ops::new(Some(nats.clone()), Box::new(|| Ok(())));
    let r = ops.registry().sub_registry_with_prefix("cat2_bro");
    r.register(
        "registrations",
        "registrations and heartbeats received",
        registrations.clone(),
    );
    r.register(
        "roots_online",
        "roots with a live publisher",
        online.clone(),
    );
    r.register(
        "roots_offline",
        "roots whose publishers went silent",
        offline.clone(),
    );
    let reg = registry.clone();
    ops.on_scrape(move || {
        let roots = reg.lock().expect("registry lock").list();
        let up = roots.iter().filter(|r| r.online).count();
        online.set(i64::try_from(up).unwrap_or(i64::MAX));
        offline.set(i64::try_from(roots.len() - up).unwrap_or(i64::MAX));
    });
    let ops = Arc::new(ops);
    let stop = CancellationToken::new();
    let http_task = http.map(|listener| {
        let app = axum::Router::new()
            .route("/api/roots", get(http_roots))
            .with_state(registry.clone())
            .merge(cat2_ops::router(ops));
        let stop = stop.clone();
        tokio::spawn(async move {
            let served = axum::serve(listener, app)
                .with_graceful_shutdown(stop.cancelled_owned())
                .await;
            if let Err(e) = served {
                tracing::error!(error = %e, "http server failed");
            }
        })
    });

    let ttl = cfg.heartbeat.mul_f32(3.5);
    let mut tick = tokio::time::interval(cfg.heartbeat);
    tokio::pin!(shutdown);
    tracing::info!(statedir = %cfg.statedir.display(), "broker running");
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            Some(req) = register.next() => {
                registrations.inc();
                let reply = match cat2_proto::decode::<Register>("register", &req.message.payload) {
                    Err(e) => Err(service_error(ErrorCode::BadRequest, &e.to_string())),
                    Ok(reg) if reg.http.as_ref().is_some_and(|h| h.len() > msg::MAX_HTTP_LEN || h.contains(char::is_whitespace))
                        || reg.publisher.is_empty() || reg.publisher.len() > msg::MAX_PUBLISHER_LEN => {
                        Err(service_error(ErrorCode::BadRequest, &format!(
                            "a registration's http address must be at most {} bytes without spaces, its publisher id 1 to {} bytes",
                            msg::MAX_HTTP_LEN, msg::MAX_PUBLISHER_LEN
                        )))
                    }
                    Ok(reg) if subject::registered_root(&req.message.subject) != Some(reg.root.as_str()) => {
                        // With NATS permissions, the subject says which root the sender may
                        // register; the body must not claim another.
                        tracing::warn!(root = %reg.root, subject = %req.message.subject, "registration refused: root and subject differ");
                        Err(service_error(ErrorCode::BadRequest, &format!(
                            "a registration of root {} on {}: register on {}",
                            reg.root, req.message.subject, subject::broker_register(&reg.root)
                        )))
                    }
                    Ok(reg) => {
                        let event = registry.lock().expect("registry lock").register(&reg, Instant::now());
                        if let Some(root) = event {
                            tracing::info!(root = %root.name, online = root.online, "root announced");
                            announce(&nats, root).await;
                        }
                        let heartbeat_ms = cfg.heartbeat.as_millis() as u64;
                        Ok(cat2_proto::encode(&msg::Registered { heartbeat_ms }).into())
                    }
                };
                if let Err(e) = req.respond(reply).await {
                    tracing::warn!(error = %e, "cannot answer a registration");
                }
            }
            Some(req) = roots.next() => {
                // An empty request asks for the first page (as clients before paging did).
                let page = if req.message.payload.is_empty() {
                    Ok(msg::RootsPage::default())
                } else {
                    cat2_proto::decode::<msg::RootsPage>("roots page", &req.message.payload)
                };
                let reply = page
                    .map(|p| cat2_proto::encode(&registry.lock().expect("registry lock").page(p.after.as_ref())).into())
                    .map_err(|e| service_error(ErrorCode::BadRequest, &e.to_string()));
                if let Err(e) = req.respond(reply).await {
                    tracing::warn!(error = %e, "cannot answer a roots request");
                }
            }
            _ = tick.tick() => {
                let offline = registry.lock().expect("registry lock").expire(Instant::now(), ttl, cfg.forget_after);
                for root in offline {
                    tracing::warn!(root = %root.name, "root offline: its publishers went silent");
                    announce(&nats, root).await;
                }
            }
        }
    }
    stop.cancel();
    // Bounded: with NATS down these would wait for a reconnection that may never come.
    let _ = tokio::time::timeout(SHUTDOWN_STEP, service.stop()).await;
    if let Some(t) = http_task {
        let _ = tokio::time::timeout(SHUTDOWN_STEP * 2, t).await;
    }
    let _ = tokio::time::timeout(SHUTDOWN_STEP, nats.flush()).await;
    tracing::info!("broker stopped");
    Ok(())
}

/// A queue group no other broker uses.
fn instance_group() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("cat2-broker-{}-{nanos}", std::process::id())
}

async fn announce(nats: &async_nats::Client, root: msg::RootEntry) {
    let event = cat2_proto::encode(&RootEvent { root });
    if let Err(e) = nats.publish(subject::broker_events(), event.into()).await {
        tracing::warn!(error = %e, "cannot announce a root");
    }
}

/// `GET /api/roots`: Caterva2's broker listing, `{name: {"name", "http"}}`.
async fn http_roots(State(registry): State<Arc<Mutex<Registry>>>) -> axum::Json<serde_json::Value> {
    let roots = registry.lock().expect("registry lock").list();
    let map: serde_json::Map<String, serde_json::Value> = roots
        .into_iter()
        .map(|r| {
            (
                r.name.to_string(),
                serde_json::json!({"name": r.name, "http": r.http.unwrap_or_default()}),
            )
        })
        .collect();
    axum::Json(serde_json::Value::Object(map))
}
