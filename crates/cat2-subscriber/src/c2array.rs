//! What python-blosc2's `C2Array` asks beyond Caterva2 0.2.0: raw chunks by number
//! (`/api/chunk/{path}?nchunk=N`, behind `get_chunk`, `blosc2.Proxy` and lazy opening) and
//! coordinate selections (`/api/fetch/{path}?indices=JSON`, or a `POST` with a JSON body when
//! the list is long). A selection parameter cat2 does not implement is refused with a 400
//! that names it, never ignored into another answer.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use cat2_array::fancy::{Axis, Fancy, resolve_index};
use cat2_format::{Kind, encode};
use serde_json::Value;

use crate::ApiError;
use crate::cached::Cached;
use crate::sub::Sub;

/// Most coordinates in one selection (Caterva2's own bound).
const MAX_COORDINATES: usize = 1_000_000;
/// Largest `POST /api/fetch` body.
pub(crate) const MAX_BODY: usize = 8 << 20;

/// `GET /api/chunk/{path}?nchunk=N`: chunk `N` (C order over the chunk grid) exactly as the
/// publisher stores it, with the geometry `/api/info` gives.
pub(crate) async fn chunk(
    State(sub): State<Arc<Sub>>,
    Path(path): Path<String>,
    Query(q): Query<std::collections::HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let n: u64 = q
        .get("nchunk")
        .ok_or_else(|| ApiError::bad_request("nchunk is required: /api/chunk/PATH?nchunk=N"))?
        .parse()
        .map_err(|_| ApiError::bad_request("nchunk must be a chunk number (0, 1, …)"))?;
    if let Some(other) = q.keys().find(|k| *k != "nchunk") {
        return Err(ApiError::bad_request(format!(
            "unknown parameter {other:?} for /api/chunk"
        )));
    }
    let c = super::api::open(&sub, &path).await?;
    let nchunks = c.layout.nchunks();
    if n >= nchunks {
        return Err(ApiError::bad_request(format!(
            "chunk {n} is out of range: {path} has {nchunks} chunks"
        )));
    }
    let deadline = tokio::time::Instant::now() + sub.cfg.timeout;
    sub.ensure(&c, vec![n], Some(deadline)).await?;
    let cc = c.clone();
    let raw = tokio::task::spawn_blocking(move || cc.file.read().raw_chunk(n))
        .await
        .map_err(ApiError::internal)??;
    let raw = raw.ok_or_else(|| {
        ApiError::unavailable(format!("chunk {n} of {path} is not cached any more; retry"))
    })?;
    Ok(([(header::CONTENT_TYPE, "application/octet-stream")], raw).into_response())
}

/// A `"a:b"` part of `indices`, with Python's clipping.
fn range(part: &str, len: u64) -> Result<Axis, ApiError> {
    let bad = || ApiError::bad_request(format!("indices: {part:?} is not an integer range a:b"));
    let mut it = part.split(':');
    let (a, b) = (it.next().unwrap_or(""), it.next().ok_or_else(bad)?);
    match it.next() {
        None | Some("" | "1") => {}
        Some(_) => return Err(ApiError::bad_request("indices: only step 1 is supported")),
    }
    let l = i64::try_from(len).map_err(|_| bad())?;
    let bound = |s: &str, default: i64| -> Result<u64, ApiError> {
        let v = match s.trim() {
            "" => default,
            t => t.parse::<i64>().map_err(|_| bad())?,
        };
        let v = if v < 0 { (l + v).max(0) } else { v.min(l) };
        Ok(v as u64)
    };
    let (start, stop) = (bound(a, 0)?, bound(b, l)?);
    Ok(Axis::Range(start..stop.max(start)))
}

fn index(v: &Value, dim: usize, len: u64) -> Result<u64, ApiError> {
    let i = v.as_i64().ok_or_else(|| {
        ApiError::bad_request(format!("indices: {v} is not an integer (only integers)"))
    })?;
    resolve_index(i, dim, len).map_err(|e| ApiError::bad_request(format!("indices: {e}")))
}

/// The coordinate selection `text` (python-blosc2's `key_to_indices`: a JSON list with, per
/// dimension, an integer, a list of integers, `"a:b"` or `null`) over `shape`.
pub(crate) fn parse_indices(text: &str, shape: &[u64]) -> Result<Fancy, ApiError> {
    let v: Value = serde_json::from_str(text)
        .map_err(|e| ApiError::bad_request(format!("indices is not JSON: {e}")))?;
    let Value::Array(parts) = v else {
        return Err(ApiError::bad_request(
            "indices must be a JSON list, one entry per dimension",
        ));
    };
    if parts.len() > shape.len() {
        return Err(ApiError::bad_request(format!(
            "indices: {} entries for {} dimensions",
            parts.len(),
            shape.len()
        )));
    }
    let mut coordinates = 0usize;
    let mut axes = Vec::with_capacity(parts.len());
    for (dim, (p, &len)) in parts.iter().zip(shape).enumerate() {
        axes.push(match p {
            Value::Null => Axis::Range(0..len),
            Value::String(s) => range(s, len)?,
            Value::Array(list) => {
                coordinates += list.len();
                if coordinates > MAX_COORDINATES {
                    return Err(ApiError::bad_request(format!(
                        "indices: more than {MAX_COORDINATES} coordinates"
                    )));
                }
                if list.iter().any(Value::is_array) {
                    return Err(ApiError::bad_request(
                        "indices: nested index arrays (NumPy broadcasting) are not supported",
                    ));
                }
                Axis::List(
                    list.iter()
                        .map(|x| index(x, dim, len))
                        .collect::<Result<_, _>>()?,
                )
            }
            other => Axis::Index(index(other, dim, len)?),
        });
    }
    Fancy::new(axes, shape).map_err(|e| ApiError::bad_request(format!("indices: {e}")))
}

