//! Replies are checked against their publisher's digests before anything is stored or
//! served: a member of the queue group answering with other, well-formed bytes (a rogue, a
//! broken replica) is dropped and the request asked again, in-process with a fake upstream
//! and paused time (as `core.rs`).

#[allow(dead_code)]
mod fake;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use cat2_subscriber::{Config, Subscriber};
use fake::{Call, Fake, ROOT};
use tower::ServiceExt;

const TIMEOUT: Duration = Duration::from_secs(2);

/// `a.b2nd`: u16 64×64 holding `i`, two chunks of 32 rows, blocks of 4 rows (a read of a
/// few rows fetches blocks alone).
fn write_a(dir: &Path) -> std::path::PathBuf {
    let p = dir.join("a.b2nd");
    let data: Vec<u8> = (0..4096u16).flat_map(u16::to_le_bytes).collect();
    cat2_format::encode::write_b2nd_file(&p, "<u2", &[64, 64], &[32, 64], &[4, 64], &data, &[])
        .unwrap();
    p
}

struct Rig {
    app: Router,
    fake: Arc<Fake>,
    state: tempfile::TempDir,
    _src: tempfile::TempDir,
}

fn config(state: &Path) -> Config {
    Config {
        statedir: state.to_owned(),
        timeout: TIMEOUT,
        ..Config::default()
    }
}

async fn rig() -> Rig {
    rig_with(true).await
}

/// A subscriber following `foo`, whose publisher sends digests or not.
async fn rig_with(digests: bool) -> Rig {
    let src = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let fake = Fake::new();
    fake.put("a.b2nd", &write_a(src.path()));
    fake.send_digests(digests);
    let sub = Subscriber::new(config(state.path()), fake.clone()).unwrap();
    let app = sub.router();
    let (status, _) = call(&app, "POST", &format!("/api/subscribe/{ROOT}")).await;
    assert_eq!(status, StatusCode::OK);
    Rig {
        app,
        fake,
        state,
        _src: src,
    }
}

async fn call(app: &Router, method: &str, uri: &str) -> (StatusCode, bytes::Bytes) {
    let req = Request::builder()
        .method(method)
        .uri(uri)
        .body(Body::empty())
        .unwrap();
    let resp = app.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    (
        status,
        axum::body::to_bytes(resp.into_body(), usize::MAX)
            .await
            .unwrap(),
    )
}

/// Rows `rows` of `a.b2nd` as u16 values (status, values when 200).
async fn rows(app: &Router, rows: &str) -> (StatusCode, Vec<u16>) {
    let uri = format!("/api/fetch/{ROOT}/a.b2nd?slice_={rows}&prefer_schunk=true");
    let (status, body) = call(app, "GET", &uri).await;
    if status != StatusCode::OK {
        return (status, Vec::new());
    }
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("x.b2nd");
    std::fs::write(&p, &body).unwrap();
    let ds = cat2_format::Dataset::open(&p).unwrap();
    let all = cat2_array::Selection::all(ds.layout().shape());
    let values = ds
        .read(&all)
        .unwrap()
        .chunks_exact(2)
        .map(|b| u16::from_le_bytes([b[0], b[1]]))
        .collect();
    (status, values)
}

/// The chunks of the `.b2nd` file `bytes`, as stored.
fn stored_chunks(bytes: &[u8]) -> Vec<Vec<u8>> {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("x.b2nd");
    std::fs::write(&p, bytes).unwrap();
    let ds = cat2_format::Dataset::open(&p).unwrap();
    (0..ds.nchunks())
        .map(|n| ds.raw_chunk(n).unwrap())
        .collect()
}

fn expected(first_row: u16, nrows: u16) -> Vec<u16> {
    (first_row * 64..(first_row + nrows) * 64).collect()
}

fn blocks_asked(fake: &Fake) -> usize {
    fake.calls()
        .iter()
        .filter(|c| matches!(c, Call::Blocks(..)))
        .count()
}

#[tokio::test(start_paused = true)]
async fn a_forged_chunk_is_dropped_and_asked_again() {
    let r = rig().await;
    r.fake.forge_next_chunk_requests(1);
    let (status, values) = rows(&r.app, "0:64").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(values, expected(0, 64));
    assert!(r.fake.chunk_requests() >= 2, "{:?}", r.fake.calls());
    // What was stored is the real data: served again with every publisher forging.
    r.fake.forge_next_chunk_requests(1000);
    let (status, values) = rows(&r.app, "0:64").await;
    assert_eq!((status, values), (StatusCode::OK, expected(0, 64)));
    let (status, file) = call(&r.app, "GET", &format!("/files/{ROOT}/a.b2nd")).await;
    assert_eq!(status, StatusCode::OK);
    let src = std::fs::read(r._src.path().join("a.b2nd")).unwrap();
    assert_eq!(
        stored_chunks(&file),
        stored_chunks(&src),
        "the cache holds the publisher's chunks"
    );
}

