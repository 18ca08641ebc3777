//! The subscriber's shared core: known roots, open cache files, and chunk fetching with
//! single flight (concurrent requests needing one chunk fetch it once), batching, parallel
//! requests and retries within the request deadline.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use cat2_client::{Client, ClientError};
use cat2_format::{CacheFile, Kind, kind_of};
use cat2_proto::msg::ChunksRequest;
use cat2_proto::{DatasetPath, ErrorCode, Meta, RootName};
use tokio::sync::{Semaphore, watch};
use tokio::time::Instant;

use crate::state::State;
use crate::{ApiError, Config};

/// Bytes of chunks asked for in one request (several requests run at once).
const BATCH_BYTES: u64 = 8 << 20;
/// Longest a publisher may stay silent in the middle of a chunk stream before we retry
/// elsewhere.
const STREAM_IDLE: Duration = Duration::from_secs(3);

/// One dataset's cache file at one version.
#[derive(Debug)]
pub(crate) struct Cached {
    pub(crate) root: RootName,
    pub(crate) rel: DatasetPath,
    pub(crate) etag: String,
    pub(crate) kind: Kind,
    /// Reads take the read lock; `put`/`flush` the write lock (only on the blocking pool).
    pub(crate) file: RwLock<CacheFile>,
}

type FlightKey = (String, String, u64);
type FlightResult = Option<Result<(), ApiError>>;

/// The shared core (one per process, behind an `Arc`).
#[derive(Debug)]
pub(crate) struct Sub {
    pub(crate) cfg: Config,
    /// Requests with the API timeout.
    pub(crate) client: Client,
    /// Chunk streams: idle timeout, so a dead publisher is retried on another one.
    chunk_client: Client,
    /// Persisted state. `std` mutex: short critical sections, never across `.await`.
    pub(crate) state: Mutex<State>,
    caches: Mutex<HashMap<(String, String), Arc<Cached>>>,
    inflight: Mutex<HashMap<FlightKey, watch::Receiver<FlightResult>>>,
    /// Bounds concurrent chunk requests to publishers.
    permits: Semaphore,
    /// Serialises follows of one root.
    root_locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// Roots brought up to date since start.
    pub(crate) synced: Mutex<std::collections::HashSet<String>>,
}

fn blocking_err(e: tokio::task::JoinError) -> ApiError {
    ApiError::internal(format!("blocking task failed: {e}"))
}

impl Sub {
    pub(crate) fn new(cfg: Config, nats: async_nats::Client, state: State) -> Self {
        let permits = Semaphore::new(cfg.parallel_fetches.max(1));
        Self {
            client: Client::new(nats.clone(), cfg.timeout),
            chunk_client: Client::new(nats, STREAM_IDLE.min(cfg.timeout)),
            cfg,
            state: Mutex::new(state),
            caches: Mutex::new(HashMap::new()),
            inflight: Mutex::new(HashMap::new()),
            permits,
            root_locks: Mutex::new(HashMap::new()),
            synced: Mutex::new(std::collections::HashSet::new()),
        }
    }

    pub(crate) fn cache_dir(&self) -> PathBuf {
        self.cfg.statedir.join("cache")
    }

    /// Where the cache of `root/rel` lives: `cache/<root>/<rel>`, plain files with `.b2`.
    pub(crate) fn cache_path(&self, root: &RootName, rel: &DatasetPath) -> PathBuf {
        let mut p = self.cache_dir().join(root.as_str()).join(rel.as_str());
        if kind_of(&p) == Kind::File {
            p.as_mut_os_string().push(".b2");
        }
        p
    }

    pub(crate) fn root_lock(&self, root: &RootName) -> Arc<tokio::sync::Mutex<()>> {
        self.root_locks
            .lock()
            .expect("root locks")
            .entry(root.to_string())
            .or_default()
            .clone()
    }