/// Serves `fancy` of dataset `c` (at `path`) as a b2nd frame, as `C2Array` decodes it.
pub(crate) async fn fetch_indices(
    sub: &Arc<Sub>,
    path: &str,
    c: Arc<Cached>,
    fancy: Fancy,
) -> Result<Response, ApiError> {
    let (Kind::Array, Some(dtype)) = (c.kind, c.meta.array.as_ref().map(|a| a.dtype.clone()))
    else {
        return Err(ApiError::bad_request(format!(
            "indices apply to n-d arrays; {path} is not one"
        )));
    };
    let itemsize = c.layout.itemsize() as u64;
    // Runs of indices closer than a chunk are read as one box: little more than asked.
    let gap = fancy_gap(&c, &fancy);
    let boxes = fancy
        .boxes(c.layout.shape(), gap)
        .map_err(|e| ApiError::bad_request(format!("indices: {e}")))?;
    let read_bytes: u64 = boxes.iter().map(|b| b.nitems() * itemsize).sum();
    let bytes = fancy.nitems() * itemsize;
    if bytes.max(read_bytes) > sub.cfg.max_fetch_bytes {
        return Err(ApiError::bad_request(format!(
            "the result would take {} bytes, more than {} allowed: select less",
            bytes.max(read_bytes),
            sub.cfg.max_fetch_bytes
        )));
    }
    let deadline = tokio::time::Instant::now() + sub.cfg.timeout;
    let chunk = u64::try_from(c.meta.chunksize).unwrap_or(0);
    let lease = super::api::lease(
        sub,
        read_bytes
            .saturating_add(bytes.saturating_mul(2))
            .saturating_add(chunk),
        deadline,
    )
    .await?;
    let mut chunks: Vec<u64> = boxes
        .iter()
        .flat_map(|b| c.layout.chunks_touching(b))
        .collect();
    chunks.sort_unstable();
    chunks.dedup();
    sub.ensure(&c, chunks, Some(deadline)).await?;
    let mut read = Vec::with_capacity(boxes.len());
    for b in boxes {
        let data = sub
            .read(&c, b.clone(), Some(deadline), Default::default(), |d, _| {
                Ok(d)
            })
            .await?;
        read.push((b, data));
    }
    let body = tokio::task::spawn_blocking(move || {
        let data = fancy.gather(&read, itemsize as usize);
        encode::b2nd_cframe(&dtype, &fancy.shape(), &data)
    })
    .await
    .map_err(ApiError::internal)??;
    let body = lease.hold_owner(body);
    Ok(([(header::CONTENT_TYPE, "application/octet-stream")], body).into_response())
}

/// A chunk's extent along the list's dimension.
fn fancy_gap(c: &Cached, fancy: &Fancy) -> u64 {
    let dims = c.layout.chunks();
    fancy
        .list_dim()
        .and_then(|d| dims.get(d).copied())
        .unwrap_or(1)
}

/// `POST /api/fetch/{path}` with `{"indices": JSON}` (the list itself or its JSON text), as
/// `C2Array` sends selections too long for a URL.
pub(crate) async fn post_fetch(
    State(sub): State<Arc<Sub>>,
    Path(path): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let v: Value = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("the body is not JSON: {e}")))?;
    let Value::Object(fields) = v else {
        return Err(ApiError::bad_request(
            "the body must be a JSON object: {\"indices\": …}",
        ));
    };
    if let Some(other) = fields.keys().find(|k| *k != "indices") {
        return Err(ApiError::bad_request(format!(
            "{other} is not supported by this subscriber (only indices)"
        )));
    }
    let text = match fields.get("indices") {
        Some(Value::String(s)) => s.clone(),
        Some(list @ Value::Array(_)) => list.to_string(),
        _ => return Err(ApiError::bad_request("indices is required")),
    };
    let c = super::api::open(&sub, &path).await?;
    let fancy = parse_indices(&text, c.layout.shape())?;
    fetch_indices(&sub, &path, c, fancy).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(text: &str) -> Result<Vec<u64>, String> {
        parse_indices(text, &[10, 20])
            .map(|f| f.shape())
            .map_err(|e| e.to_string())
    }

    #[test]
    fn parses_what_c2array_sends_and_refuses_the_rest() {
        assert_eq!(shape("[[9, 0, 5, 0]]"), Ok(vec![4, 20]));
        assert_eq!(shape("[2, [3, 1]]"), Ok(vec![2]));
        assert_eq!(shape("[\"1:3\", null]"), Ok(vec![2, 20]));
        assert_eq!(shape("[\"-3:\", \"5:100\"]"), Ok(vec![3, 15]));
        assert_eq!(shape("[\"4:2\"]"), Ok(vec![0, 20]));
        for (bad, says) in [
            ("[[true]]", "not an integer"),
            ("[[[1, 2]]]", "nested"),
            ("[[1], [2]]", "more than one dimension"),
            ("[[10]]", "out of range"),
            ("[\"0:4:2\"]", "step 1"),
            ("{\"a\": 1}", "JSON list"),
            ("[1, 2, 3]", "3 entries"),
            ("nope", "not JSON"),
        ] {
            let e = shape(bad).unwrap_err();
            assert!(e.contains(says), "{bad}: {e}");
        }
    }
}
