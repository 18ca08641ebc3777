//! A subset of the h5grove 4.0.0 HTTP API, so that h5web (its `H5GroveProvider`) and other
//! h5grove clients can browse and read cat2 roots: `GET /h5grove/` (`ok`), `/h5grove/meta`,
//! `/h5grove/attr`, `/h5grove/data` (`json`, `bin`, `npy`, `csv`, `tiff`; `dtype=origin|safe`,
//! `flatten`, NumPy-style `selection` with steps) and `/h5grove/paths`, each with or without
//! a trailing slash. Not served: `/stats`, and anything about links or committed datatypes
//! (cat2 has neither; `resolve_links` is checked, then has nothing to do).
//!
//! # How cat2 maps onto h5grove
//! - `file` is a root name. A root this subscriber does not follow yet is followed, as the web
//!   pages do, so that a shared h5web URL just works.
//! - `path` is HDF5-like inside the root: `/` is the root group, `/dir1` a folder (a group,
//!   with no attributes), `/dir1/ds-2d.b2nd` a dataset: names keep their suffix, as Caterva2
//!   0.2.0 does for HDF5 roots.
//! - A `.b2nd` array is a dataset of its shape and dtype, typed as h5py would store the dtype
//!   (bool an enum, complex a compound `{r, i}`, NumPy's `U` a UTF-8 string, datetimes opaque:
//!   see `types`). Super-chunks (`.b2frame`) and plain files are 1-D opaque datasets of their
//!   items (bytes, for plain files): h5web shows their bytes. A dataset's vlmeta are its
//!   attributes.
//! - `chunks` is the Blosc2 chunk shape (`null` for a scalar); `filters` is the one filter
//!   cat2 data goes through, Blosc2, under its registered HDF5 id (codec and shuffle inside it
//!   are in `/api/info`).
//! - `/data` reads through the web views' path (`render::read_boxes`: the cache, fetching
//!   only the blocks a small selection needs), within `/api/fetch`'s bound
//!   (`Config::max_fetch_bytes`; an eighth of it for JSON, whose text takes several times
//!   the bytes) and the memory budget. A selection with steps reads its bounding box.
//!
//! Errors are h5grove's: `{"message": …}`, 404 for an unknown root or path (with h5grove's
//! words "File not found" and "not a valid path", which h5web turns into its own messages),
//! 422 for bad parameters (FastAPI's code for a missing `file` too); upstream failures keep
//! the subscriber's 503/504.

mod encode;
mod error;
mod types;

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use cat2_array::DType;
use cat2_proto::meta::Kind as DataKind;
use cat2_proto::{ErrorCode, RootName};
use futures::{StreamExt, TryStreamExt};
use serde_json::{Value, json};

use super::query::Params;
use super::{Shared, Web, render};
use crate::ApiError;
use crate::cached::Cached;
use encode::Format;
use error::H5Error;

/// The HDF5 filter id registered for Blosc2 (what hdf5plugin writes for Blosc2 datasets).
const BLOSC2_FILTER: u32 = 32026;
/// How much smaller than `Config::max_fetch_bytes` a JSON answer's items must be: a number's
/// text takes up to about 24 bytes for at most 8 of data, an escaped string 6 times its bytes.
const JSON_EXPANSION: u64 = 8;
/// Children whose metadata a group's `meta` reads at once.
const PARALLEL_META: usize = 8;

/// The h5grove routes (merged into the web router, under its authentication).
pub(crate) fn routes() -> Router<Arc<Web>> {
    Router::new()
        .route("/h5grove", get(ping))
        .route("/h5grove/", get(ping))
        .route("/h5grove/meta", get(meta))
        .route("/h5grove/meta/", get(meta))
        .route("/h5grove/attr", get(attr))
        .route("/h5grove/attr/", get(attr))
        .route("/h5grove/data", get(data))
        .route("/h5grove/data/", get(data))
        .route("/h5grove/paths", get(paths))
        .route("/h5grove/paths/", get(paths))
}

/// What a request names: a root and a path in it.
struct Target {
    root: RootName,
    /// As h5grove writes it: `/`, `/dir1`, `/dir1/ds-2d.b2nd`.
    path: String,
    /// The same inside the root: ``, `dir1`, `dir1/ds-2d.b2nd`.
    rel: String,
}

impl Target {
    /// `root/rel`, as the REST API and the read path name a dataset.
    fn full(&self) -> String {
        format!("{}/{}", self.root, self.rel)
    }

    /// The last segment (`""` for the root group, as h5grove names it).
    fn name(&self) -> &str {
        self.rel.rsplit('/').next().unwrap_or("")
    }

    fn child(&self, name: &str) -> Target {
        let rel = if self.rel.is_empty() {
            name.to_owned()
        } else {
            format!("{}/{name}", self.rel)
        };
        Target {
            root: self.root.clone(),
            path: format!("/{rel}"),
            rel,
        }
    }
}

