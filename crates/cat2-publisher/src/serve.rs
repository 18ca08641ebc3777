//! The publisher's NATS endpoints: list, info, chunks, blocks.

use std::sync::Arc;

use async_nats::HeaderMap;
use async_nats::service::Request;
use bytes::Bytes;
use cat2_format::FormatError;
use cat2_proto::msg::{self, BlocksRequest, ChunksRequest, Info, InfoRequest, List};
use cat2_proto::{DatasetPath, ErrorCode};

use cat2_client::budget::Lease;
pub(crate) use cat2_client::service_error;

use crate::limits::{Busy, Limits};
use crate::state::{Datasets, Entry};

/// Most chunks one request may ask for.
const MAX_CHUNKS_PER_REQUEST: usize = 4096;
/// Room left for headers in each message.
const HEADER_ROOM: u64 = 1024;
/// Blosc2's largest overhead over a chunk's data (`BLOSC2_MAX_OVERHEAD`), with margin.
const MAX_OVERHEAD: u64 = 256;

async fn respond(req: &Request, reply: Result<Bytes, async_nats::service::error::Error>) {
    if let Err(e) = req.respond(reply).await {
        tracing::debug!(error = %e, "cannot answer a request");
    }
}

fn lookup(
    datasets: &Datasets,
    path: &DatasetPath,
) -> Result<Arc<Entry>, async_nats::service::error::Error> {
    datasets
        .get(path.as_str())
        .ok_or_else(|| service_error(ErrorCode::NotFound, &format!("no dataset {path}")))
}

pub(crate) async fn list(req: Request, datasets: &Datasets) {
    let list = List {
        datasets: datasets
            .list()
            .iter()
            .filter_map(|p| DatasetPath::new(p).ok())
            .collect(),
    };
    respond(&req, Ok(cat2_proto::encode(&list).into())).await;
}

/// Room kept in a reply for NATS's own headers (the service API adds a few).
const INFO_HEADROOM: usize = 4 << 10;

/// A dataset's `info` reply: its metadata (unless the asker's etag is current) with its
/// digests, as many of them as fit the server's `max_payload` beside the metadata (block
/// digests dropped first, then all: subscribers then check what they can, and say so).
fn info_reply(entry: &Entry, if_none_match: Option<&str>, max_payload: usize) -> Vec<u8> {
    let fresh = if_none_match == Some(entry.etag.as_str());
    let mut info = Info {
        etag: entry.etag.clone(),
        meta: (!fresh).then(|| entry.ds.meta().clone()),
        // The digests go with the metadata: a cache is made from both.
        digests: if fresh { None } else { entry.digests.clone() },
    };
    let limit = if max_payload > 0 {
        max_payload.saturating_sub(INFO_HEADROOM)
    } else {
        usize::MAX
    };
    let mut bytes = cat2_proto::encode(&info);
    if bytes.len() > limit
        && let Some(d) = info.digests.as_mut()
        && !d.blocks.is_empty()
    {
        d.blocks = Vec::new();
        bytes = cat2_proto::encode(&info);
    }
    if bytes.len() > limit && info.digests.is_some() {
        tracing::warn!(path = %entry.ds.path().display(), bytes = bytes.len(), max_payload,
            "digests do not fit an info reply beside this metadata: sent without");
        info.digests = None;
        bytes = cat2_proto::encode(&info);
    }
    bytes
}

pub(crate) async fn info(req: Request, datasets: &Datasets, max_payload: usize) {
    let reply = match cat2_proto::decode::<InfoRequest>("info", &req.message.payload) {
        Err(e) => Err(service_error(ErrorCode::BadRequest, &e.to_string())),
        Ok(r) => lookup(datasets, &r.path)
            .map(|entry| info_reply(&entry, r.if_none_match.as_deref(), max_payload).into()),
    };
    respond(&req, reply).await;
}

