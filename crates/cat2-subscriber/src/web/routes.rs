//! What pages embed and link to: rendered images and lines, one item's value, slice
//! downloads, plain files' bytes, colorbars, and the tomography plugin's 0.2.0 URLs (thin
//! wrappers over the image route that read one plane, never the whole dataset).

use std::sync::Arc;

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use cat2_array::Selection;
use cat2_format::encode;
use cat2_proto::meta::Kind as DataKind;
use cat2_view::{Colormap, export};
use sha2::Digest;

use super::dataset::{FileLook, file_look};
use super::markup::enc;
use super::query::{Kind, Params, View};
use super::render;
use super::{Shared, Web, WebError};
use crate::cached::Cached;

/// Largest plain file `/web/raw` sends (bigger: `/api/fetch`, streamed from the cache).
const RAW_MAX: u64 = 64 << 20;

async fn open(web: &Web, path: &str) -> Result<Arc<Cached>, WebError> {
    Ok(crate::api::open(&web.sub, path).await?)
}

/// The view of an image request (two displayed dimensions, whatever `view` says).
fn image_view(c: &Cached, p: &Params) -> Result<View, WebError> {
    let v = View::parse(p, c.layout.shape(), Kind::Image)?;
    if v.axes.len() != 2 {
        return Err(WebError::bad(
            "an image needs two displayed dimensions (axes=D0,D1)",
        ));
    }
    Ok(v)
}

/// A strong validator of a rendering: the dataset's version and the canonical view.
fn etag(c: &Cached, what: &str) -> String {
    let d = sha2::Sha256::digest(format!("{}\n{}\n{what}", c.etag, c.id).as_bytes());
    let hex: String = d[..12].iter().map(|b| format!("{b:02x}")).collect();
    format!("\"{hex}\"")
}

fn not_modified(h: &HeaderMap, tag: &str) -> bool {
    h.get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == tag))
}

/// `/web/img/{path}?…`: the image of a view as an indexed PNG, with what it took in headers.
pub(crate) async fn img(
    State(web): Shared,
    Path(path): Path<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Result<Response, WebError> {
    let c = open(&web, &path).await?;
    let v = image_view(&c, &Params::parse(raw.as_deref()))?;
    png_response(&web, &path, &c, &v, &headers).await
}

async fn png_response(
    web: &Arc<Web>,
    path: &str,
    c: &Arc<Cached>,
    v: &View,
    headers: &HeaderMap,
) -> Result<Response, WebError> {
    let tag = etag(c, &v.image_query());
    if not_modified(headers, &tag) {
        return Ok((StatusCode::NOT_MODIFIED, [(header::ETAG, tag)]).into_response());
    }
    let img = render::image(&web.sub, &web.renders, path, c, v).await?;
    let mut r = (
        [(header::CONTENT_TYPE, "image/png")],
        axum::body::Body::from(img.png.clone()),
    )
        .into_response();
    let h = r.headers_mut();
    let mut put = |k: &'static str, v: String| {
        if let Ok(v) = HeaderValue::from_str(&v) {
            h.insert(k, v);
        }
    };
    if let Some((lo, hi)) = img.domain {
        put("x-cat2-domain", format!("{lo},{hi}"));
    }
    put(
        "x-cat2-stride",
        format!("{},{}", img.strides[0], img.strides[1]),
    );
    put("x-cat2-decoded-bytes", img.decoded.to_string());
    put("x-cat2-decimated", img.decimated.to_string());
    put("etag", tag);
    put("cache-control", "private, no-cache".to_owned());
    Ok(r)
}

