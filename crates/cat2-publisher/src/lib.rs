//! The cat2 publisher: serves one root directory on NATS.
//!
//! It answers `cat2.v1.root.<root>.{list,info,chunks,blocks}` as a NATS micro service
//! (`cat2-publisher`, ADR-32) in the queue group of its root, so several publishers of one root
//! share the requests and one can stop without clients noticing. It registers with the broker
//! and heartbeats; it rescans the directory and announces added, modified and deleted datasets
//! on `cat2.v1.root.<root>.changes` (also those changed while it was down: etags are kept in
//! `STATEDIR/db.json`). Each dataset version is opened once and shared by all requests; files
//! that cannot be served are skipped with a warning. It starts before NATS or the broker are
//! up, and survives their restarts.
//!
//! An optional HTTP listener serves Caterva2's publisher routes `GET /api/list` and
//! `GET /api/info/{path}` (spec §2.2) for health checks and old tools.
//!
//! # Layout
//! - `scan`: walking the root; `state`: the open datasets and rescans;
//! - `serve`: the NATS endpoints; `http`: the HTTP routes; this file: [`run`].

mod announce;
mod hdf5root;
mod http;
mod limits;
mod metrics;
mod scan;
mod serve;
mod state;

use std::collections::HashMap;
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_nats::service::ServiceExt;
use cat2_proto::msg::Change;
use cat2_proto::{RootName, subject};
use futures::StreamExt;
use tokio_util::sync::CancellationToken;

use announce::{Sequence, announce, heartbeat};
use state::{Datasets, Failed};

/// What the publisher watches: a directory, or one HDF5 file.
#[derive(Debug)]
enum Watch {
    Dir {
        root: PathBuf,
        failed: Failed,
        /// Whether opened versions are digested ([`Config::digests`]).
        digests: bool,
    },
    Hdf5(hdf5root::H5Watch),
}

impl Watch {
    /// An HDF5 file when libhdf5 recognises it (whatever its name), else a directory.
    fn new(
        root: &std::path::Path,
        listing: cat2_hdf5::Listing,
        digests: bool,
    ) -> std::io::Result<Self> {
        if cat2_hdf5::is_hdf5(root) {
            return Ok(Watch::Hdf5(hdf5root::H5Watch::new(
                root.canonicalize()?,
                listing,
            )));
        }
        Ok(Watch::Dir {
            root: state::canonical_root(root)?,
            failed: Failed::default(),
            digests,
        })
    }

    fn describe(&self) -> String {
        match self {
            Watch::Dir { root, .. } => format!("directory {}", root.display()),
            Watch::Hdf5(_) => "HDF5 file".to_owned(),
        }
    }

    /// Rescans (blocking: on the blocking pool) and returns the changes to announce.
    fn refresh(&mut self, datasets: &Datasets) -> Vec<Change> {
        match self {
            Watch::Dir {
                root,
                failed,
                digests,
            } => state::refresh(root, datasets, failed, *digests),
            Watch::Hdf5(w) => w.refresh(datasets),
        }
    }
}

/// A rescan in progress: the watch comes back with the changes it found.
type Rescan = std::pin::Pin<Box<dyn Future<Output = Result<(Watch, Vec<Change>), String>> + Send>>;

async fn rescan(mut watch: Watch, datasets: Arc<Datasets>) -> Result<(Watch, Vec<Change>), String> {
    tokio::task::spawn_blocking(move || {
        let c = watch.refresh(&datasets);
        (watch, c)
    })
    .await
    .map_err(|e| e.to_string())
}

/// Longest each shutdown step may take (the whole stop stays under 2 s).
const SHUTDOWN_STEP: std::time::Duration = std::time::Duration::from_millis(400);

/// Publisher settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// The root's name.
    pub name: RootName,
    /// The directory served.
    pub root: PathBuf,
    /// This instance's id (distinct per process; several may serve one root).
    pub id: String,
    /// The HTTP address announced to the broker (as given, like Caterva2).
    pub http: Option<String>,
    /// Where the etags of the last run are kept.
    pub statedir: PathBuf,
    /// How often the directory is rescanned.
    pub scan_interval: Duration,
    /// How often to heartbeat before the broker says otherwise.
    pub heartbeat: Duration,
    /// What an HDF5 root lists (everything by default; Caterva2 0.2.0's listing on demand).
    pub hdf5_listing: cat2_hdf5::Listing,
    /// Most chunk and block requests served at once; more wait up to `queue_wait`, and past
    /// that (or when as many wait already) are answered busy, to be asked again.
    pub max_requests: usize,
    /// Most bytes read for replies that NATS has not sent yet (the memory replies may take).
    pub send_buffer_bytes: u64,
    /// Longest a request waits for a free slot before it is answered busy.
    pub queue_wait: Duration,
    /// Whether each version of a directory dataset is digested when opened (one read of it)
    /// so subscribers can check every reply; off only where every member of the queue
    /// group is trusted (NATS authorization on) and the scan costs too much.
    pub digests: bool,
}

