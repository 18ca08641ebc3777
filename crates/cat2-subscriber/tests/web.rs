//! The web client's routes in-process: root-example served by the fake upstream, requests
//! with `tower::ServiceExt::oneshot`. What a page says (metadata, table cells, paths), what
//! an image is (its pixels decoded), what a download holds, and that bad input is a 4xx with
//! a message, never a 500.

// Shared with `core.rs`, which drives all of it; these tests use a part.
#[allow(dead_code)]
mod fake;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use bytes::Bytes;
use cat2_subscriber::{Config, Subscriber};
use fake::{Call, Fake, ROOT};
use tower::ServiceExt;

struct Rig {
    app: Router,
    fake: Arc<Fake>,
    _src: tempfile::TempDir,
    _state: tempfile::TempDir,
}

fn example() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../root-example")
}

/// root-example, a markdown file with a script in it, and a tomography-like stack: u8
/// 8×64×64 holding its plane number, one plane per block, two planes per chunk.
fn rig() -> Rig {
    let src = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let fake = Fake::new();
    for p in [
        "README.md",
        "ds-1d.b2nd",
        "ds-1d-b.b2nd",
        "ds-hello.b2frame",
        "ds-sc-attr.b2nd",
        "dir1/ds-2d.b2nd",
        "dir1/ds-3d.b2nd",
        "dir2/ds-4d.b2nd",
    ] {
        fake.put(p, &example().join(p));
    }
    let md = src.path().join("notes.md");
    std::fs::write(
        &md,
        "# Notes\n\n<script>window.__xss=1</script>\n\nplain *text*\n",
    )
    .unwrap();
    fake.put("notes.md", &md);
    let stack = src.path().join("stack.b2nd");
    let data: Vec<u8> = (0..8u8)
        .flat_map(|i| std::iter::repeat_n(i * 30, 64 * 64))
        .collect();
    cat2_format::encode::write_b2nd_file(
        &stack,
        "|u1",
        &[8, 64, 64],
        &[2, 64, 64],
        &[1, 64, 64],
        &data,
        &[],
    )
    .unwrap();
    fake.put("stack.b2nd", &stack);
    let cfg = Config {
        statedir: state.path().to_owned(),
        ..Config::default()
    };
    let sub = Subscriber::new(cfg, fake.clone()).unwrap();
    Rig {
        app: sub.router(),
        fake,
        _src: src,
        _state: state,
    }
}

async fn get(app: &Router, uri: &str) -> (StatusCode, HeaderMap, Bytes) {
    let req = Request::builder().uri(uri).body(Body::empty()).unwrap();
    let resp = app.clone().oneshot(req).await.unwrap();
    let (parts, body) = resp.into_parts();
    let body = axum::body::to_bytes(body, usize::MAX).await.unwrap();
    (parts.status, parts.headers, body)
}

async fn page(app: &Router, uri: &str) -> String {
    let (status, _, body) = get(app, uri).await;
    let text = String::from_utf8(body.to_vec()).unwrap();
    assert_eq!(status, StatusCode::OK, "{uri}: {text}");
    text
}

/// A rig whose subscriber follows the root (its first request learns it from the fake broker).
async fn ready() -> Rig {
    let r = rig();
    let req = Request::builder()
        .method("POST")
        .uri(format!("/api/subscribe/{ROOT}"))
        .body(Body::empty())
        .unwrap();
    assert_eq!(
        r.app.clone().oneshot(req).await.unwrap().status(),
        StatusCode::OK
    );
    r
}

fn rgba(png_bytes: &[u8]) -> (u32, u32, Vec<u8>) {
    let mut dec = png::Decoder::new(png_bytes);
    dec.set_transformations(png::Transformations::EXPAND);
    let mut r = dec.read_info().unwrap();
    let mut buf = vec![0; r.output_buffer_size()];
    let info = r.next_frame(&mut buf).unwrap();
    buf.truncate(info.buffer_size());
    (info.width, info.height, buf)
}

