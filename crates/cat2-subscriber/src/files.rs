//! Serving cache files whole (`/files`, downloads).
//!
//! The file is flushed and checked complete under its write lock, then streamed from the
//! cache instance's own descriptor (a newer version renamed over the path does not mix in):
//! positioned reads of up to 4 MiB (smaller when many transfers run) on the blocking pool, straight into the buffers hyper sends,
//! read ahead while the previous one is sent; each holds its bytes in the subscriber's memory
//! budget until hyper has sent them. Each read checks, under the read lock, that the file
//! did not change since (a chunk dropped and fetched again rewrites its end): if it did, the
//! body stops short and the client sees a failed transfer, never a mixed file.
//!
//! Responses carry a strong `ETag` naming the file's state (dataset version, inode, length,
//! a hash of its chunk index and last write),
//! so `If-None-Match` (304), `If-Match` (412) and `If-Range` work; one byte range is served
//! as a 206, several as a 206 `multipart/byteranges` (sorted, overlapping and touching ranges
//! merged; more than 256 ranges get the whole file). No
//! `Last-Modified` is sent, so date conditions are ignored, as RFC 9110 requires.

use std::ops::RangeInclusive;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use cat2_client::budget::ByteBudget;
use cat2_format::Snapshot;
use headers::{ETag, HeaderMapExt, IfMatch, IfNoneMatch, IfRange};

use crate::ApiError;
use crate::cached::Cached;

/// Bytes per read at most: a lone transfer goes at disk speed (a warm download of the bench
/// cube took 0.10 s with 4 MiB reads, 0.14 s with 1 MiB reads).
const READ_BYTES: u64 = 4 << 20;
/// Bytes per read at least, however small the memory budget.
const MIN_READ_BYTES: u64 = 64 << 10;
/// Reads done ahead of what was sent.
const AHEAD: usize = 2;

/// The file transfers running, and the memory budget their reads take from.
#[derive(Debug, Clone)]
pub(crate) struct Transfers {
    budget: ByteBudget,
    active: Arc<AtomicUsize>,
}

/// One running transfer, counted while it lives.
struct Running(Arc<AtomicUsize>);

impl Drop for Running {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Transfers {
    pub(crate) fn new(budget: ByteBudget) -> Self {
        Self {
            budget,
            active: Arc::default(),
        }
    }

    fn start(&self) -> Running {
        self.active.fetch_add(1, Ordering::Relaxed);
        Running(self.active.clone())
    }