fn format_error(e: &FormatError) -> async_nats::service::error::Error {
    match e {
        FormatError::NoSuchChunk { .. } => service_error(ErrorCode::BadRequest, &e.to_string()),
        // The source changed while it was read: the subscriber checks the etag again.
        FormatError::Changed { .. } => service_error(ErrorCode::Stale, &e.to_string()),
        // Named and explained (a missing or failing HDF5 filter, a corrupt chunk).
        FormatError::Unreadable { .. } => {
            tracing::warn!(error = %e, "cannot make a chunk");
            service_error(ErrorCode::Unavailable, &e.to_string())
        }
        _ => {
            tracing::warn!(error = %e, "cannot read a chunk");
            service_error(ErrorCode::Internal, "cannot read the chunk")
        }
    }
}

/// Chunk buffers kept for reuse: a fresh multi-MB buffer per chunk cost the publisher a
/// quarter of its CPU in page faults and zeroing (measured with `perf`).
#[derive(Debug, Default)]
pub(crate) struct BufPool(std::sync::Mutex<Vec<Vec<u8>>>);

/// Buffers the pool keeps (more are freed): as many as a subscriber has requests in flight.
const POOL_BUFFERS: usize = 4;
/// Largest buffer the pool keeps.
const POOL_MAX_BYTES: usize = 32 << 20;

impl BufPool {
    fn take(&self) -> Vec<u8> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .pop()
            .unwrap_or_default()
    }
}

/// A pooled buffer lent to NATS: back to the pool when the last `Bytes` of it is dropped.
struct Lent {
    buf: Vec<u8>,
    pool: Arc<BufPool>,
}

impl AsRef<[u8]> for Lent {
    fn as_ref(&self) -> &[u8] {
        &self.buf
    }
}

impl Drop for Lent {
    fn drop(&mut self) {
        let buf = std::mem::take(&mut self.buf);
        if buf.capacity() <= POOL_MAX_BYTES {
            let mut pool = self
                .pool
                .0
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if pool.len() < POOL_BUFFERS {
                pool.push(buf);
            }
        }
    }
}

/// What one request streams back: chunks, or blocks of one chunk.
enum Items {
    Chunks(Vec<u64>),
    Blocks { chunk: u64, blocks: Vec<u64> },
}

impl Items {
    fn ids(&self) -> &[u64] {
        match self {
            Items::Chunks(c) => c,
            Items::Blocks { blocks, .. } => blocks,
        }
    }

    /// Reads item `id` (on the blocking pool): raw chunk (into a pooled buffer), or a block as
    /// a one-block chunk (`None`: blocks of that chunk do not decode alone).
    fn read(
        &self,
        ds: &cat2_format::Dataset,
        id: u64,
        pool: &Arc<BufPool>,
        room: Lease,
    ) -> Result<Option<Bytes>, FormatError> {
        // The room rides with the bytes: it goes back once NATS has sent them.
        match self {
            Items::Chunks(_) => {
                let mut buf = pool.take();
                ds.raw_chunk_into(id, &mut buf)?;
                Ok(Some(room.hold_owner(Lent {
                    buf,
                    pool: pool.clone(),
                })))
            }
            Items::Blocks { chunk, .. } => {
                Ok(ds.one_block(*chunk, id)?.map(|(b, _)| room.hold_owner(b)))
            }
        }
    }

    /// The most bytes reading one item may take: a chunk as stored, which Blosc2 keeps under
    /// its uncompressed size plus a header (a block of a chunk made on the fly may need the
    /// whole chunk made first).
    fn max_bytes(meta: &cat2_proto::Meta) -> u64 {
        u64::try_from(meta.chunksize).unwrap_or(0) + MAX_OVERHEAD
    }
}

