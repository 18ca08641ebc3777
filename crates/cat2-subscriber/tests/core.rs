//! The subscriber's core through its REST API, in-process: a fake upstream in place of NATS
//! and publishers, requests sent with `tower::ServiceExt::oneshot`, and paused time (a
//! timeout of seconds passes at once, and only once nothing else can run: the interleavings
//! are the ones the test sets up, every run).
//!
//! Each test aims at one behaviour: single flight, a waiter's own deadline, a silent or busy
//! publisher asked again, a publisher lost, a change during a fetch, missed changes caught up
//! from the publisher's state, the memory budget.

#[allow(dead_code)] // each test file uses its own part of the fake
mod fake;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use bytes::Bytes;
use cat2_proto::RootName;
use cat2_proto::msg::{Change, RootState};
use cat2_proto::rest::{self, DownloadReply, ErrorReply, ListReply, RootsReply, SubscribeReply};
use cat2_subscriber::{Config, Subscriber};
use fake::{Call, Fake, Mode, ROOT};
use tokio::time::Instant;
use tower::ServiceExt;

/// The request timeout of these tests.
const TIMEOUT: Duration = Duration::from_secs(2);

struct Rig {
    app: Router,
    sub: Subscriber,
    fake: Arc<Fake>,
    src: tempfile::TempDir,
    _state: tempfile::TempDir,
}

/// `a.b2nd`: u16 64×64 holding `base + i`, two chunks of 32 rows, blocks of 4 rows (8 per
/// chunk: a read of a few rows fetches blocks alone).
fn write_a(dir: &Path, name: &str, base: u16) -> std::path::PathBuf {
    let p = dir.join(name);
    let data: Vec<u8> = (0..4096u16)
        .flat_map(|i| (base + i).to_le_bytes())
        .collect();
    cat2_format::encode::write_b2nd_file(&p, "<u2", &[64, 64], &[32, 64], &[4, 64], &data, &[])
        .unwrap();
    p
}

fn rig(tweak: impl FnOnce(&mut Config)) -> Rig {
    let src = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let fake = Fake::new();
    fake.put("a.b2nd", &write_a(src.path(), "a.b2nd", 0));
    let mut cfg = Config {
        statedir: state.path().to_owned(),
        timeout: TIMEOUT,
        ..Config::default()
    };
    tweak(&mut cfg);
    let sub = Subscriber::new(cfg, fake.clone()).unwrap();
    Rig {
        app: sub.router(),
        sub,
        fake,
        src,
        _state: state,
    }
}

async fn call(app: &Router, method: &str, uri: &str) -> (StatusCode, HeaderMap, Bytes) {
    let req = Request::builder()
        .method(method)
        .uri(uri)
        .body(Body::empty())
        .unwrap();
    let resp = app.clone().oneshot(req).await.unwrap();
    let (parts, body) = resp.into_parts();
    let body = axum::body::to_bytes(body, usize::MAX).await.unwrap();
    (parts.status, parts.headers, body)
}

async fn subscribe(r: &Rig) {
    let (status, _, body) = call(&r.app, "POST", &format!("/api/subscribe/{ROOT}")).await;
    assert_eq!(status, StatusCode::OK, "{body:?}");
}

/// `rows` of `a.b2nd` (all columns): status, and the values when 200.
async fn rows(app: &Router, rows: &str) -> (StatusCode, Vec<u16>) {
    let uri = format!("/api/fetch/{ROOT}/a.b2nd?slice_={rows}&prefer_schunk=true");
    let (status, _, body) = call(app, "GET", &uri).await;
    if status != StatusCode::OK {
        return (status, Vec::new());
    }
    (status, decode(&body))
}

fn decode(frame: &[u8]) -> Vec<u16> {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("x.b2nd");
    std::fs::write(&p, frame).unwrap();
    let ds = cat2_format::Dataset::open(&p).unwrap();
    let all = cat2_array::Selection::all(ds.layout().shape());
    ds.read(&all)
        .unwrap()
        .chunks_exact(2)
        .map(|b| u16::from_le_bytes([b[0], b[1]]))
        .collect()
}

fn expected(base: u16, first_row: u16, nrows: u16) -> Vec<u16> {
    (first_row * 64..(first_row + nrows) * 64)
        .map(|i| base + i)
        .collect()
}

