//! Caterva2's subscriber REST API (spec §2.3, §4): roots, subscribe, list, url, info, fetch,
//! download, and the `/files` area.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use cat2_array::{Selection, SliceSpec};
use cat2_format::{Kind, encode};
use cat2_proto::rest::{
    self, DownloadReply, ListReply, RootReply, RootsReply, SubscribeReply, UrlReply,
};
use cat2_proto::{DatasetPath, RootName};

use crate::ApiError;
use crate::cached::Cached;
use crate::sub::Sub;

type Shared = State<Arc<Sub>>;

/// The REST API on `sub`.
pub(crate) fn router(sub: Arc<Sub>) -> Router {
    Router::new()
        .route("/api/roots", get(roots))
        .route("/api/subscribe/{name}", post(subscribe))
        .route("/api/list/{name}", get(list))
        .route("/api/url/{*path}", get(url))
        .route("/api/info/{*path}", get(info))
        .route(
            "/api/fetch/{*path}",
            get(fetch).post(crate::c2array::post_fetch).layer(
                axum::extract::DefaultBodyLimit::max(crate::c2array::MAX_BODY),
            ),
        )
        .route("/api/chunk/{*path}", get(crate::c2array::chunk))
        .route("/api/download/{*path}", get(download))
        .route("/files/{*path}", get(files))
        .fallback(|| async { ApiError::not_found("Not Found") })
        .layer(axum::middleware::from_fn_with_state(
            Arc::new(sub.cfg.auth_tokens.clone()),
            crate::auth::require,
        ))
        .layer(axum::middleware::map_response_with_state(
            sub.clone(),
            count_status,
        ))
        .with_state(sub)
}

/// Counts every answer by status code.
async fn count_status(State(sub): Shared, r: axum::response::Response) -> axum::response::Response {
    let code = r.status().as_u16();
    sub.metrics
        .http
        .get_or_create(&crate::metrics::Code { code })
        .inc();
    r
}

async fn roots(State(sub): Shared) -> Json<RootsReply> {
    let state = sub.state();
    let roots = state
        .roots
        .values()
        .map(|r| {
            let reply = RootReply {
                name: r.name.clone(),
                http: r.http.clone().unwrap_or_default(),
                subscribed: r.subscribed.then_some(true),
                online: r.online,
            };
            (r.name.clone(), reply)
        })
        .collect();
    Json(roots)
}

fn root_name(name: &str) -> Result<RootName, ApiError> {
    RootName::new(name).map_err(|e| ApiError::bad_request(e.to_string()))
}

async fn subscribe(
    State(sub): Shared,
    Path(name): Path<String>,
) -> Result<Json<SubscribeReply>, ApiError> {
    let root = root_name(&name)?;
    let known = sub.state().roots.contains_key(root.as_str());
    if !known {
        // Maybe announced while we were away from the broker.
        let _ = sub.refresh_roots().await;
    }
    sub.follow(&root).await?;
    Ok(Json(rest::SUBSCRIBED.to_owned()))
}

async fn list(State(sub): Shared, Path(name): Path<String>) -> Result<Json<ListReply>, ApiError> {
    let root = root_name(&name)?;
    let state = sub.state();
    let r = state
        .roots
        .get(root.as_str())
        .ok_or_else(|| ApiError::not_found(format!("{root} not known by the broker")))?;
    if !r.subscribed {
        return Err(ApiError::not_found(format!("Not subscribed to {root}")));
    }
    Ok(Json(r.datasets.keys().cloned().collect()))
}

async fn url(State(sub): Shared, Path(path): Path<String>) -> Result<Json<UrlReply>, ApiError> {
    let (root, rel) = match path.split_once('/') {
        Some((r, rel)) => (
            root_name(r)?,
            Some(DatasetPath::new(rel).map_err(|e| ApiError::bad_request(e.to_string()))?),
        ),
        None => (root_name(&path)?, None),
    };
    let state = sub.state();
    let r = state
        .roots
        .get(root.as_str())
        .ok_or_else(|| ApiError::not_found(format!("{root} not known by the broker")))?;
    let Some(http) = r.http.clone().filter(|h| !h.is_empty()) else {
        return Ok(Json(vec![]));
    };
    Ok(Json(match rel {
        None => vec![format!("http://{http}")],
        Some(rel) => vec![
            format!("http://{http}/api/info/{rel}"),
            format!("http://{http}/api/download/{rel}"),
        ],
    }))
}

pub(crate) async fn open(sub: &Arc<Sub>, path: &str) -> Result<Arc<Cached>, ApiError> {
    let (root, rel, etag) = sub.resolve(path)?;
    sub.cached(&root, &rel, &etag).await
}

