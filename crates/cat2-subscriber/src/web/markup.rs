//! The page frame, the embedded assets, the metadata panel and plain-file previews.

use axum::extract::Path;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use maud::{DOCTYPE, Markup, PreEscaped, html};
use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};

/// What a path segment must escape in URLs (`/` is kept: paths are nested).
const PATH: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'`')
    .add(b'{')
    .add(b'}')
    .add(b'&')
    .add(b'+')
    .add(b'\'');

/// `path` escaped for a URL path.
pub(crate) fn enc(path: &str) -> String {
    utf8_percent_encode(path, PATH).to_string()
}

/// `v` escaped for a query value.
pub(crate) fn q(v: &str) -> String {
    form_urlencoded::byte_serialize(v.as_bytes()).collect()
}

const CSS: &str = include_str!("static/cat2.css");
const JS: &str = include_str!("static/cat2.js");

/// `/static/{file}`: the stylesheet and the script, cached by browsers for a day.
pub(crate) async fn asset(Path(file): Path<String>) -> Response {
    let (ty, body) = match file.as_str() {
        "cat2.css" => ("text/css; charset=utf-8", CSS),
        "cat2.js" => ("text/javascript; charset=utf-8", JS),
        _ => return (StatusCode::NOT_FOUND, "no such asset").into_response(),
    };
    (
        [
            (header::CONTENT_TYPE, ty),
            (header::CACHE_CONTROL, "public, max-age=86400"),
        ],
        body,
    )
        .into_response()
}

/// A whole page: `crumbs` are (label, link) pairs after "roots".
pub(crate) fn frame(title: &str, crumbs: &[(String, String)], body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · cat2" }
                link rel="stylesheet" href="/static/cat2.css";
                script src="/static/cat2.js" defer {}
            }
            body {
                header.top {
                    nav aria-label="Breadcrumb" {
                        ol.crumbs {
                            li { a href="/" { "cat2 roots" } }
                            @for (label, link) in crumbs {
                                li { a href=(link) { (label) } }
                            }
                        }
                    }
                }
                main #main { (body) }
            }
        }
    }
}

/// Breadcrumbs of `root/rel`: the root, each folder, then the item itself.
pub(crate) fn crumbs(root: &str, rel: &str) -> Vec<(String, String)> {
    let mut out = vec![(root.to_owned(), format!("/roots/{}/", enc(root)))];
    let mut at = String::new();
    let parts: Vec<&str> = rel.split('/').filter(|p| !p.is_empty()).collect();
    for (i, p) in parts.iter().enumerate() {
        at.push_str(p);
        let last = i + 1 == parts.len() && !rel.ends_with('/');
        if !last {
            at.push('/');
        }
        out.push((
            (*p).to_owned(),
            format!("/roots/{}/{}", enc(root), enc(&at)),
        ));
    }
    out
}

/// Blosc2 codec names by id (c-blosc2's `blosc2.h`).
pub(crate) fn codec_name(id: i64) -> String {
    match id {
        0 => "BLOSCLZ".into(),
        1 => "LZ4".into(),
        2 => "LZ4HC".into(),
        4 => "ZLIB".into(),
        5 => "ZSTD".into(),
        32 => "NDLZ".into(),
        33 => "ZFP_ACC".into(),
        34 => "ZFP_PREC".into(),
        35 => "ZFP_RATE".into(),
        36 => "OPENHTJ2K".into(),
        37 => "GROK".into(),
        n => format!("codec {n}"),
    }
}

/// Blosc2 filter names by id.
pub(crate) fn filter_name(id: i64) -> String {
    match id {
        0 => "NOFILTER".into(),
        1 => "SHUFFLE".into(),
        2 => "BITSHUFFLE".into(),
        3 => "DELTA".into(),
        4 => "TRUNC_PREC".into(),
        32 => "NDCELL".into(),
        33 => "NDMEAN".into(),
        35 => "BYTEDELTA".into(),
        36 => "INT_TRUNC".into(),
        n => format!("filter {n}"),
    }
}

/// Bytes in a human unit.
pub(crate) fn size(n: u64) -> String {
    bytesize::ByteSize::b(n).to_string()
}

