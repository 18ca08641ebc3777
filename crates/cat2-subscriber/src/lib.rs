//! The cat2 subscriber: follows roots, caches their chunks on demand, and serves Caterva2's
//! REST API (spec §2.3, §4) so Caterva2's clients work unchanged.
//!
//! It learns roots from the broker (`cat2.v1.broker.roots`, then live announcements), follows
//! the roots clients subscribe to (list and metadata from their publishers, then their change
//! notifications), and fetches only the chunks a request needs, several requests at a time,
//! each chunk once however many requests need it. The cache, `STATEDIR/cache/<root>/<path>`,
//! is made of Blosc2 frames filled chunk by chunk: once complete, a cache folder is a root
//! `cat2pub` can publish again. While a publisher or NATS is unreachable it serves what it has
//! cached; what it cannot get is a `503`/`504` within the request timeout. After a restart or
//! a reconnection it revalidates every followed dataset against its publisher's etag.
//!
//! # Layout
//! - `state`: what is persisted (`STATEDIR/db.json`) and its store; `sub`: the core, made of
//!   parts that own their locks (the lock order is written there): `caches` (open cache
//!   instances, `cached`, and their gates), `sub/fetch` (single flight), `blocks` (decoded
//!   blocks);
//! - `sync`: roots, follows, changes; `read`: reading selections, dropping chunks that fail
//!   to decode; `api`: the REST routes; `files`: serving cache files; `error`: [`ApiError`];
//! - `upstream`: the [`Upstream`] seam between the core and NATS. [`Subscriber`] is the core
//!   with its REST API and no event loop (tests drive it in-process with a fake upstream);
//!   [`run`] connects it to NATS.

mod api;
mod auth;
pub use auth::Tokens;
mod blocks;
mod c2array;
mod cached;
mod caches;
mod digests;
mod error;
mod files;
mod interest;
mod metrics;
mod read;
mod sequence;
mod state;
mod sub;
mod sync;
mod upstream;
mod web;

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_nats::service::ServiceExt;
use cat2_proto::msg::{Change, RootEvent, RootState, SubscriberStatus};
use cat2_proto::{RootName, subject};
use futures::StreamExt;
use tokio_util::sync::CancellationToken;

pub use error::ApiError;
pub use upstream::{ChunkItems, NatsUpstream, Upstream};

/// Longest each shutdown step may take (the whole stop stays under 2 s).
const SHUTDOWN_STEP: std::time::Duration = std::time::Duration::from_millis(400);

/// Subscriber settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where the cache and the state live.
    pub statedir: PathBuf,
    /// The `HOST:PORT` it listens on (and, without `url`, that clients use to reach it).
    pub http: String,
    /// Public URL base clients use (`http://host:port/`, Caterva2 2024's `--url`): download
    /// URLs are built from it. `None`: `http://<http>/`.
    pub url: Option<String>,
    /// This instance's id (its NATS status endpoint is `cat2.v1.sub.<id>.status`).
    pub id: String,
    /// How long a request may wait for upstream.
    pub timeout: Duration,
    /// Chunk requests to publishers at once.
    pub parallel_fetches: usize,
    /// Largest `/api/fetch` result (bigger ones: use `/api/download`).
    pub max_fetch_bytes: u64,
    /// Whether small reads of uncached chunks also fetch the chunks whole into the cache
    /// (in the background); else they fetch only the blocks they need.
    pub prefetch_chunks: bool,
    /// Bytes of chunks requested at once (counted uncompressed): bounds the memory chunk
    /// transfers take, whatever the chunk size.
    pub fetch_buffer_bytes: u64,
    /// Bytes that results in flight may take at once: slices being read and encoded (each
    /// counts about twice its size plus a chunk) and file transfers not sent yet. Past it,
    /// requests wait a little, then get a `503` with `Retry-After`; a single slice that
    /// needs more than all of it is refused (`400`: use `/api/download`).
    pub memory_budget: u64,
    /// Tokens REST clients must present (none: no authentication), see [`Tokens`].
    pub auth_tokens: Tokens,
    /// Bytes of blocks one web view may decode (images and lines are decimated, whole
    /// blocks skipped, to stay within it; `budget=full` allows 8 times as much).
    pub web_decode_budget: u64,
}

