//! Fetching chunks for a cache file: single flight (concurrent requests needing one chunk
//! fetch it once), batches of about [`BATCH_BYTES`] requested several at once within a budget
//! of bytes in flight, retries on other publishers while time remains, and a flush before
//! anyone waiting is told.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use cat2_client::ClientError;
use cat2_format::CacheFile;
use cat2_proto::ErrorCode;
use cat2_proto::msg::ChunksRequest;
use futures::StreamExt;
use tokio::sync::{Semaphore, watch};
use tokio::time::Instant;

use super::{BATCH_BYTES, PART_BYTES, STREAM_IDLE, Sub, blocking_err};
use crate::cached::Cached;
use crate::{ApiError, Config};

/// Rounds of [`Sub::ensure`] for chunks whose fetch, started by another request, failed.
const MAX_ROUNDS: usize = 8;

/// (cache instance, chunk).
type FlightKey = (u64, u64);
type FlightResult = Option<Result<(), ApiError>>;

/// The chunk fetches in flight, and their bounds.
#[derive(Debug)]
pub(crate) struct Fetches {
    /// Who fetches which chunk: its waiters' receiver. A leaf `std` lock, taken under a
    /// cache file's read lock (see the lock order in `sub`).
    inflight: Mutex<HashMap<FlightKey, watch::Receiver<FlightResult>>>,
    /// Bulk fetches: downloads and large slices.
    bulk: Pool,
    /// Small reads with a deadline (interactive slices): a reserve of their own, so that
    /// they never queue behind what bulk transfers asked for.
    small: Pool,
}

/// Request slots and the bytes they may ask for, in MiB.
#[derive(Debug)]
struct Pool {
    permits: Semaphore,
    buffer_mib: Semaphore,
    cap: u32,
}

impl Pool {
    fn new(slots: usize, cap: u32) -> Self {
        Self {
            permits: Semaphore::new(slots.max(1)),
            buffer_mib: Semaphore::new(cap as usize),
            cap,
        }
    }
}

impl Fetches {
    /// Chunks being fetched now.
    pub(crate) fn in_flight(&self) -> usize {
        self.inflight
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    pub(crate) fn new(cfg: &Config) -> Self {
        let cap = mib(cfg.fetch_buffer_bytes);
        Self {
            inflight: Mutex::default(),
            bulk: Pool::new(cfg.parallel_fetches, cap),
            small: Pool::new((cfg.parallel_fetches / 4).max(2), (cap / 4).max(4)),
        }
    }

    /// The pool a batch of `mib` MiB draws from.
    fn pool(&self, mib: u32, interactive: bool) -> &Pool {
        if interactive && mib <= self.small.cap {
            &self.small
        } else {
            &self.bulk
        }
    }
}

/// `bytes` in whole MiB, at least 1, at most what `u32` permits count.
fn mib(bytes: u64) -> u32 {
    bytes.div_ceil(1 << 20).clamp(1, u64::from(u32::MAX >> 4)) as u32
}

impl Sub {
    /// Makes sure `chunks` of `c` are cached and flushed, fetching the missing ones (once,
    /// however many requests need them). With a `deadline`, fails past it; without one (whole
    /// downloads), fails only when publishers stall for the request timeout. A fetch another
    /// request started carries that request's deadline: when it fails, this request fetches
    /// those chunks again on its own terms rather than take the other's error.
    pub(crate) async fn ensure(
        self: &Arc<Self>,
        c: &Arc<Cached>,
        chunks: Vec<u64>,
        deadline: Option<Instant>,
    ) -> Result<(), ApiError> {
        let mut chunks = chunks;
        let mut round = 0;
        loop {
            let failed = self.ensure_once(c, chunks, deadline).await?;
            let Some((again, err)) = failed else {
                return Ok(());
            };
            round += 1;
            if round >= MAX_ROUNDS || deadline.is_some_and(|d| Instant::now() >= d) {
                return Err(err);
            }
            chunks = again;
        }
    }

