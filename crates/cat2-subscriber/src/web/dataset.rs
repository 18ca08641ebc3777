//! The dataset page: a header with downloads, view tabs chosen by kind, the view (image,
//! stack, line or table, each in a plain GET form so it works without JavaScript), and the
//! metadata panel. Plain files get a text, markdown or image preview instead.

use std::sync::Arc;

use axum::response::{IntoResponse, Response};
use cat2_proto::meta::Kind as DataKind;
use cat2_view::{Colormap, Complex, Numeric, Scale};
use maud::{Markup, PreEscaped, html};

use super::markup::{self, enc, size};
use super::query::{DEFAULT_SAMPLES, Kind, MAX_SAMPLES, Params, View};
use super::render::{self, Image};
use super::{Web, WebError};
use crate::cached::Cached;

/// Bytes of a plain file previewed as text or markdown.
pub(crate) const PREVIEW_BYTES: u64 = 256 << 10;
/// Widest an image is drawn on the page, in CSS pixels (small images are scaled up by a
/// whole factor, so each item is a crisp square).
const DRAW_WIDTH: u64 = 640;

/// The dataset (or plain file) page of `full` = `root/rel`.
pub(crate) async fn page(
    web: &Arc<Web>,
    full: &str,
    root: &str,
    rel: &str,
    p: &Params,
    fragment: bool,
) -> Result<Response, WebError> {
    let sub = &web.sub;
    let c = crate::api::open(sub, full)
        .await
        .map_err(|e| WebError::from(e).page())?;
    let (info, filled) = crate::api::info_value(sub, c.clone())
        .await
        .map_err(|e| WebError::from(e).page())?;
    let body = match c.kind {
        DataKind::File => file_view(web, full, &c).await?,
        _ => array_view(web, full, &c, &info, p).await?,
    };
    let name = rel.rsplit('/').next().unwrap_or(rel);
    let main = html! {
        header.ds {
            h1 { (name) }
            p.path { code #ds-path { (full) } }
        }
        div.ds-grid {
            div.ds-view { (body) }
            aside.ds-meta { (markup::meta_panel(&info, (filled, c.layout.nchunks()))) }
        }
    };
    if fragment {
        return Ok(main.into_response());
    }
    Ok(markup::frame(name, &markup::crumbs(root, rel), main).into_response())
}

/// The views a dataset offers: numbers are drawn, everything is tabled.
fn kinds(numeric: bool, ndim: usize) -> Vec<Kind> {
    match (numeric, ndim) {
        (true, 0) | (false, _) => vec![Kind::Table],
        (true, 1) => vec![Kind::Line, Kind::Table],
        (true, 2) => vec![Kind::Image, Kind::Line, Kind::Table],
        (true, _) => vec![Kind::Image, Kind::Stack, Kind::Line, Kind::Table],
    }
}

/// The view a page shows first: tomography stacks (declared, or Caterva2's rule: unsigned
/// 3-D) as a stack, other numbers ≥ 2-D as an image, 1-D as a line, the rest as a table.
fn default_kind(kinds: &[Kind], info: &serde_json::Value, dtype: &str, ndim: usize) -> Kind {
    let tomo = info["schunk"]["vlmeta"]["contenttype"].as_str() == Some("tomography")
        || (ndim == 3 && dtype.get(1..2) == Some("u"));
    if tomo && kinds.contains(&Kind::Stack) {
        Kind::Stack
    } else {
        kinds[0]
    }
}

async fn array_view(
    web: &Arc<Web>,
    full: &str,
    c: &Arc<Cached>,
    info: &serde_json::Value,
    p: &Params,
) -> Result<Markup, WebError> {
    let dt = render::dtype(c).map_err(WebError::page)?;
    let shape = c.layout.shape();
    let numeric = Numeric::new(&dt, Complex::Abs).ok();
    let kinds = kinds(numeric.is_some(), shape.len());
    let default = default_kind(&kinds, info, &dt.to_typestr(), shape.len());
    let v = View::parse(p, shape, default).map_err(WebError::page)?;
    if !kinds.contains(&v.kind) {
        return Err(WebError::bad(format!(
            "a {} view is not available for {} items in {} dimensions",
            v.kind.name(),
            dt.to_typestr(),
            shape.len()
        ))
        .page());
    }
    let complex = numeric.is_some_and(|n| n.is_complex());
    let path = enc(full);
    let view = match v.kind {
        Kind::Image | Kind::Stack => {
            let img = render::image(&web.sub, &web.renders, full, c, &v).await;
            image_view(&path, &v, complex, img)
        }
        Kind::Line => {
            let svg = render::line(&web.sub, full, c, &v).await;
            line_view(&v, complex, svg)
        }
        Kind::Table => {
            let t = render::table(&web.sub, full, c, &v).await;
            table_view(&v, t)
        }
    };
    let slice = v.slice_text();
    // What the displayed axes show in the slice text (`:` or a window), for the script.
    let parts: Vec<&str> = slice.split(',').collect();
    let keep: Vec<&str> = v
        .axes
        .iter()
        .filter_map(|&d| parts.get(d).copied())
        .collect();
    let keep = keep.join(",");
    let export = |fmt: &str| format!("/web/export/{path}?{}&format={fmt}", v.page_query());
    Ok(html! {
        nav.tabs aria-label="Views" {
            @for k in &kinds {
                @let href = format!("?{}", v.with(|w| w.kind = *k).page_query());
                @if *k == v.kind { a.tab href=(href) aria-current="page" { (k.name()) } }
                @else { a.tab href=(href) { (k.name()) } }
            }
        }
        (view)
        section.downloads aria-label="Downloads" {
            a.dl #dl-all href=(format!("/api/fetch/{path}")) download { "Download dataset" }
            " · slice " code #slice-text data-keep=(keep) { "[" (slice) "]" } " as "
            a.dl #dl-npy href=(export("npy")) data-fmt="npy" download { ".npy" } " "
            a.dl #dl-csv href=(export("csv")) data-fmt="csv" download { ".csv" } " "
            a.dl #dl-b2nd href=(export("b2nd")) data-fmt="b2nd" download { ".b2nd" }
            @if matches!(v.kind, Kind::Image | Kind::Stack) { " " a.dl #dl-png href=(export("png")) data-fmt="png" download { ".png" } }
        }
    })
}

/// Axis choices and indices for the dimensions not displayed (range and number inputs: the
/// number is the form's field, the range drives it with JavaScript).
fn slice_controls(v: &View) -> Markup {
    let roles: &[&str] = match v.axes.len() {
        2 => &["rows", "columns"],
        1 => &["axis"],
        _ => &[],
    };
    let ndim = v.shape.len();
    html! {
        @if !roles.is_empty() && ndim > roles.len() {
            fieldset.axes { legend { "Displayed dimensions" }
                @for (k, role) in roles.iter().enumerate() {
                    label { (role) " "
                        select name="axes" {
                            @for d in 0..ndim {
                                option value=(d) selected[v.axes[k] == d] { "dim " (d) " (" (v.shape[d]) ")" }
                            }
                        }
                    } " "
                }
            }
        } @else {
            @for a in &v.axes { input type="hidden" name="axes" value=(a); }
        }
        @let others = v.others();
        @if !others.is_empty() {
            fieldset.idx { legend { "Indices" }
                @for d in others {
                    @let last = v.shape[d].saturating_sub(1);
                    div.dim {
                        label for=(format!("n{d}")) { "dim " (d) }
                        input.slider type="range" id=(format!("r{d}")) data-dim=(d) min="0" max=(last)
                            value=(v.idx[d]) aria-label=(format!("index along dim {d}"));
                        input type="number" id=(format!("n{d}")) name=(format!("i{d}")) min="0" max=(last) value=(v.idx[d]);
                        span.of { " of " (v.shape[d]) }
                    }
                }
            }
        }
    }
}

fn select<T: Copy + PartialEq>(
    name: &str,
    label: &str,
    all: &[T],
    cur: T,
    n: fn(T) -> &'static str,
) -> Markup {
    html! {
        label { (label) " "
            select name=(name) {
                @for x in all { option value=(n(*x)) selected[*x == cur] { (n(*x)) } }
            }
        }
    }
}

fn window_text(r: &std::ops::Range<u64>, len: u64) -> String {
    if r.start == 0 && r.end == len {
        String::new()
    } else {
        format!("{}:{}", r.start, r.end)
    }
}

fn image_view(path: &str, v: &View, complex: bool, img: Result<Arc<Image>, WebError>) -> Markup {
    let stack = v.kind == Kind::Stack;
    let (rlen, clen) = (v.shape[v.axes[0]], v.shape[v.axes[1]]);
    let full_res = v.with(|w| {
        w.full = true;
        w.max = MAX_SAMPLES;
    });
    let first = v.others().first().copied();
    html! {
        form #view-form.controls method="get" data-kind=(v.kind.name()) data-path=(path) {
            input type="hidden" name="view" value=(v.kind.name());
            (slice_controls(v))
            fieldset.look { legend { "Colours" }
                (select("cmap", "colormap", &Colormap::ALL, v.cmap, Colormap::name)) " "
                (select("scale", "scale", &Scale::ALL, v.scale, Scale::name)) " "
                label { "vmin " input type="number" step="any" name="vmin" value=[v.vmin] placeholder="auto"; } " "
                label { "vmax " input type="number" step="any" name="vmax" value=[v.vmax] placeholder="auto"; }
                @if complex { " " (select("cplx", "complex as", &Complex::ALL, v.cplx, Complex::name)) }
            }
            fieldset.zoom { legend { "Window" }
                label { "rows " input type="text" name="rows" value=(window_text(&v.rows, rlen)) placeholder="all" size="9"; } " "
                label { "columns " input type="text" name="cols" value=(window_text(&v.cols, clen)) placeholder="all" size="9"; }
                @if v.max != DEFAULT_SAMPLES { input type="hidden" name="max" value=(v.max); }
                @if v.full { input type="hidden" name="budget" value="full"; }
            }
            @if stack && first.is_some() {
                p.play { button #play type="button" aria-pressed="false" { "Play" } " "
                    label { "frames/s " input #fps type="number" min="1" max="30" value="5"; } }
            }
            p { button type="submit" { "Apply" } }
        }
        @match img {
            Err(e) => p.error role="alert" { (e.message) },
            Ok(img) => {
                @let k = (DRAW_WIDTH / img.width.max(img.height).max(1)).clamp(1, 32);
                @let (lo, hi) = img.domain.map_or((String::new(), String::new()), |(a, b)| (cat2_view::values::float_text(a), cat2_view::values::float_text(b)));
                figure.heat {
                    img #view-img.pixelated src=(format!("/web/img/{path}?{}", v.image_query()))
                        width=(img.width * k) height=(img.height * k)
                        alt=(format!("heatmap of [{}]", v.slice_text()))
                        data-rows=(format!("{},{}", v.rows.start, img.strides[0]))
                        data-cols=(format!("{},{}", v.cols.start, img.strides[1]))
                        data-axes=(v.axes.iter().map(ToString::to_string).collect::<Vec<_>>().join(","))
                        data-shape=(v.shape.iter().map(ToString::to_string).collect::<Vec<_>>().join(","));
                    div.cbar {
                        span #dom-lo { (lo) }
                        img.colorbar src=(format!("/web/colorbar/{}", v.cmap.name())) width="255" height="12" alt=(format!("{} colorbar", v.cmap.name()));
                        span #dom-hi { (hi) }
                    }
                    figcaption #img-info {
                        (img.height) "×" (img.width) " samples"
                        @if img.strides != [1, 1] { ", every " (img.strides[0]) "×" (img.strides[1]) " items" }
                        ", decoded " span #decoded { (size(img.decoded)) }
                        @if img.decimated {
                            " · " span.badge.dec #decimated { "decimated: whole blocks skipped to stay within the decode budget" }
                            " " a #full-res href=(format!("?{}", full_res.page_query())) { "full resolution" }
                        }
                    }
                }
                p #probe.probe aria-live="polite" { "Click the image for a value." }
                @if let Some(d) = first {
                    p #slice-status.sr-only aria-live="polite" { "slice " (v.idx[d] + 1) " of " (v.shape[d]) }
                }
            }
        }
    }
}

fn line_view(v: &View, complex: bool, svg: Result<(String, u64), WebError>) -> Markup {
    let len = v.shape[v.axes[0]];
    html! {
        form #view-form.controls method="get" data-kind="line" {
            input type="hidden" name="view" value="line";
            (slice_controls(v))
            fieldset.look { legend { "Plot" }
                (select("scale", "scale", &Scale::ALL, v.scale, Scale::name)) " "
                @if complex { (select("cplx", "complex as", &Complex::ALL, v.cplx, Complex::name)) " " }
                label { "range " input type="text" name="rows" value=(window_text(&v.rows, len)) placeholder="all" size="9"; }
            }
            p { button type="submit" { "Apply" } }
        }
        @match svg {
            Err(e) => p.error role="alert" { (e.message) },
            Ok((svg, decoded)) => figure.line {
                // Our own SVG: numbers and fixed markup only.
                (PreEscaped(svg))
                figcaption { "[" (v.slice_text()) "], decoded " (size(decoded)) }
            },
        }
    }
}

fn table_view(v: &View, t: Result<render::Table, WebError>) -> Markup {
    let page = |f: &dyn Fn(&mut View)| format!("?{}", v.with(f).page_query());
    let step = |r: &std::ops::Range<u64>, len: u64, fwd: bool| {
        let n = (r.end - r.start).max(1);
        let a = if fwd {
            (r.start + n).min(len.saturating_sub(1))
        } else {
            r.start.saturating_sub(n)
        };
        a..(a + n).min(len)
    };
    let (rlen, clen) = match v.axes.as_slice() {
        [r, c] => (v.shape[*r], v.shape[*c]),
        [r] => (v.shape[*r], 1),
        _ => (1, 1),
    };
    html! {
        form #view-form.controls method="get" data-kind="table" {
            input type="hidden" name="view" value="table";
            (slice_controls(v))
            @if !v.axes.is_empty() {
                fieldset.zoom { legend { "Window" }
                    label { "rows " input type="text" name="rows" value=(format!("{}:{}", v.rows.start, v.rows.end)) size="9"; } " "
                    @if v.axes.len() == 2 {
                        label { "columns " input type="text" name="cols" value=(format!("{}:{}", v.cols.start, v.cols.end)) size="9"; }
                    }
                }
            }
            p { button type="submit" { "Apply" } }
        }
        @match t {
            Err(e) => p.error role="alert" { (e.message) },
            Ok(t) => {
                nav.pager aria-label="Table pages" {
                    @if v.rows.start > 0 { a #prev-rows href=(page(&|w| w.rows = step(&v.rows, rlen, false))) { "Previous rows" } " " }
                    @if v.rows.end < rlen { a #next-rows href=(page(&|w| w.rows = step(&v.rows, rlen, true))) { "Next rows" } " " }
                    @if v.axes.len() == 2 && v.cols.start > 0 { a #prev-cols href=(page(&|w| w.cols = step(&v.cols, clen, false))) { "Previous columns" } " " }
                    @if v.axes.len() == 2 && v.cols.end < clen { a #next-cols href=(page(&|w| w.cols = step(&v.cols, clen, true))) { "Next columns" } }
                }
                div.table-wrap {
                    table #data-table.data aria-rowcount=(rlen + 1) aria-colcount=(t.cols.len().max(1) + 1) {
                        thead { tr aria-rowindex="1" {
                            th scope="col" aria-colindex="1" { "index" }
                            @if t.cols.is_empty() { th scope="col" aria-colindex="2" { "value" } }
                            @for c in &t.cols {
                                th scope="col" aria-colindex=(c.at + 2) { (c.label) }
                            }
                        } }
                        tbody {
                            @for (i, row) in t.cells.iter().enumerate() {
                                @let r = t.rows.get(i).copied().unwrap_or(i as u64);
                                tr aria-rowindex=(r + 2) {
                                    th scope="row" aria-colindex="1" { (r) }
                                    @for (j, cell) in row.iter().enumerate() {
                                        @let col = t.cols.get(j).map_or(j as u64, |c| c.at);
                                        td aria-colindex=(col + 2) data-index=(format!("{r},{col}")) { (cell) }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// What a plain file looks like by its extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FileLook {
    Markdown,
    Image,
    Other,
}

pub(crate) fn file_look(name: &str) -> FileLook {
    let ext = name.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase());
    match ext.as_deref() {
        Some("md" | "markdown") => FileLook::Markdown,
        Some("png" | "jpg" | "jpeg" | "gif" | "webp" | "svg" | "bmp") => FileLook::Image,
        _ => FileLook::Other,
    }
}

async fn file_view(web: &Arc<Web>, full: &str, c: &Arc<Cached>) -> Result<Markup, WebError> {
    let path = enc(full);
    let look = file_look(full);
    let raw = format!("/web/raw/{path}");
    let preview = if look == FileLook::Image {
        html! { figure.file-image { img #file-img src=(raw) alt=(full); } }
    } else {
        let (bytes, total) = render::head_bytes(&web.sub, full, c, PREVIEW_BYTES)
            .await
            .map_err(WebError::page)?;
        let cut = total > bytes.len() as u64;
        let text = std::str::from_utf8(&bytes).ok().or_else(|| {
            // A cut may split a character: text is text up to its last whole one.
            let e = std::str::from_utf8(&bytes).err()?;
            (cut && e.error_len().is_none())
                .then(|| std::str::from_utf8(&bytes[..e.valid_up_to()]).ok())?
        });
        html! {
            @match (text, look) {
                (Some(t), FileLook::Markdown) => article #file-md.markdown { (markup::markdown(t)) },
                (Some(t), _) => pre #file-text.text { (t) },
                (None, _) => {
                    p { "Binary file: its first bytes in hexadecimal." }
                    pre #file-hex.text { (hex_dump(&bytes[..bytes.len().min(512)])) }
                }
            }
            @if cut { p.none { "Showing the first " (size(bytes.len() as u64)) " of " (size(total)) "." } }
        }
    };
    Ok(html! {
        (preview)
        section.downloads aria-label="Downloads" {
            a.dl #dl-all href=(format!("{raw}?download=1")) download { "Download file" }
        }
    })
}

fn hex_dump(b: &[u8]) -> String {
    b.chunks(16)
        .enumerate()
        .map(|(i, row)| {
            let hex: Vec<String> = row.iter().map(|x| format!("{x:02x}")).collect();
            let text: String = row
                .iter()
                .map(|&x| {
                    if x.is_ascii_graphic() || x == b' ' {
                        x as char
                    } else {
                        '.'
                    }
                })
                .collect();
            format!("{:08x}  {:<48}  {text}\n", i * 16, hex.join(" "))
        })
        .collect()
}
