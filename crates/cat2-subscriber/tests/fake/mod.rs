//! An in-memory [`Upstream`]: one root's datasets, made from real Blosc2 files written by
//! cat2-format, served from memory; it can be taken down, go silent, answer busy, delay its
//! chunk streams and count every request, so tests drive the subscriber's core through
//! exactly the interleavings they mean (with paused time: a delay costs nothing).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use cat2_client::ClientError;
use cat2_format::{Dataset, Meta};
use cat2_proto::msg::{BlocksRequest, ChunksRequest, Digests, Info, List, RootEntry, Roots};
use cat2_proto::{DatasetPath, ErrorCode, RootName};
use cat2_subscriber::{ChunkItems, Upstream};
use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt};
use tokio::sync::watch;

/// The one root the fake serves.
pub(crate) const ROOT: &str = "foo";

/// A request the fake was asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Call {
    Roots,
    List,
    Info(String),
    Chunks(String, Vec<u64>),
    Blocks(String, u64, Vec<u64>),
}

/// How the publishers behave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Answers.
    Up,
    /// Nobody serves the root (`Unavailable` at once).
    Down,
    /// Takes requests and never answers.
    Silent,
}

/// One dataset version, all in memory.
#[derive(Debug)]
struct Version {
    etag: String,
    meta: Meta,
    chunks: Vec<Bytes>,
    /// By chunk, each block as a one-block chunk (`None`: blocks do not decode alone).
    blocks: Vec<Option<Vec<Bytes>>>,
    /// As a publisher digests it.
    digests: Option<Digests>,
}

#[derive(Debug)]
struct Inner {
    datasets: BTreeMap<String, Arc<Version>>,
    mode: Mode,
    /// The next this many chunk requests are taken and never answered.
    silent_chunks: usize,
    silent_blocks: usize,
    /// The next this many chunk requests are answered `Busy`.
    busy_chunks: usize,
    /// The next this many chunk requests are answered with truncated chunks.
    bad_chunks: usize,
    /// The next this many chunk (block) requests are answered with the next chunk's (block's)
    /// bytes: well formed, wrong (what a rogue member of the queue group can send).
    forged_chunks: usize,
    forged_blocks: usize,
    /// `info` carries no digests (a publisher before them).
    no_digests: bool,
    /// Before each chunk of a stream.
    chunk_delay: Duration,
    versions: u64,
}

/// The fake upstream.
#[derive(Debug)]
pub(crate) struct Fake {
    inner: Mutex<Inner>,
    calls: watch::Sender<Vec<Call>>,
}