    /// One round of [`Sub::ensure`]: our own fetch's outcome, or the chunks whose fetch by
    /// another request failed (with the first such error).
    async fn ensure_once(
        self: &Arc<Self>,
        c: &Arc<Cached>,
        chunks: Vec<u64>,
        deadline: Option<Instant>,
    ) -> Result<Option<(Vec<u64>, ApiError)>, ApiError> {
        // Which chunks are missing and who fetches them, decided under the file's read lock: a
        // fetch fills its chunks (under the write lock) before it leaves `inflight`, so a chunk
        // seen missing here is either being fetched (we wait for it) or not (we fetch it).
        let (sub, cc) = (self.clone(), c.clone());
        let (task, waits) = tokio::task::spawn_blocking(move || {
            let f = cc.file.read();
            let mut mine = BTreeMap::new();
            let mut waits = Vec::new();
            let mut inflight = sub
                .fetches
                .inflight
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            let wanted = chunks.len() as u64;
            let chunks: Vec<u64> = chunks.into_iter().filter(|n| !f.is_filled(*n)).collect();
            sub.metrics.chunk_misses.inc_by(chunks.len() as u64);
            sub.metrics
                .chunk_hits
                .inc_by(wanted.saturating_sub(chunks.len() as u64));
            for n in chunks {
                if let Some(rx) = inflight.get(&(cc.id, n)) {
                    waits.push((n, rx.clone()));
                } else {
                    let (tx, rx) = watch::channel(None);
                    inflight.insert((cc.id, n), rx);
                    let flight = Flight {
                        fetches: sub.fetches.clone(),
                        key: (cc.id, n),
                        tx: Some(tx),
                    };
                    mine.insert(n, flight);
                }
            }
            drop((inflight, f));
            // Fetched in a task of its own, started here: a client that goes away does not
            // strand the others.
            let task = (!mine.is_empty())
                .then(|| tokio::spawn(fetch(sub.clone(), cc.clone(), mine, deadline)));
            (task, waits)
        })
        .await
        .map_err(blocking_err)?;
        if let Some(t) = task {
            t.await.map_err(|e| {
                ApiError::internal(format!("fetch task failed: {e}")).caused_by(e)
            })??;
        }
        let key = format!("{}/{}", c.root, c.rel);
        let mut failed: Option<(Vec<u64>, ApiError)> = None;
        for (n, mut rx) in waits {
            let wait = rx.wait_for(Option::is_some);
            let waited = match deadline {
                Some(d) => tokio::time::timeout_at(d, wait).await,
                None => Ok(wait.await),
            };
            let err = match waited {
                Err(_) => {
                    return Err(ApiError::timeout(format!(
                        "chunks of {key} did not arrive in {:?}",
                        self.cfg.timeout
                    )));
                }
                Ok(Err(_)) => {
                    ApiError::unavailable(format!("fetching chunks of {key} was abandoned"))
                }
                Ok(Ok(v)) => match v.as_ref() {
                    Some(Err(e)) => e.clone(),
                    _ => continue,
                },
            };
            match &mut failed {
                Some((again, _)) => again.push(n),
                None => failed = Some((vec![n], err)),
            }
        }
        Ok(failed)
    }
}

/// A chunk this task fetches for everyone: its waiters learn the outcome exactly once, and
/// its single-flight entry goes away even if the task is cancelled or panics.
struct Flight {
    fetches: Arc<Fetches>,
    key: FlightKey,
    tx: Option<watch::Sender<FlightResult>>,
}

impl Flight {
    fn finish(mut self, r: Result<(), ApiError>) {
        if let Some(tx) = self.tx.take() {
            let _ = tx.send(Some(r));
        }
    }
}

impl Drop for Flight {
    fn drop(&mut self) {
        self.fetches
            .inflight
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&self.key);
        if let Some(tx) = self.tx.take() {
            let _ = tx.send(Some(Err(ApiError::unavailable(
                "the chunk fetch was abandoned",
            ))));
        }
    }
}

/// Fetches `chunks` of `c`: batches of about [`BATCH_BYTES`], several at once, each retried
/// (on another publisher of the queue group) while time remains.
async fn fetch(
    sub: Arc<Sub>,
    c: Arc<Cached>,
    chunks: BTreeMap<u64, Flight>,
    deadline: Option<Instant>,
) -> Result<(), ApiError> {
    let chunk_bytes = u64::try_from(c.meta.chunksize).unwrap_or(1).max(1);
    // A batch is written into the link at once, and a small read's reply queues behind all of
    // it: no batch asks for more than the fetch buffer (on a 100 Mbit/s link an 8 MiB batch
    // held each small read ~0.67 s, whatever the buffer; BENCHMARKS.md, WAN section).
    let batch_bytes = BATCH_BYTES.min(sub.cfg.fetch_buffer_bytes.max(1));
    let per_batch = (batch_bytes / chunk_bytes).clamp(1, 256) as usize;
    let mut batches = Vec::new();
    let mut it = chunks.into_iter().peekable();
    while it.peek().is_some() {
        batches.push(it.by_ref().take(per_batch).collect::<BTreeMap<_, _>>());
    }
    let results = futures::future::join_all(
        batches
            .into_iter()
            .map(|b| fetch_batch(&sub, &c, b, deadline)),
    )
    .await;
    results.into_iter().collect()
}

