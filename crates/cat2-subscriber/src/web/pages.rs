//! Home (roots, search, path list), folders, and the dispatch of `/roots/{path}` to a folder
//! or a dataset page. 0.2.0's URLs and names: `/?roots=a&roots=b&search=s`,
//! `/htmx/root-list/`, `/htmx/path-list/` (a fragment with `HX-Push-Url`), `/roots/{path}`.

use std::collections::BTreeSet;

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use cat2_proto::RootName;
use maud::{Markup, html};

use super::markup::{self, enc, q};
use super::query::Params;
use super::{Shared, Web, WebError};

/// Most paths a path list shows (the search narrows the rest).
const MAX_PATHS: usize = 1000;

/// Whether the request comes from our script (or htmx) and wants a fragment.
pub(crate) fn wants_fragment(h: &HeaderMap) -> bool {
    h.get("hx-request").is_some()
}

/// A root's row in the root list.
struct RootRow {
    name: String,
    subscribed: bool,
    online: bool,
}

fn root_rows(web: &Web) -> Vec<RootRow> {
    web.sub
        .state()
        .roots
        .values()
        .map(|r| RootRow {
            name: r.name.clone(),
            subscribed: r.subscribed,
            online: r.online,
        })
        .collect()
}

fn root_list_markup(rows: &[RootRow], chosen: &BTreeSet<String>) -> Markup {
    html! {
        @if rows.is_empty() {
            p.none { "No roots yet: start a publisher (" code { "cat2pub NAME ROOT" } ")." }
        }
        ul.roots {
            @for r in rows {
                li {
                    label {
                        input type="checkbox" name="roots" value=(r.name) checked[chosen.contains(&r.name)];
                        " " span.name { (r.name) }
                    }
                    " "
                    @if r.subscribed { span.badge.sub { "subscribed" } }
                    @if r.online { span.badge.on { "online" } } @else { span.badge.off { "offline" } }
                    " " a.open href=(format!("/roots/{}/", enc(&r.name))) aria-label=(format!("open root {}", r.name)) { "open" }
                }
            }
        }
    }
}

/// Follows the chosen roots not followed yet (as 0.2.0's path list does), then lists the
/// full paths that contain `search`. Errors (a root offline) are listed, not raised.
async fn path_list_markup(web: &Web, chosen: &BTreeSet<String>, search: &str) -> Markup {
    let mut problems = Vec::new();
    for name in chosen {
        let Ok(root) = RootName::new(name) else {
            problems.push(format!("{name:?} is not a root name"));
            continue;
        };
        let followed = web
            .sub
            .state()
            .roots
            .get(root.as_str())
            .map(|r| r.subscribed);
        match followed {
            None => problems.push(format!("{name} is not known by the broker")),
            Some(false) => {
                if let Err(e) = web.sub.follow(&root).await {
                    problems.push(format!("cannot follow {name}: {e}"));
                }
            }
            Some(true) => {}
        }
    }
    let mut paths = Vec::new();
    let mut total = 0usize;
    {
        let state = web.sub.state();
        for name in chosen {
            if let Some(r) = state.roots.get(name).filter(|r| r.subscribed) {
                for rel in r.datasets.keys() {
                    let full = format!("{name}/{rel}");
                    if full.contains(search) {
                        total += 1;
                        if paths.len() < MAX_PATHS {
                            paths.push(full);
                        }
                    }
                }
            }
        }
    }
    html! {
        @for p in &problems { p.error role="alert" { (p) } }
        @if chosen.is_empty() {
            p.none { "Choose one or more roots to list their datasets." }
        } @else {
            p.count { (total) @if total == 1 { " path" } @else { " paths" }
                @if !search.is_empty() { " containing “" (search) "”" } }
            ul.paths {
                @for p in &paths {
                    li { a href=(format!("/roots/{}", enc(p))) {
                        span.kind { (kind_label(p)) } " " (p) } }
                }
            }
            @if total > paths.len() { p.none { "… and " (total - paths.len()) " more: narrow the search." } }
        }
    }
}

fn kind_label(path: &str) -> &'static str {
    if path.ends_with(".b2nd") {
        "array"
    } else if path.ends_with(".b2frame") {
        "frame"
    } else {
        "file"
    }
}

fn chosen(p: &Params) -> BTreeSet<String> {
    p.all("roots").into_iter().map(str::to_owned).collect()
}

/// The home URL of a choice and a search (0.2.0's query shape).
fn home_url(chosen: &BTreeSet<String>, search: &str) -> String {
    let mut parts: Vec<String> = chosen.iter().map(|r| format!("roots={}", q(r))).collect();
    if !search.is_empty() {
        parts.push(format!("search={}", q(search)));
    }
    if parts.is_empty() {
        "/".to_owned()
    } else {
        format!("/?{}", parts.join("&"))
    }
}