impl Config {
    /// Default of [`Config::max_requests`]: enough to keep both links and disks busy, few
    /// enough that their buffers stay small.
    pub const DEFAULT_MAX_REQUESTS: usize = 64;
    /// Default of [`Config::send_buffer_bytes`]: 256 MiB.
    pub const DEFAULT_SEND_BUFFER_BYTES: u64 = 256 << 20;
    /// Default of [`Config::queue_wait`].
    pub const DEFAULT_QUEUE_WAIT: Duration = Duration::from_secs(2);

    /// Settings for serving `root` as `name`, with defaults for the rest.
    pub fn new(name: RootName, root: PathBuf) -> Self {
        Self {
            name,
            root,
            id: format!("{}-{}", std::process::id(), nuid_like()),
            http: None,
            statedir: PathBuf::from("_caterva2/pub"),
            scan_interval: Duration::from_millis(500),
            heartbeat: Duration::from_secs(1),
            hdf5_listing: cat2_hdf5::Listing::Full,
            max_requests: Self::DEFAULT_MAX_REQUESTS,
            send_buffer_bytes: Self::DEFAULT_SEND_BUFFER_BYTES,
            queue_wait: Self::DEFAULT_QUEUE_WAIT,
            digests: true,
        }
    }
}

fn nuid_like() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    format!("{:x}", h.finish())
}