/// Why a chunk reply was not stored.
enum Rejected {
    /// The reply is not the chunk asked for, for `reason` (the retries metric's label):
    /// `bad_chunk`, not a sound chunk of that size; `digest`, well formed but not the bytes
    /// its publisher digested (another member of the queue group sent them).
    Reply(&'static str, ApiError),
    /// The cache failed (nothing a publisher can mend).
    Local(ApiError),
}

/// Verifies a chunk (its structure and its digest, outside the lock), then stores it part by
/// part, as it arrived (neither joined in memory nor holding off readers).
async fn store(c: &Arc<Cached>, n: u64, parts: cat2_client::Parts) -> Result<(), Rejected> {
    let cc = c.clone();
    tokio::task::spawn_blocking(move || {
        let refs: Vec<&bytes::Bytes> = parts.iter().collect();
        let checked = CacheFile::verify_parts(&cc.meta, n, &refs).map_err(|e| {
            Rejected::Reply(
                "bad_chunk",
                ApiError::unavailable(format!("publisher sent a bad chunk {n}: {e}")).caused_by(e),
            )
        })?;
        if let Some(d) = cc.digests.get()
            && !d.chunk_ok(n, &refs)
        {
            return Err(Rejected::Reply(
                "digest",
                ApiError::unavailable(format!(
                    "chunk {n} of {}/{}: every reply failed its digest",
                    cc.root, cc.rel
                )),
            ));
        }
        cc.file
            .store(&checked)
            .map_err(|e| Rejected::Local(e.into()))
    })
    .await
    .map_err(|e| Rejected::Local(blocking_err(e)))?
}

async fn flush(c: &Arc<Cached>) -> Result<(), ApiError> {
    let cc = c.clone();
    tokio::task::spawn_blocking(move || cc.file.flush())
        .await
        .map_err(blocking_err)?
        .map_err(ApiError::from)
}

async fn fetch_batch(
    sub: &Arc<Sub>,
    c: &Arc<Cached>,
    mut pending: BTreeMap<u64, Flight>,
    deadline: Option<Instant>,
) -> Result<(), ApiError> {
    let key = format!("{}/{}", c.root, c.rel);
    let timeout = sub.cfg.timeout;
    let chunk_bytes = u64::try_from(c.meta.chunksize).unwrap_or(1).max(1);
    let mut backoff = Duration::from_millis(20);
    let mut last_err = ApiError::timeout(format!("chunks of {key} did not arrive in {timeout:?}"));
    let mut done: Vec<Flight> = Vec::new();
    // Without a request deadline, the batch may take as long as it keeps progressing: the
    // stall deadline moves with each chunk stored and with time spent waiting for a permit
    // (other batches' turn), never with refused replies, errors or silence, so members of
    // the queue group that only ever fail (a rogue, a broken replica) cannot hold it.
    let mut stall_deadline = deadline.unwrap_or_else(|| Instant::now() + timeout);
    'attempts: while !pending.is_empty() && Instant::now() < stall_deadline {
        // One request slot, and room for the batch's bytes (a batch bigger than the whole
        // buffer takes all of it).
        let fetches = &sub.fetches;
        let cost = mib(chunk_bytes.saturating_mul(pending.len() as u64));
        let pool = fetches.pool(cost, deadline.is_some());
        let cost = cost.min(pool.cap);
        let permits = async {
            let slot = pool.permits.acquire().await?;
            let room = pool.buffer_mib.acquire_many(cost).await?;
            Ok::<_, tokio::sync::AcquireError>((slot, room))
        };
        let waiting = Instant::now();
        let permit = match deadline {
            Some(d) => tokio::time::timeout_at(d, permits).await.ok(),
            None => Some(permits.await),
        };
        let Some(Ok(_permit)) = permit else { break };
        if deadline.is_none() {
            stall_deadline += waiting.elapsed();
        }
        let req = ChunksRequest {
            path: c.rel.clone(),
            etag: c.etag.clone(),
            chunks: pending.keys().copied().collect(),
            max_part: PART_BYTES,
        };
        let started = std::time::Instant::now();
        let (mut first_at, mut store_time, mut got) = (None, Duration::ZERO, 0usize);
        let mut stream = match tokio::time::timeout_at(
            stall_deadline,
            sub.upstream.chunks(&c.root, req),
        )
        .await
        {
            Err(_) => break,
            Ok(Err(e)) => {
                last_err = e.into();
                tokio::time::sleep(
                    backoff.min(stall_deadline.saturating_duration_since(Instant::now())),
                )
                .await;
                backoff = (backoff * 2).min(Duration::from_millis(500));
                continue;
            }
            Ok(Ok(s)) => s,
        };
        loop {
            // A silent publisher costs at most STREAM_IDLE: then it is asked again (the
            // queue group may hand the request to another member).
            let idle_at = (Instant::now() + STREAM_IDLE).min(stall_deadline);
            let item = match tokio::time::timeout_at(idle_at, stream.next()).await {
                Ok(None) => break,
                Err(_) if idle_at >= stall_deadline => break,
                Err(_) => Err(ClientError::Timeout {
                    subject: format!("chunks of {key}"),
                    timeout: STREAM_IDLE,
                }),
                Ok(Some(item)) => item,
            };
            match item {
                Ok((n, bytes)) => {
                    first_at.get_or_insert_with(|| started.elapsed());
                    let Some(flight) = pending.remove(&n) else {
                        continue;
                    };
                    let size = bytes.iter().map(bytes::Bytes::len).sum::<usize>();
                    got += size;
                    let t = std::time::Instant::now();
                    let stored = store(c, n, bytes).await;
                    store_time += t.elapsed();
                    match stored {
                        Ok(()) => {
                            sub.metrics.chunks_fetched.inc();
                            sub.metrics.fetched_bytes.inc_by(size as u64);
                            done.push(flight);
                            if deadline.is_none() {
                                stall_deadline = Instant::now() + timeout;
                            }
                        }
                        Err(Rejected::Local(e)) => {
                            flight.finish(Err(e.clone()));
                            last_err = e;
                        }
                        Err(Rejected::Reply(reason, e)) => {
                            // Never stored, and the member that sent it is not believed for
                            // the rest of its stream: asked again while time remains
                            // (nats-server picks a member of the queue group at random).
                            tracing::warn!(dataset = %key, chunk = n, error = %e, "rejected a chunk reply: asking again");
                            sub.metrics.retry(reason);
                            pending.insert(n, flight);
                            last_err = e;
                            tokio::time::sleep(
                                backoff
                                    .min(stall_deadline.saturating_duration_since(Instant::now())),
                            )
                            .await;
                            backoff = (backoff * 2).min(Duration::from_millis(500));
                            break;
                        }
                    }
                    if pending.is_empty() {
                        tracing::debug!(dataset = %key, bytes = got,
                            first_ms = first_at.unwrap_or_default().as_secs_f64() * 1e3,
                            all_ms = started.elapsed().as_secs_f64() * 1e3,
                            store_ms = store_time.as_secs_f64() * 1e3, "chunk batch received");
                    }
                }
                Err(e) => {
                    // A busy publisher asks to be asked again (perhaps another member of
                    // the queue group answers); the backoff paces it.
                    let retry = e.code() == ErrorCode::Busy
                        || matches!(
                            e,
                            ClientError::Timeout { .. }
                                | ClientError::Unavailable(_)
                                | ClientError::Protocol { .. }
                        );
                    tracing::debug!(dataset = %key, error = %e, retry, "chunk stream failed");
                    sub.metrics.retry(match &e {
                        _ if e.code() == ErrorCode::Busy => "busy",
                        _ if e.code() == ErrorCode::Stale => "stale",
                        ClientError::Timeout { .. } => "timeout",
                        ClientError::Unavailable(_) => "unavailable",
                        ClientError::Protocol { .. } => "protocol",
                        ClientError::Remote { .. } => "error",
                    });
                    if e.code() == ErrorCode::Stale {
                        last_err =
                            ApiError::unavailable(format!("{key} changed on its publisher; retry"));
                        sub.spawn_revalidate(c.root.clone(), c.rel.clone());
                        break 'attempts;
                    }
                    last_err = e.into();
                    if !retry {
                        break 'attempts;
                    }
                    // No responders answer at once: pace the retries as above.
                    tokio::time::sleep(
                        backoff.min(stall_deadline.saturating_duration_since(Instant::now())),
                    )
                    .await;
                    backoff = (backoff * 2).min(Duration::from_millis(500));
                    break;
                }
            }
        }
    }
    // Durable before anyone is told: waiters may serve the file itself.
    let flushed = flush(c).await;
    for f in done {
        f.finish(flushed.clone());
    }
    flushed?;
    if pending.is_empty() {
        return Ok(());
    }
    for (_, f) in pending {
        f.finish(Err(last_err.clone()));
    }
    Err(last_err)
}