impl Config {
    /// Default of [`Config::memory_budget`]: 256 MiB.
    pub const DEFAULT_MEMORY_BUDGET: u64 = 256 << 20;
    /// Default of [`Config::web_decode_budget`]: 64 MiB.
    pub const DEFAULT_WEB_DECODE_BUDGET: u64 = 64 << 20;
}

impl Default for Config {
    fn default() -> Self {
        Self {
            statedir: PathBuf::from("_caterva2/sub"),
            http: "localhost:8002".into(),
            url: None,
            id: "default".into(),
            timeout: Duration::from_secs(10),
            parallel_fetches: 16,
            max_fetch_bytes: 1 << 30,
            fetch_buffer_bytes: 64 << 20,
            prefetch_chunks: false,
            memory_budget: Self::DEFAULT_MEMORY_BUDGET,
            auth_tokens: Tokens::default(),
            web_decode_budget: Self::DEFAULT_WEB_DECODE_BUDGET,
        }
    }
}

impl Config {
    /// The public URL base, ending in `/`.
    pub fn url_base(&self) -> String {
        match &self.url {
            Some(u) if u.ends_with('/') => u.clone(),
            Some(u) => format!("{u}/"),
            None => format!("http://{}/", self.http),
        }
    }
}

/// What stops the subscriber.
#[derive(Debug, thiserror::Error)]
pub enum SubscriberError {
    /// The state directory cannot be used.
    #[error("state directory {path}: {source}")]
    State {
        /// The directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// NATS subscriptions or the service cannot start.
    #[error("nats: {0}")]
    Nats(String),
    /// The HTTP server failed.
    #[error("http: {0}")]
    Http(std::io::Error),
}

/// The subscriber's core and its REST API, without the NATS event loop of [`run`]: what `run`
/// drives, and what tests (or an embedding program) drive themselves. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Subscriber {
    sub: Arc<sub::Sub>,
}

impl Subscriber {
    /// Loads the state in `cfg.statedir` (created if missing) and asks `upstream` for what
    /// it needs.
    ///
    /// # Errors
    /// [`SubscriberError::State`] when the state directory cannot be used.
    pub fn new(cfg: Config, upstream: Arc<dyn Upstream>) -> Result<Self, SubscriberError> {
        let state = state::State::load(&cfg.statedir).map_err(|source| SubscriberError::State {
            path: cfg.statedir.clone(),
            source,
        })?;
        Ok(Self {
            sub: Arc::new(sub::Sub::new(cfg, upstream, state)),
        })
    }

    /// The web client and the REST API (Caterva2's routes, `/files`, JSON errors; unknown
    /// paths get the API's JSON 404).
    pub fn router(&self) -> axum::Router {
        web::router(self.sub.clone()).merge(api::router(self.sub.clone()))
    }

    /// Learns the broker's roots.
    ///
    /// # Errors
    /// When the broker cannot be reached.
    pub async fn refresh_roots(&self) -> Result<(), ApiError> {
        self.sub.refresh_roots().await
    }

    /// Brings every followed root up to date in the background (at start, and for roots not
    /// in sync since the last reconnection when `only_unsynced`).
    pub fn resync(&self, only_unsynced: bool) {
        self.sub.spawn_resync(only_unsynced);
    }

    /// Notes that NATS reconnected: change messages may have been lost meanwhile, so every
    /// followed root is revalidated at the next [`Subscriber::resync`].
    pub fn reconnected(&self) {
        self.sub
            .synced
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clear();
    }