fn tuple(v: &serde_json::Value) -> String {
    match v.as_array() {
        Some(a) if a.len() == 1 => format!("({},)", a[0]),
        Some(a) => format!(
            "({})",
            a.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
        None => v.to_string(),
    }
}

fn json_text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The metadata panel from the dataset's `info` JSON and its cache fill.
pub(crate) fn meta_panel(info: &serde_json::Value, filled: (u64, u64)) -> Markup {
    let s = &info["schunk"];
    let cp = &s["cparams"];
    let filters: Vec<String> = cp["filters"]
        .as_array()
        .map(|f| {
            f.iter()
                .filter_map(serde_json::Value::as_i64)
                .filter(|&f| f != 0)
                .map(filter_name)
                .collect()
        })
        .unwrap_or_default();
    let mut rows: Vec<(&str, String)> = Vec::new();
    if info.get("shape").is_some() {
        rows.push(("shape", tuple(&info["shape"])));
        rows.push(("chunks", tuple(&info["chunks"])));
        rows.push(("blocks", tuple(&info["blocks"])));
        rows.push(("dtype", json_text(&info["dtype"])));
    }
    let nbytes = s["nbytes"].as_u64().unwrap_or(0);
    let cbytes = s["cbytes"].as_u64().unwrap_or(0);
    rows.push(("nchunks", s["nchunks"].to_string()));
    rows.push(("codec", codec_name(cp["codec"].as_i64().unwrap_or(-1))));
    if let Some(l) = cp.get("clevel").filter(|l| !l.is_null()) {
        rows.push(("clevel", l.to_string()));
    }
    rows.push((
        "filters",
        if filters.is_empty() {
            "none".into()
        } else {
            filters.join(", ")
        },
    ));
    rows.push(("typesize", cp["typesize"].to_string()));
    rows.push(("blocksize", size(cp["blocksize"].as_u64().unwrap_or(0))));
    rows.push(("nbytes", size(nbytes)));
    rows.push((
        "cbytes",
        format!(
            "{} (ratio {:.2}×)",
            size(cbytes),
            if cbytes > 0 {
                nbytes as f64 / cbytes as f64
            } else {
                0.0
            }
        ),
    ));
    rows.push(("cached chunks", format!("{} of {}", filled.0, filled.1)));
    let vlmeta = s["vlmeta"].as_object();
    html! {
        section.meta aria-labelledby="meta-h" {
            h2 #meta-h { "Metadata" }
            table.kv {
                tbody {
                    @for (k, v) in &rows {
                        tr { th scope="row" { (k) } td data-key=(k) { (v) } }
                    }
                }
            }
            h3 { "User attributes (vlmeta)" }
            @match vlmeta {
                Some(m) if !m.is_empty() => table.kv.vlmeta {
                    tbody {
                        @for (k, v) in m {
                            tr { th scope="row" { (k) } td data-key=(k) { (json_text(v)) } }
                        }
                    }
                },
                _ => p.none { "(none)" },
            }
        }
    }
}

/// Whether a link in a document may be followed: web addresses, mail, and relative links;
/// never `javascript:` or `data:` (the page's CSP would block them too).
fn safe_link(url: &str) -> bool {
    let lower = url.trim_start().to_ascii_lowercase();
    match lower.split_once(':') {
        Some((scheme, _)) if !scheme.contains(['/', '?', '#']) => {
            matches!(scheme, "http" | "https" | "mailto")
        }
        _ => true,
    }
}

/// Markdown as HTML, raw HTML in it shown as text (never run), unsafe links made inert.
pub(crate) fn markdown(text: &str) -> Markup {
    use pulldown_cmark::{CowStr, Event, Options, Parser, Tag, html::push_html};
    fn inert(u: CowStr<'_>) -> CowStr<'_> {
        if safe_link(&u) { u } else { CowStr::from("#") }
    }
    let events =
        Parser::new_ext(text, Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH).map(|e| {
            match e {
                Event::Html(h) | Event::InlineHtml(h) => Event::Text(h),
                Event::Start(Tag::Link {
                    link_type,
                    dest_url,
                    title,
                    id,
                }) => Event::Start(Tag::Link {
                    link_type,
                    dest_url: inert(dest_url),
                    title,
                    id,
                }),
                Event::Start(Tag::Image {
                    link_type,
                    dest_url,
                    title,
                    id,
                }) => Event::Start(Tag::Image {
                    link_type,
                    dest_url: inert(dest_url),
                    title,
                    id,
                }),
                other => other,
            }
        });
    let mut out = String::new();
    push_html(&mut out, events);
    PreEscaped(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_shows_html_as_text_and_drops_script_links() {
        let html = markdown("# Title\n\n<script>window.__xss=1</script>\n\n[x](javascript:alert(1)) [y](https://e.org) [z](dir/a.md)").into_string();
        assert!(html.contains("<h1>Title</h1>"), "{html}");
        assert!(
            html.contains("&lt;script&gt;window.__xss=1&lt;/script&gt;"),
            "{html}"
        );
        assert!(!html.contains("<script"), "{html}");
        assert!(!html.contains("javascript:"), "{html}");
        assert!(
            html.contains("href=\"https://e.org\"") && html.contains("href=\"dir/a.md\""),
            "{html}"
        );
    }

    #[test]
    fn paths_and_crumbs() {
        assert_eq!(enc("foo/a b#?.b2nd"), "foo/a%20b%23%3F.b2nd");
        let c = crumbs("foo", "dir1/ds-2d.b2nd");
        assert_eq!(c[1], ("dir1".to_owned(), "/roots/foo/dir1/".to_owned()));
        assert_eq!(c[2].1, "/roots/foo/dir1/ds-2d.b2nd");
    }
}