/// `/web/line/{path}?…`: the line plot of a view as SVG.
pub(crate) async fn line(
    State(web): Shared,
    Path(path): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Response, WebError> {
    let c = open(&web, &path).await?;
    let v = View::parse(&Params::parse(raw.as_deref()), c.layout.shape(), Kind::Line)?;
    if v.axes.len() != 1 {
        return Err(WebError::bad(
            "a line needs one displayed dimension (axes=D)",
        ));
    }
    let (svg, decoded) = render::line(&web.sub, &path, &c, &v).await?;
    Ok((
        [
            (header::CONTENT_TYPE, "image/svg+xml".to_owned()),
            (
                header::HeaderName::from_static("x-cat2-decoded-bytes"),
                decoded.to_string(),
            ),
        ],
        svg,
    )
        .into_response())
}

/// `/web/value/{path}?at=I,J,…`: one item, as a table shows it.
pub(crate) async fn value(
    State(web): Shared,
    Path(path): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Response, WebError> {
    let c = open(&web, &path).await?;
    let p = Params::parse(raw.as_deref());
    let shape = c.layout.shape().to_vec();
    let at: Vec<u64> = p
        .get("at")
        .unwrap_or("")
        .split(',')
        .filter(|s| !s.is_empty())
        .map(|s| s.trim().parse::<u64>())
        .collect::<Result<_, _>>()
        .map_err(|_| WebError::bad("at must be one index per dimension, e.g. at=1,2,3"))?;
    if at.len() != shape.len() || at.iter().zip(&shape).any(|(i, n)| i >= n) {
        return Err(WebError::bad(format!(
            "at must be one index per dimension within {shape:?}"
        )));
    }
    let sel = Selection::from_ranges(at.iter().map(|&i| i..i + 1).collect(), &shape)
        .map_err(|e| WebError::bad(e.to_string()))?;
    let dt = render::dtype(&c)?;
    let data = render::read_boxes(&web.sub, &path, c, vec![sel]).await?;
    let text = cat2_view::values::cell(&dt, data.first().map_or(&[][..], Vec::as_slice));
    Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], text).into_response())
}

fn attachment(name: &str) -> HeaderValue {
    let clean: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    HeaderValue::from_str(&format!("attachment; filename=\"{clean}\""))
        .unwrap_or_else(|_| HeaderValue::from_static("attachment"))
}

/// `/web/export/{path}?…&format=npy|csv|b2nd|png`: the displayed slice at full resolution
/// (or, for `png`, the image as drawn), as a file.
pub(crate) async fn export(
    State(web): Shared,
    Path(path): Path<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Result<Response, WebError> {
    let c = open(&web, &path).await?;
    let p = Params::parse(raw.as_deref());
    let format = p.get("format").unwrap_or("npy");
    let stem = path.rsplit('/').next().unwrap_or("data");
    let stem = stem.rsplit_once('.').map_or(stem, |(s, _)| s);
    if format == "png" {
        let v = image_view(&c, &p)?;
        let mut r = png_response(&web, &path, &c, &v, &headers).await?;
        let name = format!("{stem}[{}].png", v.slice_text());
        r.headers_mut()
            .insert(header::CONTENT_DISPOSITION, attachment(&name));
        return Ok(r);
    }
    if c.kind == DataKind::File {
        return Err(WebError::bad(
            "plain files have no slices: download the file",
        ));
    }
    let v = View::parse(&p, c.layout.shape(), Kind::Table)?;
    let sel = v.selection()?;
    let dt = render::dtype(&c)?;
    let bytes = sel.nitems().saturating_mul(dt.itemsize() as u64);
    if bytes > web.sub.cfg.max_fetch_bytes {
        return Err(WebError::bad(format!(
            "this slice holds {bytes} bytes, more than {} allowed: download the dataset",
            web.sub.cfg.max_fetch_bytes
        )));
    }
    let shape = sel.shape();
    let data = render::read_boxes(&web.sub, &path, c.clone(), vec![sel])
        .await?
        .pop()
        .unwrap_or_default();
    let (ty, ext, body): (&str, &str, Vec<u8>) = match format {
        "npy" => (
            "application/octet-stream",
            "npy",
            export::npy(&dt, &shape, &data),
        ),
        "csv" => (
            "text/csv; charset=utf-8",
            "csv",
            export::csv(&dt, &shape, &data).into_bytes(),
        ),
        "b2nd" => {
            let typestr = dt.to_typestr();
            let body =
                tokio::task::spawn_blocking(move || encode::b2nd_cframe(&typestr, &shape, &data))
                    .await
                    .map_err(|e| WebError::from(crate::ApiError::internal(e)))?
                    .map_err(|e| WebError::from(crate::ApiError::internal(e)))?;
            ("application/octet-stream", "b2nd", body)
        }
        other => {
            return Err(WebError::bad(format!(
                "unknown format {other:?} (npy, csv, b2nd, png)"
            )));
        }
    };
    let name = format!("{stem}[{}].{ext}", v.slice_text());
    Ok((
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(ty)),
            (header::CONTENT_DISPOSITION, attachment(&name)),
        ],
        body,
    )
        .into_response())
}

