//! The subscriber's shared core: known roots, open cache files, and chunk fetching with
//! single flight (concurrent requests needing one chunk fetch it once), batching, parallel
//! requests and retries within the request deadline.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

use cat2_array::ChunkLayout;
use cat2_format::{CacheFile, Kind, kind_of};
use cat2_proto::{DatasetPath, Meta, RootName};
use tokio::sync::{Semaphore, watch};

use crate::read::BlockCache;
use crate::state::State;
use crate::upstream::Upstream;
use crate::{ApiError, Config};

mod fetch;

/// Largest chunk part asked for (the server's `max_payload` caps it; NATS advises at most
/// 8 MiB). Parts of 64 KiB and 256 KiB were measured no faster on the bench cube.
const PART_BYTES: u64 = 8 << 20;
/// Bytes of chunks asked for in one request (several requests run at once).
const BATCH_BYTES: u64 = 8 << 20;
/// Longest a publisher may stay silent in a chunk stream (before its first chunk, or between
/// two) before it is asked again, perhaps another member of the queue group.
pub(crate) const STREAM_IDLE: Duration = Duration::from_secs(3);

/// One dataset's cache file at one version.
#[derive(Debug)]
pub(crate) struct Cached {
    /// Distinct per opened instance: single-flight keys use it, so a replaced cache file
    /// never receives chunks meant for its successor.
    pub(crate) id: u64,
    pub(crate) root: RootName,
    pub(crate) rel: DatasetPath,
    pub(crate) etag: String,
    pub(crate) kind: Kind,
    /// Immutable for a version: read without the lock.
    pub(crate) meta: Meta,
    pub(crate) layout: ChunkLayout,
    /// Taken only on the blocking pool. Reads share it; a chunk is stored in three steps
    /// (`reserve` and `commit` under the write lock, briefly; `write_slot`, the bytes, under
    /// the read lock), as `flush` is, after it was verified outside any lock.
    file: RwLock<CacheFile>,
}

impl Cached {
    /// The file, for reading (blocking: call on the blocking pool).
    pub(crate) fn read_file(&self) -> RwLockReadGuard<'_, CacheFile> {
        self.file.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// The file for reading if no writer holds it: never blocks (usable on async workers for
    /// in-memory lookups such as which chunks are filled).
    pub(crate) fn try_read_file(&self) -> Option<RwLockReadGuard<'_, CacheFile>> {
        match self.file.try_read() {
            Ok(g) => Some(g),
            Err(std::sync::TryLockError::Poisoned(p)) => Some(p.into_inner()),
            Err(std::sync::TryLockError::WouldBlock) => None,
        }
    }

    pub(crate) fn write_file(&self) -> RwLockWriteGuard<'_, CacheFile> {
        self.file.write().unwrap_or_else(PoisonError::into_inner)
    }
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// The gates of the datasets being opened, by (root, path).
type Gates = HashMap<(String, String), Arc<tokio::sync::Mutex<()>>>;

/// A dataset's gate, held; the map entry goes with the last holder.
struct Gate<'a> {
    sub: &'a Sub,
    key: (String, String),
    gate: Arc<tokio::sync::Mutex<()>>,
    guard: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl Drop for Gate<'_> {
    fn drop(&mut self) {
        self.guard.take();
        let mut map = self
            .sub
            .opening
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        // Clones are taken under the map's lock: the map's and ours mean nobody else waits.
        if Arc::strong_count(&self.gate) == 2 {
            map.remove(&self.key);
        }
    }
}

/// (cache instance, chunk).
type FlightKey = (u64, u64);
type FlightResult = Option<Result<(), ApiError>>;