    /// A broker event: the root is learnt, and a followed root back online is caught up
    /// with (in the background).
    pub fn on_root_event(&self, ev: &RootEvent) {
        self.sub.learn_root(&ev.root);
        let followed = self
            .sub
            .state()
            .roots
            .get(ev.root.name.as_str())
            .is_some_and(|r| r.subscribed);
        if !(ev.root.online && followed) {
            return;
        }
        let (s, root) = (self.sub.clone(), ev.root.name.clone());
        tokio::spawn(async move {
            if let Err(e) = s.follow(&root).await {
                tracing::warn!(root = %root, error = %e, "cannot catch up with a root back online (retried at the next resync)");
            }
        });
    }

    /// A publisher's change notification for `root` (applied once its publisher confirms it;
    /// a gap in its numbering makes the root followed again).
    pub async fn on_change(&self, root: &RootName, change: Change) {
        self.sub.on_change(root, change).await;
    }

    /// A publisher's heartbeat state for `root`: when it shows changes we did not see, the
    /// root is followed again (in the background).
    pub fn on_state(&self, root: &RootName, state: RootState) {
        self.sub.on_state(root, state);
    }

    /// Registers the core's metrics in `ops` (counters, and gauges read at scrape time).
    pub fn register_metrics(&self, ops: &mut cat2_ops::Ops) {
        self.sub.metrics.register(ops.registry());
        let sub = self.sub.clone();
        ops.on_scrape(move || {
            let m = &sub.metrics;
            m.fetches_in_flight
                .set(i64::try_from(sub.fetches.in_flight()).unwrap_or(i64::MAX));
            let used = sub.results.bytes().saturating_sub(sub.results.available());
            m.results_bytes.set(i64::try_from(used).unwrap_or(i64::MAX));
            let (bytes, files) = crate::metrics::dir_usage(&sub.cache_dir());
            m.cache_bytes.set(i64::try_from(bytes).unwrap_or(i64::MAX));
            m.cache_files.set(i64::try_from(files).unwrap_or(i64::MAX));
        });
    }

    /// The roots followed now.
    pub fn followed_roots(&self) -> Vec<RootName> {
        self.sub.subscribed_roots()
    }

    /// Resolves when a root starts being followed.
    pub async fn follows_changed(&self) {
        self.sub.followed.notified().await;
    }

    /// Saves the state if it changed (off the async workers, atomically).
    pub async fn save_state(&self) {
        self.sub.save_state().await;
    }

    /// What this subscriber follows, for its status endpoint.
    pub fn status(&self) -> SubscriberStatus {
        SubscriberStatus {
            subscribed: self.sub.subscribed_roots(),
            http: self.sub.cfg.http.clone(),
        }
    }
}

