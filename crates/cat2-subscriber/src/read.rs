//! Reading selections from cache files.
//!
//! - Small reads (a quarter of a chunk's blocks at most) of chunks not cached yet fetch only
//!   the blocks they need (a 64×64 window of an 11 MB chunk is one ~100 KB block: 100× less
//!   traffic on slow or costly links), kept decoded in a bounded in-memory cache. Larger reads
//!   and downloads cache whole chunks; with `prefetch_chunks`, small reads also fetch their
//!   chunks whole into the cache, in the background.
//! - Healing: chunks are checked structurally when they arrive (cheap), so a chunk whose
//!   compressed bytes are garbage is found when a block of it is decoded. It is then dropped
//!   from the cache (marked UNINIT, the file stays a valid frame), fetched again, and the
//!   read retried once.

use std::sync::Arc;

use cat2_array::Selection;
use cat2_format::FormatError;
use cat2_proto::msg::BlocksRequest;
use futures::StreamExt;
use tokio::time::Instant;

use crate::ApiError;
use crate::blocks::Blocks;
use crate::cached::Cached;
use crate::sub::Sub;

/// How one blocks request went.
enum Attempt {
    Got(Vec<(u64, Vec<bytes::Bytes>)>),
    Silent,
    Failed,
}

/// A read fetches blocks of a chunk on their own when it needs at most this fraction of them.
const BLOCKS_FRACTION: u64 = 4;

/// What one read on the blocking pool gives back.
enum Read<T, F> {
    Done(Result<T, ApiError>),
    /// Chunk `n`, stored at the given offset, failed to decode: the reader hands back what it
    /// was given.
    Corrupt(u64, Option<u64>, String, Selection, F),
}

impl Sub {
    /// Reads `sel` (whose chunks are cached) from `c` and hands the items to `then`, both on
    /// the blocking pool.
    pub(crate) async fn read<T, F>(
        self: &Arc<Self>,
        c: &Arc<Cached>,
        sel: Selection,
        deadline: Option<Instant>,
        blocks: Blocks,
        then: F,
    ) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(Vec<u8>, &Selection) -> Result<T, ApiError> + Send + 'static,
    {
        let blocks = Arc::new(blocks);
        match read_once(c, sel, blocks.clone(), then).await? {
            Read::Done(r) => r,
            Read::Corrupt(n, at, reason, sel, then) => {
                tracing::warn!(root = %c.root, path = %c.rel, chunk = n, reason = %reason,
                    "a cached chunk failed to decode; fetching it again");
                self.forget(c, n, at).await?;
                self.ensure(c, vec![n], deadline).await?;
                match read_once(c, sel, blocks, then).await? {
                    Read::Done(r) => r,
                    Read::Corrupt(n, at, reason, ..) => {
                        self.forget(c, n, at).await?;
                        Err(ApiError::unavailable(format!(
                            "chunk {n} of {}/{} does not decode: {reason}",
                            c.root, c.rel
                        )))
                    }
                }
            }
        }
    }

    /// For a small read of chunks not cached yet: the decoded blocks `sel` needs from them,
    /// from the block cache or fetched on their own (then kept in the block cache). With
    /// `prefetch_chunks`, also starts fetching the whole chunks in the background. `None`
    /// when the read should wait for whole chunks instead (a large read, blocks that do not
    /// decode alone, a publisher without block requests).
    pub(crate) async fn fetch_blocks(
        self: &Arc<Self>,
        c: &Arc<Cached>,
        sel: &Selection,
        deadline: Instant,
    ) -> Option<Blocks> {
        let chunks = c.layout.chunks_touching(sel);
        let unfilled = |f: &cat2_format::CacheFile, chunks: Vec<u64>| {
            chunks
                .into_iter()
                .filter(|n| !f.is_filled(*n))
                .collect::<Vec<_>>()
        };
        // Without a blocking hop when no chunk is being stored into the file.
        let quick = c.file.try_read().map(|f| unfilled(&f, chunks.clone()));
        let missing = match quick {
            Some(m) => m,
            None => {
                let cc = c.clone();
                tokio::task::spawn_blocking(move || unfilled(&cc.file.read(), chunks))
                    .await
                    .ok()?
            }
        };
        let mut have = Blocks::new();
        if missing.is_empty() {
            return Some(have);
        }
        let bb = c.layout.block_bytes().max(1) as u64;
        let mut wanted = Vec::new();
        for &n in &missing {
            let total = c
                .meta
                .chunk_nbytes(n)
                .map_or(0, |b| (b.max(0) as u64).div_ceil(bb));
            let blocks = c.layout.blocks_touching(n, sel).ok()?;
            if total < 4 || blocks.len() as u64 * BLOCKS_FRACTION > total {
                return None;
            }
            let mut absent = Vec::new();
            for b in blocks {
                match self.blocks.get(&(c.id, n, b)) {
                    Some(data) => {
                        have.insert((n, b), data);
                    }
                    None => absent.push(b),
                }
            }
            if !absent.is_empty() {
                wanted.push((n, absent));
            }
        }
        if self.cfg.prefetch_chunks {
            // The whole chunks, for the cache (once, whoever else needs them).
            let (sub, cc) = (self.clone(), c.clone());
            tokio::spawn(async move {
                if let Err(e) = sub.ensure(&cc, missing, None).await {
                    tracing::debug!(root = %cc.root, path = %cc.rel, error = %e, "background chunk fetch failed");
                }
            });
        }
        let got = futures::future::join_all(
            wanted
                .into_iter()
                .map(|(n, blocks)| self.fetch_chunk_blocks(c, n, blocks, deadline)),
        )
        .await;
        for (n, blocks) in got {
            for (b, data) in blocks? {
                self.blocks.insert((c.id, n, b), data.clone());
                have.insert((n, b), data);
            }
        }
        Some(have)
    }

