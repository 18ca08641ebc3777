//! Serving cache files whole (`/files`, downloads).
//!
//! Plain GETs read the file ahead in 4 MiB positioned reads on the blocking pool, straight
//! into the buffers hyper sends, while the previous buffer is being sent: one copy in user
//! space. tower-http's `ServeFile` (tokio's buffered file, then its own buffer) makes two and
//! reads only when asked; it still serves range and conditional requests and HEAD.

use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::Response;
use bytes::Bytes;
use tower::ServiceExt;

use crate::ApiError;

/// Bytes per read.
const READ_BYTES: u64 = 4 << 20;
/// Reads done ahead of what was sent.
const AHEAD: usize = 2;

/// The response for `req`, a request for the whole of `file`.
pub(crate) async fn serve(file: &Path, req: Request) -> Result<Response, ApiError> {
    let h = req.headers();
    let simple = req.method() == Method::GET
        && ![
            header::RANGE,
            header::IF_MATCH,
            header::IF_NONE_MATCH,
            header::IF_MODIFIED_SINCE,
            header::IF_UNMODIFIED_SINCE,
            header::IF_RANGE,
        ]
        .iter()
        .any(|k| h.contains_key(k));
    if !simple {
        return tower_http::services::ServeFile::new_with_mime(
            file,
            &mime::APPLICATION_OCTET_STREAM,
        )
        .with_buf_chunk_size(READ_BYTES as usize)
        .oneshot(req)
        .await
        .map(|r| r.map(Body::new))
        .map_err(ApiError::internal);
    }
    let path = file.to_owned();
    let opened = tokio::task::spawn_blocking(move || {
        let f = std::fs::File::open(&path)?;
        let len = f.metadata()?.len();
        Ok::<_, std::io::Error>((f, len))
    })
    .await
    .map_err(ApiError::internal)?;
    let (f, len) = match opened {
        Ok(v) => v,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(ApiError::NotFound("Not Found".into()));
        }
        Err(e) => {
            return Err(ApiError::internal(format!(
                "cannot open the cache file: {e}"
            )));
        }
    };
    let f = Arc::new(f);
    let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<Bytes>>(AHEAD);
    tokio::spawn(async move {
        let mut at = 0u64;
        while at < len {
            let n = READ_BYTES.min(len - at);
            let f = f.clone();
            let read = tokio::task::spawn_blocking(move || {
                let mut buf = vec![0u8; n as usize];
                f.read_exact_at(&mut buf, at).map(|()| Bytes::from(buf))
            })
            .await
            .unwrap_or_else(|e| Err(std::io::Error::other(e)));
            let failed = read.is_err();
            if tx.send(read).await.is_err() || failed {
                // The client went away, or the read failed (the body ends with the error).
                return;
            }
            at += n;
        }
    });
    let body = Body::from_stream(futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    }));
    let mut resp = Response::new(body);
    *resp.status_mut() = StatusCode::OK;
    let hs = resp.headers_mut();
    hs.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    hs.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    hs.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    Ok(resp)
}
