//! The h5grove API in-process, as h5web calls it: root-example served by the fake upstream,
//! requests with `tower::ServiceExt::oneshot`. What `meta`, `attr`, `data` and `paths` say
//! (h5grove 4.0.0's JSON), what `data` holds in each format, that it reads only the blocks a
//! selection needs, and h5grove's error codes (404 with its phrases, 422), never a 500.

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
use serde_json::{Value, json};
use tower::ServiceExt;

struct Rig {
    app: Router,
    fake: Arc<Fake>,
    _state: tempfile::TempDir,
}

fn example() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../root-example")
}

const FILES: [&str; 8] = [
    "README.md",
    "ds-1d.b2nd",
    "ds-1d-b.b2nd",
    "ds-hello.b2frame",
    "ds-sc-attr.b2nd",
    "dir1/ds-2d.b2nd",
    "dir1/ds-3d.b2nd",
    "dir2/ds-4d.b2nd",
];

/// root-example behind a fake upstream, with `cfg` changed by `tweak`; not followed yet.
fn rig_with(tweak: impl FnOnce(&mut Config)) -> Rig {
    let state = tempfile::tempdir().unwrap();
    let fake = Fake::new();
    for p in FILES {
        fake.put(p, &example().join(p));
    }
    let mut cfg = Config {
        statedir: state.path().to_owned(),
        ..Config::default()
    };
    tweak(&mut cfg);
    let sub = Subscriber::new(cfg, fake.clone()).unwrap();
    Rig {
        app: sub.router(),
        fake,
        _state: state,
    }
}