/// What a path is.
enum Found {
    Dataset,
    /// A group (the root, or a folder), with the dataset paths under it, relative to it, in
    /// name order.
    Group(Vec<String>),
}

/// h5grove's `resolve_links` values: checked (422 otherwise), then moot without links.
fn check_links(p: &Params) -> Result<(), H5Error> {
    match p
        .get("resolve_links")
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        None | Some("none" | "only_valid" | "all" | "true" | "false") => Ok(()),
        Some(other) => Err(H5Error::unprocessable(format!(
            "{other} is not a valid value for link resolution. Accepted values are: all, none \
             or only_valid"
        ))),
    }
}

fn file_not_found(file: &str) -> H5Error {
    H5Error::not_found(format!(
        "File not found! {file:?} is not a root known to this subscriber's broker"
    ))
}

/// Makes sure `root` is followed, following it when the broker knows it.
async fn ensure_followed(web: &Web, root: &RootName, file: &str) -> Result<(), H5Error> {
    let followed = |web: &Web| {
        web.sub
            .state()
            .roots
            .get(root.as_str())
            .map(|r| r.subscribed)
    };
    let mut known = followed(web);
    if known.is_none() {
        // Maybe announced while we were away from the broker. A broker that does not answer
        // leaves the root unknown, and that is the answer.
        if let Err(e) = web.sub.refresh_roots().await {
            tracing::debug!(error = %e, "cannot refresh the roots for an h5grove request");
        }
        known = followed(web);
    }
    match known {
        None => Err(file_not_found(file)),
        Some(true) => Ok(()),
        Some(false) => web.sub.follow(root).await.map_err(|e| match e.kind() {
            ErrorCode::NotFound => file_not_found(file),
            _ => H5Error::from(e),
        }),
    }
}

/// The root and path a request names, and what the path is.
async fn find(web: &Web, p: &Params) -> Result<(Target, Found), H5Error> {
    let file = p.get("file").ok_or_else(|| {
        H5Error::unprocessable("the file parameter is required: the name of a cat2 root")
    })?;
    let root = RootName::new(file).map_err(|_| file_not_found(file))?;
    ensure_followed(web, &root, file).await?;
    let rel = p.get("path").unwrap_or("/").trim_matches('/').to_owned();
    let found = {
        let state = web.sub.state();
        let datasets = &state
            .roots
            .get(root.as_str())
            .ok_or_else(|| file_not_found(file))?
            .datasets;
        if !rel.is_empty() && datasets.contains_key(&rel) {
            Some(Found::Dataset)
        } else {
            let prefix = if rel.is_empty() {
                String::new()
            } else {
                format!("{rel}/")
            };
            // The keys are sorted: those under the prefix are one run from it.
            let under: Vec<String> = datasets
                .range(prefix.clone()..)
                .map_while(|(k, _)| k.strip_prefix(prefix.as_str()))
                .map(str::to_owned)
                .collect();
            (rel.is_empty() || !under.is_empty()).then_some(Found::Group(under))
        }
    };
    let path = format!("/{rel}");
    let Some(found) = found else {
        return Err(H5Error::not_found(format!(
            "{path} is not a valid path in {file}"
        )));
    };
    Ok((Target { root, path, rel }, found))
}

async fn open(web: &Web, t: &Target) -> Result<Arc<Cached>, H5Error> {
    crate::api::open(&web.sub, &t.full())
        .await
        .map_err(|e| match e.kind() {
            // Gone since `find` looked (a change removed it).
            ErrorCode::NotFound => {
                H5Error::not_found(format!("{} is not a valid path in {}", t.path, t.root))
            }
            _ => H5Error::from(e),
        })
}

/// Items as h5grove sees them: an array's dtype; opaque items of their size for super-chunks
/// and plain files (what `render::dtype` calls `|u1` there is bytes with no meaning known).
fn dtype(c: &Cached) -> Result<DType, H5Error> {
    if c.kind == DataKind::Array {
        return render::dtype(c).map_err(H5Error::from);
    }
    Ok(types::scalar('|', 'V', c.layout.itemsize().max(1)))
}

/// A dataset's attributes (its vlmeta), by name: h5grove lists them sorted.
fn attributes(c: &Cached) -> BTreeMap<String, types::Attr> {
    c.meta
        .vlmeta
        .iter()
        .map(|l| {
            let v = cat2_proto::msgpack::to_json(&l.content);
            (l.name.clone(), types::attr(v))
        })
        .collect()
}