#[tokio::test(start_paused = true)]
async fn concurrent_requests_fetch_each_chunk_once() {
    let r = rig(|_| {});
    subscribe(&r).await;
    r.fake.delay_chunks(Duration::from_millis(100));
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let app = r.app.clone();
        tasks.push(tokio::spawn(async move { rows(&app, "0:64").await }));
    }
    for _ in 0..4 {
        let app = r.app.clone();
        tasks.push(tokio::spawn(async move {
            let (status, _, body) = call(&app, "GET", &format!("/files/{ROOT}/a.b2nd")).await;
            (status, decode(&body))
        }));
    }
    for t in tasks {
        let (status, values) = t.await.unwrap();
        assert_eq!(status, StatusCode::OK);
        assert_eq!(values, expected(0, 0, 64));
    }
    assert_eq!(r.fake.times_asked("a.b2nd", 0), 1, "{:?}", r.fake.calls());
    assert_eq!(r.fake.times_asked("a.b2nd", 1), 1, "{:?}", r.fake.calls());
}

#[tokio::test(start_paused = true)]
async fn small_reads_fetch_blocks_alone() {
    let r = rig(|_| {});
    subscribe(&r).await;
    let (status, values) = rows(&r.app, "4:8").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(values, expected(0, 4, 4));
    let calls = r.fake.calls();
    assert!(
        calls.contains(&Call::Blocks("a.b2nd".into(), 0, vec![1])),
        "{calls:?}"
    );
    assert_eq!(r.fake.chunk_requests(), 0, "{calls:?}");
}