async fn info(
    State(sub): Shared,
    Path(path): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let c = open(&sub, &path).await?;
    Ok(Json(info_value(&sub, c).await?.0))
}

/// The `info` JSON of `c` and how many of its chunks are cached.
pub(crate) async fn info_value(
    sub: &Sub,
    c: Arc<Cached>,
) -> Result<(serde_json::Value, u64), ApiError> {
    let urlpath = sub.cache_path(&c.root, &c.rel).display().to_string();
    // `cbytes` tells how much is cached: read it from the file (on the blocking pool).
    let blocksize = c.meta.cparams.blocksize;
    let (mut info, filled) = tokio::task::spawn_blocking(move || {
        let f = c.file.read();
        (f.meta().info(&urlpath), f.filled())
    })
    .await
    .map_err(ApiError::internal)?;
    // Beyond 0.2.0's fields (kept as they were): python-blosc2's `C2Array.blocksize`.
    if let Some(schunk) = info.get_mut("schunk").and_then(|s| s.as_object_mut()) {
        schunk.insert("blocksize".into(), blocksize.into());
    }
    Ok((info, filled))
}

/// FastAPI's boolean parsing.
pub(crate) fn parse_bool(v: &str) -> Result<bool, ApiError> {
    match v.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" | "t" | "y" => Ok(true),
        "false" | "0" | "no" | "off" | "f" | "n" => Ok(false),
        _ => Err(ApiError::bad_request(format!(
            "prefer_schunk must be a boolean, got {v:?}"
        ))),
    }
}

/// Fills every chunk `sel` needs (by the request's `deadline`, or, for whole datasets, for
/// as long as publishers keep sending), trying the new version once when the dataset changed
/// meanwhile.
pub(crate) async fn ensure_sel(
    sub: &Arc<Sub>,
    path: &str,
    c: Arc<Cached>,
    sel: &Selection,
    deadline: Option<tokio::time::Instant>,
) -> Result<Arc<Cached>, ApiError> {
    let chunks = c.layout.chunks_touching(sel);
    match sub.ensure(&c, chunks.clone(), deadline).await {
        Ok(()) => Ok(c),
        Err(first) => {
            // A change notification may have replaced the cache meanwhile: try the new one.
            let (root, rel, etag) = sub.resolve(path)?;
            if etag == c.etag || deadline.is_some_and(|d| tokio::time::Instant::now() >= d) {
                return Err(first);
            }
            let c2 = sub.cached(&root, &rel, &etag).await?;
            sub.ensure(&c2, chunks, deadline).await?;
            Ok(c2)
        }
    }
}

async fn fetch(
    State(sub): Shared,
    Path(path): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    req: Request,
) -> Result<Response, ApiError> {
    // A selection cat2 does not implement is refused, never ignored into another answer.
    if let Some(other) = q
        .keys()
        .find(|k| !matches!(k.as_str(), "slice_" | "prefer_schunk" | "indices"))
    {
        return Err(ApiError::bad_request(format!(
            "{other} is not supported by this subscriber (slice_, prefer_schunk, indices are)"
        )));
    }
    if let Some(indices) = q.get("indices") {
        if q.contains_key("slice_") || q.contains_key("prefer_schunk") {
            return Err(ApiError::bad_request(
                "indices cannot be combined with slice_ or prefer_schunk",
            ));
        }
        let c = open(&sub, &path).await?;
        let fancy = crate::c2array::parse_indices(indices, c.layout.shape())?;
        return crate::c2array::fetch_indices(&sub, &path, c, fancy).await;
    }
    let spec = SliceSpec::parse(q.get("slice_").map_or("", String::as_str))
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let prefer = q.get("prefer_schunk").map(|v| parse_bool(v)).transpose()?;
    let c = open(&sub, &path).await?;
    // Caterva2 2024.x clients (no prefer_schunk) get whole datasets as the file itself.
    if prefer.is_none() && spec.is_empty() {
        return whole_file(&sub, &path, c, req).await;
    }
    let sel = match c.kind {
        Kind::Array => Selection::new(&spec, c.layout.shape()),
        _ => Selection::new_items(&spec, c.layout.shape().first().copied().unwrap_or(0)),
    }
    .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let bytes = sel.nitems().saturating_mul(c.layout.itemsize() as u64);
    if bytes > sub.cfg.max_fetch_bytes {
        return Err(ApiError::bad_request(format!(
            "the result would take {bytes} bytes, more than {} allowed: use /api/download",
            sub.cfg.max_fetch_bytes
        )));
    }
    let deadline = tokio::time::Instant::now() + sub.cfg.timeout;
    // Decoded, then encoded: about twice the result, plus a chunk being decoded.
    let chunk = u64::try_from(c.meta.chunksize).unwrap_or(0);
    let lease = lease(
        &sub,
        bytes.saturating_mul(2).saturating_add(chunk),
        deadline,
    )
    .await?;
    let (c, blocks) = match sub.fetch_blocks(&c, &sel, deadline).await {
        Some(blocks) => (c, blocks),
        None => (
            ensure_sel(&sub, &path, c, &sel, Some(deadline)).await?,
            Default::default(),
        ),
    };
    let typesize = c.layout.itemsize();
    let dtype = c.meta.array.as_ref().map(|a| a.dtype.clone());
    let body = sub
        .read(&c, sel, Some(deadline), blocks, move |data, sel| {
            let shape = sel.shape();
            Ok(match dtype {
                Some(dtype) => encode::b2nd_cframe(&dtype, &shape, &data),
                None if prefer.is_some() => encode::single_chunk(typesize, &data),
                None => encode::schunk_cframe(typesize, &data),
            }?)
        })
        .await?;
    // The lease rides with the body (shrunk to it) until hyper has sent it.
    let body = lease.hold_owner(body);
    Ok(([(header::CONTENT_TYPE, "application/octet-stream")], body).into_response())
}