    /// The size of the next read. A transfer holds up to `AHEAD + 1` reads: at an eighth of
    /// the budget per transfer and read, transfers together hold under half of it, whatever
    /// their number, and a lone one reads 4 MiB at a time. (64 cold cube downloads at once
    /// with 8 connections slicing: 209 MB subscriber peak RSS; 413 MB with 4 MiB reads, which
    /// filled the budget.)
    fn read_size(&self) -> u64 {
        let active = self.active.load(Ordering::Relaxed).max(1) as u64;
        (self.budget.bytes() / 8 / active).clamp(MIN_READ_BYTES, READ_BYTES)
    }
}

/// The response for `req`, a GET or HEAD of the whole of `c`'s file, whose chunks are all
/// cached.
///
/// Each read takes its bytes from the transfers' budget first (waiting up to `wait`, else the
/// transfer stops short), and gives them back once hyper has sent them.
pub(crate) async fn serve(
    c: Arc<Cached>,
    transfers: &Transfers,
    wait: Duration,
    req: Request,
) -> Result<Response, ApiError> {
    let cc = c.clone();
    let snap = tokio::task::spawn_blocking(move || cc.file.snapshot())
        .await
        .map_err(ApiError::internal)??
        .ok_or_else(|| {
            ApiError::unavailable(format!(
                "{}/{} lost a chunk while being served; retry",
                c.root, c.rel
            ))
        })?;
    let len = snap.len();
    let tag = entity_tag(&c.etag, &snap);
    let h = req.headers();
    if let (Some(cond), Some(tag)) = (h.typed_get::<IfMatch>(), &tag)
        && !cond.precondition_passes(tag)
    {
        return Ok(bare(StatusCode::PRECONDITION_FAILED, Some(tag)));
    }
    if let (Some(cond), Some(tag)) = (h.typed_get::<IfNoneMatch>(), &tag)
        && !cond.precondition_passes(tag)
    {
        return Ok(bare(StatusCode::NOT_MODIFIED, Some(tag)));
    }
    let ranged = req.method() == Method::GET
        && h.typed_get::<IfRange>()
            .is_none_or(|cond| !cond.is_modified(tag.as_ref(), None));
    let wanted = match h.get(header::RANGE) {
        Some(v) if ranged => wanted(v, len),
        _ => Wanted::Whole,
    };
    let (status, span) = match wanted {
        Wanted::Unsatisfiable => return Ok(unsatisfiable(len)),
        Wanted::Parts(spans) => {
            return Ok(multipart(c, snap, spans, len, tag, transfers, wait, &req));
        }
        Wanted::Part(r) => (StatusCode::PARTIAL_CONTENT, r),
        Wanted::Whole if len == 0 => return Ok(head(StatusCode::OK, 0, tag.as_ref(), None)),
        Wanted::Whole => (StatusCode::OK, 0..=len - 1),
    };
    let n = span.end() - span.start() + 1;
    let range = (status == StatusCode::PARTIAL_CONTENT).then(|| (span.clone(), len));
    let mut resp = head(status, n, tag.as_ref(), range);
    if req.method() == Method::GET {
        *resp.body_mut() = stream(c, snap, span, transfers.clone(), wait);
    }
    Ok(resp)
}

/// The strong entity tag of `snap`, a state of the file of dataset version `version`.
fn entity_tag(version: &str, snap: &Snapshot) -> Option<ETag> {
    let version: String = version
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || ":._-".contains(*c))
        .take(64)
        .collect();
    let (ino, len, fill) = snap.identity();
    format!("\"{version}-{ino:x}-{len:x}-{fill:x}\"")
        .parse()
        .ok()
}

/// What a `Range` header asks of `len` bytes.
#[derive(Debug, PartialEq, Eq)]
enum Wanted {
    Whole,
    Part(RangeInclusive<u64>),
    /// Several spans, sorted, none overlapping or touching another.
    Parts(Vec<RangeInclusive<u64>>),
    Unsatisfiable,
}

/// Most ranges one request may ask for (more are answered with the whole file, as RFC 9110
/// §14.2 allows for a request that would cost more than it saves).
const MAX_RANGES: usize = 256;

fn wanted(v: &HeaderValue, len: u64) -> Wanted {
    use http_range_header::{EndPosition, StartPosition};
    // Other units and malformed values are ignored (RFC 9110 §14.2).
    let Some(parsed) = v
        .to_str()
        .ok()
        .and_then(|v| http_range_header::parse_range_header(v).ok())
    else {
        return Wanted::Whole;
    };
    if parsed.ranges.len() > MAX_RANGES {
        return Wanted::Whole;
    }
    // Each range resolved against the file (a suffix longer than the file is all of it, an
    // end past it is clipped); ranges starting past the end are left out (RFC 9110 §14.1.2).
    let mut spans: Vec<RangeInclusive<u64>> = parsed
        .ranges
        .iter()
        .filter_map(|r| {
            let start = match r.start {
                StartPosition::Index(i) => i,
                StartPosition::FromLast(n) => len.saturating_sub(n),
            };
            let end = match r.end {
                EndPosition::Index(i) => i.min(len.checked_sub(1)?),
                EndPosition::LastByte => len.checked_sub(1)?,
            };
            (start <= end && start < len).then_some(start..=end)
        })
        .collect();
    // Sorted, and overlapping or touching spans merged: what clients such as python-blosc2
    // expect (they find each range in whichever part covers it).
    spans.sort_by_key(|r| *r.start());
    let mut merged: Vec<RangeInclusive<u64>> = Vec::with_capacity(spans.len());
    for r in spans {
        match merged.last_mut() {
            Some(last) if *r.start() <= last.end().saturating_add(1) => {
                *last = *last.start()..=(*last.end()).max(*r.end());
            }
            _ => merged.push(r),
        }
    }
    match merged.len() {
        0 => Wanted::Unsatisfiable,
        1 => Wanted::Part(merged.remove(0)),
        _ => Wanted::Parts(merged),
    }
}