    /// Splits `root/rel...` into a root that is subscribed and a valid dataset path.
    pub(crate) fn resolve(&self, full: &str) -> Result<(RootName, DatasetPath, String), ApiError> {
        let (root, rel) = full
            .split_once('/')
            .ok_or_else(|| ApiError::NotFound("Not Found".into()))?;
        let root = RootName::new(root)
            .map_err(|_| ApiError::BadRequest(format!("Invalid path {full}")))?;
        let rel = DatasetPath::new(rel)
            .map_err(|_| ApiError::BadRequest(format!("Invalid path {full}")))?;
        let state = self.state.lock().expect("state lock");
        let known = state
            .roots
            .get(root.as_str())
            .ok_or_else(|| ApiError::NotFound(format!("{root} not known by the broker")))?;
        if !known.subscribed {
            return Err(ApiError::NotFound(format!("Not subscribed to {root}")));
        }
        let etag = known
            .datasets
            .get(rel.as_str())
            .cloned()
            .ok_or_else(|| ApiError::NotFound("Not Found".into()))?;
        Ok((root, rel, etag))
    }

    /// The cache of `root/rel` at `etag`: the open one, or the file on disk, or (when that is
    /// missing or torn) a new one made from the publisher's metadata.
    pub(crate) async fn cached(
        &self,
        root: &RootName,
        rel: &DatasetPath,
        etag: &str,
    ) -> Result<Arc<Cached>, ApiError> {
        let key = (root.to_string(), rel.to_string());
        if let Some(c) = self
            .caches
            .lock()
            .expect("caches lock")
            .get(&key)
            .filter(|c| c.etag == etag)
        {
            return Ok(c.clone());
        }
        let path = self.cache_path(root, rel);
        let kind = kind_of(std::path::Path::new(rel.as_str()));
        let opened = tokio::task::spawn_blocking(move || CacheFile::open(&path, kind))
            .await
            .map_err(blocking_err)?;
        match opened {
            Ok(file) => Ok(self.insert(root, rel, etag, kind, file)),
            Err(e) => {
                tracing::warn!(root = %root, path = %rel, error = %e, "cache file unusable, recreating it");
                let info = self.client.info(root, rel.as_str(), None).await?;
                let meta = info
                    .meta
                    .ok_or_else(|| ApiError::internal("publisher sent no metadata"))?;
                self.install(root, rel, &info.etag, meta).await
            }
        }
    }

    fn insert(
        &self,
        root: &RootName,
        rel: &DatasetPath,
        etag: &str,
        kind: Kind,
        file: CacheFile,
    ) -> Arc<Cached> {
        let c = Arc::new(Cached {
            root: root.clone(),
            rel: rel.clone(),
            etag: etag.to_owned(),
            kind,
            file: RwLock::new(file),
        });
        self.caches
            .lock()
            .expect("caches lock")
            .insert((root.to_string(), rel.to_string()), c.clone());
        c
    }