/// h5grove's dataset metadata (keys sorted, as its `sorted_dict` writes them).
fn dataset_meta(c: &Cached, name: &str) -> Result<Value, H5Error> {
    let dt = dtype(c)?;
    let shape = c.layout.shape();
    let attrs: Vec<Value> = attributes(c)
        .into_iter()
        .map(|(key, a)| json!({"name": key, "shape": a.shape, "type": a.ty}))
        .collect();
    let chunks = if shape.is_empty() {
        Value::Null
    } else {
        json!(c.layout.chunks())
    };
    Ok(json!({
        "attributes": attrs,
        "chunks": chunks,
        "filters": [{"id": BLOSC2_FILTER, "name": "blosc2"}],
        "kind": "dataset",
        "name": name,
        "shape": shape,
        "type": types::type_meta(&dt),
    }))
}

/// h5grove's group metadata: its children one level down, datasets with their metadata,
/// groups without children (h5grove's depth 1).
async fn group_meta(web: &Web, t: &Target, under: &[String]) -> Result<Value, H5Error> {
    // Name → whether it is a dataset; in name order, HDF5's order of links. Owned names, so
    // that the reads below borrow nothing from the stream's items.
    let mut children: BTreeMap<String, bool> = BTreeMap::new();
    for k in under {
        match k.split_once('/') {
            Some((dir, _)) => {
                children.entry(dir.to_owned()).or_insert(false);
            }
            None => {
                children.insert(k.clone(), true);
            }
        }
    }
    let metas: Vec<Value> = futures::stream::iter(children)
        .map(|(name, is_dataset)| async move {
            if !is_dataset {
                return Ok::<Value, H5Error>(
                    json!({"attributes": [], "kind": "group", "name": name}),
                );
            }
            // One child that cannot be opened (no cache and its publisher gone, a type
            // h5grove cannot describe) does not hide its siblings: it is listed as an entity
            // of another kind, as h5grove lists what it cannot resolve.
            let meta = match open(web, &t.child(&name)).await {
                Ok(c) => dataset_meta(&c, &name),
                Err(e) => Err(e),
            };
            Ok(meta.unwrap_or_else(|e| {
                tracing::debug!(path = %t.child(&name).path, error = ?e, "h5grove: child not described");
                json!({"attributes": [], "kind": "other", "name": name})
            }))
        })
        .buffered(PARALLEL_META)
        .try_collect()
        .await?;
    Ok(json!({"attributes": [], "children": metas, "kind": "group", "name": t.name()}))
}

async fn ping() -> &'static str {
    "ok"
}

/// `/h5grove/meta?file=ROOT&path=P`.
async fn meta(State(web): Shared, RawQuery(raw): RawQuery) -> Result<Response, H5Error> {
    let p = Params::parse(raw.as_deref());
    check_links(&p)?;
    let (t, found) = find(&web, &p).await?;
    let v = match found {
        Found::Dataset => dataset_meta(&*open(&web, &t).await?, t.name())?,
        Found::Group(under) => group_meta(&web, &t, &under).await?,
    };
    Ok(axum::Json(v).into_response())
}

/// `/h5grove/attr?file=ROOT&path=P[&attr_keys=K…]`: attribute values by name.
async fn attr(State(web): Shared, RawQuery(raw): RawQuery) -> Result<Response, H5Error> {
    let p = Params::parse(raw.as_deref());
    let (t, found) = find(&web, &p).await?;
    let mut all = match found {
        Found::Dataset => attributes(&*open(&web, &t).await?),
        Found::Group(_) => BTreeMap::new(),
    };
    let keys = p.all("attr_keys");
    let out: serde_json::Map<String, Value> = if keys.is_empty() {
        all.into_iter().map(|(k, a)| (k, a.value)).collect()
    } else {
        let mut out = serde_json::Map::new();
        for k in keys {
            let a = all.remove(k).ok_or_else(|| {
                H5Error::not_found(format!(
                    "{k} is not an attribute of {} in {}",
                    t.path, t.root
                ))
            })?;
            out.insert(k.to_owned(), a.value);
        }
        out
    };
    Ok(axum::Json(Value::Object(out)).into_response())
}

/// `/h5grove/paths?file=ROOT&path=G`: `G` and every path below it.
async fn paths(State(web): Shared, RawQuery(raw): RawQuery) -> Result<Response, H5Error> {
    let p = Params::parse(raw.as_deref());
    check_links(&p)?;
    let (t, found) = find(&web, &p).await?;
    let Found::Group(under) = found else {
        return Err(H5Error::unprocessable(format!("{} is not a group", t.path)));
    };
    Ok(axum::Json(tree_paths(&t.path, &under)).into_response())
}

