//! The subscriber's shared core: [`Sub`] composes parts that each own their state and
//! locks — the persisted state ([`StateStore`]), the open cache instances and their gates
//! ([`Caches`]), the chunk fetches in flight ([`Fetches`]), the decoded block cache, and the
//! memory budget — and the operations that span them (opening, creating and removing a
//! dataset's cache).
//!
//! # Locks, and their order
//! Taken in this order, never the other way round; no lock is held across a request to a
//! publisher, except the root sequencer (1), which only orders the syncs of one root:
//! 1. a root's sequencer (`root_locks`, async): serialises follows and changes of one root
//!    (they list and ask the publisher under it); no request path waits on it;
//! 2. a dataset's gate ([`Caches::gate`], async): opening, creating and removing one cache
//!    file, local work only;
//! 3. a cache file's lock (inside [`cat2_format::SharedCache`], `std`, blocking pool only);
//! 4. the single-flight table ([`Fetches`], `std`): taken under 3's read lock when deciding
//!    who fetches which chunk.
//!
//! Leaves, taken alone and briefly, never across `.await`: the state, the maps of open
//! instances and of gates, the map of root sequencers, `synced`, the block cache's shards.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use cat2_format::{CacheFile, Kind, kind_of};
use cat2_proto::msg::Digests;
use cat2_proto::{DatasetPath, Meta, RootName};

use crate::blocks::BlockCache;
use crate::cached::Cached;
use crate::caches::Caches;
use crate::state::{State, StateStore};
use crate::upstream::Upstream;
use crate::{ApiError, Config};

mod fetch;

pub(crate) use fetch::Fetches;

/// Largest chunk part asked for (the server's `max_payload` caps it; NATS advises at most
/// 8 MiB). Parts of 64 KiB and 256 KiB were measured no faster on the bench cube.
const PART_BYTES: u64 = 8 << 20;
/// Bytes of chunks asked for in one request (several requests run at once).
const BATCH_BYTES: u64 = 8 << 20;
/// Longest a publisher may stay silent in a chunk stream (before its first chunk, or between
/// two) before it is asked again, perhaps another member of the queue group.
pub(crate) const STREAM_IDLE: Duration = Duration::from_secs(3);