    /// Creates (or replaces) the cache of `root/rel` for version `etag` with `meta`.
    pub(crate) async fn install(
        &self,
        root: &RootName,
        rel: &DatasetPath,
        etag: &str,
        meta: Meta,
    ) -> Result<Arc<Cached>, ApiError> {
        let path = self.cache_path(root, rel);
        let kind = kind_of(std::path::Path::new(rel.as_str()));
        if meta.kind != kind {
            return Err(ApiError::Unavailable(format!(
                "publisher sent {:?} metadata for {rel}",
                meta.kind
            )));
        }
        let file = tokio::task::spawn_blocking(move || {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir).map_err(cat2_format::FormatError::from_io(dir))?;
            }
            CacheFile::create(&path, &meta)
        })
        .await
        .map_err(blocking_err)?
        .map_err(|e| ApiError::Unavailable(format!("unusable metadata for {root}/{rel}: {e}")))?;
        let c = self.insert(root, rel, etag, kind, file);
        let mut state = self.state.lock().expect("state lock");
        if let Some(r) = state.roots.get_mut(root.as_str()) {
            r.datasets.insert(rel.to_string(), etag.to_owned());
        }
        state.save();
        Ok(c)
    }

    /// Forgets `root/rel`: its cache file, and its entry.
    pub(crate) fn remove(&self, root: &RootName, rel: &str) {
        self.caches
            .lock()
            .expect("caches lock")
            .remove(&(root.to_string(), rel.to_owned()));
        if let Ok(p) = DatasetPath::new(rel) {
            let _ = std::fs::remove_file(self.cache_path(root, &p));
        }
        let mut state = self.state.lock().expect("state lock");
        if let Some(r) = state.roots.get_mut(root.as_str()) {
            r.datasets.remove(rel);
        }
        state.save();
    }

    /// Makes sure `chunks` of `c` are cached, fetching the missing ones (once, however many
    /// requests need them) within the request deadline.
    pub(crate) async fn ensure(
        self: &Arc<Self>,
        c: &Arc<Cached>,
        chunks: Vec<u64>,
    ) -> Result<(), ApiError> {
        let deadline = Instant::now() + self.cfg.timeout;
        let missing: Vec<u64> = {
            let f = c.file.read().expect("cache lock");
            chunks.into_iter().filter(|n| !f.is_filled(*n)).collect()
        };
        if missing.is_empty() {
            return Ok(());
        }
        let key = format!("{}/{}", c.root, c.rel);
        let mut mine = BTreeMap::new();
        let mut waits = Vec::new();
        {
            let mut inflight = self.inflight.lock().expect("inflight lock");
            for n in missing {
                let k = (key.clone(), c.etag.clone(), n);
                if let Some(rx) = inflight.get(&k) {
                    waits.push(rx.clone());
                } else {
                    let (tx, rx) = watch::channel(None);
                    inflight.insert(k, rx);
                    mine.insert(n, tx);
                }
            }
        }
        // Fetched in a task of its own: a client that goes away does not strand the others.
        let task = (!mine.is_empty())
            .then(|| tokio::spawn(fetch(self.clone(), c.clone(), mine, deadline)));
        let mut result = Ok(());
        if let Some(t) = task {
            result = t
                .await
                .map_err(|e| ApiError::internal(format!("fetch task failed: {e}")))?;
        }
        for mut rx in waits {
            let waited = tokio::time::timeout_at(deadline, rx.wait_for(Option::is_some)).await;
            match waited {
                Err(_) => {
                    return Err(ApiError::Timeout(format!(
                        "chunks of {key} did not arrive in {:?}",
                        self.cfg.timeout
                    )));
                }
                Ok(Err(_)) => {
                    return Err(ApiError::Unavailable(format!(
                        "fetching chunks of {key} was abandoned"
                    )));
                }
                Ok(Ok(v)) => {
                    if let Some(Err(e)) = v.as_ref() {
                        return Err(e.clone());
                    }
                }
            }
        }
        result
    }

    fn finish(&self, key: &FlightKey, tx: &watch::Sender<FlightResult>, r: Result<(), ApiError>) {
        let _ = tx.send(Some(r));
        self.inflight.lock().expect("inflight lock").remove(key);
    }
}

/// Fetches `chunks` of `c` from its publishers: batches of about [`BATCH_BYTES`], several at
/// once, each retried (on another publisher of the queue group) until `deadline`.
async fn fetch(
    sub: Arc<Sub>,
    c: Arc<Cached>,
    chunks: BTreeMap<u64, watch::Sender<FlightResult>>,
    deadline: Instant,
) -> Result<(), ApiError> {
    let chunk_bytes = {
        let f = c.file.read().expect("cache lock");
        u64::try_from(f.meta().chunksize).unwrap_or(1).max(1)
    };
    let per_batch = (BATCH_BYTES / chunk_bytes).clamp(1, 256) as usize;
    let all: Vec<(u64, watch::Sender<FlightResult>)> = chunks.into_iter().collect();
    let mut batches = Vec::new();
    let mut it = all.into_iter().peekable();
    while it.peek().is_some() {
        batches.push(it.by_ref().take(per_batch).collect::<Vec<_>>());
    }
    let results = futures::future::join_all(
        batches
            .into_iter()
            .map(|b| fetch_batch(&sub, &c, b, deadline)),
    )
    .await;
    let flushed = {
        let c = c.clone();
        tokio::task::spawn_blocking(move || c.file.write().expect("cache lock").flush())
            .await
            .map_err(blocking_err)?
    };
    flushed.map_err(ApiError::from)?;
    results.into_iter().collect()
}