#[tokio::test(start_paused = true)]
async fn a_download_waiting_on_a_slice_fetch_keeps_its_own_deadline() {
    let r = rig(|_| {});
    subscribe(&r).await;
    // The slice's fetch is taken and never answered: the slice fails at its deadline.
    r.fake.silence_next_chunk_requests(1);
    let app = r.app.clone();
    let slice = tokio::spawn(async move { rows(&app, "0:64").await });
    r.fake.wait_chunk_requests(1).await;
    // The download joins that fetch; when it fails, the download (no deadline) asks again.
    let (status, _, body) = call(&r.app, "GET", &format!("/files/{ROOT}/a.b2nd")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(decode(&body), expected(0, 0, 64));
    assert_eq!(slice.await.unwrap().0, StatusCode::GATEWAY_TIMEOUT);
    assert_eq!(r.fake.chunk_requests(), 2, "{:?}", r.fake.calls());
}

#[tokio::test(start_paused = true)]
async fn a_silent_publisher_costs_one_idle_limit_then_is_asked_again() {
    let r = rig(|c| c.timeout = Duration::from_secs(20));
    subscribe(&r).await;
    r.fake.silence_next_chunk_requests(1);
    let t = Instant::now();
    let (status, values) = rows(&r.app, "0:64").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(values, expected(0, 0, 64));
    let took = t.elapsed();
    assert!(
        took >= Duration::from_secs(3) && took < Duration::from_secs(5),
        "{took:?}"
    );
    assert_eq!(r.fake.chunk_requests(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_silent_blocks_reply_costs_one_idle_limit_then_is_asked_again() {
    let r = rig(|c| c.timeout = Duration::from_secs(20));
    subscribe(&r).await;
    r.fake.silence_next_block_requests(1);
    let t = Instant::now();
    let (status, values) = rows(&r.app, "4:8").await;
    assert_eq!((status, values), (StatusCode::OK, expected(0, 4, 4)));
    let took = t.elapsed();
    assert!(
        took >= Duration::from_secs(3) && took < Duration::from_secs(5),
        "{took:?}"
    );
    let blocks = r
        .fake
        .calls()
        .iter()
        .filter(|c| matches!(c, Call::Blocks(..)))
        .count();
    assert_eq!((blocks, r.fake.chunk_requests()), (2, 0));
}

#[tokio::test(start_paused = true)]
async fn a_busy_publisher_is_asked_again() {
    let r = rig(|_| {});
    subscribe(&r).await;
    r.fake.busy_next_chunk_requests(2);
    let (status, values) = rows(&r.app, "0:64").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(values, expected(0, 0, 64));
    assert_eq!(r.fake.chunk_requests(), 3);
}

#[tokio::test(start_paused = true)]
async fn without_publishers_the_cache_is_served_and_the_rest_fails_in_time() {
    let r = rig(|_| {});
    subscribe(&r).await;
    assert_eq!(rows(&r.app, "0:32").await.0, StatusCode::OK);
    let asked = r.fake.chunk_requests();

    r.fake.set_mode(Mode::Down);
    let (status, values) = rows(&r.app, "0:32").await;
    assert_eq!((status, values), (StatusCode::OK, expected(0, 0, 32)));
    assert_eq!(
        r.fake.chunk_requests(),
        asked,
        "cached chunks are not asked for"
    );
    let t = Instant::now();
    assert_eq!(
        rows(&r.app, "32:64").await.0,
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert!(
        t.elapsed() <= TIMEOUT + Duration::from_secs(1),
        "{:?}",
        t.elapsed()
    );

    r.fake.set_mode(Mode::Silent);
    let t = Instant::now();
    assert_eq!(rows(&r.app, "32:64").await.0, StatusCode::GATEWAY_TIMEOUT);
    assert!(
        t.elapsed() <= TIMEOUT + Duration::from_secs(1),
        "{:?}",
        t.elapsed()
    );

    r.fake.set_mode(Mode::Up);
    let (status, values) = rows(&r.app, "32:64").await;
    assert_eq!((status, values), (StatusCode::OK, expected(0, 32, 32)));
}

#[tokio::test(start_paused = true)]
async fn a_change_during_a_fetch_never_mixes_versions() {
    let r = rig(|_| {});
    subscribe(&r).await;
    r.fake.delay_chunks(Duration::from_millis(500));
    let app = r.app.clone();
    let reading = tokio::spawn(async move { rows(&app, "0:64").await });
    r.fake.wait_chunk_requests(1).await;
    // A new version lands while the old one's chunks are on their way.
    r.fake
        .put("a.b2nd", &write_a(r.src.path(), "a2.b2nd", 10_000));
    let root = RootName::new(ROOT).unwrap();
    let change = Change {
        path: cat2_proto::DatasetPath::new("a.b2nd").expect("a valid path"),
        etag: Some(r.fake.etag("a.b2nd")),
        epoch: 0,
        seq: 0,
    };
    r.sub.on_change(&root, change).await;
    let (status, values) = reading.await.unwrap();
    assert_eq!(status, StatusCode::OK);
    assert!(
        values == expected(0, 0, 64) || values == expected(10_000, 0, 64),
        "a read mixed versions or read neither"
    );
    // From now on, the new version only.
    assert_eq!(rows(&r.app, "0:64").await.1, expected(10_000, 0, 64));
    assert_eq!(rows(&r.app, "4:8").await.1, expected(10_000, 4, 4));
}

fn lists(calls: &[Call]) -> usize {
    calls.iter().filter(|c| matches!(c, Call::List)).count()
}

#[tokio::test(start_paused = true)]
async fn missed_changes_are_caught_up_from_the_publishers_state() {
    let r = rig(|_| {});
    r.fake.put("b.b2nd", &write_a(r.src.path(), "b.b2nd", 7));
    subscribe(&r).await;
    let root = RootName::new(ROOT).unwrap();
    let state = |seq| RootState { epoch: 1, seq };
    // A publisher run not heard from before: what it announced earlier is unknown.
    let before = lists(&r.fake.calls());
    r.sub.on_state(&root, state(0));
    r.fake.wait_calls(|c| lists(c) > before).await;
    assert_eq!(rows(&r.app, "0:64").await.1, expected(0, 0, 64));
    let b = "/api/fetch/foo/b.b2nd?slice_=0:4&prefer_schunk=true";
    assert_eq!(call(&r.app, "GET", b).await.0, StatusCode::OK);
    let b_asked = r.fake.times_asked("b.b2nd", 0);

    // A new version of a.b2nd whose change message never arrives; the heartbeat state says
    // one change was announced.
    r.fake
        .put("a.b2nd", &write_a(r.src.path(), "a2.b2nd", 10_000));
    r.sub.on_state(&root, state(1));
    let mut values = Vec::new();
    for _ in 0..50 {
        values = rows(&r.app, "0:64").await.1;
        if values == expected(10_000, 0, 64) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        values,
        expected(10_000, 0, 64),
        "the missed change was caught up"
    );
    // Only the changed dataset was fetched again.
    assert_eq!(call(&r.app, "GET", b).await.0, StatusCode::OK);
    assert_eq!(r.fake.times_asked("b.b2nd", 0), b_asked);
    // The same state again is nothing new: no further follow.
    let settled = lists(&r.fake.calls());
    r.sub.on_state(&root, state(1));
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(lists(&r.fake.calls()), settled);
}

#[tokio::test(start_paused = true)]
async fn a_flood_of_changes_costs_two_checks_and_loses_none() {
    let r = rig(|_| {});
    subscribe(&r).await;
    assert_eq!(rows(&r.app, "0:64").await.1, expected(0, 0, 64));
    let infos = |calls: &[Call]| {
        calls
            .iter()
            .filter(|c| matches!(c, Call::Info(p) if p == "a.b2nd"))
            .count()
    };
    let before = infos(&r.fake.calls());
    // A real new version, announced among 200 changes naming made-up etags.
    r.fake
        .put("a.b2nd", &write_a(r.src.path(), "a2.b2nd", 10_000));
    let root = RootName::new(ROOT).unwrap();
    let flood = (0..200).map(|i| {
        let change = Change {
            path: cat2_proto::DatasetPath::new("a.b2nd").unwrap(),
            etag: Some(format!("forged-{i}")),
            epoch: 0,
            seq: 0,
        };
        r.sub.on_change(&root, change)
    });
    futures::future::join_all(flood).await;
    let checks = infos(&r.fake.calls()) - before;
    assert!((1..=2).contains(&checks), "{checks} checks for 200 changes");
    assert_eq!(rows(&r.app, "0:64").await.1, expected(10_000, 0, 64));
}

/// `big.b2nd`: 2 MiB of incompressible u64 in chunks of 512 KiB.
fn write_big(dir: &Path) -> std::path::PathBuf {
    let p = dir.join("big.b2nd");
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    let data: Vec<u8> = (0..256 * 1024)
        .flat_map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x.to_le_bytes()
        })
        .collect();
    cat2_format::encode::write_b2nd_file(
        &p,
        "<u8",
        &[256, 1024],
        &[64, 1024],
        &[8, 1024],
        &data,
        &[],
    )
    .unwrap();
    p
}

#[tokio::test(start_paused = true)]
async fn the_memory_budget_refuses_holds_off_then_serves() {
    let r = rig(|c| {
        c.memory_budget = 1 << 20;
        c.timeout = Duration::from_secs(20);
    });
    r.fake.put("big.b2nd", &write_big(r.src.path()));
    subscribe(&r).await;
    let slice = |s: &str| format!("/api/fetch/{ROOT}/big.b2nd?slice_={s}&prefer_schunk=true");

    // 2 MiB decoded and encoded, plus a chunk: more than the whole budget.
    let (status, _, body) = call(&r.app, "GET", &slice("0:256")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let detail = String::from_utf8_lossy(&body);
    assert!(
        detail.contains("--memory-budget") && detail.contains("/api/download"),
        "{detail}"
    );

    // A slice of 16 rows holds 768 KiB of the budget while its two blocks are on their way
    // (2.9 s each: slow, never silent for a stream idle time, 3 s): a slice of one row
    // (528 KiB) waits for room (5 s at most), then is told to come back.
    r.fake.delay_chunks(Duration::from_millis(2900));
    let app = r.app.clone();
    let big = slice("0:16");
    let first = tokio::spawn(async move { call(&app, "GET", &big).await.0 });
    // With paused time this returns once nothing else can run: the first slice waits for
    // its blocks, its lease taken.
    tokio::time::sleep(Duration::from_millis(1)).await;
    let t = Instant::now();
    let (status, headers, _) = call(&r.app, "GET", &slice("16:17")).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(headers.get("retry-after").unwrap(), "1");
    assert!(
        t.elapsed() < Duration::from_secs(10),
        "waited {:?}",
        t.elapsed()
    );

    // Once the first is served, its room goes back to the budget.
    assert_eq!(first.await.unwrap(), StatusCode::OK);
    r.fake.delay_chunks(Duration::ZERO);
    let (status, _, body) = call(&r.app, "GET", &slice("16:17")).await;
    assert_eq!(status, StatusCode::OK, "{body:?}");
}

#[tokio::test(start_paused = true)]
async fn replies_are_the_shared_rest_types() {
    let r = rig(|_| {});
    let (status, _, body) = call(&r.app, "GET", &format!("/api/list/{ROOT}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let e: ErrorReply = serde_json::from_slice(&body).unwrap();
    assert!(e.detail.contains(ROOT), "{e:?}");

    let (status, _, body) = call(&r.app, "POST", &format!("/api/subscribe/{ROOT}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        serde_json::from_slice::<SubscribeReply>(&body).unwrap(),
        rest::SUBSCRIBED
    );
    let (_, _, body) = call(&r.app, "GET", "/api/roots").await;
    let roots: RootsReply = serde_json::from_slice(&body).unwrap();
    assert!(
        roots[ROOT].is_subscribed() && roots[ROOT].online,
        "{roots:?}"
    );
    let (_, _, body) = call(&r.app, "GET", &format!("/api/list/{ROOT}")).await;
    let list: ListReply = serde_json::from_slice(&body).unwrap();
    assert_eq!(list, ["a.b2nd"]);
    let (_, _, body) = call(&r.app, "GET", &format!("/api/download/{ROOT}/a.b2nd")).await;
    let url: DownloadReply = serde_json::from_slice(&body).unwrap();
    assert!(url.ends_with(&format!("/files/{ROOT}/a.b2nd")), "{url}");
}

/// The chunk lists of the chunk requests made for `path`.
fn chunk_requests(calls: &[Call], path: &str) -> Vec<Vec<u64>> {
    calls
        .iter()
        .filter_map(|c| match c {
            Call::Chunks(p, n) if p == path => Some(n.clone()),
            _ => None,
        })
        .collect()
}

#[tokio::test(start_paused = true)]
async fn no_chunk_request_asks_for_more_than_the_fetch_buffer() {
    // big.b2nd: 4 chunks of 512 KiB. A reply is written into the link at once, so a batch
    // bigger than the buffer would queue that much ahead of every small read.
    for (buffer, most) in [(1 << 20, 2), (64 << 20, 4)] {
        let r = rig(|c| c.fetch_buffer_bytes = buffer);
        r.fake.put("big.b2nd", &write_big(r.src.path()));
        subscribe(&r).await;
        let (status, _, body) = call(&r.app, "GET", &format!("/files/{ROOT}/big.b2nd")).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(decode(&body).len(), 256 * 1024 * 4, "u8 items as u16 pairs");
        let asked = chunk_requests(&r.fake.calls(), "big.b2nd");
        let largest = asked.iter().map(Vec::len).max().unwrap_or(0);
        assert_eq!(largest, most, "buffer {buffer}: {asked:?}");
        let mut all: Vec<u64> = asked.concat();
        all.sort_unstable();
        assert_eq!(all, [0, 1, 2, 3], "each chunk asked once: {asked:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn with_tokens_configured_rest_needs_one() {
    let r = rig(|c| {
        c.auth_tokens =
            cat2_subscriber::Tokens::parse(&cat2_subscriber::Tokens::digest_of("s3cret-token"))
                .unwrap();
    });
    let ask = |auth: Option<(&'static str, String)>, uri: &'static str| {
        let app = r.app.clone();
        async move {
            let mut req = Request::builder().method("GET").uri(uri);
            if let Some((k, v)) = auth {
                req = req.header(k, v);
            }
            let resp = app.oneshot(req.body(Body::empty()).unwrap()).await.unwrap();
            let status = resp.status();
            let body = axum::body::to_bytes(resp.into_body(), usize::MAX)
                .await
                .unwrap();
            (status, body)
        }
    };
    for uri in ["/api/roots", "/files/foo/a.b2nd", "/api/nothing"] {
        let (status, body) = ask(None, uri).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{uri}");
        assert_eq!(&body[..], br#"{"detail":"Unauthorized"}"#);
    }
    let wrong = ("authorization", "Bearer s3cret".to_owned());
    assert_eq!(
        ask(Some(wrong), "/api/roots").await.0,
        StatusCode::UNAUTHORIZED
    );
    let bearer = ("authorization", "Bearer s3cret-token".to_owned());
    assert_eq!(ask(Some(bearer), "/api/roots").await.0, StatusCode::OK);
    // python-blosc2 sends its auth_token as the Cookie header; Caterva2's cookie name.
    let cookie = ("cookie", "other=1; c2subauth=s3cret-token".to_owned());
    assert_eq!(ask(Some(cookie), "/api/roots").await.0, StatusCode::OK);
}

#[tokio::test(start_paused = true)]
async fn bad_bytes_are_never_stored_and_asked_again() {
    let r = rig(|_| {});
    subscribe(&r).await;
    // One bad answer: asked again, served right.
    r.fake.corrupt_next_chunk_requests(1);
    let (status, values) = rows(&r.app, "0:64").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(values, expected(0, 0, 64));
    assert_eq!(r.fake.chunk_requests(), 2, "{:?}", r.fake.calls());
    // Only bad answers: the read fails (503) within its deadline, nothing is cached, and
    // the next read with an honest publisher is right.
    let r = rig(|_| {});
    subscribe(&r).await;
    r.fake.corrupt_next_chunk_requests(usize::MAX);
    let t = tokio::time::Instant::now();
    let (status, _) = rows(&r.app, "0:64").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    // Within its deadline (the last backoff is cut to it).
    assert!(t.elapsed() <= TIMEOUT, "{:?}", t.elapsed());
    // Asked again until the deadline, not given up after a count (a rogue member sending
    // bad bytes must not fail a read an honest member would answer).
    let asked = r.fake.chunk_requests();
    assert!(
        asked > 3,
        "asked again while time remained: {:?}",
        r.fake.calls()
    );
    r.fake.corrupt_next_chunk_requests(0);
    let (status, values) = rows(&r.app, "0:64").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(values, expected(0, 0, 64));
}