/// The boundary of a multipart body: not found in the file's bytes is not checkable before
/// sending, so it is long and random (RFC 2046 §5.1.1).
fn boundary() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    let a = h.finish();
    h.write_u64(a);
    format!("cat2-{a:016x}{:016x}", h.finish())
}

/// A `206 multipart/byteranges` response of `spans` (RFC 9110 §14.6), each part streamed in
/// turn from the same snapshot of the file.
#[allow(clippy::too_many_arguments)]
fn multipart(
    c: Arc<Cached>,
    snap: Snapshot,
    spans: Vec<RangeInclusive<u64>>,
    len: u64,
    tag: Option<ETag>,
    transfers: &Transfers,
    wait: Duration,
    req: &Request,
) -> Response {
    let b = boundary();
    let tail = format!("--{b}--\r\n");
    let content_type = format!("multipart/byteranges; boundary={b}");
    let part_head = move |r: &RangeInclusive<u64>| {
        format!(
            "--{b}\r\nContent-Type: application/octet-stream\r\nContent-Range: bytes {}-{}/{len}\r\n\r\n",
            r.start(),
            r.end()
        )
    };
    let total: u64 = spans
        .iter()
        .map(|r| part_head(r).len() as u64 + (r.end() - r.start() + 1) + 2)
        .sum::<u64>()
        + tail.len() as u64;
    let mut resp = head(StatusCode::PARTIAL_CONTENT, total, tag.as_ref(), None);
    if let Ok(v) = HeaderValue::from_str(&content_type) {
        resp.headers_mut().insert(header::CONTENT_TYPE, v);
    }
    if req.method() != Method::GET {
        return resp;
    }
    let transfers = transfers.clone();
    let parts = spans.into_iter().map(move |r| {
        use futures::StreamExt as _;
        let head = Bytes::from(part_head(&r));
        let (c, transfers) = (c.clone(), transfers.clone());
        // Each part's reads start when the previous part is sent.
        let body = futures::stream::once(async move { span_stream(c, snap, r, transfers, wait) })
            .flatten();
        futures::stream::iter([Ok(head)])
            .chain(body)
            .chain(futures::stream::iter([Ok(Bytes::from_static(b"\r\n"))]))
    });
    use futures::StreamExt as _;
    let all = futures::stream::iter(parts)
        .flatten()
        .chain(futures::stream::iter([Ok(Bytes::from(tail))]));
    *resp.body_mut() = Body::from_stream(all);
    resp
}

fn unsatisfiable(len: u64) -> Response {
    let mut resp = (
        StatusCode::RANGE_NOT_SATISFIABLE,
        axum::Json(serde_json::json!({
            "detail": format!("the Range header asks for none of the file's {len} bytes")
        })),
    )
        .into_response();
    if let Ok(v) = HeaderValue::from_str(&format!("bytes */{len}")) {
        resp.headers_mut().insert(header::CONTENT_RANGE, v);
    }
    resp
}

/// A response without a body, for a failed or met condition.
fn bare(status: StatusCode, tag: Option<&ETag>) -> Response {
    let mut resp = Response::new(Body::empty());
    *resp.status_mut() = status;
    if let Some(tag) = tag {
        resp.headers_mut().typed_insert(tag.clone());
    }
    resp
}