/// The shared core (one per process, behind an `Arc`).
#[derive(Debug)]
pub(crate) struct Sub {
    pub(crate) cfg: Config,
    /// The broker and the publishers (NATS, or a fake in tests).
    pub(crate) upstream: Arc<dyn Upstream>,
    /// Persisted state. `std` mutex: short critical sections, never across `.await`; saved
    /// by the periodic tick when `state_dirty`.
    state: Mutex<State>,
    state_dirty: AtomicBool,
    /// Snapshots of the state are numbered under its lock; the number of the last one
    /// written is kept here (its lock serialises the writes): an older one never overwrites
    /// a newer.
    snapshots: AtomicU64,
    saved: Mutex<u64>,
    caches: Mutex<HashMap<(String, String), Arc<Cached>>>,
    inflight: Mutex<HashMap<FlightKey, watch::Receiver<FlightResult>>>,
    /// Bounds concurrent chunk requests to publishers.
    permits: Semaphore,
    /// Bounds the bytes those requests ask for, in MiB ([`Config::fetch_buffer_bytes`]).
    buffer_mib: Semaphore,
    /// One gate per dataset: serialises the opening, creation and removal of its cache file,
    /// so each file has one instance. Never held across a network wait (a hung publisher
    /// must not stall the opening of anything else, nor of this dataset once it answers).
    opening: Mutex<Gates>,
    /// Serialises follows and changes of one root.
    root_locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// Decoded blocks fetched on their own (small reads of chunks not cached yet), keyed by
    /// (cache instance, chunk, block), bounded in bytes.
    pub(crate) blocks: BlockCache,
    /// Roots brought up to date since start (or since the last reconnection).
    pub(crate) synced: Mutex<std::collections::HashSet<String>>,
    /// The bytes results in flight may take ([`Config::memory_budget`]).
    pub(crate) results: cat2_client::budget::ByteBudget,
    /// File transfers, whose reads take from the same budget.
    pub(crate) transfers: crate::files::Transfers,
}

fn blocking_err(e: tokio::task::JoinError) -> ApiError {
    ApiError::internal(format!("blocking task failed: {e}"))
}

impl Sub {
    pub(crate) fn new(cfg: Config, upstream: Arc<dyn Upstream>, state: State) -> Self {
        let permits = Semaphore::new(cfg.parallel_fetches.max(1));
        let buffer_mib = Semaphore::new(Self::mib(cfg.fetch_buffer_bytes) as usize);
        let results = cat2_client::budget::ByteBudget::new(cfg.memory_budget);
        Self {
            upstream,
            cfg,
            state: Mutex::new(state),
            state_dirty: AtomicBool::new(false),
            snapshots: AtomicU64::new(0),
            saved: Mutex::new(0),
            caches: Mutex::new(HashMap::new()),
            inflight: Mutex::new(HashMap::new()),
            permits,
            buffer_mib,
            opening: Mutex::new(HashMap::new()),
            root_locks: Mutex::new(HashMap::new()),
            blocks: crate::read::block_cache(),
            synced: Mutex::new(std::collections::HashSet::new()),
            transfers: crate::files::Transfers::new(results.clone()),
            results,
        }
    }

    /// `bytes` in whole MiB, at least 1, at most what `u32` permits count.
    fn mib(bytes: u64) -> u32 {
        bytes.div_ceil(1 << 20).clamp(1, u64::from(u32::MAX >> 4)) as u32
    }

    /// The state (short critical sections only; mark it changed with [`Sub::state_changed`]).
    pub(crate) fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Notes that the state must be saved (done off the request path, by [`Sub::save_state`]).
    pub(crate) fn state_changed(&self) {
        self.state_dirty.store(true, Ordering::Release);
    }

    /// Saves the state if it changed: a snapshot taken under the lock, written outside it on
    /// the blocking pool (a failed write leaves the state marked changed, to be retried).
    pub(crate) async fn save_state(self: &Arc<Self>) {
        if !self.state_dirty.swap(false, Ordering::AcqRel) {
            return;
        }
        let taken = {
            let state = self.state();
            let seq = self.snapshots.fetch_add(1, Ordering::AcqRel) + 1;
            state.snapshot().map(|s| (seq, s))
        };
        let (seq, snap) = match taken {
            Ok(t) => t,
            Err(e) => {
                tracing::error!(error = %e, "cannot serialise state");
                return;
            }
        };
        let sub = self.clone();
        let _ = tokio::task::spawn_blocking(move || {
            let mut saved = sub.saved.lock().unwrap_or_else(PoisonError::into_inner);
            if *saved >= seq {
                return;
            }
            match snap.write() {
                Ok(()) => *saved = seq,
                Err(e) => {
                    tracing::error!(error = %e, "cannot save state");
                    sub.state_changed();
                }
            }
        })
        .await;
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
            .unwrap_or_else(PoisonError::into_inner)
            .entry(root.to_string())
            .or_default()
            .clone()
    }

    /// Splits `root/rel...` into a followed root, a valid dataset path, and its etag.
    pub(crate) fn resolve(&self, full: &str) -> Result<(RootName, DatasetPath, String), ApiError> {
        let (root, rel) = full
            .split_once('/')
            .ok_or_else(|| ApiError::NotFound("Not Found".into()))?;
        let root = RootName::new(root)
            .map_err(|_| ApiError::BadRequest(format!("Invalid path {full}")))?;
        let rel = DatasetPath::new(rel)
            .map_err(|_| ApiError::BadRequest(format!("Invalid path {full}")))?;
        let state = self.state();
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

    /// Waits for the gate of `root/rel` (see [`Sub::opening`]).
    async fn gate(&self, root: &RootName, rel: &str) -> Gate<'_> {
        let key = (root.to_string(), rel.to_owned());
        let gate = self
            .opening
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(key.clone())
            .or_default()
            .clone();
        let guard = gate.clone().lock_owned().await;
        Gate {
            sub: self,
            key,
            gate,
            guard: Some(guard),
        }
    }