/// `/web/raw/{path}`: a plain file's bytes, sandboxed (never run as a page of this site).
pub(crate) async fn raw(
    State(web): Shared,
    Path(path): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Response, WebError> {
    let c = open(&web, &path).await?;
    if c.kind != DataKind::File {
        return Err(WebError::bad(
            "only plain files have raw bytes: use /api/fetch",
        ));
    }
    let (data, total) = render::head_bytes(&web.sub, &path, &c, RAW_MAX).await?;
    if total > data.len() as u64 {
        return Err(WebError::bad(format!(
            "{path} is {total} bytes, more than {RAW_MAX} shown here: use /api/fetch/{path}"
        )));
    }
    let ext = path
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    let ty = match (file_look(&path), ext.as_str()) {
        (FileLook::Image, "svg") => "image/svg+xml",
        (FileLook::Image, "png") => "image/png",
        (FileLook::Image, "gif") => "image/gif",
        (FileLook::Image, "webp") => "image/webp",
        (FileLook::Image, "bmp") => "image/bmp",
        (FileLook::Image, _) => "image/jpeg",
        _ if std::str::from_utf8(&data).is_ok() => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    };
    let name = path.rsplit('/').next().unwrap_or("file");
    let disposition = if Params::parse(raw.as_deref()).get("download").is_some() {
        attachment(name)
    } else {
        HeaderValue::from_static("inline")
    };
    Ok((
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(ty)),
            (header::CONTENT_DISPOSITION, disposition),
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(
                    "sandbox; default-src 'none'; img-src 'self'; style-src 'unsafe-inline'",
                ),
            ),
        ],
        data,
    )
        .into_response())
}

/// `/web/colorbar/{cmap}`: every level of a colormap, left to right.
pub(crate) async fn colorbar(Path(cmap): Path<String>) -> Result<Response, WebError> {
    let cmap = Colormap::parse(&cmap)?;
    Ok((
        [
            (header::CONTENT_TYPE, "image/png"),
            (header::CACHE_CONTROL, "public, max-age=86400"),
        ],
        cat2_view::image::colorbar_png(cmap, 1),
    )
        .into_response())
}

/// 0.2.0's `/plugins/tomography/display/{path}`: the stack view of the dataset.
pub(crate) async fn tomo_display(Path(path): Path<String>) -> Redirect {
    Redirect::to(&format!("/roots/{}?view=stack", enc(&path)))
}

/// The view 0.2.0's tomography image `?i=N` shows: plane `N` of the first dimension, grey.
pub(crate) fn tomo_params(ndim: usize, i: u64) -> Params {
    let mut s = format!(
        "axes={},{}&cmap=gray",
        ndim.saturating_sub(2),
        ndim.saturating_sub(1)
    );
    if ndim > 2 {
        let rest: Vec<String> = (0..ndim - 2)
            .map(|d| if d == 0 { i.to_string() } else { "0".into() })
            .collect();
        s.push_str(&format!("&idx={}", rest.join(",")));
    }
    Params::parse(Some(&s))
}

/// 0.2.0's `/plugins/tomography/image/{path}?i=N`: that plane as a PNG (only its blocks read).
pub(crate) async fn tomo_image(
    State(web): Shared,
    Path(path): Path<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Result<Response, WebError> {
    let c = open(&web, &path).await?;
    let i: u64 = match Params::parse(raw.as_deref()).get("i") {
        None => 0,
        Some(s) => s
            .trim()
            .parse()
            .map_err(|_| WebError::bad(format!("i must be a number, got {s:?}")))?,
    };
    let v = image_view(&c, &tomo_params(c.layout.shape().len(), i))?;
    png_response(&web, &path, &c, &v, &headers).await
}