#[tokio::test]
async fn home_lists_roots_and_searches_full_paths() {
    let r = ready().await;
    let home = page(&r.app, "/").await;
    assert!(home.contains(r#"name="roots" value="foo""#), "{home}");
    let all = page(&r.app, "/?roots=foo").await;
    assert!(all.contains("10 paths"), "{all}");
    assert!(
        all.contains(r#"href="/roots/foo/dir1/ds-2d.b2nd""#),
        "{all}"
    );
    let (status, h, body) = get(&r.app, "/htmx/path-list/?roots=foo&search=ds-").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(h["hx-push-url"], "/?roots=foo&search=ds-");
    let list = String::from_utf8(body.to_vec()).unwrap();
    assert!(
        list.contains("7 paths") && !list.contains("README.md"),
        "{list}"
    );
    let roots = page(&r.app, "/htmx/root-list/?roots=foo").await;
    assert!(
        roots.contains("checked") && roots.contains("subscribed"),
        "{roots}"
    );
    let folder = page(&r.app, "/roots/foo/dir1/").await;
    assert!(
        folder.contains(r#"href="/roots/foo/dir1/ds-3d.b2nd""#),
        "{folder}"
    );
    assert!(
        folder.contains(r#"href="/roots/foo/""#),
        "breadcrumbs: {folder}"
    );
}

#[tokio::test]
async fn dataset_page_shows_metadata_and_table_cells() {
    let r = ready().await;
    let p = page(&r.app, "/roots/foo/dir1/ds-2d.b2nd?view=table").await;
    for (k, v) in [
        ("shape", "(10, 20)"),
        ("chunks", "(5, 5)"),
        ("blocks", "(2, 3)"),
        ("dtype", "uint16"),
        ("nchunks", "8"),
        ("codec", "ZSTD"),
    ] {
        assert!(
            p.contains(&format!(r#"data-key="{k}">{v}</td>"#)),
            "{k}: {p}"
        );
    }
    assert!(p.contains(r#"data-index="3,7">67</td>"#), "{p}");
    assert!(p.contains("cols=10:20"), "a next-columns link: {p}");
    let next = page(&r.app, "/roots/foo/dir1/ds-2d.b2nd?view=table&cols=10:20").await;
    assert!(next.contains(r#"data-index="0,19">19</td>"#), "{next}");
    let attrs = page(&r.app, "/roots/foo/ds-sc-attr.b2nd").await;
    for (k, v) in [("a", "1"), ("b", "foo"), ("c", "123.456")] {
        assert!(
            attrs.contains(&format!(r#"data-key="{k}">{v}</td>"#)),
            "{k}: {attrs}"
        );
    }
    assert!(attrs.contains(">foobar</td>"), "{attrs}");
    let strings = page(&r.app, "/roots/foo/ds-1d-b.b2nd").await;
    assert!(
        strings.contains(">foobar</td>") && !strings.contains(">image<"),
        "{strings}"
    );
    let cplx = page(
        &r.app,
        "/roots/foo/dir2/ds-4d.b2nd?view=table&axes=2,3&idx=1,2",
    )
    .await;
    assert!(
        cplx.contains(r#"data-index="3,4">(119+119j)</td>"#)
            || cplx.contains(r#"data-index="3,4">119+119j</td>"#),
        "{cplx}"
    );
}

#[tokio::test]
async fn heatmap_pixels_are_colormap_entries() {
    let r = ready().await;
    let (status, h, png) = get(&r.app, "/web/img/foo/dir1/ds-2d.b2nd?vmin=0&vmax=199").await;
    assert_eq!(status, StatusCode::OK, "{png:?}");
    assert_eq!(h["content-type"], "image/png");
    assert_eq!(h["x-cat2-domain"], "0,199");
    assert_eq!(h["x-cat2-stride"], "1,1");
    let (w, hgt, px) = rgba(&png);
    assert_eq!((w, hgt), (20, 10));
    assert_eq!(&px[..4], &[0x44, 0x01, 0x54, 255]);
    let last = ((9 * 20 + 19) * 4) as usize;
    assert_eq!(&px[last..last + 4], &[0xfd, 0xe7, 0x25, 255]);
    // The same view again is the cached render: same bytes, and a 304 when revalidated.
    let tag = h["etag"].clone();
    let req = Request::builder()
        .uri("/web/img/foo/dir1/ds-2d.b2nd?vmin=0&vmax=199")
        .header("if-none-match", tag)
        .body(Body::empty())
        .unwrap();
    assert_eq!(
        r.app.clone().oneshot(req).await.unwrap().status(),
        StatusCode::NOT_MODIFIED
    );
    // n-d: plane 1 of ds-3d has the auto domain [20, 39]; remapped axes give 3×5.
    let (_, h, png) = get(&r.app, "/web/img/foo/dir1/ds-3d.b2nd?i0=1").await;
    assert_eq!(h["x-cat2-domain"], "20,39");
    assert_eq!(&rgba(&png).2[..4], &[0x44, 0x01, 0x54, 255]);
    let (_, _, png) = get(&r.app, "/web/img/foo/dir1/ds-3d.b2nd?axes=0,2&idx=3").await;
    assert_eq!(rgba(&png).0, 5);
    assert_eq!(rgba(&png).1, 3);
    let (_, h, _) = get(&r.app, "/web/img/foo/dir2/ds-4d.b2nd?idx=1,2&cplx=abs").await;
    let d: Vec<f64> = h["x-cat2-domain"]
        .to_str()
        .unwrap()
        .split(',')
        .map(|v| v.parse().unwrap())
        .collect();
    assert!(
        (d[0] - 100.0 * 2f64.sqrt()).abs() < 1e-9 && (d[1] - 119.0 * 2f64.sqrt()).abs() < 1e-9,
        "{d:?}"
    );
}

#[tokio::test]
async fn line_plot_spans_the_axis() {
    let r = ready().await;
    let p = page(&r.app, "/roots/foo/ds-1d.b2nd").await;
    assert!(
        p.contains(r#"aria-current="page">line<"#),
        "a 1-d array opens as a line: {p}"
    );
    let (status, _, svg) = get(&r.app, "/web/line/foo/ds-1d.b2nd").await;
    assert_eq!(status, StatusCode::OK);
    let svg = String::from_utf8(svg.to_vec()).unwrap();
    let points: usize = svg
        .split("data-points=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(points <= 2 * 720, "{points}");
    assert!(
        svg.contains(">0</text>") && svg.contains(">999</text>"),
        "{svg}"
    );
}

#[tokio::test]
async fn slice_downloads_hold_the_slice() {
    let r = ready().await;
    let (status, h, npy) = get(
        &r.app,
        "/web/export/foo/ds-1d.b2nd?view=line&rows=10:20&format=npy",
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{npy:?}");
    assert!(
        h["content-disposition"]
            .to_str()
            .unwrap()
            .contains("ds-1d_10_20_.npy")
    );
    let header_len = u16::from_le_bytes([npy[8], npy[9]]) as usize;
    let header = std::str::from_utf8(&npy[10..10 + header_len]).unwrap();
    assert!(
        header.contains("'descr': '<i8'") && header.contains("'shape': (10,)"),
        "{header}"
    );
    let values: Vec<i64> = npy[10 + header_len..]
        .chunks_exact(8)
        .map(|b| i64::from_le_bytes(b.try_into().unwrap()))
        .collect();
    assert_eq!(values, (10..20).collect::<Vec<i64>>());
    let (_, _, csv) = get(
        &r.app,
        "/web/export/foo/ds-1d.b2nd?view=line&rows=10:20&format=csv",
    )
    .await;
    assert_eq!(String::from_utf8(csv.to_vec()).unwrap().lines().count(), 10);
    let (status, _, b2nd) = get(&r.app, "/web/export/foo/dir1/ds-3d.b2nd?idx=2&format=b2nd").await;
    assert_eq!(status, StatusCode::OK);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("x.b2nd"), &b2nd).unwrap();
    let ds = cat2_format::Dataset::open(&dir.path().join("x.b2nd")).unwrap();
    assert_eq!(ds.layout().shape(), &[4, 5]);
}

#[tokio::test]
async fn plain_files_are_previewed_and_never_run() {
    let r = ready().await;
    let readme = page(&r.app, "/roots/foo/README.md").await;
    assert!(readme.contains("This is a simple example,"), "{readme}");
    let md = page(&r.app, "/roots/foo/notes.md").await;
    assert!(md.contains("<h1>Notes</h1>"), "{md}");
    assert!(
        md.contains("&lt;script&gt;window.__xss=1&lt;/script&gt;")
            && !md.contains("<script>window"),
        "{md}"
    );
    let (status, h, body) = get(&r.app, "/web/raw/foo/README.md").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        h["content-security-policy"]
            .to_str()
            .unwrap()
            .starts_with("sandbox")
    );
    assert!(body.starts_with(b"This is a simple example,"));
    let (_, h, _) = get(&r.app, "/roots/foo/README.md").await;
    assert!(
        h["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("default-src 'self'")
    );
}

#[tokio::test]
async fn tomography_image_reads_only_its_plane() {
    let r = ready().await;
    let p = page(&r.app, "/roots/foo/stack.b2nd").await;
    assert!(
        p.contains(r#"aria-current="page">stack<"#),
        "an unsigned 3-d array opens as a stack: {p}"
    );
    let before = r.fake.calls().len();
    let (status, _, tomo) = get(&r.app, "/plugins/tomography/image/foo/stack.b2nd?i=5").await;
    assert_eq!(status, StatusCode::OK);
    let asked: Vec<Call> = r.fake.calls()[before..].to_vec();
    // Plane 5 is block 1 of chunk 2: only that is asked for.
    assert!(
        asked
            .iter()
            .all(|c| matches!(c, Call::Blocks(_, 2, b) if b == &[1])
                || matches!(c, Call::Chunks(_, n) if n == &[2])),
        "{asked:?}"
    );
    assert!(!asked.is_empty());
    let (_, h, img) = get(&r.app, "/web/img/foo/stack.b2nd?axes=1,2&idx=5&cmap=gray").await;
    assert_eq!(tomo, img);
    assert_eq!(h["x-cat2-decoded-bytes"], "4096");
    let (status, h, _) = get(&r.app, "/plugins/tomography/display/foo/stack.b2nd").await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(h["location"], "/roots/foo/stack.b2nd?view=stack");
}

#[tokio::test]
async fn bad_input_is_a_4xx_with_a_message_never_a_500() {
    let r = ready().await;
    let (status, _, body) = get(&r.app, "/roots/foo/dir1/nope.b2nd").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(
        String::from_utf8_lossy(&body).contains("<h1>404"),
        "an HTML page"
    );
    let (status, _, body) = get(&r.app, "/roots/foo/dir1/ds-3d.b2nd?idx=99").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(String::from_utf8_lossy(&body).contains("out of range"));
    let (status, _, body) = get(&r.app, "/api/nonexistent").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(&body[..], br#"{"detail":"Not Found"}"#);
    for uri in [
        "/roots/nosuchroot/x.b2nd",
        "/roots/foo/../etc/passwd",
        "/roots/foo/dir1/ds-2d.b2nd?view=line&axes=7",
        "/roots/foo/dir1/ds-2d.b2nd?rows=a:b",
        "/roots/foo/dir1/ds-2d.b2nd?vmin=x",
        "/roots/foo/dir1/ds-2d.b2nd?max=99999999999999999999",
        "/roots/foo/ds-1d-b.b2nd?view=image",
        "/web/img/foo/ds-1d.b2nd",
        "/web/img/foo/ds-1d-b.b2nd?view=table&axes=0",
        "/web/img/foo/dir1/ds-2d.b2nd?cmap=%00",
        "/web/value/foo/dir1/ds-2d.b2nd?at=10,0",
        "/web/value/foo/dir1/ds-2d.b2nd?at=-1",
        "/web/export/foo/dir1/ds-2d.b2nd?format=exe",
        "/web/export/foo/README.md?format=npy",
        "/web/raw/foo/dir1/ds-2d.b2nd",
        "/web/colorbar/jet",
        "/plugins/tomography/image/foo/stack.b2nd?i=99",
        "/plugins/tomography/image/foo/ds-1d.b2nd?i=0",
    ] {
        let (status, _, body) = get(&r.app, uri).await;
        assert!(status.is_client_error(), "{uri}: {status} {body:?}");
        assert!(!body.is_empty(), "{uri}: a message");
    }
    let (status, _, v) = get(&r.app, "/web/value/foo/dir1/ds-2d.b2nd?at=3,7").await;
    assert_eq!((status, &v[..]), (StatusCode::OK, &b"67"[..]));
}