    /// Fetches and decodes blocks of chunk `n`; `None` on any failure (the caller then
    /// waits for the whole chunk).
    async fn fetch_chunk_blocks(
        &self,
        c: &Arc<Cached>,
        n: u64,
        blocks: Vec<u64>,
        deadline: Instant,
    ) -> (u64, Option<Vec<(u64, Arc<Vec<u8>>)>>) {
        if c.digests.get().is_some_and(|d| !d.has_blocks()) {
            // Blocks that cannot be checked are not asked for: the chunk is.
            return (n, None);
        }
        let req = BlocksRequest {
            path: c.rel.clone(),
            etag: c.etag.clone(),
            chunk: n,
            blocks: blocks.clone(),
            max_part: 8 << 20,
        };
        // A member of the queue group that goes silent (a hung server, a dead link) costs
        // one stream idle time, not the whole deadline: the request is then asked again (the
        // queue group may hand it to another member), until the deadline.
        let mut raw = None;
        while raw.is_none() && Instant::now() < deadline {
            match self
                .fetch_blocks_once(c, req.clone(), blocks.len(), deadline)
                .await
            {
                Attempt::Got(r) => raw = Some(r),
                Attempt::Silent => {
                    tracing::debug!(root = %c.root, path = %c.rel, chunk = n, "blocks reply silent: asking again")
                }
                Attempt::Failed => break,
            }
        }
        let Some(raw) = raw else {
            return (n, None);
        };
        let cc = c.clone();
        let forged = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let seen = forged.clone();
        let decoded = tokio::task::spawn_blocking(move || {
            let bb = cc.layout.block_bytes();
            let total = usize::try_from(cc.meta.chunk_nbytes(n).ok()?).ok()?;
            raw.into_iter()
                .map(|(b, bytes)| {
                    let start = usize::try_from(b).ok()?.checked_mul(bb)?;
                    let len = bb.min(total.checked_sub(start)?);
                    // Checked before it is decoded, kept or served; a block that fails is
                    // never used (the whole chunk, itself checked, is fetched instead).
                    if let Some(d) = cc.digests.get()
                        && !d.block_ok(n, b, &bytes)
                    {
                        tracing::warn!(root = %cc.root, path = %cc.rel, chunk = n, block = b, "a block reply failed its digest: dropped");
                        seen.store(true, std::sync::atomic::Ordering::Relaxed);
                        return None;
                    }
                    let data = cat2_format::decode_one_block(&bytes.concat(), len).ok()?;
                    Some((b, Arc::new(data)))
                })
                .collect::<Option<Vec<_>>>()
        })
        .await
        .ok()
        .flatten();
        if forged.load(std::sync::atomic::Ordering::Relaxed) {
            self.metrics.retry("block_digest");
        }
        if decoded.is_none() {
            tracing::debug!(root = %c.root, path = %c.rel, chunk = n, "blocks unusable, waiting for the chunk");
        }
        (n, decoded)
    }

    /// One blocks request: its items, or whether it went silent (worth asking again) or
    /// failed otherwise.
    async fn fetch_blocks_once(
        &self,
        c: &Arc<Cached>,
        req: BlocksRequest,
        count: usize,
        deadline: Instant,
    ) -> Attempt {
        let idle = |now: Instant| (now + crate::sub::STREAM_IDLE).min(deadline);
        let stream =
            tokio::time::timeout_at(idle(Instant::now()), self.upstream.blocks(&c.root, req));
        let mut stream = match stream.await {
            Err(_) => return Attempt::Silent,
            Ok(Err(e)) if e.code() == cat2_proto::ErrorCode::Timeout => return Attempt::Silent,
            Ok(Err(_)) => return Attempt::Failed,
            Ok(Ok(s)) => s,
        };
        let mut raw = Vec::with_capacity(count);
        loop {
            match tokio::time::timeout_at(idle(Instant::now()), stream.next()).await {
                Err(_) => return Attempt::Silent,
                Ok(None) => return Attempt::Got(raw),
                Ok(Some(Ok(item))) => raw.push(item),
                Ok(Some(Err(e))) if e.code() == cat2_proto::ErrorCode::Timeout => {
                    return Attempt::Silent;
                }
                Ok(Some(Err(_))) => return Attempt::Failed,
            }
        }
    }

    /// Drops chunk `n` of `c` from the cache (durably) if it is still the copy stored `at`
    /// (another reader may have fetched it again meanwhile).
    async fn forget(&self, c: &Arc<Cached>, n: u64, at: Option<u64>) -> Result<(), ApiError> {
        let cc = c.clone();
        tokio::task::spawn_blocking(move || match at {
            Some(at) => cc.file.forget_stored(n, at),
            None => cc.file.flush(),
        })
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::from)
    }
}

async fn read_once<T, F>(
    c: &Arc<Cached>,
    sel: Selection,
    blocks: Arc<Blocks>,
    then: F,
) -> Result<Read<T, F>, ApiError>
where
    T: Send + 'static,
    F: FnOnce(Vec<u8>, &Selection) -> Result<T, ApiError> + Send + 'static,
{
    let c = c.clone();
    tokio::task::spawn_blocking(move || {
        let f = c.file.read();
        let read = f.read_using(&sel, |n, b| blocks.get(&(n, b)).map(|v| v.to_vec()));
        match read {
            Ok(data) => {
                drop(f);
                Read::Done(then(data, &sel))
            }
            Err(FormatError::BadChunk { nchunk, reason }) => {
                Read::Corrupt(nchunk, f.stored_at(nchunk), reason, sel, then)
            }
            Err(e) => Read::Done(Err(e.into())),
        }
    })
    .await
    .map_err(ApiError::internal)
}