/// Streams the requested chunks to the reply subject, each cut into parts that fit the
/// server's `max_payload`. Reads run on the blocking pool.
pub(crate) async fn chunks(req: Request, datasets: Arc<Datasets>, out: Out) {
    let Some(_slot) = admit(&req, &out.limits).await else {
        return;
    };
    match cat2_proto::decode::<ChunksRequest>("chunks", &req.message.payload) {
        Ok(r) => {
            let items = Items::Chunks(r.chunks);
            stream(req, &datasets, out, &r.path, &r.etag, r.max_part, items).await;
        }
        Err(e) => {
            let e = service_error(ErrorCode::BadRequest, &e.to_string());
            respond(&req, Err(e)).await;
        }
    }
}

/// Streams single blocks of one chunk, each as a one-block chunk, like [`chunks`].
pub(crate) async fn blocks(req: Request, datasets: Arc<Datasets>, out: Out) {
    let Some(_slot) = admit(&req, &out.limits).await else {
        return;
    };
    match cat2_proto::decode::<BlocksRequest>("blocks", &req.message.payload) {
        Ok(r) => {
            let items = Items::Blocks {
                chunk: r.chunk,
                blocks: r.blocks,
            };
            stream(req, &datasets, out, &r.path, &r.etag, r.max_part, items).await;
        }
        Err(e) => {
            let e = service_error(ErrorCode::BadRequest, &e.to_string());
            respond(&req, Err(e)).await;
        }
    }
}

/// A slot for this request, held while it is served; `None` when the publisher is at its
/// bound (the requester was told [`ErrorCode::Busy`]).
async fn admit(req: &Request, limits: &Limits) -> Option<tokio::sync::OwnedSemaphorePermit> {
    match limits.admit().await {
        Ok(slot) => Some(slot),
        Err(Busy) => {
            respond(req, Err(busy("every request slot is taken"))).await;
            None
        }
    }
}

fn busy(why: &str) -> async_nats::service::error::Error {
    service_error(
        ErrorCode::Busy,
        &format!("publisher busy ({why}): ask again"),
    )
}

/// Where replies go: the connection, the buffers they are read into, and the bounds.
#[derive(Clone)]
pub(crate) struct Out {
    pub(crate) nats: async_nats::Client,
    pub(crate) pool: Arc<BufPool>,
    pub(crate) limits: Arc<Limits>,
}