/// `/`: the roots, a search box and the matching paths, all in one GET form.
pub(crate) async fn home(State(web): Shared, RawQuery(raw): RawQuery) -> Response {
    let p = Params::parse(raw.as_deref());
    let chosen = chosen(&p);
    let search = p.get("search").unwrap_or("").to_owned();
    let rows = root_rows(&web);
    let list = path_list_markup(&web, &chosen, &search).await;
    markup::frame(
        "Roots",
        &[],
        html! {
            h1 { "Roots" }
            form #home-form method="get" action="/" role="search" {
                fieldset #root-list { legend { "Roots to list" } (root_list_markup(&rows, &chosen)) }
                p.search {
                    label for="search" { "Search paths " }
                    input #search type="search" name="search" value=(search)
                        placeholder="part of a path, e.g. ds-" autocomplete="off";
                    " " button type="submit" { "Apply" }
                }
            }
            section #path-list aria-live="polite" aria-label="Paths" { (list) }
        },
    )
    .into_response()
}

/// `/htmx/root-list/`: the root checkboxes (0.2.0's fragment).
pub(crate) async fn root_list(State(web): Shared, RawQuery(raw): RawQuery) -> Markup {
    let p = Params::parse(raw.as_deref());
    root_list_markup(&root_rows(&web), &chosen(&p))
}

/// `/htmx/path-list/`: the matching paths, with the home URL to show in `HX-Push-Url`.
pub(crate) async fn path_list(State(web): Shared, RawQuery(raw): RawQuery) -> Response {
    let p = Params::parse(raw.as_deref());
    let chosen = chosen(&p);
    let search = p.get("search").unwrap_or("");
    let list = path_list_markup(&web, &chosen, search).await;
    let mut r = list.into_response();
    if let Ok(v) = HeaderValue::from_str(&home_url(&chosen, search)) {
        r.headers_mut().insert("hx-push-url", v);
    }
    r
}

/// `/roots/{root}/{path}`: a folder (a root, a directory) or a dataset page.
pub(crate) async fn roots(
    State(web): Shared,
    Path(path): Path<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Result<Response, WebError> {
    let (name, rel) = path.split_once('/').unwrap_or((path.as_str(), ""));
    let root = RootName::new(name)
        .map_err(|_| WebError::not_found(format!("{name:?} is not a root name")).page())?;
    let subscribed = web
        .sub
        .state()
        .roots
        .get(root.as_str())
        .map(|r| r.subscribed)
        .ok_or_else(|| WebError::not_found(format!("{root} is not known by the broker")).page())?;
    if !subscribed {
        // As 0.2.0's path list: looking at a root follows it (a shared URL just works).
        web.sub
            .follow(&root)
            .await
            .map_err(|e| WebError::from(e).page())?;
    }
    let (is_dataset, is_dir) = {
        let state = web.sub.state();
        let ds = state.roots.get(root.as_str()).map(|r| &r.datasets);
        let dir = format!("{}/", rel.trim_end_matches('/'));
        (
            !rel.is_empty() && ds.is_some_and(|d| d.contains_key(rel)),
            rel.is_empty() || ds.is_some_and(|d| d.keys().any(|k| k.starts_with(&dir))),
        )
    };
    let fragment = wants_fragment(&headers);
    if is_dataset {
        let p = Params::parse(raw.as_deref());
        return super::dataset::page(&web, &path, root.as_str(), rel, &p, fragment).await;
    }
    if is_dir {
        return Ok(folder(&web, root.as_str(), rel.trim_end_matches('/')));
    }
    Err(WebError::not_found(format!(
        "{path} is neither a dataset nor a folder of {root}"
    ))
    .page())
}

/// A folder page: its sub-folders and its datasets.
fn folder(web: &Web, root: &str, dir: &str) -> Response {
    let prefix = if dir.is_empty() {
        String::new()
    } else {
        format!("{dir}/")
    };
    let mut dirs = BTreeSet::new();
    let mut files = Vec::new();
    if let Some(r) = web.sub.state().roots.get(root) {
        for k in r.datasets.keys() {
            if let Some(rest) = k.strip_prefix(&prefix) {
                match rest.split_once('/') {
                    Some((d, _)) => {
                        dirs.insert(d.to_owned());
                    }
                    None => files.push(rest.to_owned()),
                }
            }
        }
    }
    let title = if dir.is_empty() {
        root.to_owned()
    } else {
        format!("{root}/{dir}")
    };
    let crumbs = markup::crumbs(root, &prefix);
    markup::frame(
        &title,
        &crumbs,
        html! {
            h1 { (title) }
            ul.paths.folder {
                @for d in &dirs {
                    li { a href=(format!("/roots/{}/{}{}/", enc(root), enc(&prefix), enc(d))) {
                        span.kind { "folder" } " " (d) "/" } }
                }
                @for f in &files {
                    li { a href=(format!("/roots/{}/{}{}", enc(root), enc(&prefix), enc(f))) {
                        span.kind { (kind_label(f)) } " " (f) } }
                }
            }
            @if dirs.is_empty() && files.is_empty() { p.none { "(empty)" } }
        },
    )
    .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn home_urls_keep_0_2_0_query_shape() {
        let c: BTreeSet<String> = ["foo".to_owned(), "b r".to_owned()].into();
        assert_eq!(home_url(&c, "ds-"), "/?roots=b+r&roots=foo&search=ds-");
        assert_eq!(home_url(&BTreeSet::new(), ""), "/");
    }
}