impl Fake {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Self {
            inner: Mutex::new(Inner {
                datasets: BTreeMap::new(),
                mode: Mode::Up,
                silent_chunks: 0,
                silent_blocks: 0,
                busy_chunks: 0,
                bad_chunks: 0,
                forged_chunks: 0,
                forged_blocks: 0,
                no_digests: false,
                chunk_delay: Duration::ZERO,
                versions: 0,
            }),
            calls: watch::Sender::new(Vec::new()),
        })
    }

    fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap()
    }

    /// Serves the Blosc2 file at `file` as `path` (a new version when `path` exists).
    pub(crate) fn put(&self, path: &str, file: &Path) {
        let ds = Dataset::open(file).unwrap();
        let chunks: Vec<Bytes> = (0..ds.nchunks())
            .map(|n| Bytes::from(ds.raw_chunk(n).unwrap()))
            .collect();
        let bb = ds.layout().block_bytes().max(1) as u64;
        let blocks = (0..ds.nchunks())
            .map(|n| {
                let nblocks = (ds.meta().chunk_nbytes(n).unwrap().max(0) as u64).div_ceil(bb);
                (0..nblocks)
                    .map(|b| ds.one_block(n, b).unwrap().map(|(v, _)| Bytes::from(v)))
                    .collect::<Option<Vec<_>>>()
            })
            .collect();
        let mut inner = self.inner();
        inner.versions += 1;
        let v = Version {
            etag: format!("v{}", inner.versions),
            meta: ds.meta().clone(),
            chunks,
            blocks,
            digests: ds.digests().unwrap(),
        };
        inner.datasets.insert(path.to_owned(), Arc::new(v));
    }

    /// The etag `path` has now.
    pub(crate) fn etag(&self, path: &str) -> String {
        self.inner().datasets[path].etag.clone()
    }

    pub(crate) fn set_mode(&self, mode: Mode) {
        self.inner().mode = mode;
    }

    /// The next `n` chunk requests are taken and never answered.
    pub(crate) fn silence_next_chunk_requests(&self, n: usize) {
        self.inner().silent_chunks = n;
    }

    /// The next `n` blocks requests are taken and never answered.
    pub(crate) fn silence_next_block_requests(&self, n: usize) {
        self.inner().silent_blocks = n;
    }

    /// The next `n` chunk requests are answered `Busy`.
    pub(crate) fn busy_next_chunk_requests(&self, n: usize) {
        self.inner().busy_chunks = n;
    }

    /// The next `n` chunk requests are answered with every chunk cut in half (bad bytes).
    pub(crate) fn corrupt_next_chunk_requests(&self, n: usize) {
        self.inner().bad_chunks = n;
    }

    /// The next `n` chunk requests are answered with each chunk's successor's bytes.
    pub(crate) fn forge_next_chunk_requests(&self, n: usize) {
        self.inner().forged_chunks = n;
    }

    /// The next `n` blocks requests are answered with each block's successor's bytes.
    pub(crate) fn forge_next_block_requests(&self, n: usize) {
        self.inner().forged_blocks = n;
    }

    /// Whether `info` carries digests.
    pub(crate) fn send_digests(&self, yes: bool) {
        self.inner().no_digests = !yes;
    }

    /// Each chunk of a stream comes after `d`.
    pub(crate) fn delay_chunks(&self, d: Duration) {
        self.inner().chunk_delay = d;
    }

    /// Every request so far.
    pub(crate) fn calls(&self) -> Vec<Call> {
        self.calls.borrow().clone()
    }

    /// How many times chunk `n` of `path` was asked for.
    pub(crate) fn times_asked(&self, path: &str, n: u64) -> usize {
        self.calls()
            .iter()
            .filter(|c| matches!(c, Call::Chunks(p, ns) if p == path && ns.contains(&n)))
            .count()
    }

    /// Chunk requests so far.
    pub(crate) fn chunk_requests(&self) -> usize {
        self.calls()
            .iter()
            .filter(|c| matches!(c, Call::Chunks(..)))
            .count()
    }

    /// Waits until at least `n` chunk requests were made.
    pub(crate) async fn wait_chunk_requests(&self, n: usize) {
        let mut rx = self.calls.subscribe();
        rx.wait_for(|calls| {
            calls
                .iter()
                .filter(|c| matches!(c, Call::Chunks(..)))
                .count()
                >= n
        })
        .await
        .unwrap();
    }

    /// Waits until the calls so far satisfy `f`.
    pub(crate) async fn wait_calls(&self, f: impl Fn(&[Call]) -> bool) {
        let mut rx = self.calls.subscribe();
        rx.wait_for(|calls| f(calls)).await.unwrap();
    }

    fn called(&self, c: Call) {
        self.calls.send_modify(|calls| calls.push(c));
    }

    fn check_up(&self, what: &str) -> Result<Mode, ClientError> {
        match self.inner().mode {
            Mode::Down => Err(ClientError::Unavailable(format!("nobody serves {what}"))),
            m => Ok(m),
        }
    }

    fn version(&self, path: &str) -> Result<Arc<Version>, ClientError> {
        self.inner()
            .datasets
            .get(path)
            .cloned()
            .ok_or_else(|| remote(ErrorCode::NotFound, format!("{path}: not found")))
    }

    /// The stream of `ids` taken from `items` (of version `etag` asked for).
    fn stream(
        &self,
        path: &str,
        etag: &str,
        ids: Vec<u64>,
        pick: impl Fn(&Version, u64) -> Option<Bytes> + Send + 'static,
    ) -> Result<ChunkItems, ClientError> {
        let v = self.version(path)?;
        if v.etag != etag {
            return Err(remote(ErrorCode::Stale, format!("{path} changed")));
        }
        let delay = self.inner().chunk_delay;
        Ok(futures::stream::iter(ids)
            .then(move |n| {
                let item = pick(&v, n)
                    .map(|b| (n, vec![b]))
                    .ok_or_else(|| remote(ErrorCode::BadRequest, format!("no item {n}")));
                async move {
                    tokio::time::sleep(delay).await;
                    item
                }
            })
            .boxed())
    }
}

fn remote(code: ErrorCode, message: String) -> ClientError {
    ClientError::Remote { code, message }
}

/// A future that never completes (a silent publisher).
fn silent<T: Send + 'static>() -> BoxFuture<'static, T> {
    futures::future::pending().boxed()
}