async fn fetch_batch(
    sub: &Arc<Sub>,
    c: &Arc<Cached>,
    batch: Vec<(u64, watch::Sender<FlightResult>)>,
    deadline: Instant,
) -> Result<(), ApiError> {
    let key = format!("{}/{}", c.root, c.rel);
    let mut pending: BTreeMap<u64, watch::Sender<FlightResult>> = batch.into_iter().collect();
    let mut backoff = Duration::from_millis(20);
    let mut last_err = ApiError::Timeout(format!(
        "chunks of {key} did not arrive in {:?}",
        sub.cfg.timeout
    ));
    while !pending.is_empty() && Instant::now() < deadline {
        let Ok(_permit) = tokio::time::timeout_at(deadline, sub.permits.acquire()).await else {
            break;
        };
        let req = ChunksRequest {
            path: c.rel.to_string(),
            etag: c.etag.clone(),
            chunks: pending.keys().copied().collect(),
            max_part: 8 << 20,
        };
        let stream = tokio::time::timeout_at(deadline, sub.chunk_client.chunks(&c.root, req)).await;
        let mut stream = match stream {
            Err(_) => break,
            Ok(Err(e)) => {
                last_err = e.into();
                tokio::time::sleep(backoff.min(deadline.saturating_duration_since(Instant::now())))
                    .await;
                backoff = (backoff * 2).min(Duration::from_millis(500));
                continue;
            }
            Ok(Ok(s)) => s,
        };
        loop {
            let next = tokio::time::timeout_at(deadline, stream.next()).await;
            let item = match next {
                Err(_) | Ok(None) => break,
                Ok(Some(item)) => item,
            };
            match item {
                Ok((n, bytes)) => {
                    let Some(tx) = pending.remove(&n) else {
                        continue;
                    };
                    let cc = c.clone();
                    let put = tokio::task::spawn_blocking(move || {
                        cc.file.write().expect("cache lock").put(n, &bytes)
                    })
                    .await
                    .map_err(blocking_err)
                    .and_then(|r| {
                        r.map_err(|e| {
                            ApiError::Unavailable(format!(
                                "publisher sent a bad chunk {n} of {key}: {e}"
                            ))
                        })
                    });
                    let fkey = (key.clone(), c.etag.clone(), n);
                    if let Err(e) = &put {
                        tracing::warn!(dataset = %key, chunk = n, error = %e, "rejected a chunk");
                    }
                    sub.finish(&fkey, &tx, put);
                }
                Err(e) => {
                    let retry = matches!(
                        e,
                        ClientError::Timeout { .. }
                            | ClientError::Unavailable(_)
                            | ClientError::Protocol { .. }
                    );
                    tracing::debug!(dataset = %key, error = %e, retry, "chunk stream failed");
                    if e.code() == ErrorCode::Stale {
                        last_err =
                            ApiError::Unavailable(format!("{key} changed on its publisher; retry"));
                        sub.spawn_revalidate(c.root.clone(), c.rel.clone());
                        fail_all(sub, &key, &c.etag, &mut pending, &last_err);
                        return Err(last_err);
                    }
                    last_err = e.into();
                    if !retry {
                        fail_all(sub, &key, &c.etag, &mut pending, &last_err);
                        return Err(last_err);
                    }
                    break;
                }
            }
        }
    }
    if pending.is_empty() {
        return Ok(());
    }
    fail_all(sub, &key, &c.etag, &mut pending, &last_err);
    Err(last_err)
}

fn fail_all(
    sub: &Sub,
    key: &str,
    etag: &str,
    pending: &mut BTreeMap<u64, watch::Sender<FlightResult>>,
    e: &ApiError,
) {
    for (n, tx) in std::mem::take(pending) {
        sub.finish(&(key.to_owned(), etag.to_owned(), n), &tx, Err(e.clone()));
    }
}