/// `base`, then the groups and datasets below it, depth first in name order (h5py's
/// `visit` order, which h5grove lists): folders appear before what they hold.
fn tree_paths(base: &str, under: &[String]) -> Vec<String> {
    // Sorting by segments (not by whole strings) is depth-first order: `a/b` before `a-c`.
    let mut leaves: Vec<Vec<&str>> = under.iter().map(|k| k.split('/').collect()).collect();
    leaves.sort();
    let join = |segments: &[&str]| {
        let tail = segments.join("/");
        if base == "/" {
            format!("/{tail}")
        } else {
            format!("{base}/{tail}")
        }
    };
    let mut out = vec![base.to_owned()];
    let mut prev: &[&str] = &[];
    for leaf in &leaves {
        // The folders the previous leaf opened are listed already.
        let common = prev.iter().zip(leaf).take_while(|(a, b)| a == b).count();
        for depth in common..leaf.len() {
            out.push(join(&leaf[..=depth]));
        }
        prev = leaf.as_slice();
    }
    out
}

/// `/h5grove/data?file=ROOT&path=D[&selection=S][&format=F][&dtype=origin|safe][&flatten=B]`.
async fn data(State(web): Shared, RawQuery(raw): RawQuery) -> Result<Response, H5Error> {
    let p = Params::parse(raw.as_deref());
    // Parameters first: a bad one costs no read.
    let format = Format::parse(p.get("format")).map_err(H5Error::unprocessable)?;
    let safe = match p.get("dtype") {
        None | Some("origin") => false,
        Some("safe") => true,
        Some(other) => {
            return Err(H5Error::unprocessable(format!("Unsupported dtype {other}")));
        }
    };
    let flatten = match p.get("flatten") {
        None => false,
        Some(v) => crate::api::parse_bool(v)
            .map_err(|_| H5Error::unprocessable(format!("flatten must be a boolean, got {v:?}")))?,
    };
    let (t, found) = find(&web, &p).await?;
    if !matches!(found, Found::Dataset) {
        return Err(H5Error::unprocessable(format!(
            "{} is not a dataset",
            t.path
        )));
    }
    let c = open(&web, &t).await?;
    let dt = dtype(&c)?;
    let text = p.get("selection").unwrap_or("");
    let pick = encode::pick(Some(text), c.layout.shape())
        .map_err(|e| H5Error::unprocessable(format!("invalid selection {text:?}: {e}")))?;
    let nitems: u64 = pick.shape.iter().product();
    // h5grove flattens arrays, never scalars.
    let shape = if flatten && !pick.shape.is_empty() {
        vec![nitems]
    } else {
        pick.shape.clone()
    };
    encode::check(&dt, shape.len(), format, safe).map_err(H5Error::unprocessable)?;
    let read = pick.bbox.nitems().saturating_mul(dt.itemsize() as u64);
    let sub = &web.sub;
    let mut max = sub.cfg.max_fetch_bytes.min(sub.results.bytes());
    if format == Format::Json {
        max /= JSON_EXPANSION;
    }
    // JSON writes a value (at least `null` or `[]`) per cell, which zero-size items or
    // zero-length axes would make unbounded by the bytes read.
    if format == Format::Json && encode::json_cells(&dt, &shape) > max {
        return Err(H5Error::unprocessable(format!(
            "{}[{text}] has too many values to write as json: too large; use a selection",
            t.path
        )));
    }
    if read > max {
        return Err(H5Error::unprocessable(format!(
            "{}[{text}] needs {read} bytes read, more than the {max} this subscriber serves \
             at once as {}: too large; use a selection",
            t.path,
            format.name()
        )));
    }
    let data = if pick.bbox.nitems() == 0 {
        Vec::new()
    } else {
        render::read_boxes(sub, &t.full(), c, vec![pick.bbox.clone()])
            .await?
            .pop()
            .unwrap_or_default()
    };
    let itemsize = dt.itemsize();
    // Encoding millions of items is CPU work: off the async workers.
    let out = tokio::task::spawn_blocking(move || {
        let data = encode::gather(data, &pick, itemsize);
        encode::encode(&dt, &shape, data, format, safe)
    })
    .await
    .map_err(|e| H5Error::from(ApiError::internal(e)))?
    .map_err(H5Error::unprocessable)?;
    let mut r = ([(header::CONTENT_TYPE, out.content_type)], out.body).into_response();
    if let Some(d) = out.disposition {
        r.headers_mut()
            .insert(header::CONTENT_DISPOSITION, HeaderValue::from_static(d));
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_depth_first_in_name_order() {
        let under: Vec<String> = ["a-c", "a/b", "a/z/y", "b"].map(String::from).to_vec();
        assert_eq!(
            tree_paths("/", &under),
            ["/", "/a", "/a/b", "/a/z", "/a/z/y", "/a-c", "/b"]
        );
        assert_eq!(tree_paths("/d", &[]), ["/d"]);
        assert_eq!(tree_paths("/d", &["x".to_owned()]), ["/d", "/d/x"]);
    }
}