#[tokio::test(start_paused = true)]
async fn only_forged_replies_give_a_503_and_leave_nothing_cached() {
    let r = rig().await;
    r.fake.forge_next_chunk_requests(usize::MAX);
    let t = tokio::time::Instant::now();
    let (status, _) = rows(&r.app, "0:64").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        t.elapsed() <= TIMEOUT + Duration::from_millis(600),
        "{:?}",
        t.elapsed()
    );
    // Every try was asked again, not given up after a count.
    assert!(r.fake.chunk_requests() > 3, "{:?}", r.fake.calls());
    r.fake.forge_next_chunk_requests(0);
    let (status, values) = rows(&r.app, "0:64").await;
    assert_eq!((status, values), (StatusCode::OK, expected(0, 64)));
}

#[tokio::test(start_paused = true)]
async fn a_forged_block_is_never_used() {
    let r = rig().await;
    r.fake.forge_next_block_requests(1);
    let (status, values) = rows(&r.app, "5:6").await;
    assert_eq!((status, values), (StatusCode::OK, expected(5, 1)));
    // The block came forged: the (checked) chunk was fetched instead.
    assert_eq!(blocks_asked(&r.fake), 1, "{:?}", r.fake.calls());
    assert!(r.fake.chunk_requests() >= 1, "{:?}", r.fake.calls());
    // Honest blocks are used as before.
    let (status, values) = rows(&r.app, "40:41").await;
    assert_eq!((status, values), (StatusCode::OK, expected(40, 1)));
    assert_eq!(blocks_asked(&r.fake), 2, "{:?}", r.fake.calls());
}

#[tokio::test(start_paused = true)]
async fn digests_are_kept_across_a_restart() {
    let r = rig().await;
    // A small read makes the cache (and keeps its digests) without storing chunk 1.
    let (status, _) = rows(&r.app, "0:1").await;
    assert_eq!(status, StatusCode::OK);
    drop(r.app);
    // Restarted on the same state; the publisher sends no digests any more, so only the
    // kept ones can catch the forged chunk.
    r.fake.send_digests(false);
    let sub = Subscriber::new(config(r.state.path()), r.fake.clone()).unwrap();
    let app = sub.router();
    r.fake.forge_next_chunk_requests(1);
    let (status, values) = rows(&app, "32:64").await;
    assert_eq!((status, values), (StatusCode::OK, expected(32, 32)));
}

#[tokio::test(start_paused = true)]
async fn without_digests_a_forged_chunk_would_be_served() {
    // What the checks above prevent (and why this test file can fail): with a publisher
    // that sends no digests, a well-formed chunk of other data is taken as it comes.
    let r = rig_with(false).await;
    r.fake.forge_next_chunk_requests(1);
    let (status, values) = rows(&r.app, "0:64").await;
    assert_eq!(status, StatusCode::OK);
    assert_ne!(values, expected(0, 64));
}

#[tokio::test(start_paused = true)]
async fn a_cache_kept_without_digests_adopts_its_publishers() {
    // A cache made while its publisher sent no digests (as before digests existed).
    let r = rig_with(false).await;
    let (status, _) = rows(&r.app, "0:1").await;
    assert_eq!(status, StatusCode::OK);
    drop(r.app);
    let kept = r
        .state
        .path()
        .join("digests")
        .join(ROOT)
        .join("a.b2nd.c2dig");
    assert!(!kept.exists());
    // Restarted, with a publisher that sends them: the cache asks for them when opened.
    r.fake.send_digests(true);
    let sub = Subscriber::new(config(r.state.path()), r.fake.clone()).unwrap();
    let app = sub.router();
    let (status, _) = rows(&app, "1:2").await;
    assert_eq!(status, StatusCode::OK);
    // Adopted (in memory first, then kept): wait until kept.
    let mut spins = 0;
    while !kept.exists() {
        spins += 1;
        assert!(spins < 100_000, "digests never adopted");
        tokio::task::yield_now().await;
    }
    r.fake.forge_next_chunk_requests(1);
    let (status, values) = rows(&app, "32:64").await;
    assert_eq!((status, values), (StatusCode::OK, expected(32, 32)));
}