/// A response without its body yet, of `n` bytes.
fn head(
    status: StatusCode,
    n: u64,
    tag: Option<&ETag>,
    range: Option<(RangeInclusive<u64>, u64)>,
) -> Response {
    let mut resp = bare(status, tag);
    let hs: &mut HeaderMap = resp.headers_mut();
    hs.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    hs.insert(header::CONTENT_LENGTH, HeaderValue::from(n));
    hs.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    if let Some((r, len)) = range
        && let Ok(v) = HeaderValue::from_str(&format!("bytes {}-{}/{len}", r.start(), r.end()))
    {
        hs.insert(header::CONTENT_RANGE, v);
    }
    resp
}

/// The bytes `span` of `c`'s file as of `snap`, read ahead on the blocking pool.
fn stream(
    c: Arc<Cached>,
    snap: Snapshot,
    span: RangeInclusive<u64>,
    transfers: Transfers,
    wait: Duration,
) -> Body {
    Body::from_stream(span_stream(c, snap, span, transfers, wait))
}

/// The stream behind [`stream`].
fn span_stream(
    c: Arc<Cached>,
    snap: Snapshot,
    span: RangeInclusive<u64>,
    transfers: Transfers,
    wait: Duration,
) -> impl futures::Stream<Item = std::io::Result<Bytes>> + Send + 'static {
    let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<Bytes>>(AHEAD);
    tokio::spawn(async move {
        let _running = transfers.start();
        let (mut at, end) = (*span.start(), *span.end() + 1);
        while at < end {
            let n = transfers.read_size().min(end - at);
            let Some(lease) = transfers.budget.lease(n, wait).await else {
                tracing::warn!(root = %c.root, path = %c.rel, "file transfer cut short: the memory budget stayed taken");
                let _ = tx
                    .send(Err(std::io::Error::other("memory budget taken")))
                    .await;
                return;
            };
            let cc = c.clone();
            let read = tokio::task::spawn_blocking(move || {
                let mut buf = vec![0u8; n as usize];
                cc.file
                    .read()
                    .read_snapshot_at(&snap, &mut buf, at)
                    .map(|()| lease.hold_owner(buf))
                    .map_err(std::io::Error::other)
            })
            .await
            .unwrap_or_else(|e| Err(std::io::Error::other(e)));
            if let Err(e) = &read {
                tracing::warn!(root = %c.root, path = %c.rel, error = %e, "file transfer cut short");
            }
            let failed = read.is_err();
            if tx.send(read).await.is_err() || failed {
                // The client went away, or the read failed (the body ends with the error).
                return;
            }
            at += n;
        }
    });
    futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    })
}

#[cfg(test)]
mod tests {
    use super::{MAX_RANGES, Wanted, wanted};
    use axum::http::HeaderValue;

    fn w(v: &str, len: u64) -> Wanted {
        wanted(&HeaderValue::from_str(v).unwrap(), len)
    }

    #[test]
    fn ranges_are_resolved_sorted_and_merged() {
        assert_eq!(w("bytes=0-9", 100), Wanted::Part(0..=9));
        assert_eq!(w("bytes=90-200", 100), Wanted::Part(90..=99));
        assert_eq!(w("bytes=-500", 100), Wanted::Part(0..=99));
        assert_eq!(
            w("bytes=50-59,0-9,5-12,13-14,98-", 100),
            Wanted::Parts(vec![0..=14, 50..=59, 98..=99])
        );
        // Ranges past the end are left out; none left is unsatisfiable.
        assert_eq!(w("bytes=200-300,10-19", 100), Wanted::Part(10..=19));
        assert_eq!(w("bytes=100-", 100), Wanted::Unsatisfiable);
        assert_eq!(w("bytes=0-0", 0), Wanted::Unsatisfiable);
        assert_eq!(w("items=0-5", 100), Wanted::Whole);
        assert_eq!(w("bytes=x", 100), Wanted::Whole);
        let many: Vec<String> = (0..=MAX_RANGES)
            .map(|i| format!("{}-{}", 3 * i, 3 * i))
            .collect();
        assert_eq!(
            w(&format!("bytes={}", many.join(",")), 10_000),
            Wanted::Whole
        );
    }
}