/// Runs the subscriber until `shutdown` resolves, serving HTTP on `listener`.
///
/// # Errors
/// [`SubscriberError`] when the state, NATS or HTTP cannot be set up.
pub async fn run(
    cfg: Config,
    nats: async_nats::Client,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), SubscriberError> {
    let upstream = NatsUpstream::new(nats.clone(), cfg.timeout, sub::STREAM_IDLE);
    let sub = Subscriber::new(cfg.clone(), Arc::new(upstream))?;
    let nerr = |e: &dyn std::fmt::Display| SubscriberError::Nats(e.to_string());
    let mut events = nats
        .subscribe(subject::broker_events())
        .await
        .map_err(|e| nerr(&e))?;
    let (mut interest, mut heard) = interest::Interest::new(nats.clone());
    let service = nats
        .service_builder()
        .description(format!("cat2 subscriber at {}", cfg.http))
        .start(subject::service::SUBSCRIBER, env!("CARGO_PKG_VERSION"))
        .await
        .map_err(|e| nerr(&e))?;
    let mut status = service
        .endpoint(subject::subscriber_status(&cfg.id))
        .await
        .map_err(|e| nerr(&e))?;

    // Healthy: connected to NATS, and the broker answered the last time it was asked.
    let broker_ok = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let b = broker_ok.clone();
    let mut ops = cat2_ops::Ops::new(
        Some(nats.clone()),
        Box::new(move || {
            if b.load(std::sync::atomic::Ordering::Relaxed) {
                Ok(())
            } else {
                Err("the broker does not answer".to_owned())
            }
        }),
    );
    sub.register_metrics(&mut ops);
    let stop = CancellationToken::new();
    let app = sub
        .router()
        .merge(cat2_ops::router(Arc::new(ops)))
        .layer(tower_http::trace::TraceLayer::new_for_http());
    let http_stop = stop.clone();
    let http = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(http_stop.cancelled_owned())
            .await
    });

    // Start: learn roots, then resume following what we followed.
    match sub.refresh_roots().await {
        Ok(()) => broker_ok.store(true, std::sync::atomic::Ordering::Relaxed),
        Err(e) => tracing::warn!(error = %e, "broker not available: serving from cache"),
    }
    sub.resync(false);
    interest.reconcile(&sub.followed_roots()).await;

    let mut tick = tokio::time::interval(Duration::from_secs(2));
    // Every (re)connection bumps this counter: a reconnection, however brief, is noticed and
    // followed by a revalidation (change messages sent meanwhile were lost).
    let mut connects = nats
        .statistics()
        .connects
        .load(std::sync::atomic::Ordering::Relaxed);
    tokio::pin!(shutdown);
    tracing::info!(http = %cfg.http, "subscriber running");
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            Some(msg) = events.next() => {
                if let Ok(ev) = cat2_proto::decode::<RootEvent>("root event", &msg.payload) {
                    sub.on_root_event(&ev);
                }
            }
            Some(h) = heard.recv() => match h {
                interest::Heard::Change(root, payload) => match cat2_proto::decode::<Change>("change", &payload) {
                    Ok(change) => {
                        let s = sub.clone();
                        tokio::spawn(async move { s.on_change(&root, change).await });
                    }
                    Err(e) => tracing::debug!(root = %root, error = %e, "ignored a malformed change message"),
                },
                interest::Heard::State(root, payload) => match cat2_proto::decode::<RootState>("root state", &payload) {
                    Ok(state) => sub.on_state(&root, state),
                    Err(e) => tracing::debug!(root = %root, error = %e, "ignored a malformed root state"),
                },
            },
            () = sub.follows_changed() => interest.reconcile(&sub.followed_roots()).await,
            Some(req) = status.next() => {
                let _ = req.respond(Ok(cat2_proto::encode(&sub.status()).into())).await;
            }
            _ = tick.tick() => {
                let connected = nats.connection_state() == async_nats::connection::State::Connected;
                let now = nats.statistics().connects.load(std::sync::atomic::Ordering::Relaxed);
                if now > connects && connects > 0 {
                    tracing::info!("reconnected to nats: revalidating followed roots");
                    sub.reconnected();
                }
                connects = now;
                sub.save_state().await;
                interest.reconcile(&sub.followed_roots()).await;
                if !connected {
                    broker_ok.store(false, std::sync::atomic::Ordering::Relaxed);
                }
                if connected {
                    let (s, ok) = (sub.clone(), broker_ok.clone());
                    tokio::spawn(async move {
                        let refreshed = s.refresh_roots().await;
                        ok.store(refreshed.is_ok(), std::sync::atomic::Ordering::Relaxed);
                        if let Err(e) = refreshed {
                            tracing::debug!(error = %e, "cannot refresh the list of roots from the broker (tried again in 2 s)");
                        }
                        s.resync(true);
                    });
                }
            }
        }
    }
    stop.cancel();
    sub.save_state().await;
    // Bounded: with NATS down these would wait for a reconnection that may never come.
    let _ = tokio::time::timeout(SHUTDOWN_STEP, service.stop()).await;
    match tokio::time::timeout(SHUTDOWN_STEP * 2, http).await {
        Ok(Ok(Err(e))) => return Err(SubscriberError::Http(e)),
        Ok(Err(e)) => tracing::error!(error = %e, "http task failed"),
        Ok(Ok(Ok(()))) => {}
        Err(_) => tracing::warn!("requests still running at shutdown were dropped"),
    }
    let _ = tokio::time::timeout(SHUTDOWN_STEP, nats.flush()).await;
    tracing::info!("subscriber stopped");
    Ok(())
}