/// Longest a result waits for room in the memory budget before its request is told to come
/// back (`503` with `Retry-After`): results in flight drain in well under this.
const BUDGET_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// `need` bytes of the memory budget for one result, waiting (bounded, and never past the
/// request's `deadline`) while other results hold it.
pub(crate) async fn lease(
    sub: &Sub,
    need: u64,
    deadline: tokio::time::Instant,
) -> Result<cat2_client::budget::Lease, ApiError> {
    let budget = sub.results.bytes();
    if need > budget {
        return Err(ApiError::bad_request(format!(
            "this slice needs about {need} bytes of memory to serve, more than the \
             subscriber's memory budget of {budget} (--memory-budget): ask for smaller \
             slices, or use /api/download"
        )));
    }
    let wait = BUDGET_WAIT.min(deadline.saturating_duration_since(tokio::time::Instant::now()));
    sub.results.lease(need, wait).await.ok_or_else(|| {
        ApiError::busy(format!(
            "the subscriber's memory budget ({budget} bytes) is taken by results in flight: \
             retry shortly"
        ))
    })
}

/// Fills the whole dataset and serves its cache file (streamed from disk, one range
/// supported). Once complete a cache file changes only when a chunk of it fails to decode
/// (it is then dropped and fetched again): the stream then stops short (see `files`).
async fn whole_file(
    sub: &Arc<Sub>,
    path: &str,
    c: Arc<Cached>,
    req: Request,
) -> Result<Response, ApiError> {
    let all = Selection::all(c.layout.shape());
    let c = ensure_sel(sub, path, c, &all, None).await?;
    let file = sub.cache_path(&c.root, &c.rel);
    // The file at that path must still be this version (a change may have replaced it).
    if sub.resolve(path).map(|(_, _, etag)| etag).ok().as_deref() != Some(c.etag.as_str()) {
        return Err(ApiError::unavailable(format!(
            "{path} changed on its publisher; retry"
        )));
    }
    let name = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut resp = crate::files::serve(c, &sub.transfers, sub.cfg.timeout, req).await?;
    if let Ok(v) = HeaderValue::from_str(&format!(
        "attachment; filename=\"{}\"",
        name.replace('"', "")
    )) {
        resp.headers_mut().insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(resp)
}

async fn download(
    State(sub): Shared,
    Path(path): Path<String>,
) -> Result<Json<DownloadReply>, ApiError> {
    let c = open(&sub, &path).await?;
    let all = Selection::all(c.layout.shape());
    let c = ensure_sel(&sub, &path, c, &all, None).await?;
    let suffix = if c.kind == Kind::File { ".b2" } else { "" };
    Ok(Json(format!(
        "{}files/{}/{}{suffix}",
        sub.cfg.url_base(),
        c.root,
        c.rel
    )))
}

async fn files(
    State(sub): Shared,
    Path(path): Path<String>,
    req: Request,
) -> Result<Response, ApiError> {
    // `README.md.b2` is the cache of the plain file `README.md`; other names are themselves.
    let target = match path.strip_suffix(".b2") {
        Some(base) if cat2_format::kind_of(std::path::Path::new(base)) == Kind::File => base,
        _ => path.as_str(),
    };
    if cat2_format::kind_of(std::path::Path::new(target)) == Kind::File && target == path {
        return Err(ApiError::not_found("Not Found"));
    }
    let c = open(&sub, target).await?;
    whole_file(&sub, target, c, req).await
}