async fn stream(
    req: Request,
    datasets: &Datasets,
    out: Out,
    path: &DatasetPath,
    etag: &str,
    max_part: u64,
    items: Items,
) {
    let entry = match lookup(datasets, path) {
        Ok(e) => e,
        Err(e) => return respond(&req, Err(e)).await,
    };
    if entry.etag != etag {
        let text = format!("{path} changed (etag {}, asked for {etag})", entry.etag);
        return respond(&req, Err(service_error(ErrorCode::Stale, &text))).await;
    }
    let ids = items.ids().to_vec();
    if ids.len() > MAX_CHUNKS_PER_REQUEST || ids.is_empty() {
        let text = format!("ask for 1 to {MAX_CHUNKS_PER_REQUEST} chunks or blocks per request");
        return respond(&req, Err(service_error(ErrorCode::BadRequest, &text))).await;
    }
    let Some(reply) = req.message.reply.clone() else {
        return;
    };
    let Out { nats, pool, limits } = out;
    let most = Items::max_bytes(entry.ds.meta());
    let server_max = nats.server_info().max_payload as u64;
    let limit = if server_max > 0 {
        max_part.min(server_max)
    } else {
        max_part
    };
    let part_size = limit.saturating_sub(HEADER_ROOM).max(HEADER_ROOM) as usize;
    let last = ids.len() - 1;
    let started = std::time::Instant::now();
    let mut read_time = std::time::Duration::ZERO;
    let items = Arc::new(items);
    let read_one = |n: u64, room: Lease| {
        let (ds, it, pool) = (entry.ds.clone(), items.clone(), pool.clone());
        tokio::task::spawn_blocking(move || it.read(&ds, n, &pool, room))
    };
    // The next item's read, started while this one is being sent.
    let mut ahead = None;
    for (i, &n) in ids.iter().enumerate() {
        let reading = match ahead.take() {
            Some(reading) => reading,
            None => {
                // Room first: a reply NATS is slow to send holds its bytes, and the next read
                // waits.
                let Ok(room) = limits.room(most).await else {
                    return respond(&req, Err(busy("replies not sent yet fill the send buffer")))
                        .await;
                };
                read_one(n, room)
            }
        };
        let t = std::time::Instant::now();
        let read = reading.await;
        read_time += t.elapsed();
        let raw = match read {
            Ok(Ok(Some(raw))) => raw,
            Ok(Ok(None)) => {
                let text = format!(
                    "blocks of this chunk of {path} do not decode alone: ask for the chunk"
                );
                return respond(&req, Err(service_error(ErrorCode::BadRequest, &text))).await;
            }
            Ok(Err(e)) => return respond(&req, Err(format_error(&e))).await,
            Err(e) => {
                tracing::error!(error = %e, "chunk reader panicked");
                return respond(
                    &req,
                    Err(service_error(ErrorCode::Internal, "internal error")),
                )
                .await;
            }
        };
        // Reading the next item overlaps sending this one (the file or the codec, and the
        // socket, each busy at once), when there is room for it now; dropped unawaited on
        // an early return, its read finishes and gives its room back.
        if let Some(&next) = ids.get(i + 1)
            && let Some(room) = limits.room_now(most).await
        {
            ahead = Some(read_one(next, room));
        }
        let nparts = raw.len().div_ceil(part_size).max(1);
        for p in 0..nparts {
            let mut headers = HeaderMap::new();
            headers.insert(msg::HDR_CHUNK, n.to_string().as_str());
            headers.insert(msg::HDR_PART, format!("{p}/{nparts}").as_str());
            if p == 0 {
                headers.insert(msg::HDR_SIZE, raw.len().to_string().as_str());
            }
            let body = raw.slice(p * part_size..((p + 1) * part_size).min(raw.len()));
            let sent = if i == last && p + 1 == nparts {
                // The last message goes through the service API so its stats count the request.
                req.respond_with_headers(Ok(body), headers).await
            } else {
                nats.publish_with_headers(reply.clone(), headers, body)
                    .await
            };
            if let Err(e) = sent {
                tracing::debug!(error = %e, "cannot send a chunk part");
                return;
            }
        }
    }
    tracing::debug!(
        path = %path,
        items = ids.len(),
        read_ms = read_time.as_secs_f64() * 1e3,
        all_ms = started.elapsed().as_secs_f64() * 1e3,
        "chunks sent"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn info_replies_keep_under_max_payload_dropping_digests_first() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.b2nd");
        // 3000 chunks of 4 blocks: 48 KB of chunk digests, 192 KB of block digests.
        let data: Vec<u8> = (0..48_000i32).flat_map(i32::to_le_bytes).collect();
        cat2_format::encode::write_b2nd_file(&path, "<i4", &[48_000], &[16], &[4], &data, &[])
            .unwrap();
        let ds = cat2_format::Dataset::open(&path).unwrap();
        let digests = ds.digests().unwrap();
        let entry = Entry {
            etag: "e".into(),
            ds: Arc::new(ds),
            digests,
        };
        let decoded = |max| {
            let bytes = info_reply(&entry, None, max);
            assert!(max == 0 || bytes.len() <= max, "{} > {max}", bytes.len());
            cat2_proto::decode::<Info>("info", &bytes).unwrap()
        };
        let all = decoded(1 << 20).digests.unwrap();
        assert!(!all.chunks.is_empty() && !all.blocks.is_empty());
        let chunks_only = decoded(200 << 10).digests.unwrap();
        assert_eq!(chunks_only.chunks, all.chunks);
        assert!(chunks_only.blocks.is_empty());
        let none = decoded(40 << 10);
        assert!(none.digests.is_none() && none.meta.is_some());
        // A current etag: neither metadata nor digests.
        let fresh = cat2_proto::decode::<Info>("info", &info_reply(&entry, Some("e"), 1 << 20));
        assert!(fresh.unwrap().digests.is_none());
    }
}