/// A rig whose subscriber follows the root.
async fn ready_with(tweak: impl FnOnce(&mut Config)) -> Rig {
    let r = rig_with(tweak);
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

async fn ready() -> Rig {
    ready_with(|_| {}).await
}

async fn get(app: &Router, uri: &str) -> (StatusCode, HeaderMap, Bytes) {
    let req = Request::builder().uri(uri).body(Body::empty()).unwrap();
    let resp = app.clone().oneshot(req).await.unwrap();
    let (parts, body) = resp.into_parts();
    let body = axum::body::to_bytes(body, usize::MAX).await.unwrap();
    (parts.status, parts.headers, body)
}

/// A JSON answer that must be a 200.
async fn ok_json(app: &Router, uri: &str) -> Value {
    let (status, h, body) = get(app, uri).await;
    assert_eq!(status, StatusCode::OK, "{uri}: {body:?}");
    assert_eq!(h["content-type"], "application/json", "{uri}");
    serde_json::from_slice(&body).unwrap()
}

/// A 200 with bytes.
async fn ok_bytes(app: &Router, uri: &str) -> Bytes {
    let (status, _, body) = get(app, uri).await;
    assert_eq!(status, StatusCode::OK, "{uri}: {body:?}");
    body
}

/// An h5grove error: its status and message.
async fn error(app: &Router, uri: &str) -> (StatusCode, String) {
    let (status, _, body) = get(app, uri).await;
    let v: Value = serde_json::from_slice(&body).unwrap_or_else(|_| panic!("{uri}: {body:?}"));
    let msg = v["message"]
        .as_str()
        .unwrap_or_else(|| panic!("{uri}: {v}"));
    (status, msg.to_owned())
}

fn names(v: &Value) -> Vec<&str> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn ping_says_ok() {
    let r = ready().await;
    assert_eq!(&ok_bytes(&r.app, "/h5grove/").await[..], b"ok");
    assert_eq!(&ok_bytes(&r.app, "/h5grove").await[..], b"ok");
}

#[tokio::test]
async fn dataset_meta_is_h5groves() {
    let r = ready().await;
    for uri in [
        "/h5grove/meta?file=foo&path=/dir1/ds-2d.b2nd",
        "/h5grove/meta/?file=foo&path=/dir1/ds-2d.b2nd",
    ] {
        let m = ok_json(&r.app, uri).await;
        assert_eq!(
            m,
            json!({
                "attributes": [],
                "chunks": [5, 5],
                "filters": [{"id": 32026, "name": "blosc2"}],
                "kind": "dataset",
                "name": "ds-2d.b2nd",
                "shape": [10, 20],
                "type": {"class": 0, "size": 2, "order": 0, "sign": 0, "dtype": "<u2"},
            }),
            "{uri}"
        );
    }
    let m = ok_json(&r.app, "/h5grove/meta?file=foo&path=/ds-sc-attr.b2nd").await;
    assert_eq!((&m["shape"], &m["chunks"]), (&json!([]), &Value::Null));
    assert_eq!(m["type"]["class"], 3);
    assert_eq!(names(&m["attributes"]), ["a", "b", "c"]);
    assert_eq!(m["attributes"][0]["type"]["dtype"], "<i8");
    assert_eq!(m["attributes"][1]["type"]["vlen"], true);
    assert_eq!(m["attributes"][2]["type"]["dtype"], "<f8");
    let m = ok_json(&r.app, "/h5grove/meta?file=foo&path=/dir2/ds-4d.b2nd").await;
    assert_eq!(m["type"]["class"], 6, "complex is a compound");
    assert_eq!(names(&m["type"]["members"]), ["r", "i"]);
    let m = ok_json(&r.app, "/h5grove/meta?file=foo&path=/ds-1d-b.b2nd").await;
    assert_eq!(
        m["type"],
        json!({"class": 3, "dtype": "|S6", "size": 6, "cset": 0, "strpad": 1, "vlen": false})
    );
    // Plain files are 1-D opaque datasets of their bytes.
    let m = ok_json(&r.app, "/h5grove/meta?file=foo&path=/README.md").await;
    let len = std::fs::metadata(example().join("README.md"))
        .unwrap()
        .len();
    assert_eq!(
        (&m["shape"], m["type"]["class"].as_u64()),
        (&json!([len]), Some(5))
    );
}

#[tokio::test]
async fn group_meta_lists_children_one_level_down() {
    let r = ready().await;
    let root = ok_json(&r.app, "/h5grove/meta?file=foo&path=/").await;
    assert_eq!(
        (&root["kind"], &root["name"]),
        (&json!("group"), &json!(""))
    );
    let children = &root["children"];
    assert_eq!(
        names(children),
        [
            "README.md",
            "dir1",
            "dir2",
            "ds-1d-b.b2nd",
            "ds-1d.b2nd",
            "ds-hello.b2frame",
            "ds-sc-attr.b2nd"
        ]
    );
    assert_eq!(
        children[1],
        json!({"attributes": [], "kind": "group", "name": "dir1"})
    );
    assert_eq!(children[4]["shape"], json!([1000]));
    let dir = ok_json(&r.app, "/h5grove/meta?file=foo&path=/dir1/").await;
    assert_eq!(dir["name"], "dir1");
    assert_eq!(names(&dir["children"]), ["ds-2d.b2nd", "ds-3d.b2nd"]);
    // The default path is the root.
    assert_eq!(ok_json(&r.app, "/h5grove/meta?file=foo").await, root);
}

#[tokio::test]
async fn attributes_are_the_vlmeta() {
    let r = ready().await;
    let a = ok_json(&r.app, "/h5grove/attr?file=foo&path=/ds-sc-attr.b2nd").await;
    assert_eq!(a, json!({"a": 1, "b": "foo", "c": 123.456}));
    let a = ok_json(
        &r.app,
        "/h5grove/attr/?file=foo&path=/ds-sc-attr.b2nd&attr_keys=a&attr_keys=c",
    )
    .await;
    assert_eq!(a, json!({"a": 1, "c": 123.456}));
    assert_eq!(
        ok_json(&r.app, "/h5grove/attr?file=foo&path=/dir1").await,
        json!({})
    );
    assert_eq!(
        ok_json(&r.app, "/h5grove/attr?file=foo&path=/ds-1d.b2nd").await,
        json!({})
    );
}

#[tokio::test]
async fn safe_binary_row_reads_only_its_chunks() {
    let r = ready().await;
    let before = r.fake.calls().len();
    let (status, h, body) = get(
        &r.app,
        "/h5grove/data?file=foo&path=/dir1/ds-2d.b2nd&selection=3,:&format=bin&dtype=safe",
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body:?}");
    assert_eq!(h["content-type"], "application/octet-stream");
    let values: Vec<u16> = body
        .chunks_exact(2)
        .map(|b| u16::from_le_bytes([b[0], b[1]]))
        .collect();
    assert_eq!(values, (60..80).collect::<Vec<u16>>());
    // Row 3 is in the first row of chunks (5×5 chunks of a 10×20 array): chunks 0 to 3.
    let asked: Vec<Call> = r.fake.calls()[before..].to_vec();
    let fetched: Vec<&Call> = asked
        .iter()
        .filter(|c| matches!(c, Call::Chunks(..) | Call::Blocks(..)))
        .collect();
    assert!(!fetched.is_empty(), "{asked:?}");
    assert!(
        fetched.iter().all(|c| match c {
            Call::Chunks(_, ns) => ns.iter().all(|n| *n < 4),
            Call::Blocks(_, n, _) => *n < 4,
            _ => false,
        }),
        "{asked:?}"
    );
}

#[tokio::test]
async fn json_data_nests_flattens_and_steps() {
    let r = ready().await;
    let d = "/h5grove/data?file=foo&path=/dir1/ds-2d.b2nd";
    let q = |s: &str| format!("{d}&{s}");
    assert_eq!(
        ok_json(&r.app, &q("selection=0:2,0:3")).await,
        json!([[0, 1, 2], [20, 21, 22]])
    );
    assert_eq!(
        ok_json(&r.app, &q("selection=0:2,0:3&flatten=true")).await,
        json!([0, 1, 2, 20, 21, 22])
    );
    assert_eq!(
        ok_json(&r.app, &q("selection=0:5:2,%201")).await,
        json!([1, 41, 81])
    );
    assert_eq!(
        ok_json(&r.app, &q("selection=3,7&flatten=true")).await,
        json!(67)
    );
    assert_eq!(ok_json(&r.app, &q("selection=-1,-1")).await, json!(199));
    let strings = "/h5grove/data?file=foo&path=/ds-1d-b.b2nd&selection=0:2";
    assert_eq!(ok_json(&r.app, strings).await, json!(["foobar", "foobar"]));
    let scalar = "/h5grove/data?file=foo&path=/ds-sc-attr.b2nd&flatten=true";
    assert_eq!(ok_json(&r.app, scalar).await, json!("foobar"));
    let cplx = "/h5grove/data?file=foo&path=/dir2/ds-4d.b2nd&selection=1,2,3,4";
    assert_eq!(ok_json(&r.app, cplx).await, json!([119.0, 119.0]));
    let floats = "/h5grove/data?file=foo&path=/dir1/ds-3d.b2nd&selection=0,0,0:3";
    assert_eq!(ok_json(&r.app, floats).await, json!([0.0, 1.0, 2.0]));
}

#[tokio::test]
async fn files_npy_csv_tiff_and_bytes() {
    let r = ready().await;
    let d = "/h5grove/data?file=foo&path=/dir1/ds-2d.b2nd";
    let (status, h, npy) = get(&r.app, &format!("{d}&selection=3,:&format=npy")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        h["content-disposition"],
        "attachment; filename=\"data.npy\""
    );
    let header_len = u16::from_le_bytes([npy[8], npy[9]]) as usize;
    let header = std::str::from_utf8(&npy[10..10 + header_len]).unwrap();
    assert!(
        header.contains("'descr': '<u2'") && header.contains("'shape': (20,)"),
        "{header}"
    );
    assert_eq!(npy.len(), 10 + header_len + 40);
    let csv = ok_bytes(&r.app, &format!("{d}&selection=0:2,0:3&format=csv")).await;
    assert_eq!(&csv[..], b"0,1,2\n20,21,22\n");
    let (status, h, tiff) = get(&r.app, &format!("{d}&selection=0:2,0:3&format=tiff")).await;
    assert_eq!(status, StatusCode::OK, "{tiff:?}");
    assert_eq!(h["content-type"], "image/tiff");
    assert!(
        tiff.starts_with(b"II*\0") || tiff.starts_with(b"MM\0*"),
        "{tiff:?}"
    );
    // Plain files and super-chunks are their bytes.
    let readme = ok_bytes(&r.app, "/h5grove/data?file=foo&path=/README.md&format=bin").await;
    assert_eq!(
        &readme[..],
        &std::fs::read(example().join("README.md")).unwrap()[..]
    );
    let hello = "/h5grove/data?file=foo&path=/ds-hello.b2frame&format=bin&selection=0:12";
    assert_eq!(&ok_bytes(&r.app, hello).await[..], b"Hello world!");
}

#[tokio::test]
async fn paths_list_the_tree_depth_first() {
    let r = ready().await;
    let all = ok_json(&r.app, "/h5grove/paths?file=foo").await;
    assert_eq!(
        all,
        json!([
            "/",
            "/README.md",
            "/dir1",
            "/dir1/ds-2d.b2nd",
            "/dir1/ds-3d.b2nd",
            "/dir2",
            "/dir2/ds-4d.b2nd",
            "/ds-1d-b.b2nd",
            "/ds-1d.b2nd",
            "/ds-hello.b2frame",
            "/ds-sc-attr.b2nd"
        ])
    );
    let dir = ok_json(&r.app, "/h5grove/paths/?file=foo&path=/dir1").await;
    assert_eq!(
        dir,
        json!(["/dir1", "/dir1/ds-2d.b2nd", "/dir1/ds-3d.b2nd"])
    );
}

#[tokio::test]
async fn an_unfollowed_root_is_followed() {
    let r = rig_with(|_| {});
    let m = ok_json(&r.app, "/h5grove/meta?file=foo&path=/dir1/ds-2d.b2nd").await;
    assert_eq!(m["shape"], json!([10, 20]));
}

#[tokio::test]
async fn large_reads_ask_for_a_selection() {
    let r = ready_with(|c| c.max_fetch_bytes = 1024).await;
    let d = "/h5grove/data?file=foo&path=/ds-1d.b2nd";
    let (status, msg) = error(&r.app, &format!("{d}&format=bin")).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(msg.contains("too large; use a selection"), "{msg}");
    assert_eq!(
        ok_bytes(&r.app, &format!("{d}&format=bin&selection=0:100"))
            .await
            .len(),
        800
    );
    // JSON text takes more than its items: an eighth of the bound.
    assert_eq!(
        ok_json(&r.app, &format!("{d}&selection=0:16")).await[15],
        15
    );
    let (status, _) = error(&r.app, &format!("{d}&selection=0:17")).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn errors_are_h5groves_never_a_500() {
    let r = ready().await;
    for (uri, phrase) in [
        ("/h5grove/meta?file=foo&path=/nope", "not a valid path"),
        (
            "/h5grove/attr?file=foo&path=/dir1/nope.b2nd",
            "not a valid path",
        ),
        ("/h5grove/data?file=foo&path=/nope", "not a valid path"),
        ("/h5grove/paths?file=foo&path=/nope", "not a valid path"),
        ("/h5grove/meta?file=nosuchroot&path=/", "File not found"),
        ("/h5grove/data?file=no/such&path=/", "File not found"),
        (
            "/h5grove/attr?file=foo&path=/ds-sc-attr.b2nd&attr_keys=zz",
            "zz",
        ),
    ] {
        let (status, msg) = error(&r.app, uri).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{uri}: {msg}");
        assert!(msg.contains(phrase), "{uri}: {msg}");
    }
    let d2 = "/h5grove/data?file=foo&path=/dir1/ds-2d.b2nd";
    let s = "/h5grove/data?file=foo&path=/ds-1d-b.b2nd";
    for uri in [
        format!("{s}&dtype=safe"),
        format!("{s}&format=bin&dtype=safe"),
        format!("{s}&format=npy"),
        format!("{s}&format=csv"),
        format!("{s}&format=tiff"),
        format!("{d2}&selection=a"),
        format!("{d2}&selection=99"),
        format!("{d2}&selection=1,2,3"),
        format!("{d2}&selection=::0"),
        format!("{d2}&selection=::-1"),
        format!("{d2}&format=foo"),
        format!("{d2}&dtype=foo"),
        format!("{d2}&flatten=maybe"),
        format!("{d2}&selection=3,7&format=csv"),
        "/h5grove/data?file=foo&path=/ds-1d.b2nd&format=tiff".to_owned(),
        "/h5grove/data?file=foo&path=/dir2/ds-4d.b2nd&selection=0,0&format=tiff".to_owned(),
        "/h5grove/data?file=foo&path=/dir1".to_owned(),
        "/h5grove/paths?file=foo&path=/dir1/ds-2d.b2nd".to_owned(),
        "/h5grove/meta?path=/".to_owned(),
        "/h5grove/meta?file=foo&resolve_links=maybe".to_owned(),
    ] {
        let (status, msg) = error(&r.app, &uri).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{uri}: {msg}");
    }
    let (_, msg) = error(&r.app, &format!("{s}&dtype=safe")).await;
    assert!(msg.contains("non-numeric"), "{msg}");
}

#[tokio::test]
async fn a_child_that_cannot_be_read_does_not_hide_its_siblings() {
    let r = ready().await;
    // After a restart, dir1/ds-3d.b2nd has no cache file and its publisher is gone: it
    // cannot be described.
    std::fs::remove_file(r._state.path().join("cache/foo/dir1/ds-3d.b2nd")).unwrap();
    r.fake.set_mode(fake::Mode::Down);
    let cfg = Config {
        statedir: r._state.path().to_owned(),
        ..Config::default()
    };
    let app = Subscriber::new(cfg, r.fake.clone()).unwrap().router();
    let dir = ok_json(&app, "/h5grove/meta?file=foo&path=/dir1").await;
    let children = &dir["children"];
    assert_eq!(names(children), ["ds-2d.b2nd", "ds-3d.b2nd"]);
    assert_eq!(children[0]["kind"], "dataset");
    assert_eq!(
        children[1],
        json!({"attributes": [], "kind": "other", "name": "ds-3d.b2nd"})
    );
}