impl Upstream for Fake {
    fn roots(&self) -> BoxFuture<'_, Result<Roots, ClientError>> {
        self.called(Call::Roots);
        let online = self.inner().mode == Mode::Up;
        let roots = Roots {
            roots: vec![RootEntry {
                name: RootName::new(ROOT).expect("a valid root name"),
                http: None,
                online,
            }],
            next: None,
        };
        futures::future::ready(Ok(roots)).boxed()
    }

    fn list<'a>(&'a self, root: &'a RootName) -> BoxFuture<'a, Result<List, ClientError>> {
        assert_eq!(root.as_str(), ROOT);
        self.called(Call::List);
        let r = self.check_up("list").map(|_| List {
            datasets: self
                .inner()
                .datasets
                .keys()
                .map(|p| DatasetPath::new(p).expect("a valid dataset path"))
                .collect(),
        });
        futures::future::ready(r).boxed()
    }

    fn info<'a>(
        &'a self,
        _root: &'a RootName,
        path: &'a DatasetPath,
        if_none_match: Option<String>,
    ) -> BoxFuture<'a, Result<Info, ClientError>> {
        self.called(Call::Info(path.to_string()));
        let r = self
            .check_up("info")
            .and_then(|_| self.version(path.as_str()));
        let no_digests = self.inner().no_digests;
        let r = r.map(|v| {
            let fresh = if_none_match.as_deref() == Some(v.etag.as_str());
            Info {
                etag: v.etag.clone(),
                meta: (!fresh).then(|| v.meta.clone()),
                digests: v.digests.clone().filter(|_| !fresh && !no_digests),
            }
        });
        futures::future::ready(r).boxed()
    }

    fn chunks<'a>(
        &'a self,
        _root: &'a RootName,
        req: ChunksRequest,
    ) -> BoxFuture<'a, Result<ChunkItems, ClientError>> {
        self.called(Call::Chunks(req.path.to_string(), req.chunks.clone()));
        let mode = match self.check_up("chunks") {
            Ok(m) => m,
            Err(e) => return futures::future::ready(Err(e)).boxed(),
        };
        let (silent_now, busy_now) = {
            let mut inner = self.inner();
            let s = inner.silent_chunks > 0;
            inner.silent_chunks = inner.silent_chunks.saturating_sub(1);
            let b = !s && inner.busy_chunks > 0;
            if b {
                inner.busy_chunks -= 1;
            }
            (s, b)
        };
        if mode == Mode::Silent || silent_now {
            // Taken (a stream exists), never answered.
            return futures::future::ready(Ok(futures::stream::pending().boxed())).boxed();
        }
        if busy_now {
            let e = remote(ErrorCode::Busy, "publisher busy: ask again".into());
            let items = futures::stream::iter([Err(e)]).boxed();
            return futures::future::ready(Ok(items)).boxed();
        }
        let (bad_now, forged_now) = {
            let mut inner = self.inner();
            let b = inner.bad_chunks > 0;
            inner.bad_chunks = inner.bad_chunks.saturating_sub(1);
            let f = inner.forged_chunks > 0;
            inner.forged_chunks = inner.forged_chunks.saturating_sub(1);
            (b, f)
        };
        let r = self.stream(req.path.as_str(), &req.etag, req.chunks, move |v, n| {
            let n = usize::try_from(n).ok()?;
            let n = if forged_now {
                (n + 1) % v.chunks.len()
            } else {
                n
            };
            let c = v.chunks.get(n).cloned()?;
            Some(if bad_now { c.slice(..c.len() / 2) } else { c })
        });
        futures::future::ready(r).boxed()
    }

    fn blocks<'a>(
        &'a self,
        _root: &'a RootName,
        req: BlocksRequest,
    ) -> BoxFuture<'a, Result<ChunkItems, ClientError>> {
        self.called(Call::Blocks(
            req.path.to_string(),
            req.chunk,
            req.blocks.clone(),
        ));
        let mode = match self.check_up("blocks") {
            Ok(m) => m,
            Err(e) => return futures::future::ready(Err(e)).boxed(),
        };
        if mode == Mode::Silent {
            return silent();
        }
        let silent_now = {
            let mut inner = self.inner();
            let s = inner.silent_blocks > 0;
            inner.silent_blocks = inner.silent_blocks.saturating_sub(1);
            s
        };
        if silent_now {
            return futures::future::ready(Ok(futures::stream::pending().boxed())).boxed();
        }
        let forged_now = {
            let mut inner = self.inner();
            let f = inner.forged_blocks > 0;
            inner.forged_blocks = inner.forged_blocks.saturating_sub(1);
            f
        };
        let chunk = req.chunk;
        let r = self.stream(req.path.as_str(), &req.etag, req.blocks, move |v, b| {
            let blocks = v.blocks.get(usize::try_from(chunk).ok()?)?.as_ref()?;
            let b = usize::try_from(b).ok()?;
            let b = if forged_now {
                (b + 1) % blocks.len()
            } else {
                b
            };
            blocks.get(b).cloned()
        });
        futures::future::ready(r).boxed()
    }
}