/// The shared core (one per process, behind an `Arc`).
#[derive(Debug)]
pub(crate) struct Sub {
    pub(crate) cfg: Config,
    /// The broker and the publishers (NATS, or a fake in tests).
    pub(crate) upstream: Arc<dyn Upstream>,
    /// Persisted state: roots, follows, the version of each cached dataset.
    store: Arc<StateStore>,
    /// Open cache instances, and the gates of their files.
    caches: Caches,
    /// Chunk fetches in flight (single flight) and their bounds.
    pub(crate) fetches: Arc<Fetches>,
    /// Serialises follows and changes of one root.
    root_locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// Decoded blocks fetched on their own (small reads of chunks not cached yet), keyed by
    /// (cache instance, chunk, block), bounded in bytes.
    pub(crate) blocks: BlockCache,
    /// Roots brought up to date since start (or since the last reconnection).
    pub(crate) synced: Mutex<std::collections::HashSet<String>>,
    /// Where each followed root's change numbering is: what tells us changes were missed.
    pub(crate) sequences: crate::sequence::Sequences,
    /// Roots with a follow queued because changes were missed (one queued at a time).
    pub(crate) queued_follows: Mutex<std::collections::HashSet<String>>,
    /// Dataset checks queued by change messages, (root, path) → whether later changes
    /// joined the queued one.
    pub(crate) queued_changes: Mutex<HashMap<(String, String), bool>>,
    /// Told when a root starts being followed (the NATS loop then subscribes its changes).
    pub(crate) followed: tokio::sync::Notify,
    /// What `/metrics` shows of the core.
    pub(crate) metrics: crate::metrics::Metrics,
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
        let results = cat2_client::budget::ByteBudget::new(cfg.memory_budget);
        Self {
            fetches: Arc::new(Fetches::new(&cfg)),
            upstream,
            store: Arc::new(StateStore::new(state)),
            caches: Caches::default(),
            root_locks: Mutex::new(HashMap::new()),
            blocks: crate::blocks::block_cache(),
            synced: Mutex::new(std::collections::HashSet::new()),
            sequences: crate::sequence::Sequences::default(),
            queued_follows: Mutex::new(std::collections::HashSet::new()),
            queued_changes: Mutex::new(HashMap::new()),
            followed: tokio::sync::Notify::new(),
            metrics: crate::metrics::Metrics::default(),
            transfers: crate::files::Transfers::new(results.clone()),
            results,
            cfg,
        }
    }

    /// The state (short critical sections only; mark it changed with [`Sub::state_changed`]).
    pub(crate) fn state(&self) -> MutexGuard<'_, State> {
        self.store.lock()
    }

    /// Notes that the state must be saved (done off the request path, by [`Sub::save_state`]).
    pub(crate) fn state_changed(&self) {
        self.store.changed();
    }

    /// Saves the state if it changed (off the async workers, atomically).
    pub(crate) async fn save_state(&self) {
        self.store.save().await;
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
            .ok_or_else(|| ApiError::not_found("Not Found"))?;
        let root = RootName::new(root)
            .map_err(|_| ApiError::bad_request(format!("Invalid path {full}")))?;
        let rel = DatasetPath::new(rel)
            .map_err(|_| ApiError::bad_request(format!("Invalid path {full}")))?;
        let state = self.state();
        let known = state
            .roots
            .get(root.as_str())
            .ok_or_else(|| ApiError::not_found(format!("{root} not known by the broker")))?;
        if !known.subscribed {
            return Err(ApiError::not_found(format!("Not subscribed to {root}")));
        }
        let etag = known
            .datasets
            .get(rel.as_str())
            .cloned()
            .ok_or_else(|| ApiError::not_found("Not Found"))?;
        Ok((root, rel, etag))
    }

    /// The version of `root/rel` the state holds now.
    fn state_etag(&self, root: &RootName, rel: &DatasetPath) -> Result<String, ApiError> {
        self.state()
            .roots
            .get(root.as_str())
            .and_then(|r| r.datasets.get(rel.as_str()))
            .cloned()
            .ok_or_else(|| ApiError::not_found("Not Found"))
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
        if let Some(c) = self.caches.lookup(root, rel.as_str(), etag) {
            return Ok(c);
        }
        let gate = self.caches.gate(root, rel.as_str()).await;
        // The version may have changed (or gone) while we waited: `create` and `remove` change
        // files and state together under the dataset's gate, so the file on disk is the
        // state's version (after a crash between the two, the next revalidation replaces it).
        let etag = self.state_etag(root, rel)?;
        if let Some(c) = self.caches.lookup(root, rel.as_str(), &etag) {
            return Ok(c);
        }
        let path = self.cache_path(root, rel);
        let kind = kind_of(std::path::Path::new(rel.as_str()));
        let dpath = crate::digests::path(&self.cfg.statedir, root, rel);
        let tag = etag.clone();
        let opened = tokio::task::spawn_blocking(move || {
            CacheFile::open(&path, kind).map(|file| {
                let digests = crate::digests::load(&dpath, &tag, file.meta());
                (file, digests)
            })
        })
        .await
        .map_err(blocking_err)?;
        let e = match opened {
            Ok((file, digests)) => {
                let unchecked = digests.is_none();
                let c = self.insert(root, rel, &etag, kind, file, digests);
                if unchecked {
                    self.adopt_digests(&c);
                }
                return Ok(c);
            }
            Err(e) => e,
        };
        tracing::warn!(root = %root, path = %rel, error = %e, "cache file unusable, recreating it");
        // The publisher is asked with the gate open: it may be slow or hung.
        drop(gate);
        let info = self.upstream.info(root, rel, None).await?;
        let meta = info
            .meta
            .ok_or_else(|| ApiError::internal("publisher sent no metadata"))?;
        let _gate = self.caches.gate(root, rel.as_str()).await;
        // Someone else may have made it meanwhile, or the dataset may be gone; otherwise the
        // publisher's version is the one made (as before the gate was opened).
        if let Some(c) = self.caches.lookup(root, rel.as_str(), &info.etag) {
            return Ok(c);
        }
        self.state_etag(root, rel)?;
        self.create(root, rel, &info.etag, meta, info.digests).await
    }

    /// A cache kept without its digests (made before them, or a crash between its digests
    /// and its file) asks its publisher for them in the background, and checks what it
    /// fetches once they come, if the publisher still serves this version; until then (and
    /// for publishers that send none: HDF5 roots, `--digests off`) it is used unchecked.
    fn adopt_digests(&self, c: &Arc<Cached>) {
        let (upstream, c) = (self.upstream.clone(), c.clone());
        let dpath = crate::digests::path(&self.cfg.statedir, &c.root, &c.rel);
        tokio::spawn(async move {
            let info = match upstream.info(&c.root, &c.rel, None).await {
                Ok(info) if info.etag == c.etag => info,
                _ => {
                    tracing::info!(root = %c.root, path = %c.rel, "no digests for this cache: chunks fetched into it are not checked");
                    return;
                }
            };
            let Some(checked) = info
                .digests
                .and_then(|d| crate::digests::Checked::new(d, &c.meta))
            else {
                tracing::info!(root = %c.root, path = %c.rel, "publisher sends no digests: chunks of this version are not checked");
                return;
            };
            // Checked from now on, and kept for the next start.
            let _ = c.digests.set(checked);
            let cc = c.clone();
            let kept = tokio::task::spawn_blocking(move || {
                let d = cc.digests.get().map(crate::digests::Checked::digests);
                crate::digests::save(&dpath, &cc.etag, d)
            })
            .await;
            if let Ok(Err(e)) = kept {
                tracing::warn!(root = %c.root, path = %c.rel, error = %e, "cannot keep digests");
            }
        });
    }

    fn insert(
        &self,
        root: &RootName,
        rel: &DatasetPath,
        etag: &str,
        kind: Kind,
        file: CacheFile,
        digests: Option<crate::digests::Checked>,
    ) -> Arc<Cached> {
        self.caches
            .insert(Arc::new(Cached::new(root, rel, etag, kind, file, digests)))
    }

    /// Creates (or replaces) the cache of `root/rel` for version `etag` with `meta` and the
    /// `digests` its replies are checked against.
    pub(crate) async fn install(
        &self,
        root: &RootName,
        rel: &DatasetPath,
        etag: &str,
        meta: Meta,
        digests: Option<Digests>,
    ) -> Result<Arc<Cached>, ApiError> {
        let _gate = self.caches.gate(root, rel.as_str()).await;
        self.create(root, rel, etag, meta, digests).await
    }

    async fn create(
        &self,
        root: &RootName,
        rel: &DatasetPath,
        etag: &str,
        meta: Meta,
        digests: Option<Digests>,
    ) -> Result<Arc<Cached>, ApiError> {
        // Digests that do not fit the metadata are refused with it: both came in one reply.
        let checked = match digests {
            Some(d) => Some(crate::digests::Checked::new(d, &meta).ok_or_else(|| {
                ApiError::unavailable(format!(
                    "publisher sent digests that do not fit {root}/{rel}"
                ))
            })?),
            None => {
                tracing::info!(root = %root, path = %rel, "publisher sends no digests: chunks of this version are not checked");
                None
            }
        };
        let dpath = crate::digests::path(&self.cfg.statedir, root, rel);
        let path = self.cache_path(root, rel);
        let kind = kind_of(std::path::Path::new(rel.as_str()));
        if meta.kind != kind {
            return Err(ApiError::unavailable(format!(
                "publisher sent {:?} metadata for {rel}",
                meta.kind
            )));
        }
        let tag = etag.to_owned();
        let (file, checked) = tokio::task::spawn_blocking(move || {
            // The digests first: a cache file is never without the digests of its version
            // (after a crash between the two, the next open finds another version's, or
            // none, and the cache is checked no more than one made before digests).
            crate::digests::save(&dpath, &tag, checked.as_ref().map(|c| c.digests()))
                .map_err(cat2_format::FormatError::from_io(&dpath))?;
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir).map_err(cat2_format::FormatError::from_io(dir))?;
            }
            CacheFile::create(&path, &meta).map(|f| (f, checked))
        })
        .await
        .map_err(blocking_err)?
        .map_err(|e| {
            ApiError::unavailable(format!("unusable metadata for {root}/{rel}: {e}")).caused_by(e)
        })?;
        let c = self.insert(root, rel, etag, kind, file, checked);
        if let Some(r) = self.state().roots.get_mut(root.as_str()) {
            r.datasets.insert(rel.to_string(), etag.to_owned());
        }
        self.state_changed();
        Ok(c)
    }

    /// Forgets `root/rel`: its cache file, and its entry.
    pub(crate) async fn remove(&self, root: &RootName, rel: &str) {
        let _gate = self.caches.gate(root, rel).await;
        self.caches.remove(root, rel);
        if let Ok(p) = DatasetPath::new(rel) {
            let _ = std::fs::remove_file(self.cache_path(root, &p));
            let _ = std::fs::remove_file(crate::digests::path(&self.cfg.statedir, root, &p));
        }
        if let Some(r) = self.state().roots.get_mut(root.as_str()) {
            r.datasets.remove(rel);
        }
        self.state_changed();
    }
}