/// What stops the publisher.
#[derive(Debug, thiserror::Error)]
pub enum PublisherError {
    /// The root directory cannot be served.
    #[error("root {path}: {source}")]
    Root {
        /// The directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The NATS service cannot start.
    #[error("nats service: {0}")]
    Nats(String),
    /// The first scan of the root failed (its task panicked): nothing could be served.
    #[error("the first scan of the root failed: {0}")]
    Scan(String),
}

/// Runs the publisher until `shutdown` resolves.
///
/// # Errors
/// [`PublisherError`] when the root or the NATS service cannot be set up.
pub async fn run(
    cfg: Config,
    nats: async_nats::Client,
    http: Option<tokio::net::TcpListener>,
    ops_listener: Option<tokio::net::TcpListener>,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), PublisherError> {
    let watch = Watch::new(&cfg.root, cfg.hdf5_listing, cfg.digests).map_err(|source| {
        PublisherError::Root {
            path: cfg.root.clone(),
            source,
        }
    })?;
    let what = watch.describe();
    let datasets = Arc::new(Datasets::default());
    let previous = load_etags(&cfg.statedir);
    let (watch, _) = rescan(watch, datasets.clone())
        .await
        .map_err(PublisherError::Scan)?;
    let mut watch = Some(watch);
    let nats_err = |e: async_nats::Error| PublisherError::Nats(e.to_string());
    let mut metadata = HashMap::new();
    metadata.insert("root".to_owned(), cfg.name.to_string());
    let service = nats
        .service_builder()
        .description(format!("cat2 publisher of root {}", cfg.name))
        .metadata(metadata)
        .queue_group(subject::root_queue_group(&cfg.name))
        .start(subject::service::PUBLISHER, env!("CARGO_PKG_VERSION"))
        .await
        .map_err(nats_err)?;
    let mut list = service
        .endpoint_builder()
        .name("list")
        .add(subject::root_list(&cfg.name))
        .await
        .map_err(nats_err)?;
    let mut info = service
        .endpoint_builder()
        .name("info")
        .add(subject::root_info(&cfg.name))
        .await
        .map_err(nats_err)?;
    let mut chunks = service
        .endpoint_builder()
        .name("chunks")
        .add(subject::root_chunks(&cfg.name))
        .await
        .map_err(nats_err)?;
    let mut blocks = service
        .endpoint_builder()
        .name("blocks")
        .add(subject::root_blocks(&cfg.name))
        .await
        .map_err(nats_err)?;

    // Changes made while we were down.
    let sequence = Arc::new(Sequence::new());
    let startup = diff_etags(&previous, &datasets.etags());
    announce(&nats, &cfg.name, &sequence, startup).await;
    save_etags(&cfg.statedir, &datasets.etags());

    let out = serve::Out {
        nats: nats.clone(),
        pool: Arc::new(serve::BufPool::default()),
        limits: Arc::new(limits::Limits::new(
            cfg.max_requests,
            cfg.send_buffer_bytes,
            cfg.queue_wait,
        )),
    };
    let stop = CancellationToken::new();
    // Healthy: connected, and the broker took the last registration.
    let registered = Arc::new(AtomicBool::new(false));
    let heartbeat = tokio::spawn(heartbeat(
        cfg.clone(),
        nats.clone(),
        sequence.clone(),
        registered.clone(),
        stop.clone(),
    ));
    let r = registered.clone();
    let mut ops = cat2_ops::Ops::new(
        Some(nats.clone()),
        Box::new(move || {
            if r.load(Ordering::Relaxed) {
                Ok(())
            } else {
                Err("not registered with a broker".to_owned())
            }
        }),
    );
    let counts = Arc::new(metrics::Metrics::default());
    counts.register(&mut ops, &out.limits, cfg.max_requests, datasets.clone());
    let ops = Arc::new(ops);
    // `/metrics` and `/healthz` alone on their own address (for `--http off`).
    let ops_task = ops_listener.map(|listener| {
        let app = cat2_ops::router(ops.clone());
        let stop = stop.clone();
        tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app)
                .with_graceful_shutdown(stop.cancelled_owned())
                .await
            {
                tracing::error!(error = %e, "ops http server failed");
            }
        })
    });
    let http_task = http.map(|listener| {
        let app = http::router(datasets.clone(), cfg.name.clone()).merge(cat2_ops::router(ops));
        let stop = stop.clone();
        tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app)
                .with_graceful_shutdown(stop.cancelled_owned())
                .await
            {
                tracing::error!(error = %e, "http server failed");
            }
        })
    });
    let mut scan_tick = tokio::time::interval(cfg.scan_interval);
    scan_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut scanning: Option<Rescan> = None;
    tokio::pin!(shutdown);
    tracing::info!(root = %cfg.name, source = %what, path = %cfg.root.display(), datasets = datasets.list().len(), "publisher running");
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            Some(req) = list.next() => {
                counts.request("list");
                serve::list(req, &datasets).await;
            }
            Some(req) = info.next() => {
                counts.request("info");
                serve::info(req, &datasets, out.nats.server_info().max_payload).await;
            }
            Some(req) = chunks.next() => {
                counts.request("chunks");
                tokio::spawn(serve::chunks(req, datasets.clone(), out.clone()));
            }
            Some(req) = blocks.next() => {
                counts.request("blocks");
                tokio::spawn(serve::blocks(req, datasets.clone(), out.clone()));
            }
            // Rescans run on the blocking pool while requests keep being served.
            _ = scan_tick.tick(), if scanning.is_none() && watch.is_some() => {
                if let Some(w) = watch.take() {
                    scanning = Some(Box::pin(rescan(w, datasets.clone())));
                }
            }
            scanned = async { scanning.as_mut().expect("guarded by the condition").await }, if scanning.is_some() => {
                scanning = None;
                match scanned {
                    Ok((w, changes)) => {
                        watch = Some(w);
                        if !changes.is_empty() {
                            announce(&nats, &cfg.name, &sequence, changes).await;
                            save_etags(&cfg.statedir, &datasets.etags());
                        }
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "rescan failed; starting over");
                        watch = Watch::new(&cfg.root, cfg.hdf5_listing, cfg.digests).ok();
                    }
                }
            }
        }
    }
    stop.cancel();
    // Bounded: with NATS down these would wait for a reconnection that may never come.
    let _ = tokio::time::timeout(SHUTDOWN_STEP, service.stop()).await;
    heartbeat.abort();
    for t in [http_task, ops_task].into_iter().flatten() {
        let _ = tokio::time::timeout(SHUTDOWN_STEP * 2, t).await;
    }
    let _ = tokio::time::timeout(SHUTDOWN_STEP, nats.flush()).await;
    tracing::info!("publisher stopped");
    Ok(())
}

fn load_etags(statedir: &std::path::Path) -> HashMap<String, String> {
    std::fs::read(statedir.join("db.json"))
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .and_then(|v| serde_json::from_value(v.get("etags")?.clone()).ok())
        .unwrap_or_default()
}

fn save_etags(statedir: &std::path::Path, etags: &HashMap<String, String>) {
    let write = || -> std::io::Result<()> {
        std::fs::create_dir_all(statedir)?;
        let tmp = statedir.join("db.json.tmp");
        std::fs::write(
            &tmp,
            serde_json::to_vec_pretty(&serde_json::json!({ "etags": etags }))?,
        )?;
        std::fs::rename(tmp, statedir.join("db.json"))
    };
    if let Err(e) = write() {
        tracing::warn!(statedir = %statedir.display(), error = %e, "cannot save etags");
    }
}

fn diff_etags(before: &HashMap<String, String>, now: &HashMap<String, String>) -> Vec<Change> {
    let mut out: Vec<Change> = now
        .iter()
        .filter(|(k, v)| before.get(*k) != Some(*v))
        .filter_map(|(k, v)| state::change(k, Some(v.clone())))
        .collect();
    out.extend(
        before
            .keys()
            .filter(|k| !now.contains_key(*k))
            .filter_map(|k| state::change(k, None)),
    );
    out.sort_by(|a, b| a.path.cmp(&b.path));
    out
}
