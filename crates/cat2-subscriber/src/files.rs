//! Serving cache files whole (`/files`, downloads).
//!
//! The file is flushed and checked complete under its write lock, then streamed from the
//! cache instance's own descriptor (a newer version renamed over the path does not mix in):
//! 4 MiB positioned reads on the blocking pool, straight into the buffers hyper sends, read
//! ahead while the previous one is sent. Each read checks, under the read lock, that the file
//! did not change since (a chunk dropped and fetched again rewrites its end): if it did, the
//! body stops short and the client sees a failed transfer, never a mixed file. GET and HEAD,
//! with or without one byte range, are served so; requests with conditional headers go to
//! tower-http's `ServeFile` (by path).

use std::ops::RangeInclusive;
use std::path::Path;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use cat2_format::Snapshot;
use tower::ServiceExt;

use crate::ApiError;
use crate::sub::Cached;

/// Bytes per read.
const READ_BYTES: u64 = 4 << 20;
/// Reads done ahead of what was sent.
const AHEAD: usize = 2;

/// The response for `req`, a request for the whole of `c`'s file (at `path`), whose chunks
/// are all cached.
pub(crate) async fn serve(c: Arc<Cached>, path: &Path, req: Request) -> Result<Response, ApiError> {
    let cc = c.clone();
    let snap = tokio::task::spawn_blocking(move || cc.write_file().snapshot())
        .await
        .map_err(ApiError::internal)??
        .ok_or_else(|| {
            ApiError::Unavailable(format!(
                "{}/{} lost a chunk while being served; retry",
                c.root, c.rel
            ))
        })?;
    let h = req.headers();
    let conditional = [
        header::IF_MATCH,
        header::IF_NONE_MATCH,
        header::IF_MODIFIED_SINCE,
        header::IF_UNMODIFIED_SINCE,
        header::IF_RANGE,
    ]
    .iter()
    .any(|k| h.contains_key(k));
    let method = req.method().clone();
    if conditional || !(method == Method::GET || method == Method::HEAD) {
        return tower_http::services::ServeFile::new_with_mime(
            path,
            &mime::APPLICATION_OCTET_STREAM,
        )
        .with_buf_chunk_size(READ_BYTES as usize)
        .oneshot(req)
        .await
        .map(|r| r.map(Body::new))
        .map_err(ApiError::internal);
    }
    let len = snap.len();
    let range = match h.get(header::RANGE) {
        None => None,
        Some(v) => match one_range(v, len) {
            Some(r) => Some(r),
            None => return Ok(unsatisfiable(len)),
        },
    };
    let (status, span) = match range {
        Some(ref r) => (StatusCode::PARTIAL_CONTENT, r.clone()),
        None if len == 0 => return Ok(head(StatusCode::OK, 0, None)),
        None => (StatusCode::OK, 0..=len - 1),
    };
    let n = span.end() - span.start() + 1;
    let mut resp = head(status, n, range.map(|r| (r, len)));
    if method == Method::GET {
        *resp.body_mut() = stream(c, snap, span);
    }
    Ok(resp)
}

/// The one range a `Range` header asks for within `len` bytes (`None`: unsatisfiable,
/// malformed, or several ranges, which tower-http's `ServeFile` refuses alike).
fn one_range(v: &HeaderValue, len: u64) -> Option<RangeInclusive<u64>> {
    let ranges = http_range_header::parse_range_header(v.to_str().ok()?)
        .ok()?
        .validate(len)
        .ok()?;
    match ranges.as_slice() {
        [r] => Some(r.clone()),
        _ => None,
    }
}

fn unsatisfiable(len: u64) -> Response {
    let mut resp = (
        StatusCode::RANGE_NOT_SATISFIABLE,
        axum::Json(serde_json::json!({
            "detail": "the Range header asks for none, or several, of the file's bytes"
        })),
    )
        .into_response();
    if let Ok(v) = HeaderValue::from_str(&format!("bytes */{len}")) {
        resp.headers_mut().insert(header::CONTENT_RANGE, v);
    }
    resp
}

/// A response without its body yet.
fn head(status: StatusCode, n: u64, range: Option<(RangeInclusive<u64>, u64)>) -> Response {
    let mut resp = Response::new(Body::empty());
    *resp.status_mut() = status;
    let hs = resp.headers_mut();
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
fn stream(c: Arc<Cached>, snap: Snapshot, span: RangeInclusive<u64>) -> Body {
    let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<Bytes>>(AHEAD);
    tokio::spawn(async move {
        let (mut at, end) = (*span.start(), *span.end() + 1);
        while at < end {
            let n = READ_BYTES.min(end - at);
            let cc = c.clone();
            let read = tokio::task::spawn_blocking(move || {
                let mut buf = vec![0u8; n as usize];
                cc.read_file()
                    .read_snapshot_at(&snap, &mut buf, at)
                    .map(|()| Bytes::from(buf))
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
    Body::from_stream(futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    }))
}