    /// The version of `root/rel` the state holds now.
    fn state_etag(&self, root: &RootName, rel: &DatasetPath) -> Result<String, ApiError> {
        self.state()
            .roots
            .get(root.as_str())
            .and_then(|r| r.datasets.get(rel.as_str()))
            .cloned()
            .ok_or_else(|| ApiError::NotFound("Not Found".into()))
    }

    fn lookup(&self, root: &RootName, rel: &DatasetPath, etag: &str) -> Option<Arc<Cached>> {
        let caches = self.caches.lock().unwrap_or_else(PoisonError::into_inner);
        caches
            .get(&(root.to_string(), rel.to_string()))
            .filter(|c| c.etag == etag)
            .cloned()
    }

    /// The cache of `root/rel`: the open one at `etag`, else, at the version the state holds
    /// now (which may be newer than `etag`), the open one, the file on disk, or (when that is
    /// missing or torn) a new one made from the publisher's metadata.
    pub(crate) async fn cached(
        &self,
        root: &RootName,
        rel: &DatasetPath,
        etag: &str,
    ) -> Result<Arc<Cached>, ApiError> {
        if let Some(c) = self.lookup(root, rel, etag) {
            return Ok(c);
        }
        let gate = self.gate(root, rel.as_str()).await;
        // The version may have changed (or gone) while we waited: `create` and `remove` change
        // files and state together under the dataset's gate, so the file on disk is the
        // state's version (after a crash between the two, the next revalidation replaces it).
        let etag = self.state_etag(root, rel)?;
        if let Some(c) = self.lookup(root, rel, &etag) {
            return Ok(c);
        }
        let path = self.cache_path(root, rel);
        let kind = kind_of(std::path::Path::new(rel.as_str()));
        let opened = tokio::task::spawn_blocking(move || CacheFile::open(&path, kind))
            .await
            .map_err(blocking_err)?;
        let e = match opened {
            Ok(file) => return Ok(self.insert(root, rel, &etag, kind, file)),
            Err(e) => e,
        };
        tracing::warn!(root = %root, path = %rel, error = %e, "cache file unusable, recreating it");
        // The publisher is asked with the gate open: it may be slow or hung.
        drop(gate);
        let info = self.upstream.info(root, rel.as_str(), None).await?;
        let meta = info
            .meta
            .ok_or_else(|| ApiError::internal("publisher sent no metadata"))?;
        let _gate = self.gate(root, rel.as_str()).await;
        // Someone else may have made it meanwhile, or the dataset may be gone; otherwise the
        // publisher's version is the one made (as before the gate was opened).
        if let Some(c) = self.lookup(root, rel, &info.etag) {
            return Ok(c);
        }
        self.state_etag(root, rel)?;
        self.create(root, rel, &info.etag, meta).await
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
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            root: root.clone(),
            rel: rel.clone(),
            etag: etag.to_owned(),
            kind,
            meta: file.meta().clone(),
            layout: file.layout().clone(),
            file: RwLock::new(file),
        });
        let mut caches = self.caches.lock().unwrap_or_else(PoisonError::into_inner);
        caches.insert((root.to_string(), rel.to_string()), c.clone());
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
        let _gate = self.gate(root, rel.as_str()).await;
        self.create(root, rel, etag, meta).await
    }

    async fn create(
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
        if let Some(r) = self.state().roots.get_mut(root.as_str()) {
            r.datasets.insert(rel.to_string(), etag.to_owned());
        }
        self.state_changed();
        Ok(c)
    }

    /// Forgets `root/rel`: its cache file, and its entry.
    pub(crate) async fn remove(&self, root: &RootName, rel: &str) {
        let _gate = self.gate(root, rel).await;
        self.caches
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&(root.to_string(), rel.to_owned()));
        if let Ok(p) = DatasetPath::new(rel) {
            let _ = std::fs::remove_file(self.cache_path(root, &p));
        }
        if let Some(r) = self.state().roots.get_mut(root.as_str()) {
            r.datasets.remove(rel);
        }
        self.state_changed();
    }
}
